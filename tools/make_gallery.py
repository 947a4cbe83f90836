"""Draw docs/figures/gallery.png: one row per kind of sequence the course uses.

Rows: MNIST digits under rotation, scaling and hue rotation alone, two digits under a random
spike-and-slab schedule (active transformations printed under each frame: R rotate, S scale,
H hue), then Shapes3D-style scenes varying each of their five factors.

Usage:
    python tools/make_gallery.py [--out docs/figures/gallery.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from tutorial_lib.data import (  # noqa: E402
    SHAPES3D_SPACE,
    SHAPES3D_VARIED,
    GateSchedule,
    load_mnist_subset,
    make_sequences,
    render_scenes,
    to_red_rgb,
)

LETTERS = "RSH"


def mnist_rows() -> list[tuple[str, torch.Tensor, list[str]]]:
    images, labels = load_mnist_subset("test")
    pick = [int(np.flatnonzero(labels == digit)[0]) for digit in (2, 7, 4, 3, 5)]
    x0 = to_red_rgb(torch.from_numpy(images[pick]).float() / 255.0)
    rows = []
    for k, name in enumerate(("rotate", "scale", "hue")):
        gates = torch.zeros(1, 8, 3)
        gates[..., k] = 1.0
        frames = make_sequences(x0[k : k + 1], gates, gates.clone(), mode="cumulative")
        rows.append((f"MNIST {name}", frames[0], [""] * 9))
    schedule = GateSchedule(3, p_first_on=0.5, p_stay_on=0.7, p_switch_on=0.3)
    gates, magnitudes = schedule.sample(2, 8, torch.Generator().manual_seed(7))
    frames = make_sequences(x0[3:5], gates, magnitudes, mode="cumulative")
    for b in range(2):
        notes = [""] + [
            "".join(LETTERS[k] for k in range(3) if gates[b, t, k] > 0) for t in range(8)
        ]
        rows.append(("MNIST mixed", frames[b], notes))
    return rows


def shapes_rows() -> list[tuple[str, torch.Tensor, list[str]]]:
    base = np.array([0, 4, 1, 0, 0, 7])
    starts = {"floor_hue": 1, "wall_hue": 1, "object_hue": 1, "scale": 0, "orientation": 3}
    shapes = {"floor_hue": 0, "wall_hue": 1, "object_hue": 2, "scale": 3, "orientation": 0}
    rows = []
    for name in SHAPES3D_VARIED:
        position = SHAPES3D_SPACE.position(name)
        factors = np.repeat(base[None], 8, axis=0)
        factors[:, 4] = shapes[name]
        factors[:, position] = starts[name] + np.arange(8)
        rows.append((f"3D {name.replace('_', ' ')}", render_scenes(factors), [""] * 8))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "docs" / "figures" / "gallery.png"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args()

    rows = mnist_rows() + shapes_rows()
    fig, axes = plt.subplots(len(rows), 9, figsize=(9 * 0.95, len(rows) * 1.08))
    for r, (label, frames, notes) in enumerate(rows):
        for c in range(9):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(frames):
                ax.imshow(frames[c].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
                if notes[c]:
                    ax.set_xlabel(notes[c], fontsize=7, labelpad=1)
            if r == 0:
                ax.set_title(f"t = {c}", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(
        "Sequences: MNIST digits (cumulative mode, 20° / ×1.1 / 20° hue per unit) and "
        "Shapes3D-style scenes (one factor per sequence)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.3, w_pad=0.1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
