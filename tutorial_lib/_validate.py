"""Input checks shared by the library: errors name what was expected and what arrived."""

from __future__ import annotations

import torch


def check_points(z: object, name: str = "z", dim: int | None = None) -> torch.Tensor:
    """Check that ``z`` is a finite floating tensor of shape ``(batch, dim)``.

    Args:
        z: the object to check.
        name: the argument's name, used in the error message.
        dim: the required trailing dimension, or ``None`` for any.

    Returns:
        ``z`` unchanged.
    """
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor, got {type(z).__name__}")
    want = f"(batch, {dim})" if dim is not None else "(batch, dim)"
    if z.dim() != 2:
        raise ValueError(f"expected {name} of shape {want}, got {tuple(z.shape)}")
    if dim is not None and z.shape[1] != dim:
        raise ValueError(f"expected {name} of shape {want}, got {tuple(z.shape)}")
    if not z.is_floating_point():
        raise TypeError(f"expected {name} to be a floating-point tensor, got dtype {z.dtype}")
    check_finite(z, name)
    return z


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` when ``x`` holds NaN or infinite values, counting them."""
    bad = ~torch.isfinite(x.detach())
    if bool(bad.any()):
        raise ValueError(
            f"expected finite values in {name}, got {int(bad.sum())} non-finite "
            f"of {x.numel()} entries"
        )
    return x


def check_batch(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` when two tensors disagree on their first (batch) dimension."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"expected {name_b} to have batch size {a.shape[0]} like {name_a}, "
            f"got {name_b} of shape {tuple(b.shape)}"
        )


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is a positive ``int``, else raise naming what arrived."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected {name} to be a positive integer, got {value!r}")
    return value
