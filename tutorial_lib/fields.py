"""Velocity fields: curl-free potentials, exactly divergence-free constructions, and banks of K.

Every field is an ``nn.Module`` whose ``forward(z, t=None)`` maps points ``(batch, dim)`` to
velocities ``(batch, dim)`` and whose ``divergence(z, t=None)`` returns ``(batch,)``.

- :class:`PotentialField`: ``v = grad u``. Its Jacobian is the Hessian of ``u`` (symmetric) and
  its divergence is the Laplacian of ``u``.
- :class:`StreamFunctionField2D`: ``v = (d psi/d z2, -d psi/d z1)``, divergence-free in 2-D.
- :class:`SkewGradientField`: ``v = sum_m S_m grad psi_m`` with skew ``S_m``. The divergence is
  ``sum_m tr(S_m Hess psi_m) = 0`` because a skew and a symmetric matrix have zero inner product.
- :class:`AntisymmetricMatrixField`: ``v_i = sum_j d A_ij / d z_j`` with ``A = -A^T``, the
  construction of Richter-Powell, Lipman and Chen, "Neural Conservation Laws" (NeurIPS 2022).
- :class:`PenalisedField`: an unconstrained network trained with a divergence penalty. It is
  only approximately divergence-free; the course uses it as the comparison.
- :class:`HelmholtzField`: a curl-free plus a divergence-free part, each available separately.
- :class:`FieldBank`: K fields of one kind evaluated in one batched call.

The divergence-free classes return an exact zero from ``divergence``; the tests check the
construction numerically with :func:`tutorial_lib.calculus.divergence`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from . import calculus
from ._validate import check_points, check_positive_int

__all__ = [
    "AntisymmetricMatrixField",
    "BankOutput",
    "FieldBank",
    "HelmholtzField",
    "PenalisedField",
    "PotentialField",
    "SkewGradientField",
    "StreamFunctionField2D",
    "mlp",
]

_ACTIVATIONS = {"softplus": nn.Softplus, "tanh": nn.Tanh, "silu": nn.SiLU}


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"expected activation in {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]()


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: int = 64,
    depth: int = 2,
    activation: str = "softplus",
    out_bias: bool = True,
) -> nn.Sequential:
    """A multilayer perceptron with smooth activations (fields need second derivatives).

    Args:
        in_dim, out_dim: input and output widths.
        hidden: width of each hidden layer.
        depth: number of hidden layers.
        activation: ``"softplus"``, ``"tanh"`` or ``"silu"``.
        out_bias: whether the output layer has a bias. Potentials and stream functions do
            without: a constant offset changes no velocity, so it would never be trained.
    """
    for value, name in ((in_dim, "in_dim"), (out_dim, "out_dim"), (hidden, "hidden")):
        check_positive_int(value, name)
    check_positive_int(depth, "depth")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), _activation(activation)]
        width = hidden
    layers.append(nn.Linear(width, out_dim, bias=out_bias))
    return nn.Sequential(*layers)


def _with_time(z: torch.Tensor, t: torch.Tensor | float | None, used: bool) -> torch.Tensor:
    """Append the time as a last input column when the field is time-dependent."""
    if not used:
        return z
    if t is None:
        raise ValueError("expected a time t for a time-dependent field, got None")
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    if t.dim() == 0:
        t = t.expand(z.shape[0])
    if t.shape != (z.shape[0],):
        raise ValueError(f"expected t of shape () or ({z.shape[0]},), got {tuple(t.shape)}")
    return torch.cat([z, t[:, None]], dim=1)


def _differentiable(z: torch.Tensor) -> torch.Tensor:
    return z if z.requires_grad else z.detach().requires_grad_(True)


class PotentialField(nn.Module):
    """Curl-free field ``v(z, t) = grad_z u(z, t)`` of a scalar network ``u``.

    Args:
        dim: dimension of ``z``.
        hidden, depth, activation: size of the network ``u``.
        time_dependent: whether ``u`` also takes the time ``t``.

    Example:
        >>> field = PotentialField(2)
        >>> field(torch.randn(8, 2)).shape
        torch.Size([8, 2])
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "softplus",
        time_dependent: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.time_dependent = time_dependent
        self.net = mlp(dim + int(time_dependent), 1, hidden, depth, activation, out_bias=False)

    def potential(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """The potential ``u(z, t)``, shape ``(batch,)``."""
        check_points(z, "z", self.dim)
        return self.net(_with_time(z, t, self.time_dependent))[:, 0]

    def forward(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Velocity ``grad u``, shape ``(batch, dim)``; differentiable for training."""
        with torch.enable_grad():
            z = _differentiable(z)
            return calculus.gradient(lambda x: self.potential(x, t), z, create_graph=True)

    def divergence(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Exact divergence, the Laplacian of ``u``, shape ``(batch,)``."""
        with torch.enable_grad():
            z = _differentiable(z)
            return calculus.laplacian(lambda x: self.potential(x, t), z, create_graph=True)


class StreamFunctionField2D(nn.Module):
    """Divergence-free planar field ``v = (d psi / d z2, -d psi / d z1)`` of a stream function.

    Trajectories follow the level sets of ``psi``.
    """

    def __init__(
        self,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "softplus",
        time_dependent: bool = False,
    ) -> None:
        super().__init__()
        self.dim = 2
        self.time_dependent = time_dependent
        self.net = mlp(2 + int(time_dependent), 1, hidden, depth, activation, out_bias=False)

    def stream(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """The stream function ``psi(z, t)``, shape ``(batch,)``."""
        check_points(z, "z", 2)
        return self.net(_with_time(z, t, self.time_dependent))[:, 0]

    def forward(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        with torch.enable_grad():
            z = _differentiable(z)
            g = calculus.gradient(lambda x: self.stream(x, t), z, create_graph=True)
        return torch.stack([g[:, 1], -g[:, 0]], dim=1)

    def divergence(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Zero by construction, shape ``(batch,)``."""
        check_points(z, "z", 2)
        return z.new_zeros(z.shape[0])


class _Skew(nn.Module):
    """Parameters of M skew matrices ``S_m = B_m - B_m^T``, full or of low rank.

    With ``rank=None`` each ``B_m`` is a full ``(dim, dim)`` matrix; with ``rank=r`` it is
    ``U_m V_m^T`` with ``U_m, V_m`` of shape ``(dim, r)``, so ``S_m g`` costs ``O(dim r)``.
    """

    def __init__(self, n_terms: int, dim: int, rank: int | None, leading: tuple[int, ...] = ()):
        super().__init__()
        self.rank = rank
        scale = 1.0 / math.sqrt(dim)
        if rank is None:
            self.b = nn.Parameter(torch.randn(*leading, n_terms, dim, dim) * scale)
        else:
            check_positive_int(rank, "rank")
            self.u = nn.Parameter(torch.randn(*leading, n_terms, dim, rank) * scale)
            self.v = nn.Parameter(torch.randn(*leading, n_terms, dim, rank) * scale)

    def apply(self, g: torch.Tensor, index: slice | None = None) -> torch.Tensor:
        """Return ``sum_m S_m g_m``.

        Args:
            g: gradients ``(..., n_terms, dim)`` whose leading axes end with the parameters'
                leading axes (for a bank: ``(batch, K, n_terms, dim)``).
            index: optional slice of the first leading axis of the parameters.
        """
        if self.rank is None:
            b = self.b if index is None else self.b[index]
            s = b - b.transpose(-1, -2)
            return torch.einsum("...mij,...mj->...i", s, g)
        u = self.u if index is None else self.u[index]
        v = self.v if index is None else self.v[index]
        ug = torch.einsum("...mir,...mi->...mr", u, g)
        vg = torch.einsum("...mir,...mi->...mr", v, g)
        out = torch.einsum("...mir,...mr->...i", u, vg) - torch.einsum("...mir,...mr->...i", v, ug)
        return out


class SkewGradientField(nn.Module):
    """Exactly divergence-free field ``v = sum_m S_m grad psi_m(z)`` in any dimension.

    ``psi`` is one network with ``n_terms`` outputs. With a single term, ``psi`` is conserved
    along trajectories (``grad psi . S grad psi = 0``): a Hamiltonian flow.

    Args:
        dim: dimension of ``z``.
        n_terms: number of scalar functions ``psi_m``.
        rank: ``None`` for full skew matrices, else the rank of each ``B_m`` in ``S = B - B^T``.
    """

    def __init__(
        self,
        dim: int,
        n_terms: int = 4,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "softplus",
        rank: int | None = None,
        time_dependent: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.n_terms = check_positive_int(n_terms, "n_terms")
        self.time_dependent = time_dependent
        self.net = mlp(
            dim + int(time_dependent), n_terms, hidden, depth, activation, out_bias=False
        )
        self.skew = _Skew(n_terms, dim, rank)

    def stream(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """The functions ``psi_m(z, t)``, shape ``(batch, n_terms)``."""
        check_points(z, "z", self.dim)
        return self.net(_with_time(z, t, self.time_dependent))

    def stream_gradients(
        self, z: torch.Tensor, t: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """``grad psi_m`` for every term, shape ``(batch, n_terms, dim)``, in one backward pass.

        The points are repeated once per term, so term ``m`` differentiates its own copy.
        """
        check_points(z, "z", self.dim)
        with torch.enable_grad():
            z = _differentiable(z)
            batch, m = z.shape[0], self.n_terms
            zm = z.unsqueeze(1).expand(batch, m, self.dim)
            tm = None
            if self.time_dependent:
                tm = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(batch)
                tm = tm.repeat_interleave(m)
            psi = self.net(_with_time(zm.reshape(batch * m, self.dim), tm, self.time_dependent))
            own = psi.reshape(batch, m, m).diagonal(dim1=1, dim2=2)
            (g,) = torch.autograd.grad(own.sum(), zm, create_graph=True)
        return g

    def forward(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        return self.skew.apply(self.stream_gradients(z, t))

    def divergence(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Zero by construction, shape ``(batch,)``."""
        check_points(z, "z", self.dim)
        return z.new_zeros(z.shape[0])


class AntisymmetricMatrixField(nn.Module):
    """Exactly divergence-free field ``v_i = sum_j d A_ij / d z_j`` with ``A(z) = -A(z)^T``.

    ``A = N - N^T`` for a network ``N`` with ``dim * dim`` outputs. Every smooth divergence-free
    field has this form (Richter-Powell, Lipman, Chen, NeurIPS 2022), but evaluating it costs
    one reverse pass per dimension and ``dim**2`` outputs, so it suits small dimensions.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "softplus",
        time_dependent: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.time_dependent = time_dependent
        self.net = mlp(dim + int(time_dependent), dim * dim, hidden, depth, activation)

    def matrix(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """The antisymmetric matrix ``A(z, t)``, shape ``(batch, dim, dim)``."""
        check_points(z, "z", self.dim)
        n = self.net(_with_time(z, t, self.time_dependent)).reshape(-1, self.dim, self.dim)
        return n - n.transpose(1, 2)

    def forward(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        check_points(z, "z", self.dim)
        d = self.dim
        if self.time_dependent:
            tt = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(z.shape[0])
        else:
            tt = z.new_zeros(z.shape[0])

        def matrix_one(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            inp = torch.cat([x, s[None]]) if self.time_dependent else x
            n = self.net(inp).reshape(d, d)
            return n - n.T

        # d A_ij / d z_k for every point by forward mode: one pass per dimension.
        jac = torch.func.vmap(torch.func.jacfwd(matrix_one))(z, tt)
        return jac.diagonal(dim1=2, dim2=3).sum(-1)

    def divergence(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Zero by construction, shape ``(batch,)``."""
        check_points(z, "z", self.dim)
        return z.new_zeros(z.shape[0])


class PenalisedField(nn.Module):
    """An unconstrained field with a divergence penalty: only APPROXIMATELY divergence-free.

    Training adds ``weight * divergence_penalty(z)`` to the loss. The penalty pushes the mean
    squared divergence down at the points it sees, but nothing makes it zero anywhere; report
    the residual ``|div v|`` whenever this field stands in for a divergence-free one.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "softplus",
        time_dependent: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        self.time_dependent = time_dependent
        self.net = mlp(dim + int(time_dependent), dim, hidden, depth, activation)

    def forward(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        check_points(z, "z", self.dim)
        return self.net(_with_time(z, t, self.time_dependent))

    def divergence(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """The field's actual (non-zero) divergence, exact, shape ``(batch,)``."""
        with torch.enable_grad():
            z = _differentiable(z)
            return calculus.divergence(lambda x: self(x, t), z, create_graph=True)

    def divergence_penalty(
        self, z: torch.Tensor, t: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """Mean squared divergence at ``z``, a scalar to add to a training loss."""
        return self.divergence(z, t).pow(2).mean()


class HelmholtzField(nn.Module):
    """Sum of a curl-free and a divergence-free field, ``v = grad u + r``.

    Only the curl-free part changes volume, so ``divergence`` is the Laplacian of ``u``.

    Args:
        curl_free: a :class:`PotentialField`.
        div_free: any divergence-free field (stream function, skew-gradient, antisymmetric).
    """

    def __init__(self, curl_free: PotentialField, div_free: nn.Module) -> None:
        super().__init__()
        if curl_free.dim != div_free.dim:
            raise ValueError(
                f"expected both parts in the same dimension, got curl-free dim {curl_free.dim} "
                f"and divergence-free dim {div_free.dim}"
            )
        self.dim = curl_free.dim
        self.curl_free = curl_free
        self.div_free = div_free

    def parts(
        self, z: torch.Tensor, t: torch.Tensor | float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The curl-free and the divergence-free velocities, each ``(batch, dim)``."""
        return self.curl_free(z, t), self.div_free(z, t)

    def forward(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        a, b = self.parts(z, t)
        return a + b

    def divergence(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """Divergence of the curl-free part, shape ``(batch,)``."""
        return self.curl_free.divergence(z, t)


def _activation_derivatives(
    name: str, a: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The activation and its first two derivatives at ``a``: ``(s(a), s'(a), s''(a))``."""
    if name == "softplus":
        sig = torch.sigmoid(a)
        return nn.functional.softplus(a), sig, sig * (1 - sig)
    if name == "tanh":
        th = torch.tanh(a)
        d1 = 1 - th * th
        return th, d1, -2 * th * d1
    if name == "silu":
        sig = torch.sigmoid(a)
        d1 = sig * (1 + a * (1 - sig))
        return a * sig, d1, sig * (1 - sig) * (2 + a * (1 - 2 * sig))
    raise ValueError(f"expected activation in {sorted(_ACTIVATIONS)}, got {name!r}")


class _BatchedMLP(nn.Module):
    """K independent MLPs with stacked weights, evaluated with batched matrix products.

    ``forward`` takes ``(K, n, in_dim)`` and returns ``(K, n, out_dim)``; row block ``k`` goes
    through network ``k``. ``index`` selects a sub-range of the K networks.
    """

    def __init__(
        self, k: int, in_dim: int, out_dim: int, hidden: int, depth: int, activation: str
    ) -> None:
        super().__init__()
        widths = [in_dim] + [hidden] * depth + [out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(k, a, b).uniform_(-bound, bound)))
            # The output layer has no bias: the networks are potentials, and a constant
            # offset changes no gradient (it would be a parameter that never learns).
            if i < depth:
                self.biases.append(nn.Parameter(torch.empty(k, 1, b).uniform_(-bound, bound)))
        self.activation = activation
        self.act = _activation(activation)

    def _layer(self, i: int, index: slice | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = self.weights[i] if index is None else self.weights[i][index]
        if i >= len(self.biases):
            return w, None
        b = self.biases[i] if index is None else self.biases[i][index]
        return w, b

    def forward(self, x: torch.Tensor, index: slice | None = None) -> torch.Tensor:
        for i in range(len(self.weights)):
            w, b = self._layer(i, index)
            x = torch.bmm(x, w) if b is None else self.act(torch.baddbmm(b, x, w))
        return x

    def value_gradient_laplacian(
        self, x: torch.Tensor, n_space: int, index: slice | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A scalar network's value, gradient and exact Laplacian in one forward pass.

        The first ``n_space`` input columns are the coordinates differentiated (a time column
        after them is not). Each layer carries the Jacobian of its units with respect to those
        coordinates and the Laplacian of each unit: for ``h = s(a)`` with ``a = W x + b``,
        ``J_a = W J_x``, ``lap_a = W lap_x``, ``J_h = s'(a) J_a`` and
        ``lap_h = s'(a) lap_a + s''(a) sum_d J_a[:, d]^2`` (the forward Laplacian of Li et al.,
        "A computational framework for neural network-based variational Monte Carlo with
        Forward Laplacian", Nature Machine Intelligence 2024). This costs a few batched matrix
        products with ``dim`` times the usual width, instead of ``dim`` reverse passes.

        Args:
            x: inputs ``(K, n, in_dim)``.
            n_space: number of leading input columns to differentiate.

        Returns:
            ``value (K, n)``, ``gradient (K, n, n_space)``, ``laplacian (K, n)``.
        """
        k, n, _ = x.shape
        w, b = self._layer(0, index)
        a = torch.baddbmm(b, x, w)
        _, d1, d2 = _activation_derivatives(self.activation, a)
        h = self.act(a)
        w_space = w[:, :n_space, :]  # (K, n_space, hidden)
        jac = d1[:, :, None, :] * w_space[:, None, :, :]  # (K, n, n_space, hidden)
        lap = d2 * w_space.pow(2).sum(1)[:, None, :]  # (K, n, hidden)
        for i in range(1, len(self.weights)):
            w, b = self._layer(i, index)
            width = w.shape[2]
            jac_a = torch.bmm(jac.reshape(k, n * n_space, -1), w).reshape(k, n, n_space, width)
            lap_a = torch.bmm(lap, w)
            if b is None:
                return torch.bmm(h, w)[..., 0], jac_a[..., 0], lap_a[..., 0]
            a = torch.baddbmm(b, h, w)
            _, d1, d2 = _activation_derivatives(self.activation, a)
            h = self.act(a)
            jac = d1[:, :, None, :] * jac_a
            lap = d1 * lap_a + d2 * jac_a.pow(2).sum(2)
        raise RuntimeError("expected a final linear layer")  # unreachable by construction


class BankOutput(NamedTuple):
    """What a :class:`FieldBank` returns.

    Attributes:
        velocity: ``(batch, K, dim)``, the full field of each of the K fields.
        divergence: ``(batch, K)``, or ``None`` when not asked for.
        curl_free: ``(batch, K, dim)`` potential part (``None`` for ``kind="skew"``).
        div_free: ``(batch, K, dim)`` divergence-free part (``None`` for ``kind="potential"``).
        divergence_stderr: ``(batch, K)`` standard error of a Hutchinson divergence, else ``None``.
    """

    velocity: torch.Tensor
    divergence: torch.Tensor | None
    curl_free: torch.Tensor | None
    div_free: torch.Tensor | None
    divergence_stderr: torch.Tensor | None = None


_KINDS = ("potential", "skew", "helmholtz")


class FieldBank(nn.Module):
    """K fields of one kind, evaluated for all K and the whole batch in one batched call.

    The K networks' weights are stacked, so a call is a few batched matrix products. With
    ``divergence="exact"`` the potentials' gradients and Laplacians come out of one forward
    pass that carries each unit's Jacobian (see ``_BatchedMLP.value_gradient_laplacian``);
    otherwise the velocities take one reverse pass and a Hutchinson estimate one more per
    probe. There is no Python loop over the fields or the points.

    Args:
        n_fields: K.
        dim: dimension of ``z``.
        kind: ``"potential"`` (curl-free), ``"skew"`` (exactly divergence-free
            ``sum_m S_m grad psi_m``) or ``"helmholtz"`` (the sum of one of each per field).
        hidden, depth, activation: size of each network.
        n_terms: number of ``psi_m`` per divergence-free field.
        rank: rank of the skew matrices' factors (``None``: full matrices).
        time_dependent: whether the networks also take the time.

    Example:
        >>> bank = FieldBank(3, 8, kind="helmholtz")
        >>> out = bank(torch.randn(16, 8))
        >>> out.velocity.shape, out.divergence.shape
        (torch.Size([16, 3, 8]), torch.Size([16, 3]))
    """

    def __init__(
        self,
        n_fields: int,
        dim: int,
        kind: str = "helmholtz",
        hidden: int = 64,
        depth: int = 2,
        activation: str = "softplus",
        n_terms: int = 4,
        rank: int | None = None,
        time_dependent: bool = False,
    ) -> None:
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"expected kind in {_KINDS}, got {kind!r}")
        self.n_fields = check_positive_int(n_fields, "n_fields")
        self.dim = check_positive_int(dim, "dim")
        self.kind = kind
        self.n_terms = check_positive_int(n_terms, "n_terms")
        self.time_dependent = time_dependent
        in_dim = dim + int(time_dependent)
        self.potential_net: _BatchedMLP | None = None
        self.stream_net: _BatchedMLP | None = None
        self.skew: _Skew | None = None
        if kind in ("potential", "helmholtz"):
            self.potential_net = _BatchedMLP(n_fields, in_dim, 1, hidden, depth, activation)
        if kind in ("skew", "helmholtz"):
            self.stream_net = _BatchedMLP(n_fields, in_dim, n_terms, hidden, depth, activation)
            self.skew = _Skew(n_terms, dim, rank, leading=(n_fields,))

    def _inputs(self, zk: torch.Tensor, t: torch.Tensor | float | None) -> torch.Tensor:
        """``(K, n, dim)`` points, plus a time column when the bank is time-dependent."""
        if not self.time_dependent:
            return zk
        if t is None:
            raise ValueError("expected a time t for a time-dependent bank, got None")
        k, n, _ = zk.shape
        tt = torch.as_tensor(t, dtype=zk.dtype, device=zk.device)
        if tt.dim() == 0:
            tt = tt.expand(n)
        else:
            batch = tt.shape[0]
            if tt.shape != (batch,) or n % batch:
                raise ValueError(f"expected t of shape () or (batch,), got {tuple(tt.shape)}")
            tt = tt.repeat_interleave(n // batch)
        return torch.cat([zk, tt.expand(k, n)[..., None]], dim=-1)

    def forward(
        self,
        z: torch.Tensor,
        t: torch.Tensor | float | None = None,
        divergence: str = "exact",
        n_probes: int = 1,
        generator: torch.Generator | None = None,
        index: slice | None = None,
    ) -> BankOutput:
        """Velocities and divergences of the fields.

        Args:
            z: points, ``(batch, dim)``.
            t: time, a scalar or ``(batch,)`` (time-dependent banks only).
            divergence: ``"exact"``, ``"hutchinson"`` or ``"none"``.
            n_probes: Hutchinson probes per point and field.
            generator: optional generator for the probes.
            index: evaluate only the fields in this slice (used by :meth:`field`).

        Returns:
            A :class:`BankOutput`; K below is the number of fields evaluated.
        """
        check_points(z, "z", self.dim)
        if divergence not in ("exact", "hutchinson", "none"):
            raise ValueError(
                f"expected divergence 'exact', 'hutchinson' or 'none', got {divergence!r}"
            )
        k = len(range(self.n_fields)[index]) if index is not None else self.n_fields
        batch, dim = z.shape
        curl_free = div_free = div = stderr = None
        with torch.enable_grad():
            if self.potential_net is not None and divergence == "exact":
                # Gradient and Laplacian of every potential in one forward pass.
                zk = z.unsqueeze(0).expand(k, batch, dim)
                _, curl_free, div = self.potential_net.value_gradient_laplacian(
                    self._inputs(zk, t), dim, index
                )
                curl_free = curl_free.transpose(0, 1)
            elif self.potential_net is not None:
                # Each field differentiates its own copy of the points: (K, batch, dim).
                zk = z.unsqueeze(0).expand(k, batch, dim)
                if not zk.requires_grad:
                    zk = zk.detach().requires_grad_(True)
                u = self.potential_net(self._inputs(zk, t), index)
                (curl_free,) = torch.autograd.grad(u.sum(), zk, create_graph=True)
                if divergence == "hutchinson":
                    div, stderr = _trace_hutchinson(curl_free, zk, n_probes, generator)
                curl_free = curl_free.transpose(0, 1)
            if self.stream_net is not None:
                m = self.n_terms
                zm = z[None, :, None, :].expand(k, batch, m, dim)
                if not zm.requires_grad:
                    zm = zm.detach().requires_grad_(True)
                flat = self._inputs(zm.reshape(k, batch * m, dim), t)
                psi = self.stream_net(flat, index).reshape(k, batch, m, m)
                own = psi.diagonal(dim1=2, dim2=3)
                (g,) = torch.autograd.grad(own.sum(), zm, create_graph=True)
                div_free = self.skew.apply(g.transpose(0, 1), index)
        if curl_free is None:
            velocity = div_free
            if divergence != "none":
                div = z.new_zeros(batch, k)
        elif div_free is None:
            velocity = curl_free
        else:
            velocity = curl_free + div_free
        if div is not None and div.shape != (batch, k):
            div = div.transpose(0, 1)
        if stderr is not None:
            stderr = stderr.transpose(0, 1)
        return BankOutput(velocity, div, curl_free, div_free, stderr)

    def field(self, k: int) -> _SingleField:
        """Field ``k`` alone as a module ``(batch, dim) -> (batch, dim)`` sharing the weights."""
        if not 0 <= k < self.n_fields:
            raise IndexError(f"expected a field index in [0, {self.n_fields}), got {k}")
        return _SingleField(self, k)


def _trace_hutchinson(
    v: torch.Tensor, zk: torch.Tensor, n_probes: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hutchinson estimate and standard error of the Jacobian trace, each ``(K, batch)``."""
    check_positive_int(n_probes, "n_probes")
    eps = calculus.sample_probes(n_probes, zk.reshape(-1, zk.shape[-1]), generator=generator)
    eps = eps.reshape(n_probes, *zk.shape)
    samples = []
    for e in eps:
        (g,) = torch.autograd.grad((v * e).sum(), zk, create_graph=True)
        samples.append((g * e).sum(-1))
    stacked = torch.stack(samples)
    if n_probes > 1:
        stderr = (stacked.std(0) / n_probes**0.5).detach()
    else:
        stderr = torch.full_like(stacked[0], float("nan")).detach()
    return stacked.mean(0), stderr


class _SingleField(nn.Module):
    """One field of a :class:`FieldBank`, with the plain field interface."""

    def __init__(self, bank: FieldBank, k: int) -> None:
        super().__init__()
        self.bank = bank
        self.k = k
        self.dim = bank.dim

    def forward(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        return self.bank(z, t, divergence="none", index=slice(self.k, self.k + 1)).velocity[:, 0]

    def divergence(self, z: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        out = self.bank(z, t, divergence="exact", index=slice(self.k, self.k + 1))
        return out.divergence[:, 0]
