"""Shapes3D-style scenes drawn procedurally: the six Shapes3D factors without the download.

The real Shapes3D (Burgess and Kim, 2018, github.com/google-deepmind/3d-shapes) shows an
object in a room under 10 floor hues, 10 wall hues, 10 object hues, 8 scales, 4 shapes and 15
camera orientations: 480,000 images of 64 x 64 RGB, every combination once, in that factor
order. This module draws an imitation with the same factors, sizes and enumeration, so the
same index and factor arithmetic applies and notebooks can show Shapes3D-style sequences
offline:

- a room corner (two walls and a floor) whose corner moves with the orientation;
- an object on the floor: cube, cylinder, sphere or capsule, shaded by a light fixed in the
  room (so turning the camera changes the shading, and the cube's visible faces);
- hues 0, 0.1, ..., 0.9 (HSV turns), scale 0.75 ... 1.25, orientation -30 ... 30 degrees.
  These value tables are this module's choice; the loader of the real file takes its values
  from the file's labels.

It is a drawing, not a renderer: no perspective, no occlusion between walls and object beyond
painting order. Everything is computed per pixel in torch for a whole batch at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from tutorial_lib.data.factors import FactorSequences, FactorSpace, HeldOutBlock
from tutorial_lib.data.transforms import _radians, hsv_to_rgb

__all__ = [
    "SHAPE_NAMES",
    "SHAPES3D_HOLDOUT",
    "SHAPES3D_SPACE",
    "SHAPES3D_VARIED",
    "ProceduralShapes3D",
    "render_scenes",
]

SHAPES3D_SPACE = FactorSpace(
    names=("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
    sizes=(10, 10, 10, 8, 4, 15),
    values=(
        tuple(np.round(np.arange(10) / 10, 2)),
        tuple(np.round(np.arange(10) / 10, 2)),
        tuple(np.round(np.arange(10) / 10, 2)),
        tuple(np.linspace(0.75, 1.25, 8)),
        (0.0, 1.0, 2.0, 3.0),
        tuple(np.linspace(-30.0, 30.0, 15)),
    ),
)
SHAPE_NAMES = ("cube", "cylinder", "sphere", "capsule")
# The transformations of the Shapes3D task: every factor but the object's shape (K = 5).
SHAPES3D_VARIED = ("floor_hue", "wall_hue", "object_hue", "scale", "orientation")
# Held out: object hues 0.7-0.9 together with the three largest scales (11.25 % of images).
SHAPES3D_HOLDOUT = HeldOutBlock({"object_hue": (7, 8, 9), "scale": (5, 6, 7)})

_LIGHT_AZIMUTH = math.radians(-35.0)  # light from the front left of the room
_LIGHT_ELEVATION = math.radians(40.0)
_BASE = 0.72  # image row (in [-1, 1]) of the object's foot


def _base_colour(hue: torch.Tensor, saturation: float) -> torch.Tensor:
    """RGB of hue ``(batch,)`` at value 1: ``(batch, 3, 1, 1)``.

    For a fixed hue and saturation, HSV-to-RGB is linear in the value, so a shaded surface is
    its value map times this colour.
    """
    hsv = torch.stack([hue, torch.full_like(hue, saturation), torch.ones_like(hue)], dim=1)
    return hsv_to_rgb(hsv[:, :, None, None])


def _light(theta: torch.Tensor) -> torch.Tensor:
    """Light direction in camera coordinates (x right, y up, z to the camera): ``(3, batch)``."""
    azimuth = _LIGHT_AZIMUTH - theta
    return torch.stack(
        [
            torch.sin(azimuth) * math.cos(_LIGHT_ELEVATION),
            torch.full_like(azimuth, math.sin(_LIGHT_ELEVATION)),
            torch.cos(azimuth) * math.cos(_LIGHT_ELEVATION),
        ]
    )


def _lit(light: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor, nz: torch.Tensor):
    """Ambient plus Lambert shading; light ``(3, batch, 1, 1)``, normals ``(batch, H, W)``."""
    return 0.3 + 0.7 * (nx * light[0] + ny * light[1] + nz * light[2]).clamp_min(0.0)


def _draw_object(
    kind: int, u: torch.Tensor, v: torch.Tensor, radius: torch.Tensor, theta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask and shade ``(batch, H, W)`` of one kind of object for a group of scenes.

    ``u, v`` are ``(1, H, W)`` pixel coordinates, ``radius`` and ``theta`` ``(batch, 1, 1)``.
    """
    light = _light(theta)
    height = 2.0 * radius
    if kind == 0:  # cube of half side r: the side faces that face the camera
        in_height = (v <= _BASE) & (v >= _BASE - height)
        half_diagonal = radius * math.sqrt(2.0)
        mask = torch.zeros(radius.shape[0], *u.shape[1:], dtype=torch.bool)
        shade = torch.zeros(mask.shape)
        for j in range(4):
            psi = theta + j * math.pi / 2
            left = half_diagonal * torch.sin(psi - math.pi / 4)
            right = half_diagonal * torch.sin(psi + math.pi / 4)
            on_face = (torch.cos(psi) > 0) & in_height
            on_face = (
                on_face & (u >= torch.minimum(left, right)) & (u < torch.maximum(left, right))
            )
            face_shade = _lit(light, torch.sin(psi), torch.zeros_like(psi), torch.cos(psi))
            mask = mask | on_face
            shade = torch.where(on_face, face_shade, shade)
        return mask, shade
    if kind == 1:  # cylinder with an elliptical top cap
        cap = (u / radius) ** 2 + ((v - (_BASE - height)) / (0.3 * radius)) ** 2 < 1.0
        bottom = (u / radius) ** 2 + ((v - _BASE) / (0.3 * radius)) ** 2 < 1.0
        body = ((u.abs() < radius) & (v <= _BASE) & (v >= _BASE - height)) | bottom
        nx = (u / radius).clamp(-1.0, 1.0)
        zeros = torch.zeros_like(nx)
        body_shade = _lit(light, nx, zeros, torch.sqrt(1.0 - nx**2))
        cap_shade = 0.1 + 0.9 * _lit(light, zeros, torch.ones_like(nx), zeros)
        return body | cap, torch.where(cap, cap_shade, body_shade)
    # Sphere (kind 2) and capsule (kind 3): points within a distance of a vertical segment
    # (a single point for the sphere); the normal is the offset from the nearest point.
    if kind == 2:
        width, top, low = radius, _BASE - radius, _BASE - radius
    else:
        width = 0.6 * radius
        top, low = _BASE - 2.2 * radius + width, _BASE - width
    nearest = torch.minimum(torch.maximum(v, top), low)
    dx, dy = u / width, (v - nearest) / width
    dist2 = dx**2 + dy**2
    nz = torch.sqrt((1.0 - dist2).clamp_min(0.0))
    return dist2 < 1.0, _lit(light, dx, -dy, nz)


def render_scenes(
    factors: torch.Tensor | np.ndarray, size: int = 64, supersample: int = 2
) -> torch.Tensor:
    """Draw scenes from factor indices.

    Args:
        factors: ``(batch, 6)`` integer indices in :data:`SHAPES3D_SPACE` order.
        size: output height and width in pixels.
        supersample: draw at ``size * supersample`` and average down (anti-aliasing).

    Returns:
        ``(batch, 3, size, size)`` float RGB in [0, 1].
    """
    factors = np.asarray(factors, dtype=np.int64)
    if factors.ndim != 2 or factors.shape[1] != 6:
        raise ValueError(f"expected factors of shape (batch, 6), got {factors.shape}")
    if (factors < 0).any() or (factors >= np.array(SHAPES3D_SPACE.sizes)).any():
        raise ValueError(f"factor indices out of range for sizes {SHAPES3D_SPACE.sizes}")
    values = torch.as_tensor(SHAPES3D_SPACE.values_of(factors), dtype=torch.float32)
    radius = (0.27 * values[:, 3])[:, None, None]
    theta = _radians(values[:, 5])[:, None, None]

    n = size * supersample
    coords = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2.0 - 1.0
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    u, v = u[None], v[None]

    # Room: the corner where the back walls meet moves against the camera's turn.
    corner = -0.8 * theta / math.radians(30.0)
    horizon = -0.05 + 0.2 * (u - corner).abs()
    is_floor = v > horizon
    depth = ((v - horizon) / (1.0 - horizon).clamp_min(1e-3)).clamp(0.0, 1.0)
    wall_value = torch.where(u < corner, 0.92, 0.72) - 0.15 * (horizon - v).clamp(0.0, 1.0)
    shadow = ((u / (1.3 * radius)) ** 2 + ((v - _BASE) / (0.28 * radius)) ** 2 < 1.0) & is_floor
    floor_value = (0.45 + 0.5 * depth) * torch.where(shadow, 0.55, 1.0)
    floor = floor_value[:, None] * _base_colour(values[:, 0], 0.75)
    wall = wall_value[:, None] * _base_colour(values[:, 1], 0.7)
    image = torch.where(is_floor[:, None], floor, wall)

    object_colour = _base_colour(values[:, 2], 0.8)
    for kind in range(len(SHAPE_NAMES)):
        rows = torch.from_numpy(np.flatnonzero(factors[:, 4] == kind))
        if len(rows) == 0:
            continue
        mask, shade = _draw_object(kind, u, v, radius[rows], theta[rows])
        drawn = shade.clamp(0.0, 1.0)[:, None] * object_colour[rows]
        image[rows] = torch.where(mask[:, None], drawn, image[rows])
    if supersample > 1:
        image = F.avg_pool2d(image, supersample)
    return image.clamp(0.0, 1.0)


class ProceduralShapes3D(FactorSequences):
    """Shapes3D-style sequences drawn on the fly (see :class:`FactorSequences` for items).

    Args:
        split: ``"train"``, ``"test"`` (held-out block :data:`SHAPES3D_HOLDOUT`) or ``"all"``.
        n_steps: transitions per sequence (published Shapes3D setting: 7, i.e. 8 values).
        varied: factors that sequences vary (default :data:`SHAPES3D_VARIED`, K = 5).
        n_sequences: dataset length.
        size: image size in pixels.
    """

    def __init__(
        self,
        split: str = "train",
        n_steps: int | None = 7,
        varied: tuple[str, ...] = SHAPES3D_VARIED,
        holdout: HeldOutBlock | None = SHAPES3D_HOLDOUT,
        n_sequences: int = 10_000,
        seed: int = 0,
        size: int = 64,
    ) -> None:
        super().__init__(SHAPES3D_SPACE, varied, n_steps, split, holdout, n_sequences, seed)
        self.size = size

    def load_images(self, indices: np.ndarray) -> torch.Tensor:
        """Draw the images of dataset indices ``(L,)``: ``(L, 3, size, size)``."""
        return render_scenes(self.space.factors_of(indices), size=self.size)

    def image(self, index: int) -> torch.Tensor:
        """One image ``(3, size, size)`` by dataset index, as in the real file's order."""
        return self.load_images(np.array([index]))[0]
