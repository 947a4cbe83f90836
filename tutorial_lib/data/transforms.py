"""Batched image transformations in pure torch: rotation, scaling and hue rotation.

Every function takes a batch of images ``(batch, channels, height, width)`` and one amount per
image ``(batch,)``, so every sample of a batch can move differently. Angles are in degrees in
the whole public API; they are converted to radians in exactly one place (:func:`_radians`).
The functions run on whatever device the images live on (CPU, CUDA, MPS).

Spatial warps use ``torch.nn.functional.affine_grid`` and ``grid_sample`` (bilinear,
zero padding, ``align_corners=False``), about the image centre. Hue rotation converts RGB to
HSV, adds the angle to the hue and converts back (Smith, "Color gamut transform pairs",
SIGGRAPH 1978; the HSV-to-RGB step uses the closed form ``f(n) = v - v s max(0, min(k, 4 - k,
1))`` with ``k = (n + 6 h) mod 6``, given in the Wikipedia article "HSL and HSV"). Saturation and
value are unchanged, so a pure red digit stays fully saturated at every hue and a 360 degree
shift is the identity up to float rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "TRANSFORMS",
    "TransformSpec",
    "affine_warp",
    "hsv_to_rgb",
    "hue_shift",
    "rgb_to_hsv",
    "rotate",
    "scale",
    "to_red_rgb",
]


@dataclass(frozen=True)
class TransformSpec:
    """One named transformation and its amount per unit of slab magnitude.

    Attributes:
        name: ``"rotate"``, ``"scale"`` or ``"hue"``.
        unit: amount per unit magnitude: degrees for rotate and hue, a factor for scale
            (a magnitude ``m`` scales by ``unit ** m``).
        description: one line for figures and tables.
    """

    name: str
    unit: float
    description: str


TRANSFORMS: dict[str, TransformSpec] = {
    "rotate": TransformSpec("rotate", 20.0, "rotation by 20 degrees per unit magnitude"),
    "scale": TransformSpec("scale", 1.1, "scaling by x1.1 per unit magnitude"),
    "hue": TransformSpec("hue", 20.0, "hue rotation by 20 degrees per unit magnitude"),
}


def _radians(degrees: torch.Tensor) -> torch.Tensor:
    """The single degrees-to-radians conversion of the data package."""
    return degrees * (math.pi / 180.0)


def _check_images(images: torch.Tensor, name: str = "images") -> None:
    if images.dim() != 4:
        raise ValueError(
            f"expected {name} of shape (batch, channels, height, width), got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise TypeError(f"expected floating-point {name} in [0, 1], got dtype {images.dtype}")


def _per_sample(amount: torch.Tensor | float, images: torch.Tensor, name: str) -> torch.Tensor:
    """Broadcast a scalar or check a ``(batch,)`` tensor; returns ``(batch,)`` on the device."""
    batch = images.shape[0]
    amount = torch.as_tensor(amount, dtype=images.dtype, device=images.device)
    if amount.dim() == 0:
        amount = amount.expand(batch)
    if amount.shape != (batch,):
        raise ValueError(f"expected {name} of shape ({batch},), got {tuple(amount.shape)}")
    return amount


def to_red_rgb(images: torch.Tensor) -> torch.Tensor:
    """Put grey images into the red channel of an RGB image.

    Args:
        images: ``(batch, 1, height, width)`` or ``(batch, height, width)``, float in [0, 1].

    Returns:
        ``(batch, 3, height, width)`` with the digit in red and zero green and blue, so that a
        hue rotation can move its colour.
    """
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(
            "expected images of shape (batch, 1, height, width) or (batch, height, width), "
            f"got {tuple(images.shape)}"
        )
    zeros = torch.zeros_like(images)
    return torch.cat([images, zeros, zeros], dim=1)


def affine_warp(
    images: torch.Tensor,
    degrees: torch.Tensor | float = 0.0,
    factor: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Rotate and scale each image about its centre in one resampling.

    Positive degrees turn the content counter-clockwise as displayed (row 0 at the top);
    ``factor > 1`` enlarges the content. Rotation and scaling about the same centre commute, so
    one warp does both.

    Args:
        images: ``(batch, channels, size, size)`` float; height must equal width.
        degrees: ``(batch,)`` or a scalar, angle in degrees.
        factor: ``(batch,)`` or a scalar, positive scale factor.

    Returns:
        ``(batch, channels, size, size)``, bilinear interpolation, zeros outside the image.
    """
    _check_images(images)
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(
            f"expected square images (height == width), got {tuple(images.shape[-2:])}"
        )
    angle = _radians(_per_sample(degrees, images, "degrees"))
    factor = _per_sample(factor, images, "factor")
    if bool((factor <= 0).any()):
        raise ValueError(f"expected positive scale factors, got minimum {factor.min().item()}")
    # The output pixel at normalised position p samples the input at A^-1 p, where A rotates
    # counter-clockwise on screen (y axis pointing down) and scales by `factor`.
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    zero = torch.zeros_like(cos)
    theta = torch.stack(
        [torch.stack([cos, -sin, zero], dim=-1), torch.stack([sin, cos, zero], dim=-1)], dim=1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotate(images: torch.Tensor, degrees: torch.Tensor | float) -> torch.Tensor:
    """Rotate ``(batch, channels, size, size)`` images by ``degrees`` ``(batch,)`` about the
    centre (counter-clockwise as displayed)."""
    return affine_warp(images, degrees=degrees, factor=1.0)


def scale(images: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Scale ``(batch, channels, size, size)`` images by ``factor`` ``(batch,)`` about the
    centre (``factor > 1`` enlarges)."""
    return affine_warp(images, degrees=0.0, factor=factor)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """Convert ``(batch, 3, height, width)`` RGB in [0, 1] to HSV, hue in [0, 1) turns."""
    r, g, b = rgb.unbind(dim=-3)
    # Elementwise max/min of the three channels (a reduction over a length-3 axis with
    # indices is far slower on CPU).
    value = torch.maximum(torch.maximum(r, g), b)
    delta = value - torch.minimum(torch.minimum(r, g), b)
    safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        r == value,
        torch.remainder((g - b) / safe_delta, 6.0),
        torch.where(g == value, (b - r) / safe_delta + 2.0, (r - g) / safe_delta + 4.0),
    )
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue))
    safe_value = torch.where(value > 0, value, torch.ones_like(value))
    saturation = torch.where(value > 0, delta / safe_value, torch.zeros_like(value))
    return torch.stack([hue, saturation, value], dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Convert ``(..., 3, height, width)`` HSV (hue in turns) to RGB in [0, 1]."""
    hue, saturation, value = hsv.unbind(dim=-3)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + 6.0 * hue, 6.0)
        ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
        channels.append(value - value * saturation * ramp)
    return torch.stack(channels, dim=-3)


def hue_shift(images: torch.Tensor, degrees: torch.Tensor | float) -> torch.Tensor:
    """Rotate the hue of RGB images by ``degrees`` per image.

    Args:
        images: ``(batch, 3, height, width)`` RGB in [0, 1].
        degrees: ``(batch,)`` or a scalar, hue angle in degrees (360 is the identity).

    Returns:
        ``(batch, 3, height, width)`` with saturation and value unchanged.
    """
    _check_images(images)
    if images.shape[1] != 3:
        raise ValueError(f"expected RGB images (batch, 3, H, W), got {tuple(images.shape)}")
    turns = _radians(_per_sample(degrees, images, "degrees")) / (2.0 * math.pi)
    hsv = rgb_to_hsv(images.clamp(0.0, 1.0))
    hue = torch.remainder(hsv[:, 0] + turns[:, None, None], 1.0)
    return hsv_to_rgb(torch.stack([hue, hsv[:, 1], hsv[:, 2]], dim=1))
