"""An explorer of mixed fields: a curl-free part plus a divergence-free part, and their flow.

:func:`draw_mixed_field` draws one setting (field type, mixing weights, time) on a matplotlib
axis; :func:`static_explorer_figure` draws a fixed grid of settings, the figure shown wherever
widgets cannot render (a stored notebook on GitHub, a validation run); :func:`helmholtz_explorer`
wraps the same drawing in ipywidgets sliders for a live kernel.

Each field type is a pair of analytic 2-D fields ``(curl_free, div_free)``, both mapping points
``(batch, 2)`` to velocities ``(batch, 2)``; the explorer shows
``v = w_curl * curl_free + w_div * div_free`` and carries a square of particles along ``v`` for
the chosen time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch

from . import calculus, flows

__all__ = [
    "FIELD_TYPES",
    "mixed_field",
    "draw_mixed_field",
    "static_explorer_figure",
    "helmholtz_explorer",
]

logger = logging.getLogger(__name__)

Field = Callable[[torch.Tensor], torch.Tensor]


def _bump(z: torch.Tensor, centre: tuple[float, float], width: float) -> torch.Tensor:
    c = torch.tensor(centre, dtype=z.dtype, device=z.device)
    return torch.exp(-((z - c) ** 2).sum(1) / width)


def _skew_gradient(psi: Callable[[torch.Tensor], torch.Tensor]) -> Field:
    """``S grad psi = (d psi/d z2, -d psi/d z1)`` of a scalar function ``psi``."""

    def field(z: torch.Tensor) -> torch.Tensor:
        g = calculus.gradient(psi, z, create_graph=True)
        return torch.stack([g[:, 1], -g[:, 0]], dim=1)

    return field


def _gradient(u: Callable[[torch.Tensor], torch.Tensor]) -> Field:
    return lambda z: calculus.gradient(u, z, create_graph=True)


def _source(z: torch.Tensor) -> torch.Tensor:
    return z / (1.0 + (z**2).sum(1, keepdim=True))


def _vortex(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([-z[:, 1], z[:, 0]], dim=1) / (1.0 + (z**2).sum(1, keepdim=True))


def _saddle(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.stack([z[:, 0], -z[:, 1]], dim=1)


FIELD_TYPES: dict[str, tuple[Field, Field]] = {
    "bumps": (
        _gradient(lambda z: 1.5 * _bump(z, (-1.0, 0.5), 1.0) - _bump(z, (1.2, -0.8), 1.5)),
        _skew_gradient(lambda z: 2.0 * _bump(z, (0.8, 0.8), 1.2) - _bump(z, (-0.8, -1.0), 0.8)),
    ),
    "source + vortex": (_source, _vortex),
    "linear": (lambda z: 0.4 * z, lambda z: 0.6 * torch.stack([-z[:, 1], z[:, 0]], dim=1)),
    "harmonic saddle": (
        _gradient(lambda z: 0.25 * (z[:, 0] ** 2 - z[:, 1] ** 2)),
        _skew_gradient(lambda z: 0.5 * z[:, 0] * z[:, 1]),
    ),
}
"""Field types: name -> (curl-free part, divergence-free part), each ``(batch, 2) -> (batch, 2)``.

In ``"harmonic saddle"`` both parts are the same field ``(z1, -z2) / 2``: the gradient of the
harmonic ``(z1^2 - z2^2) / 4`` equals the skew gradient of ``z1 z2 / 2``."""


def _tidy(x: torch.Tensor) -> float:
    """A scalar rounded to two decimals, without a negative zero."""
    return round(float(x), 2) + 0.0


def mixed_field(field_type: str, w_curl: float, w_div: float) -> Field:
    """The field ``w_curl * curl_free + w_div * div_free`` of one field type.

    Args:
        field_type: a key of :data:`FIELD_TYPES`.
        w_curl, w_div: mixing weights of the two parts.

    Returns:
        A callable ``field(z, t=None) -> (batch, 2)``.
    """
    if field_type not in FIELD_TYPES:
        raise ValueError(f"expected field_type in {sorted(FIELD_TYPES)}, got {field_type!r}")
    curl_free, div_free = FIELD_TYPES[field_type]

    def field(z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        return w_curl * curl_free(z) + w_div * div_free(z)

    return field


def draw_mixed_field(
    field_type: str = "bumps",
    w_curl: float = 1.0,
    w_div: float = 1.0,
    time: float = 1.0,
    ax: plt.Axes | None = None,
    lim: float = 2.5,
    n_steps: int = 12,
) -> plt.Axes:
    """Draw the mixed field as arrows and a square of particles carried along it for ``time``.

    Args:
        field_type: a key of :data:`FIELD_TYPES`.
        w_curl, w_div: mixing weights of the curl-free and the divergence-free part.
        time: how long the particles flow (0 shows them at their start).
        ax: axis to draw on (a new figure when None).
        lim: half-width of the square shown.
        n_steps: RK4 steps for the particles.

    Returns:
        The axis drawn on.
    """
    if time < 0:
        raise ValueError(f"expected a non-negative time, got {time!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4), dpi=80)
    field = mixed_field(field_type, w_curl, w_div)
    grid, gx, gy = flows.grid_2d(lim=lim, n=13)
    v = field(grid).detach()
    ax.quiver(gx, gy, v[:, 0].reshape(gx.shape), v[:, 1].reshape(gx.shape), color="0.6")

    axis = torch.linspace(-1.0, 1.0, 9)
    px, py = torch.meshgrid(axis, axis, indexing="xy")
    start = torch.stack([px.reshape(-1), py.reshape(-1)], dim=1)
    end = start
    if time > 0:
        traj = flows.integrate(field, start, torch.zeros(len(start)), 0.0, time, n_steps)
        end = traj.z[-1].detach()
    ax.scatter(start[:, 0], start[:, 1], s=6, color="tab:blue", alpha=0.4, label="start")
    ax.scatter(end[:, 0], end[:, 1], s=8, color="tab:red", label=f"t = {time:g}")
    div = calculus.divergence(field, grid).detach()
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="$z_1$", ylabel="$z_2$")
    ax.set_title(
        f"{field_type}: {w_curl:g} curl-free + {w_div:g} div-free\n"
        f"divergence in [{_tidy(div.min()):.2f}, {_tidy(div.max()):.2f}]",
        fontsize=9,
    )
    ax.set_aspect("equal")
    ax.legend(loc="lower left", fontsize=7)
    return ax


def static_explorer_figure(
    settings: list[tuple[str, float, float, float]] | None = None, dpi: int = 70
) -> plt.Figure:
    """A fixed grid of explorer settings, for places where widgets cannot render.

    Args:
        settings: ``(field_type, w_curl, w_div, time)`` per panel; by default each field type
            with its curl-free part only, its divergence-free part only, and both.
        dpi: figure resolution.

    Returns:
        The figure (not shown; call ``plt.show()``).
    """
    if settings is None:
        settings = [
            (name, wc, wd, 1.0)
            for name in FIELD_TYPES
            for wc, wd in ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0))
        ]
    n_cols = 3
    n_rows = -(-len(settings) // n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(3.2 * n_cols, 3.3 * n_rows), dpi=dpi, squeeze=False
    )
    for ax, (name, wc, wd, t) in zip(axes.flat, settings, strict=False):
        draw_mixed_field(name, wc, wd, t, ax=ax)
    for ax in list(axes.flat)[len(settings) :]:
        ax.axis("off")
    fig.suptitle("Mixed fields: grey arrows the field, particles moved from blue to red")
    fig.tight_layout()
    return fig


def helmholtz_explorer():
    """Sliders for field type, mixing weights and time around :func:`draw_mixed_field`.

    Returns:
        An ``ipywidgets`` widget to display in a live kernel, or ``None`` when ipywidgets is
        not installed (a log message says so; use :func:`static_explorer_figure` instead).
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        logger.warning("ipywidgets is not installed; showing no explorer")
        return None

    def show(field_type: str, w_curl: float, w_div: float, time: float) -> None:
        draw_mixed_field(field_type, w_curl, w_div, time)
        plt.show()

    slider = dict(min=-1.5, max=1.5, step=0.25, continuous_update=False)
    return widgets.interactive(
        show,
        field_type=widgets.Dropdown(options=list(FIELD_TYPES), value="bumps"),
        w_curl=widgets.FloatSlider(value=1.0, description="w_curl", **slider),
        w_div=widgets.FloatSlider(value=1.0, description="w_div", **slider),
        time=widgets.FloatSlider(
            value=1.0, min=0.0, max=3.0, step=0.25, description="time", continuous_update=False
        ),
    )
