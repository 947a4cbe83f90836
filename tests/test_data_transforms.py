"""Properties of the batched image transformations and of sequence making."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.data.sequences import make_sequences
from tutorial_lib.data.transforms import (
    affine_warp,
    hsv_to_rgb,
    hue_shift,
    rgb_to_hsv,
    rotate,
    scale,
    to_red_rgb,
)


def _blobs(batch: int = 4, size: int = 28, channels: int = 3, width: float = 2.5) -> torch.Tensor:
    """Smooth off-centre Gaussian blobs, zero at the border: (batch, channels, size, size)."""
    generator = torch.Generator().manual_seed(0)
    coords = torch.arange(size, dtype=torch.float32)
    centres = (size / 2) + (torch.rand(batch, channels, 2, generator=generator) - 0.5) * size / 3
    rows = coords[None, None, :, None] - centres[..., 0, None, None]
    cols = coords[None, None, None, :] - centres[..., 1, None, None]
    return torch.exp(-(rows**2 + cols**2) / (2 * width**2))


def test_four_quarter_turns_return_the_image() -> None:
    images = _blobs()
    turned = images
    for _ in range(4):
        turned = rotate(turned, torch.full((4,), 90.0))
    assert (turned - images).abs().max().item() < 1e-4


def test_positive_angle_turns_counter_clockwise_as_displayed() -> None:
    images = _blobs(batch=2)
    turned = rotate(images, torch.tensor([0.0, 90.0]))
    assert torch.allclose(turned[0], images[0], atol=1e-5)
    assert torch.allclose(turned[1], torch.rot90(images[1], 1, dims=(-2, -1)), atol=1e-4)


def test_rotation_angles_add_within_interpolation_error() -> None:
    images = _blobs(width=3.0)
    twice = rotate(rotate(images, torch.full((4,), 25.0)), torch.full((4,), 35.0))
    once = rotate(images, torch.full((4,), 60.0))
    assert (twice - once).abs().max().item() < 0.05  # peak 1, bilinear blur of a smooth blob
    assert (once - images).abs().max().item() > 0.5  # the rotation moved the blobs


def test_scaling_by_two_doubles_the_spread_of_a_centred_blob() -> None:
    coords = torch.arange(64, dtype=torch.float32) - 31.5
    blob = torch.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2 * 4.0**2))
    images = blob[None, None]
    grown = scale(images, torch.tensor([2.0]))

    def spread(image: torch.Tensor) -> float:
        weights = image[0, 0] / image.sum()
        return math.sqrt(float((weights * coords[:, None] ** 2).sum()))

    assert spread(grown) / spread(images) == pytest.approx(2.0, rel=0.02)
    back = scale(grown, torch.tensor([0.5]))
    assert (back - images).abs().max().item() < 0.02


def test_hue_shift_of_360_degrees_is_the_identity() -> None:
    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(hue_shift(images, torch.full((5,), 360.0)), images, atol=1e-5)
    there_and_back = hue_shift(hue_shift(images, torch.full((5,), 100.0)), -100.0)
    assert torch.allclose(there_and_back, images, atol=1e-5)


def test_hue_shift_moves_red_to_green_and_blue() -> None:
    red = to_red_rgb(torch.ones(3, 1, 2, 2))
    shifted = hue_shift(red, torch.tensor([0.0, 120.0, 240.0]))
    expected = torch.eye(3)[:, :, None, None].expand(3, 3, 2, 2)
    assert torch.allclose(shifted, expected, atol=1e-5)


def test_hsv_round_trip_is_the_identity() -> None:
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(images)), images, atol=1e-5)


def test_transform_amounts_are_per_sample() -> None:
    images = _blobs(batch=3)
    warped = affine_warp(images, torch.tensor([0.0, 30.0, 0.0]), torch.tensor([1.0, 1.0, 1.3]))
    assert torch.allclose(warped[0], images[0], atol=1e-5)
    assert not torch.allclose(warped[1], images[1], atol=1e-2)
    assert not torch.allclose(warped[2], images[2], atol=1e-2)


def test_wrong_shapes_name_expected_and_received() -> None:
    with pytest.raises(ValueError, match=r"expected degrees of shape \(4,\), got \(3,\)"):
        rotate(_blobs(), torch.zeros(3))
    with pytest.raises(ValueError, match="expected RGB"):
        hue_shift(torch.zeros(2, 1, 4, 4), 10.0)


def test_absolute_and_cumulative_rotation_agree_within_interpolation_error() -> None:
    x0 = _blobs(batch=2, width=3.0)
    gates = torch.ones(2, 8, 1)
    magnitudes = torch.ones(2, 8, 1)
    absolute = make_sequences(x0, gates, magnitudes, ("rotate",), mode="absolute")
    cumulative = make_sequences(x0, gates, magnitudes, ("rotate",), mode="cumulative")
    assert absolute.shape == (2, 9, 3, 28, 28)
    # Frame 1 is one warp of x0 either way; later frames differ by the blur of the extra
    # bilinear resamplings, measured at about 1.5 % (relative L2) per resampling.
    gap = (absolute - cumulative).flatten(2).norm(dim=2) / absolute.flatten(2).norm(dim=2)
    assert gap[:, :2].max().item() < 1e-5
    assert gap.max().item() < 0.1
    exact = rotate(x0, torch.full((2,), 160.0))
    assert (absolute[:, 8] - exact).abs().max().item() < 1e-5


def test_absolute_and_cumulative_hue_agree_exactly() -> None:
    x0 = to_red_rgb(_blobs(batch=2, channels=1))
    gates, magnitudes = torch.ones(2, 5, 1), torch.full((2, 5, 1), 1.7)
    absolute = make_sequences(x0, gates, magnitudes, ("hue",), mode="absolute")
    cumulative = make_sequences(x0, gates, magnitudes, ("hue",), mode="cumulative")
    assert torch.allclose(absolute, cumulative, atol=1e-5)


def test_closed_gates_leave_their_sample_unchanged() -> None:
    x0 = to_red_rgb(_blobs(batch=2, channels=1))
    gates = torch.zeros(2, 4, 3)
    gates[1, :, 0] = 1.0
    frames = make_sequences(x0, gates, torch.ones(2, 4, 3), mode="cumulative")
    assert torch.allclose(frames[0], x0[0].expand(5, -1, -1, -1), atol=1e-6)
    assert (frames[1, -1] - x0[1]).abs().max().item() > 0.5


def test_scale_sequence_grows_by_the_unit_factor_per_step() -> None:
    coords = torch.arange(64, dtype=torch.float32) - 31.5
    blob = torch.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2 * 3.0**2))
    x0 = blob[None, None].expand(1, 3, -1, -1).contiguous()
    frames = make_sequences(x0, torch.ones(1, 4, 1), torch.ones(1, 4, 1), ("scale",), "absolute")
    expected = scale(x0, torch.tensor([1.1**4]))
    assert torch.allclose(frames[:, 4], expected, atol=1e-5)
