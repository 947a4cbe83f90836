"""Checks for lecture 4, Helmholtz decomposition: the field ``grad u + S grad psi`` and a fit.

``helmholtz_field`` calls the learner's ``fn(u, psi, z)`` on potentials and stream functions
whose gradients are known in closed form; ``recovered_parts`` measures how well a fitted pair
of networks reproduces both parts of the lecture's test field. Each prints ``PASS ...`` or
raises an AssertionError with the measured numbers and the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import check_shape, fail, order_of, passed, sample_points

__all__ = ["test_potentials", "helmholtz_field", "recovered_parts"]

Scalar = Callable[[Tensor], Tensor]
HelmholtzFn = Callable[[Scalar, Scalar, Tensor], Tensor]
TOL = 1e-8


def _bump(z: Tensor, centre: tuple[float, float], width: float) -> Tensor:
    c = torch.tensor(centre, dtype=z.dtype, device=z.device)
    return torch.exp(-((z - c) ** 2).sum(1) / width)


def test_potentials() -> tuple[Scalar, Scalar]:
    """The lecture's test field as ``(u, psi)``, each ``(batch, 2) -> (batch,)``.

    Both are sums of two Gaussian bumps, so both parts of ``grad u + S grad psi`` fade towards
    the edge of the box ``[-3, 3]^2``.
    """

    def u(z: Tensor) -> Tensor:
        return 1.5 * _bump(z, (-1.0, 0.5), 1.0) - _bump(z, (1.2, -0.8), 1.5)

    def psi(z: Tensor) -> Tensor:
        return 2.0 * _bump(z, (0.8, 0.8), 1.2) - _bump(z, (-0.8, -1.0), 0.8)

    return u, psi


def _zero(z: Tensor) -> Tensor:
    return (z * 0.0).sum(1)


def _cases() -> list[tuple[str, Scalar, Scalar, Callable[[Tensor], Tensor]]]:
    """``(name, u, psi, expected field)`` with the expected field in closed form."""

    def u_poly(z: Tensor) -> Tensor:
        return z[:, 0] ** 2 * z[:, 1] + 0.5 * z[:, 1] ** 2

    def psi_trig(z: Tensor) -> Tensor:
        return torch.sin(z[:, 0]) * torch.cos(2 * z[:, 1])

    def expected(z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        grad_u = torch.stack([2 * x * y, x**2 + y], dim=1)
        grad_psi = torch.stack(
            [torch.cos(x) * torch.cos(2 * y), -2 * torch.sin(x) * torch.sin(2 * y)], 1
        )
        return grad_u + torch.stack([grad_psi[:, 1], -grad_psi[:, 0]], dim=1)

    def only_u(z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        return torch.stack([2 * x * y, x**2 + y], dim=1)

    def only_psi(z: Tensor) -> Tensor:
        x, y = z[:, 0], z[:, 1]
        return torch.stack(
            [-2 * torch.sin(x) * torch.sin(2 * y), -torch.cos(x) * torch.cos(2 * y)], 1
        )

    return [
        ("u and psi together", u_poly, psi_trig, expected),
        ("u alone (psi = 0)", u_poly, _zero, only_u),
        ("psi alone (u = 0)", _zero, psi_trig, only_psi),
    ]


def _call(name: str, fn: HelmholtzFn, u: Scalar, psi: Scalar, z: Tensor) -> Tensor:
    try:
        return fn(u, psi, z)
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's code crashed: say on which case
        fail(
            "helmholtz field", f"{name}: calling your function raised {type(exc).__name__}: {exc}"
        )
        raise


def helmholtz_field(fn: HelmholtzFn) -> None:
    """Check ``fn(u, psi, z) -> grad u + S grad psi`` with ``S g = (g_2, -g_1)``.

    Args:
        fn: takes two scalar functions ``(batch, 2) -> (batch,)`` and points ``z (batch, 2)``;
            returns the velocity ``(batch, 2)``, differentiable with respect to parameters
            inside ``u`` and ``psi`` (so that it can be trained).
    """
    z = sample_points(64, 2, seed=4, dtype=torch.float64)
    worst = 0.0
    for name, u, psi, expected in _cases():
        got = check_shape("helmholtz field", _call(name, fn, u, psi, z.clone()), (64, 2))
        err = (got.detach() - expected(z)).abs()
        bad = int((err > TOL).any(1).sum())
        if bad:
            fail(
                "helmholtz field",
                f"{name}: error is {err.max().item():.1e} at {bad} of 64 points, "
                f"tolerance {TOL:.0e} (expected grad u + (d psi/d z2, -d psi/d z1))",
            )
        worst = max(worst, err.max().item())

    # Trainable: the velocity must depend on parameters inside u through the gradient.
    weight = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    u_param = lambda x: weight * (x**2).sum(1)  # noqa: E731
    v = _call("parametrised u", fn, u_param, _zero, z.clone())
    if not v.requires_grad:
        fail(
            "helmholtz field",
            "the velocity carries no gradient to the potential's parameters "
            "(take the gradient with create_graph=True)",
        )
    (d_weight,) = torch.autograd.grad((v * z).sum(), weight, allow_unused=True)
    expected_grad = 2 * (z**2).sum()
    if d_weight is None or abs(d_weight.item() - expected_grad.item()) > 1e-6 * expected_grad:
        got = "none" if d_weight is None else f"{d_weight.item():.4f}"
        fail(
            "helmholtz field",
            f"gradient with respect to a parameter of u is {got}, expected "
            f"{expected_grad.item():.4f}",
        )
    passed(
        "helmholtz field",
        f"largest error {order_of(worst)} over 3 cases x 64 points (tolerance {TOL:.0e}); "
        "gradients reach the parameters",
    )


def recovered_parts(
    fn: HelmholtzFn, u_net: Scalar, psi_net: Scalar, tol: float = 0.25, box: float = 3.0
) -> dict[str, float]:
    """Relative L2 errors of both recovered parts of the lecture's test field on a grid.

    Args:
        fn: the learner's ``fn(u, psi, z)``.
        u_net, psi_net: the fitted potential and stream function, ``(batch, 2) -> (batch,)``.
        tol: largest accepted relative error of each part.
        box: half-width of the square grid.

    Returns:
        ``{"curl-free": error, "divergence-free": error}``.
    """
    u_true, psi_true = test_potentials()
    axis = torch.linspace(-box, box, 40)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    z = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    errors = {}
    for name, (u_fit, psi_fit, u_ref, psi_ref) in {
        "curl-free": (u_net, _zero, u_true, _zero),
        "divergence-free": (_zero, psi_net, _zero, psi_true),
    }.items():
        got = fn(u_fit, psi_fit, z.clone()).detach()
        ref = fn(u_ref, psi_ref, z.clone()).detach()
        errors[name] = ((got - ref).norm() / ref.norm()).item()
    bad = {k: v for k, v in errors.items() if v > tol}
    shown = ", ".join(f"{k} {v:.2f}" for k, v in errors.items())
    if bad:
        fail("recovered parts", f"relative errors {shown}, tolerance {tol:.2f}")
    passed("recovered parts", f"relative errors {shown} (tolerance {tol:.2f})")
    return errors
