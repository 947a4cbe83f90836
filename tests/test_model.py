"""The latent flow model: ELBO terms, density bookkeeping, gates, shapes and errors."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib import calculus
from tutorial_lib.config import Config, apply_overrides
from tutorial_lib.model import FlowStepError, LatentFlowModel, gaussian_log_prob

TINY = dict(
    image_size=8,
    in_channels=3,
    enc_channels=(4,),
    enc_hidden=16,
    latent_dim=4,
    n_fields=2,
    field_hidden=8,
    skew_terms=2,
    n_steps=3,
    batch_size=4,
    threads=None,
    path_weight=1.0,
    divergence="exact",
)


def tiny(**overrides: object) -> LatentFlowModel:
    torch.manual_seed(0)
    return LatentFlowModel(apply_overrides(Config(), {**TINY, **overrides}))


def frames(batch: int = 4, steps: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, steps + 1, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_elbo_terms_have_the_right_signs_and_add_up() -> None:
    model = tiny(slab_prior="lognormal")
    terms = model.elbo(frames(), step=10)
    for name in ("kl_z0", "kl_spike", "kl_slab"):
        assert terms[name] >= 0, name
    assert terms["reconstruction"] < 0
    assert terms["reconstruction_per_frame"].shape == (4,)
    assert torch.allclose(terms["reconstruction_per_frame"].sum(), terms["reconstruction"])
    expected = (
        terms["reconstruction"]
        - terms["kl_z0"]
        - terms["kl_spike"]
        - terms["kl_slab"]
        - terms["path"]
    )
    assert torch.allclose(terms["elbo"], expected)
    assert torch.allclose(terms["loss"], -terms["elbo"])  # all weights 1, beta 1, no HJ


def test_kl_terms_vanish_when_posterior_equals_prior() -> None:
    model = tiny(p_on_first=0.5, p_stay_on=0.5, p_switch_on=0.5)
    head = model.posterior.spike
    slab = model.posterior.slab
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()  # q(y = 1) = 1/2 = prior, whatever the previous spike
        slab.weight.zero_()
        slab.bias[:2] = 0.0  # log-speed mean log(1)
        slab.bias[2:] = math.log(0.1)  # log-speed std 0.1, the prior's
    terms = model.elbo(frames())
    assert abs(terms["kl_spike"].item()) < 1e-5
    assert abs(terms["kl_slab"].item()) < 1e-5


def test_all_gates_off_gives_the_plain_vae_loss() -> None:
    # Identical frames: the VAE encodes every frame to the same posterior; with the same noise
    # the flow model with all gates off must give exactly the same loss.
    flow = tiny()
    vae = LatentFlowModel(apply_overrides(Config(), {**TINY, "model": "vae"}))
    vae.encoder.load_state_dict(flow.encoder.state_dict())
    vae.decoder.load_state_dict(flow.decoder.state_dict())
    x = frames(steps=0).expand(4, 4, 3, 8, 8).contiguous()
    noise = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    off = torch.zeros(4, 3, 2)
    flow_terms = flow.elbo(x, gates=off, noise=noise)
    vae_terms = vae.elbo(x, noise=noise)
    assert torch.allclose(flow_terms["loss"], vae_terms["loss"], rtol=1e-6, atol=1e-4)
    assert torch.allclose(flow_terms["kl_z0"] + flow_terms["path"], vae_terms["kl_z0"], atol=1e-4)
    # With gates on, the loss differs: the gates really move the latent.
    on = torch.ones(4, 3, 2)
    assert not torch.allclose(flow.elbo(x, gates=on, noise=noise)["loss"], vae_terms["loss"])


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_divergence_free_parts_leave_log_density_unchanged(method: str) -> None:
    model = tiny(control="double", flow_method=method)
    z = torch.randn(16, 4)
    log_q = torch.randn(16)
    gates = torch.zeros(16, 2, 2)
    gates[..., 1] = torch.rand(16, 2) + 0.5  # only the divergence-free parts act
    z_next, log_q_next = model.flow_step(z, log_q, gates)
    assert (z_next - z).abs().max() > 1e-3
    assert torch.equal(log_q_next, log_q)


def test_curl_free_part_changes_log_density_by_minus_the_laplacian() -> None:
    model = tiny(control="double")
    z = torch.randn(8, 4)
    gates = torch.zeros(8, 2, 2)
    gates[:, 0, 0] = 0.7
    _, log_q = model.flow_step(z, torch.zeros(8), gates)
    bank = model.fields

    def potential(x: torch.Tensor) -> torch.Tensor:
        return bank.potential_net(x.unsqueeze(0), slice(0, 1))[0, :, 0]

    laplacian = calculus.laplacian(potential, z)
    assert torch.allclose(log_q, -0.7 * laplacian, atol=1e-5)
    assert laplacian.abs().max() > 1e-4


def test_exact_step_log_determinant_agrees_with_divergence_to_second_order() -> None:
    z = torch.randn(8, 4)
    gaps = []
    for scale in (0.1, 0.05):
        gates = torch.full((8, 2), scale)
        _, a = tiny(flow_method="euler_logdet").flow_step(z, torch.zeros(8), gates)
        _, b = tiny(flow_method="euler").flow_step(z, torch.zeros(8), gates)
        gaps.append((a - b).abs().max().item())
    assert gaps[0] > 0
    assert gaps[1] < 0.35 * gaps[0]  # O(h^2): halving h quarters the gap


def test_euler_logdet_raises_when_the_step_is_not_invertible() -> None:
    model = tiny(flow_method="euler_logdet")
    a = torch.diag(torch.tensor([-3.0, 0.0, 0.0, 0.0]))  # det(I + A) = -2

    def linear(z: torch.Tensor, gates: torch.Tensor, t: float = 0.0, divergence: str = "none"):
        return z @ a.T, None

    model.velocity = linear  # type: ignore[method-assign]
    with pytest.raises(FlowStepError, match=r"det\(I \+ h J\) > 0"):
        model.flow_step(torch.randn(8, 4), torch.zeros(8), torch.ones(8, 2))


def test_zero_gates_leave_latent_and_density_unchanged() -> None:
    model = tiny()
    z, log_q = torch.randn(5, 4), torch.randn(5)
    z2, log_q2 = model.flow_step(z, log_q, torch.zeros(5, 2))
    assert torch.equal(z2, z) and torch.equal(log_q2, log_q)


def test_heat_prior_path_is_the_gaussian_heat_solution() -> None:
    model = tiny(prior_path="heat", prior_diffusion=0.25)
    z = torch.randn(6, 4)
    for t in (0.0, 1.0, 3.0):
        var = 1.0 + 0.5 * t
        expected = gaussian_log_prob(z, torch.zeros(4), torch.full((4,), math.log(var)))
        assert torch.allclose(model.prior_log_prob(z, t), expected, atol=1e-5)
    # d p / d t = kappa * Laplacian p, checked by finite differences in t and autograd in z.
    z = torch.randn(6, 4, dtype=torch.float64)
    dt = 1e-4
    p = lambda x, t: model.prior_log_prob(x, t).exp()  # noqa: E731
    dpdt = (p(z, 1.0 + dt) - p(z, 1.0 - dt)) / (2 * dt)
    lap = calculus.laplacian(lambda x: p(x, 1.0), z)
    assert torch.allclose(dpdt, 0.25 * lap, rtol=1e-4, atol=1e-9)


def test_hamilton_jacobi_residual_is_per_sample() -> None:
    model = tiny(time_dependent=True, hj_weight=0.1)
    z = torch.randn(6, 4)
    full = model.hj_residual(z, generator=torch.Generator().manual_seed(3))
    first = model.hj_residual(z[:1], generator=torch.Generator().manual_seed(3))
    assert full.shape == (6,)
    assert torch.allclose(full[0], first[0], atol=1e-6)
    assert model.elbo(frames(), step=0)["hj_residual"].item() > 0


def test_gates_and_rollout_have_documented_shapes() -> None:
    model = tiny()
    x = frames()
    gates = model.infer_sequence_gates(x)
    assert gates.gates.shape == (4, 3, 2) and gates.slab.shape == (4, 3, 2)
    assert set(gates.spikes.unique().tolist()) <= {0.0, 1.0}
    images = model.rollout(x[:, 0], gates.gates)
    assert images.shape == x.shape
    still = model.rollout(x[:, 0], torch.zeros(4, 3, 2))
    assert torch.allclose(still[:, 1:], still[:, :1].expand_as(still[:, 1:]))
    predicted, probs = model.reconstruct_sequence(x)
    assert predicted.shape == x.shape and probs.shape == (4, 3, 2)
    double = tiny(control="double")
    assert double.infer_sequence_gates(x).gates.shape == (4, 3, 2, 2)


def test_shape_mismatches_raise_clear_errors() -> None:
    model = tiny()
    with pytest.raises(ValueError, match=r"expected frames of shape \(batch, T\+1, 3, 8, 8\)"):
        model.elbo(torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match=r"expected gates of shape \(4, 3, 2\)"):
        model.elbo(frames(), gates=torch.zeros(4, 3, 5))
    with pytest.raises(ValueError, match=r"expected z of shape \(batch, 4\), got \(5, 3\)"):
        model.flow_step(torch.zeros(5, 3), None, torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"expected x0 of shape"):
        model.rollout(torch.rand(4, 1, 8, 8), torch.zeros(4, 3, 2))
    vae = LatentFlowModel(apply_overrides(Config(), {**TINY, "model": "vae"}))
    with pytest.raises(RuntimeError, match="expected a latent flow model"):
        vae.infer_sequence_gates(frames())
