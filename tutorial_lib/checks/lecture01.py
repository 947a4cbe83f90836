"""Checks for lecture 1, probability flows: a divergence by autograd and one flow step.

Both checks call the learner's function on fields whose answers are known in closed form and
print ``PASS ...`` or raise an AssertionError with the measured numbers and the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from . import check_shape, fail, order_of, passed, sample_points

__all__ = ["divergence", "step_log_density", "known_fields"]

Field = Callable[[Tensor], Tensor]
TOL = 1e-8


def _linear(a: Tensor) -> Field:
    return lambda z: z @ a.T


def known_fields() -> list[tuple[str, int, Field, Callable[[Tensor], Tensor]]]:
    """Fields with known divergence: ``(name, dim, field, divergence)``.

    Each field maps ``(batch, dim) -> (batch, dim)``; each divergence ``(batch, dim) -> (batch,)``.
    """
    a = torch.tensor([[0.4, -1.0], [1.0, -0.8]], dtype=torch.float64)
    w = torch.tensor([[0.9, -0.3, 0.2], [0.5, -1.1, 0.4], [-0.2, 0.7, 0.6]], dtype=torch.float64)

    def polynomial(z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        return torch.stack([x**2 * y - y, torch.sin(x) + y**3 / 3], dim=1)

    def polynomial_div(z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        return 2 * x * y + y**2

    def tanh_3d(z: Tensor) -> Tensor:
        return torch.tanh(z @ w.T)

    def tanh_3d_div(z: Tensor) -> Tensor:
        return ((1 - torch.tanh(z @ w.T) ** 2) * torch.diagonal(w)).sum(1)

    return [
        ("linear 2-D field", 2, _linear(a), lambda z: torch.full_like(z[:, 0], float(a.trace()))),
        ("polynomial 2-D field", 2, polynomial, polynomial_div),
        ("tanh 3-D field", 3, tanh_3d, tanh_3d_div),
    ]


def _call(name: str, fn: Callable, *args) -> object:
    """Call the learner's function; a crash other than the exercise stub names the test case."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's code may fail in any way; say where
        fail(name, f"the function raised {type(exc).__name__}: {exc}")


def divergence(fn: Callable[[Field, Tensor], Tensor], n: int = 64, seed: int = 0) -> None:
    """Check ``fn(f, z) -> (batch,)``, the divergence of ``f`` at ``z`` of shape (batch, dim).

    Compared with closed-form divergences of a linear, a polynomial and a 3-D tanh field at
    ``n`` points in float64; tolerance 1e-8.
    """
    name = "divergence"
    worst = 0.0
    total = 0
    for label, dim, field, exact in known_fields():
        z = sample_points(n, dim, seed, scale=1.5, dtype=torch.float64)
        got = _call(f"{name} ({label})", fn, field, z.clone())
        got = check_shape(f"{name} ({label})", got, (n,))
        err = (got.detach() - exact(z)).abs()
        n_bad = int((err > TOL).sum())
        if n_bad:
            fail(
                f"{name} ({label})",
                f"divergence is off by {float(err.max()):.1e} at {n_bad} of {n} points, "
                f"tolerance {TOL:.0e}",
            )
        worst = max(worst, float(err.max()))
        total += n
    passed(name, f"3 fields, {total} points, largest error {order_of(worst)}")


def _reference_step(field: Field, z: Tensor, log_p: Tensor, h: float) -> tuple[Tensor, Tensor]:
    """``z + h v(z)`` and ``log p - log|det(I + h J)|`` with the Jacobian from torch.func."""
    jac = torch.func.vmap(torch.func.jacrev(lambda x: field(x[None])[0]))(z)
    eye = torch.eye(z.shape[1], dtype=z.dtype)
    _, logabsdet = torch.linalg.slogdet(eye + h * jac)
    return z + h * field(z), log_p - logabsdet


def step_log_density(
    fn: Callable[[Field, Tensor, Tensor, float], tuple[Tensor, Tensor]],
    n: int = 64,
    seed: int = 1,
    h: float = 0.3,
) -> None:
    """Check ``fn(f, z, log_p, h) -> (z_next, log_p_next)``: one Euler step with exact log-det.

    ``z_next = z + h f(z)`` and ``log_p_next = log_p - log|det(I + h df/dz)|``, compared on the
    three test fields at ``n`` points, step ``h``, in float64; tolerance 1e-8. A first-order
    answer ``log_p - h div f`` is recognised and named.
    """
    name = "flow step"
    worst = 0.0
    for label, dim, field, exact_div in known_fields():
        case = f"{name} ({label})"
        z = sample_points(n, dim, seed, scale=1.0, dtype=torch.float64)
        log_p = -0.5 * (z**2).sum(1) - 0.5 * dim * math.log(2 * math.pi)
        out = _call(case, fn, field, z.clone(), log_p.clone(), h)
        if not isinstance(out, tuple | list) or len(out) != 2:
            fail(case, f"expected a pair (z_next, log_p_next), got {type(out).__name__}")
        z_next = check_shape(f"{case}: z_next", out[0], (n, dim))
        lp_next = check_shape(f"{case}: log_p_next", out[1], (n,))
        ref_z, ref_lp = _reference_step(field, z, log_p, h)
        err_z = float((z_next.detach() - ref_z).abs().max())
        if err_z > TOL:
            fail(case, f"z_next is off by {err_z:.1e}, tolerance {TOL:.0e}; expected z + h f(z)")
        err = (lp_next.detach() - ref_lp).abs()
        n_bad = int((err > TOL).sum())
        if n_bad:
            first_order = log_p - h * exact_div(z)
            if float((lp_next.detach() - first_order).abs().max()) < TOL:
                fail(
                    case,
                    f"log_p_next equals log_p - h div f, which is off by {float(err.max()):.1e} "
                    f"(tolerance {TOL:.0e}); use log|det(I + h J)|, not its first-order term",
                )
            fail(
                case,
                f"log_p_next is off by {float(err.max()):.1e} at {n_bad} of {n} points, "
                f"tolerance {TOL:.0e}",
            )
        worst = max(worst, err_z, float(err.max()))
    passed(name, f"3 fields, step {h}, largest error {order_of(worst)}")
