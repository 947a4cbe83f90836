"""Checks for lecture 5, sparse gating: the Binary-Concrete sample and the gate accuracy.

``binary_concrete`` calls the learner's ``fn(logits, temperature, hard=False, generator=None)``
and measures what a relaxation of ``Bernoulli(sigmoid(logits))`` must satisfy: values in (0, 1),
``P(sample > 1/2) = sigmoid(logits)`` at every temperature, nearly binary samples at a low
temperature, gradients to the logits, and straight-through values in {0, 1}. ``gate_accuracy``
scores inferred gates against the true ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from . import check_shape, fail, passed

__all__ = ["binary_concrete", "gate_accuracy"]

Sampler = Callable[..., Tensor]
N_DRAWS = 20000
CALIBRATION_TOL = 0.02  # about six Monte-Carlo standard errors at 20,000 draws


def _call(name: str, fn: Sampler, *args, **kwargs) -> Tensor:
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # the learner's code may fail in any way; say where
        fail(name, f"the function raised {type(exc).__name__}: {exc}")
        raise


def binary_concrete(fn: Sampler) -> None:
    """Check a Binary-Concrete sampler ``fn(logits, temperature, hard=False, generator=None)``.

    Measured: the range of soft samples; ``max |P(sample > 1/2) - sigmoid(logit)|`` over nine
    logits at temperatures 1 and 0.3 (tolerance 0.02, 20,000 draws each); the share of nearly
    binary samples at temperature 0.05; a finite, non-zero gradient to the logits; and, with
    ``hard=True``, forward values in {0, 1} with the relaxed gradient.
    """
    name = "binary concrete"
    logits = torch.linspace(-3.0, 3.0, 9)
    batch = logits.expand(N_DRAWS, -1)
    target = torch.sigmoid(logits)
    worst = 0.0
    for temperature in (1.0, 0.3):
        gen = torch.Generator().manual_seed(11)
        y = check_shape(name, _call(name, fn, batch, temperature, generator=gen), batch.shape)
        inside = ((y > 0) & (y < 1)).float().mean().item()
        if y.min() < 0 or y.max() > 1 or inside < 0.9:
            fail(
                name,
                f"soft samples must lie in (0, 1); got range [{y.min():.3f}, {y.max():.3f}] "
                f"with {100 * inside:.0f} % strictly inside",
            )
        err = ((y > 0.5).float().mean(0) - target).abs().max().item()
        if err > CALIBRATION_TOL:
            hint = ""
            one_gumbel = 1 - torch.exp(-torch.exp(logits))
            if ((y > 0.5).float().mean(0) - one_gumbel).abs().max() < CALIBRATION_TOL:
                hint = " (this matches one Gumbel sample, 1 - exp(-e^logit): use log u - log(1-u))"
            fail(
                name,
                f"at temperature {temperature}: max |P(sample > 1/2) - sigmoid(logit)| is "
                f"{err:.3f}, tolerance {CALIBRATION_TOL}{hint}",
            )
        worst = max(worst, err)

    y_cold = _call(name, fn, batch, 0.05, generator=torch.Generator().manual_seed(12))
    binary_share = ((y_cold < 0.01) | (y_cold > 0.99)).float().mean().item()
    if binary_share < 0.9:
        fail(
            name,
            f"at temperature 0.05 only {100 * binary_share:.0f} % of samples are within 0.01 of "
            "0 or 1, expected at least 90 % (divide by the temperature)",
        )

    leaf = torch.zeros(256, requires_grad=True)
    y = _call(name, fn, leaf, 0.5, generator=torch.Generator().manual_seed(13))
    if not y.requires_grad:
        fail(name, "the sample carries no gradient to the logits")
    (grad,) = torch.autograd.grad(y.sum(), leaf)
    if not torch.isfinite(grad).all() or grad.abs().sum() == 0:
        fail(name, "the gradient to the logits is zero or not finite")

    leaf_hard = torch.zeros(256, requires_grad=True)
    y_hard = _call(
        name, fn, leaf_hard, 0.5, hard=True, generator=torch.Generator().manual_seed(13)
    )
    values = y_hard.detach()
    off = torch.minimum(values.abs(), (values - 1).abs()).max().item()
    if off > 1e-5:
        fail(name, f"hard=True must give values in {{0, 1}}; one is {off:.3f} away from both")
    (grad_hard,) = torch.autograd.grad(y_hard.sum(), leaf_hard, allow_unused=True)
    if grad_hard is None or grad_hard.abs().sum() == 0:
        fail(name, "hard=True must pass the relaxed sample's gradient (straight-through)")
    passed(
        name,
        f"max |P(sample > 1/2) - sigmoid(logit)| {worst:.3f} (tolerance {CALIBRATION_TOL}), "
        f"{100 * binary_share:.0f} % nearly binary at temperature 0.05, gradients pass",
    )


def gate_accuracy(inferred: Tensor, true: Tensor, tol: float = 0.95) -> float:
    """Share of gate decisions where ``inferred`` (in {0, 1}) equals ``true``; fail below ``tol``.

    Args:
        inferred: inferred spikes, any shape, values 0 or 1.
        true: true spikes, same shape.
        tol: smallest accepted accuracy.

    Returns:
        The accuracy in [0, 1].
    """
    inferred = check_shape("gate accuracy", inferred, true.shape)
    accuracy = (inferred.round() == true.round()).float().mean().item()
    if not math.isfinite(accuracy) or accuracy < tol:
        fail(
            "gate accuracy",
            f"{100 * accuracy:.1f} % of {true.numel()} gates, needed {100 * tol:.0f} %",
        )
    passed(
        "gate accuracy",
        f"{100 * accuracy:.1f} % of {true.numel()} gates (needed {100 * tol:.0f} %)",
    )
    return accuracy
