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
# # Lecture 4: Helmholtz decomposition
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/notebooks/04_helmholtz.ipynb)
#
# Lectures 2 and 3 built the two kinds of field separately: gradients of a potential, which move density around,
# and divergence-free fields, which only stir it.
# Every smooth field is a sum of the two. This lecture recovers both parts of a given field with two networks,
# and shows where the split stops being unique.
#
# **Learning goals**
#
# - State the Helmholtz decomposition $v = \nabla u + S\nabla\psi$ in 2-D.
# - Fit both parts of a given field with a potential network and a stream-function network, and map the errors.
# - Recognise harmonic fields, which are curl-free and divergence-free at once, and the ambiguity they cause.
# - Say what extra condition makes the split identifiable, and what that means for learned fields.
# - Explore mixed fields interactively.

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
from IPython.display import HTML, display
from matplotlib import animation

from tutorial_lib import calculus, fields, flows, widgets
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=2)
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# The networks here are small and two-dimensional, so everything runs on the CPU whatever device was found.

# %%
cpu = torch.device("cpu")
print(f"computing on {cpu.type} in {torch.get_default_dtype()}")

# %% [markdown]
# ## 1. Two parts of one field
#
# The Helmholtz decomposition writes a smooth field as
#
# $$v = \nabla u + r, \qquad \nabla\times\nabla u = 0, \qquad \nabla\cdot r = 0 .$$
#
# In 2-D every divergence-free field is a rotated gradient, $r = S\nabla\psi$ with $S = \begin{pmatrix}0 & 1\\ -1 & 0\end{pmatrix}$,
# that is $r = (\partial_2\psi, -\partial_1\psi)$, the stream-function field of lecture 3. So
#
# $$v = \nabla u + S\nabla\psi, \qquad \nabla\cdot v = \Delta u, \qquad \operatorname{curl} v = \partial_1 v_2 - \partial_2 v_1 = -\Delta\psi .$$
#
# The divergence of $v$ sees only $u$, its curl only $\psi$.
#
# Our test field has a known answer: $u$ and $\psi$ are each a sum of two Gaussian bumps, so both parts fade away from the centre.


# %%
def bump(z, centre, width):
    """exp(-|z - centre|^2 / width) for points z (batch, 2) -> (batch,)."""
    return torch.exp(-((z - torch.tensor(centre)) ** 2).sum(1) / width)


def u_true(z):
    return 1.5 * bump(z, (-1.0, 0.5), 1.0) - bump(z, (1.2, -0.8), 1.5)


def psi_true(z):
    return 2.0 * bump(z, (0.8, 0.8), 1.2) - bump(z, (-0.8, -1.0), 0.8)


def skew(g):
    """S g = (g_2, -g_1) for gradients g (batch, 2)."""
    return torch.stack([g[:, 1], -g[:, 0]], dim=1)


def curl_free_true(z):
    return calculus.gradient(u_true, z, create_graph=True)  # graph kept: we take its divergence


def div_free_true(z):
    return skew(calculus.gradient(psi_true, z, create_graph=True))


def target(z):
    return curl_free_true(z) + div_free_true(z)


# %% [markdown]
# The field and its two parts on a grid, with the divergence and curl of each part computed by automatic differentiation:

# %%
grid, GX, GY = flows.grid_2d(lim=3.0, n=48)
arrows, AX, AY = flows.grid_2d(lim=3.0, n=15)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), dpi=80, sharey=True)
for ax, (name, fn) in zip(
    axes,
    (
        ("curl-free $\\nabla u$", curl_free_true),
        ("divergence-free $S\\nabla\\psi$", div_free_true),
        ("sum $v$", target),
    ),
    strict=True,
):
    speed = fn(grid).detach().norm(dim=1).reshape(GX.shape)
    ax.contourf(GX, GY, speed, levels=12, cmap="Blues")
    v = fn(arrows).detach()
    ax.quiver(AX, AY, v[:, 0].reshape(AX.shape), v[:, 1].reshape(AX.shape))
    ax.set(title=name, xlabel="$z_1$")
    ax.set_aspect("equal")
axes[0].set_ylabel("$z_2$")
fig.suptitle("The test field and its two parts (colour: speed)")
plt.show()
for name, fn in (("curl-free part", curl_free_true), ("div-free part", div_free_true)):
    print(
        f"{name}: max |div| {calculus.divergence(fn, grid).abs().max().item():.2f}, "
        f"max |curl| {calculus.curl_2d(fn, grid).abs().max().item():.2f}"
    )

# %% [markdown]
# Notice the sources and sinks of the curl-free part and the closed loops of the divergence-free part;
# in the sum neither is obvious, and the printed numbers show that each part has only one of divergence and curl.
#
# ## 2. Harmonic fields are both
#
# A field can be curl-free and divergence-free at once: $\nabla h$ with $\Delta h = 0$ (a harmonic $h$).
# The simplest non-trivial one is the saddle
#
# $$H(z) = \tfrac12 (z_1, -z_2) = \nabla\big(\tfrac14(z_1^2 - z_2^2)\big) = S\nabla\big(\tfrac12 z_1 z_2\big).$$
#
# So for any number $\alpha$, the pair
#
# $$\nabla u + \alpha H \quad\text{and}\quad S\nabla\psi + (1-\alpha) H$$
#
# is a curl-free plus a divergence-free field with the same sum $v + H$. We check this for three values of $\alpha$.


# %%
def h_potential(z):
    return 0.25 * (z[:, 0] ** 2 - z[:, 1] ** 2)


def h_stream(z):
    return 0.5 * z[:, 0] * z[:, 1]


H_grad = calculus.gradient(h_potential, grid)
H_skew = skew(calculus.gradient(h_stream, grid))
print(
    f"grad of the potential equals S grad of the stream function: {bool((H_grad - H_skew).abs().max() < 1e-5)}"
)
print(f"Laplacian of h is zero: {bool(calculus.laplacian(h_potential, grid).abs().max() < 1e-5)}")
for alpha in (0.0, 0.5, 1.0):
    a = lambda z, al=alpha: (
        curl_free_true(z) + al * calculus.gradient(h_potential, z, create_graph=True)
    )
    b = lambda z, al=alpha: (
        div_free_true(z) + (1 - al) * skew(calculus.gradient(h_stream, z, create_graph=True))
    )
    same_sum = (a(grid) + b(grid) - target(grid) - H_grad).abs().max() < 1e-5
    curl_a = calculus.curl_2d(a, grid).abs().max() < 1e-5
    div_b = calculus.divergence(b, grid).abs().max() < 1e-5
    print(
        f"alpha {alpha:.1f}: same sum {bool(same_sum)}, first part curl-free {bool(curl_a)}, "
        f"second part divergence-free {bool(div_b)} (all to 1e-5)"
    )

# %% [markdown]
# Every $\alpha$ gives a valid decomposition of the same field. Data that show only the field cannot tell them apart:
# **without an extra condition, the split into a curl-free and a divergence-free part is not identifiable.**
#
# On the whole plane the usual condition is decay: if both parts vanish far away, the only harmonic field they can trade is zero
# (a bounded harmonic function on the plane is constant, Liouville's theorem), and the split is unique.
# On a bounded box, harmonic fields are plentiful (every harmonic polynomial gives one), so the condition must be imposed at the boundary.
#
# ## 3. Fitting without a condition
#
# We fit $v_\theta = \nabla u_\theta + S\nabla\psi_\theta$ to the test field on the box $[-3, 3]^2$, with the library's
# `PotentialField` and `StreamFunctionField2D` combined in a `HelmholtzField`, and only the fit loss
#
# $$\mathcal L_{\text{fit}} = \mathbb E_{z \sim \mathcal U([-3,3]^2)} \|v_\theta(z) - v(z)\|^2 .$$
#
# We train twice, from two random initialisations.

# %%
BOX = 3.0


def boundary_points(n):
    """n points spread uniformly over the edge of the box [-BOX, BOX]^2, shape (n, 2)."""
    s = torch.rand(n) * 8 * BOX
    side, r = (s // (2 * BOX)).long(), s % (2 * BOX) - BOX
    edge = torch.full_like(r, BOX)
    x = torch.stack([r, edge, -r, -edge], dim=1).gather(1, side[:, None])[:, 0]
    y = torch.stack([-edge, r, edge, -r], dim=1).gather(1, side[:, None])[:, 0]
    return torch.stack([x, y], dim=1)


def fit_helmholtz(seed, decay_weight, n_iters, batch=256):
    """Fit grad u + S grad psi to the test field; optionally make both parts vanish on the edge."""
    torch.manual_seed(seed)
    model = fields.HelmholtzField(fields.PotentialField(2), fields.StreamFunctionField2D())
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_iters)
    for _ in range(n_iters):
        z = (2 * torch.rand(batch, 2) - 1) * BOX
        loss = ((model(z) - target(z).detach()) ** 2).sum(1).mean()
        if decay_weight > 0:
            edge_curl_free, edge_div_free = model.parts(boundary_points(batch // 4))
            loss = (
                loss
                + decay_weight * ((edge_curl_free**2).sum(1) + (edge_div_free**2).sum(1)).mean()
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def relative_error(got, expected):
    """||got - expected|| / ||expected|| over all grid points."""
    got, expected = got.detach(), expected.detach()
    return ((got - expected).norm() / expected.norm()).item()


free_fits = [fit_helmholtz(seed, decay_weight=0.0, n_iters=800) for seed in (1, 2)]
for seed, model in zip((1, 2), free_fits, strict=True):
    a, b = (p.detach() for p in model.parts(grid))
    print(
        f"seed {seed}: relative error of the sum {relative_error(a + b, target(grid)):.3f}, "
        f"of the curl-free part {relative_error(a, curl_free_true(grid)):.3f}, "
        f"of the divergence-free part {relative_error(b, div_free_true(grid)):.3f}"
    )

# %% [markdown]
# Both fits reproduce the sum well, yet their parts are far from the true parts, and from each other.
# What the two fits disagree on should be harmonic: the difference $e$ of the two curl-free parts is a gradient,
# and if it were also divergence-free, it could move to the other part at no cost. We measure its divergence relative to its size.

# %%
curl_free_1, curl_free_2 = free_fits[0].curl_free, free_fits[1].curl_free
difference = lambda z: curl_free_1(z) - curl_free_2(z)
e = difference(grid).detach()
div_e = calculus.divergence(difference, grid).detach()
print(f"size of the difference: rms {e.norm(dim=1).pow(2).mean().sqrt().item():.3f}")
print(
    f"its divergence: rms {div_e.pow(2).mean().sqrt().item():.3f}, "
    f"against {calculus.divergence(curl_free_true, grid).pow(2).mean().sqrt().item():.3f} for the true curl-free part"
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), dpi=80, sharey=True)
ax = axes[0]
ax.quiver(AX, AY, *(difference(arrows).detach().T.reshape(2, *AX.shape)), color="tab:purple")
ax.set(title="difference of the two curl-free parts", xlabel="$z_1$", ylabel="$z_2$")
cs = axes[1].contourf(GX, GY, div_e.reshape(GX.shape), levels=12, cmap="RdBu_r")
axes[1].set(title="its divergence", xlabel="$z_1$")
fig.colorbar(cs, ax=axes[1])
for ax in axes:
    ax.set_aspect("equal")
fig.suptitle("What the fit cannot decide is (nearly) harmonic")
plt.show()

# %% [markdown]
# The difference is a smooth, nearly uniform field, and a uniform field is the gradient of a linear, hence harmonic, function.
# Its divergence is about a quarter of that of the true curl-free part (rms values printed above), concentrated in a few small patches where the fits are imperfect:
# up to training error, the two fits traded a harmonic field between their parts, exactly the freedom of section 2.
# Which one a fit lands on is set by its random initialisation, not by the data.
#
# ## 4. Fitting with a decay condition
#
# Our true parts fade towards the edge of the box, so we impose that: a penalty on both parts on the boundary,
#
# $$\mathcal L = \mathcal L_{\text{fit}} + \lambda\, \mathbb E_{z \in \partial\,\text{box}} \big(\|\nabla u_\theta(z)\|^2 + \|S\nabla\psi_\theta(z)\|^2\big), \qquad \lambda = 1 .$$
#
# A harmonic field that vanishes on the whole boundary vanishes inside (maximum principle), so this removes the freedom.

# %%
model = fit_helmholtz(seed=0, decay_weight=1.0, n_iters=1500)
fit_curl_free, fit_div_free = (p.detach() for p in model.parts(grid))
errors = {
    "curl-free part": relative_error(fit_curl_free, curl_free_true(grid)),
    "divergence-free part": relative_error(fit_div_free, div_free_true(grid)),
    "sum": relative_error(fit_curl_free + fit_div_free, target(grid)),
}
true_curl_free, true_div_free = curl_free_true(grid).detach(), div_free_true(grid).detach()
for name, value in errors.items():
    print(f"relative error of the {name}: {value:.3f}")
max_div = calculus.divergence(model.div_free, grid).abs().max().item()
print(f"divergence of the learned divergence-free part below 1e-5 everywhere: {max_div < 1e-5}")

# %% [markdown]
# Now each part is recovered about as well as the sum itself: the error left is the fitting error of the networks, not ambiguity.
# Where is it? Maps of the error of each part:

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), dpi=80, sharey=True)
maps = (
    ("curl-free error $|\\nabla u_\\theta - \\nabla u|$", fit_curl_free - true_curl_free),
    ("div-free error $|S\\nabla\\psi_\\theta - S\\nabla\\psi|$", fit_div_free - true_div_free),
    ("sum error $|v_\\theta - v|$", fit_curl_free + fit_div_free - true_curl_free - true_div_free),
)
vmax = max(err.norm(dim=1).max().item() for _, err in maps)
for ax, (name, err) in zip(axes, maps, strict=True):
    cs = ax.contourf(
        GX, GY, err.norm(dim=1).reshape(GX.shape), levels=12, cmap="magma", vmin=0, vmax=vmax
    )
    ax.set(title=name, xlabel="$z_1$")
    ax.set_aspect("equal")
axes[0].set_ylabel("$z_2$")
fig.colorbar(cs, ax=axes, shrink=0.8)
fig.suptitle("Where the decay-constrained fit is wrong")
plt.show()

# %% [markdown]
# The largest errors sit at the right edge of the box, where the wide bump of the true potential still has a noticeable gradient,
# so the decay penalty and the fit pull against each other; inside the box both parts are wrong only by small ripples of the networks' fit.
#
# **Check yourself.** Why can the learned divergence-free part not carry any divergence, whatever the training does?
#
# <details><summary>Answer</summary>
#
# It is $S\nabla\psi_\theta$ with a skew $S$: its divergence is $\operatorname{tr}(S\,\nabla^2\psi_\theta) = 0$ for every $\psi_\theta$,
# by construction (lecture 3). The printed check above confirms it to round-off. So all the divergence of $v$ must go to $\nabla u_\theta$.
#
# </details>
#
# ## 5. The recovered parts in motion
#
# Particles carried for two units of time by the learned curl-free part, the learned divergence-free part, and their sum.

# %%
# NBVAL_IGNORE_OUTPUT
# the JavaScript animation carries randomly generated element ids, so its HTML differs per run
axis = torch.linspace(-2.0, 2.0, 12)
PX, PY = torch.meshgrid(axis, axis, indexing="xy")
start = torch.stack([PX.reshape(-1), PY.reshape(-1)], dim=1)
n_frames = 18
movers = (
    ("learned curl-free", model.curl_free),
    ("learned div-free", model.div_free),
    ("learned sum", model),
)


def carry(field, z, t_end, n_steps):
    """RK4 positions (n_steps + 1, batch, 2); no log-density, so no divergence is computed."""
    return flows.integrate(lambda x, t: field(x), z, None, 0.0, t_end, n_steps, method="rk4").z


paths = [carry(f, start, 2.0, n_frames - 1) for _, f in movers]
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8), dpi=60)


def draw(k):
    for ax, (name, _), path in zip(axes, movers, paths, strict=True):
        ax.clear()
        ax.scatter(path[k, :, 0], path[k, :, 1], s=5, c=start[:, 0], cmap="coolwarm")
        ax.set(xlim=(-3, 3), ylim=(-3, 3), title=name, xlabel="$z_1$")
        ax.set_aspect("equal")
    axes[0].set_ylabel("$z_2$")
    fig.suptitle(f"particles under the recovered parts, t = {2.0 * k / (n_frames - 1):.2f}")


anim = animation.FuncAnimation(fig, draw, frames=n_frames, interval=150)
plt.close(fig)
HTML(anim.to_jshtml())

# %% [markdown]
# Under the curl-free part the particles bunch up at the potential's peaks and spread from its valleys;
# under the divergence-free part they circulate around the stream function's bumps, keeping their spacing;
# the sum does both at once.
#
# ## 6. An explorer of mixed fields
#
# `tutorial_lib.widgets` draws $w_{\text{curl}}\,(\text{curl-free part}) + w_{\text{div}}\,(\text{divergence-free part})$ for four field types
# and moves a square of particles along it for a chosen time.
# The static overview first: each field type with only its curl-free part, only its divergence-free part, and both.

# %%
fig = widgets.static_explorer_figure(dpi=60)
plt.show()

# %% [markdown]
# Notice the last row: for the harmonic saddle the "curl-free" and the "divergence-free" parts are the same field,
# and the divergence is zero in all three panels, the ambiguity of section 2 in one picture.
# In the other rows, only panels with a curl-free part change the area of the particle square.
#
# In a live notebook (JupyterLab, Colab) the next cell shows sliders for the field type, the two weights and the time.
# Where widgets cannot render (a stored copy on GitHub), the figure above stands in for it.

# %%
# NBVAL_IGNORE_OUTPUT
# a widget's output holds a model id that is new in every run, and its figure draws only in a live frontend
explorer = widgets.helmholtz_explorer()
if explorer is not None:
    display(explorer)

# %% [markdown]
# **Check yourself.** With the "linear" field type, set $w_{\text{curl}} = 0$. Why does the particle square keep its area at every time?
#
# <details><summary>Answer</summary>
#
# The remaining field is the rotation $0.6(-z_2, z_1)$, whose divergence is zero, so by Liouville's theorem the flow preserves area:
# the square only turns.
#
# </details>
#
# **Check yourself.** You learn a field with a potential network and an exact divergence-free network and find a large "rotational" part.
# Can you conclude that the data contain rotation?
#
# <details><summary>Answer</summary>
#
# Not on its own. Any harmonic field can sit in either part without changing the sum; unless the model imposes a condition
# (decay, a boundary condition, or a penalty that prefers one split), part of what the network calls rotational may be a harmonic
# field that the curl-free part could equally have carried. Check the curl of the learned field: $\operatorname{curl} v = -\Delta\psi$ is identifiable, the split is not.
#
# </details>

# %% [markdown]
# ## Summary
#
# - In 2-D, $v = \nabla u + S\nabla\psi$: divergence comes only from $u$, curl only from $\psi$.
# - Harmonic fields ($\nabla h$, $\Delta h = 0$) are both curl-free and divergence-free, so they can move freely between the parts.
# - Fitting only the sum, two initialisations gave the same sum and different parts, differing by a nearly harmonic field.
# - With both parts made to vanish on the boundary, the fit recovered each part about as accurately as the sum (errors printed above).
# - In the latent flow model nothing fixes this freedom: which share of a learned field is "rotational" is a convention, not a finding.
#
# ## What comes next
#
# Lecture 5 puts several fields side by side and switches them on and off with sparse gates,
# then trains a network to infer which fields moved a pair of points.
