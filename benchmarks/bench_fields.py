"""Time and peak memory of K fields with their divergences: bank vs loop, exact vs Hutchinson.

Each configuration runs in a fresh subprocess, so peak memory is that configuration's own:
on the CPU the growth of the process's peak resident set (ru_maxrss) over its value before the
measured work, on CUDA ``torch.cuda.max_memory_allocated``. A run is one forward pass that
returns velocities and divergences with the graph kept, plus the backward pass of a loss built
from both, as in training.

    python benchmarks/bench_fields.py              # the full table (a few minutes on 2 cores)
    python benchmarks/bench_fields.py --quick      # dim 2 and 16 only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import time

import torch

from tutorial_lib.fields import FieldBank


def _measure(cfg: dict, queue: mp.Queue) -> None:
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    device = torch.device(cfg["device"])
    bank = FieldBank(cfg["k"], cfg["dim"], kind="helmholtz", rank=cfg["rank"]).to(device)
    z = torch.randn(cfg["batch"], cfg["dim"], device=device)

    def once() -> None:
        if cfg["mode"] == "bank":
            out = bank(z, divergence=cfg["div"], n_probes=1)
            loss = out.velocity.pow(2).mean() + out.divergence.pow(2).mean()
        else:
            loss = 0.0
            for k in range(cfg["k"]):
                out = bank(z, divergence=cfg["div"], n_probes=1, index=slice(k, k + 1))
                loss = loss + out.velocity.pow(2).mean() + out.divergence.pow(2).mean()
        loss.backward()
        bank.zero_grad(set_to_none=True)

    once()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    budget = time.perf_counter() + cfg["budget_s"]
    while len(times) < cfg["repeats"] and (len(times) < 2 or time.perf_counter() < budget):
        start = time.perf_counter()
        once()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    queue.put({"ms": 1000 * statistics.median(times), "peak_mb": peak_mb, "runs": len(times)})


def run(cfg: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(cfg, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="dimensions 2 and 16 only")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rank", type=int, default=8, help="rank of the skew factors")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    dims = [2, 16] if args.quick else [2, 16, 64, 324]
    rows = []
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}, device {args.device}, batch {args.batch}, "
        f"helmholtz fields (potential + skew-gradient, rank {args.rank})\n"
    )
    print("| dim | K | divergence | bank ms | loop ms | loop/bank | bank peak MB | loop peak MB |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for dim in dims:
        for k in (3, 8):
            for div in ("exact", "hutchinson"):
                res = {}
                for mode in ("bank", "loop"):
                    cfg = dict(
                        dim=dim, k=k, div=div, mode=mode, batch=args.batch, rank=args.rank,
                        device=args.device, threads=args.threads, repeats=5, budget_s=20.0,
                    )  # fmt: skip
                    res[mode] = run(cfg)
                ratio = res["loop"]["ms"] / res["bank"]["ms"]
                rows.append(dict(dim=dim, k=k, divergence=div, **{
                    f"{m}_{key}": v for m in res for key, v in res[m].items()}))  # fmt: skip
                bank, loop = res["bank"], res["loop"]
                print(
                    f"| {dim} | {k} | {div} | {bank['ms']:.1f} | {loop['ms']:.1f} "
                    f"| {ratio:.2f}x | {bank['peak_mb']:.0f} | {loop['peak_mb']:.0f} |",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
