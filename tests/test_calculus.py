"""Batched calculus against analytic answers, finite differences and bad input."""

import math

import pytest
import torch

from tutorial_lib import calculus


def rotation(z: torch.Tensor) -> torch.Tensor:
    """Rigid rotation field (-z2, z1): divergence 0, scalar curl 2 everywhere."""
    return torch.stack([-z[:, 1], z[:, 0]], dim=1)


def test_rotation_field_has_zero_divergence_and_constant_curl():
    z = torch.randn(64, 2, dtype=torch.float64)
    assert calculus.divergence(rotation, z).abs().max() < 1e-12
    assert torch.allclose(calculus.curl_2d(rotation, z), torch.full((64,), 2.0, dtype=z.dtype))


def test_curl_3d_of_rigid_rotation_is_twice_the_axis():
    omega = torch.tensor([0.3, -1.2, 0.5], dtype=torch.float64)
    z = torch.randn(32, 3, dtype=torch.float64)
    curl = calculus.curl_3d(lambda x: torch.linalg.cross(omega.expand_as(x), x), z)
    assert torch.allclose(curl, 2 * omega.expand(32, 3), atol=1e-12)


def test_antisymmetric_jacobian_recovers_half_the_curl_in_2d():
    z = torch.randn(16, 2, dtype=torch.float64)
    anti, norm = calculus.antisymmetric_jacobian(rotation, z)
    assert torch.allclose(anti[:, 1, 0], torch.ones(16, dtype=z.dtype))
    assert torch.allclose(norm, torch.full((16,), math.sqrt(2.0), dtype=z.dtype))


def test_gradient_field_of_a_potential_has_no_antisymmetric_part():
    a = torch.randn(5, 5, dtype=torch.float64)
    q = a @ a.T

    def grad_u(z):
        return z @ q + torch.sin(z)

    _, norm = calculus.antisymmetric_jacobian(grad_u, torch.randn(8, 5, dtype=torch.float64))
    assert norm.max() < 1e-12


def test_laplacian_of_quadratic_is_hessian_trace():
    a = torch.randn(6, 6, dtype=torch.float64)
    hess = a + a.T
    z = torch.randn(20, 6, dtype=torch.float64)
    lap = calculus.laplacian(lambda x: 0.5 * ((x @ hess) * x).sum(1), z)
    assert torch.allclose(lap, hess.trace().expand(20), atol=1e-10)


def test_exact_divergence_agrees_with_central_differences():
    torch.manual_seed(0)
    w = torch.randn(4, 4, dtype=torch.float64)

    def f(z):
        return torch.tanh(z @ w) + z**3 / 3

    z = torch.randn(10, 4, dtype=torch.float64)
    h = 1e-5
    fd = torch.zeros(10, dtype=torch.float64)
    for i in range(4):
        e = torch.zeros(4, dtype=torch.float64)
        e[i] = h
        fd += (f(z + e)[:, i] - f(z - e)[:, i]) / (2 * h)
    assert torch.allclose(calculus.divergence(f, z), fd, atol=1e-8)


def test_jacobian_matches_linear_map():
    a = torch.randn(3, 4, dtype=torch.float64)
    z = torch.randn(5, 4, dtype=torch.float64)
    jac = calculus.jacobian(lambda x: x @ a.T, z)
    assert jac.shape == (5, 3, 4)
    assert torch.allclose(jac, a.expand(5, 3, 4))


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hutchinson_divergence_within_four_standard_errors(probe, seed):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(8, 8, generator=gen, dtype=torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 8))
    net = net.double()

    def f(z):
        return net(z) + z @ w

    z = torch.randn(32, 8, generator=gen, dtype=torch.float64)
    exact = calculus.divergence(f, z)
    est = calculus.divergence_hutchinson(f, z, n_probes=64, probe=probe, generator=gen)
    assert est.estimate.shape == (32,) and est.stderr.shape == (32,)
    assert (est.stderr > 0).all()
    z_scores = (est.estimate - exact).abs() / est.stderr
    assert z_scores.max() < 4.0
    assert z_scores.median() < 2.0


@pytest.mark.parametrize("seed", [0, 1])
def test_hutchinson_laplacian_within_four_standard_errors(seed):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 16, generator=gen, dtype=torch.float64)

    def u(z):
        return torch.log(torch.cosh(z @ w)).sum(1)

    z = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    exact = calculus.laplacian(u, z)
    est = calculus.laplacian_hutchinson(u, z, n_probes=64, generator=gen)
    assert ((est.estimate - exact).abs() / est.stderr).median() < 2.0
    assert ((est.estimate - exact).abs() / est.stderr).max() < 4.0


def test_single_probe_reports_nan_stderr():
    est = calculus.divergence_hutchinson(rotation, torch.randn(4, 2), n_probes=1)
    assert torch.isnan(est.stderr).all()


def test_float32_and_float64_both_work():
    for dtype in (torch.float32, torch.float64):
        z = torch.randn(8, 2, dtype=dtype)
        assert calculus.divergence(rotation, z).dtype == dtype


def test_create_graph_lets_a_divergence_be_trained():
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    z = torch.randn(8, 3)
    div = calculus.divergence(net, z, create_graph=True)
    div.pow(2).mean().backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    assert not calculus.divergence(net, z).requires_grad


def test_wrong_dimension_names_expected_shape():
    with pytest.raises(ValueError, match=r"expected z of shape \(batch, dim\), got \(3,\)"):
        calculus.divergence(rotation, torch.randn(3))
    with pytest.raises(ValueError, match=r"expected z of shape \(batch, 2\), got \(4, 3\)"):
        calculus.curl_2d(rotation, torch.randn(4, 3))


def test_non_finite_input_is_rejected():
    z = torch.randn(5, 2)
    z[2, 1] = float("nan")
    with pytest.raises(ValueError, match="expected finite values in z, got 1 non-finite"):
        calculus.divergence(rotation, z)


def test_field_with_wrong_output_batch_is_rejected():
    with pytest.raises(ValueError, match=r"expected the field to return shape \(4, out_dim\)"):
        calculus.divergence(lambda z: z[:2], torch.randn(4, 2))


def test_divergence_needs_square_jacobian():
    with pytest.raises(ValueError, match="as many outputs as inputs"):
        calculus.divergence(lambda z: z[:, :1], torch.randn(4, 2))


def test_bad_probe_name_is_rejected():
    with pytest.raises(ValueError, match="expected probe to be 'rademacher' or 'gaussian'"):
        calculus.divergence_hutchinson(rotation, torch.randn(4, 2), n_probes=2, probe="normal")
