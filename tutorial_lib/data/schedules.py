"""Spike-and-slab schedules that say which transformations act at each step of a sequence.

Each sample of a batch gets its own schedule (nothing is shared across a batch). Per field k
the spike ``y_t^k`` follows a two-state Markov chain:

    P(y_1 = 1) = p_first_on,
    P(y_t = 1 | y_{t-1} = 1) = p_stay_on,   P(y_t = 1 | y_{t-1} = 0) = p_switch_on,

and the slab is a positive speed drawn independently for every (sample, step, field). The
magnitude returned is ``y * slab``: zero where the gate is off. With ``at_least_one=True`` a
step whose spikes are all off gets one field, chosen uniformly, switched on; the chain that
follows uses the corrected state, so the on-rate is then higher than the chain's alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["GateSchedule", "stationary_on_rate"]

SLAB_FAMILIES = ("lognormal", "gamma", "folded_laplace", "constant")


def stationary_on_rate(p_stay_on: float, p_switch_on: float) -> float:
    """Long-run fraction of steps a two-state chain is on: ``s / (1 - p + s)``."""
    return p_switch_on / (1.0 - p_stay_on + p_switch_on)


@dataclass(frozen=True)
class GateSchedule:
    """Per-sample Markov spikes with a positive slab.

    Args:
        n_fields: number of transformations K.
        p_first_on: probability a field is on at the first step.
        p_stay_on: probability an on field stays on.
        p_switch_on: probability an off field switches on.
        at_least_one: switch one random field on at steps where all are off.
        slab: ``"lognormal"`` (``loc exp(spread N)``: median ``loc``, log-speed std ``spread``),
            ``"gamma"`` (``loc`` mean, ``spread`` std), ``"folded_laplace"`` (``|loc + spread L|``
            with L standard Laplace, the published prior is loc 1, spread 0.1) or
            ``"constant"`` (always ``loc``).
        loc, spread: slab parameters as above.
    """

    n_fields: int
    p_first_on: float = 0.5
    p_stay_on: float = 0.8
    p_switch_on: float = 0.2
    at_least_one: bool = True
    slab: str = "constant"
    loc: float = 1.0
    spread: float = 0.0

    def __post_init__(self) -> None:
        if self.n_fields < 1:
            raise ValueError(f"expected n_fields >= 1, got {self.n_fields}")
        for name in ("p_first_on", "p_stay_on", "p_switch_on"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"expected {name} in [0, 1], got {value}")
        if self.slab not in SLAB_FAMILIES:
            raise ValueError(f"expected slab in {SLAB_FAMILIES}, got {self.slab!r}")
        if self.spread < 0:
            raise ValueError(f"expected spread >= 0, got {self.spread}")
        if self.slab in ("gamma", "constant", "lognormal") and self.loc <= 0:
            raise ValueError(f"expected a positive slab loc for {self.slab}, got {self.loc}")
        if self.slab == "gamma" and self.spread <= 0:
            raise ValueError(f"expected spread > 0 for the gamma slab, got {self.spread}")

    def sample_gates(
        self, batch: int, n_steps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw spikes ``(batch, n_steps, n_fields)`` in {0, 1} (float)."""
        uniform = torch.rand(batch, n_steps, self.n_fields, generator=generator)
        pick = torch.randint(self.n_fields, (batch, n_steps), generator=generator)
        gates = torch.zeros(batch, n_steps, self.n_fields)
        previous = None
        for t in range(n_steps):
            if previous is None:
                p_on = torch.full((batch, self.n_fields), self.p_first_on)
            else:
                p_on = torch.where(previous > 0, self.p_stay_on, self.p_switch_on)
            current = (uniform[:, t] < p_on).float()
            if self.at_least_one:
                none_on = current.sum(dim=1) == 0
                forced = torch.nn.functional.one_hot(pick[:, t], self.n_fields).float()
                current = torch.where(none_on[:, None], forced, current)
            gates[:, t] = current
            previous = current
        return gates

    def sample_slab(
        self, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw positive speeds of the given shape."""
        if self.slab == "constant":
            return torch.full(shape, float(self.loc))
        if self.slab == "lognormal":
            noise = torch.randn(shape, generator=generator)
            return self.loc * torch.exp(self.spread * noise)
        if self.slab == "folded_laplace":
            u = torch.rand(shape, generator=generator) - 0.5
            laplace = -torch.sign(u) * torch.log1p(-2.0 * u.abs())
            speed = (self.loc + self.spread * laplace).abs()
            return speed.clamp_min(torch.finfo(speed.dtype).tiny)
        # Gamma with mean loc and std spread; torch's sampler takes no generator, so a numpy
        # generator seeded from the torch one keeps the draw reproducible.
        seed = int(torch.randint(2**62, (1,), generator=generator).item())
        shape_k = (self.loc / self.spread) ** 2
        scale_theta = self.spread**2 / self.loc
        draws = np.random.default_rng(seed).gamma(shape_k, scale_theta, size=shape)
        return torch.from_numpy(draws).float().clamp_min(torch.finfo(torch.float32).tiny)

    def sample(
        self, batch: int, n_steps: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one schedule per sample.

        Returns:
            gates ``(batch, n_steps, n_fields)`` in {0, 1} and magnitudes
            ``(batch, n_steps, n_fields)``: positive where the gate is on, zero where off.
        """
        if batch < 1 or n_steps < 1:
            raise ValueError(f"expected batch >= 1 and n_steps >= 1, got {batch}, {n_steps}")
        gates = self.sample_gates(batch, n_steps, generator)
        magnitudes = gates * self.sample_slab((batch, n_steps, self.n_fields), generator)
        return gates, magnitudes
