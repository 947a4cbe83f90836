"""The spike-and-slab schedules match their configured Markov chain and slab."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.data.schedules import GateSchedule, stationary_on_rate


def _within_three_se(empirical: float, p: float, n: int) -> bool:
    return abs(empirical - p) <= 3.0 * math.sqrt(p * (1.0 - p) / n)


def test_gate_rates_match_the_markov_chain_within_three_standard_errors() -> None:
    schedule = GateSchedule(3, p_first_on=0.3, p_stay_on=0.7, p_switch_on=0.15, at_least_one=False)
    gates, _ = schedule.sample(4000, 10, torch.Generator().manual_seed(0))
    first = gates[:, 0]
    previous, current = gates[:, :-1], gates[:, 1:]
    was_on, was_off = previous == 1, previous == 0
    n_on, n_off = int(was_on.sum()), int(was_off.sum())
    stay = float(current[was_on].mean())
    switch = float(current[was_off].mean())
    assert _within_three_se(float(first.mean()), 0.3, first.numel())
    assert _within_three_se(stay, 0.7, n_on)
    assert _within_three_se(switch, 0.15, n_off)


def test_long_run_on_rate_is_the_stationary_rate() -> None:
    schedule = GateSchedule(
        1,
        p_first_on=stationary_on_rate(0.9, 0.05),
        p_stay_on=0.9,
        p_switch_on=0.05,
        at_least_one=False,
    )
    gates, _ = schedule.sample(20000, 6, torch.Generator().manual_seed(1))
    assert stationary_on_rate(0.9, 0.05) == pytest.approx(1 / 3)
    # Consecutive steps are correlated, so compare per step (independent samples) at the last.
    assert _within_three_se(float(gates[:, -1].mean()), 1 / 3, 20000)


def test_at_least_one_rule_leaves_no_step_empty() -> None:
    schedule = GateSchedule(3, p_first_on=0.1, p_stay_on=0.3, p_switch_on=0.05)
    gates, _ = schedule.sample(500, 8, torch.Generator().manual_seed(2))
    assert bool((gates.sum(dim=-1) >= 1).all())
    assert float(gates.mean()) < 0.6  # still sparse: the rule adds one field, not all


def test_schedules_differ_between_samples_of_a_batch() -> None:
    gates, _ = GateSchedule(3).sample(64, 8, torch.Generator().manual_seed(3))
    distinct = {tuple(row.flatten().tolist()) for row in gates}
    assert len(distinct) > 32


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    schedule = GateSchedule(3, slab="lognormal", spread=0.2)
    a = schedule.sample(16, 8, torch.Generator().manual_seed(4))
    b = schedule.sample(16, 8, torch.Generator().manual_seed(4))
    c = schedule.sample(16, 8, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize(
    ("slab", "loc", "spread", "statistic", "target"),
    [
        ("constant", 1.5, 0.0, "mean", 1.5),
        ("lognormal", 2.0, 0.3, "median", 2.0),
        ("gamma", 1.0, 0.2, "mean", 1.0),
        ("folded_laplace", 1.0, 0.1, "median", 1.0),
    ],
)
def test_slab_is_positive_and_centred_where_configured(slab, loc, spread, statistic, target):
    schedule = GateSchedule(2, p_first_on=0.6, slab=slab, loc=loc, spread=spread)
    gates, magnitudes = schedule.sample(2000, 5, torch.Generator().manual_seed(6))
    on = magnitudes[gates == 1]
    assert bool((on > 0).all())
    assert bool((magnitudes[gates == 0] == 0).all())
    value = float(on.mean() if statistic == "mean" else on.median())
    assert value == pytest.approx(target, rel=0.02)
    if slab == "gamma":
        assert float(on.std()) == pytest.approx(0.2, rel=0.05)


def test_invalid_probabilities_are_named() -> None:
    with pytest.raises(ValueError, match=r"expected p_stay_on in \[0, 1\], got 1.5"):
        GateSchedule(3, p_stay_on=1.5)
