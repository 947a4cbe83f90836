# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises for lecture 3: divergence-free fields
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/solutions/03_divergence_free_fields.ipynb)
#
# **Learning goals**
#
# - Write the skew-gradient field $v = S\nabla\psi$ for a skew matrix $S$ and a scalar $\psi$.
# - Write the divergence of a field by autograd and use it to confirm that $S\nabla\psi$ is divergence-free, and that it stops being so when $S$ is not skew.
# - See that $\psi$ is conserved along the flow of $S\nabla\psi$.
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
import matplotlib.pyplot as plt
import torch

from tutorial_lib import flows
from tutorial_lib.checks import lecture03 as check
from tutorial_lib.fields import mlp
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=1)  # small 2-D networks run fastest on one thread
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# ## Exercise 1: a skew-gradient field
#
# Write `skew_gradient_field(psi, S, z)`: `psi` maps points `(batch, dim)` to `(batch,)`, `S` is a `(dim, dim)` skew matrix, and the result is $S\nabla\psi(z)$ for every point, shape `(batch, dim)`.
# With gradients stored as rows `g` of shape `(batch, dim)`, the matrix acts as `g @ S.T`.
# The field will be differentiated again (for its divergence), so keep the graph and do not cut `z` out of it when it already requires grad.


# %%
def skew_gradient_field(psi, S, z):
    """v = S grad psi(z): psi maps (batch, dim) -> (batch,), S is (dim, dim); returns (batch, dim)."""
    # BEGIN SOLUTION hint: g = torch.autograd.grad(psi(z).sum(), z, create_graph=True)[0] with z requiring grad; return g @ S.T.
    with torch.enable_grad():
        z = z if z.requires_grad else z.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(psi(z).sum(), z, create_graph=True)
    return g @ S.T
    # END SOLUTION


# %%
check.skew_gradient_field(skew_gradient_field)

# %% [markdown]
# ## Exercise 2: the divergence by autograd
#
# Write `divergence(f, z)`: `f` maps `(batch, dim)` to `(batch, dim)`; return $\nabla\cdot f = \sum_i \partial f_i/\partial z_i$ at every point, shape `(batch,)`.
# One reverse pass of `f(z)[:, i].sum()` gives row `i` of every point's Jacobian; keep its `i`-th entry.


# %%
def divergence(f, z):
    """Exact divergence of f at z: f maps (batch, dim) -> (batch, dim); returns (batch,)."""
    # BEGIN SOLUTION hint: Loop over i, add the i-th column of torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)[0].
    z = z.detach().requires_grad_(True)
    v = f(z)
    total = torch.zeros(z.shape[0], dtype=z.dtype)
    for i in range(z.shape[1]):
        (g,) = torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)
        total = total + g[:, i]
    return total
    # END SOLUTION


# %%
check.divergence(divergence)

# %% [markdown]
# ## Using your functions: skew versus non-skew, in 4-D
#
# Take $\psi(z) = \tfrac12\|z\|^2 + N(z)$ with a random network $N$ in four dimensions, and a random matrix $B$.
# With $S = B - B^\top$ the field is divergence-free; with the symmetric $B + B^\top$ in its place it is not.

# %%
torch.manual_seed(0)
psi_net = mlp(4, 1, hidden=32, depth=2)


def psi(z):
    """A bowl plus a random network: (batch, 4) -> (batch,)."""
    return 0.5 * z.pow(2).sum(1) + psi_net(z)[:, 0]


b = torch.randn(4, 4)
z = torch.randn(2000, 4)
for name, matrix in (("skew B - B^T", b - b.T), ("symmetric B + B^T", b + b.T)):
    div = divergence(lambda x, m=matrix: skew_gradient_field(psi, m, x), z)
    print(f"{name:>18}: largest |div| {div.abs().max():.0e}")

# %% [markdown]
# The skew field's divergence is float32 round-off; the symmetric one's is of order one.
#
# ## Using your functions: $\psi$ is conserved
#
# Along $\dot z = S\nabla\psi$, $\tfrac{d}{ds}\psi(z(s)) = \nabla\psi^\top S\nabla\psi = 0$.
# We integrate 200 points for two units of time with RK4 (80 steps) and plot $\psi$ along 20 of the paths.

# %%
skew = b - b.T


def skew_field(x, t=None):
    return skew_gradient_field(psi, skew, x)


traj = flows.integrate(skew_field, z[:200], torch.zeros(200), t1=2.0, n_steps=80, method="rk4")
psi_along = torch.stack([psi(zs).detach() for zs in traj.z])
drift = (psi_along - psi_along[0]).abs()
moved = (traj.z[-1] - traj.z[0]).norm(dim=1)
print(f"median distance travelled {moved.median():.2f}; largest change of psi {drift.max():.0e}")
fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
ax.plot(traj.t, (psi_along - psi_along[0])[:, :20], lw=0.8)
ax.set(
    title="psi along 20 trajectories of S grad psi",
    xlabel="time s",
    ylabel="psi(z(s)) - psi(z(0))",
)
plt.show()

# %% [markdown]
# Every curve stays at zero up to round-off and the RK4 error, although the points travel a distance of order one: the flow runs along the level sets of $\psi$.
#
# ## Summary
#
# You built $S\nabla\psi$, measured its divergence with your own autograd divergence, and saw the two facts that make it useful: zero divergence for any skew $S$ (and not otherwise), and a conserved $\psi$.
