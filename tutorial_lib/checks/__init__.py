"""Learner-facing checks for the exercise notebooks.

Each lecture's checks live in ``tutorial_lib.checks.lectureNN``. A check prints one line

    PASS <what>: <measured numbers>

or raises ``AssertionError`` whose message gives the measured numbers and the tolerance, e.g.
``FAIL divergence: error is 3.0e-02 at 14 of 64 points, tolerance 1.0e-06``.

The helpers here are shared by all lectures: ``passed`` and ``fail`` format those two outcomes,
``sample_points`` draws reproducible test points without touching the global random state,
``check_shape`` and ``compare`` cover the two most common checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "CheckFailed",
    "passed",
    "fail",
    "sample_points",
    "check_shape",
    "compare",
    "order_of",
]


class CheckFailed(AssertionError):
    """Raised by a check whose measured numbers are outside the tolerance."""


def passed(name: str, detail: str) -> None:
    """Print the one-line pass message ``PASS <name>: <detail>``."""
    print(f"PASS {name}: {detail}")


def fail(name: str, detail: str) -> None:
    """Raise ``CheckFailed`` (an AssertionError) with message ``FAIL <name>: <detail>``."""
    raise CheckFailed(f"FAIL {name}: {detail}")


def sample_points(
    n: int = 64,
    dim: int = 2,
    seed: int = 0,
    *,
    scale: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw ``n`` points from N(0, scale^2 I) with a private generator.

    The global random state is left as it was, so a check does not change what the notebook
    computes after it.

    Args:
        n: number of points.
        dim: dimension of each point.
        seed: seed of the private generator; the same seed gives the same points.
        scale: standard deviation of each coordinate.
        dtype: floating dtype of the result.
        device: device of the result (the points are drawn on the CPU, then moved).

    Returns:
        Tensor of shape ``(n, dim)``.
    """
    if n < 1 or dim < 1:
        raise ValueError(f"expected n >= 1 and dim >= 1, got n={n}, dim={dim}")
    generator = torch.Generator().manual_seed(seed)
    z = scale * torch.randn(n, dim, generator=generator, dtype=torch.float64)
    return z.to(dtype=dtype, device=device)


def check_shape(name: str, value: object, expected: Sequence[int]) -> Tensor:
    """Fail unless ``value`` is a tensor of shape ``expected``; return it.

    Example message: ``FAIL divergence: expected a tensor of shape (64,), got (64, 2)``.
    """
    expected = tuple(expected)
    if not isinstance(value, Tensor):
        fail(name, f"expected a tensor of shape {expected}, got {type(value).__name__}")
    if tuple(value.shape) != expected:
        fail(name, f"expected a tensor of shape {expected}, got {tuple(value.shape)}")
    return value


def compare(
    name: str,
    got: Tensor,
    expected: Tensor,
    tol: float,
    quantity: str = "error",
    relative: bool = False,
) -> float:
    """Compare ``got`` with ``expected`` elementwise; print a PASS line or fail.

    Args:
        name: what is checked, first word of the message.
        got: the learner's values, any shape equal to ``expected``'s.
        expected: the reference values.
        tol: largest accepted absolute (or relative, see ``relative``) error.
        quantity: how the error is called in the message.
        relative: divide the error by ``max(|expected|, 1e-12)``.

    Returns:
        The largest error, as a float.
    """
    got = check_shape(name, got, expected.shape)
    if not torch.isfinite(got).all():
        bad = int((~torch.isfinite(got)).sum())
        fail(name, f"{bad} of {got.numel()} values are not finite")
    err = (got.detach().double().cpu() - expected.detach().double().cpu()).abs()
    if relative:
        err = err / expected.detach().double().cpu().abs().clamp_min(1e-12)
    worst = float(err.max()) if err.numel() else 0.0
    n_bad = int((err > tol).sum())
    if n_bad:
        fail(
            name,
            f"{quantity} is {worst:.1e} at {n_bad} of {err.numel()} points, tolerance {tol:.0e}",
        )
    passed(
        name,
        f"largest {quantity} {order_of(worst)} over {err.numel()} points (tolerance {tol:.0e})",
    )
    return worst


def order_of(x: float, floor: float = 1e-12) -> str:
    """``x`` as the power of ten just above it, e.g. ``"< 1e-06"``.

    Round-off errors differ in their last digits between machines; their order of magnitude
    does not, so PASS lines stay identical wherever a notebook is validated. Values below
    ``floor`` (round-off of float64 arithmetic), zero included, are all shown as ``"< floor"``.
    """
    return f"< 1e{math.ceil(math.log10(max(x, floor))):+03d}"
