"""Batched vector calculus by automatic differentiation: Jacobians, divergences, Laplacians, curls.

Every function takes points ``z`` of shape ``(batch, dim)`` and a callable (a function or an
``nn.Module``) that maps them to ``(batch, dim)`` (a field) or ``(batch,)`` (a scalar potential).
The callable must treat rows independently (no batch normalisation), since derivatives of the
summed output are read off per row.

Exact methods cost one reverse pass per dimension. Hutchinson's estimator
``tr(J) = E[eps^T J eps]`` (Hutchinson 1989) costs one pass per probe and returns its standard
error, so its accuracy can be reported next to the estimate.

By default results are detached. ``create_graph=True`` keeps the graph, so a loss built from a
divergence can be trained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ._validate import check_points, check_positive_int

Field = Callable[[torch.Tensor], torch.Tensor]

__all__ = [
    "HutchinsonEstimate",
    "antisymmetric_jacobian",
    "curl_2d",
    "curl_3d",
    "divergence",
    "divergence_hutchinson",
    "gradient",
    "jacobian",
    "laplacian",
    "laplacian_hutchinson",
    "sample_probes",
]


class HutchinsonEstimate(NamedTuple):
    """A stochastic trace estimate: ``estimate`` and its ``stderr``, both ``(batch,)``.

    ``stderr`` is the sample standard deviation over probes divided by sqrt(n_probes); it is
    NaN when a single probe was used.
    """

    estimate: torch.Tensor
    stderr: torch.Tensor


def _prepare(z: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Validate ``z`` and return a version that autograd can differentiate with respect to."""
    check_points(z, "z", dim)
    if not z.requires_grad:
        z = z.detach().requires_grad_(True)
    return z


def _vector_output(f: Field, z: torch.Tensor) -> torch.Tensor:
    out = f(z)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != z.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"expected the field to return shape ({z.shape[0]}, out_dim) for z of shape "
            f"{tuple(z.shape)}, got {shape}"
        )
    return out


def _scalar_output(u: Field, z: torch.Tensor) -> torch.Tensor:
    out = u(z)
    if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if not isinstance(out, torch.Tensor) or out.shape != (z.shape[0],):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"expected the potential to return shape ({z.shape[0]},) for z of shape "
            f"{tuple(z.shape)}, got {shape}"
        )
    return out


def _grad(out: torch.Tensor, z: torch.Tensor, create_graph: bool) -> torch.Tensor:
    (g,) = torch.autograd.grad(out, z, create_graph=create_graph, retain_graph=True)
    return g


def _finish(x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    return x if create_graph else x.detach()


def gradient(u: Field, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Gradient of a scalar potential.

    Args:
        u: maps ``(batch, dim)`` to ``(batch,)``.
        z: points, ``(batch, dim)``.
        create_graph: keep the graph for a later backward pass.

    Returns:
        ``grad u(z)``, shape ``(batch, dim)``.
    """
    z = _prepare(z)
    out = _scalar_output(u, z)
    return _finish(_grad(out.sum(), z, create_graph), create_graph)


def jacobian(f: Field, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Jacobian of a field, one reverse pass per output dimension.

    Args:
        f: maps ``(batch, dim)`` to ``(batch, out)``.
        z: points, ``(batch, dim)``.

    Returns:
        ``J[b, i, j] = d f_i / d z_j`` at ``z[b]``, shape ``(batch, out, dim)``.
    """
    z = _prepare(z)
    out = _vector_output(f, z)
    rows = [_grad(out[:, i].sum(), z, create_graph) for i in range(out.shape[1])]
    return _finish(torch.stack(rows, dim=1), create_graph)


def _exact_trace(out: torch.Tensor, z: torch.Tensor, create_graph: bool) -> torch.Tensor:
    if out.shape[1] != z.shape[1]:
        raise ValueError(
            f"expected a field with as many outputs as inputs ({z.shape[1]}) for a divergence, "
            f"got {out.shape[1]} outputs"
        )
    total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for i in range(z.shape[1]):
        total = total + _grad(out[:, i].sum(), z, create_graph)[:, i]
    return total


def divergence(f: Field, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Exact divergence ``sum_i d f_i / d z_i``, one reverse pass per dimension.

    Args:
        f: maps ``(batch, dim)`` to ``(batch, dim)``.
        z: points, ``(batch, dim)``.

    Returns:
        Divergence at each point, ``(batch,)``.
    """
    z = _prepare(z)
    out = _vector_output(f, z)
    return _finish(_exact_trace(out, z, create_graph), create_graph)


def laplacian(u: Field, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Exact Laplacian ``tr(Hessian of u)`` = divergence of ``grad u``.

    Args:
        u: maps ``(batch, dim)`` to ``(batch,)``.
        z: points, ``(batch, dim)``.

    Returns:
        Laplacian at each point, ``(batch,)``.
    """
    z = _prepare(z)
    g = _grad(_scalar_output(u, z).sum(), z, create_graph=True)
    return _finish(_exact_trace(g, z, create_graph), create_graph)


def sample_probes(
    n_probes: int,
    like: torch.Tensor,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random probe vectors with identity covariance, ``(n_probes, batch, dim)``.

    Args:
        n_probes: number of probes per point.
        like: a ``(batch, dim)`` tensor giving shape, dtype and device.
        probe: ``"rademacher"`` (entries +-1, the lower-variance choice) or ``"gaussian"``.
        generator: optional generator for reproducible probes (on ``like``'s device).
    """
    check_positive_int(n_probes, "n_probes")
    shape = (n_probes, *like.shape)
    if probe == "rademacher":
        bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
        return bits.to(like.dtype) * 2 - 1
    if probe == "gaussian":
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
    raise ValueError(f"expected probe to be 'rademacher' or 'gaussian', got {probe!r}")


def _hutchinson(
    out: torch.Tensor,
    z: torch.Tensor,
    n_probes: int,
    probe: str,
    generator: torch.Generator | None,
    create_graph: bool,
) -> HutchinsonEstimate:
    if out.shape != z.shape:
        raise ValueError(
            f"expected a field of shape {tuple(z.shape)} for a trace estimate, "
            f"got {tuple(out.shape)}"
        )
    eps = sample_probes(n_probes, z, probe, generator)
    samples = []
    for e in eps:
        vjp = _grad((out * e).sum(), z, create_graph)
        samples.append((vjp * e).sum(dim=1))
    stacked = torch.stack(samples)
    estimate = stacked.mean(dim=0)
    if n_probes > 1:
        stderr = stacked.std(dim=0) / n_probes**0.5
    else:
        stderr = torch.full_like(estimate, float("nan"))
    return HutchinsonEstimate(_finish(estimate, create_graph), stderr.detach())


def divergence_hutchinson(
    f: Field,
    z: torch.Tensor,
    n_probes: int = 1,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
    create_graph: bool = False,
) -> HutchinsonEstimate:
    """Unbiased divergence estimate ``mean_p eps_p^T J eps_p``, one reverse pass per probe.

    Args:
        f: maps ``(batch, dim)`` to ``(batch, dim)``.
        z: points, ``(batch, dim)``.
        n_probes: probes per point (the standard error needs at least 2).
        probe: ``"rademacher"`` or ``"gaussian"``.
        generator: optional generator for the probes.

    Returns:
        :class:`HutchinsonEstimate` with ``estimate`` and ``stderr`` of shape ``(batch,)``.
    """
    z = _prepare(z)
    out = _vector_output(f, z)
    return _hutchinson(out, z, n_probes, probe, generator, create_graph)


def laplacian_hutchinson(
    u: Field,
    z: torch.Tensor,
    n_probes: int = 1,
    probe: str = "rademacher",
    generator: torch.Generator | None = None,
    create_graph: bool = False,
) -> HutchinsonEstimate:
    """Unbiased Laplacian estimate from Hessian-vector products ``eps^T H eps``.

    Args:
        u: maps ``(batch, dim)`` to ``(batch,)``.
        z: points, ``(batch, dim)``.

    Returns:
        :class:`HutchinsonEstimate` with ``estimate`` and ``stderr`` of shape ``(batch,)``.
    """
    z = _prepare(z)
    g = _grad(_scalar_output(u, z).sum(), z, create_graph=True)
    return _hutchinson(g, z, n_probes, probe, generator, create_graph)


def curl_2d(f: Field, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Scalar curl of a planar field, ``d f_2/d z_1 - d f_1/d z_2``, shape ``(batch,)``."""
    z = _prepare(z, dim=2)
    out = _vector_output(f, z)
    d1 = _grad(out[:, 0].sum(), z, create_graph)
    d2 = _grad(out[:, 1].sum(), z, create_graph)
    return _finish(d2[:, 0] - d1[:, 1], create_graph)


def curl_3d(f: Field, z: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Curl of a field in 3-D, ``nabla x f``, shape ``(batch, 3)``."""
    z = _prepare(z, dim=3)
    jac = jacobian(f, z, create_graph=create_graph)
    curl = torch.stack(
        [
            jac[:, 2, 1] - jac[:, 1, 2],
            jac[:, 0, 2] - jac[:, 2, 0],
            jac[:, 1, 0] - jac[:, 0, 1],
        ],
        dim=1,
    )
    return curl


def antisymmetric_jacobian(
    f: Field, z: torch.Tensor, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotational part of a field in any dimension.

    The antisymmetric part ``A = (J - J^T) / 2`` of the Jacobian generalises the curl: in 2-D its
    one free entry is half the scalar curl, in 3-D its three entries are half the curl vector.

    Returns:
        ``A`` of shape ``(batch, dim, dim)`` and its Frobenius norm, ``(batch,)``.
    """
    jac = jacobian(f, z, create_graph=create_graph)
    anti = 0.5 * (jac - jac.transpose(1, 2))
    return anti, anti.flatten(1).norm(dim=1)
