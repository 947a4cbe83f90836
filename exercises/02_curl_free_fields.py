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
# # Exercises for lecture 2: curl-free fields and optimal transport
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/exercises/02_curl_free_fields.ipynb)
#
# **Learning goals**
#
# - Write the gradient of a potential by automatic differentiation.
# - Write the Hamilton–Jacobi residual $\partial_s u + \tfrac12\|\nabla_z u\|^2$ per sample, each sample at its own time.
# - Use both to train a small transport potential between two Gaussians and compare its cost with the closed-form $W_2^2$.
#
# After each exercise a check runs your function on cases with known answers and prints `PASS ...`, or says what is wrong with the numbers.

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

from tutorial_lib import flows
from tutorial_lib.checks import lecture02 as check
from tutorial_lib.fields import PotentialField
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=1)  # small 2-D networks run fastest on one thread
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# ## Exercise 1: the gradient of a potential
#
# Write `potential_gradient(u, z)`: given a potential `u` that maps points `(batch, dim)` to values `(batch,)`, return $\nabla u(z)$ of shape `(batch, dim)`.
# Each row of `u(z)` depends only on its own point, so one reverse pass of the *sum* gives every row's gradient.
# Keep the graph (`create_graph=True`) so the result can itself be differentiated.


# %%
def potential_gradient(u, z):
    """grad u at z: u maps (batch, dim) -> (batch,); returns (batch, dim)."""
    raise NotImplementedError(
        "Exercise: Make z require grad, then torch.autograd.grad(u(z).sum(), z, create_graph=True)."
    )


# %%
check.potential_gradient(potential_gradient)

# %% [markdown]
# ## Exercise 2: the Hamilton–Jacobi residual, per sample
#
# Write `hj_residual(u, z, s)`: `u(z, s)` maps points `(batch, dim)` and times `(batch,)` to `(batch,)`; return $r_i = \partial_s u(z_i, s_i) + \tfrac12\|\nabla_z u(z_i, s_i)\|^2$, shape `(batch,)`.
# Every sample has its own time $s_i$: differentiate with respect to the tensor `s`, not a single number shared by the batch.
# The residual becomes a training loss, so keep the graph.


# %%
def hj_residual(u, z, s):
    """Per-sample residual du/ds + 0.5 |grad_z u|^2 at (z_i, s_i); returns (batch,)."""
    raise NotImplementedError(
        "Exercise: Make z and s require grad; one torch.autograd.grad of u(z, s).sum() with respect to (z, s), create_graph=True."
    )


# %%
check.hj_residual(hj_residual)

# %% [markdown]
# ## Using your functions: transport between two Gaussians
#
# We carry $p_0 = \mathcal N(0, I)$ to $p_1 = \mathcal N(m, \sigma^2 I)$ with $m = (2, 1)$, $\sigma = 0.5$.
# The optimal map is $T(z) = m + \sigma z$ and the closed-form cost is $W_2^2 = \|m\|^2 + 2(1 - \sigma)^2 = 5.5$ (Dowson and Landau, 1982).
# The loss is the lecture's: the endpoint KL after two exact-log-determinant Euler steps (enough, since a solution of the equation moves particles at constant velocity), plus your Hamilton–Jacobi residual at one random time per sample on the sample's path.

# %%
mean1, sigma1 = torch.tensor([2.0, 1.0]), 0.5
w2_squared = float(mean1.pow(2).sum() + 2 * (1 - sigma1) ** 2)


def log_p0(z):
    return -0.5 * z.pow(2).sum(1) - torch.log(torch.tensor(2 * torch.pi))


def log_p1(z):
    return flows.gaussian_log_density(z, mean1, sigma1**2 * torch.eye(2))


torch.manual_seed(0)
field = PotentialField(2, hidden=64, depth=2, time_dependent=True)
optimizer = torch.optim.Adam(field.parameters(), lr=1e-2)
n_iters, n_steps = (200 if settings.fast else 400), 2
schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_iters)
for _ in range(n_iters):
    z0 = torch.randn(256, 2)
    traj = flows.integrate(
        field, z0, log_p0(z0), n_steps=n_steps, method="euler_logdet", create_graph=True
    )
    kl = (traj.log_density[-1] - log_p1(traj.z[-1])).mean()
    s = torch.rand(256)
    step = (s * n_steps).floor().long().clamp(max=n_steps - 1)
    w = (s * n_steps - step)[:, None]
    rows = torch.arange(256)
    z_s = (1 - w) * traj.z[step, rows] + w * traj.z[step + 1, rows]
    loss = kl + hj_residual(field.potential, z_s.detach(), s).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
print(f"endpoint KL {kl.item():.3f}")

# %% [markdown]
# If the potential solves the Hamilton–Jacobi equation, each particle moves in a straight line at its initial velocity, so $z(1) = z(0) + \nabla u(z(0), 0)$.
# We compare that prediction (your gradient at $s = 0$) with an RK4 integration of the field, and the cost $\mathbb E\|z(1) - z(0)\|^2$ with $W_2^2$.

# %%
torch.manual_seed(1)
z0 = torch.randn(5000, 2)
end = flows.integrate(field, z0, log_p0(z0), n_steps=16, method="rk4").z[-1]
predicted = z0 + potential_gradient(lambda z: field.potential(z, 0.0), z0).detach()
cost = (end - z0).pow(2).sum(1).mean()
print(
    f"|straight-line prediction - integrated end|: median {(predicted - end).norm(dim=1).median():.3f}"
)
print(
    f"learned cost {cost:.3f}, closed-form W2^2 {w2_squared:.3f}, "
    f"gap {100 * (cost - w2_squared) / w2_squared:+.1f} %"
)

# %% [markdown]
# The straight-line prediction from the gradient at $s = 0$ lands close to where the integrated particle ends, and the cost is near the optimum; more training steps shrink both gaps.
#
# ## Summary
#
# You wrote the two pieces that make a potential network into an optimal transport: its gradient (the velocity) and the per-sample Hamilton–Jacobi residual (the condition that makes paths straight and the cost minimal).
