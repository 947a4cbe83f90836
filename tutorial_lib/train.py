"""Command line: ``python -m tutorial_lib.train [--preset NAME] [--set key=value] [--key value]``.

Examples::

    python -m tutorial_lib.train                          # cpu-demo on the shipped MNIST subset
    python -m tutorial_lib.train --preset vae             # the VAE baseline, same data and budget
    python -m tutorial_lib.train --preset mnist --device cuda --set max_steps=100000
    python -m tutorial_lib.train --resume runs/cpu-demo-20260101-120000 --max_steps 3000
    torchrun --nproc_per_node 4 -m tutorial_lib.train --preset shapes3d

Every field of :class:`tutorial_lib.config.Config` can be set with ``--set key=value`` or
``--key value``; the full config is printed before training and saved with the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .config import PRESETS, apply_overrides, get_preset
from .training import NonFiniteLossError, summarise, train


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Parse known options; every other ``--key value`` / ``--key=value`` becomes an override."""
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_lib.train",
        description="Train the latent flow model or a VAE baseline.",
    )
    parser.add_argument("--preset", default="cpu-demo", choices=sorted(PRESETS))
    parser.add_argument("--resume", default=None, help="checkpoint file or run folder")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a field"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    args, rest = parser.parse_known_args(argv)
    overrides = list(args.set)
    i = 0
    while i < len(rest):
        item = rest[i]
        if not item.startswith("--"):
            parser.error(f"expected --key value, got {item!r}")
        key = item[2:]
        if "=" in key:
            overrides.append(key)
            i += 1
            continue
        if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
            parser.error(f"expected a value after {item}")
        overrides.append(f"{key}={rest[i + 1]}")
        i += 2
    return args, overrides


def main(argv: list[str] | None = None) -> int:
    """Run training from the command line and print the config and the final metrics."""
    args, overrides = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("tutorial_lib.training").setLevel(
        logging.WARNING if args.quiet else logging.INFO
    )
    if args.resume is None:
        try:
            config = apply_overrides(get_preset(args.preset), overrides)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print("config:\n" + config.to_json(), flush=True)
        call = dict(config=config)
    else:
        print(f"resuming {args.resume} with overrides {overrides}", flush=True)
        call = dict(resume=args.resume, overrides=overrides)
    try:
        result = train(**call, progress=not args.quiet, evaluate_at_end=not args.no_eval)
    except NonFiniteLossError as err:
        print(f"stopped: {err}", file=sys.stderr)
        return 2
    summary = summarise(result.metrics)
    print(f"run folder: {result.run_dir}")
    print(
        f"steps: {result.results['steps']}, training wall time: "
        f"{result.results['train_wall_time_s']:.0f} s, "
        f"total: {result.results['wall_time_s']:.0f} s"
    )
    print(
        "final terms: "
        + json.dumps({k: round(v, 3) for k, v in result.results["final_terms"].items()})
    )
    if summary:
        print("metrics (held-out; E_k = sum over pixels, channels and t of |x_hat - x|):")
        for key, value in summary.items():
            print(f"  {key}: {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
