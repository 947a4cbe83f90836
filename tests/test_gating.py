"""Spike-and-slab machinery: Binary-Concrete, the Markov spike prior, slabs and their KLs."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.gating import (
    FoldedLaplacePrior,
    LogNormalPrior,
    LogNormalSlab,
    MarkovSpikePrior,
    binary_concrete_log_prob,
    binary_concrete_sample,
    kl_bernoulli,
    kl_bernoulli_logits,
    slab_kl,
    temperature_schedule,
)


@pytest.mark.parametrize("logit", [-2.0, 0.0, 1.5])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_binary_concrete_density_integrates_to_one(logit: float, temperature: float) -> None:
    # Integrate over x = logit(y): dy = y (1 - y) dx.
    x = torch.linspace(-60, 60, 200_001, dtype=torch.float64)
    y = torch.sigmoid(x)
    density = binary_concrete_log_prob(y, torch.tensor(logit, dtype=torch.float64), temperature)
    total = torch.trapezoid(density.exp() * y * (1 - y), x)
    assert abs(float(total) - 1.0) < 1e-4


def test_binary_concrete_density_matches_sample_histogram() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.full((400_000,), 0.7)
    y = binary_concrete_sample(logits, 0.8, generator=g)
    inside = (y > 0.3) & (y < 0.6)
    grid = torch.linspace(0.3, 0.6, 3001, dtype=torch.float64)
    mass = torch.trapezoid(
        binary_concrete_log_prob(grid, torch.tensor(0.7, dtype=torch.float64), 0.8).exp(), grid
    )
    assert abs(inside.float().mean().item() - float(mass)) < 4e-3


def test_binary_concrete_is_above_half_with_bernoulli_probability() -> None:
    # P(sigmoid((l + L) / t) > 1/2) = P(L > -l) = sigmoid(l) for every temperature.
    g = torch.Generator().manual_seed(1)
    logits = torch.tensor([-1.0, 0.0, 2.0]).repeat(200_000, 1)
    for temperature in (0.1, 1.0):
        y = binary_concrete_sample(logits, temperature, generator=g)
        rate = (y > 0.5).float().mean(0)
        assert torch.allclose(rate, torch.sigmoid(logits[0]), atol=4e-3)


def test_straight_through_spikes_are_binary_with_relaxed_gradient() -> None:
    logits = torch.randn(64, 3, requires_grad=True)
    hard = binary_concrete_sample(
        logits, 0.5, hard=True, generator=torch.Generator().manual_seed(2)
    )
    values = hard.detach()
    assert torch.minimum(values.abs(), (values - 1).abs()).max() < 1e-6
    (grad_hard,) = torch.autograd.grad((hard * torch.arange(3.0)).sum(), logits)
    soft = binary_concrete_sample(logits, 0.5, generator=torch.Generator().manual_seed(2))
    (grad_soft,) = torch.autograd.grad((soft * torch.arange(3.0)).sum(), logits)
    assert torch.allclose(grad_hard, grad_soft)
    assert grad_hard.abs().sum() > 0


def test_bernoulli_kl_is_zero_for_identical_and_positive_otherwise() -> None:
    p = torch.tensor([0.1, 0.5, 0.9])
    assert torch.allclose(kl_bernoulli(p, p), torch.zeros(3), atol=1e-7)
    assert (kl_bernoulli(p, p.flip(0))[[0, 2]] > 0.5).all()
    logits = torch.logit(p)
    assert torch.allclose(kl_bernoulli_logits(logits, p), torch.zeros(3), atol=1e-6)
    q = torch.tensor([0.3, 0.6, 0.2])
    assert torch.allclose(kl_bernoulli_logits(torch.logit(q), p), kl_bernoulli(q, p), atol=1e-6)


def test_markov_prior_log_prob_matches_the_chain() -> None:
    prior = MarkovSpikePrior(0.3, 0.8, 0.1)
    y = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    expected = (
        math.log(0.3) + math.log(0.7)  # t = 1
        + math.log(0.8) + math.log(0.1)  # t = 2
        + math.log(0.2) + math.log(0.8)  # t = 3
    )  # fmt: skip
    assert abs(float(prior.log_prob(y)) - expected) < 1e-5


def test_markov_prior_samples_reach_the_stationary_on_rate() -> None:
    prior = MarkovSpikePrior(0.5, 0.8, 0.2)
    y = prior.sample(20_000, 30, 2, generator=torch.Generator().manual_seed(3))
    stationary = 0.2 / (1 - 0.8 + 0.2)
    assert abs(float(y[:, -1].mean()) - stationary) < 0.01
    stay = (y[:, 1:] * y[:, :-1]).sum() / y[:, :-1].sum()
    assert abs(float(stay) - 0.8) < 0.01


def test_markov_prior_given_relaxed_previous_spike_interpolates() -> None:
    prior = MarkovSpikePrior(0.5, 0.9, 0.1)
    p = prior.probs_given_previous(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(p, torch.tensor([0.1, 0.5, 0.9]))


def test_lognormal_slab_kl_is_zero_for_the_prior_itself_and_matches_monte_carlo() -> None:
    prior = LogNormalPrior(1.0, 0.1)
    same = LogNormalSlab(torch.zeros(4), torch.full((4,), math.log(0.1)))
    assert torch.allclose(prior.kl(same), torch.zeros(4), atol=1e-6)
    q = LogNormalSlab(torch.full((200_000,), 0.3), torch.full((200_000,), math.log(0.2)))
    s = q.rsample(torch.Generator().manual_seed(4))
    monte_carlo = (q.log_prob(s) - prior.log_prob(s)).mean()
    assert abs(float(monte_carlo) - float(prior.kl(q)[0])) < 0.05
    assert float(prior.kl(q)[0]) > 1.0


def test_lognormal_slab_samples_are_positive_and_reparameterised() -> None:
    loc = torch.zeros(5, requires_grad=True)
    s = LogNormalSlab(loc, torch.full((5,), -1.0)).rsample()
    assert (s > 0).all()
    (grad,) = torch.autograd.grad(s.sum(), loc)
    assert torch.allclose(grad, s.detach())


def test_folded_laplace_density_integrates_to_one_and_mc_kl_is_close() -> None:
    prior = FoldedLaplacePrior(1.0, 0.1)
    grid = torch.linspace(1e-6, 4.0, 400_001, dtype=torch.float64)
    assert abs(float(torch.trapezoid(prior.log_prob(grid).exp(), grid)) - 1.0) < 1e-4
    q = LogNormalSlab(torch.tensor([0.05], dtype=torch.float64), torch.tensor([-2.0]).double())
    qd = q.log_prob(grid).exp()
    exact = torch.trapezoid(qd * (q.log_prob(grid) - prior.log_prob(grid)), grid)
    mc = slab_kl(
        LogNormalSlab(q.loc.expand(100_000), q.log_scale.expand(100_000)),
        prior,
        generator=torch.Generator().manual_seed(5),
    )
    assert abs(float(mc.mean()) - float(exact)) < 0.02


def test_temperature_schedule_decays_to_its_floor() -> None:
    assert temperature_schedule(0) == 1.0
    assert abs(temperature_schedule(10_000, 3e-5) - math.exp(-0.3)) < 1e-12
    assert temperature_schedule(10**7, 3e-5, 0.05) == 0.05


def test_bad_gating_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="positive finite temperature"):
        binary_concrete_sample(torch.zeros(2), 0.0)
    with pytest.raises(ValueError, match="p_stay_on strictly between 0 and 1"):
        MarkovSpikePrior(0.5, 1.0, 0.1)
    with pytest.raises(ValueError, match="one shape"):
        LogNormalSlab(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(batch, T, K\)"):
        MarkovSpikePrior().log_prob(torch.zeros(2, 3))
