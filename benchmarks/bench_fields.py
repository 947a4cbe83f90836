"""Time and peak memory of K fields with their divergences: bank vs loops, exact vs Hutchinson.

Three ways to get the velocities and divergences of K Helmholtz fields (a potential plus a
skew-gradient part each) at a batch of points:

- bank: :class:`tutorial_lib.fields.FieldBank`, all K fields in one batched call;
- sliced loop: the same bank's networks called one field at a time (``index=slice(k, k+1)``),
  so the same algorithm without batching over fields;
- module loop: K plain :class:`~tutorial_lib.fields.HelmholtzField` modules of the same
  sizes, each asked for ``field(z)`` and ``field.divergence(z)`` (exact: the Laplacian by one
  reverse pass per dimension; Hutchinson: ``laplacian_hutchinson``), the way a field is used
  on its own.

A run is the forward computation with the graph kept plus the backward pass of a loss built
from velocities and divergences, as in training. Times are the best of up to five runs, by the
wall clock or by process CPU time (``--clock cpu``, steadier on a shared machine). Each
configuration runs in a fresh subprocess, so peak memory is its own: on the CPU the growth of
the peak resident set (ru_maxrss) from just before the first run, on CUDA
``torch.cuda.max_memory_allocated``.

    python benchmarks/bench_fields.py              # the full table
    python benchmarks/bench_fields.py --quick      # dim 2 and 16 only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time

import torch

from tutorial_lib import calculus
from tutorial_lib.fields import FieldBank, HelmholtzField, PotentialField, SkewGradientField

MODES = ("bank", "sliced", "modules")


def _workload(cfg: dict, device: torch.device):
    dim, k, div = cfg["dim"], cfg["k"], cfg["div"]
    z = torch.randn(cfg["batch"], dim, device=device)
    if cfg["mode"] in ("bank", "sliced"):
        bank = FieldBank(k, dim, kind="helmholtz", rank=cfg["rank"]).to(device)
        slices = [None] if cfg["mode"] == "bank" else [slice(i, i + 1) for i in range(k)]

        def once():
            loss = 0.0
            for index in slices:
                out = bank(z, divergence=div, n_probes=1, index=index)
                loss = loss + out.velocity.pow(2).mean() + out.divergence.pow(2).mean()
            return loss, bank

        return once
    modules = torch.nn.ModuleList(
        HelmholtzField(PotentialField(dim), SkewGradientField(dim, rank=cfg["rank"]))
        for _ in range(k)
    ).to(device)

    def once():
        loss = 0.0
        for field in modules:
            v = field(z)
            if div == "exact":
                d = field.divergence(z)
            else:
                u = field.curl_free.potential
                d = calculus.laplacian_hutchinson(u, z, n_probes=1, create_graph=True).estimate
            loss = loss + v.pow(2).mean() + d.pow(2).mean()
        return loss, modules

    return once


def _measure(cfg: dict, queue: mp.Queue) -> None:
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    device = torch.device(cfg["device"])
    work = _workload(cfg, device)

    def once() -> None:
        loss, params = work()
        loss.backward()
        params.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    once()  # warm-up, counted in the peak memory but not in the times
    clock = time.process_time if cfg["clock"] == "cpu" else time.perf_counter
    times = []
    budget = time.perf_counter() + cfg["budget_s"]
    while len(times) < cfg["repeats"] and (len(times) < 2 or time.perf_counter() < budget):
        start = clock()
        once()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(clock() - start)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    queue.put({"ms": 1000 * min(times), "peak_mb": peak_mb, "runs": len(times)})


def run(cfg: dict) -> dict:
    """Measure one configuration in a fresh process and return its timing and memory."""
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
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    dims = [2, 16] if args.quick else [2, 16, 64, 324]
    print(
        f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
        f"device {args.device}, batch {args.batch}, skew rank {args.rank}, "
        f"{args.clock}-clock ms (best of up to 5)\n"
    )
    print(
        "| dim | K | divergence | bank ms | sliced loop ms | module loop ms "
        "| sliced / bank | module / bank | bank peak MB | module peak MB |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for dim in dims:
        for k in (3, 8):
            for div in ("exact", "hutchinson"):
                res = {}
                for mode in MODES:
                    cfg = dict(
                        dim=dim, k=k, div=div, mode=mode, batch=args.batch, rank=args.rank,
                        device=args.device, threads=args.threads, clock=args.clock,
                        repeats=5, budget_s=20.0,
                    )  # fmt: skip
                    res[mode] = run(cfg)
                bank, sliced, modules = (res[m] for m in MODES)
                rows.append({"dim": dim, "k": k, "divergence": div, **res})
                print(
                    f"| {dim} | {k} | {div} | {bank['ms']:.1f} | {sliced['ms']:.1f} "
                    f"| {modules['ms']:.1f} | {sliced['ms'] / bank['ms']:.2f}x "
                    f"| {modules['ms'] / bank['ms']:.2f}x | {bank['peak_mb']:.0f} "
                    f"| {modules['peak_mb']:.0f} |",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    sys.exit(main())
