"""Checks for lecture 3, divergence-free fields: a skew-gradient field and its divergence.

Both checks call the learner's function on cases whose answers are known in closed form and
print ``PASS ...`` or raise an AssertionError with the measured numbers and the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import check_shape, fail, order_of, passed, sample_points
from .lecture01 import known_fields

__all__ = ["divergence", "known_skew_cases", "skew_gradient_field"]

Scalar = Callable[[Tensor], Tensor]
Field = Callable[[Tensor], Tensor]
TOL = 1e-8


def known_skew_cases() -> list[tuple[str, Scalar, Tensor, Callable[[Tensor], Tensor]]]:
    """Cases ``(name, psi, S, grad_psi)`` with a skew ``S`` and a closed-form gradient of ``psi``.

    ``psi`` maps ``(batch, dim) -> (batch,)``, ``S`` is ``(dim, dim)`` with ``S = -S^T``, and
    ``grad_psi`` maps ``(batch, dim) -> (batch, dim)``.
    """
    rot = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.3, -1.1, 0.8], [0.5, 0.2, -0.7], [1.4, 0.6, -0.1]], dtype=torch.float64)
    w = torch.tensor([[0.9, -0.4], [0.3, 1.2], [-0.8, 0.5]], dtype=torch.float64)

    def vortex(z: Tensor) -> Tensor:
        return torch.exp(-z.pow(2).sum(1))

    def vortex_grad(z: Tensor) -> Tensor:
        return -2 * z * torch.exp(-z.pow(2).sum(1, keepdim=True))

    def cubic_tanh(z: Tensor) -> Tensor:
        return z.pow(3).sum(1) / 3 + torch.tanh(z @ w).sum(1)

    def cubic_tanh_grad(z: Tensor) -> Tensor:
        return z.pow(2) + (1 - torch.tanh(z @ w) ** 2) @ w.T

    return [
        ("2-D Gaussian vortex", vortex, rot, vortex_grad),
        ("3-D cubic + tanh", cubic_tanh, b - b.T, cubic_tanh_grad),
    ]


def _call(name: str, fn: Callable, *args) -> object:
    """Call the learner's function; a crash other than the exercise stub names the test case."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's code may fail in any way; say where
        fail(name, f"the function raised {type(exc).__name__}: {exc}")


def _autograd_divergence(field: Field, z: Tensor) -> Tensor:
    """Reference divergence by one reverse pass per dimension, ``(batch,)``."""
    z = z.detach().requires_grad_(True)
    v = field(z)
    total = torch.zeros(z.shape[0], dtype=z.dtype)
    for i in range(z.shape[1]):
        (g,) = torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)
        total = total + g[:, i]
    return total


def skew_gradient_field(
    fn: Callable[[Scalar, Tensor, Tensor], Tensor], n: int = 64, seed: int = 2
) -> None:
    """Check ``fn(psi, S, z) -> (batch, dim)``, the field ``S grad psi(z)``.

    Compared with closed-form values in 2-D and 3-D at ``n`` points in float64 (tolerance
    1e-8); then the divergence of the learner's field is measured by autograd, which needs the
    field to stay differentiable (``create_graph=True``), and must be below 1e-8.
    """
    name = "skew-gradient field"
    worst = worst_div = 0.0
    for label, psi, skew, grad_psi in known_skew_cases():
        case = f"{name} ({label})"
        dim = skew.shape[0]
        z = sample_points(n, dim, seed, scale=1.2, dtype=torch.float64)
        got = check_shape(case, _call(case, fn, psi, skew, z.clone()), (n, dim))
        expected = grad_psi(z) @ skew.T
        err = float((got.detach() - expected).abs().max())
        if err > TOL:
            if float((got.detach() + expected).abs().max()) <= TOL:
                fail(case, f"got -S grad psi = S^T grad psi (off by {err:.1e}); multiply by S")
            fail(case, f"field is off by {err:.1e}, tolerance {TOL:.0e}; expected S grad psi")
        worst = max(worst, err)

        def learner_field(x: Tensor, psi=psi, skew=skew) -> Tensor:
            return fn(psi, skew, x)

        try:
            div = _autograd_divergence(learner_field, z)
        except RuntimeError as exc:
            fail(
                case,
                f"the field cannot be differentiated again ({exc}); use create_graph=True and "
                "do not detach a z that already requires grad",
            )
        worst_div = max(worst_div, float(div.abs().max()))
        if worst_div > TOL:
            fail(case, f"divergence is {worst_div:.1e}, tolerance {TOL:.0e}")
    passed(
        name,
        f"2-D and 3-D, largest error {order_of(worst)}, "
        f"largest |divergence| {order_of(worst_div)}",
    )


def divergence(fn: Callable[[Field, Tensor], Tensor], n: int = 64, seed: int = 3) -> None:
    """Check ``fn(f, z) -> (batch,)``, the divergence of a field ``f`` at ``z`` (batch, dim).

    Compared with closed-form divergences of three fields (lecture 1's test fields) and of an
    exactly divergence-free skew-gradient field, at ``n`` points in float64; tolerance 1e-8.
    """
    name = "divergence"
    label, psi, skew, grad_psi = known_skew_cases()[1]
    cases = [
        *known_fields(),
        (f"S grad psi, {label}", 3, lambda z: grad_psi(z) @ skew.T, lambda z: z.new_zeros(len(z))),
    ]
    worst = 0.0
    for label, dim, field, exact in cases:
        case = f"{name} ({label})"
        z = sample_points(n, dim, seed, scale=1.2, dtype=torch.float64)
        got = check_shape(case, _call(case, fn, field, z.clone()), (n,))
        err = (got.detach() - exact(z)).abs()
        n_bad = int((err > TOL).sum())
        if n_bad:
            fail(
                case,
                f"divergence is off by {float(err.max()):.1e} at {n_bad} of {n} points, "
                f"tolerance {TOL:.0e}",
            )
        worst = max(worst, float(err.max()))
    passed(name, f"{len(cases)} fields, {len(cases) * n} points, largest error {order_of(worst)}")
