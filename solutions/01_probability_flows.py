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
# # Exercises for lecture 1: Probability flows
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/solutions/01_probability_flows.ipynb)
#
# You write the two pieces lecture 1 is built on, and a check after each says whether they are right.
#
# **Learning goals**
#
# - Compute the divergence of a field by automatic differentiation.
# - Write one flow step that moves points and updates their log-density exactly.
# - Use your step to measure how fast its error shrinks with the step size.

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
import matplotlib.pyplot as plt
import numpy as np
import torch

from tutorial_lib import flows
from tutorial_lib.checks import lecture01 as check
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=2)
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# These exercises are small and two-dimensional: we compute on the CPU in float64, which the checks use too.

# %%
torch.set_default_dtype(torch.float64)
print(f"default dtype: {torch.get_default_dtype()}")

# %% [markdown]
# ## Exercise 1: divergence by autograd
#
# The divergence of a field $f: \mathbb R^d \to \mathbb R^d$ is the trace of its Jacobian,
# $\nabla\cdot f = \sum_i \partial f_i / \partial z_i$.
# Write `divergence(f, z)` for points `z` of shape `(batch, dim)`, returning shape `(batch,)`.
# Use `torch.autograd.grad`: each row of `f(z)` depends only on the same row of `z`,
# so one backward pass of `f(z)[:, i].sum()` gives $\partial f_i / \partial z_j$ for all points at once.


# %%
def divergence(f, z):
    """Divergence of f at z: f maps (batch, dim) -> (batch, dim); returns (batch,)."""
    # BEGIN SOLUTION hint: for each dimension i, take torch.autograd.grad of f(z)[:, i].sum() with respect to z (requires_grad) and add its column i.
    z = z.detach().requires_grad_(True)
    v = f(z)
    div = torch.zeros(z.shape[0], dtype=z.dtype)
    for i in range(z.shape[1]):
        (grad_i,) = torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)
        div = div + grad_i[:, i]
    return div.detach()
    # END SOLUTION


# %% [markdown]
# The check compares your function with closed-form divergences of three fields, one of them in 3-D.

# %%
check.divergence(divergence)

# %% [markdown]
# ## Exercise 2: one flow step with its exact log-density
#
# One Euler step moves $z \mapsto z' = z + h f(z)$. Its Jacobian is $I + hJ$ with $J = \partial f/\partial z$, so
#
# $$\log p'(z') = \log p(z) - \log\big|\det(I + hJ(z))\big| .$$
#
# Write `flow_step(f, z, log_p, h)` returning `(z_next, log_p_next)` of shapes `(batch, dim)` and `(batch,)`.
# Build $J$ row by row as in exercise 1 (row $i$ is the gradient of `f(z)[:, i].sum()`), then use `torch.linalg.slogdet`.


# %%
def flow_step(f, z, log_p, h):
    """One Euler step with exact log-density: z (batch, dim), log_p (batch,) -> (z', log p')."""
    # BEGIN SOLUTION hint: stack the rows d f_i / d z into J of shape (batch, dim, dim); subtract torch.linalg.slogdet(I + h J).logabsdet from log_p.
    z = z.detach().requires_grad_(True)
    v = f(z)
    rows = [torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)[0] for i in range(z.shape[1])]
    jac = torch.stack(rows, dim=1)  # (batch, dim, dim), jac[b, i, j] = d f_i / d z_j
    logabsdet = torch.linalg.slogdet(torch.eye(z.shape[1]) + h * jac).logabsdet
    return (z + h * v).detach(), (log_p - logabsdet).detach()
    # END SOLUTION


# %% [markdown]
# The check compares your step with a reference on the same three fields, and says so if you used
# the first-order approximation $-h\,\nabla\cdot f$ instead of the log-determinant.

# %%
check.step_log_density(flow_step)

# %% [markdown]
# ## Put your step to work
#
# Take the lecture's linear field $f(z) = Az$ and Gaussian start $p_0 = \mathcal N(m_0, \Sigma_0)$.
# The exact density at time $T$ is $\mathcal N(e^{TA} m_0, e^{TA}\Sigma_0 e^{TA\top})$ (`flows.linear_flow_gaussian`).
# We run your step $n$ times with $h = T/n$ and measure the error of your log-density at the end points.

# %%
A = torch.tensor([[0.4, -1.0], [1.0, -0.8]])
m0 = torch.tensor([1.5, 0.0])
cov0 = torch.diag(torch.tensor([0.3**2, 0.6**2]))
T = 2.0
z0 = (
    m0
    + torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    @ torch.linalg.cholesky(cov0).T
)
mean_T, cov_T = flows.linear_flow_gaussian(A, m0, cov0, T)


def linear_field(z):
    """f(z) = A z, (batch, 2) -> (batch, 2)."""
    return z @ A.T


def final_error(n):
    """Mean |log p from n of your steps - exact log p_T| at the end points."""
    z, log_p = z0, flows.gaussian_log_density(z0, m0, cov0)
    for _ in range(n):
        z, log_p = flow_step(linear_field, z, log_p, T / n)
    return (log_p - flows.gaussian_log_density(z, mean_T, cov_T)).abs().mean().item()


steps = [10, 20, 40, 80]
errors = [final_error(n) for n in steps]
h_values = [T / n for n in steps]
order = np.polyfit(np.log(h_values), np.log(errors), 1)[0]
for n, e in zip(steps, errors, strict=True):
    print(f"n = {n:>3} steps: error {e:.3f}")
print(f"fitted order: {order:.2f}")

fig, ax = plt.subplots(figsize=(4.5, 3.4), dpi=80)
ax.loglog(h_values, errors, marker="o", label=f"your flow step (order {order:.2f})")
ax.set(
    title="Your step's log-density error at t = 2",
    xlabel="step size h",
    ylabel="mean |log p - log $p_T$|",
)
ax.legend()
plt.show()

# %% [markdown]
# The error halves with the step: the log-density bookkeeping is exact for each step,
# and the remaining error comes from the Euler map itself, which is first order.

# %% [markdown]
# **Check yourself.** Your `flow_step` keeps exact books. Where would an error appear if you replaced
# $\log|\det(I + hJ)|$ by $h\,\nabla\cdot f$?
#
# <details><summary>Answer</summary>
#
# In every step, as an extra $O(h^2)$ term (for this field $\log\det(I + hA) - h \operatorname{tr}A$),
# adding up to $O(h)$ over $T/h$ steps. The log-density would then no longer be the density of the map you applied.
#
# </details>

# %% [markdown]
# ## Summary
#
# - A divergence by autograd costs one backward pass per dimension.
# - One Euler step changes log-density by exactly $-\log|\det(I + hJ)|$.
# - With exact books per step, what remains is the first-order error of the Euler map.
#
# ## What comes next
#
# Lecture 2 and its exercises: gradient fields $v = \nabla u$ and optimal transport in 2-D.
