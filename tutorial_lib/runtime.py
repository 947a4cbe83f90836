"""One place for seeds, threads, determinism, the device and the fast-mode switch.

Notebooks and scripts call :func:`setup` once at the top::

    from tutorial_lib.runtime import setup
    settings = setup(seed=0, threads=2)
    device = settings.device
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger(__name__)

FAST_ENV = "TUTORIAL_FAST"
DEVICE_ENV = "TUTORIAL_DEVICE"


@dataclass(frozen=True)
class Settings:
    """What :func:`setup` fixed: the device, the fast-mode flag, the seed and the thread count."""

    device: torch.device
    fast: bool
    seed: int
    threads: int


def fast_mode() -> bool:
    """Whether smaller runs were asked for (environment variable ``TUTORIAL_FAST=1``).

    This is the only place that reads the switch; everything else asks this function.
    """
    value = os.environ.get(FAST_ENV, "0").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"expected {FAST_ENV} to be one of 0/1/true/false/yes/no, got {value!r}")


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the device: ``prefer``, else ``TUTORIAL_DEVICE``, else CUDA, then Apple MPS, then CPU.

    Args:
        prefer: a device string such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.

    Returns:
        The chosen ``torch.device``. Asking for a device that is not available raises
        ``RuntimeError`` naming what is available.
    """
    choice = prefer or os.environ.get(DEVICE_ENV)
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"expected an available CUDA device for {choice!r}, found none")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(
                f"expected an available Apple MPS device for {choice!r}, found none"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(
    seed: int = 0,
    threads: int | None = 2,
    deterministic: bool = True,
    device: str | None = None,
) -> Settings:
    """Fix seeds, the CPU thread count and determinism, and choose the device.

    Printed floating-point results are reproducible only at a fixed thread count, so notebooks
    fix it (2 by default, the size of the machines the course is tested on).

    Args:
        seed: seed for Python, NumPy and torch.
        threads: number of intra-op CPU threads, or ``None`` to leave torch's default.
        deterministic: ask torch for deterministic algorithms (warn-only where none exists).
        device: optional device string overriding the automatic choice.

    Returns:
        The :class:`Settings` in force.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"expected a non-negative integer seed, got {seed!r}")
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"expected threads to be a positive integer or None, got {threads!r}")
        torch.set_num_threads(threads)
    seed_everything(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    chosen = get_device(device)
    settings = Settings(
        device=chosen, fast=fast_mode(), seed=seed, threads=torch.get_num_threads()
    )
    logger.info("setup: %s", settings)
    return settings
