"""Exactness of the field constructions and of the batched field bank."""

import pytest
import torch

from tutorial_lib import calculus, fields

DIMS = [2, 3, 8, 32]
TOL = {torch.float32: 1e-6, torch.float64: 1e-10}


def _points(dim, dtype, seed):
    return torch.randn(64, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


CONSTRUCTIONS = [
    (make, seed, dim)
    for make in ("skew", "skew_low_rank", "antisymmetric")
    for seed in (0, 1, 2)
    for dim in DIMS
    # The antisymmetric field costs dim**2 outputs: dimension 32 is checked with one seed.
    if not (make == "antisymmetric" and dim == 32 and seed > 0)
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("make", "seed", "dim"), CONSTRUCTIONS)
def test_exact_divergence_free_constructions_have_zero_divergence(make, seed, dim, dtype):
    torch.manual_seed(seed)
    field = {
        "skew": lambda: fields.SkewGradientField(dim),
        "skew_low_rank": lambda: fields.SkewGradientField(dim, rank=2),
        "antisymmetric": lambda: fields.AntisymmetricMatrixField(dim, hidden=16),
    }[make]().to(dtype)
    z = _points(dim, dtype, seed)
    v = field(z)
    assert v.abs().mean() > 1e-3, "a zero field would pass trivially"
    div = calculus.divergence(field, z)
    assert div.abs().max() < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_stream_function_field_is_divergence_free_and_tangent_to_level_sets(seed, dtype):
    torch.manual_seed(seed)
    field = fields.StreamFunctionField2D().to(dtype)
    z = _points(2, dtype, seed)
    assert calculus.divergence(field, z).abs().max() < TOL[dtype]
    grad_psi = calculus.gradient(field.stream, z)
    assert (field(z) * grad_psi).sum(1).abs().max() < TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_potential_field_jacobian_is_symmetric(seed, dim, dtype):
    torch.manual_seed(seed)
    field = fields.PotentialField(dim).to(dtype)
    z = _points(dim, dtype, seed)
    jac = calculus.jacobian(field, z)
    assert jac.abs().max() > 1e-3
    assert (jac - jac.transpose(1, 2)).abs().max() < TOL[dtype]
    assert torch.allclose(field.divergence(z), jac.diagonal(dim1=1, dim2=2).sum(1), atol=1e-5)


def test_single_term_skew_gradient_conserves_its_stream_function():
    torch.manual_seed(0)
    field = fields.SkewGradientField(4, n_terms=1).double()
    z = _points(4, torch.float64, 0)
    grad_psi = calculus.jacobian(field.stream, z)[:, 0]
    assert (grad_psi * field(z)).sum(1).abs().max() < 1e-12


def test_penalised_field_is_not_divergence_free_until_trained():
    torch.manual_seed(0)
    field = fields.PenalisedField(3)
    z = _points(3, torch.float32, 0)
    before = field.divergence_penalty(z).item()
    assert before > 1e-4
    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        field.divergence_penalty(z).backward()
        opt.step()
    after = field.divergence_penalty(z).item()
    assert after < 0.1 * before
    assert after > 0.0


def test_helmholtz_field_exposes_parts_and_curl_free_divergence():
    torch.manual_seed(0)
    field = fields.HelmholtzField(fields.PotentialField(3), fields.SkewGradientField(3)).double()
    z = _points(3, torch.float64, 0)
    a, b = field.parts(z)
    assert torch.allclose(field(z), a + b)
    assert torch.allclose(calculus.divergence(field, z), field.divergence(z), atol=1e-10)


def test_helmholtz_parts_must_share_dimension():
    with pytest.raises(ValueError, match="curl-free dim 3 and divergence-free dim 2"):
        fields.HelmholtzField(fields.PotentialField(3), fields.StreamFunctionField2D())


@pytest.mark.parametrize(
    ("kind", "rank", "activation"),
    [
        ("potential", None, "softplus"),
        ("potential", None, "tanh"),
        ("potential", None, "silu"),
        ("skew", None, "softplus"),
        ("skew", 3, "tanh"),
        ("helmholtz", None, "softplus"),
        ("helmholtz", 3, "silu"),
    ],
)
def test_bank_matches_its_fields_one_at_a_time(kind, rank, activation):
    torch.manual_seed(0)
    bank = fields.FieldBank(4, 6, kind=kind, rank=rank, hidden=32, activation=activation)
    bank = bank.double()
    z = _points(6, torch.float64, 1)
    out = bank(z)
    assert out.velocity.shape == (64, 4, 6) and out.divergence.shape == (64, 4)
    for k in range(4):
        single = bank.field(k)
        assert torch.allclose(single(z), out.velocity[:, k], atol=1e-12)
        numeric = calculus.divergence(single, z)
        assert torch.allclose(numeric, out.divergence[:, k], atol=1e-10)
    if kind == "skew":
        assert out.divergence.abs().max() == 0


def test_bank_helmholtz_parts_sum_to_velocity_and_only_curl_free_part_diverges():
    torch.manual_seed(1)
    bank = fields.FieldBank(3, 4, kind="helmholtz", hidden=16).double()
    z = _points(4, torch.float64, 2)[:16]
    out = bank(z)
    assert torch.allclose(out.curl_free + out.div_free, out.velocity)
    for k in range(3):
        div_free_k = lambda x, k=k: bank(x, divergence="none").div_free[:, k]  # noqa: E731
        assert calculus.divergence(div_free_k, z).abs().max() < 1e-10


def test_bank_hutchinson_divergence_within_four_standard_errors():
    torch.manual_seed(2)
    bank = fields.FieldBank(3, 8, kind="potential").double()
    z = _points(8, torch.float64, 3)
    exact = bank(z).divergence
    gen = torch.Generator().manual_seed(0)
    est = bank(z, divergence="hutchinson", n_probes=64, generator=gen)
    z_scores = (est.divergence - exact).abs() / est.divergence_stderr
    assert z_scores.max() < 4.0


def test_bank_forward_laplacian_equals_reverse_mode_velocity_and_divergence():
    torch.manual_seed(3)
    bank = fields.FieldBank(3, 5, kind="potential", time_dependent=True, depth=3).double()
    z = _points(5, torch.float64, 4)[:16]
    fast = bank(z, t=0.4, divergence="exact")
    slow = bank(z, t=0.4, divergence="none")
    assert torch.allclose(fast.velocity, slow.velocity, atol=1e-12)
    for k in range(3):
        numeric = calculus.divergence(
            lambda x, k=k: bank(x, t=0.4, divergence="none").velocity[:, k], z
        )
        assert torch.allclose(numeric, fast.divergence[:, k], atol=1e-10)


def test_bank_divergence_is_differentiable_in_the_points():
    torch.manual_seed(0)
    bank = fields.FieldBank(2, 3, kind="potential").double()
    z = _points(3, torch.float64, 5)[:8].requires_grad_(True)
    (g,) = torch.autograd.grad(bank(z).divergence.sum(), z)
    h = 1e-6
    e = torch.zeros(3, dtype=torch.float64)
    e[0] = h
    fd = (bank(z.detach() + e).divergence.sum(1) - bank(z.detach() - e).divergence.sum(1)) / (
        2 * h
    )
    assert torch.allclose(g[:, 0], fd, atol=1e-6)


def test_time_dependent_bank_uses_the_time():
    torch.manual_seed(0)
    bank = fields.FieldBank(2, 3, kind="helmholtz", time_dependent=True).double()
    z = _points(3, torch.float64, 0)
    a, b = bank(z, t=0.0).velocity, bank(z, t=1.0).velocity
    assert (a - b).abs().max() > 1e-6
    per_sample = bank(z, t=torch.zeros(64, dtype=torch.float64)).velocity
    assert torch.allclose(per_sample, a)
    with pytest.raises(ValueError, match="expected a time t"):
        bank(z)


def test_bank_gradients_reach_every_parameter():
    bank = fields.FieldBank(3, 4, kind="helmholtz", rank=2)
    out = bank(torch.randn(16, 4))
    (out.velocity.pow(2).mean() + out.divergence.pow(2).mean()).backward()
    for name, p in bank.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_bank_arguments_are_named():
    with pytest.raises(ValueError, match="expected kind in"):
        fields.FieldBank(3, 4, kind="curl")
    with pytest.raises(ValueError, match=r"expected z of shape \(batch, 4\), got \(8, 5\)"):
        fields.FieldBank(3, 4)(torch.randn(8, 5))
    with pytest.raises(ValueError, match="expected divergence 'exact', 'hutchinson' or 'none'"):
        fields.FieldBank(3, 4)(torch.randn(8, 4), divergence="approx")
    with pytest.raises(ValueError, match="expected n_fields to be a positive integer, got 0"):
        fields.FieldBank(0, 4)
    with pytest.raises(IndexError, match=r"expected a field index in \[0, 3\), got 3"):
        fields.FieldBank(3, 4).field(3)


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="expected activation in"):
        fields.mlp(2, 2, activation="relu6")
