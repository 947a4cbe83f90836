"""The shipped MNIST subset, the IDX reader and the MNIST sequence dataset."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tutorial_lib.data import (
    GateSchedule,
    MNISTSequences,
    heldout_mnist_sequences,
    load_mnist_idx,
    load_mnist_subset,
    random_sequence_batch,
    read_idx,
)
from tutorial_lib.data import mnist as mnist_module
from tutorial_lib.download import ChecksumError, Resource


def test_subset_has_a_stratified_4000_1000_split_of_real_digits() -> None:
    train_x, train_y = load_mnist_subset("train")
    test_x, test_y = load_mnist_subset("test")
    assert train_x.shape == (4000, 28, 28) and train_x.dtype == np.uint8
    assert test_x.shape == (1000, 28, 28) and test_y.dtype == np.int64
    assert np.bincount(train_y).tolist() == [400] * 10
    assert np.bincount(test_y).tolist() == [100] * 10
    # Real handwriting: ink on a black background, about a fifth of the pixels lit.
    lit = (train_x > 127).mean()
    assert 0.08 < lit < 0.25 and train_x[:, 0, :].max() == 0
    train_keys = {image.tobytes() for image in train_x}
    assert not any(image.tobytes() in train_keys for image in test_x)


def test_subset_loader_rejects_a_modified_file(tmp_path: Path) -> None:
    copy = tmp_path / "mnist_subset.npz"
    shutil.copy(mnist_module.SUBSET_PATH, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=mnist_module.SUBSET_SHA256):
        load_mnist_subset("train", path=copy)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trips_and_rejects_other_files(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_official_loader_reads_verified_idx_files_from_the_cache(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 10, 6)
    folder = tmp_path / "mnist"
    folder.mkdir()
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    patched = dict(mnist_module.MNIST_IDX)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        md5 = hashlib.md5((folder / name).read_bytes()).hexdigest()
        patched[name] = Resource(f"mnist/{name}", ("http://127.0.0.1:9/unused",), f"md5:{md5}")
    monkeypatch.setattr(mnist_module, "MNIST_IDX", patched)
    got_images, got_labels = load_mnist_idx("test", cache=tmp_path)
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)

    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels[::-1])  # changed after download
    with pytest.raises(ChecksumError):
        load_mnist_idx("test", cache=tmp_path)


def test_sequence_items_have_the_documented_shapes_and_are_reproducible() -> None:
    dataset = MNISTSequences("train", n_steps=8, seed=3)
    item = dataset[17]
    assert item["frames"].shape == (9, 3, 28, 28)
    assert item["gates"].shape == (8, 3) and item["magnitudes"].shape == (8, 3)
    assert 0 <= item["label"] <= 9
    assert float(item["frames"][0, 1:].abs().max()) == 0.0  # digit drawn in red only
    again = MNISTSequences("train", n_steps=8, seed=3)[17]
    assert torch.equal(item["frames"], again["frames"])
    other = MNISTSequences("train", n_steps=8, seed=4)[17]
    assert not torch.equal(item["gates"], other["gates"])


def test_loader_gives_the_same_batches_with_and_without_workers() -> None:
    dataset = MNISTSequences("test", n_steps=3)
    subset = torch.utils.data.Subset(dataset, range(8))
    plain = next(iter(DataLoader(subset, batch_size=8, num_workers=0)))
    workers = next(iter(DataLoader(subset, batch_size=8, num_workers=2)))
    assert plain["frames"].shape == (8, 4, 3, 28, 28)
    assert torch.equal(plain["frames"], workers["frames"])
    assert torch.equal(plain["gates"], workers["gates"])


def test_heldout_sequences_start_only_from_test_digits() -> None:
    held = heldout_mnist_sequences(n_steps=2, schedule=GateSchedule(3))
    assert held["frames"].shape == (1000, 3, 3, 28, 28)
    train_x, _ = load_mnist_subset("train")
    train_keys = {image.tobytes() for image in train_x}
    starts = (held["frames"][:, 0, 0] * 255).round().to(torch.uint8).numpy()
    assert not any(image.tobytes() in train_keys for image in starts)


def test_random_batch_has_one_schedule_per_sample() -> None:
    images, _ = load_mnist_subset("train")
    batch = random_sequence_batch(
        images, 32, n_steps=4, generator=torch.Generator().manual_seed(0)
    )
    assert batch["frames"].shape == (32, 5, 3, 28, 28)
    patterns = {tuple(g.flatten().tolist()) for g in batch["gates"]}
    assert len(patterns) > 16
