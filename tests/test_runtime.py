"""The one setup function: seeds, threads, device and the fast-mode switch."""

import random

import numpy as np
import pytest
import torch

from tutorial_lib import runtime


def test_setup_makes_random_draws_repeat():
    runtime.setup(seed=3, threads=1)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    runtime.setup(seed=3, threads=1)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_setup_fixes_thread_count_and_reports_settings():
    settings = runtime.setup(seed=0, threads=1)
    assert torch.get_num_threads() == 1 and settings.threads == 1
    assert settings.device.type in ("cpu", "cuda", "mps")
    runtime.setup(seed=0, threads=2)
    assert torch.get_num_threads() == 2


def test_fast_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv(runtime.FAST_ENV, "1")
    assert runtime.fast_mode() and runtime.setup().fast
    monkeypatch.setenv(runtime.FAST_ENV, "0")
    assert not runtime.fast_mode()
    monkeypatch.setenv(runtime.FAST_ENV, "maybe")
    with pytest.raises(ValueError, match="expected TUTORIAL_FAST to be one of"):
        runtime.fast_mode()


def test_device_override_and_unavailable_device(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert runtime.get_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="expected an available CUDA device"):
            runtime.get_device("cuda")


def test_bad_setup_arguments_are_named():
    with pytest.raises(ValueError, match="expected a non-negative integer seed, got -1"):
        runtime.setup(seed=-1)
    with pytest.raises(ValueError, match="expected threads to be a positive integer or None"):
        runtime.setup(threads=0)
