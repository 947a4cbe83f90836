# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 5: Sparse gating in 2-D
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/solutions/05_sparse_gating.ipynb)
#
# You write the Binary-Concrete sample, check that it relaxes the right Bernoulli variable, and use it to train the gate posterior of lecture 5.
#
# **Learning goals**
#
# - Write $\sigma((\ell + \log u - \log(1-u))/\tau)$ with an optional straight-through rounding.
# - See that your sample's rounded value is Bernoulli$(\sigma(\ell))$ at every temperature.
# - Train a posterior with your sampler and reach at least 95 % held-out gate accuracy.

# %%
import sys

if "google.colab" in sys.modules:  # install the course library only on Colab; keep Colab's torch
    import subprocess

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "tutorial-lib @ git+https://github.com/sparse-flows/sparse-flow-course",
        ],
        check=True,
    )
import math

import torch
from torch import nn

from tutorial_lib import gating
from tutorial_lib.checks import lecture05 as check
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=2)
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# ## 1. The Binary-Concrete sample
#
# Write `binary_concrete(logits, temperature, hard=False, generator=None)`:
#
# - draw $u \sim \mathcal U(0, 1)$ of the shape of `logits` (pass `generator` to `torch.rand`), clamp it to $[10^{-6}, 1 - 10^{-6}]$;
# - form the logistic noise $L = \log u - \log(1-u)$ and return $y = \sigma((\ell + L)/\tau)$;
# - with `hard=True`, return the rounded value $\mathbb 1[y > \tfrac12]$ in the forward pass and $y$'s gradient in the backward pass.


# %%
def binary_concrete(logits, temperature, hard=False, generator=None):
    """Relaxed spikes of Binary-Concrete(logits, temperature), same shape as logits."""
    # BEGIN SOLUTION hint: Logistic noise log(u) - log(1 - u), then sigmoid((logits + noise) / temperature); straight-through: rounded + soft - soft.detach().
    u = torch.rand(logits.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)
    if not hard:
        return soft
    return (soft > 0.5).float() + soft - soft.detach()
    # END SOLUTION


# %%
check.binary_concrete(binary_concrete)

# %% [markdown]
# ## 2. Gate inference with your sampler
#
# The setting of lecture 5, in brief: four affine fields, clouds of six points, Markov spikes and log-normal slabs,
# a posterior that reads the least-squares affine map between two clouds. Only the spike sample is yours.

# %%
K, N_POINTS, N_STEPS, NOISE = 4, 6, 4, 0.05
generators = torch.zeros(K, 3, 3)
generators[0, :2, :2] = torch.tensor([[0.0, -0.6], [0.6, 0.0]])  # rotation
generators[1, :2, :2] = 0.3 * torch.eye(2)  # expansion
generators[2, :2, :2] = torch.tensor([[0.0, 0.6], [0.0, 0.0]])  # shear
generators[3, :2, 2] = torch.tensor([0.7, 0.0])  # translation
spike_prior = gating.MarkovSpikePrior(p_on_first=0.4, p_stay_on=0.6, p_switch_on=0.25)
slab_prior = gating.LogNormalPrior(median=1.0, sigma=0.1)


def gated_step(z, gates):
    flow_map = torch.linalg.matrix_exp(torch.einsum("...k,kij->...ij", gates, generators))
    return z @ flow_map[..., :2, :2].transpose(-1, -2) + flow_map[..., None, :2, 2]


def make_sequences(n, generator):
    spikes = spike_prior.sample(n, N_STEPS, K, generator=generator)
    slabs = torch.exp(slab_prior.sigma * torch.randn(n, N_STEPS, K, generator=generator))
    clouds = [torch.randn(n, N_POINTS, 2, generator=generator)]
    for t in range(N_STEPS):
        clouds.append(gated_step(clouds[-1], spikes[:, t] * slabs[:, t]))
    clouds = torch.stack(clouds, dim=1)
    return clouds + NOISE * torch.randn(clouds.shape, generator=generator), spikes


def pair_summary(z_from, z_to):
    ones = torch.ones_like(z_from[..., :1])
    solution = torch.linalg.lstsq(torch.cat([z_from, ones], -1), z_to).solution
    return (solution.transpose(-1, -2) - torch.eye(2, 3)).flatten(-2)


data_gen = torch.Generator().manual_seed(3)
train_z, _ = make_sequences(3000, data_gen)
test_z, test_y = make_sequences(1000, data_gen)
net = nn.Sequential(
    nn.Linear(6, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2 * K)
)
slab_log_scale = nn.Parameter(torch.full((K,), -2.0))
print(f"{len(train_z)} training and {len(test_z)} held-out sequences of {N_STEPS} steps")

# %% [markdown]
# Training: the negative ELBO of lecture 5 with your straight-through spikes and an annealed temperature,
# then the held-out gate accuracy, which must reach 95 %.

# %%
torch.manual_seed(0)
optimizer = torch.optim.Adam([*net.parameters(), slab_log_scale], lr=3e-3)
n_iters = 1000
rate = math.log(10) / (0.7 * n_iters)
p_stay, p_switch = torch.tensor(spike_prior.p_stay_on), torch.tensor(spike_prior.p_switch_on)
for step in range(n_iters):
    clouds = train_z[torch.randint(0, len(train_z), (64,))]
    out = net(pair_summary(clouds[:, :-1], clouds[:, 1:]))
    logits, loc = out[..., :K], out[..., K:]
    temperature = gating.temperature_schedule(step, rate=rate, floor=0.1)
    spikes = binary_concrete(logits, temperature, hard=True)
    slab = gating.LogNormalSlab(loc, slab_log_scale.expand_as(loc))
    predicted = gated_step(clouds[:, :-1], spikes * slab.rsample())
    recon = ((predicted - clouds[:, 1:]) ** 2).sum((-1, -2)) / (2 * NOISE**2)
    q_prev = torch.sigmoid(logits[:, :-1])
    kl_spike = (
        gating.kl_bernoulli_logits(logits[:, :1], torch.tensor(spike_prior.p_on_first)).sum()
        + (
            q_prev * gating.kl_bernoulli_logits(logits[:, 1:], p_stay)
            + (1 - q_prev) * gating.kl_bernoulli_logits(logits[:, 1:], p_switch)
        ).sum()
    )
    loss = (recon.sum() + kl_spike + slab_prior.kl(slab).sum()) / len(clouds)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final loss {loss.item():.1f} nats per sequence")
with torch.no_grad():
    inferred = (net(pair_summary(test_z[:, :-1], test_z[:, 1:]))[..., :K] > 0).float()
accuracy = check.gate_accuracy(inferred, test_y, tol=0.95)

# %% [markdown]
# **Check yourself.** Replace the logistic noise by one Gumbel sample, $-\log(-\log u)$, and run the check again. What does it report?
#
# <details><summary>Answer</summary>
#
# It fails on calibration: the rounded sample is on with probability $1 - \exp(-e^{\ell})$ instead of $\sigma(\ell)$, up to 0.2 away,
# so the KL computed for Bernoulli$(\sigma(\ell))$ no longer describes the spikes the decoder sees.
#
# </details>
#
# ## Summary
#
# Binary-Concrete adds logistic noise, the difference of two Gumbel samples, to the logit; its rounded value is then exactly
# Bernoulli$(\sigma(\ell))$, and with straight-through rounding it trains a gate posterior that finds the active fields.
