"""Spike-and-slab gates: Binary-Concrete spikes, a Markov spike prior, positive slabs, their KLs.

A gate is ``g = y * s``: a spike ``y`` in {0, 1} says whether a field is active, a positive
slab ``s`` says how fast it moves. Shapes are written ``(batch, K)`` for one time step and
``(batch, T, K)`` for a sequence of ``T`` transitions.

The Binary-Concrete (relaxed Bernoulli) distribution is that of Maddison, Mnih and Teh,
"The Concrete Distribution", ICLR 2017, section 3.3 and appendix: with logistic noise
``L = log u - log(1 - u)``, ``u ~ U(0, 1)``, the sample ``sigmoid((logits + L) / temperature)``
tends to a ``Bernoulli(sigmoid(logits))`` sample as the temperature goes to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = [
    "binary_concrete_sample",
    "binary_concrete_log_prob",
    "kl_bernoulli",
    "kl_bernoulli_logits",
    "MarkovSpikePrior",
    "LogNormalSlab",
    "LogNormalPrior",
    "FoldedLaplacePrior",
    "slab_kl",
    "temperature_schedule",
]

_EPS = 1e-6


def _check_temperature(temperature: float) -> float:
    temperature = float(temperature)
    if not temperature > 0.0 or not math.isfinite(temperature):
        raise ValueError(f"expected a positive finite temperature, got {temperature!r}")
    return temperature


def _check_prob(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"expected {name} strictly between 0 and 1, got {value!r}")
    return value


def binary_concrete_sample(
    logits: torch.Tensor,
    temperature: float,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw relaxed spikes from Binary-Concrete(logits, temperature).

    ``y = sigmoid((logits + log u - log(1 - u)) / temperature)`` with ``u ~ U(0, 1)``: one
    logistic sample per entry (the difference of two Gumbel samples, not one Gumbel sample).

    Args:
        logits: spike logits of any shape, e.g. ``(batch, K)``.
        temperature: relaxation temperature > 0; small values give nearly binary samples.
        hard: straight-through: the forward value is the rounded spike in {0, 1}, the gradient
            is that of the relaxed sample.
        generator: optional torch generator for the uniform noise.

    Returns:
        Spikes of the same shape as ``logits``, in (0, 1) (or {0, 1} when ``hard``).
    """
    temperature = _check_temperature(temperature)
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    u = u.clamp(_EPS, 1.0 - _EPS)
    noise = torch.log(u) - torch.log1p(-u)
    soft = torch.sigmoid((logits + noise) / temperature)
    if not hard:
        return soft
    rounded = (soft > 0.5).to(soft.dtype)
    return rounded + soft - soft.detach()


def binary_concrete_log_prob(
    y: torch.Tensor, logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Log-density of Binary-Concrete(logits, temperature) at relaxed spikes ``y`` in (0, 1).

    ``log p(y) = log t + l - (t + 1)(log y + log(1 - y)) - 2 log(e^l y^-t + (1 - y)^-t)``
    (Maddison et al. 2017, appendix), computed with ``logaddexp`` for stability.

    Args:
        y: relaxed spikes in (0, 1), any shape broadcastable with ``logits``.
        logits: spike logits.
        temperature: temperature > 0.

    Returns:
        Elementwise log-density, the broadcast shape of ``y`` and ``logits``.
    """
    temperature = _check_temperature(temperature)
    tiny = torch.finfo(y.dtype).tiny
    log_y, log_1my = torch.log(y.clamp_min(tiny)), torch.log((1.0 - y).clamp_min(tiny))
    denominator = torch.logaddexp(logits - temperature * log_y, -temperature * log_1my)
    return (
        math.log(temperature)
        + logits
        - (temperature + 1.0) * (log_y + log_1my)
        - 2.0 * denominator
    )


def kl_bernoulli(q_probs: torch.Tensor, p_probs: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(Bernoulli(q) || Bernoulli(p))`` in nats; 0 exactly when ``q == p``.

    Probabilities are clamped to ``[1e-6, 1 - 1e-6]`` so that the result stays finite.
    """
    q = q_probs.clamp(_EPS, 1.0 - _EPS)
    p = p_probs.clamp(_EPS, 1.0 - _EPS)
    return q * (torch.log(q) - torch.log(p)) + (1.0 - q) * (torch.log1p(-q) - torch.log1p(-p))


def kl_bernoulli_logits(q_logits: torch.Tensor, p_probs: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(Bernoulli(sigmoid q_logits) || Bernoulli(p_probs))``, stable in logits.

    Args:
        q_logits: posterior logits, e.g. ``(batch, K)``.
        p_probs: prior probabilities of the same (or broadcastable) shape; may carry gradient
            (for example through the previous relaxed spike of a Markov prior).

    Returns:
        Elementwise KL in nats, non-negative.
    """
    q = torch.sigmoid(q_logits)
    log_q, log_1mq = F.logsigmoid(q_logits), F.logsigmoid(-q_logits)
    p = p_probs.clamp(_EPS, 1.0 - _EPS)
    return q * (log_q - torch.log(p)) + (1.0 - q) * (log_1mq - torch.log1p(-p))


@dataclass(frozen=True)
class MarkovSpikePrior:
    """Per-field two-state Markov chain over spikes (METHOD.md section 3).

    ``p(y_1 = 1) = p_on_first``; ``p(y_t = 1 | y_{t-1} = 1) = p_stay_on``;
    ``p(y_t = 1 | y_{t-1} = 0) = p_switch_on``. Fields are independent.

    Args:
        p_on_first: probability that a field is on at the first transition.
        p_stay_on: probability that an active field stays on.
        p_switch_on: probability that an inactive field switches on.
    """

    p_on_first: float = 0.3
    p_stay_on: float = 0.5
    p_switch_on: float = 0.2

    def __post_init__(self) -> None:
        _check_prob(self.p_on_first, "p_on_first")
        _check_prob(self.p_stay_on, "p_stay_on")
        _check_prob(self.p_switch_on, "p_switch_on")

    def probs_given_previous(
        self, y_prev: torch.Tensor | None, like: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Prior ``p(y_t = 1 | y_{t-1})`` for every field.

        Args:
            y_prev: previous spikes ``(batch, K)`` in [0, 1] (relaxed values interpolate
                linearly and keep the gradient), or ``None`` for the first transition.
            like: a tensor ``(batch, K)`` giving shape, dtype and device when ``y_prev`` is None.

        Returns:
            Probabilities ``(batch, K)``.
        """
        if y_prev is None:
            if like is None:
                raise ValueError("expected `like` (batch, K) when y_prev is None, got None")
            return torch.full_like(like, self.p_on_first)
        return y_prev * self.p_stay_on + (1.0 - y_prev) * self.p_switch_on

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        """Log-probability of binary spike sequences.

        Args:
            y: spikes ``(batch, T, K)`` in {0, 1}.

        Returns:
            ``(batch,)``: the sum over transitions and fields.
        """
        if y.dim() != 3:
            raise ValueError(f"expected y of shape (batch, T, K), got {tuple(y.shape)}")
        total = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        previous = None
        for t in range(y.shape[1]):
            p = self.probs_given_previous(previous, like=y[:, t]).clamp(_EPS, 1 - _EPS)
            total = total + (y[:, t] * p.log() + (1 - y[:, t]) * (1 - p).log()).sum(-1)
            previous = y[:, t]
        return total

    def sample(
        self, batch: int, n_steps: int, n_fields: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Sample spike sequences ``(batch, n_steps, n_fields)`` in {0, 1} (float)."""
        out = torch.zeros(batch, n_steps, n_fields)
        previous = None
        for t in range(n_steps):
            p = self.probs_given_previous(previous, like=out[:, t])
            out[:, t] = (torch.rand(batch, n_fields, generator=generator) < p).float()
            previous = out[:, t]
        return out


class LogNormalSlab:
    """Reparameterised positive slab ``s = exp(loc + scale * eps)``, ``eps ~ N(0, 1)``.

    Args:
        loc: mean of ``log s``, e.g. ``(batch, K)``.
        log_scale: log standard deviation of ``log s``, same shape.
    """

    def __init__(self, loc: torch.Tensor, log_scale: torch.Tensor) -> None:
        if loc.shape != log_scale.shape:
            raise ValueError(
                f"expected loc and log_scale of one shape, got {tuple(loc.shape)} "
                f"and {tuple(log_scale.shape)}"
            )
        self.loc = loc
        self.log_scale = log_scale

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    @property
    def median(self) -> torch.Tensor:
        """``exp(loc)``: the deterministic speed used at evaluation."""
        return self.loc.exp()

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterised sample, same shape as ``loc``, strictly positive."""
        eps = torch.randn(
            self.loc.shape, generator=generator, device=self.loc.device, dtype=self.loc.dtype
        )
        return torch.exp(self.loc + self.scale * eps)

    def log_prob(self, s: torch.Tensor) -> torch.Tensor:
        """Elementwise log-density at positive ``s``."""
        log_s = torch.log(s)
        z = (log_s - self.loc) / self.scale
        return -0.5 * z**2 - self.log_scale - 0.5 * math.log(2 * math.pi) - log_s


@dataclass(frozen=True)
class LogNormalPrior:
    """Log-normal slab prior ``log s ~ N(log median, sigma^2)``, concentrated near ``median``.

    With ``median = 1`` and ``sigma = 0.1`` its mean is ``exp(0.005) = 1.005`` and its standard
    deviation about 0.10, the same location and spread as the folded Laplace(1, 0.1) used in the
    published model, but the KL from a log-normal posterior is closed form (a Gaussian KL in
    ``log s``), exact and free of Monte-Carlo noise; that is why it is the default.
    """

    median: float = 1.0
    sigma: float = 0.1

    def __post_init__(self) -> None:
        if not self.median > 0 or not self.sigma > 0:
            raise ValueError(
                f"expected positive median and sigma, got median={self.median!r}, "
                f"sigma={self.sigma!r}"
            )

    def log_prob(self, s: torch.Tensor) -> torch.Tensor:
        """Elementwise log-density at positive ``s``."""
        log_s = torch.log(s)
        z = (log_s - math.log(self.median)) / self.sigma
        return -0.5 * z**2 - math.log(self.sigma) - 0.5 * math.log(2 * math.pi) - log_s

    def kl(self, q: LogNormalSlab) -> torch.Tensor:
        """Closed-form ``KL(q || prior)`` elementwise: the Gaussian KL of the logarithms."""
        mu_p, sigma_p = math.log(self.median), self.sigma
        var_ratio = (q.scale / sigma_p) ** 2
        return 0.5 * (var_ratio + ((q.loc - mu_p) / sigma_p) ** 2 - 1.0 - torch.log(var_ratio))


@dataclass(frozen=True)
class FoldedLaplacePrior:
    """Laplace(loc, b) folded onto the positive half-line: ``p(s) = L(s) + L(-s)``, ``s > 0``.

    The published model's slab prior (loc 1, b 0.1). Its KL from a log-normal posterior has no
    closed form; :meth:`kl` is a reparameterised Monte-Carlo estimate (unbiased, with variance).
    """

    loc: float = 1.0
    b: float = 0.1

    def __post_init__(self) -> None:
        if not self.b > 0:
            raise ValueError(f"expected a positive Laplace scale b, got {self.b!r}")

    def log_prob(self, s: torch.Tensor) -> torch.Tensor:
        """Elementwise log-density at positive ``s``."""
        const = -math.log(2 * self.b)
        right = const - (s - self.loc).abs() / self.b
        left = const - (s + self.loc).abs() / self.b
        return torch.logaddexp(right, left)

    def kl(
        self, q: LogNormalSlab, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Monte-Carlo ``KL(q || prior)`` elementwise from ``n_samples`` reparameterised draws."""
        total = torch.zeros_like(q.loc)
        for _ in range(n_samples):
            s = q.rsample(generator)
            total = total + q.log_prob(s) - self.log_prob(s)
        return total / n_samples


def slab_kl(
    q: LogNormalSlab,
    prior: LogNormalPrior | FoldedLaplacePrior,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``KL(q || prior)`` elementwise: closed form for a log-normal prior, else Monte Carlo."""
    if isinstance(prior, LogNormalPrior):
        return prior.kl(q)
    if isinstance(prior, FoldedLaplacePrior):
        return prior.kl(q, n_samples=n_samples, generator=generator)
    raise TypeError(f"expected a LogNormalPrior or FoldedLaplacePrior, got {type(prior).__name__}")


def temperature_schedule(step: int, rate: float = 3e-5, floor: float = 0.05) -> float:
    """Annealed Binary-Concrete temperature ``max(exp(-rate * step), floor)``.

    The published schedule is ``rate = 3e-5`` and ``floor = 0.05`` for 100k iterations; short
    runs use a larger rate so that the temperature reaches the floor in their budget.
    """
    if step < 0:
        raise ValueError(f"expected a non-negative step, got {step!r}")
    if not floor > 0:
        raise ValueError(f"expected a positive floor, got {floor!r}")
    return max(math.exp(-rate * step), floor)
