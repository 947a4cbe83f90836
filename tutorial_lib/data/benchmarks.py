"""Loaders of the benchmark datasets: Shapes3D (one HDF5 file), Falcor3D and Isaac3D (folders
of PNG images). Official MNIST lives in :mod:`tutorial_lib.data.mnist`.

Shapes3D (Burgess and Kim, 2018; github.com/google-deepmind/3d-shapes): ``3dshapes.h5`` with
``images`` (480000, 64, 64, 3) uint8 and ``labels`` (480000, 6) float64 factor values, every
combination once, in C order over (floor hue 10, wall hue 10, object hue 10, scale 8, shape 4,
orientation 15). Images are read lazily through h5py: each worker opens the file itself and
reads only the frames it needs. The factor values are taken from the file's labels, which are
checked once to follow that order. No checksum is published; the first complete download is
recorded (see :mod:`tutorial_lib.download`).

Falcor3D and Isaac3D (Nie et al., "Semi-supervised StyleGAN for disentanglement learning",
ICML 2020; github.com/NVlabs/High-res-disentanglement-datasets, CC BY 4.0) are folders of PNG
images named ``{index:06d}.png`` (the repository's ``dataset_demo.py`` reads them from
``Falcor3D/images`` and ``Isaac3D/images``), the index enumerating the factors in C order over

- Falcor3D: lighting intensity 5, lighting x 6, lighting y 6, lighting z 6, camera x 6,
  camera y 6, camera z 6 (233,280 images);
- Isaac3D: object shape 3, robot x 8, robot y 5, camera height 4, object scale 4, lighting
  intensity 4, lighting y 6, object colour 4, wall colour 4 (737,280 images).

Each factor's values are spaced evenly in [0, 1]. For Isaac3D the order is the one of
``dataset_demo.py``, whose sizes agree with the strides of the index formula in the
repository's README (the README's formula names the factors in another order, which does not
fit its own strides). The loader checks that the first and the last file exist;
:meth:`ImageFolderSequences.check_order` compares the order with a label array if you have
one. The archives are shared through Google Drive links that a script cannot fetch reliably,
so they are installed by hand; the error message says where to put them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tutorial_lib.data.factors import FactorSequences, FactorSpace, HeldOutBlock
from tutorial_lib.data.shapes3d_procedural import SHAPES3D_HOLDOUT, SHAPES3D_SPACE, SHAPES3D_VARIED
from tutorial_lib.download import Resource, cache_dir, fetch

__all__ = [
    "FALCOR3D_HOLDOUT",
    "FALCOR3D_SPACE",
    "ISAAC3D_HOLDOUT",
    "ISAAC3D_SPACE",
    "ISAAC3D_VARIED",
    "SHAPES3D_RESOURCE",
    "Falcor3DSequences",
    "ImageFolderSequences",
    "Isaac3DSequences",
    "Shapes3DSequences",
]

logger = logging.getLogger(__name__)

SHAPES3D_RESOURCE = Resource(
    filename="3dshapes.h5",
    urls=("https://storage.googleapis.com/3d-shapes/3dshapes.h5",),
    checksum=None,
    homepage="https://github.com/google-deepmind/3d-shapes",
)
NVLABS_HOMEPAGE = "https://github.com/NVlabs/High-res-disentanglement-datasets"

FALCOR3D_SPACE = FactorSpace(
    names=(
        "lighting_intensity",
        "lighting_x",
        "lighting_y",
        "lighting_z",
        "camera_x",
        "camera_y",
        "camera_z",
    ),
    sizes=(5, 6, 6, 6, 6, 6, 6),
    values=tuple(tuple(np.linspace(0.0, 1.0, n)) for n in (5, 6, 6, 6, 6, 6, 6)),
)
# Held out: the camera in its last two x and last two y positions together (1/9 of images).
FALCOR3D_HOLDOUT = HeldOutBlock({"camera_x": (4, 5), "camera_y": (4, 5)})

ISAAC3D_SPACE = FactorSpace(
    names=(
        "object_shape",
        "robot_x",
        "robot_y",
        "camera_height",
        "object_scale",
        "lighting_intensity",
        "lighting_y",
        "object_colour",
        "wall_colour",
    ),
    sizes=(3, 8, 5, 4, 4, 4, 6, 4, 4),
    values=tuple(tuple(np.linspace(0.0, 1.0, n)) for n in (3, 8, 5, 4, 4, 4, 6, 4, 4)),
)
# The transformations of the Isaac3D task: every factor but the object's shape (K = 8).
ISAAC3D_VARIED = ISAAC3D_SPACE.names[1:]
# Held out: the last two object colours together with the last two wall colours (1/4).
ISAAC3D_HOLDOUT = HeldOutBlock({"object_colour": (2, 3), "wall_colour": (2, 3)})


class Shapes3DSequences(FactorSequences):
    """Sequences from the real ``3dshapes.h5``, read lazily (see :class:`FactorSequences`).

    Args:
        split: ``"train"``, ``"test"`` (held-out block :data:`SHAPES3D_HOLDOUT`) or ``"all"``.
        n_steps: transitions per sequence (published setting 7: eight values).
        path: the .h5 file; default: fetched into the cache (``download=True``) or expected
            there.
        download: fetch the file (255 MB) if it is not in the cache.
        check_order: verify once that the file's labels enumerate the factors in C order
            (reads the 480000 x 6 label array, not the images).
        space: the factor grid of the file (default the full Shapes3D grid; smaller grids with
            the same names serve tests). Its values are replaced by those in the file.
    """

    def __init__(
        self,
        split: str = "train",
        n_steps: int | None = 7,
        path: Path | str | None = None,
        download: bool = False,
        varied: tuple[str, ...] = SHAPES3D_VARIED,
        holdout: HeldOutBlock | None = SHAPES3D_HOLDOUT,
        n_sequences: int = 10_000,
        seed: int = 0,
        check_order: bool = True,
        space: FactorSpace = SHAPES3D_SPACE,
    ) -> None:
        if path is None:
            if download:
                path = fetch(SHAPES3D_RESOURCE)
            else:
                path = cache_dir() / SHAPES3D_RESOURCE.filename
                if not path.exists():
                    raise FileNotFoundError(
                        f"expected Shapes3D at {path}; pass download=True, or download "
                        f"{SHAPES3D_RESOURCE.urls[0]} by hand and put it there"
                    )
        self.path = Path(path)
        self._file = None
        with self._open() as handle:
            images, labels = handle["images"], handle["labels"]
            n = space.n_images
            if images.shape[0] != n or images.ndim != 4 or labels.shape != (n, space.n_factors):
                raise ValueError(
                    f"{self.path}: expected images ({n}, H, W, 3) and labels "
                    f"({n}, {space.n_factors}), got {images.shape} and {labels.shape}"
                )
            labels = labels[...]
        values = []
        for f, (name, size) in enumerate(zip(space.names, space.sizes, strict=True)):
            found = np.unique(labels[:, f])
            if len(found) != size:
                raise ValueError(
                    f"{self.path}: expected {size} values of {name}, found {len(found)}"
                )
            values.append(tuple(float(x) for x in found))
        space = FactorSpace(space.names, space.sizes, tuple(values))
        if check_order:
            expected = space.values_of(space.factors_of(np.arange(n)))
            if not np.allclose(labels, expected, rtol=0.0, atol=1e-9):
                raise ValueError(f"{self.path}: labels do not follow the factor order")
        super().__init__(space, varied, n_steps, split, holdout, n_sequences, seed)

    def _open(self):
        import h5py

        return h5py.File(self.path, "r")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None  # each worker opens its own handle
        return state

    def load_images(self, indices: np.ndarray) -> torch.Tensor:
        """Read frames ``(L,)`` from the file: ``(L, 3, 64, 64)`` float in [0, 1]."""
        if self._file is None:
            self._file = self._open()
        order = np.argsort(indices)
        sorted_indices = indices[order]
        images = self._file["images"][sorted_indices]
        restored = np.empty_like(images)
        restored[order] = images
        return torch.from_numpy(restored).permute(0, 3, 1, 2).float() / 255.0


class ImageFolderSequences(FactorSequences):
    """Sequences from a folder of ``{index:06d}.png`` images enumerated in factor order.

    Args:
        root: the folder holding the PNG files.
        space: the dataset's factors.
        varied: factors that sequences vary.
        n_steps: transitions per sequence; None: all values of the varied factor.
        split, holdout, n_sequences, seed: see :class:`FactorSequences`.
        size: resize frames to ``size x size`` (None keeps the stored size).
        name: dataset name for messages.
    """

    def __init__(
        self,
        root: Path | str,
        space: FactorSpace,
        varied: tuple[str, ...],
        n_steps: int | None,
        split: str,
        holdout: HeldOutBlock | None,
        n_sequences: int,
        seed: int,
        size: int | None = None,
        name: str = "dataset",
    ) -> None:
        super().__init__(space, varied, n_steps, split, holdout, n_sequences, seed)
        self.root, self.size, self.name = Path(root), size, name
        for index in (0, space.n_images - 1):
            if not self.file(index).exists():
                raise FileNotFoundError(
                    f"expected {name} images at {self.file(index)}: download the "
                    f"{name} archive from {NVLABS_HOMEPAGE}, extract it so that the folder "
                    f"{self.root} holds {space.n_images} files 000000.png ... "
                    f"{space.n_images - 1:06d}.png, or pass root="
                )

    def file(self, index: int) -> Path:
        """Path of the image with dataset index ``index``."""
        return self.root / f"{index:06d}.png"

    def load_images(self, indices: np.ndarray) -> torch.Tensor:
        """Read frames ``(L,)``: ``(L, 3, H, W)`` float in [0, 1]."""
        frames = []
        for index in indices:
            with Image.open(self.file(int(index))) as image:
                image = image.convert("RGB")
                if self.size is not None and image.size != (self.size, self.size):
                    image = image.resize((self.size, self.size), Image.BILINEAR)
                frames.append(torch.from_numpy(np.asarray(image).copy()))
        return torch.stack(frames).permute(0, 3, 1, 2).float() / 255.0

    def check_order(self, labels: np.ndarray) -> None:
        """Raise unless ``labels`` ``(n_images, n_factors)`` of factor indices follow the
        assumed C order."""
        labels = np.asarray(labels)
        expected = self.space.factors_of(np.arange(self.space.n_images))
        if labels.shape != expected.shape or not np.array_equal(labels, expected):
            raise ValueError(f"{self.name}: labels do not follow the assumed factor order")


def _default_root(folder: str) -> Path:
    return cache_dir() / folder / "images"


class Falcor3DSequences(ImageFolderSequences):
    """Falcor3D sequences (K = 7 factors; all values of one factor per sequence by default)."""

    def __init__(
        self,
        split: str = "train",
        n_steps: int | None = None,
        root: Path | str | None = None,
        varied: tuple[str, ...] = FALCOR3D_SPACE.names,
        holdout: HeldOutBlock | None = FALCOR3D_HOLDOUT,
        n_sequences: int = 10_000,
        seed: int = 0,
        size: int | None = None,
    ) -> None:
        root = Path(root) if root is not None else _default_root("Falcor3D")
        super().__init__(
            root,
            FALCOR3D_SPACE,
            varied,
            n_steps,
            split,
            holdout,
            n_sequences,
            seed,
            size,
            "Falcor3D",
        )


class Isaac3DSequences(ImageFolderSequences):
    """Isaac3D sequences (K = 8 factors; all values of one factor per sequence by default)."""

    def __init__(
        self,
        split: str = "train",
        n_steps: int | None = None,
        root: Path | str | None = None,
        varied: tuple[str, ...] = ISAAC3D_VARIED,
        holdout: HeldOutBlock | None = ISAAC3D_HOLDOUT,
        n_sequences: int = 10_000,
        seed: int = 0,
        size: int | None = None,
    ) -> None:
        root = Path(root) if root is not None else _default_root("Isaac3D")
        super().__init__(
            root,
            ISAAC3D_SPACE,
            varied,
            n_steps,
            split,
            holdout,
            n_sequences,
            seed,
            size,
            "Isaac3D",
        )
