"""Flows of samples and log-densities against analytic Gaussians and conservation laws."""

import math

import pytest
import torch

from tutorial_lib import fields, flows

A = torch.tensor([[-0.3, 1.0], [-0.8, 0.2]], dtype=torch.float64)
MEAN0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV0 = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)


def linear(z, t):
    return z @ A.T


def _gaussian_samples(n=20000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    chol = torch.linalg.cholesky(COV0)
    z0 = MEAN0 + torch.randn(n, 2, generator=gen, dtype=torch.float64) @ chol.T
    return z0, flows.gaussian_log_density(z0, MEAN0, COV0)


@pytest.mark.parametrize(
    ("method", "n_steps", "tol"), [("rk4", 20, 1e-5), ("adaptive", 4, 1e-5), ("euler", 400, 5e-3)]
)
def test_linear_flow_keeps_gaussian_with_analytic_mean_covariance_and_density(
    method, n_steps, tol
):
    z0, lp0 = _gaussian_samples()
    traj = flows.integrate(linear, z0, lp0, 0.0, 1.0, n_steps, method=method)
    mean1, cov1 = flows.linear_flow_gaussian(A, MEAN0, COV0, 1.0)
    z1, lp1 = traj.z[-1], traj.log_density[-1]
    # Samples land where the exact flow map exp(A) sends them.
    assert (z1 - z0 @ torch.linalg.matrix_exp(A).T).abs().max() < tol * 10
    # Log-density carried along equals the analytic density of N(mean1, cov1) at z1.
    assert (lp1 - flows.gaussian_log_density(z1, mean1, cov1)).abs().max() < tol * 10
    # Sample moments agree with the analytic ones within Monte Carlo error (n = 20000).
    assert (z1.mean(0) - mean1).abs().max() < 0.03
    assert (torch.cov(z1.T) - cov1).abs().max() < 0.05
    assert traj.z.shape == (n_steps + 1, 20000, 2) and traj.log_density.shape == (
        n_steps + 1,
        20000,
    )


def test_exact_logdet_euler_gives_the_exact_density_of_the_discrete_map():
    z0, lp0 = _gaussian_samples(5000)
    n, h = 10, 0.1
    traj = flows.integrate(linear, z0, lp0, 0.0, 1.0, n, method="euler_logdet")
    step = torch.eye(2, dtype=torch.float64) + h * A
    m = torch.linalg.matrix_power(step, n)
    want = flows.gaussian_log_density(traj.z[-1], m @ MEAN0, m @ COV0 @ m.T)
    assert (traj.log_density[-1] - want).abs().max() < 1e-10
    # and it approaches the continuous flow as the step shrinks: O(h) error
    mean1, cov1 = flows.linear_flow_gaussian(A, MEAN0, COV0, 1.0)
    fine = flows.integrate(linear, z0, lp0, 0.0, 1.0, 200, method="euler_logdet")
    err = (fine.log_density[-1] - flows.gaussian_log_density(fine.z[-1], mean1, cov1)).abs()
    assert err.mean() < 0.01 and err.max() < 0.05


def test_rk4_error_shrinks_at_fourth_order():
    z0, lp0 = _gaussian_samples(200)
    z_exact = z0 @ torch.linalg.matrix_exp(A).T
    errs = []
    for n in (4, 8, 16):
        traj = flows.integrate(linear, z0, lp0, 0.0, 1.0, n, method="rk4")
        errs.append((traj.z[-1] - z_exact).abs().max().item())
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(3.7 < p < 4.3 for p in orders), orders


def test_divergence_free_flow_keeps_log_density_and_area():
    torch.manual_seed(0)
    field = fields.StreamFunctionField2D(hidden=32).double()
    gen = torch.Generator().manual_seed(1)
    z0 = torch.randn(256, 2, generator=gen, dtype=torch.float64)
    lp0 = -0.5 * z0.pow(2).sum(1) - math.log(2 * math.pi)
    traj = flows.integrate(lambda z, t: 3 * field(z), z0, lp0, 0, 1, 20, method="rk4")
    moved = (traj.z[-1] - z0).norm(dim=1).mean()
    assert moved > 0.05, "the flow must actually move the points"
    assert (traj.log_density - lp0).abs().max() < 1e-12
    # Area of a small triangle of particles is preserved to the integrator's accuracy.
    tri = torch.tensor([[0.3, 0.2], [0.31, 0.2], [0.3, 0.21]], dtype=torch.float64)
    out = flows.integrate(lambda z, t: 3 * field(z), tri, torch.zeros(3), 0, 1, 40, method="rk4")

    def area(p):
        a, b = p[1] - p[0], p[2] - p[0]
        return 0.5 * abs(a[0] * b[1] - a[1] * b[0]).item()

    assert abs(area(out.z[-1]) / area(tri) - 1) < 1e-3


def test_positions_only_match_the_tracked_flow_and_stay_differentiable():
    z0, lp0 = _gaussian_samples(50)
    for method in ("euler", "rk4", "adaptive"):
        tracked = flows.integrate(linear, z0, lp0, 0, 1, 8, method=method)
        moved = flows.integrate(linear, z0, None, 0, 1, 8, method=method)
        assert moved.log_density is None
        assert torch.allclose(moved.z, tracked.z, atol=1e-10)
    z = z0[:5].clone().requires_grad_(True)
    end = flows.integrate(linear, z, None, 0, 1, 20, method="rk4", create_graph=True).z[-1]
    (row,) = torch.autograd.grad(end[:, 0].sum(), z)
    assert torch.allclose(row, torch.linalg.matrix_exp(A)[0].expand(5, 2), atol=1e-6)


def test_euler_logdet_step_refuses_a_folding_step():
    def contract(z, t):
        return torch.stack([-3.0 * z[:, 0], torch.zeros_like(z[:, 1])], dim=1)

    z = torch.randn(5, 2, dtype=torch.float64)
    with pytest.raises(flows.FlowStepError, match=r"det <= 0 at 5 of 5 points"):
        flows.euler_logdet_step(contract, z, torch.zeros(5, dtype=torch.float64), h=0.5)
    z1, lp1 = flows.euler_logdet_step(contract, z, torch.zeros(5, dtype=torch.float64), h=0.1)
    assert torch.allclose(lp1, torch.full((5,), -math.log(0.7), dtype=torch.float64))


def test_hutchinson_divergence_in_flows_is_close_to_exact():
    z0, lp0 = _gaussian_samples(500)
    gen = torch.Generator().manual_seed(0)
    exact = flows.integrate(linear, z0, lp0, 0, 1, 10, method="rk4")
    est = flows.integrate(
        linear, z0, lp0, 0, 1, 10, method="rk4", divergence="hutchinson", n_probes=8, generator=gen
    )
    # For a linear field eps^T A eps has variance from the off-diagonal terms only.
    assert (est.log_density[-1] - exact.log_density[-1]).abs().mean() < 0.2


def test_continuity_residual_vanishes_for_the_carried_density_only():
    def log_density(z, t):
        m = torch.linalg.matrix_exp(t[:, None, None] * A)
        mean = m @ MEAN0
        cov = m @ COV0 @ m.transpose(1, 2)
        return torch.distributions.MultivariateNormal(mean, cov).log_prob(z)

    points, _, _ = flows.grid_2d(3.0, 12, dtype=torch.float64)
    res = flows.continuity_residual(log_density, linear, points, 0.7)
    assert res.abs().max() < 1e-10

    def static(z, t):
        return log_density(z, torch.zeros_like(t))

    assert flows.continuity_residual(static, linear, points, 0.7).abs().max() > 1e-2


def test_bad_inputs_are_named():
    z = torch.randn(4, 2)
    with pytest.raises(
        ValueError, match=r"expected log_p to have batch size 4 like z, got log_p of shape \(3,\)"
    ):
        flows.integrate(linear, z, torch.zeros(3))
    with pytest.raises(ValueError, match="expected method in"):
        flows.integrate(linear, z, torch.zeros(4), method="midpoint")
    with pytest.raises(ValueError, match=r"expected the field to return shape \(4, 2\)"):
        flows.integrate(lambda z, t: z[:, :1], z, torch.zeros(4))
    bad = torch.zeros(4)
    bad[0] = float("inf")
    with pytest.raises(ValueError, match="expected finite values in log_p"):
        flows.integrate(linear, z, bad)
    with pytest.raises(ValueError, match="expected n_steps to be a positive integer, got 0"):
        flows.integrate(linear, z, torch.zeros(4), n_steps=0)
