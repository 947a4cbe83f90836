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
# # Lecture 5: Sparse gating in 2-D
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparse-flows/sparse-flow-course/blob/main/notebooks/05_sparse_gating.ipynb)
#
# A few fields, each one transformation, and at every step only some of them switched on.
# This lecture generates point sequences that way and trains a small network to say, from two consecutive frames alone,
# which fields were on.
#
# **Learning goals**
#
# - Build a gated sum of fields $\sum_k y_k s_k v^k$ with binary spikes $y_k$ and positive slabs $s_k$.
# - Sample spikes from a per-field Markov chain and slabs from a concentrated positive prior.
# - Derive the Binary-Concrete relaxation of a Bernoulli variable, and see why one Gumbel sample is not it.
# - Train a posterior network on pairs $(z_t, z_{t+1})$ with an annealed temperature and straight-through spikes.
# - Score the inferred gates on held-out sequences: accuracy and a confusion matrix.

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
import numpy as np
import torch
from IPython.display import HTML
from matplotlib import animation
from torch import nn

from tutorial_lib import calculus, flows, gating
from tutorial_lib.runtime import setup

settings = setup(seed=0, threads=2)
device = settings.device
print(f"device: {device.type}, fast mode: {settings.fast}")

# %% [markdown]
# Everything here is two-dimensional and small, so it runs on the CPU whatever device was found.

# %%
cpu = torch.device("cpu")
print(f"computing on {cpu.type} in {torch.get_default_dtype()}")

# %% [markdown]
# ## 1. Four fields
#
# Each field is one transformation primitive, the 2-D stand-in for "rotate", "grow" or "shift" in an image.
# All four are affine, $v^k(z) = A_k z + b_k$:
#
# | field | $A_k$ | $b_k$ | divergence | curl |
# |---|---|---|---|---|
# | rotation | $0.6\begin{pmatrix}0&-1\\1&0\end{pmatrix}$ | 0 | 0 | 1.2 |
# | expansion | $0.3\,I$ | 0 | 0.6 | 0 |
# | shear | $0.6\begin{pmatrix}0&1\\0&0\end{pmatrix}$ | 0 | 0 | $-0.6$ |
# | translation | 0 | $(0.7, 0)$ | 0 | 0 |
#
# In the language of lectures 2 to 4, only the expansion is curl-free and compressible; rotation and shear are
# divergence-free; the translation is both (the gradient of the harmonic potential $0.7 z_1$).
# We store each field as a $3\times 3$ augmented matrix $\begin{pmatrix}A_k & b_k\\ 0 & 0\end{pmatrix}$, which will make its flow easy.

# %%
FIELD_NAMES = ("rotation", "expansion", "shear", "translation")
K = len(FIELD_NAMES)
generators = torch.zeros(K, 3, 3)
generators[0, :2, :2] = torch.tensor([[0.0, -0.6], [0.6, 0.0]])
generators[1, :2, :2] = 0.3 * torch.eye(2)
generators[2, :2, :2] = torch.tensor([[0.0, 0.6], [0.0, 0.0]])
generators[3, :2, 2] = torch.tensor([0.7, 0.0])


def field_k(k):
    """Field k as a callable (batch, 2) -> (batch, 2)."""
    return lambda z, t=None: z @ generators[k, :2, :2].T + generators[k, :2, 2]


probe = torch.randn(256, 2)
for k, name in enumerate(FIELD_NAMES):
    div = calculus.divergence(field_k(k), probe)
    curl = calculus.curl_2d(field_k(k), probe)
    print(f"{name:12s} divergence {div.mean().item():+.2f}   curl {curl.mean().item():+.2f}")

# %% [markdown]
# The divergence and curl, computed by automatic differentiation at 256 random points, match the table.
# A picture of the four fields:

# %%
grid, GX, GY = flows.grid_2d(lim=2.0, n=11)
fig, axes = plt.subplots(1, K, figsize=(11, 3), dpi=80, sharey=True)
for k, (ax, name) in enumerate(zip(axes, FIELD_NAMES, strict=True)):
    v = field_k(k)(grid)
    ax.quiver(GX, GY, v[:, 0].reshape(GX.shape), v[:, 1].reshape(GX.shape), color="tab:blue")
    ax.set(title=name, xlabel="$z_1$", xlim=(-2.3, 2.3), ylim=(-2.3, 2.3))
    ax.set_aspect("equal")
axes[0].set_ylabel("$z_2$")
fig.suptitle("The four fields $v^k$")
plt.show()

# %% [markdown]
# Notice that rotation and shear both turn points, but the shear only pushes along $z_1$, at a speed set by $z_2$.
#
# ## 2. One step of a gated sum of fields
#
# A gate is $g_k = y_k s_k$: a spike $y_k \in \{0, 1\}$ times a positive slab $s_k$ (the speed).
# One step moves the points for one unit of time along the gated sum $v_g(z) = \sum_k g_k v^k(z)$.
#
# For affine fields the flow of one unit of time is known in closed form.
# With homogeneous coordinates $\tilde z = (z, 1)$, the field is $\dot{\tilde z} = G \tilde z$ with $G = \sum_k g_k \begin{pmatrix}A_k & b_k\\0&0\end{pmatrix}$,
# so $\tilde z(1) = e^{G}\,\tilde z(0)$, one matrix exponential per sample.
# Its gradient with respect to the gates is available through `torch.linalg.matrix_exp`, which we need for training.


# %%
def gated_step(z, gates, time=1.0):
    """Flow points z (..., P, 2) for `time` along sum_k gates[..., k] v^k; gates (..., K)."""
    flow_map = torch.linalg.matrix_exp(time * torch.einsum("...k,kij->...ij", gates, generators))
    return z @ flow_map[..., :2, :2].transpose(-1, -2) + flow_map[..., None, :2, 2]


# %% [markdown]
# We check the closed form against the general integrator of lecture 1 (RK4 with 20 steps),
# for one gate vector with all four fields on, and read off the log-density change as well.
# Only the expansion changes density: $\frac{d}{dt}\log p = -\nabla\cdot v_g = -0.6\, g_{\text{expansion}}$.

# %%
g_test = torch.tensor([0.9, 1.1, 1.0, 0.8])
z_test = torch.randn(64, 2)
gated_field = lambda z, t=None: sum(g_test[k] * field_k(k)(z) for k in range(K))
traj = flows.integrate(gated_field, z_test, torch.zeros(64), 0.0, 1.0, n_steps=20, method="rk4")
closed = gated_step(z_test, g_test)
print(f"closed form and RK4 agree to 1e-5: {bool((closed - traj.z[-1]).abs().max() < 1e-5)}")
print(
    f"log-density change: RK4 {traj.log_density[-1].mean().item():.4f}, "
    f"exact {-0.6 * g_test[1].item():.4f}"
)

# %% [markdown]
# The matrix exponential and RK4 agree to well within single-precision tolerance, and the log-density falls by $0.6\,g_{\text{expansion}}$ as it must.
#
# ## 3. The spike-and-slab prior
#
# Spikes follow an independent two-state Markov chain per field (METHOD.md, section 3):
#
# $$p(y_1^k = 1) = 0.4, \qquad p(y_t^k = 1 \mid y_{t-1}^k = 1) = 0.6, \qquad p(y_t^k = 1 \mid y_{t-1}^k = 0) = 0.25 .$$
#
# A field that is on tends to stay on; several fields can be on at once, or none.
# The chain's stationary on-probability is $\frac{0.25}{1 - 0.6 + 0.25} \approx 0.385$.
# Slabs are log-normal around 1, $\log s \sim \mathcal N(0, 0.1^2)$: every active field moves at close to its unit speed,
# which keeps the slab from doing the spike's job (a free speed could keep a gate on at speed zero).

# %%
spike_prior = gating.MarkovSpikePrior(p_on_first=0.4, p_stay_on=0.6, p_switch_on=0.25)
slab_prior = gating.LogNormalPrior(median=1.0, sigma=0.1)
many = spike_prior.sample(20000, 40, K, generator=torch.Generator().manual_seed(1))
print(f"fraction of gates on at step 40: {many[:, -1].mean().item():.3f} (stationary 0.385)")

# %% [markdown]
# A few sampled spike sequences, one panel per field; each row is one sequence, each column one transition.

# %%
few = spike_prior.sample(12, 16, K, generator=torch.Generator().manual_seed(2))
fig, axes = plt.subplots(1, K, figsize=(11, 2.6), dpi=80, sharey=True)
for k, (ax, name) in enumerate(zip(axes, FIELD_NAMES, strict=True)):
    ax.imshow(few[:, :, k], cmap="Greys", aspect="auto", vmin=0, vmax=1)
    ax.set(title=name, xlabel="transition $t$")
axes[0].set_ylabel("sequence")
fig.suptitle("Markov spikes (black = on)")
plt.show()

# %% [markdown]
# Notice the runs: once on, a field stays on for a few steps (mean run length $1/(1-0.6) = 2.5$), and the fields switch independently.
#
# ## 4. Point sequences
#
# An observation is a small cloud of $P = 6$ points, moved as one by the gated field: the 2-D stand-in for an image.
# A sequence starts from a Gaussian cloud and takes $T = 4$ steps; each observed cloud carries a little noise (standard deviation 0.05).

# %%
N_POINTS, N_STEPS, NOISE = 6, 4, 0.05


def make_sequences(n, generator):
    """Clouds (n, T+1, P, 2), spikes (n, T, K) and slabs (n, T, K) from the prior."""
    spikes = spike_prior.sample(n, N_STEPS, K, generator=generator)
    slabs = torch.exp(slab_prior.sigma * torch.randn(n, N_STEPS, K, generator=generator))
    clouds = [torch.randn(n, N_POINTS, 2, generator=generator)]
    for t in range(N_STEPS):
        clouds.append(gated_step(clouds[-1], spikes[:, t] * slabs[:, t]))
    clouds = torch.stack(clouds, dim=1)
    return clouds + NOISE * torch.randn(clouds.shape, generator=generator), spikes, slabs


data_gen = torch.Generator().manual_seed(3)
train_z, train_y, _ = make_sequences(3000, data_gen)
test_z, test_y, _ = make_sequences(1000, data_gen)
print(f"train: {tuple(train_z.shape)} clouds, test: {tuple(test_z.shape)} clouds")
print(f"fraction of gates on: train {train_y.mean().item():.3f}, test {test_y.mean().item():.3f}")

# %% [markdown]
# One sequence in which some field is on at every step, drawn as the cloud at each time.
# The points are joined in the order of their angle around the first cloud's centre, and the polygon is closed,
# so that its shape can be followed (the flows are affine with positive determinant, so the polygon never folds).


# %%
def active_names(spikes):
    on = [FIELD_NAMES[k] for k in range(K) if spikes[k] > 0.5]
    return "+".join(on) if on else "none"


def polygon(cloud, order):
    """Points (P, 2) in the given order, first point repeated to close the outline."""
    return cloud[torch.cat([order, order[:1]])]


busy = int(torch.nonzero((test_y.sum(-1) > 0).all(-1))[0])
centred = test_z[busy, 0] - test_z[busy, 0].mean(0)
order = torch.argsort(torch.atan2(centred[:, 1], centred[:, 0]))
fig, ax = plt.subplots(figsize=(7, 3.6), dpi=80)
colors = plt.cm.viridis(np.linspace(0, 1, N_STEPS + 1))
for t in range(N_STEPS + 1):
    pts = polygon(test_z[busy, t], order)
    label = "start" if t == 0 else f"t={t}: {active_names(test_y[busy, t - 1])}"
    ax.plot(pts[:, 0], pts[:, 1], "o-", color=colors[t], ms=4, label=label)
ax.set(title="A held-out sequence of clouds", xlabel="$z_1$", ylabel="$z_2$")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
ax.set_aspect("equal")
plt.show()

# %% [markdown]
# The legend lists the fields that were on in each step; the question of this lecture is whether a network can read them off the clouds.
#
# ## 5. Relaxing a Bernoulli spike: Binary-Concrete
#
# The posterior will output a logit $\ell_k$ per field, meaning $q(y_k = 1) = \sigma(\ell_k)$.
# Training needs a sample of $y_k$ that gradients can pass through.
#
# **A Bernoulli sample from logistic noise.** Let $u \sim \mathcal U(0, 1)$ and $L = \log u - \log(1-u)$, a standard logistic variable with
# $P(L \le x) = \sigma(x)$. Then
#
# $$P(\ell + L > 0) = P(L > -\ell) = 1 - \sigma(-\ell) = \sigma(\ell),$$
#
# so $y = \mathbb 1[\ell + L > 0]$ is exactly a Bernoulli$(\sigma(\ell))$ sample.
# $L$ is also the difference of two independent Gumbel samples, which is how it arises from the Gumbel-max trick on two classes.
#
# **Relaxation.** Replace the step function by a sigmoid of temperature $\tau$:
#
# $$y_\tau = \sigma\!\left(\frac{\ell + L}{\tau}\right) \in (0, 1).$$
#
# This is the Binary-Concrete distribution (Maddison, Mnih and Teh, "The Concrete Distribution", ICLR 2017;
# Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017).
# For every $\tau > 0$, $P(y_\tau > \tfrac12) = P(\ell + L > 0) = \sigma(\ell)$, and as $\tau \to 0$ the sample tends to the Bernoulli sample.
# *Straight-through*: use the rounded value $\mathbb 1[y_\tau > \tfrac12]$ in the forward pass and the gradient of $y_\tau$ in the backward pass.
#
# Written out:


# %%
def binary_concrete(logits, temperature, hard=False, generator=None):
    """Relaxed spikes sigmoid((logits + L) / temperature), L logistic; same shape as logits."""
    u = torch.rand(logits.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
    logistic = torch.log(u) - torch.log1p(-u)
    soft = torch.sigmoid((logits + logistic) / temperature)
    if not hard:
        return soft
    return (soft > 0.5).float() + soft - soft.detach()  # forward: rounded, backward: relaxed


logits = torch.linspace(-3, 3, 7)
ours = binary_concrete(logits, 0.5, generator=torch.Generator().manual_seed(4))
library = gating.binary_concrete_sample(logits, 0.5, generator=torch.Generator().manual_seed(4))
print(f"ours equals tutorial_lib.gating's sample: {torch.equal(ours, library)}")

# %% [markdown]
# With the same uniform noise the two agree exactly; from here on we use `gating.binary_concrete_sample`.
#
# ## 6. Calibration: one Gumbel sample is not a relaxation of the Bernoulli
#
# A tempting shortcut adds one Gumbel sample $G = -\log(-\log u)$ to the logit: $\sigma((\ell + G)/\tau)$.
# Its rounded value is on with probability
#
# $$P(\ell + G > 0) = P(G > -\ell) = 1 - \exp(-e^{\ell}) \ne \sigma(\ell).$$
#
# We draw 20,000 samples of each at 25 logits and compare $P(\text{sample} > \tfrac12)$ with $\sigma(\ell)$.

# %%
cal_logits = torch.linspace(-4, 4, 25)
n_draws, tau = 20000, 0.5
cal_gen = torch.Generator().manual_seed(5)
bc = gating.binary_concrete_sample(cal_logits.expand(n_draws, -1), tau, generator=cal_gen)
u = torch.rand(n_draws, len(cal_logits), generator=cal_gen).clamp(1e-6, 1 - 1e-6)
one_gumbel = torch.sigmoid((cal_logits - torch.log(-torch.log(u))) / tau)
p_bc, p_gumbel = (bc > 0.5).float().mean(0), (one_gumbel > 0.5).float().mean(0)
target = torch.sigmoid(cal_logits)
print(
    f"largest |P(sample > 1/2) - sigmoid(logit)|: Binary-Concrete {(p_bc - target).abs().max().item():.3f}, "
    f"one Gumbel {(p_gumbel - target).abs().max().item():.3f}"
)
print(
    f"at logit 0 (q = 0.5): Binary-Concrete {p_bc[12].item():.3f}, one Gumbel {p_gumbel[12].item():.3f} "
    f"(theory {1 - math.exp(-1):.3f})"
)

# %%
fig, ax = plt.subplots(figsize=(5, 4), dpi=80)
ax.plot([0, 1], [0, 1], color="grey", lw=1, label="calibrated")
ax.plot(target, p_bc, "o", color="tab:blue", ms=4, label="Binary-Concrete (logistic noise)")
ax.plot(target, p_gumbel, "s", color="tab:red", ms=4, label="one Gumbel sample")
fine = torch.linspace(-4, 4, 200)
ax.plot(
    torch.sigmoid(fine),
    1 - torch.exp(-torch.exp(fine)),
    color="tab:red",
    lw=1,
    label=r"$1 - \exp(-e^{\ell})$",
)
ax.set(
    title=f"Calibration of relaxed spikes (tau = {tau})",
    xlabel=r"$\sigma(\ell)$, the intended $q(y=1)$",
    ylabel=r"measured $P(\mathrm{sample} > 1/2)$",
)
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Binary-Concrete lies on the diagonal at every logit: its rounded samples are Bernoulli$(\sigma(\ell))$ at any temperature.
# One Gumbel sample is switched on far too often: at $\sigma(\ell) = 0.5$ it fires 63 % of the time, and a KL computed for
# Bernoulli$(\sigma(\ell))$ would then describe a different variable from the one the decoder saw.
#
# **Check yourself.** At which logit does the one-Gumbel sample fire with probability one half?
#
# <details><summary>Answer</summary>
#
# $1 - \exp(-e^{\ell}) = \tfrac12$ gives $e^{\ell} = \log 2$, so $\ell = \log\log 2 \approx -0.37$, where the intended probability is $\sigma(-0.37) \approx 0.41$.
#
# </details>
#
# ## 7. The posterior network and its objective
#
# The posterior $q(y_t, s_t \mid z_t, z_{t+1})$ sees one pair of clouds and outputs, per field, a spike logit $\ell_k$
# and the location of a log-normal slab $q(s_k) = \log\mathcal N(\mu_k, \sigma_k^2)$.
#
# Its first layer is fixed: the least-squares affine map that carries cloud $z_t$ to cloud $z_{t+1}$ (six numbers, minus the identity).
# A network on raw coordinates would first have to learn this least-squares solve, so we hand it over and spend the short training on the gates;
# a small MLP reads logits and slabs from the six numbers.
#
# The objective, per sequence, is the ELBO of METHOD.md section 4 with a known decoder (the gated step of section 2) and observation noise $0.05$:
#
# $$\sum_t \Big( \mathbb E_q \log \mathcal N\big(z_{t+1};\, \Phi_{y_t \odot s_t}(z_t),\, 0.05^2 I\big)
#   - \mathbb E_{q(y_{t-1})} \mathrm{KL}\big(q(y_t)\,\|\,p(y_t \mid y_{t-1})\big) - \mathrm{KL}\big(q(s_t)\,\|\,p(s_t)\big) \Big).$$
#
# Because $q$ is independent across $t$, the expected Markov KL is exact in closed form:
# $q(y^k_{t-1}{=}1)\,\mathrm{KL}(q_t^k \| \mathrm{Bern}(0.6)) + q(y^k_{t-1}{=}0)\,\mathrm{KL}(q_t^k \| \mathrm{Bern}(0.25))$, and $\mathrm{KL}(q_1^k \| \mathrm{Bern}(0.4))$ at the first step.


# %%
def pair_summary(z_from, z_to):
    """Least-squares affine map from cloud z_from to z_to, minus identity: (..., P, 2) -> (..., 6)."""
    ones = torch.ones_like(z_from[..., :1])
    solution = torch.linalg.lstsq(torch.cat([z_from, ones], -1), z_to).solution
    return (solution.transpose(-1, -2) - torch.eye(2, 3)).flatten(-2)


class PairPosterior(nn.Module):
    """q(spikes, slabs | z_t, z_t+1): logits (..., K), slab loc (..., K), slab log-scale (K,)."""

    def __init__(self, hidden=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(6, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2 * K),
        )
        self.slab_log_scale = nn.Parameter(torch.full((K,), -2.0))

    def forward(self, z_from, z_to):
        out = self.net(pair_summary(z_from, z_to))
        return out[..., :K], out[..., K:], self.slab_log_scale.expand_as(out[..., K:])


def negative_elbo(posterior, clouds, temperature, hard=True):
    """Per-sequence loss terms for clouds (batch, T+1, P, 2), averaged over the batch."""
    logits, loc, log_scale = posterior(clouds[:, :-1], clouds[:, 1:])
    spikes = gating.binary_concrete_sample(logits, temperature, hard=hard)
    slab = gating.LogNormalSlab(loc, log_scale)
    predicted = gated_step(clouds[:, :-1], spikes * slab.rsample())
    recon = ((predicted - clouds[:, 1:]) ** 2).sum((-1, -2)) / (2 * NOISE**2)
    q_on = torch.sigmoid(logits)
    kl_first = gating.kl_bernoulli_logits(logits[:, :1], torch.tensor(spike_prior.p_on_first))
    kl_stay = gating.kl_bernoulli_logits(logits[:, 1:], torch.tensor(spike_prior.p_stay_on))
    kl_switch = gating.kl_bernoulli_logits(logits[:, 1:], torch.tensor(spike_prior.p_switch_on))
    kl_rest = q_on[:, :-1] * kl_stay + (1 - q_on[:, :-1]) * kl_switch
    kl_spike = kl_first.sum((1, 2)) + kl_rest.sum((1, 2))
    kl_slab = slab_prior.kl(slab).sum((1, 2))
    return {"recon": recon.sum(1).mean(), "kl_spike": kl_spike.mean(), "kl_slab": kl_slab.mean()}


# %% [markdown]
# ## 8. Training with an annealed temperature
#
# The temperature falls as $\tau = \max(e^{-r\,\text{step}}, 0.1)$ (the published schedule's shape, with a rate $r$ that reaches the floor
# after 70 % of this short run), and spikes are straight-through: the decoder sees exact zeros and ones.

# %%
torch.manual_seed(0)
posterior = PairPosterior()
optimizer = torch.optim.Adam(posterior.parameters(), lr=3e-3)
n_iters, batch = 1200, 64
rate = math.log(10) / (0.7 * n_iters)
history = {"recon": [], "kl_spike": [], "kl_slab": [], "temperature": []}
for step in range(n_iters):
    temperature = gating.temperature_schedule(step, rate=rate, floor=0.1)
    idx = torch.randint(0, train_z.shape[0], (batch,))
    terms = negative_elbo(posterior, train_z[idx], temperature)
    loss = sum(terms.values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for key, value in terms.items():
        history[key].append(value.item())
    history["temperature"].append(temperature)
print(
    f"final terms: recon {np.mean(history['recon'][-100:]):.1f}, "
    f"spike KL {np.mean(history['kl_spike'][-100:]):.2f}, slab KL {np.mean(history['kl_slab'][-100:]):.2f}"
)

# %% [markdown]
# Each term of the loss, logged separately, with the temperature on a second axis:

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.5), dpi=80)
smooth = lambda x: np.convolve(x, np.ones(25) / 25, mode="valid")
for key in ("recon", "kl_spike", "kl_slab"):
    ax.plot(smooth(history[key]), label=key)
ax.set(
    yscale="log",
    xlabel="iteration",
    ylabel="nats per sequence",
    title="Negative ELBO terms during training",
)
ax2 = ax.twinx()
ax2.plot(history["temperature"], color="black", ls="--", label="temperature")
ax2.set_ylabel("temperature")
ax.legend(loc="upper center", fontsize=8)
ax2.legend(loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# The reconstruction term falls by orders of magnitude as the spikes sharpen; the spike KL settles near the information the gates carry.
#
# ## 9. Held-out gate accuracy
#
# On the 1,000 held-out sequences (4,000 pairs, 16,000 gate decisions) a gate counts as on when $q(y_k = 1) > \tfrac12$.
# The fields are known here, so no matching of fields to transformations is needed.

# %%
with torch.no_grad():
    test_logits, test_loc, _ = posterior(test_z[:, :-1], test_z[:, 1:])
inferred = (test_logits > 0).float()
correct = inferred == test_y
print(f"held-out gate accuracy: {100 * correct.float().mean().item():.1f} %")
for k, name in enumerate(FIELD_NAMES):
    print(f"  {name:12s} {100 * correct[..., k].float().mean().item():.1f} %")
print(f"pairs with every gate right: {100 * correct.all(-1).float().mean().item():.1f} %")
on = test_y > 0.5
print(f"inferred speed of active fields: median {test_loc.exp()[on].median().item():.2f}")

# %% [markdown]
# A confusion matrix on the pairs where at most one field was truly on: rows are the truth,
# columns what the posterior says (one field, none, or several).

# %%
classes_true = list(FIELD_NAMES) + ["none"]
classes_pred = list(FIELD_NAMES) + ["none", "several"]
flat_y, flat_inf = test_y.reshape(-1, K), inferred.reshape(-1, K)
single = flat_y.sum(1) <= 1
row = torch.where(flat_y.sum(1) == 0, K, flat_y.argmax(1))[single]
n_on = flat_inf.sum(1)
col = torch.where(n_on == 0, K, torch.where(n_on > 1, K + 1, flat_inf.argmax(1)))[single]
confusion = torch.zeros(K + 1, K + 2)
confusion.index_put_((row, col), torch.ones(len(row)), accumulate=True)
rates = confusion / confusion.sum(1, keepdim=True)
print(
    f"{int(single.sum())} pairs with at most one active field; "
    f"correctly assigned {100 * confusion.diagonal().sum().item() / len(row):.1f} %"
)

# %%
fig, ax = plt.subplots(figsize=(6, 4.5), dpi=80)
im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
for i in range(K + 1):
    for j in range(K + 2):
        ax.text(
            j,
            i,
            f"{rates[i, j].item():.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if rates[i, j] > 0.5 else "black",
        )
ax.set_xticks(range(K + 2), classes_pred, rotation=30)
ax.set_yticks(range(K + 1), classes_true)
ax.set(
    xlabel="inferred", ylabel="true", title="Gate assignment on held-out pairs (row-normalised)"
)
fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()

# %% [markdown]
# Almost all the mass sits on the diagonal; the few errors are pairs in which the observation noise on six points hides part of a field's effect.
#
# ## 10. Watching the inference
#
# The same held-out sequence, played continuously: the observed cloud (blue) and the cloud moved by the inferred gates from the previous observation (orange),
# with the true and inferred active fields in the title.

# %%
# NBVAL_IGNORE_OUTPUT
# the JavaScript animation carries randomly generated element ids, so its HTML differs per run
seq, sub = busy, 6
with torch.no_grad():
    gates_hat = (test_logits[seq] > 0).float() * test_loc[seq].exp()
frames = [(t, s / sub) for t in range(N_STEPS) for s in range(sub)] + [(N_STEPS - 1, 1.0)]
fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=60)
lim = test_z[seq].abs().max().item() + 0.5


def draw(i):
    t, s = frames[i]
    ax.clear()
    with torch.no_grad():
        moved = polygon(gated_step(test_z[seq, t], gates_hat[t], time=s), order)
    target_pts = polygon(test_z[seq, t + 1], order)
    ax.plot(
        target_pts[:, 0],
        target_pts[:, 1],
        "o-",
        color="tab:blue",
        ms=5,
        label="observed $z_{t+1}$",
    )
    ax.plot(
        moved[:, 0], moved[:, 1], "o-", color="tab:orange", ms=4, label="moved by inferred gates"
    )
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="$z_1$", ylabel="$z_2$")
    ax.set_title(
        f"t={t + 1} true: {active_names(test_y[seq, t])}\n"
        f"inferred: {active_names(inferred[seq, t])}",
        fontsize=9,
    )
    ax.legend(loc="lower left", fontsize=7)


anim = animation.FuncAnimation(fig, draw, frames=len(frames), interval=200)
plt.close(fig)
HTML(anim.to_jshtml())

# %% [markdown]
# At the end of each step the orange cloud lands on the blue one: the inferred gates explain the pair.
#
# **Check yourself.** Why does the posterior need a slab prior concentrated near 1, rather than a free positive speed?
#
# <details><summary>Answer</summary>
#
# With a free speed, a gate could stay on at every step and the speed would carry all the information (speed zero = off).
# The spike KL would then push every gate towards its prior, and the spikes would no longer say which fields moved the points.
# Pinning the speed near 1 leaves the on/off decision to the spike.
#
# </details>
#
# **Check yourself.** Why is the straight-through spike useful here?
#
# <details><summary>Answer</summary>
#
# The decoder then always sees exactly 0 or 1, the values used at evaluation, so nothing is learned that only works for half-on gates;
# the gradient still comes from the relaxed sample.
#
# </details>

# %% [markdown]
# ## Summary
#
# - A gate is a spike times a slab, $g_k = y_k s_k$; one step flows along $\sum_k g_k v^k$ (here in closed form by a matrix exponential).
# - Spikes follow a per-field Markov chain; slabs a log-normal prior concentrated near unit speed.
# - Binary-Concrete, $\sigma((\ell + \log u - \log(1-u))/\tau)$, rounds to a Bernoulli$(\sigma(\ell))$ sample at every temperature;
#   one Gumbel sample rounds to Bernoulli$(1 - e^{-e^\ell})$, which is a different variable.
# - A small posterior trained on the ELBO with annealed, straight-through spikes identifies the active fields on held-out pairs (accuracy printed above).
#
# ## What comes next
#
# Part II moves to images: lecture 6 refreshes the variational autoencoder and its importance-weighted likelihood,
# the encoder that will give us $z_0$ when the points become latent codes of pictures.
