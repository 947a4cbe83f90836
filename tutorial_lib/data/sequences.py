"""Transformation sequences from single images: the MNIST sequences of the course.

A sequence starts at an image ``x_0`` and applies, at each of ``T`` steps, the transformations
whose gates are on, each by its magnitude times its unit amount (:data:`TRANSFORMS`). Two
modes, different tasks:

- ``"cumulative"``: frame t is one warp of frame t-1 by the step's amounts (interpolation
  blur and border losses compound along the sequence);
- ``"absolute"``: frame t is one warp of ``x_0`` by the amounts accumulated up to step t
  (rotation angles and hue angles add, scale factors multiply).

Both modes describe the same geometric path; they differ by interpolation error only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from tutorial_lib.data.mnist import load_mnist
from tutorial_lib.data.schedules import GateSchedule
from tutorial_lib.data.transforms import TRANSFORMS, affine_warp, hue_shift, to_red_rgb

__all__ = [
    "MNISTSequences",
    "heldout_mnist_sequences",
    "make_sequences",
    "random_sequence_batch",
    "step_amounts",
]

MODES = ("cumulative", "absolute")


def step_amounts(coefficients: torch.Tensor, transforms: Sequence[str]) -> dict[str, torch.Tensor]:
    """Turn gate-times-magnitude coefficients into physical amounts.

    Args:
        coefficients: ``(batch, T, K)``, one column per name in ``transforms``.

    Returns:
        ``{"degrees": (batch, T), "log_scale": (batch, T), "hue_degrees": (batch, T)}``; a
        transformation that is not listed contributes zeros.
    """
    zeros = torch.zeros_like(coefficients[..., 0])
    amounts = {"degrees": zeros, "log_scale": zeros, "hue_degrees": zeros}
    for k, name in enumerate(transforms):
        if name not in TRANSFORMS:
            raise ValueError(f"expected transforms from {tuple(TRANSFORMS)}, got {name!r}")
        unit = TRANSFORMS[name].unit
        if name == "rotate":
            amounts["degrees"] = amounts["degrees"] + unit * coefficients[..., k]
        elif name == "scale":
            amounts["log_scale"] = amounts["log_scale"] + math.log(unit) * coefficients[..., k]
        else:
            amounts["hue_degrees"] = amounts["hue_degrees"] + unit * coefficients[..., k]
    return amounts


def _apply(
    images: torch.Tensor,
    degrees: torch.Tensor,
    log_scale: torch.Tensor,
    hue: torch.Tensor,
    spatial: bool,
    colour: bool,
) -> torch.Tensor:
    if spatial:
        images = affine_warp(images, degrees, torch.exp(log_scale))
    if colour:
        images = hue_shift(images, hue)
    return images


def make_sequences(
    x0: torch.Tensor,
    gates: torch.Tensor,
    magnitudes: torch.Tensor,
    transforms: Sequence[str] = ("rotate", "scale", "hue"),
    mode: str = "cumulative",
) -> torch.Tensor:
    """Apply per-sample gated transformations to make sequences.

    Args:
        x0: ``(batch, channels, size, size)`` float in [0, 1] (3 channels if ``"hue"`` is used).
        gates: ``(batch, T, K)`` in {0, 1}.
        magnitudes: ``(batch, T, K)`` positive speeds (multiplied by the gates here).
        transforms: K names from :data:`TRANSFORMS`, the order of the last axis.
        mode: ``"cumulative"`` or ``"absolute"`` (see the module docstring).

    Returns:
        frames ``(batch, T + 1, channels, size, size)``, frame 0 is ``x0``.
    """
    if mode not in MODES:
        raise ValueError(f"expected mode in {MODES}, got {mode!r}")
    if x0.dim() != 4:
        raise ValueError(f"expected x0 of shape (batch, channels, H, W), got {tuple(x0.shape)}")
    batch, channels = x0.shape[:2]
    expected = (batch, gates.shape[1] if gates.dim() == 3 else -1, len(transforms))
    for name, tensor in (("gates", gates), ("magnitudes", magnitudes)):
        if tensor.dim() != 3 or tuple(tensor.shape) != expected:
            raise ValueError(
                f"expected {name} of shape (batch={batch}, T, K={len(transforms)}), "
                f"got {tuple(tensor.shape)}"
            )
    if "hue" in transforms and channels != 3:
        raise ValueError(f"the hue transformation needs RGB x0 (3 channels), got {channels}")

    coefficients = (gates * magnitudes).to(device=x0.device, dtype=x0.dtype)
    spatial = "rotate" in transforms or "scale" in transforms
    colour = "hue" in transforms
    n_steps = coefficients.shape[1]

    # One batched warp per step: in cumulative mode of the previous frame by the step's
    # amounts, in absolute mode of x0 by the amounts accumulated so far. (Warping all T
    # frames in one call does the same work but was slower on CPU: a larger working set.)
    per_step = coefficients.cumsum(dim=1) if mode == "absolute" else coefficients
    amounts = step_amounts(per_step, transforms)
    frames = [x0]
    for t in range(n_steps):
        source = x0 if mode == "absolute" else frames[-1]
        frames.append(
            _apply(
                source,
                amounts["degrees"][:, t],
                amounts["log_scale"][:, t],
                amounts["hue_degrees"][:, t],
                spatial,
                colour,
            )
        )
    return torch.stack(frames, dim=1)


def _default_schedule(n_fields: int) -> GateSchedule:
    return GateSchedule(n_fields=n_fields)


def _as_float_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W)`` (0..255) or float ``(N, H, W)`` in [0, 1] -> float ``(N, H, W)``."""
    tensor = torch.as_tensor(images)
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    return tensor.float()


class MNISTSequences(Dataset):
    """MNIST digits in red, moved by per-sample spike-and-slab schedules.

    Every item is a deterministic function of ``(seed, split, index)``, so the same index
    gives the same sequence in any process, with any number of data-loader workers. The
    ``"test"`` split uses only test digits, which never appear in ``"train"``.

    Args:
        split: ``"train"`` or ``"test"``.
        n_steps: transitions T per sequence (frames T + 1).
        mode: ``"cumulative"`` or ``"absolute"``.
        schedule: the gate schedule (default: :class:`GateSchedule` with K fields).
        seed: base seed.
        source: ``"subset"`` (shipped, offline) or ``"idx"`` (official files, downloaded).
        transforms: names of the K transformations.
        sequences_per_digit: how many different sequences start at each digit.
        images, labels: use these arrays instead of loading ``source`` (e.g. for tests).

    Item:
        ``dict(frames (T + 1, 3, 28, 28) float, gates (T, K), magnitudes (T, K), label int)``.
    """

    def __init__(
        self,
        split: str = "train",
        n_steps: int = 8,
        mode: str = "cumulative",
        schedule: GateSchedule | None = None,
        seed: int = 0,
        source: str = "subset",
        transforms: Sequence[str] = ("rotate", "scale", "hue"),
        sequences_per_digit: int = 1,
        images: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"expected mode in {MODES}, got {mode!r}")
        if split not in ("train", "test"):
            raise ValueError(f"expected split 'train' or 'test', got {split!r}")
        if images is None:
            images, labels = load_mnist(split, source)
        self.images = _as_float_images(images)
        self.labels = torch.as_tensor(labels if labels is not None else [-1] * len(images))
        self.split, self.n_steps, self.mode, self.seed = split, n_steps, mode, seed
        self.transforms = tuple(transforms)
        self.schedule = schedule or _default_schedule(len(self.transforms))
        if self.schedule.n_fields != len(self.transforms):
            raise ValueError(
                f"expected a schedule with {len(self.transforms)} fields, "
                f"got {self.schedule.n_fields}"
            )
        self.sequences_per_digit = sequences_per_digit

    def __len__(self) -> int:
        return len(self.images) * self.sequences_per_digit

    def generator(self, index: int) -> torch.Generator:
        """The random stream of item ``index`` (independent of workers and call order)."""
        split_code = 0 if self.split == "train" else 1
        state = np.random.SeedSequence([self.seed, split_code, index]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        if not 0 <= index < len(self):
            raise IndexError(f"expected index in [0, {len(self)}), got {index}")
        digit = index % len(self.images)
        gates, magnitudes = self.schedule.sample(1, self.n_steps, self.generator(index))
        x0 = to_red_rgb(self.images[digit][None])
        frames = make_sequences(x0, gates, magnitudes, self.transforms, self.mode)
        return {
            "frames": frames[0],
            "gates": gates[0],
            "magnitudes": magnitudes[0],
            "label": int(self.labels[digit]),
        }


def random_sequence_batch(
    images: np.ndarray | torch.Tensor,
    batch_size: int,
    n_steps: int = 8,
    schedule: GateSchedule | None = None,
    transforms: Sequence[str] = ("rotate", "scale", "hue"),
    mode: str = "cumulative",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Make one batch of sequences in a single batched call (fast path for training).

    Args:
        images: ``(N, H, W)`` uint8 or float grey digits to start from.
        batch_size: sequences to make; starting digits drawn with replacement.
        device: where to build the frames (default: the images' device).

    Returns:
        ``dict(frames (batch, T + 1, 3, H, W), gates (batch, T, K), magnitudes (batch, T, K),
        index (batch,))`` with ``index`` the row of ``images`` each sequence starts from.
    """
    schedule = schedule or _default_schedule(len(transforms))
    pool = _as_float_images(images)
    device = torch.device(device) if device is not None else pool.device
    index = torch.randint(len(pool), (batch_size,), generator=generator)
    gates, magnitudes = schedule.sample(batch_size, n_steps, generator)
    x0 = to_red_rgb(pool[index].to(device))
    frames = make_sequences(x0, gates.to(device), magnitudes.to(device), transforms, mode)
    return {
        "frames": frames,
        "gates": gates.to(device),
        "magnitudes": magnitudes.to(device),
        "index": index,
    }


def heldout_mnist_sequences(
    n_steps: int = 8,
    mode: str = "cumulative",
    schedule: GateSchedule | None = None,
    seed: int = 0,
    source: str = "subset",
    transforms: Sequence[str] = ("rotate", "scale", "hue"),
) -> dict[str, torch.Tensor]:
    """All test sequences as one fixed batch (test digits only, never a training digit).

    Returns:
        ``dict(frames (N, T + 1, 3, 28, 28), gates (N, T, K), magnitudes (N, T, K),
        labels (N,))`` with N the number of test digits (1,000 for the subset).
    """
    dataset = MNISTSequences("test", n_steps, mode, schedule, seed, source, transforms)
    items = [dataset[i] for i in range(len(dataset))]
    return {
        "frames": torch.stack([item["frames"] for item in items]),  # type: ignore[misc]
        "gates": torch.stack([item["gates"] for item in items]),  # type: ignore[misc]
        "magnitudes": torch.stack([item["magnitudes"] for item in items]),  # type: ignore[misc]
        "labels": torch.tensor([item["label"] for item in items]),
    }
