"""Factor arithmetic and factor-sequence datasets shared by Shapes3D, Falcor3D and Isaac3D.

A factor dataset enumerates every combination of its factors exactly once, in C order (the
last factor changes fastest), so image index and factor indices convert by mixed-radix
arithmetic (:class:`FactorSpace`). A sequence varies exactly one factor over consecutive values
with every other factor fixed.

Held-out split (:class:`HeldOutBlock`): an image is held out when, for every factor named in
the block, its value index lies in the block's set (e.g. "object hue 7-9 together with scale
5-7"). A training sequence never shows a held-out image; a test sequence shows at least one,
so the model is tested on factor combinations it never saw. Images outside the block can
appear in both splits (a test sequence that walks into the block starts outside it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["FactorSequences", "FactorSpace", "HeldOutBlock", "collate_sequences"]

SPLITS = ("train", "test", "all")
MAX_TRIES = 10_000


@dataclass(frozen=True)
class FactorSpace:
    """Names, sizes and values of the factors of a dataset enumerated in C order.

    Attributes:
        names: factor names, in the order of the dataset's enumeration.
        sizes: number of values per factor.
        values: physical value of each index per factor (defaults to the indices).
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    values: tuple[tuple[float, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.names) != len(self.sizes):
            raise ValueError(f"expected one size per name, got {self.names}, {self.sizes}")
        if not self.values:
            object.__setattr__(
                self, "values", tuple(tuple(map(float, range(n))) for n in self.sizes)
            )
        for name, size, vals in zip(self.names, self.sizes, self.values, strict=True):
            if len(vals) != size:
                raise ValueError(f"expected {size} values for factor {name}, got {len(vals)}")

    @property
    def n_factors(self) -> int:
        return len(self.sizes)

    @property
    def n_images(self) -> int:
        return int(np.prod(self.sizes))

    @property
    def strides(self) -> np.ndarray:
        """Index step of each factor: ``prod(sizes[f + 1:])``."""
        return np.array([int(np.prod(self.sizes[f + 1 :])) for f in range(self.n_factors)])

    def position(self, name: str) -> int:
        """Position of a factor by name."""
        if name not in self.names:
            raise KeyError(f"expected a factor in {self.names}, got {name!r}")
        return self.names.index(name)

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """Factor indices ``(n, n_factors)`` -> image indices ``(n,)``."""
        factors = np.asarray(factors, dtype=np.int64)
        if factors.ndim != 2 or factors.shape[1] != self.n_factors:
            raise ValueError(
                f"expected factors of shape (n, {self.n_factors}), got {factors.shape}"
            )
        if (factors < 0).any() or (factors >= np.array(self.sizes)).any():
            raise ValueError(f"factor indices out of range for sizes {self.sizes}")
        return factors @ self.strides

    def factors_of(self, index: np.ndarray) -> np.ndarray:
        """Image indices ``(n,)`` -> factor indices ``(n, n_factors)``."""
        index = np.asarray(index, dtype=np.int64)
        if (index < 0).any() or (index >= self.n_images).any():
            raise ValueError(f"expected image indices in [0, {self.n_images}), got {index}")
        return (index[:, None] // self.strides) % np.array(self.sizes)

    def values_of(self, factors: np.ndarray) -> np.ndarray:
        """Factor indices ``(n, n_factors)`` -> physical values ``(n, n_factors)``."""
        factors = np.asarray(factors, dtype=np.int64)
        return np.stack(
            [np.asarray(self.values[f])[factors[:, f]] for f in range(self.n_factors)], axis=1
        )

    def factors_from_values(self, values: np.ndarray, atol: float = 1e-6) -> np.ndarray:
        """Physical values ``(n, n_factors)`` -> factor indices, exact within ``atol``."""
        values = np.asarray(values, dtype=np.float64)
        out = np.empty(values.shape, dtype=np.int64)
        for f in range(self.n_factors):
            table = np.asarray(self.values[f])
            distance = np.abs(values[:, f, None] - table[None])
            out[:, f] = distance.argmin(axis=1)
            worst = float(distance.min(axis=1).max())
            if worst > atol:
                raise ValueError(
                    f"factor {self.names[f]}: a value is {worst:.3g} from every known value"
                )
        return out


@dataclass(frozen=True)
class HeldOutBlock:
    """Factor combinations held out of training: ``{factor name: value indices}``."""

    block: Mapping[str, tuple[int, ...]]

    def mask(self, space: FactorSpace, factors: np.ndarray) -> np.ndarray:
        """Boolean ``(n,)``: which rows of factor indices ``(n, n_factors)`` are held out."""
        held = np.ones(len(factors), dtype=bool)
        for name, indices in self.block.items():
            held &= np.isin(factors[:, space.position(name)], indices)
        return held

    def fraction(self, space: FactorSpace) -> float:
        """Fraction of all images that are held out."""
        return float(
            np.prod([len(v) / space.sizes[space.position(k)] for k, v in self.block.items()])
        )


class FactorSequences(Dataset):
    """Sequences that vary one factor over consecutive values, the others fixed.

    Subclasses implement :meth:`load_images`. Each item is a deterministic function of
    ``(seed, split, index)`` (safe with any number of data-loader workers).

    Args:
        space: the dataset's factors.
        varied: names of the factors that sequences vary (the K transformations).
        n_steps: transitions per sequence; None means all values of the varied factor (items
            then have different lengths, batch them with :func:`collate_sequences`).
        split: ``"train"``, ``"test"`` or ``"all"``.
        holdout: the held-out block (ignored for ``"all"``).
        n_sequences: length of the dataset.
        seed: base seed.

    Item:
        ``dict(frames (T + 1, 3, H, W) float in [0, 1], factors (T + 1, n_factors) int64,
        gates (T, K), magnitudes (T, K), factor int)``: one-hot gates on the varied factor,
        magnitude 1 (one value step per transition), ``factor`` its position in ``varied``.
    """

    def __init__(
        self,
        space: FactorSpace,
        varied: Sequence[str],
        n_steps: int | None,
        split: str,
        holdout: HeldOutBlock | None,
        n_sequences: int,
        seed: int,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"expected split in {SPLITS}, got {split!r}")
        self.space, self.varied = space, tuple(varied)
        self.positions = [space.position(name) for name in self.varied]
        if n_steps is not None:
            for name, pos in zip(self.varied, self.positions, strict=True):
                if space.sizes[pos] < n_steps + 1:
                    raise ValueError(
                        f"factor {name} has {space.sizes[pos]} values, fewer than the "
                        f"{n_steps + 1} frames of a sequence"
                    )
        if split != "all" and holdout is None:
            raise ValueError(f"split {split!r} needs a held-out block")
        self.n_steps, self.split, self.holdout = n_steps, split, holdout
        self.n_sequences, self.seed = n_sequences, seed

    def __len__(self) -> int:
        return self.n_sequences

    def sequence_factors(self, index: int) -> tuple[int, np.ndarray]:
        """The varied factor's position in ``varied`` and the frames' factor indices
        ``(T + 1, n_factors)`` of item ``index``."""
        split_code = SPLITS.index(self.split)
        rng = np.random.default_rng([self.seed, split_code, index])
        sizes = np.array(self.space.sizes)
        for _ in range(MAX_TRIES):
            k = int(rng.integers(len(self.varied)))
            pos = self.positions[k]
            length = sizes[pos] if self.n_steps is None else self.n_steps + 1
            start = int(rng.integers(sizes[pos] - length + 1))
            base = rng.integers(sizes)
            factors = np.repeat(base[None], length, axis=0)
            factors[:, pos] = np.arange(start, start + length)
            if self.split == "all":
                return k, factors
            held = bool(self.holdout.mask(self.space, factors).any())  # type: ignore[union-attr]
            if held == (self.split == "test"):
                return k, factors
        raise RuntimeError(
            f"no {self.split} sequence found in {MAX_TRIES} draws; the held-out block "
            f"{dict(self.holdout.block)} leaves this split (almost) empty"  # type: ignore[union-attr]
        )

    def load_images(self, indices: np.ndarray) -> torch.Tensor:
        """Images of the given dataset indices ``(L,)`` as float ``(L, 3, H, W)`` in [0, 1]."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        if not 0 <= index < len(self):
            raise IndexError(f"expected index in [0, {len(self)}), got {index}")
        k, factors = self.sequence_factors(index)
        frames = self.load_images(self.space.index_of(factors))
        n_steps = len(factors) - 1
        gates = torch.zeros(n_steps, len(self.varied))
        gates[:, k] = 1.0
        return {
            "frames": frames,
            "factors": torch.from_numpy(factors),
            "gates": gates,
            "magnitudes": gates.clone(),
            "factor": k,
        }


def collate_sequences(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Batch items of different lengths: pad at the end and add ``n_frames (batch,)``.

    Padding: frames 0, factors -1, gates and magnitudes 0.
    """
    longest = max(item["frames"].shape[0] for item in items)

    def pad(tensor: torch.Tensor, length: int, value: float) -> torch.Tensor:
        extra = length - tensor.shape[0]
        if extra == 0:
            return tensor
        filler = torch.full((extra, *tensor.shape[1:]), value, dtype=tensor.dtype)
        return torch.cat([tensor, filler])

    return {
        "frames": torch.stack([pad(i["frames"], longest, 0.0) for i in items]),
        "factors": torch.stack([pad(i["factors"], longest, -1) for i in items]),
        "gates": torch.stack([pad(i["gates"], longest - 1, 0.0) for i in items]),
        "magnitudes": torch.stack([pad(i["magnitudes"], longest - 1, 0.0) for i in items]),
        "factor": torch.tensor([i["factor"] for i in items]),
        "n_frames": torch.tensor([i["frames"].shape[0] for i in items]),
    }
