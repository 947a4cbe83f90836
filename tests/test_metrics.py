"""Tests of tutorial_lib.metrics against cases whose answers are known in closed form."""

from __future__ import annotations

import math
from typing import NamedTuple

import pytest
import torch

from tutorial_lib import metrics
from tutorial_lib.metrics import SequenceBatch

# ---------------------------------------------------------------------------------------------
# A linear-Gaussian latent variable model: z ~ N(0, I_d), x | z ~ N(W z + b, sigma^2 I_n).
# Its marginal is N(b, W W^T + sigma^2 I) and its posterior is Gaussian, both in closed form.
# ---------------------------------------------------------------------------------------------

N_OBS, N_LAT, SIGMA = 6, 3, 0.5


def _linear_gaussian(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N_OBS, N_LAT, generator=g, dtype=torch.float64)
    b = torch.randn(N_OBS, generator=g, dtype=torch.float64)
    return w, b


def _log_marginal(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    cov = w @ w.T + SIGMA**2 * torch.eye(N_OBS, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(b, covariance_matrix=cov).log_prob(x)


def _posterior(w: torch.Tensor, b: torch.Tensor):
    """Exact posterior q(z|x) = N(P W^T (x - b) / sigma^2, P), P = (I + W^T W / sigma^2)^-1.

    Its covariance is not diagonal in general; for the exact-posterior test the weights are
    rotated so that W^T W is diagonal.
    """
    precision = torch.eye(N_LAT, dtype=torch.float64) + w.T @ w / SIGMA**2
    cov = torch.linalg.inv(precision)
    return lambda x: ((x - b) @ w @ cov.T / SIGMA**2, cov)


def _diagonalised(w: torch.Tensor) -> torch.Tensor:
    """``W R`` with R orthogonal such that ``(W R)^T (W R)`` is diagonal: same marginal."""
    _, vecs = torch.linalg.eigh(w.T @ w)
    return w @ vecs


def _decoder(w, b):
    return lambda z: z @ w.T + b


def _closed_form_elbo(x, mu, logvar, w, b):
    """E_q log N(x; W z + b, sigma^2 I) - KL(N(mu, diag e^logvar) || N(0, I))."""
    var = torch.exp(logvar)
    resid = x - mu @ w.T - b
    trace = (var.unsqueeze(1) * w.pow(2).unsqueeze(0)).sum(dim=(1, 2))
    expected_ll = -0.5 * N_OBS * math.log(2 * math.pi * SIGMA**2) - 0.5 * (
        resid.pow(2).sum(dim=1) + trace
    ) / (SIGMA**2)
    kl = 0.5 * (var + mu.pow(2) - 1.0 - logvar).sum(dim=1)
    return expected_ll - kl


def _data(w, b, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, N_LAT, generator=g, dtype=torch.float64)
    return z @ w.T + b + SIGMA * torch.randn(n, N_OBS, generator=g, dtype=torch.float64)


def test_iwae_with_exact_posterior_equals_marginal_likelihood_for_any_sample_count():
    w, b = _linear_gaussian()
    w = _diagonalised(w)
    post = _posterior(w, b)
    x = _data(w, b, 16)
    _, cov = post(x)
    assert torch.allclose(cov, torch.diag(torch.diagonal(cov)), atol=1e-12)
    logvar = torch.log(torch.diagonal(cov)).expand(16, N_LAT)
    encode = lambda x: (post(x)[0], logvar)
    log_lik = metrics.decoder_log_likelihood(_decoder(w, b), "gaussian", sigma=SIGMA)
    exact = _log_marginal(x, w, b)
    for s in (1, 7, 100):
        est = metrics.iwae_log_likelihood(
            x,
            encode,
            log_lik,
            n_samples=s,
            chunk_size=3,
            generator=torch.Generator().manual_seed(s),
        )
        assert torch.allclose(est.log_likelihood, exact, atol=1e-9, rtol=0)


def _suboptimal_encoder(w, b):
    """A Gaussian proposal that is deliberately off: shifted mean, diagonal, too wide."""
    post = _posterior(w, b)

    def encode(x):
        mu, cov = post(x)
        logvar = torch.log(1.5 * torch.diagonal(cov)).expand(x.shape[0], N_LAT)
        return mu + 0.3, logvar

    return encode


def test_iwae_with_one_sample_is_an_unbiased_elbo_estimate():
    w, b = _linear_gaussian()
    x = _data(w, b, 4000)
    encode = _suboptimal_encoder(w, b)
    log_lik = metrics.decoder_log_likelihood(_decoder(w, b), "gaussian", sigma=SIGMA)
    est = metrics.iwae_log_likelihood(
        x, encode, log_lik, n_samples=1, generator=torch.Generator().manual_seed(0)
    )
    mu, logvar = encode(x)
    elbo = _closed_form_elbo(x, mu, logvar, w, b)
    diff = est.log_likelihood - elbo
    stderr = float(diff.std() / math.sqrt(diff.numel()))
    assert abs(float(diff.mean())) < 4 * stderr
    assert torch.equal(est.log_likelihood, est.elbo)


def test_iwae_bound_rises_with_samples_towards_the_marginal_from_below():
    w, b = _linear_gaussian()
    x = _data(w, b, 400)
    encode = _suboptimal_encoder(w, b)
    log_lik = metrics.decoder_log_likelihood(_decoder(w, b), "gaussian", sigma=SIGMA)
    exact = float(_log_marginal(x, w, b).mean())
    mu, logvar = encode(x)
    elbo = float(_closed_form_elbo(x, mu, logvar, w, b).mean())
    bounds = {}
    for s in (1, 10, 100, 1000):
        est = metrics.iwae_log_likelihood(
            x,
            encode,
            log_lik,
            n_samples=s,
            chunk_size=50,
            generator=torch.Generator().manual_seed(s),
        )
        bounds[s] = float(est.log_likelihood.mean())
        # the ELBO from the same samples estimates the closed-form ELBO
        assert abs(float(est.elbo.mean()) - elbo) < 0.15
    assert elbo < exact - 0.5  # the proposal is poor enough for the test to mean something
    assert bounds[1] < bounds[10] < bounds[100] < bounds[1000] <= exact + 0.01
    assert exact - bounds[1000] < 0.05 * (exact - bounds[1])


def test_iwae_chunking_bounds_decoder_batch_and_keeps_the_value():
    w, b = _linear_gaussian()
    x = _data(w, b, 200)
    encode = _suboptimal_encoder(w, b)
    inner = metrics.decoder_log_likelihood(_decoder(w, b), "gaussian", sigma=SIGMA)
    sizes = []

    def log_lik(z, xx):
        sizes.append(z.shape[0])
        return inner(z, xx)

    one = metrics.iwae_log_likelihood(
        x, encode, log_lik, n_samples=400, chunk_size=7, generator=torch.Generator().manual_seed(0)
    )
    assert max(sizes) == 7 * 200 and len(sizes) == math.ceil(400 / 7)
    whole = metrics.iwae_log_likelihood(
        x, encode, inner, n_samples=400, chunk_size=400, generator=torch.Generator().manual_seed(1)
    )
    # different random draws: the per-image bounds agree up to Monte Carlo noise
    diff = one.log_likelihood - whole.log_likelihood
    assert abs(float(diff.mean())) < 4 * float(diff.std() / math.sqrt(diff.numel())) + 1e-3


def test_evaluate_log_likelihood_reports_nats_per_image_and_bits_per_dim():
    w, b = _linear_gaussian()
    w = _diagonalised(w)
    post = _posterior(w, b)
    x = _data(w, b, 64)
    logvar = torch.log(torch.diagonal(post(x)[1])).expand(32, N_LAT)
    encode = lambda x: (post(x)[0], logvar)
    log_lik = metrics.decoder_log_likelihood(_decoder(w, b), "gaussian", sigma=SIGMA)
    report = metrics.evaluate_log_likelihood(
        x.split(32), encode, log_lik, n_samples=5, likelihood="gaussian"
    )
    exact = _log_marginal(x, w, b)
    assert report.n_images == 64 and report.n_dims == N_OBS
    assert report.nats_per_image == pytest.approx(float(exact.mean()), abs=1e-9)
    assert report.stderr == pytest.approx(float(exact.std() / 8.0), rel=1e-6)
    assert report.bits_per_dim == pytest.approx(
        -float(exact.mean()) / (N_OBS * math.log(2)), rel=1e-9
    )


def test_decoder_log_likelihoods_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 4, 4, generator=g)
    x = (torch.rand(5, 3, 4, 4, generator=g) > 0.5).float()
    bern = metrics.decoder_log_likelihood(lambda z: z, "bernoulli")(logits, x)
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(bern, ref, atol=1e-5)
    xg = torch.randn(5, 3, 4, 4, generator=g)
    gauss = metrics.decoder_log_likelihood(lambda z: z, "gaussian", sigma=0.3)(logits, xg)
    ref = torch.distributions.Normal(logits, 0.3).log_prob(xg).flatten(1).sum(1)
    assert torch.allclose(gauss, ref, atol=1e-4)
    with pytest.raises(ValueError, match="sigma"):
        metrics.decoder_log_likelihood(lambda z: z, "gaussian")
    with pytest.raises(ValueError, match="bernoulli"):
        metrics.decoder_log_likelihood(lambda z: z, "laplace")


def test_iwae_rejects_bad_sample_counts_and_encoder_shapes():
    x = torch.zeros(4, N_OBS, dtype=torch.float64)
    log_lik = lambda z, x: torch.zeros(z.shape[0], dtype=z.dtype)
    good = lambda x: (torch.zeros(4, 2, dtype=x.dtype), torch.zeros(4, 2, dtype=x.dtype))
    with pytest.raises(ValueError, match="n_samples"):
        metrics.iwae_log_likelihood(x, good, log_lik, n_samples=0)
    with pytest.raises(ValueError, match="chunk_size"):
        metrics.iwae_log_likelihood(x, good, log_lik, chunk_size=0)
    bad = lambda x: (torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"expected encode to return mu and logvar of shape \(4"):
        metrics.iwae_log_likelihood(x, bad, log_lik, n_samples=2)


# ---------------------------------------------------------------------------------------------
# Gate assignment accuracy
# ---------------------------------------------------------------------------------------------


def test_gate_accuracy_is_one_for_a_permuted_perfect_assignment():
    g = torch.Generator().manual_seed(0)
    truth = (torch.rand(50, 8, 3, generator=g) < 0.4).float()
    perm = torch.tensor([2, 0, 3, 1])  # transformation k shows up as field perm[k]; field 1 idle
    predicted = torch.zeros(50, 8, 4)
    predicted[..., perm[:3]] = truth * 0.9 + 0.05  # probabilities, not hard gates
    result = metrics.gate_assignment_accuracy(truth, predicted)
    assert result.accuracy == 1.0 and result.step_accuracy == 1.0
    assert result.field_for_transformation.tolist() == perm[:3].tolist()
    assert result.field_order.tolist() == [2, 0, 3, 1]
    ons = truth.reshape(-1, 3).sum(0)
    assert torch.equal(result.confusion[:, :3].diagonal(), ons.long())
    assert int(result.confusion[:, 3].sum()) == 0  # the idle field never fires


def test_gate_accuracy_and_confusion_match_a_known_mistake_pattern():
    # single-active steps: 10 steps of each of three transformations
    labels = torch.arange(3).repeat_interleave(10)
    truth = torch.nn.functional.one_hot(labels, 3).float()
    predicted_label = torch.tensor([1] * 10 + [0] * 8 + [2] * 2 + [2] * 7 + [-1] * 3)
    predicted = torch.zeros(30, 3)
    on = predicted_label >= 0
    predicted[on, predicted_label[on]] = 1.0
    result = metrics.gate_assignment_accuracy(truth, predicted)
    # best matching: transformation 0 -> field 1, 1 -> field 0, 2 -> field 2
    assert result.field_for_transformation.tolist() == [1, 0, 2]
    expected = torch.tensor([[10, 0, 0, 0], [0, 8, 2, 0], [0, 0, 7, 3]])
    assert torch.equal(result.confusion, expected)
    # errors: 2 steps x 2 wrong gates (field 2 on, field 0 off) + 3 steps x 1 (field 2 off)
    assert result.accuracy == pytest.approx(1 - (2 * 2 + 3) / 90)
    assert result.step_accuracy == pytest.approx(25 / 30)
    assert result.per_transformation_accuracy.tolist() == pytest.approx([1.0, 28 / 30, 25 / 30])


def test_gate_accuracy_rejects_fewer_fields_than_transformations_and_shape_mismatch():
    with pytest.raises(ValueError, match="expected at least 3 fields"):
        metrics.gate_assignment_accuracy(torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="leading shape"):
        metrics.gate_assignment_accuracy(torch.zeros(5, 3), torch.zeros(4, 3))


# ---------------------------------------------------------------------------------------------
# Equivariance error on a toy model where every answer is known: images are a linear map of the
# latent, and transformation k translates the latent by c_k per unit of magnitude.
# ---------------------------------------------------------------------------------------------

C, H, W_IMG, D, K, T = 1, 2, 3, 3, 2, 4


class ToyWorld:
    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.a = torch.randn(C * H * W_IMG, D, generator=g, dtype=torch.float64)
        self.pinv = torch.linalg.pinv(self.a)
        self.shift = torch.tensor([[1.0, 0.0, 0.5], [0.0, -0.7, 0.2]], dtype=torch.float64)

    def decode(self, z):
        return (z @ self.a.T).reshape(-1, C, H, W_IMG)

    def encode(self, x):
        mu = x.reshape(x.shape[0], -1) @ self.pinv.T
        return mu, torch.full_like(mu, -4.0)

    def sequences(self, n: int, k: int, seed: int) -> SequenceBatch:
        g = torch.Generator().manual_seed(seed)
        z0 = torch.randn(n, D, generator=g, dtype=torch.float64)
        mags = torch.zeros(n, T, K, dtype=torch.float64)
        mags[:, :, k] = 0.5 + torch.rand(n, T, generator=g, dtype=torch.float64)
        mags[:, 1, k] = 0.0  # one step where the transformation is off
        z = (
            z0.unsqueeze(1)
            + torch.cat([torch.zeros(n, 1, K, dtype=torch.float64), mags.cumsum(1)], dim=1)
            @ self.shift
        )
        frames = self.decode(z.reshape(-1, D)).reshape(n, T + 1, C, H, W_IMG)
        return SequenceBatch(frames, (mags > 0).to(torch.float64), mags)


def test_equivariance_error_is_zero_for_the_exact_flow_and_known_for_a_frozen_latent():
    world = ToyWorld()
    seqs = {k: world.sequences(20, k, seed=10 + k) for k in range(K)}

    def exact(batch, k):
        mu, _ = world.encode(batch.frames[:, 0])
        z = mu.unsqueeze(1) + batch.magnitudes.cumsum(1) @ world.shift
        return world.decode(z.reshape(-1, D)).reshape(len(batch), T, C, H, W_IMG)

    def frozen(batch, k):
        return batch.frames[:, :1].expand(-1, T, -1, -1, -1)

    report = metrics.equivariance_error(exact, seqs, names=("shift-a", "shift-b"))
    assert report.names == ("shift-a", "shift-b")
    assert float(report.sum_over_pixels.abs().max()) < 1e-10

    report = metrics.equivariance_error(frozen, seqs)
    for k in range(K):
        batch = seqs[k]
        moved = (batch.magnitudes.cumsum(1) @ world.shift) @ world.a.T  # (n, T, pixels)
        per_step = moved.abs().sum(-1).mean(0)
        assert torch.allclose(report.sum_over_pixels_per_step[k], per_step, rtol=1e-10)
        assert float(report.sum_over_pixels[k]) == pytest.approx(float(per_step.sum()))
    assert torch.allclose(report.mean_per_pixel, report.sum_over_pixels / (T * C * H * W_IMG))
    assert torch.allclose(
        report.mean_per_pixel_per_step, report.sum_over_pixels_per_step / (C * H * W_IMG)
    )
    assert report.n_pixels == C * H * W_IMG and report.n_sequences.tolist() == [20, 20]
    table = report.to_markdown()
    assert "sum over pixels" in table and "per-pixel mean" in table


def test_equivariance_error_refuses_sequences_of_another_transformation():
    world = ToyWorld()
    with pytest.raises(ValueError, match="generated by transformation 1 alone"):
        metrics.equivariance_error(lambda b, k: b.frames[:, 1:], {1: world.sequences(4, 0, 0)})


class ToyGates(NamedTuple):
    gates: torch.Tensor
    spikes: torch.Tensor
    slab: torch.Tensor


class ToyFlowModel:
    """A 'latent flow model' on the toy world whose fields are the shifts, in permuted order.

    Same evaluation interface as LatentFlowModel: infer_sequence_gates and rollout.
    """

    def __init__(self, world: ToyWorld, ignore_gates: bool = False) -> None:
        self.world = world
        self.ignore_gates = ignore_gates
        # field 2 moves along shift 0, field 0 along shift 1, field 1 along neither
        self.fields = torch.stack(
            [world.shift[1], torch.tensor([0.3, 0.3, -0.3], dtype=torch.float64), world.shift[0]]
        )

    def infer_sequence_gates(self, frames):
        n = frames.shape[0]
        mu = self.world.encode(frames.reshape(-1, C, H, W_IMG))[0].reshape(n, T + 1, D)
        delta = (mu[:, 1:] - mu[:, :-1]).reshape(-1, D)
        speed = torch.linalg.lstsq(self.fields.T, delta.T).solution.T.reshape(n, T, 3)
        spikes = (speed > 1e-6).to(speed.dtype)
        slab = torch.where(spikes > 0, speed, torch.ones_like(speed))
        return ToyGates(spikes * slab, spikes, slab)

    def rollout(self, x0, gates, magnitudes=None):
        coefficients = gates if magnitudes is None else gates * magnitudes
        if self.ignore_gates:
            coefficients = torch.zeros_like(coefficients)
        steps = torch.cat([torch.zeros_like(coefficients[:, :1]), coefficients.cumsum(1)], 1)
        z = self.world.encode(x0)[0].unsqueeze(1) + steps @ self.fields
        return self.world.decode(z.reshape(-1, D)).reshape(x0.shape[0], T + 1, C, H, W_IMG)


def test_latent_flow_predictor_moves_the_latent_in_both_modes():
    world = ToyWorld()
    seqs = {k: world.sequences(10, k, seed=20 + k) for k in range(K)}
    model = ToyFlowModel(world)
    unsup = metrics.LatentFlowPredictor(model, mode="unsupervised")
    assert float(metrics.equivariance_error(unsup, seqs).sum_over_pixels.max()) < 1e-8
    for speed in ("true", "inferred"):
        sup = metrics.LatentFlowPredictor(
            model, mode="supervised", field_for_transformation=[2, 0], speed=speed
        )
        assert float(metrics.equivariance_error(sup, seqs).sum_over_pixels.max()) < 1e-8
    wrong = metrics.LatentFlowPredictor(model, mode="supervised", field_for_transformation=[0, 2])
    assert float(metrics.equivariance_error(wrong, seqs).sum_over_pixels.min()) > 1.0
    frozen = metrics.LatentFlowPredictor(ToyFlowModel(world, ignore_gates=True), "unsupervised")
    with pytest.raises(RuntimeError, match="the latent did not move in 10 of 10"):
        metrics.equivariance_error(frozen, seqs)


def test_inferred_gates_score_perfectly_on_the_toy_model():
    world = ToyWorld()
    batch = world.sequences(10, 1, seed=3)
    gates = metrics.field_gates(ToyFlowModel(world), batch.frames)
    result = metrics.gate_assignment_accuracy(batch.gates, gates)
    assert result.accuracy == 1.0
    assert result.field_for_transformation[1] == 0


# ---------------------------------------------------------------------------------------------
# Baseline traversals
# ---------------------------------------------------------------------------------------------


def test_traversal_baseline_fitted_on_training_data_reproduces_a_latent_translation():
    world = ToyWorld()
    train = [world.sequences(30, k, seed=100 + k) for k in range(K)]
    train = SequenceBatch(
        torch.cat([b.frames for b in train]),
        torch.cat([b.gates for b in train]),
        torch.cat([b.magnitudes for b in train]),
    )
    baseline = metrics.TraversalBaseline.fit(
        world.encode, world.decode, train, likelihood="gaussian"
    )
    for k in range(K):
        assert torch.allclose(baseline.traversals[k].direction, world.shift[k], atol=1e-8)
        assert baseline.traversals[k].kind.startswith("mean_displacement")
    test = {k: world.sequences(15, k, seed=200 + k) for k in range(K)}
    report = metrics.equivariance_error(baseline, test)
    assert float(report.sum_over_pixels.max()) < 1e-8


def test_traversal_baseline_refuses_the_sequences_it_was_fitted_on():
    world = ToyWorld()
    train = world.sequences(30, 0, seed=1)
    baseline = metrics.TraversalBaseline.fit(
        world.encode, world.decode, train, likelihood="gaussian"
    )
    with pytest.raises(ValueError, match="expected held-out sequences, got 30 first frames"):
        metrics.equivariance_error(baseline, {0: train})
    with pytest.raises(ValueError, match="call TraversalBaseline.fit"):
        metrics.equivariance_error(baseline, {1: world.sequences(5, 1, seed=2)})


def test_traversal_baseline_picks_a_single_coordinate_when_that_fits_best():
    world = ToyWorld()
    world.shift = torch.tensor([[0.0, 1.5, 0.0], [0.0, -0.7, 0.2]], dtype=torch.float64)
    train = world.sequences(30, 0, seed=5)
    # a noisy encoder: the mean displacement picks up noise, the single coordinate does not
    g = torch.Generator().manual_seed(0)
    noise = 0.2 * torch.randn(train.frames.shape[0] * (T + 1), D, generator=g, dtype=torch.float64)

    def noisy_encode(x):
        mu, logvar = world.encode(x)
        if x.shape[0] == noise.shape[0]:
            mu = mu + noise * torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
        return mu, logvar

    baseline = metrics.TraversalBaseline.fit(
        noisy_encode, world.decode, train, likelihood="gaussian", scales=(1.0,)
    )
    chosen = baseline.traversals[0]
    assert chosen.kind.startswith("coordinate 1"), chosen.kind
    assert float(chosen.direction[1]) == pytest.approx(1.5, abs=1e-8)


# ---------------------------------------------------------------------------------------------
# The real model, at a tiny size
# ---------------------------------------------------------------------------------------------


def _tiny_config(**kwargs):
    from tutorial_lib.config import Config

    base = dict(latent_dim=6, enc_channels=(4, 8), enc_hidden=16, field_hidden=8, n_steps=2)
    base.update(kwargs)
    return Config(**base)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_model_likelihood_for_iwae_is_the_training_reconstruction_term(likelihood):
    from tutorial_lib.model import LatentFlowModel

    torch.manual_seed(0)
    model = LatentFlowModel(_tiny_config(model="vae", likelihood=likelihood))
    frames = torch.rand(5, 1, 3, 28, 28)
    noise = torch.randn(5, 6)
    with torch.no_grad():
        terms = model.elbo(frames, noise=noise)
        mu, logvar = model.encode(frames[:, 0])
        z = mu + torch.exp(0.5 * logvar) * noise
        log_lik = metrics.model_log_likelihood_fn(model)(z, frames[:, 0])
    assert float(log_lik.mean()) == pytest.approx(float(terms["reconstruction"]), rel=1e-6)


@pytest.mark.parametrize("control", ["single", "double"])
def test_latent_flow_predictor_runs_on_the_model_and_moves_its_frames(control):
    from tutorial_lib.model import LatentFlowModel

    torch.manual_seed(0)
    model = LatentFlowModel(_tiny_config(control=control)).eval()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 28, 28, generator=g)
    sets = metrics.single_transformation_sets(x0, n_steps=2)
    assert set(sets) == {0, 1, 2} and sets[1].frames.shape == (4, 3, 3, 28, 28)
    sup = metrics.LatentFlowPredictor(model, "supervised", field_for_transformation=[2, 0, 1])
    predicted = sup(sets[0], 0)
    assert predicted.shape == (4, 2, 3, 28, 28)
    first = model.rollout(x0, torch.zeros(4, 2, *model.gate_shape))[:, 0]
    assert float((predicted[:, -1] - first).abs().amax()) > 1e-6
    gates = metrics.field_gates(model, sets[0].frames)
    assert gates.shape == (4, 2, 3) and set(gates.unique().tolist()) <= {0.0, 1.0}
    report = metrics.equivariance_error(sup, sets, names=("rotate", "scale", "hue"))
    assert torch.isfinite(report.sum_over_pixels).all() and report.n_pixels == 3 * 28 * 28


def test_sequence_batch_checks_shapes_and_splits_by_transformation():
    with pytest.raises(ValueError, match=r"expected gates of shape \(2, 3, K\), got \(2, 4, 3\)"):
        SequenceBatch(torch.zeros(2, 4, 1, 2, 2), torch.zeros(2, 4, 3), torch.zeros(2, 4, 3))
    gates = torch.zeros(4, 2, 3)
    gates[0, :, 1] = 1  # transformation 1 alone
    gates[1, 0, 0] = 1  # transformation 0 alone, one step
    gates[2, 0, 0] = gates[2, 1, 2] = 1  # two transformations: left out
    batch = SequenceBatch(torch.rand(4, 3, 1, 2, 2), gates, gates.clone())  # sequence 3: none
    groups = metrics.split_by_transformation(batch)
    assert sorted(groups) == [0, 1]
    assert torch.equal(groups[1].frames, batch.frames[:1])
    assert torch.equal(groups[0].frames, batch.frames[1:2])
