"""Integrate samples together with their log-densities, and check the continuity equation.

A field ``v(z, t)`` moves samples by ``dz/dt = v``; the log-density of the moved samples changes
by ``d log p / dt = -div v`` along each trajectory (instantaneous change of variables). For one
explicit step ``z' = z + h v(z)`` the exact change is ``-log|det(I + h dv/dz)|``.

Fields here are callables ``field(z, t) -> (batch, dim)``; a field with a ``divergence(z, t)``
method (every field in :mod:`tutorial_lib.fields`) supplies its own exact divergence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from . import calculus
from ._validate import check_batch, check_finite, check_points, check_positive_int

__all__ = [
    "FlowStepError",
    "Trajectory",
    "continuity_residual",
    "euler_logdet_step",
    "gaussian_log_density",
    "grid_2d",
    "integrate",
    "linear_flow_gaussian",
]

TimeField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("euler_logdet", "euler", "rk4", "adaptive")


class FlowStepError(RuntimeError):
    """An explicit step ``z + h v(z)`` is not invertible at some points (``det(I + hJ) <= 0``)."""


class Trajectory(NamedTuple):
    """Samples and log-densities at every time of an integration.

    Attributes:
        z: ``(steps + 1, batch, dim)``.
        log_density: ``(steps + 1, batch)``, or ``None`` when only positions were asked for.
        t: ``(steps + 1,)``.
    """

    z: torch.Tensor
    log_density: torch.Tensor | None
    t: torch.Tensor


def _velocity(field: TimeField, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    v = field(z, t)
    if not isinstance(v, torch.Tensor) or v.shape != z.shape:
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"expected the field to return shape {tuple(z.shape)}, got {shape}")
    return v


def _divergence(
    field: TimeField,
    z: torch.Tensor,
    t: torch.Tensor,
    how: str,
    n_probes: int,
    generator: torch.Generator | None,
    create_graph: bool,
) -> torch.Tensor:
    if how == "exact":
        own = getattr(field, "divergence", None)
        if callable(own):
            return own(z, t)
        return calculus.divergence(lambda x: field(x, t), z, create_graph=create_graph)
    if how == "hutchinson":
        est = calculus.divergence_hutchinson(
            lambda x: field(x, t), z, n_probes, generator=generator, create_graph=create_graph
        )
        return est.estimate
    raise ValueError(f"expected divergence 'exact' or 'hutchinson', got {how!r}")


def euler_logdet_step(
    field: TimeField,
    z: torch.Tensor,
    log_p: torch.Tensor,
    h: float,
    t: float | torch.Tensor = 0.0,
    create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step with the exact change of log-density.

    ``z' = z + h v(z, t)`` and ``log p'(z') = log p(z) - log|det(I + h J(z))|``.

    Args:
        field: ``field(z, t) -> (batch, dim)``.
        z: points, ``(batch, dim)``.
        log_p: their log-densities, ``(batch,)``.
        h: step size.
        t: time of the step.
        create_graph: keep the graph (for training through the step).

    Returns:
        ``(z', log p')`` with shapes ``(batch, dim)`` and ``(batch,)``.

    Raises:
        FlowStepError: where ``det(I + hJ) <= 0`` the step folds space over itself and no
            log-density exists; the message gives how many points and the smallest determinant.
    """
    check_points(z, "z")
    _check_log_p(z, log_p)
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    with torch.enable_grad():
        zz = z if z.requires_grad else z.detach().requires_grad_(True)
        v = _velocity(field, zz, t)
        jac = calculus.jacobian(lambda x: field(x, t), zz, create_graph=create_graph)
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    sign, logabsdet = torch.linalg.slogdet(eye + h * jac)
    bad = sign <= 0
    if bool(bad.any()):
        det = sign * logabsdet.exp()
        raise FlowStepError(
            f"expected det(I + h J) > 0 for an invertible step, got det <= 0 at {int(bad.sum())} "
            f"of {z.shape[0]} points (smallest {det.min().item():.3g}, h = {h}); "
            "take smaller steps"
        )
    if not create_graph:
        v, logabsdet = v.detach(), logabsdet.detach()
    return z + h * v, log_p - logabsdet


def _check_log_p(z: torch.Tensor, log_p: torch.Tensor) -> None:
    if not isinstance(log_p, torch.Tensor) or log_p.dim() != 1:
        shape = tuple(log_p.shape) if isinstance(log_p, torch.Tensor) else type(log_p).__name__
        raise ValueError(f"expected log_p of shape ({z.shape[0]},), got {shape}")
    check_batch(z, log_p, "z", "log_p")
    check_finite(log_p, "log_p")


def integrate(
    field: TimeField,
    z0: torch.Tensor,
    log_p0: torch.Tensor | None,
    t0: float = 0.0,
    t1: float = 1.0,
    n_steps: int = 10,
    method: str = "rk4",
    divergence: str = "exact",
    n_probes: int = 1,
    generator: torch.Generator | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    create_graph: bool = False,
) -> Trajectory:
    """Move samples and their log-densities from ``t0`` to ``t1``.

    Methods:
        ``"euler_logdet"``: Euler steps with the exact ``log|det(I + hJ)|``; the density is
        exact for the map actually applied, which differs from the flow by O(h) per unit time.
        ``"euler"``: Euler on the augmented system ``(z, log p)`` with ``-div v``.
        ``"rk4"``: classical Runge-Kutta on the augmented system.
        ``"adaptive"``: torchdiffeq's dopri5 on the augmented system with ``rtol``/``atol``;
        the output is reported at ``n_steps + 1`` equally spaced times.

    Args:
        field: ``field(z, t) -> (batch, dim)``.
        z0: initial points, ``(batch, dim)``.
        log_p0: their log-densities, ``(batch,)``, or ``None`` to move the points only: then
            no divergence is computed, ``"euler_logdet"`` takes plain Euler steps, and the
            trajectory's ``log_density`` is ``None``.
        divergence: ``"exact"`` or ``"hutchinson"`` (not for ``"euler_logdet"``).
        n_probes, generator: Hutchinson probes.
        create_graph: keep the graph through all steps (for training).

    Returns:
        A :class:`Trajectory` with ``n_steps + 1`` entries.
    """
    check_points(z0, "z0")
    track = log_p0 is not None
    if track:
        _check_log_p(z0, log_p0)
    else:
        log_p0 = z0.new_zeros(z0.shape[0])
        method = "euler" if method == "euler_logdet" else method
    check_positive_int(n_steps, "n_steps")
    if method not in METHODS:
        raise ValueError(f"expected method in {METHODS}, got {method!r}")
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"expected finite t0 and t1, got {t0} and {t1}")
    times = torch.linspace(t0, t1, n_steps + 1, dtype=z0.dtype, device=z0.device)
    h = (t1 - t0) / n_steps

    def augmented(t: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            zz = z if z.requires_grad else z.detach().requires_grad_(True)
            v = _velocity(field, zz, t)
            if track:
                div = _divergence(field, zz, t, divergence, n_probes, generator, create_graph)
            else:
                div = torch.zeros_like(zz[:, 0])
        if not create_graph:
            v, div = v.detach(), div.detach()
        return v, -div

    zs, lps = [z0], [log_p0]
    if method == "adaptive":
        import torchdiffeq

        def rhs(t, state):
            return augmented(t, state[0])

        z_all, lp_all = torchdiffeq.odeint(
            rhs, (z0, log_p0), times, rtol=rtol, atol=atol, method="dopri5"
        )
        return Trajectory(z_all, lp_all if track else None, times)

    z, lp = z0, log_p0
    for i in range(n_steps):
        t = times[i]
        if method == "euler_logdet":
            z, lp = euler_logdet_step(field, z, lp, h, t, create_graph=create_graph)
        elif method == "euler":
            v, dlp = augmented(t, z)
            z, lp = z + h * v, lp + h * dlp
        else:
            k1 = augmented(t, z)
            k2 = augmented(t + h / 2, z + h / 2 * k1[0])
            k3 = augmented(t + h / 2, z + h / 2 * k2[0])
            k4 = augmented(t + h, z + h * k3[0])
            z = z + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            lp = lp + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        zs.append(z)
        lps.append(lp)
    return Trajectory(torch.stack(zs), torch.stack(lps) if track else None, times)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Log-density of ``N(mean, cov)`` at ``z``.

    Args:
        z: ``(batch, dim)``; mean: ``(dim,)``; cov: ``(dim, dim)``.

    Returns:
        ``(batch,)``.
    """
    check_points(z, "z", mean.shape[0])
    chol = torch.linalg.cholesky(cov)
    diff = (z - mean).unsqueeze(-1)
    sol = torch.linalg.solve_triangular(chol, diff, upper=False).squeeze(-1)
    dim = z.shape[1]
    logdet = 2 * torch.log(torch.diagonal(chol)).sum()
    return -0.5 * (sol.pow(2).sum(1) + logdet + dim * math.log(2 * math.pi))


def linear_flow_gaussian(
    a: torch.Tensor, mean0: torch.Tensor, cov0: torch.Tensor, t: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact law of ``z(t)`` for ``dz/dt = A z`` started from ``N(mean0, cov0)``.

    The flow map is ``exp(tA)``, so ``z(t) ~ N(exp(tA) mean0, exp(tA) cov0 exp(tA)^T)`` and along
    each trajectory ``log p_t(z(t)) = log p_0(z(0)) - t tr(A)``.

    Returns:
        ``(mean_t (dim,), cov_t (dim, dim))``.
    """
    m = torch.linalg.matrix_exp(t * a)
    return m @ mean0, m @ cov0 @ m.T


def continuity_residual(
    log_density: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    field: TimeField,
    z: torch.Tensor,
    t: float | torch.Tensor,
) -> torch.Tensor:
    """Residual of the continuity equation ``dp/dt + div(p v)`` at points ``z`` and time ``t``.

    Computed by automatic differentiation as ``dp/dt + grad p . v + p div v``.

    Args:
        log_density: ``log_density(z, t) -> (batch,)`` with ``t`` of shape ``(batch,)``.
        field: ``field(z, t) -> (batch, dim)``.
        z: ``(batch, dim)``.
        t: a time.

    Returns:
        ``(batch,)``; zero where the density is carried by the field.
    """
    check_points(z, "z")
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        tt = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(z.shape[0]).clone()
        tt.requires_grad_(True)
        p = log_density(zz, tt).exp()
        dp_dz, dp_dt = torch.autograd.grad(p.sum(), (zz, tt), allow_unused=True)
        if dp_dt is None:  # a density that does not depend on time
            dp_dt = torch.zeros_like(tt)
        v = _velocity(field, zz, tt)
        div = _divergence(field, zz, tt, "exact", 1, None, create_graph=False)
    return (dp_dt + (dp_dz * v).sum(1) + p * div).detach()


def grid_2d(
    lim: float = 3.0, n: int = 64, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A square grid on ``[-lim, lim]^2``.

    Returns:
        ``points (n * n, 2)`` and the meshgrid arrays ``X, Y`` of shape ``(n, n)``.
    """
    check_positive_int(n, "n")
    axis = torch.linspace(-lim, lim, n, dtype=dtype)
    x, y = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1), x, y
