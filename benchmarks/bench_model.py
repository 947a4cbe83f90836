"""Time and peak memory of one training iteration of the latent flow model.

One iteration is what training repeats: the ELBO of a batch of sequences (encode ``x_0``, infer
the gates of every frame pair, ``T`` flow steps with their log-density bookkeeping, decode every
frame), its backward pass and an Adam step. Configurations: the ``mnist`` paper preset (latent
324, K = 3 fields, 8 transitions, batch 128) and ``cpu-demo``, each with the exact divergence
and with Hutchinson's estimate, on the CPU and, when one is present, on CUDA.

Every configuration runs in its own subprocess, so that its peak resident memory
(``resource.getrusage``'s ``ru_maxrss``; ``tracemalloc`` does not see torch's allocations) is
its own. The table reports that peak and its rise over the process's size just before the
first iteration (model, optimiser and batch already built); on CUDA it reports
``torch.cuda.max_memory_allocated``. Besides wall-clock milliseconds it gives the process's
CPU seconds per iteration (all threads, ``time.process_time``), which other work on a shared
machine inflates much less than wall time.

The batch is built once from the shipped MNIST subset and reused: the timing is the model's,
not the data pipeline's. A configuration is stopped after ``--timeout`` seconds or above
``--max-rss-gib`` resident memory; its row then shows what was measured before, and why it
stopped. The exact divergence at the paper size (D = 324) is the case that needs these limits
on a small CPU: it costs one reverse-mode pass per latent dimension at every flow step, and
each pass's graph is kept for the backward pass.

Usage::

    python benchmarks/bench_model.py                       # CPU (+ CUDA when available)
    python benchmarks/bench_model.py --iters 5 --warmup 2  # more iterations
    python benchmarks/bench_model.py --presets cpu-demo --devices cpu --json out.json
    python benchmarks/bench_model.py --presets mnist --divergences exact --set batch_size=16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

DEFAULT_PRESETS = ("mnist", "cpu-demo")
DIVERGENCES = ("exact", "hutchinson")


def _batch(config, device: torch.device) -> torch.Tensor:
    """One batch of sequences ``(batch, T + 1, C, H, W)`` shaped as the preset wants."""
    generator = torch.Generator().manual_seed(0)
    if config.image_size == 28 and config.in_channels == 3:
        from tutorial_lib.data import GateSchedule, load_mnist_subset, random_sequence_batch

        images, _ = load_mnist_subset("train")
        schedule = GateSchedule(n_fields=3, p_first_on=0.5, p_stay_on=0.5, p_switch_on=0.3)
        batch = random_sequence_batch(
            images,
            config.batch_size,
            n_steps=config.n_steps,
            schedule=schedule,
            mode=config.sequence_mode,
            generator=generator,
        )
        return batch["frames"].to(device)
    shape = (config.batch_size, config.n_steps + 1, config.in_channels)
    shape += (config.image_size, config.image_size)
    return torch.rand(shape, generator=generator).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def worker(args: argparse.Namespace) -> dict:
    """Run one configuration in this process and return its measurements."""
    from tutorial_lib.config import apply_overrides, get_preset
    from tutorial_lib.model import LatentFlowModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    config = apply_overrides(
        get_preset(args.preset), {"divergence": args.divergence, "device": args.device}
    )
    config = apply_overrides(config, list(args.set or []))
    model = LatentFlowModel(config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    frames = _batch(config, device)

    def iteration(step: int) -> None:
        optimiser.zero_grad(set_to_none=True)
        terms = model.elbo(frames, step)
        terms["loss"].backward()
        optimiser.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base = {
        "preset": args.preset,
        "divergence": args.divergence,
        "device": device.type,
        "latent_dim": config.latent_dim,
        "n_fields": config.n_fields,
        "n_steps": config.n_steps,
        "batch_size": config.batch_size,
        "flow_method": config.flow_method,
        "threads": torch.get_num_threads(),
    }
    warmup, times, cpu_times = [], [], []
    result: dict = {}
    for step in range(args.warmup + args.iters):
        start, cpu_start = time.perf_counter(), time.process_time()
        iteration(step)
        _sync(device)
        elapsed = 1000.0 * (time.perf_counter() - start)
        (warmup if step < args.warmup else times).append(elapsed)
        if step >= args.warmup:
            cpu_times.append(time.process_time() - cpu_start)
        # one line per iteration, so that a run stopped by the time limit still reports
        result = {**base, **_summary(warmup, times, device, rss_before)}
        result["cpu_s_mean"] = statistics.fmean(cpu_times) if cpu_times else None
        result["complete"] = step + 1 == args.warmup + args.iters
        print(json.dumps(result), flush=True)
    return result


def _summary(warmup: list, times: list, device: torch.device, rss_before: int) -> dict:
    out = {
        "warmup_ms": warmup,
        "ms_mean": statistics.fmean(times) if times else None,
        "ms_sd": statistics.stdev(times) if len(times) > 1 else 0.0,
        "iters": len(times),
    }
    if device.type == "cuda":
        out["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["memory"] = "cuda max_memory_allocated"
    else:
        # ru_maxrss is in KiB on Linux (bytes on macOS)
        unit = 1 if sys.platform == "darwin" else 1024
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_mib"] = rss_peak * unit / 2**20
        out["rise_mib"] = (rss_peak - rss_before) * unit / 2**20
        out["memory"] = "ru_maxrss"
    return out


def _run_one(args: argparse.Namespace, preset: str, divergence: str, device: str) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        "--preset",
        preset,
        "--divergence",
        divergence,
        "--device",
        device,
        "--iters",
        str(args.iters),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(args.threads),
    ]
    for override in args.set or []:
        command += ["--set", override]
    base = {"preset": preset, "divergence": divergence, "device": device}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = _watch(process, args.timeout, args.max_rss_gib)
    stdout, stderr = process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        if stopped:
            return {**base, "error": f"no iteration finished: {stopped}"}
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return {**base, "error": last[:120]}
    row = json.loads(lines[-1])
    if stopped:
        row["note"] = stopped
    return row


def _rss_gib(pid: int) -> float:
    """Resident memory of a process in GiB from ``/proc`` (0 where ``/proc`` is absent)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _watch(process: subprocess.Popen, timeout: float, max_rss_gib: float) -> str | None:
    """Wait for ``process``; kill it past ``timeout`` seconds or ``max_rss_gib`` resident memory.

    Returns:
        Why it was stopped, or ``None`` when it finished by itself.
    """
    start = time.perf_counter()
    while process.poll() is None:
        elapsed = time.perf_counter() - start
        rss = _rss_gib(process.pid)
        reason = None
        if elapsed > timeout:
            reason = f"stopped at the {timeout:g} s limit"
        elif rss > max_rss_gib:
            reason = f"stopped at {rss:.1f} GiB resident memory after {elapsed:.0f} s"
        if reason:
            process.kill()
            return reason
        time.sleep(0.25)
    return None


def _table(rows: list[dict]) -> str:
    lines = [
        "| preset | D | K | T | batch | divergence | device | ms / iteration (wall) "
        "| CPU s / iteration | peak memory (MiB) | rise (MiB) |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['preset']} | | | | | {r['divergence']} | {r['device']} "
                f"| {r['error']} | | | |"
            )
            continue
        rise = f"{r['rise_mib']:.0f}" if "rise_mib" in r else "n/a"
        if r["iters"]:
            ms = f"{r['ms_mean']:.0f} ± {r['ms_sd']:.0f} (n={r['iters']})"
        else:
            ms = f"{r['warmup_ms'][0]:.0f} (first iteration only)"
        if "note" in r:
            ms += f", {r['note']}"
        cpu = f"{r['cpu_s_mean']:.1f}" if r.get("cpu_s_mean") is not None else ""
        lines.append(
            f"| {r['preset']} | {r['latent_dim']} | {r['n_fields']} | {r['n_steps']} "
            f"| {r['batch_size']} | {r['divergence']} | {r['device']} "
            f"| {ms} | {cpu} | {r['peak_mib']:.0f} | {rise} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--divergences", nargs="+", default=list(DIVERGENCES))
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu (+ cuda)")
    parser.add_argument("--iters", type=int, default=2, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per configuration")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field in every configuration, e.g. --set batch_size=16",
    )
    parser.add_argument(
        "--max-rss-gib", type=float, default=8.0, help="stop a CPU configuration above this"
    )
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    parser.add_argument("--divergence", help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args)
        return 0

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = []
    start = time.perf_counter()
    for device in devices:
        for preset in args.presets:
            for divergence in args.divergences:
                row = _run_one(args, preset, divergence, device)
                print(f"done: {preset} {divergence} {device}", file=sys.stderr, flush=True)
                rows.append(row)
    elapsed = time.perf_counter() - start
    cpu = platform.processor() or platform.machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(
        f"torch {torch.__version__}, CPU {cpu} ({os.cpu_count()} cores, {args.threads} threads), "
        f"GPU {gpu}; {args.warmup} warm-up + {args.iters} timed iterations per row; "
        f"load average at the end {load:.1f}; total {elapsed:.0f} s\n"
    )
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
