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
# # Exercises 4: Helmholtz decomposition
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/solutions/04_helmholtz.ipynb)
#
# You write the field that a Helmholtz fit trains, $v = \nabla u + S\nabla\psi$, then fit it to the lecture's test field and check that both parts come back.
#
# **Learning goals**
#
# - Build $\nabla u + S\nabla\psi$ from two scalar functions with automatic differentiation, in a form that can be trained.
# - Recover the curl-free and the divergence-free part of a given field, with a decay condition that makes the split unique.

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
import torch

from tutorial_lib import fields
from tutorial_lib.checks import lecture04 as check
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=2)
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# ## 1. The Helmholtz field
#
# Write `helmholtz_velocity(u, psi, z)`: given scalar functions $u$ and $\psi$ (each maps `(batch, 2)` to `(batch,)`) and points `z` of shape `(batch, 2)`,
# return $\nabla u(z) + S\nabla\psi(z)$ with $S\nabla\psi = (\partial_2\psi, -\partial_1\psi)$, shape `(batch, 2)`.
#
# The result will be trained, so the gradients must keep their graph: `torch.autograd.grad(..., create_graph=True)`.


# %%
def helmholtz_velocity(u, psi, z):
    """grad u + S grad psi at z (batch, 2) -> (batch, 2), differentiable for training."""
    # BEGIN SOLUTION hint: Take grad u and grad psi with torch.autograd.grad(create_graph=True); S g = (g_2, -g_1).
    if not z.requires_grad:
        z = z.detach().requires_grad_(True)
    grad_u = torch.autograd.grad(u(z).sum(), z, create_graph=True)[0]
    grad_psi = torch.autograd.grad(psi(z).sum(), z, create_graph=True)[0]
    return grad_u + torch.stack([grad_psi[:, 1], -grad_psi[:, 0]], dim=1)
    # END SOLUTION


# %%
check.helmholtz_field(helmholtz_velocity)

# %% [markdown]
# ## 2. Fit both parts
#
# The lecture's test field comes from `check.test_potentials()`. We fit two small networks $u_\theta$, $\psi_\theta$ so that
# `helmholtz_velocity(u_theta, psi_theta, z)` matches it on the box $[-3, 3]^2$, and ask both parts to vanish on the box's edge,
# the condition that removes harmonic fields from the split.

# %%
u_true, psi_true = check.test_potentials()
torch.manual_seed(0)
u_net, psi_net = fields.mlp(2, 1, hidden=32), fields.mlp(2, 1, hidden=32)
u_theta = lambda z: u_net(z)[:, 0]
psi_theta = lambda z: psi_net(z)[:, 0]
zero = lambda z: (z * 0.0).sum(1)
params = list(u_net.parameters()) + list(psi_net.parameters())
optimizer = torch.optim.Adam(params, lr=5e-3)
n_iters = 700
schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_iters)
for _ in range(n_iters):
    z = (2 * torch.rand(256, 2) - 1) * 3.0
    edge = (2 * torch.rand(64, 2) - 1) * 3.0
    side = torch.randint(0, 2, (64,))
    edge[torch.arange(64), side] = 3.0 * torch.sign(edge[torch.arange(64), side])
    target = helmholtz_velocity(u_true, psi_true, z.clone()).detach()
    fit = ((helmholtz_velocity(u_theta, psi_theta, z.clone()) - target) ** 2).sum(1).mean()
    decay = (helmholtz_velocity(u_theta, zero, edge.clone()) ** 2).sum(1).mean() + (
        helmholtz_velocity(zero, psi_theta, edge.clone()) ** 2
    ).sum(1).mean()
    loss = fit + decay
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
print(f"final fit loss {fit.item():.3f}, decay penalty {decay.item():.3f}")

# %%
errors = check.recovered_parts(helmholtz_velocity, u_theta, psi_theta)

# %% [markdown]
# **Check yourself.** Drop the decay penalty and train again from two seeds. What happens to the parts, and to the sum?
#
# <details><summary>Answer</summary>
#
# The sum is still fitted, but the parts change from seed to seed: they trade a harmonic field, which is curl-free and divergence-free at once,
# so the fit loss cannot tell the splits apart (lecture 4, section 3).
#
# </details>
#
# ## Summary
#
# $\nabla u + S\nabla\psi$ takes two backward passes; kept with `create_graph=True` it trains like any network output,
# and with a decay condition on the edge it recovers each part of a field, not only their sum.
