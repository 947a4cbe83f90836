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
# # Lecture 1: Probability flows
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/notebooks/01_probability_flows.ipynb)
#
# A velocity field moves points, and with them the density of a cloud of points.
# This lecture follows both, and keeps exact books on how the density changes.
#
# **Learning goals**
#
# - Move samples and a density with one field, and see that they agree.
# - State the continuity equation and check it numerically on a grid.
# - Compute a divergence by automatic differentiation.
# - Track the log-density along trajectories with Euler, RK4 and the exact step log-determinant.
# - Measure the order of each method from its error against the step size.

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
from IPython.display import HTML
from matplotlib import animation

from tutorial_lib import calculus, flows
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=2)
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# Everything in this lecture is two-dimensional and small, so it runs on the CPU whatever device was found.
# We compute in float64, so that the convergence orders measured at the end are not hidden by round-off.

# %%
torch.set_default_dtype(torch.float64)
cpu = torch.device("cpu")
print(f"computing on {cpu.type} in {torch.get_default_dtype()}")

# %% [markdown]
# ## 1. A field moves points
#
# A velocity field $v(z, t)$ moves a point along $\frac{dz}{dt} = v(z, t)$.
# We start with a linear field $v(z) = A z$, because everything about it is known in closed form:
# the flow map is the matrix exponential, $z(t) = e^{tA} z(0)$.
#
# $$A = \begin{pmatrix} 0.4 & -1 \\ 1 & -0.8 \end{pmatrix}, \qquad \operatorname{tr} A = -0.4 .$$
#
# The samples start from a Gaussian $p_0 = \mathcal N(m_0, \Sigma_0)$.
# Fields in the course library are called as `field(z, t)` with `z` of shape `(batch, dim)`.

# %%
A = torch.tensor([[0.4, -1.0], [1.0, -0.8]])
m0 = torch.tensor([1.5, 0.0])
cov0 = torch.diag(torch.tensor([0.3**2, 0.6**2]))
T = 2.0


def linear_field(z, t=None):
    """v(z) = A z for z of shape (batch, 2)."""
    return z @ A.T


def log_p0(z):
    """log N(z; m0, cov0), shape (batch,)."""
    return flows.gaussian_log_density(z, m0, cov0)


generator = torch.Generator().manual_seed(0)
z0 = m0 + torch.randn(512, 2, generator=generator) @ torch.linalg.cholesky(cov0).T
print(f"{z0.shape[0]} samples, mean {z0.mean(0).numpy().round(2)}, tr A = {A.trace().item():.2f}")

# %% [markdown]
# Here is the field with a few trajectories, integrated with the library's RK4 solver
# (section 5 compares it with Euler) from $t = 0$ to $t = T = 2$.

# %%
points, X, Y = flows.grid_2d(lim=3.0, n=15, dtype=torch.float64)
V = linear_field(points)
paths = flows.integrate(linear_field, z0[:12], log_p0(z0[:12]), 0.0, T, 40, method="rk4").z

fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=80)
ax.quiver(X, Y, V[:, 0].reshape(X.shape), V[:, 1].reshape(X.shape), color="0.6")
ax.plot(paths[:, :, 0], paths[:, :, 1], color="tab:blue", lw=1)
ax.scatter(paths[0, :, 0], paths[0, :, 1], s=12, color="tab:blue", label="start")
ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=12, color="tab:red", label=f"t = {T:.0f}")
ax.set(title="The linear field v(z) = Az and 12 trajectories", xlabel="$z_1$", ylabel="$z_2$")
ax.set_aspect("equal")
ax.legend(loc="lower left")
plt.show()

# %% [markdown]
# The field turns points counter-clockwise and slowly draws them towards the origin:
# the eigenvalues of $A$ are $-0.2 \pm 0.8i$, so over a long time every trajectory spirals into $0$.

# %% [markdown]
# ## 2. The density moves with the points
#
# If the samples have density $p_0$ and each is moved by the flow map $\Phi_t(z) = e^{tA} z$,
# the moved samples have density (change of variables)
#
# $$p_t(z) = p_0\big(\Phi_t^{-1}(z)\big)\,\big|\det \partial \Phi_t^{-1}/\partial z\big|
#          = p_0\big(e^{-tA} z\big)\, e^{-t \operatorname{tr} A},$$
#
# because $\det e^{-tA} = e^{-t \operatorname{tr} A}$.
# The function below evaluates this exact $\log p_t$; it accepts one time or one time per point.


# %%
def log_p_exact(z, t):
    """log p_t(z) for the linear flow; z (batch, 2), t a number or (batch,) -> (batch,)."""
    t = torch.as_tensor(t, dtype=z.dtype)
    if t.dim() == 0:
        t = t.expand(z.shape[0])
    back = torch.linalg.matrix_exp(-t[:, None, None] * A)  # (batch, 2, 2) = exp(-tA)
    start = (back @ z[:, :, None])[:, :, 0]
    return log_p0(start) - t * A.trace()


mean_T, cov_T = flows.linear_flow_gaussian(A, m0, cov0, T)
moved = z0[:5] @ torch.linalg.matrix_exp(T * A).T
gap = (log_p_exact(moved, T) - flows.gaussian_log_density(moved, mean_T, cov_T)).abs()
print(f"agrees with the Gaussian N(exp(TA) m0, exp(TA) cov0 exp(TA)^T): {bool(gap.max() < 1e-10)}")

# %% [markdown]
# Now particles and density side by side: on the left the samples moved by RK4,
# on the right the exact density $p_t$ on a grid. Both come from the same field.

# %%
# NBVAL_IGNORE_OUTPUT
# the JavaScript animation carries randomly generated element ids, so its HTML differs per run
n_frames = 24
cloud = flows.integrate(linear_field, z0, log_p0(z0), 0.0, T, n_frames - 1, method="rk4")
grid, GX, GY = flows.grid_2d(lim=3.0, n=60, dtype=torch.float64)
densities = [log_p_exact(grid, t).exp().reshape(GX.shape) for t in cloud.t]

fig, (ax_p, ax_d) = plt.subplots(1, 2, figsize=(6, 3.2), dpi=60)


def draw(k):
    for ax in (ax_p, ax_d):
        ax.clear()
    ax_p.scatter(cloud.z[k, :, 0], cloud.z[k, :, 1], s=4, alpha=0.5)
    ax_d.contourf(GX, GY, densities[k], levels=10, cmap="viridis")
    for ax, name in ((ax_p, "particles"), (ax_d, "density $p_t$")):
        ax.set(xlim=(-3, 3), ylim=(-3, 3), xlabel="$z_1$", ylabel="$z_2$", title=name)
        ax.set_aspect("equal")
    fig.suptitle(f"one field, two views: t = {cloud.t[k].item():.2f}")


anim = animation.FuncAnimation(fig, draw, frames=n_frames, interval=150)
plt.close(fig)
HTML(anim.to_jshtml())

# %% [markdown]
# The cloud and the bright region of the density move together, and both get narrower and brighter:
# the field contracts area ($\operatorname{tr} A < 0$), so the same mass sits on less area.
#
# The same comparison as still frames, with the particles drawn over contour lines of the density:

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), dpi=80, sharey=True)
for ax, k in zip(axes, (0, n_frames // 2, n_frames - 1), strict=True):
    ax.contour(GX, GY, densities[k], levels=6, cmap="viridis")
    ax.scatter(cloud.z[k, :, 0], cloud.z[k, :, 1], s=1, color="tab:red", alpha=0.5)
    ax.set(title=f"t = {cloud.t[k].item():.2f}", xlabel="$z_1$", xlim=(-3, 3), ylim=(-3, 3))
    ax.set_aspect("equal")
axes[0].set_ylabel("$z_2$")
fig.suptitle("Particles (red) over contours of the exact density")
plt.show()

# %% [markdown]
# At every time the particles fill exactly the region where the density is high.

# %% [markdown]
# ## 3. The continuity equation
#
# Mass is neither created nor destroyed, only moved, so the density obeys the continuity equation
#
# $$\frac{\partial p}{\partial t} + \nabla\cdot(p\, v) = 0 .$$
#
# Writing $\nabla\cdot(p v) = \nabla p \cdot v + p\, \nabla\cdot v$ and dividing by $p$ shows what it says
# along one trajectory $z(t)$:
#
# $$\frac{d}{dt} \log p\big(z(t), t\big) = \partial_t \log p + \nabla \log p \cdot v = -\nabla\cdot v\big(z(t), t\big).$$
#
# This is the *instantaneous change of variables*: the log-density of a moving point falls at the rate
# at which the field spreads points apart.
# Both sides need the divergence $\nabla\cdot v = \sum_i \partial v_i / \partial z_i$.

# %% [markdown]
# ### A divergence by automatic differentiation
#
# Autograd gives vector-Jacobian products.
# Because row $b$ of `v` depends only on row $b$ of `z`,
# the gradient of `v[:, i].sum()` with respect to `z` holds $\partial v_i/\partial z_j$ for every point at once.
# Its column $i$ is the diagonal entry we need; one backward pass per dimension gives the trace.


# %%
def divergence_autograd(f, z):
    """Divergence of f at z: f maps (batch, dim) -> (batch, dim); returns (batch,)."""
    z = z.detach().requires_grad_(True)
    v = f(z)
    div = torch.zeros(z.shape[0], dtype=z.dtype)
    for i in range(z.shape[1]):
        (grad_i,) = torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)
        div = div + grad_i[:, i]
    return div.detach()


# %% [markdown]
# We test it on the linear field (divergence $\operatorname{tr} A$ everywhere) and on a field with a limit cycle,
# $v(z) = \big(-z_2 + z_1(1 - |z|^2),\; z_1 + z_2(1 - |z|^2)\big)$, whose divergence is $2 - 4|z|^2$.


# %%
def limit_cycle_field(z, t=None):
    """Rotation plus attraction to the unit circle; (batch, 2) -> (batch, 2)."""
    r2 = (z**2).sum(1, keepdim=True)
    return torch.cat([-z[:, 1:] + z[:, :1] * (1 - r2), z[:, :1] + z[:, 1:] * (1 - r2)], dim=1)


probe = torch.randn(200, 2, generator=generator)
err_linear = (divergence_autograd(linear_field, probe) - A.trace()).abs().max()
err_cycle = (
    (divergence_autograd(limit_cycle_field, probe) - (2 - 4 * (probe**2).sum(1))).abs().max()
)
err_library = (
    (divergence_autograd(limit_cycle_field, probe) - calculus.divergence(limit_cycle_field, probe))
    .abs()
    .max()
)
print(f"linear field:      error below 1e-12: {bool(err_linear < 1e-12)}")
print(f"limit-cycle field: error below 1e-12: {bool(err_cycle < 1e-12)}")
print(f"same as tutorial_lib.calculus.divergence: {bool(err_library < 1e-12)}")

# %% [markdown]
# From here on we use `tutorial_lib.calculus.divergence`, which does the same computation.
#
# ### The residual map
#
# `tutorial_lib.flows.continuity_residual` evaluates $\partial_t p + \nabla p\cdot v + p\,\nabla\cdot v$ by autograd,
# with the time derivative taken through the density's dependence on $t$.
# We evaluate it on a grid at $t = 1$ for the exact $p_t$, and for a tempting mistake:
# moving the points back but forgetting the volume factor $e^{-t \operatorname{tr} A}$.


# %%
def log_p_no_volume(z, t):
    """The density moved without its volume factor: log p0(exp(-tA) z)."""
    return log_p_exact(z, t) + torch.as_tensor(t) * A.trace()


grid, GX, GY = flows.grid_2d(lim=3.0, n=64, dtype=torch.float64)
res_exact = flows.continuity_residual(log_p_exact, linear_field, grid, 1.0).reshape(GX.shape)
res_wrong = flows.continuity_residual(log_p_no_volume, linear_field, grid, 1.0).reshape(GX.shape)
print(f"max |residual|, exact density:          {res_exact.abs().max().item():.6f}")
print(f"max |residual|, without volume factor:  {res_wrong.abs().max().item():.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6), dpi=80)
for ax, res, name in (
    (axes[0], res_exact, "exact $p_t$"),
    (axes[1], res_wrong, "no volume factor"),
):
    bound = max(float(res_wrong.abs().max()), 1e-12)
    im = ax.imshow(
        res, extent=(-3, 3, -3, 3), origin="lower", cmap="RdBu_r", vmin=-bound, vmax=bound
    )
    ax.set(title=f"continuity residual, {name}", xlabel="$z_1$", ylabel="$z_2$")
    fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()

# %% [markdown]
# The exact density leaves no residual at the scale of the mistake (left is blank).
# Forgetting the volume factor leaves exactly $p\, \nabla\cdot v = p \operatorname{tr} A$ (right): negative where the density is,
# because the field contracts area and a density that ignores this is too thin there.

# %% [markdown]
# **Check yourself.** For a divergence-free field, which of the two densities above would satisfy the continuity equation?
#
# <details><summary>Answer</summary>
#
# Both. With $\nabla\cdot v = 0$ the volume factor $e^{-t \operatorname{tr} A}$ is one, so moving the points back is the whole answer:
# a divergence-free flow preserves area, and the log-density of each moving point stays constant.
# This is lecture 3's subject.
#
# </details>

# %% [markdown]
# ## 4. One flow step and its exact log-density
#
# A solver moves points in steps.
# One explicit Euler step is the map $z' = z + h\, v(z)$.
# Its Jacobian is $I + h J$ with $J = \partial v/\partial z$, so the exact change of variables is
#
# $$\log p'(z') = \log p(z) - \log\big|\det(I + h J(z))\big| = \log p(z) - h\, \nabla\cdot v(z) + O(h^2).$$
#
# The map is invertible (and the formula meaningful) only while $\det(I + hJ) > 0$.
# Below: the Jacobian row by row with autograd, then `slogdet`.


# %%
def flow_step(f, z, log_p, h):
    """Euler step with exact log-density: z (batch, dim), log_p (batch,) -> both moved."""
    z = z.detach().requires_grad_(True)
    v = f(z)
    rows = [torch.autograd.grad(v[:, i].sum(), z, retain_graph=True)[0] for i in range(z.shape[1])]
    jac = torch.stack(rows, dim=1)  # (batch, dim, dim), jac[b, i, j] = d v_i / d z_j
    sign, logabsdet = torch.linalg.slogdet(torch.eye(z.shape[1]) + h * jac)
    if bool((sign <= 0).any()):
        raise ValueError(f"step not invertible at {int((sign <= 0).sum())} points; reduce h={h}")
    return (z + h * v).detach(), (log_p - logabsdet).detach()


z_mine, lp_mine = flow_step(limit_cycle_field, probe, log_p0(probe), 0.02)
z_lib, lp_lib = flows.euler_logdet_step(limit_cycle_field, probe, log_p0(probe), 0.02)
same = (z_mine - z_lib).abs().max() < 1e-12 and (lp_mine - lp_lib).abs().max() < 1e-12
print(f"same as tutorial_lib.flows.euler_logdet_step: {bool(same)}")

# %% [markdown]
# That comparison used $h = 0.02$ for a reason: the limit-cycle field pulls hard far from the circle
# ($\nabla\cdot v = 2 - 4|z|^2$), and a larger step folds the plane there.
# We count the probe points where $\det(I + hJ) \le 0$:

# %%
jac = calculus.jacobian(limit_cycle_field, probe)
for h in (0.1, 0.05, 0.02):
    folded = int((torch.linalg.det(torch.eye(2) + h * jac) <= 0).sum())
    print(f"h = {h:<4}  step not invertible at {folded:>2} of {probe.shape[0]} points")

# %% [markdown]
# How far is the first-order bookkeeping $h \operatorname{tr} A$ from the exact $\log\det(I + hA)$ for our linear field?

# %%
for h in (0.4, 0.2, 0.1, 0.05):
    exact = torch.linalg.slogdet(torch.eye(2) + h * A)[1].item()
    first = h * A.trace().item()
    print(
        f"h = {h:<5} log det(I + hA) = {exact:+.5f}   h tr A = {first:+.5f}   gap = {exact - first:+.5f}"
    )

# %% [markdown]
# Halving $h$ divides the gap by about four: the difference is $O(h^2)$ per step, as the expansion says.

# %% [markdown]
# ## 5. Log-density along trajectories: three methods
#
# `tutorial_lib.flows.integrate` moves points and log-densities from $t_0$ to $t_1$ in `n_steps` steps:
#
# - `"euler"`: Euler on the pair $(z, \log p)$ with $\frac{d}{dt}\log p = -\nabla\cdot v$ (integrated divergence);
# - `"rk4"`: the classical fourth-order Runge–Kutta method on the same pair;
# - `"euler_logdet"`: Euler steps for $z$ with the exact $\log|\det(I + hJ)|$ of each step.
#
# The analytic answer is $\log p_T$ from section 2.
# We score each method by how far the log-density it reports
# at its end point is from the true $\log p_T$ **at that same point**, averaged over the samples.

# %%
METHODS = ("euler", "rk4", "euler_logdet")
STYLE = {
    "euler": dict(marker="o"),
    "rk4": dict(marker="s"),
    "euler_logdet": dict(marker="x", ls="--"),
}


def log_density_error(method, n_steps, every_step=True):
    """Mean |reported log p - exact log p_t| at the computed points: per step (n_steps + 1,),
    or only at the end (a number) when every_step is False."""
    run = flows.integrate(linear_field, z0, log_p0(z0), 0.0, T, n_steps, method=method)
    if not every_step:
        return (run.log_density[-1] - log_p_exact(run.z[-1], T)).abs().mean().item()
    exact = torch.stack([log_p_exact(z, t) for z, t in zip(run.z, run.t, strict=True)])
    return run.t, (run.log_density - exact).abs().mean(1)


fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=80)
for method in METHODS:
    t, err = log_density_error(method, 10)
    ax.semilogy(t[1:], err[1:], label=method, **STYLE[method])
    print(f"{method:<13} error at t = {T:.0f}: {err[-1].item():.1e}")
ax.set(
    title="Log-density error along the flow, 10 steps",
    xlabel="time t",
    ylabel="mean |log p - log $p_t$|",
)
ax.legend()
plt.show()

# %% [markdown]
# With ten steps, both Euler variants are off by almost a nat at $t = 2$ (printed above), RK4 by about $3\cdot 10^{-5}$:
# more than four orders of magnitude less for four times the field evaluations.
# The two Euler variants land close together but keep different books, as the next cell shows.

# %% [markdown]
# For a linear field the divergence is the constant $\operatorname{tr} A$, so Euler's integrated divergence
# is *exactly* $-t \operatorname{tr} A$ — yet its answer is wrong, because its points are in the wrong place.
# The exact step log-determinant instead gives the exact density of the map it actually applied,
# $(I + hA)^n$, which we can also write down in closed form:

# %%
n = 10
euler_map = torch.linalg.matrix_power(torch.eye(2) + (T / n) * A, n)
run = flows.integrate(linear_field, z0, log_p0(z0), 0.0, T, n, method="euler_logdet")
pushed = flows.gaussian_log_density(run.z[-1], euler_map @ m0, euler_map @ cov0 @ euler_map.T)
print(
    f"euler_logdet = density of the Euler map's samples: {bool((run.log_density[-1] - pushed).abs().max() < 1e-10)}"
)
run_div = flows.integrate(linear_field, z0, log_p0(z0), 0.0, T, n, method="euler")
print(
    f"euler (integrated divergence), same check: {bool((run_div.log_density[-1] - pushed).abs().max() < 1e-10)}"
)

# %% [markdown]
# So `euler_logdet` keeps exact books for a slightly wrong map, which is what a latent flow model needs:
# its likelihood is then the likelihood of the model it really computes.

# %% [markdown]
# ## 6. Error against step size
#
# A method of order $q$ has error $\approx C h^q$, a straight line of slope $q$ on log-log axes.
# We integrate with $n = 8, 16, \dots, 256$ steps and fit the slope by least squares.

# %%
steps = [8, 16, 32, 64, 128, 256]
h_values = np.array([T / s for s in steps])
final_errors = {
    m: np.array([log_density_error(m, s, every_step=False) for s in steps]) for m in METHODS
}
orders = {m: np.polyfit(np.log(h_values), np.log(e), 1)[0] for m, e in final_errors.items()}
for m in METHODS:
    print(
        f"{m:<13} fitted order {orders[m]:.2f}   error at h = {h_values[-1]:.4f}: {final_errors[m][-1]:.1e}"
    )

# %%
fig, ax = plt.subplots(figsize=(5.5, 4), dpi=80)
for m in METHODS:
    ax.loglog(h_values, final_errors[m], label=f"{m} (order {orders[m]:.2f})", **STYLE[m])
ax.set(
    title="Log-density error at t = 2 against step size",
    xlabel="step size h",
    ylabel="mean |log p - log $p_T$|",
)
ax.legend()
plt.show()

# %% [markdown]
# The fitted slopes are close to one for both Euler variants and close to four for RK4, the orders the theory predicts
# (the coarsest steps, still outside the asymptotic regime, pull the Euler fits slightly above one).
# Halving the step buys a factor of two for Euler and sixteen for RK4.

# %% [markdown]
# **Check yourself.** Can `euler_logdet` break down on our linear field if the step is large, say $h = 2$?
#
# <details><summary>Answer</summary>
#
# No: $\det(I + hA) = 1 - 0.4h + 0.68h^2$ has no real root, so every step is invertible and the books stay exact;
# only the map gets worse. For the limit-cycle field it does break down, as section 4 measured at $h = 0.1$.
#
# </details>
#
# **Check yourself.** Why does Euler with integrated divergence get a linear field's log-density change exactly right along its own path, yet still score error $O(h)$?
#
# <details><summary>Answer</summary>
#
# Because it is scored at the point where it ended up: the points drift from the true trajectory by $O(h)$,
# and the true density at the wrong point differs from the right value by $O(h)$.
#
# </details>

# %% [markdown]
# ## Summary
#
# - A field moves samples by $\dot z = v(z, t)$; their density obeys $\partial_t p + \nabla\cdot(p v) = 0$.
# - Along a trajectory, $\frac{d}{dt}\log p = -\nabla\cdot v$; a divergence costs one backward pass per dimension.
# - One Euler step changes log-density by exactly $-\log|\det(I + hJ)|$, which is $-h\nabla\cdot v$ to first order.
# - Measured orders here: 1.11 for Euler, 1.07 for the exact step log-determinant, 3.98 for RK4.
#
# ## What comes next
#
# Lecture 2 restricts fields to gradients of a potential, $v = \nabla u$, the fields that move density around,
# and uses them to carry one 2-D density to another by optimal transport.
