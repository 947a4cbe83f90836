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
# # Lecture 2: Curl-free fields, gradient flows and optimal transport
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/notebooks/02_curl_free_fields.ipynb)
#
# **Learning goals**
#
# - Write a curl-free field as the gradient of a potential, $v = \nabla u$, by automatic differentiation, and see why its curl vanishes.
# - Follow a gradient flow down a potential landscape and read its divergence as the Laplacian $\Delta u$.
# - State dynamic optimal transport (Benamou–Brenier) and the Hamilton–Jacobi equation its potential solves.
# - Train a potential network $u(z, s)$ with a per-sample Hamilton–Jacobi residual and endpoint matching, so that it carries one 2-D density to another.
# - Measure that its characteristics are straight and that its transport cost matches the closed-form optimum between two Gaussians.

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

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML
from matplotlib import animation

from tutorial_lib import calculus, flows
from tutorial_lib.fields import PotentialField
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=1)  # small 2-D networks run fastest on one thread
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# ## 1. A potential landscape and its gradient
#
# A curl-free field is the gradient of a scalar potential, $v(z) = \nabla u(z)$.
# We start from a hand-written landscape on $\mathbb{R}^2$: a wide bowl with two wells,
#
# $$u(z) = 0.1\,\|z\|^2 - 1.2\, e^{-\|z - a\|^2} - 0.8\, e^{-\|z - b\|^2 / 0.5}.$$
#
# Its gradient by hand is
# $\nabla u = 0.2\, z + 2.4\,(z-a)\, e^{-\|z-a\|^2} + 3.2\,(z-b)\, e^{-\|z-b\|^2/0.5}$.
# Automatic differentiation gives the same thing from `u` alone: sum the potential over the batch (each row depends only on its own point) and differentiate once.

# %%
well_a = torch.tensor([1.0, 0.5])
well_b = torch.tensor([-1.2, -0.6])


def landscape(z):
    """The potential u(z): (batch, 2) -> (batch,)."""
    da = (z - well_a).pow(2).sum(1)
    db = (z - well_b).pow(2).sum(1)
    return 0.1 * z.pow(2).sum(1) - 1.2 * torch.exp(-da) - 0.8 * torch.exp(-db / 0.5)


def landscape_gradient_by_hand(z):
    da = (z - well_a).pow(2).sum(1, keepdim=True)
    db = (z - well_b).pow(2).sum(1, keepdim=True)
    return (
        0.2 * z + 2.4 * (z - well_a) * torch.exp(-da) + 3.2 * (z - well_b) * torch.exp(-db / 0.5)
    )


def gradient_by_autograd(u, z):
    """grad u at z: (batch, dim) -> (batch, dim), one reverse pass for the whole batch."""
    z = z.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(u(z).sum(), z)
    return g


z_test = 2 * torch.randn(1000, 2)
err_ours = (
    (gradient_by_autograd(landscape, z_test) - landscape_gradient_by_hand(z_test)).abs().max()
)
err_lib = (calculus.gradient(landscape, z_test) - landscape_gradient_by_hand(z_test)).abs().max()
print(f"largest |autograd - by hand| over 1000 points: {err_ours:.0e}")
print(f"largest |calculus.gradient - by hand|:          {err_lib:.0e}")

# %% [markdown]
# Both agree with the hand-derived gradient to float32 round-off.
# From here on the course uses `tutorial_lib.calculus.gradient`, which is the same one reverse pass.
#
# Why is such a field curl-free?
# Its Jacobian is the Hessian of $u$, a symmetric matrix, so $\partial v_2/\partial z_1 - \partial v_1/\partial z_2 = \partial_1\partial_2 u - \partial_2\partial_1 u = 0$.
# Its divergence is the trace of the Hessian, the Laplacian $\nabla\cdot v = \Delta u$.
# We measure both on a grid.

# %%
grid, gx, gy = flows.grid_2d(lim=3.0, n=60)


def landscape_field(z, t=None):
    return calculus.gradient(landscape, z, create_graph=True)


curl = calculus.curl_2d(landscape_field, grid)
lap = calculus.laplacian(landscape, grid)
div = calculus.divergence(landscape_field, grid)
print(f"largest |curl grad u| on a 60 x 60 grid: {curl.abs().max():.0e}")
print(f"largest |div grad u - laplacian u|:      {(div - lap).abs().max():.0e}")
print(f"laplacian ranges from {lap.min():.2f} to {lap.max():.2f}")

# %% [markdown]
# ## 2. Gradient flow down the landscape
#
# The gradient flow $\dot z = -\nabla u(z)$ moves every point downhill, so $u$ decreases along each trajectory: $\tfrac{d}{ds} u(z(s)) = -\|\nabla u\|^2 \le 0$.
# Its divergence is $-\Delta u$, negative in the wells, so the log-density of a cloud of particles rises there ($\tfrac{d}{ds}\log p = +\Delta u$): mass piles up at the minima.
# We integrate a grid of starting points with RK4 and track their log-density.


# %%
def descent(z, t=None):
    return -landscape_field(z)


starts = flows.grid_2d(lim=2.6, n=9)[0]
log_p_start = torch.zeros(starts.shape[0])
descent_traj = flows.integrate(descent, starts, log_p_start, t1=6.0, n_steps=60, method="rk4")
u_start = landscape(starts)
u_end = landscape(descent_traj.z[-1])
print(f"potential decreased on {int((u_end < u_start).sum())} of {starts.shape[0]} trajectories")
print(f"mean change of log-density over the flow: {descent_traj.log_density[-1].mean():+.2f}")

# %%
fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=80)
cs = ax.contourf(gx, gy, landscape(grid).reshape(gx.shape), levels=25, cmap="viridis")
fig.colorbar(cs, ax=ax, label="potential u(z)")
for path in descent_traj.z.transpose(0, 1):
    ax.plot(path[:, 0], path[:, 1], color="white", lw=0.8)
ax.scatter(starts[:, 0], starts[:, 1], s=6, color="white")
ax.set(title="Gradient flow dz/ds = -grad u", xlabel="$z_1$", ylabel="$z_2$", aspect="equal")
plt.show()

# %% [markdown]
# Every trajectory crosses the contour lines at right angles (a gradient is normal to level sets) and ends in one of the two wells.
# The paths bend: a gradient flow has no reason to move in straight lines.
# We measure how straight a path is by its *straightness*, chord length over arc length, which is 1 exactly for a straight segment travelled in one direction.


# %%
def straightness(paths):
    """Chord over arc length per trajectory; paths: (steps + 1, batch, dim) -> (batch,)."""
    arc = (paths[1:] - paths[:-1]).norm(dim=2).sum(0)
    chord = (paths[-1] - paths[0]).norm(dim=1)
    return chord / arc.clamp_min(1e-12)


descent_straight = straightness(descent_traj.z)
print(
    f"gradient flow straightness: mean {descent_straight.mean():.3f}, "
    f"min {descent_straight.min():.3f}"
)

# %% [markdown]
# ## 3. Dynamic optimal transport and the Hamilton–Jacobi equation
#
# Among all fields $v(z, s)$, $s \in [0, 1]$, that carry a density $p_0$ to $p_1$ through the continuity equation $\partial_s p + \nabla\cdot(p v) = 0$, Benamou and Brenier showed that the one with least kinetic energy,
#
# $$\min_{v}\ \int_0^1 \!\! \int \tfrac12 \|v(z,s)\|^2\, p(z,s)\, dz\, ds,$$
#
# reaches the squared Wasserstein-2 distance $W_2^2(p_0, p_1)$ as $\int_0^1\!\int \|v\|^2 p$, and that it is a gradient, $v = \nabla u$, whose potential solves the Hamilton–Jacobi equation
#
# $$\partial_s u + \tfrac12 \|\nabla u\|^2 = 0$$
#
# (J.-D. Benamou and Y. Brenier, *A computational fluid mechanics solution to the Monge–Kantorovich mass transfer problem*, Numerische Mathematik 84, 2000; C. Villani, *Topics in Optimal Transportation*, AMS 2003, ch. 8).
#
# **Why the characteristics are straight.** Along a trajectory $\dot z = \nabla u(z, s)$, the velocity changes by
# $\tfrac{d}{ds}\nabla u = \nabla \partial_s u + \nabla^2 u\, \nabla u = \nabla\big(\partial_s u + \tfrac12\|\nabla u\|^2\big) = 0.$
# So every particle moves at constant velocity on a straight line, $z(1) = z(0) + \nabla u(z(0), 0)$.
#
# **The residual per sample.** A network $u(z, s)$ satisfies the equation only approximately.
# We measure the residual $r_i = \partial_s u(z_i, s_i) + \tfrac12\|\nabla_z u(z_i, s_i)\|^2$ at points $z_i$ with their *own* times $s_i$.
# Each $r_i$ is a partial derivative at one point; differentiating with respect to a single time shared by the whole batch would instead mix all samples into one number, which is not the equation's residual.
# Because $u$ treats rows independently, one reverse pass of $\sum_i u(z_i, s_i)$ with respect to the tensors $z$ and $s$ gives every $\nabla_z u(z_i, s_i)$ and $\partial_s u(z_i, s_i)$ at once.


# %%
def hj_residual(potential, z, s, create_graph=True):
    """Per-sample Hamilton-Jacobi residual.

    potential(z, s) -> (batch,), z: (batch, dim), s: (batch,) one time per sample.
    Returns du/ds + 0.5 |grad_z u|^2 at (z_i, s_i), shape (batch,).
    """
    z = z.detach().requires_grad_(True)
    s = s.detach().requires_grad_(True)
    du_dz, du_ds = torch.autograd.grad(potential(z, s).sum(), (z, s), create_graph=create_graph)
    return du_ds + 0.5 * du_dz.pow(2).sum(1)


# u = |z|^2 / (2 (1 + s)) solves the equation exactly; u = s z_1^2 does not.
def exact_solution(z, s):
    return z.pow(2).sum(1) / (2 * (1 + s))


def not_a_solution(z, s):
    return s * z[:, 0] ** 2


z_hj, s_hj = torch.randn(500, 2), torch.rand(500)
r_exact = hj_residual(exact_solution, z_hj, s_hj, create_graph=False)
r_wrong = hj_residual(not_a_solution, z_hj, s_hj, create_graph=False)
r_wrong_by_hand = z_hj[:, 0] ** 2 * (1 + 2 * s_hj**2)
print(f"exact solution: largest |residual| {r_exact.abs().max():.0e}")
print(f"u = s z1^2: largest |autograd - by hand| {(r_wrong - r_wrong_by_hand).abs().max():.0e}")

# %% [markdown]
# The residual vanishes to round-off for the exact solution, and for a non-solution it matches the hand-computed value $z_1^2(1 + 2 s_i^2)$ at every sample with its own $s_i$.
#
# ## 4. Two Gaussians and their closed-form transport cost
#
# We carry $p_0 = \mathcal N(m_0, \Sigma_0)$, a horizontal ellipse, to $p_1 = \mathcal N(m_1, \Sigma_1)$, the same ellipse turned by 90 degrees and moved.
# Between Gaussians the optimal cost has a closed form (D. C. Dowson and B. V. Landau, J. Multivariate Analysis 12, 1982; I. Olkin and F. Pukelsheim, Linear Algebra Appl. 48, 1982):
#
# $$W_2^2 = \|m_0 - m_1\|^2 + \operatorname{tr}\!\Big(\Sigma_0 + \Sigma_1 - 2\big(\Sigma_1^{1/2}\Sigma_0\Sigma_1^{1/2}\big)^{1/2}\Big),$$
#
# and the optimal map is linear and symmetric, $T(z) = m_1 + A(z - m_0)$ with $A = \Sigma_1^{1/2}\big(\Sigma_1^{1/2}\Sigma_0\Sigma_1^{1/2}\big)^{-1/2}\Sigma_1^{1/2}$.
# Here $\Sigma_0$ and $\Sigma_1$ are diagonal, so $A = \mathrm{diag}(1/2, 2)$: the optimal transport does not turn the ellipse, it squeezes one axis and stretches the other.
# A rigid rotation by 90 degrees also carries $p_0$ to $p_1$, but moves mass further; we compute its cost too.


# %%
def rotation(degrees):
    a = math.radians(degrees)
    return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def sqrtm(matrix):
    """Square root of a symmetric positive definite matrix (dim, dim)."""
    vals, vecs = torch.linalg.eigh(matrix)
    return vecs @ torch.diag(vals.sqrt()) @ vecs.T


m0, m1 = torch.tensor([-1.0, -0.25]), torch.tensor([1.0, 0.25])
cov0 = torch.diag(torch.tensor([1.0, 0.25]))
cov1 = rotation(90) @ cov0 @ rotation(90).T
root1 = sqrtm(cov1)
middle = sqrtm(root1 @ cov0 @ root1)
w2_squared = float((m0 - m1).pow(2).sum() + torch.trace(cov0 + cov1 - 2 * middle))
ot_matrix = root1 @ torch.linalg.inv(middle) @ root1
# Rigid rotation T(z) = m1 + R (z - m0): E|T(z) - z|^2 = |m1 - m0|^2 + tr((R - I) cov0 (R - I)^T).
rot_minus_id = rotation(90) - torch.eye(2)
rotation_cost = float((m1 - m0).pow(2).sum() + torch.trace(rot_minus_id @ cov0 @ rot_minus_id.T))
print(f"closed-form W2^2 between the Gaussians: {w2_squared:.4f}")
print(f"cost of the rigid rotation map:         {rotation_cost:.4f}")


# %% [markdown]
# ## 5. Training a potential network
#
# The field is `PotentialField(2, time_dependent=True)`: a small network $u(z, s)$ and $v = \nabla_z u$.
# The loss has two parts.
#
# 1. **Endpoint matching.** Samples $z_0 \sim p_0$ are moved to $s = 1$ with two Euler steps that carry the exact log-density change $-\log|\det(I + hJ)|$ (`flows.integrate(method="euler_logdet")`, lecture 1).
#    The mean of $\log \hat p_1(z_1) - \log p_1(z_1)$ is an unbiased estimate of $\mathrm{KL}(\hat p_1 \,\|\, p_1)$, since both log-densities are exact for the map applied.
# 2. **Hamilton–Jacobi residual.** At a random time $s_i$ per sample, on the sample's own path (interpolated between steps), the mean of $r_i^2$.
#
# Nothing in the loss asks for a small cost or for straight paths; if they come out, they come from the two parts above.
# Few Euler steps suffice because a field that satisfies the equation moves each particle at constant velocity, which Euler follows exactly.


# %%
def log_p0(z):
    return flows.gaussian_log_density(z, m0, cov0)


def log_p1(z):
    return flows.gaussian_log_density(z, m1, cov1)


def on_path(paths, s):
    """Points of paths (steps + 1, batch, dim) at times s (batch,) by linear interpolation."""
    n = paths.shape[0] - 1
    k = (s * n).floor().long().clamp(max=n - 1)
    w = (s * n - k)[:, None]
    rows = torch.arange(paths.shape[1])
    return (1 - w) * paths[k, rows] + w * paths[k + 1, rows]


torch.manual_seed(0)
ot_field = PotentialField(2, hidden=64, depth=2, time_dependent=True)
p0_dist = torch.distributions.MultivariateNormal(m0, cov0)
n_iters, batch, n_steps, hj_weight = (300 if settings.fast else 800), 256, 2, 1.0
optimizer = torch.optim.Adam(ot_field.parameters(), lr=1e-2)
schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_iters)
history = {"endpoint KL": [], "HJ residual^2": []}
for _ in range(n_iters):
    z0 = p0_dist.sample((batch,))
    traj = flows.integrate(
        ot_field, z0, log_p0(z0), n_steps=n_steps, method="euler_logdet", create_graph=True
    )
    kl = (traj.log_density[-1] - log_p1(traj.z[-1])).mean()
    s = torch.rand(batch)
    hj = hj_residual(ot_field.potential, on_path(traj.z.detach(), s), s).pow(2).mean()
    loss = kl + hj_weight * hj
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
    history["endpoint KL"].append(kl.item())
    history["HJ residual^2"].append(hj.item())
print(f"after {n_iters} steps: endpoint KL {kl.item():.3f}, mean HJ residual^2 {hj.item():.4f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
window = 20
for name, values in history.items():
    smooth = torch.tensor(values).abs().unfold(0, window, 1).mean(1)
    ax.semilogy(torch.arange(window - 1, len(values)), smooth, label=name)
ax.set(
    title="Training the transport potential",
    xlabel="iteration",
    ylabel=f"loss term, mean of {window} steps",
)
ax.legend()
plt.show()

# %% [markdown]
# The endpoint KL falls from about 2 to about 0.005 and the Hamilton–Jacobi residual falls with it to below 0.01: the network meets both conditions together, although nothing in the loss asks it to move mass cheaply.
# (A batch's KL estimate can be slightly negative, so the curves average absolute values over 20 steps.)
#
# ## 6. Straight characteristics and the transport cost, measured
#
# We now move 10,000 fresh samples with RK4 and 16 steps, an integrator the network never saw, and measure
# the straightness of every path, the kinetic energy $\int_0^1 \mathbb E\|v\|^2 ds$ (trapezoid rule over the 17 times), and the squared displacement $\mathbb E\|z_1 - z_0\|^2$; for straight paths at constant speed the last two agree.

# %%
torch.manual_seed(1)
z_eval = p0_dist.sample((10_000,))
eval_traj = flows.integrate(ot_field, z_eval, log_p0(z_eval), n_steps=16, method="rk4")
speeds = torch.stack(
    [ot_field(z, t).detach().pow(2).sum(1) for z, t in zip(eval_traj.z, eval_traj.t, strict=True)]
)
kinetic = float(torch.trapezoid(speeds.mean(1), eval_traj.t))
moved = (eval_traj.z[-1] - eval_traj.z[0]).pow(2).sum(1)
# The closed-form optimal map applied to the same samples: a paired Monte-Carlo comparison.
ot_endpoints = m1 + (z_eval - m0) @ ot_matrix.T
optimal_moved = (ot_endpoints - z_eval).pow(2).sum(1)
n_eval = z_eval.shape[0]
ot_straight = straightness(eval_traj.z)
endpoint_kl = float((eval_traj.log_density[-1] - log_p1(eval_traj.z[-1])).mean())
gap = kinetic - w2_squared
paired = moved - optimal_moved
print(
    f"straightness of the learned paths: mean {ot_straight.mean():.4f}, min {ot_straight.min():.4f}"
)
print(f"(gradient flow of section 2:       mean {descent_straight.mean():.3f})")
print(f"kinetic energy int E|v|^2 ds:      {kinetic:.3f}")
print(f"squared displacement E|z1 - z0|^2: {moved.mean():.3f} +- {moved.std() / n_eval**0.5:.3f}")
print(f"closed-form W2^2:                  {w2_squared:.3f}")
print(f"gap learned - closed form:         {gap:+.3f} ({100 * gap / w2_squared:+.2f} %)")
print(
    f"paired gap on the same samples:    {paired.mean():+.3f} +- {paired.std() / n_eval**0.5:.3f}"
)
print(f"rigid rotation map would cost:     {rotation_cost:.3f}")
print(f"endpoint KL with RK4, 16 steps:    {endpoint_kl:.3f}")

# %% [markdown]
# The learned paths are straight: mean straightness 0.9999 (worst 0.998), against 0.97 (worst 0.78) for the gradient flow of section 2.
# The kinetic energy and the squared displacement agree, as they must for straight paths at constant speed.
# The learned cost is 0.016 (0.34 %) above the closed-form $W_2^2$, less than the Monte-Carlo standard error of a 10,000-sample average (0.020), and far below the 6.75 of the rigid rotation.
# The paired comparison removes most of that sampling noise: on the same samples the learned map moves mass 0.004 less (in squared distance) than the exact optimal map, two standard errors from zero.
# A map can undercut the optimum only by not quite reaching $p_1$; the endpoint KL of 0.011 is that shortfall.
#
# The learned map should also be the linear map $A$ of section 4.
# We compare its endpoints with $m_1 + A(z_0 - m_0)$ and its moments with those of $p_1$.

# %%
map_error = (eval_traj.z[-1] - ot_endpoints).norm(dim=1)
moved_cov = torch.cov(eval_traj.z[-1].T)
print(
    f"distance to the closed-form OT map: median {map_error.median():.3f}, "
    f"90th percentile {map_error.quantile(0.9):.3f}"
)
print(
    f"mean of moved samples: ({eval_traj.z[-1, :, 0].mean():.3f}, "
    f"{eval_traj.z[-1, :, 1].mean():.3f}), target ({m1[0]:.3f}, {m1[1]:.3f})"
)
print(f"largest covariance entry error: {(moved_cov - cov1).abs().max():.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 4), dpi=80)
box, bx, by = flows.grid_2d(lim=4.0, n=80)
for logp, color in ((log_p0, "tab:blue"), (log_p1, "tab:orange")):
    ax.contour(bx, by, logp(box).exp().reshape(bx.shape), levels=4, colors=color, linewidths=1)
for path in eval_traj.z[:, :60].transpose(0, 1):
    ax.plot(path[:, 0], path[:, 1], color="gray", lw=0.6)
ax.scatter(*eval_traj.z[0, :60].T, s=8, color="tab:blue", label="start, $p_0$")
ax.scatter(*eval_traj.z[-1, :60].T, s=8, color="tab:orange", label="end, $p_1$")
ax.set(
    title="Characteristics of the learned transport",
    xlabel="$z_1$",
    ylabel="$z_2$",
    aspect="equal",
    xlim=(-4, 3.5),
    ylim=(-2.5, 3),
)
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# Each gray path is a straight segment from a blue start to an orange end; the contours show the two densities.
# Segments may cross in the picture, but never at the same time: the optimal map is the gradient of a convex function, $z \mapsto \tfrac12\|z\|^2 + u(z, 0)$ (Y. Brenier, Comm. Pure Appl. Math. 44, 1991), so no two particles meet on the way.
#
# ## 7. The transport as an animation
#
# Particles coloured by their starting height $z_2$ travel along the learned field; the orange contours are the target.

# %%
# NBVAL_IGNORE_OUTPUT
# the HTML of an animation carries random element ids, so it differs on every run
frames = eval_traj.z[:, :600].numpy()
colors = eval_traj.z[0, :600, 1].numpy()
fig, ax = plt.subplots(figsize=(5, 3.6), dpi=60)
ax.contour(
    bx, by, log_p1(box).exp().reshape(bx.shape), levels=4, colors="tab:orange", linewidths=1
)
dots = ax.scatter(frames[0, :, 0], frames[0, :, 1], c=colors, s=5, cmap="coolwarm")
ax.set(xlabel="$z_1$", ylabel="$z_2$", xlim=(-4, 3.5), ylim=(-3, 3.5), aspect="equal")


def draw(k):
    dots.set_offsets(frames[k])
    ax.set_title(f"Optimal transport flow, s = {eval_traj.t[k]:.2f}")
    return (dots,)


anim = animation.FuncAnimation(fig, draw, frames=len(frames), interval=150)
plt.close(fig)
HTML(anim.to_jshtml())

# %% [markdown]
# The ellipse slides and turns at once; no particle changes direction on the way, and the colour bands keep their order, which is what a monotone (convex-gradient) map looks like.
#
# ### Check yourself
#
# 1. Why is $v = \nabla u$ free of curl in any dimension, and what is its divergence?
#
# <details><summary>Answer</summary>
#
# Its Jacobian is the Hessian $\nabla^2 u$, which is symmetric, so its antisymmetric part (the curl in 2-D and 3-D) is zero.
# Its divergence is the Hessian's trace, the Laplacian $\Delta u$.
#
# </details>
#
# 2. Why must the Hamilton–Jacobi residual be differentiated with respect to one time per sample, not one time shared by the batch?
#
# <details><summary>Answer</summary>
#
# The equation holds at each point $(z_i, s_i)$.
# With one shared time tensor, $\partial/\partial s$ of $\sum_i u(z_i, s)$ is the *sum* of all samples' time derivatives, so each sample would be paired with the others' $\partial_s u$; the result is a batch aggregate, zero only on average, not a pointwise residual.
#
# </details>
#
# 3. The learned cost came out within half a percent of $W_2^2$. What would you change to shrink the gap further, and what would you measure to know that it worked?
#
# <details><summary>Answer</summary>
#
# Drive the endpoint KL down (more iterations, larger batches, more Euler steps) and estimate the cost with more samples; report the KL and the Monte-Carlo standard error of the cost next to the gap, since a gap smaller than either means nothing.
#
# </details>

# %% [markdown]
# ## Summary
#
# - A curl-free field is a gradient $v = \nabla u$; autograd gives it in one reverse pass, its Jacobian is the symmetric Hessian and its divergence the Laplacian.
# - Gradient flows move downhill along curved paths and concentrate mass where $\Delta u > 0$.
# - Dynamic optimal transport is a potential flow whose potential solves $\partial_s u + \tfrac12\|\nabla u\|^2 = 0$; then velocities are constant along characteristics, which are straight lines.
# - A potential network trained with a per-sample Hamilton–Jacobi residual and endpoint matching learns such a flow between two Gaussians: its paths are straight and its cost matches the closed-form $W_2^2$ up to the gap measured above.
#
# ## What comes next
#
# Lecture 3 turns to the other half of the Helmholtz split: divergence-free fields, which move mass without compressing it, built exactly from stream functions, skew matrices and antisymmetric matrix fields.
