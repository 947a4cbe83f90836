"""Checks for lecture 2, curl-free fields: a potential's gradient and the Hamilton-Jacobi residual.

Both checks call the learner's function on potentials whose answers are known in closed form
and print ``PASS ...`` or raise an AssertionError with the measured numbers and the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from . import check_shape, fail, order_of, passed, sample_points

__all__ = ["hj_residual", "known_potentials", "known_time_potentials", "potential_gradient"]

Potential = Callable[[Tensor], Tensor]
TimePotential = Callable[[Tensor, Tensor], Tensor]
TOL = 1e-8


def known_potentials() -> list[tuple[str, int, Potential, Callable[[Tensor], Tensor]]]:
    """Potentials with known gradient: ``(name, dim, u, grad_u)``.

    Each ``u`` maps ``(batch, dim) -> (batch,)``; each ``grad_u`` ``(batch, dim) -> (batch, dim)``.
    """
    a = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    w = torch.tensor([0.7, -1.2, 0.4], dtype=torch.float64)

    def quadratic(z: Tensor) -> Tensor:
        return 0.5 * ((z @ a) * z).sum(1)

    def wells(z: Tensor) -> Tensor:
        return 0.1 * z.pow(2).sum(1) - torch.exp(-(z - 1).pow(2).sum(1))

    def wells_grad(z: Tensor) -> Tensor:
        return 0.2 * z + 2 * (z - 1) * torch.exp(-(z - 1).pow(2).sum(1, keepdim=True))

    def log_cosh_3d(z: Tensor) -> Tensor:
        return torch.log(torch.cosh(z @ w)) + z[:, 0] * z[:, 2]

    def log_cosh_3d_grad(z: Tensor) -> Tensor:
        g = torch.tanh(z @ w)[:, None] * w
        return g + torch.stack([z[:, 2], torch.zeros_like(z[:, 0]), z[:, 0]], dim=1)

    return [
        ("quadratic 2-D potential", 2, quadratic, lambda z: z @ a),
        ("two-well 2-D potential", 2, wells, wells_grad),
        ("log-cosh 3-D potential", 3, log_cosh_3d, log_cosh_3d_grad),
    ]


def known_time_potentials() -> list[tuple[str, TimePotential, Callable[[Tensor, Tensor], Tensor]]]:
    """Time-dependent 2-D potentials with known residual: ``(name, u, residual)``.

    ``u(z, s)`` maps ``(batch, 2)`` and ``(batch,)`` to ``(batch,)``; ``residual(z, s)`` is
    ``du/ds + 0.5 |grad_z u|^2`` in closed form, ``(batch,)``.
    """

    def solution(z: Tensor, s: Tensor) -> Tensor:
        return z.pow(2).sum(1) / (2 * (1 + s))

    def mixed(z: Tensor, s: Tensor) -> Tensor:
        return s * z[:, 0] ** 2 + torch.cos(s) * z[:, 1]

    def mixed_residual(z: Tensor, s: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        return x**2 - torch.sin(s) * y + 0.5 * (4 * s**2 * x**2 + torch.cos(s) ** 2)

    return [
        ("exact solution |z|^2 / (2 (1 + s))", solution, lambda z, s: torch.zeros_like(s)),
        ("u = s z1^2 + cos(s) z2", mixed, mixed_residual),
    ]


def _call(name: str, fn: Callable, *args) -> object:
    """Call the learner's function; a crash other than the exercise stub names the test case."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's code may fail in any way; say where
        fail(name, f"the function raised {type(exc).__name__}: {exc}")


def potential_gradient(
    fn: Callable[[Potential, Tensor], Tensor], n: int = 64, seed: int = 0
) -> None:
    """Check ``fn(u, z) -> (batch, dim)``, the gradient of the potential ``u`` at ``z``.

    Compared with closed-form gradients of three potentials at ``n`` points in float64;
    tolerance 1e-8.
    """
    name = "potential gradient"
    worst = 0.0
    for label, dim, u, grad_u in known_potentials():
        case = f"{name} ({label})"
        z = sample_points(n, dim, seed, scale=1.5, dtype=torch.float64)
        got = check_shape(case, _call(case, fn, u, z.clone()), (n, dim))
        err = (got.detach() - grad_u(z)).abs().max(dim=1).values
        n_bad = int((err > TOL).sum())
        if n_bad:
            fail(
                case,
                f"gradient is off by {float(err.max()):.1e} at {n_bad} of {n} points, "
                f"tolerance {TOL:.0e}",
            )
        worst = max(worst, float(err.max()))
    passed(name, f"3 potentials, {3 * n} points, largest error {order_of(worst)}")


def hj_residual(
    fn: Callable[[TimePotential, Tensor, Tensor], Tensor], n: int = 64, seed: int = 1
) -> None:
    """Check ``fn(u, z, s) -> (batch,)``: ``du/ds + 0.5 |grad_z u|^2`` at each ``(z_i, s_i)``.

    Every point has its own time ``s_i``; the answer is compared with closed-form residuals
    in float64 (tolerance 1e-8). The result must also carry gradients to a network's
    parameters, so that it can be used as a training loss.
    """
    name = "Hamilton-Jacobi residual"
    worst = 0.0
    z = sample_points(n, 2, seed, scale=1.5, dtype=torch.float64)
    s = torch.linspace(0.05, 0.95, n, dtype=torch.float64)
    for label, u, exact in known_time_potentials():
        case = f"{name} ({label})"
        got = check_shape(case, _call(case, fn, u, z.clone(), s.clone()), (n,))
        err = (got.detach() - exact(z, s)).abs()
        n_bad = int((err > TOL).sum())
        if n_bad:
            fail(
                case,
                f"residual is off by {float(err.max()):.1e} at {n_bad} of {n} points, "
                f"tolerance {TOL:.0e}; differentiate u with respect to the tensor s itself, "
                "which holds one time per sample",
            )
        worst = max(worst, float(err.max()))

    with torch.random.fork_rng(devices=[]):  # leave the notebook's random state untouched
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()

    def network(zz: Tensor, ss: Tensor) -> Tensor:
        return net(torch.cat([zz, ss[:, None]], dim=1))[:, 0]

    case = f"{name} (trainable)"
    got = check_shape(case, _call(case, fn, network, z.clone(), s.clone()), (n,))
    if not got.requires_grad:
        fail(case, "the residual carries no gradient; use create_graph=True in autograd.grad")
    got.pow(2).mean().backward()
    weights = [p for p in net.parameters() if p.dim() == 2]
    missing = sum(p.grad is None or not bool(p.grad.abs().sum() > 0) for p in weights)
    if missing:
        fail(case, f"{missing} of {len(weights)} weight matrices received no gradient")
    passed(name, f"2 potentials, {n} points with their own times, largest error {order_of(worst)}")
