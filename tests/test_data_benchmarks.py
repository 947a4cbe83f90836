"""Shapes3D (HDF5) and Falcor3D/Isaac3D-style (PNG folder) loaders on tiny fixtures.

Each fixture image stores its own factor indices in its first row of red pixels
(value 40 * index), so a test can decode the factors of every frame it receives.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tutorial_lib.data import (
    SHAPES3D_SPACE,
    FactorSpace,
    Falcor3DSequences,
    HeldOutBlock,
    ImageFolderSequences,
    Shapes3DSequences,
    collate_sequences,
)

SIZE = 8
SMALL_SHAPES = FactorSpace(
    names=SHAPES3D_SPACE.names,
    sizes=(2, 2, 4, 3, 1, 3),
    values=(
        (0.0, 0.1),
        (0.0, 0.1),
        (0.0, 0.1, 0.2, 0.3),
        (0.75, 1.0, 1.25),
        (0.0,),
        (-30.0, 0.0, 30.0),
    ),
)
SMALL_SHAPES_HOLDOUT = HeldOutBlock({"object_hue": (3,), "scale": (2,)})
SMALL_FOLDER = FactorSpace(names=("light", "camera", "colour"), sizes=(3, 5, 4))
SMALL_FOLDER_HOLDOUT = HeldOutBlock({"camera": (3, 4), "colour": (3,)})


def _encoded(space: FactorSpace) -> np.ndarray:
    """(n_images, SIZE, SIZE, 3) uint8 images whose row 0 encodes the factor indices."""
    factors = space.factors_of(np.arange(space.n_images))
    images = np.zeros((space.n_images, SIZE, SIZE, 3), dtype=np.uint8)
    images[:, 0, : space.n_factors, 0] = 40 * factors
    images[:, 1:, :, 1] = 128
    return images


def _decode(frames: torch.Tensor, n_factors: int) -> np.ndarray:
    """(L, 3, H, W) float frames -> (L, n_factors) factor indices."""
    return np.round(frames[:, 0, 0, :n_factors].numpy() * 255 / 40).astype(np.int64)


@pytest.fixture()
def shapes_file(tmp_path: Path) -> Path:
    path = tmp_path / "3dshapes.h5"
    labels = SMALL_SHAPES.values_of(SMALL_SHAPES.factors_of(np.arange(SMALL_SHAPES.n_images)))
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=_encoded(SMALL_SHAPES), chunks=(1, SIZE, SIZE, 3))
        handle.create_dataset("labels", data=labels)
    return path


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    root.mkdir()
    for index, image in enumerate(_encoded(SMALL_FOLDER)):
        Image.fromarray(image).save(root / f"{index:06d}.png")
    return root


def _shapes(path: Path, split: str, **kwargs) -> Shapes3DSequences:
    return Shapes3DSequences(
        split,
        n_steps=2,
        path=path,
        varied=("object_hue", "scale", "orientation"),
        holdout=SMALL_SHAPES_HOLDOUT,
        n_sequences=24,
        space=SMALL_SHAPES,
        **kwargs,
    )


def _check_item(item: dict, space: FactorSpace, varied: tuple[str, ...]) -> tuple[int, int]:
    """Decoded frame factors equal the item's factors; exactly one factor moves, by +1 a
    frame; gates are one-hot on it. Returns (varied position, number of frames)."""
    decoded = _decode(item["frames"], space.n_factors)
    factors = item["factors"].numpy()
    assert np.array_equal(decoded, factors)
    moving = np.flatnonzero((factors != factors[0]).any(axis=0))
    assert len(moving) == 1
    assert np.array_equal(np.diff(factors[:, moving[0]]), np.ones(len(factors) - 1))
    assert space.names[moving[0]] == varied[item["factor"]]
    assert torch.equal(item["gates"].sum(dim=1), torch.ones(len(factors) - 1))
    assert torch.equal(
        item["gates"].argmax(dim=1), torch.full((len(factors) - 1,), item["factor"])
    )
    return int(moving[0]), len(factors)


def test_shapes3d_frames_carry_the_factors_they_claim(shapes_file: Path) -> None:
    dataset = _shapes(shapes_file, "all")
    assert dataset._file is None  # nothing is read before the first item
    for i in range(len(dataset)):
        _check_item(dataset[i], SMALL_SHAPES, dataset.varied)
    assert dataset[0]["frames"].shape == (3, 3, SIZE, SIZE)


def test_shapes3d_splits_hold_out_the_block(shapes_file: Path) -> None:
    for split, wanted in (("train", False), ("test", True)):
        dataset = _shapes(shapes_file, split)
        for i in range(len(dataset)):
            factors = dataset[i]["factors"].numpy()
            assert SMALL_SHAPES_HOLDOUT.mask(SMALL_SHAPES, factors).any() == wanted


def test_shapes3d_rejects_labels_out_of_order(shapes_file: Path) -> None:
    with h5py.File(shapes_file, "r+") as handle:
        handle["labels"][...] = handle["labels"][...][::-1]
    with pytest.raises(ValueError, match="labels do not follow the factor order"):
        _shapes(shapes_file, "all")


def test_shapes3d_takes_factor_values_from_the_file(shapes_file: Path) -> None:
    dataset = _shapes(shapes_file, "all")
    assert dataset.space.values == SMALL_SHAPES.values
    factors = dataset[0]["factors"].numpy()
    values = dataset.space.values_of(factors)
    assert np.array_equal(dataset.space.factors_from_values(values), factors)


def test_shapes3d_loader_is_the_same_with_workers(shapes_file: Path) -> None:
    dataset = _shapes(shapes_file, "train")
    dataset[0]  # opens the file in this process; pickling must drop the handle
    assert pickle.loads(pickle.dumps(dataset))._file is None
    plain = next(iter(DataLoader(dataset, batch_size=8, num_workers=0)))
    workers = next(iter(DataLoader(dataset, batch_size=8, num_workers=2)))
    assert torch.equal(plain["frames"], workers["frames"])
    assert torch.equal(plain["factors"], workers["factors"])


def test_missing_shapes3d_file_explains_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download=True") as caught:
        Shapes3DSequences()
    assert str(tmp_path / "3dshapes.h5") in str(caught.value)
    assert "storage.googleapis.com/3d-shapes/3dshapes.h5" in str(caught.value)


def _folder(root: Path, split: str, n_steps: int | None = None) -> ImageFolderSequences:
    return ImageFolderSequences(
        root,
        SMALL_FOLDER,
        SMALL_FOLDER.names,
        n_steps,
        split,
        SMALL_FOLDER_HOLDOUT,
        n_sequences=30,
        seed=2,
        name="fixture",
    )


def test_folder_sequences_vary_one_factor_over_all_its_values(image_folder: Path) -> None:
    dataset = _folder(image_folder, "all")
    seen = set()
    for i in range(len(dataset)):
        position, length = _check_item(dataset[i], SMALL_FOLDER, SMALL_FOLDER.names)
        assert length == SMALL_FOLDER.sizes[position]  # every value of the factor
        seen.add(position)
    assert seen == {0, 1, 2}


def test_folder_splits_hold_out_the_block(image_folder: Path) -> None:
    for split, wanted in (("train", False), ("test", True)):
        dataset = _folder(image_folder, split, n_steps=2)
        for i in range(len(dataset)):
            item = dataset[i]
            _check_item(item, SMALL_FOLDER, SMALL_FOLDER.names)
            assert SMALL_FOLDER_HOLDOUT.mask(SMALL_FOLDER, item["factors"].numpy()).any() == wanted


def test_folder_batches_pad_unequal_lengths_the_same_with_workers(image_folder: Path) -> None:
    dataset = _folder(image_folder, "all")
    kwargs = {"batch_size": 10, "collate_fn": collate_sequences}
    plain = next(iter(DataLoader(dataset, num_workers=0, **kwargs)))
    workers = next(iter(DataLoader(dataset, num_workers=2, **kwargs)))
    assert torch.equal(plain["frames"], workers["frames"])
    lengths = plain["n_frames"]
    assert plain["frames"].shape[1] == int(lengths.max()) == 5
    for b, length in enumerate(lengths.tolist()):
        assert bool((plain["factors"][b, length:] == -1).all())
        assert float(plain["frames"][b, length:].abs().sum()) == 0.0


def test_folder_order_check_and_missing_files(image_folder: Path, tmp_path: Path) -> None:
    dataset = _folder(image_folder, "all")
    labels = SMALL_FOLDER.factors_of(np.arange(SMALL_FOLDER.n_images))
    dataset.check_order(labels)
    with pytest.raises(ValueError, match="assumed factor order"):
        dataset.check_order(labels[::-1])
    with pytest.raises(FileNotFoundError, match="NVlabs/High-res-disentanglement-datasets"):
        Falcor3DSequences(root=tmp_path / "nothing")
