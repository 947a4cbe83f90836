"""Sequences per second of the data pipeline on this machine, printed as a markdown table.

Measures, for batches made in one batched call (the training path):
- MNIST digit sequences at 28 x 28 (rotate, scale, hue; T = 8), cumulative and absolute;
- the same at 64 x 64 (digits upsampled once before timing);
- procedural Shapes3D-style sequences at 64 x 64 (T = 7);
and the per-item Dataset path (MNISTSequences through a DataLoader, no workers).
Each figure is the best of ``--repeats`` timed runs after one warm-up run, by wall clock and
by this process's CPU time (the second is steadier on a shared, busy machine).

Usage:
    python benchmarks/bench_sequences.py [--threads 1] [--batch 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from tutorial_lib.data import (
    GateSchedule,
    MNISTSequences,
    ProceduralShapes3D,
    load_mnist_subset,
    random_sequence_batch,
)


def best_rate(run: Callable[[], int], repeats: int) -> tuple[float, float]:
    """Sequences per wall-clock second and per CPU second: the best of ``repeats`` timed calls
    of ``run`` (which returns how many sequences it made), after one warm-up call."""
    run()
    best_wall = best_cpu = float("inf")
    count = 0
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        count = run()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return count / best_wall, count / max(best_cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description="sequences per second of the data pipeline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    schedule = GateSchedule(3)

    digits, _ = load_mnist_subset("train")
    digits28 = torch.from_numpy(digits).float() / 255.0
    digits64 = F.interpolate(digits28[:, None], size=64, mode="bilinear", align_corners=False)
    digits64 = digits64[:, 0]

    rows = []
    for size, pool in ((28, digits28), (64, digits64)):
        for mode in ("cumulative", "absolute"):

            def run(pool=pool, mode=mode) -> int:
                batch = random_sequence_batch(
                    pool, args.batch, 8, schedule, mode=mode, generator=generator
                )
                return batch["frames"].shape[0]

            rows.append(
                ("MNIST, batched", size, mode, 8, args.batch, best_rate(run, args.repeats))
            )

    scenes = ProceduralShapes3D("all", n_steps=7, n_sequences=10_000)
    n_scenes = max(args.batch // 8, 1)

    def run_scenes() -> int:
        indices = np.random.default_rng(0).integers(0, len(scenes), n_scenes)
        factors = [scenes.sequence_factors(int(i))[1] for i in indices]
        scenes.load_images(scenes.space.index_of(np.concatenate(factors)))
        return n_scenes

    rows.append(("Shapes3D-style, drawn", 64, "factor", 7, n_scenes, best_rate(run_scenes, 2)))

    dataset = Subset(MNISTSequences("train", n_steps=8), range(args.batch))

    def run_items() -> int:
        return sum(len(b["frames"]) for b in DataLoader(dataset, batch_size=32, num_workers=0))

    rows.append(("MNIST, Dataset items", 28, "cumulative", 8, 32, best_rate(run_items, 2)))

    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {platform.processor() or 'cpu'}, "
        f"best of {args.repeats}\n"
    )
    print("| sequences | size | mode | T | batch | sequences/s (wall) | sequences/s (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for name, size, mode, steps, batch, (wall, cpu) in rows:
        print(
            f"| {name} | {size}x{size} | {mode} | {steps} | {batch} | {wall:,.0f} | {cpu:,.0f} |"
        )


if __name__ == "__main__":
    main()
