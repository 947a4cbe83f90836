"""The latent flow model of METHOD.md sections 3 and 4, and the VAE baselines.

A VAE encodes the first frame ``x_0`` into ``z_0``; every transition ``t`` moves the latent along
the gated sum of K fields, ``z_t = flow of sum_k g_t^k v^k over one unit of time``, with gates
``g = y * s`` (spike ``y`` in {0, 1}, positive slab ``s``) inferred from the frame pair
``(x_{t-1}, x_t)``; the decoder predicts every frame from its latent. Each field is a
Helmholtz pair ``v^k = grad u^k + r^k`` with ``r^k`` exactly divergence-free
(:class:`tutorial_lib.fields.FieldBank` with ``kind="helmholtz"``).

Shapes: frames ``(batch, T + 1, C, H, W)``; latents ``(batch, D)``; gates ``(batch, K)`` (single
control) or ``(batch, K, 2)`` (double control: coefficient of the curl-free part, coefficient of
the divergence-free part); sequences of gates ``(batch, T, K)`` or ``(batch, T, K, 2)``.

Density bookkeeping. ``log q`` follows each latent sample:

- ``flow_method="euler"``: ``z' = z + h V(z)``, ``log q' = log q - h div V(z)``, where
  ``div V = sum_k a_k Laplacian(u^k)``: only the curl-free parts enter, since ``r^k`` is exactly
  divergence-free (exact trace or Hutchinson, from the config). This is the first-order
  change of variables.
- ``flow_method="euler_logdet"``: the same step with the exact ``log|det(I + h dV/dz)|`` of the
  discrete map. The divergence-free parts enter this determinant at order ``h^2`` (a discrete
  step along a volume-preserving field is not exactly volume preserving).
- ``flow_method="rk4"``: classical Runge-Kutta on ``(z, log q)`` with ``d log q/ds = -div V``.

The prior path ``p_t`` is Gaussian in closed form: ``N(0, I)`` (``prior_path="static"``) or the
heat-equation flow ``N(0, (1 + 2 kappa t) I)`` (``prior_path="heat"``, ``kappa =
prior_diffusion``), whose density solves ``dp/dt = kappa Laplacian p``.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import torch
from torch import nn

from . import calculus
from .config import Config
from .fields import FieldBank
from .gating import (
    FoldedLaplacePrior,
    LogNormalPrior,
    LogNormalSlab,
    MarkovSpikePrior,
    binary_concrete_sample,
    kl_bernoulli_logits,
    slab_kl,
    temperature_schedule,
)
from .vae import (
    Decoder,
    Encoder,
    PairPosterior,
    bernoulli_log_likelihood,
    check_images,
    gaussian_log_likelihood,
)

__all__ = ["LatentFlowModel", "GateSample", "FlowStepError", "gaussian_log_prob"]

logger = logging.getLogger(__name__)

_LOG_2PI = math.log(2 * math.pi)


class FlowStepError(RuntimeError):
    """An Euler step whose map is not invertible (``det(I + h J) <= 0``) somewhere."""


class GateSample(NamedTuple):
    """Gates inferred for one transition.

    Attributes:
        gates: coefficients ``g = y * s``: ``(batch, K)`` or ``(batch, K, 2)``.
        spikes: ``y`` with the shape of the spike logits (hard, relaxed or straight-through).
        slab: positive speeds ``s``, ``(batch, K)``.
        spike_logits: ``(batch, K)`` or ``(batch, K, 2)``.
        slab_loc, slab_log_scale: log-normal slab parameters, ``(batch, K)``.
    """

    gates: torch.Tensor
    spikes: torch.Tensor
    slab: torch.Tensor
    spike_logits: torch.Tensor
    slab_loc: torch.Tensor
    slab_log_scale: torch.Tensor


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z; mean, diag exp(logvar))`` summed over the last axis: ``(batch,)``."""
    return -0.5 * (((z - mean) ** 2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


def kl_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(mean, diag exp(logvar)) || N(0, I))``: ``(batch,)``."""
    return 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(-1)


class LatentFlowModel(nn.Module):
    """VAE with K gated Helmholtz fields (``config.model == "flow"``) or a VAE baseline.

    Args:
        config: a :class:`tutorial_lib.config.Config` (validated here).

    Main methods: :meth:`encode`, :meth:`decode`, :meth:`infer_gates`, :meth:`flow_step`,
    :meth:`prior_log_prob`, :meth:`elbo` (also ``forward``), :meth:`rollout`,
    :meth:`reconstruct_sequence`, :meth:`log_likelihood`.

    Example:
        >>> from tutorial_lib.config import Config
        >>> model = LatentFlowModel(Config(latent_dim=8, n_steps=2))
        >>> frames = torch.rand(4, 3, 3, 28, 28)
        >>> sorted(model.elbo(frames))[:3]
        ['elbo', 'hj_residual', 'kl_slab']
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config.validate()
        c = config
        self.encoder = Encoder(
            c.in_channels, c.image_size, c.latent_dim, c.enc_channels, c.enc_hidden
        )
        self.decoder = Decoder(
            c.in_channels, c.image_size, c.latent_dim, c.enc_channels, c.enc_hidden
        )
        self.fields: FieldBank | None = None
        self.posterior: PairPosterior | None = None
        if c.is_flow:
            self.fields = FieldBank(
                c.n_fields,
                c.latent_dim,
                kind="helmholtz",
                hidden=c.field_hidden,
                depth=c.field_depth,
                n_terms=c.skew_terms,
                rank=c.skew_rank,
                time_dependent=c.time_dependent,
            )
            self.posterior = PairPosterior(
                c.in_channels,
                c.image_size,
                c.n_fields,
                c.enc_channels,
                c.enc_hidden,
                double_control=c.control == "double",
                slab_init_scale=min(c.slab_prior_scale, 0.5),
            )
        self.spike_prior = MarkovSpikePrior(c.p_on_first, c.p_stay_on, c.p_switch_on)
        self.slab_prior: LogNormalPrior | FoldedLaplacePrior
        if c.slab_prior == "lognormal":
            self.slab_prior = LogNormalPrior(c.slab_prior_loc, c.slab_prior_scale)
        else:
            self.slab_prior = FoldedLaplacePrior(c.slab_prior_loc, c.slab_prior_scale)

    # ------------------------------------------------------------------ shapes and checks
    @property
    def gate_shape(self) -> tuple[int, ...]:
        """Trailing shape of one transition's gates: ``(K,)`` or ``(K, 2)``."""
        k = self.config.n_fields
        return (k, 2) if self.config.control == "double" else (k,)

    def _check_frames(self, frames: object) -> torch.Tensor:
        c = self.config
        want = f"(batch, T+1, {c.in_channels}, {c.image_size}, {c.image_size})"
        if not isinstance(frames, torch.Tensor) or frames.dim() != 5:
            got = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames)
            raise ValueError(f"expected frames of shape {want}, got {got}")
        if tuple(frames.shape[2:]) != (c.in_channels, c.image_size, c.image_size):
            raise ValueError(f"expected frames of shape {want}, got {tuple(frames.shape)}")
        return frames

    def _check_gate_sequence(self, gates: torch.Tensor, batch: int, steps: int) -> None:
        want = (batch, steps, *self.gate_shape)
        if tuple(gates.shape) != want:
            raise ValueError(
                f"expected gates of shape {want} = (batch, T, *{self.gate_shape}), "
                f"got {tuple(gates.shape)}"
            )

    def _require_flow(self) -> None:
        if self.fields is None or self.posterior is None:
            raise RuntimeError(
                f"expected a latent flow model (config.model='flow'), got model="
                f"{self.config.model!r}, which has no fields or gates"
            )

    # ------------------------------------------------------------------ VAE parts
    def encode(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z_0 | x_0)``: ``x0 (batch, C, H, W) -> (mu (batch, D), logvar (batch, D))``."""
        return self.encoder(x0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z (batch, D) ->`` decoder output ``(batch, C, H, W)``: Bernoulli logits, or the
        Gaussian mean when ``config.likelihood == "gaussian"``."""
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The mean image of ``p(x | z)``, ``(batch, C, H, W)`` in [0, 1] for Bernoulli."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    def log_likelihood(self, decoded: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log p(x | z)`` summed over pixels and channels, ``(batch,)``."""
        if self.config.likelihood == "bernoulli":
            return bernoulli_log_likelihood(decoded, x)
        return gaussian_log_likelihood(decoded, x, self.config.gaussian_sigma)

    # ------------------------------------------------------------------ gates
    def temperature(self, step: int) -> float:
        """Binary-Concrete temperature at a training step (annealed schedule of the config)."""
        return temperature_schedule(
            step, self.config.temperature_rate, self.config.temperature_floor
        )

    def infer_gates(
        self,
        x_prev: torch.Tensor,
        x_next: torch.Tensor,
        temperature: float | None = None,
        hard: bool | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> GateSample:
        """Gates of the transition ``x_prev -> x_next`` from the pair posterior.

        Args:
            x_prev, x_next: frames ``(batch, C, H, W)``.
            temperature: Binary-Concrete temperature (default: the schedule's floor).
            hard: straight-through hard spikes (default: ``config.hard_spikes``).
            sample: draw spikes and slab (training); ``False`` gives the deterministic gates
                used at evaluation: spike ``1[logit > 0]`` and slab at its median ``exp(loc)``.
            generator: optional generator for the noise.

        Returns:
            A :class:`GateSample`.
        """
        self._require_flow()
        out = self.posterior(x_prev, x_next)
        if sample:
            tau = self.config.temperature_floor if temperature is None else temperature
            use_hard = self.config.hard_spikes if hard is None else hard
            spikes = binary_concrete_sample(out.spike_logits, tau, use_hard, generator)
            slab = LogNormalSlab(out.slab_loc, out.slab_log_scale).rsample(generator)
        else:
            spikes = (out.spike_logits > 0).to(out.spike_logits.dtype)
            slab = out.slab_loc.exp()
        gates = spikes * (slab[..., None] if spikes.dim() == 3 else slab)
        return GateSample(gates, spikes, slab, out.spike_logits, out.slab_loc, out.slab_log_scale)

    # ------------------------------------------------------------------ flow
    def _coefficients(self, gates: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Curl-free and divergence-free coefficients ``(batch, K)`` each."""
        want = (batch, *self.gate_shape)
        if tuple(gates.shape) != want:
            raise ValueError(f"expected gates of shape {want}, got {tuple(gates.shape)}")
        if gates.dim() == 3:
            return gates[..., 0], gates[..., 1]
        return gates, gates

    def velocity(
        self,
        z: torch.Tensor,
        gates: torch.Tensor,
        t: float | torch.Tensor = 0.0,
        divergence: str = "none",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Gated velocity ``V(z) = sum_k (a_k grad u^k + b_k r^k)`` and its divergence.

        Args:
            z: latents ``(batch, D)``.
            gates: ``(batch, K)`` or ``(batch, K, 2)``.
            t: time within the transition, scalar or ``(batch,)`` (time-dependent fields).
            divergence: ``"exact"``, ``"hutchinson"`` or ``"none"``.

        Returns:
            ``V (batch, D)`` and ``div V (batch,)`` (``sum_k a_k Laplacian u^k``) or ``None``.
        """
        self._require_flow()
        a, b = self._coefficients(gates, z.shape[0])
        out = self.fields(z, t, divergence=divergence, n_probes=self.config.n_probes)
        v = (a[..., None] * out.curl_free + b[..., None] * out.div_free).sum(1)
        div = None if out.divergence is None else (a * out.divergence).sum(1)
        return v, div

    def flow_step(
        self,
        z: torch.Tensor,
        log_q: torch.Tensor | None,
        gates: torch.Tensor,
        t: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One transition: flow ``z`` for one unit of time along the gated fields.

        Args:
            z: latents ``(batch, D)``.
            log_q: their log-density ``(batch,)``, or ``None`` to skip the bookkeeping
                (evaluation rollouts: no divergence is computed).
            gates: coefficients ``(batch, K)`` or ``(batch, K, 2)`` (double control).
            t: start time of the transition (fields see ``t + s`` for ``s`` in [0, 1)).

        Returns:
            ``(z_next (batch, D), log_q_next (batch,) or None)``.

        Raises:
            FlowStepError: ``flow_method="euler_logdet"`` and ``det(I + h J) <= 0``.
        """
        c = self.config
        if z.dim() != 2 or z.shape[1] != c.latent_dim:
            raise ValueError(f"expected z of shape (batch, {c.latent_dim}), got {tuple(z.shape)}")
        if log_q is not None and log_q.shape != (z.shape[0],):
            raise ValueError(f"expected log_q of shape ({z.shape[0]},), got {tuple(log_q.shape)}")
        track = log_q is not None
        div_mode = c.divergence if track else "none"
        h = 1.0 / c.n_substeps
        for i in range(c.n_substeps):
            s = t + i * h
            if c.flow_method == "rk4":
                z, log_q = self._rk4(z, log_q, gates, s, h, div_mode)
            elif c.flow_method == "euler_logdet" and track:
                z, log_q = self._euler_logdet(z, log_q, gates, s, h)
            else:
                v, div = self.velocity(z, gates, s, div_mode)
                if track:
                    log_q = log_q - h * div
                z = z + h * v
        return z, log_q

    def _euler_logdet(
        self, z: torch.Tensor, log_q: torch.Tensor, gates: torch.Tensor, s: float, h: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z_in = z if z.requires_grad else z.detach().requires_grad_(True)
        jac = calculus.jacobian(lambda x: self.velocity(x, gates, s)[0], z_in, create_graph=True)
        eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
        sign, logabsdet = torch.linalg.slogdet(eye + h * jac)
        if bool((sign <= 0).any()):
            raise FlowStepError(
                f"expected det(I + h J) > 0 for an invertible Euler step, got "
                f"{int((sign <= 0).sum())} of {z.shape[0]} samples with det <= 0 (h={h}); "
                "use more n_substeps"
            )
        v, _ = self.velocity(z, gates, s)
        return z + h * v, log_q - logabsdet

    def _rk4(
        self,
        z: torch.Tensor,
        log_q: torch.Tensor | None,
        gates: torch.Tensor,
        s: float,
        h: float,
        div_mode: str,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        def f(x: torch.Tensor, time: float) -> tuple[torch.Tensor, torch.Tensor | None]:
            v, div = self.velocity(x, gates, time, div_mode)
            return v, (None if div is None else -div)

        k1, l1 = f(z, s)
        k2, l2 = f(z + 0.5 * h * k1, s + 0.5 * h)
        k3, l3 = f(z + 0.5 * h * k2, s + 0.5 * h)
        k4, l4 = f(z + h * k3, s + h)
        z_next = z + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        if log_q is None:
            return z_next, None
        return z_next, log_q + h / 6.0 * (l1 + 2 * l2 + 2 * l3 + l4)

    def prior_log_prob(self, z: torch.Tensor, t: float) -> torch.Tensor:
        """Closed-form log-density of the prior path at time ``t``: ``(batch,)``.

        ``N(0, I)`` for ``prior_path="static"``; ``N(0, (1 + 2 kappa t) I)`` for ``"heat"``.
        """
        var = 1.0
        if self.config.prior_path == "heat":
            var = 1.0 + 2.0 * self.config.prior_diffusion * t
        d = z.shape[1]
        return -0.5 * (z**2).sum(-1) / var - 0.5 * d * (math.log(var) + _LOG_2PI)

    def hj_residual(
        self, z: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Per-sample Hamilton-Jacobi residual ``du/ds + 0.5 |grad u|^2`` of every potential.

        Each sample gets its own time ``s ~ U(0, 1)`` (``config.hj_points`` draws), so the time
        derivative is a per-sample partial derivative, not a batch aggregate.

        Args:
            z: latents ``(batch, D)`` at which to evaluate (detached from the flow).

        Returns:
            Mean over fields and draws of the squared residual, ``(batch,)``.
        """
        self._require_flow()
        if not self.config.time_dependent:
            raise ValueError("expected time_dependent fields for a Hamilton-Jacobi residual")
        bank = self.fields
        k, (batch, dim) = self.config.n_fields, z.shape
        total = z.new_zeros(batch)
        for _ in range(self.config.hj_points):
            with torch.enable_grad():
                zk = z.detach().unsqueeze(0).expand(k, batch, dim).clone().requires_grad_(True)
                s = torch.rand(batch, generator=generator, dtype=z.dtype, device=z.device)
                sk = s.unsqueeze(0).expand(k, batch).clone().requires_grad_(True)
                u = bank.potential_net(torch.cat([zk, sk[..., None]], dim=-1))[..., 0]
                grad_z, grad_s = torch.autograd.grad(u.sum(), (zk, sk), create_graph=True)
            residual = grad_s + 0.5 * (grad_z**2).sum(-1)
            total = total + (residual**2).mean(0)
        return total / self.config.hj_points

    # ------------------------------------------------------------------ objective
    def forward(self, frames: torch.Tensor, step: int = 0, **kwargs: object) -> dict:
        """Same as :meth:`elbo` (so that DistributedDataParallel wraps the objective)."""
        return self.elbo(frames, step, **kwargs)

    def elbo(
        self,
        frames: torch.Tensor,
        step: int = 0,
        gates: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Every term of the objective of METHOD.md section 4, each averaged over the batch.

        Args:
            frames: ``(batch, T + 1, C, H, W)`` in [0, 1].
            step: training step (sets the Binary-Concrete temperature).
            gates: optional given coefficients ``(batch, T, K)`` or ``(batch, T, K, 2)``: the
                flow then follows them (supervised or forced), and the spike and slab KLs are 0.
            noise: optional ``eps (batch, D)`` for ``z_0 = mu + sigma * eps`` (VAE baselines
                also accept ``(batch, T + 1, D)``).
            generator: optional generator for all sampling.

        Returns:
            A dict of scalars: ``reconstruction`` (log-likelihood summed over frames),
            ``reconstruction_per_frame`` ``(T + 1,)``, ``kl_z0``, ``kl_spike``, ``kl_slab``,
            ``path``, ``hj_residual``, ``elbo`` (reconstruction minus the four KL/path terms),
            ``loss`` (the weighted negative objective that training minimises),
            ``temperature``, ``spike_rate`` (mean spike), ``slab_mean``.

        The path term is ``sum_t E[log q_t(z_t) - log p_t(z_t)]``, estimated as the closed-form
        ``KL(q(z_0) || p_0)`` plus the sampled change
        ``(log q_t(z_t) - log q_0(z_0)) - (log p_t(z_t) - log p_0(z_0))``; both have the same
        expectation, the second with less variance.
        """
        frames = self._check_frames(frames)
        if not self.config.is_flow:
            return self._vae_elbo(frames, noise, generator)
        c = self.config
        batch, n_frames = frames.shape[:2]
        steps = n_frames - 1
        mu, logvar = self.encode(frames[:, 0])
        if noise is None:
            noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        elif noise.shape != mu.shape:
            raise ValueError(
                f"expected noise of shape {tuple(mu.shape)}, got {tuple(noise.shape)}"
            )
        z0 = mu + torch.exp(0.5 * logvar) * noise
        kl_z0 = kl_standard_normal(mu, logvar)
        log_q0 = gaussian_log_prob(z0, mu, logvar)
        log_p0 = self.prior_log_prob(z0, 0.0)

        tau = self.temperature(step)
        zero = frames.new_zeros(batch)
        kl_spike, kl_slab = zero, zero
        spike_rate = frames.new_zeros(())
        slab_mean = frames.new_zeros(())
        if gates is not None:
            self._check_gate_sequence(gates, batch, steps)
            coefficients = gates
        elif steps > 0:
            pairs_prev = frames[:, :-1].reshape(batch * steps, *frames.shape[2:])
            pairs_next = frames[:, 1:].reshape(batch * steps, *frames.shape[2:])
            sample = self.infer_gates(pairs_prev, pairs_next, tau, None, True, generator)
            shape = (batch, steps, *self.gate_shape)
            coefficients = sample.gates.reshape(shape)
            spikes = sample.spikes.reshape(shape)
            logits = sample.spike_logits.reshape(shape)
            kl_spike = self._spike_kl(logits, spikes)
            q_slab = LogNormalSlab(sample.slab_loc, sample.slab_log_scale)
            kl_slab = slab_kl(q_slab, self.slab_prior, generator=generator)
            kl_slab = kl_slab.reshape(batch, steps, -1).sum((1, 2))
            spike_rate = spikes.detach().mean()
            slab_mean = sample.slab.detach().mean()
        else:
            coefficients = frames.new_zeros(batch, 0, *self.gate_shape)

        z, log_q = z0, log_q0
        latents = [z0]
        path = zero
        for t in range(steps):
            z, log_q = self.flow_step(z, log_q, coefficients[:, t], float(t))
            latents.append(z)
            change = (log_q - log_q0) - (self.prior_log_prob(z, float(t + 1)) - log_p0)
            path = path + kl_z0 + change

        decoded = self.decode(torch.stack(latents, 1).reshape(batch * n_frames, -1))
        target = frames.reshape(batch * n_frames, *frames.shape[2:])
        recon = self.log_likelihood(decoded, target).reshape(batch, n_frames)

        hj = zero
        if c.hj_weight > 0 and steps > 0:
            hj = self.hj_residual(torch.stack(latents[:-1], 1).reshape(-1, c.latent_dim))
            hj = hj.reshape(batch, steps).mean(1)

        return self._terms(
            recon, kl_z0, kl_spike, kl_slab, path, hj, tau, spike_rate, slab_mean, c.beta
        )

    def _spike_kl(self, logits: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        """``sum_t KL(q(y_t) || p(y_t | y_{t-1}))`` with ``y_{t-1}`` the sampled previous spike;
        ``logits`` and ``spikes`` ``(batch, T, K[, 2])``; returns ``(batch,)``."""
        total = logits.new_zeros(logits.shape[0])
        previous = None
        for t in range(logits.shape[1]):
            p = self.spike_prior.probs_given_previous(previous, like=logits[:, t])
            total = total + kl_bernoulli_logits(logits[:, t], p).flatten(1).sum(1)
            previous = spikes[:, t]
        return total

    def _terms(
        self,
        recon: torch.Tensor,
        kl_z0: torch.Tensor,
        kl_spike: torch.Tensor,
        kl_slab: torch.Tensor,
        path: torch.Tensor,
        hj: torch.Tensor,
        tau: float,
        spike_rate: torch.Tensor,
        slab_mean: torch.Tensor,
        beta: float,
    ) -> dict[str, torch.Tensor]:
        c = self.config
        reconstruction = recon.sum(1).mean()
        terms = {
            "reconstruction": reconstruction,
            "reconstruction_per_frame": recon.mean(0),
            "kl_z0": kl_z0.mean(),
            "kl_spike": kl_spike.mean(),
            "kl_slab": kl_slab.mean(),
            "path": path.mean(),
            "hj_residual": hj.mean(),
        }
        terms["elbo"] = (
            reconstruction - terms["kl_z0"] - terms["kl_spike"] - terms["kl_slab"] - terms["path"]
        )
        terms["loss"] = (
            -reconstruction
            + beta * terms["kl_z0"]
            + c.spike_kl_weight * terms["kl_spike"]
            + c.slab_kl_weight * terms["kl_slab"]
            + c.path_weight * terms["path"]
            + c.hj_weight * terms["hj_residual"]
        )
        terms["temperature"] = recon.new_tensor(tau)
        terms["spike_rate"] = spike_rate
        terms["slab_mean"] = slab_mean
        return terms

    def _vae_elbo(
        self, frames: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """Baseline: every frame is an independent image; the loss is summed over frames."""
        batch, n_frames = frames.shape[:2]
        flat = frames.reshape(batch * n_frames, *frames.shape[2:])
        mu, logvar = self.encode(flat)
        if noise is None:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        else:
            if noise.shape == (batch, mu.shape[1]):
                noise = noise[:, None].expand(batch, n_frames, mu.shape[1])
            if noise.shape != (batch, n_frames, mu.shape[1]):
                raise ValueError(
                    f"expected noise of shape ({batch}, {mu.shape[1]}) or "
                    f"({batch}, {n_frames}, {mu.shape[1]}), got {tuple(noise.shape)}"
                )
            eps = noise.reshape(batch * n_frames, -1)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = self.log_likelihood(self.decode(z), flat).reshape(batch, n_frames)
        kl = kl_standard_normal(mu, logvar).reshape(batch, n_frames).sum(1)
        zero = frames.new_zeros(batch)
        terms = self._terms(
            recon, kl, zero, zero, zero, zero, 0.0, zero.sum(), zero.sum(), self.config.beta
        )
        return terms

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def rollout(
        self,
        x0: torch.Tensor,
        gates: torch.Tensor,
        magnitudes: torch.Tensor | None = None,
        sample_z0: bool = False,
    ) -> torch.Tensor:
        """Predicted sequence from ``x0`` following given gates.

        Args:
            x0: first frames ``(batch, C, H, W)``.
            gates: ``(batch, T, K)`` or ``(batch, T, K, 2)``: spikes, or full coefficients.
            magnitudes: optional speeds ``(batch, T, K)`` multiplied into the gates
                (default 1: unit speed along each active field).
            sample_z0: sample ``z_0`` instead of using the encoder mean.

        Returns:
            Mean images ``(batch, T + 1, C, H, W)`` (frame 0 is the reconstruction of ``x0``).
        """
        self._require_flow()
        c = self.config
        check_images(x0, "x0", c.in_channels, c.image_size)
        if gates.dim() < 3:
            raise ValueError(f"expected gates of shape (batch, T, K), got {tuple(gates.shape)}")
        batch, steps = gates.shape[:2]
        self._check_gate_sequence(gates, x0.shape[0], steps)
        coefficients = gates.to(x0.dtype)
        if magnitudes is not None:
            if tuple(magnitudes.shape) != (batch, steps, c.n_fields):
                raise ValueError(
                    f"expected magnitudes of shape ({batch}, {steps}, {c.n_fields}), "
                    f"got {tuple(magnitudes.shape)}"
                )
            m = magnitudes.to(x0.dtype)
            coefficients = coefficients * (m[..., None] if coefficients.dim() == 4 else m)
        return self._rollout_coefficients(x0, coefficients, sample_z0)

    def _rollout_coefficients(
        self, x0: torch.Tensor, coefficients: torch.Tensor, sample_z0: bool
    ) -> torch.Tensor:
        mu, logvar = self.encode(x0)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample_z0 else mu
        latents = [z]
        for t in range(coefficients.shape[1]):
            z, _ = self.flow_step(z, None, coefficients[:, t], float(t))
            z = z.detach()
            latents.append(z)
        batch, n_frames = x0.shape[0], len(latents)
        images = self.decode_mean(torch.stack(latents, 1).reshape(batch * n_frames, -1))
        return images.reshape(batch, n_frames, *x0.shape[1:])

    @torch.no_grad()
    def infer_sequence_gates(self, frames: torch.Tensor) -> GateSample:
        """Deterministic gates of every transition of ``frames (batch, T + 1, C, H, W)``.

        Returns a :class:`GateSample` whose tensors are ``(batch, T, K[, 2])``; spikes are
        ``1[logit > 0]`` and the slab is the posterior median.
        """
        self._require_flow()
        frames = self._check_frames(frames)
        batch, n_frames = frames.shape[:2]
        steps = n_frames - 1
        prev = frames[:, :-1].reshape(batch * steps, *frames.shape[2:])
        nxt = frames[:, 1:].reshape(batch * steps, *frames.shape[2:])
        out = self.infer_gates(prev, nxt, sample=False)
        return GateSample(*(x.reshape(batch, steps, *x.shape[1:]) for x in out))

    @torch.no_grad()
    def reconstruct_sequence(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unsupervised prediction: infer the gates from ``frames``, flow ``z_0`` along them.

        Returns:
            ``(predicted mean images (batch, T + 1, C, H, W), spike probabilities
            (batch, T, K[, 2]))``.
        """
        gates = self.infer_sequence_gates(frames)
        predicted = self._rollout_coefficients(frames[:, 0], gates.gates, sample_z0=False)
        return predicted, torch.sigmoid(gates.spike_logits)
