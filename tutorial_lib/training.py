"""One training loop for every preset: CPU, CUDA, Apple MPS, and several GPUs through torchrun.

:func:`train` builds the data, the model and the optimiser from a :class:`Config`, runs the
loop with a tqdm progress bar, evaluates periodically (with :mod:`tutorial_lib.metrics`),
writes checkpoints atomically (a temporary file, then ``os.replace``) with the optimiser, every
random state and the step, and ends with a results JSON (metrics, config, git commit, hardware,
wall time, device).

Resuming (``resume=<checkpoint or run folder>``) restores the model, the optimiser, the data
stream and all random states, so the losses after resuming equal those of an uninterrupted run
with the same seed (on the same device and thread count). Evaluation runs under a forked random
state and does not disturb training.

Several processes: launched by ``torchrun --nproc_per_node N -m tutorial_lib.train ...`` the
same code initialises ``torch.distributed`` (NCCL on CUDA, gloo otherwise), wraps the model in
``DistributedDataParallel``, splits ``batch_size`` over the processes, and lets rank 0 write.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import distributed as dist
from tqdm.auto import tqdm

from . import runtime
from .config import Config, apply_overrides, config_from_dict
from .model import LatentFlowModel

__all__ = [
    "NonFiniteLossError",
    "TrainResult",
    "train",
    "evaluate",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
RESULTS_NAME = "results.json"
CONFIG_NAME = "config.json"
TRANSFORMS = ("rotate", "scale", "hue")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (unwrapped, on its device).
        history: one dict of scalar terms per training step run in this call.
        results: the content of the results JSON.
        run_dir: where the checkpoint, config and results were written.
    """

    model: LatentFlowModel
    history: list[dict[str, float]]
    results: dict[str, Any]
    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- distributed
@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_pref: str | None) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), runtime.get_device(device_pref)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = runtime.get_device(device_pref)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), local_rank), device


# ---------------------------------------------------------------------------- data
class MNISTBatches:
    """Endless random MNIST sequence batches made on the fly from a seeded generator.

    The generator's state is the whole state of the stream, so saving and restoring it
    resumes the stream exactly.
    """

    def __init__(self, config: Config, batch_size: int, seed: int, device: torch.device) -> None:
        from .data import GateSchedule, load_mnist

        source = "subset" if config.dataset == "mnist-subset" else "idx"
        self.images, _ = load_mnist("train", source)
        self.config, self.batch_size, self.device = config, batch_size, device
        self.schedule = GateSchedule(n_fields=len(TRANSFORMS))
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> torch.Tensor:
        """Frames ``(batch, T + 1, 3, 28, 28)`` on the training device."""
        from .data import random_sequence_batch

        batch = random_sequence_batch(
            self.images,
            self.batch_size,
            self.config.n_steps,
            self.schedule,
            TRANSFORMS,
            self.config.sequence_mode,
            generator=self.generator,
        )
        return batch["frames"].to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class DatasetBatches:
    """Endless batches from a map-style sequence dataset, reshuffled every epoch.

    The permutation of epoch ``e`` is drawn from ``seed + e``; the state is ``(epoch, position)``,
    so a resumed run continues with the same batches. ``num_workers > 0`` loads with a
    ``DataLoader`` in worker processes (items are deterministic functions of their index).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        seed: int,
        device: torch.device,
        num_workers: int = 0,
    ) -> None:
        from .data.factors import collate_sequences

        self.dataset, self.batch_size, self.seed, self.device = dataset, batch_size, seed, device
        self.collate = collate_sequences
        self.num_workers = num_workers
        self.epoch, self.position = 0, 0
        self._iterator: Any = None
        if len(dataset) < batch_size:
            raise ValueError(
                f"expected a dataset of at least batch_size={batch_size} sequences, "
                f"got {len(dataset)}"
            )

    def _order(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(len(self.dataset), generator=g)

    def _start(self) -> Any:
        from torch.utils.data import DataLoader, Subset

        remaining = self._order()[self.position :].tolist()
        loader = DataLoader(
            Subset(self.dataset, remaining),
            batch_size=self.batch_size,
            shuffle=False,
            drop_last=True,
            num_workers=self.num_workers,
            collate_fn=self.collate,
        )
        return iter(loader)

    def next(self) -> torch.Tensor:
        """Frames ``(batch, T + 1, C, H, W)`` on the training device."""
        if self._iterator is None:
            self._iterator = self._start()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._iterator = self._start()
            batch = next(self._iterator)
        self.position += self.batch_size
        return batch["frames"].to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iterator = None


def _factor_dataset(config: Config, split: str) -> Any:
    """The sequence dataset of a Shapes3D / Falcor3D / Isaac3D preset (tutorial_lib.data)."""
    from .data import benchmarks
    from .data.shapes3d_procedural import ProceduralShapes3D

    common = dict(split=split, n_steps=config.n_steps, seed=config.seed)
    if config.dataset == "shapes3d-procedural":
        return ProceduralShapes3D(**common, size=config.image_size)
    if config.dataset == "shapes3d":
        return benchmarks.Shapes3DSequences(**common, download=True)
    if config.dataset == "falcor3d":
        return benchmarks.Falcor3DSequences(**common, size=config.image_size)
    return benchmarks.Isaac3DSequences(**common, size=config.image_size)


def _make_batches(config: Config, batch_size: int, seed: int, device: torch.device) -> Any:
    if config.dataset in ("mnist-subset", "mnist"):
        return MNISTBatches(config, batch_size, seed, device)
    dataset = _factor_dataset(config, "train")
    return DatasetBatches(dataset, batch_size, seed, device, config.num_workers)


# ---------------------------------------------------------------------------- evaluation
def _eval_data(config: Config) -> dict[str, Any] | None:
    """Held-out sequences, single-transformation sets, and training sets for the baselines."""
    try:
        from . import metrics
    except ImportError:  # pragma: no cover - metrics ships with the library
        logger.warning("tutorial_lib.metrics is not available; skipping evaluation")
        return None
    if config.dataset not in ("mnist-subset", "mnist"):
        test_ds, train_ds = _factor_dataset(config, "test"), _factor_dataset(config, "train")
        n = min(config.eval_sequences, len(test_ds), len(train_ds))
        test = metrics.SequenceBatch.from_items([test_ds[i] for i in range(n)])
        train_batch = metrics.SequenceBatch.from_items([train_ds[i] for i in range(n)])
        return {
            "test": test,
            "eq_sets": metrics.split_by_transformation(test),
            "train_sets": metrics.split_by_transformation(train_batch),
            "names": tuple(test_ds.varied),
        }
    from .data import GateSchedule, heldout_mnist_sequences, load_mnist, to_red_rgb

    source = "subset" if config.dataset == "mnist-subset" else "idx"
    schedule = GateSchedule(n_fields=len(TRANSFORMS))
    held = heldout_mnist_sequences(
        config.n_steps, config.sequence_mode, schedule, config.seed, source, TRANSFORMS
    )
    n = min(config.eval_sequences, held["frames"].shape[0])
    test = metrics.SequenceBatch(held["frames"][:n], held["gates"][:n], held["magnitudes"][:n])
    eq_sets = metrics.single_transformation_sets(
        test.frames[:, 0], config.n_steps, TRANSFORMS, config.sequence_mode
    )
    train_images, _ = load_mnist("train", source)
    x_train = to_red_rgb(torch.as_tensor(train_images[:n]).float() / 255.0)
    train_sets = metrics.single_transformation_sets(
        x_train, config.n_steps, TRANSFORMS, config.sequence_mode
    )
    return {"test": test, "eq_sets": eq_sets, "train_sets": train_sets, "names": TRANSFORMS}


def evaluate(
    model: LatentFlowModel,
    config: Config,
    data: dict[str, Any] | None = None,
    iwae_samples: int | None = None,
) -> dict[str, Any]:
    """Held-out metrics of ``model`` through :mod:`tutorial_lib.metrics` (CPU, forked RNG).

    Flow model: gate assignment accuracy, ``E_k`` unsupervised and supervised, IWAE.
    Baselines: ``E_k`` of the best latent traversal chosen on training data, and IWAE.

    Returns:
        A JSON-ready dict (empty when metrics or evaluation data are unavailable).
    """
    from . import metrics

    data = data if data is not None else _eval_data(config)
    if data is None:
        return {}
    device = next(model.parameters()).device
    s = config.iwae_samples if iwae_samples is None else iwae_samples
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        generator = torch.Generator().manual_seed(config.seed + 12345)
        test = data["test"].to(device)
        eq_sets = {k: v.to(device) for k, v in data["eq_sets"].items()}
        if config.is_flow:
            evaluation = metrics.evaluate_flow_model(
                model, test, eq_sets, data["names"], iwae_samples=s, generator=generator
            )
        else:
            train_sets = {k: v.to(device) for k, v in data["train_sets"].items()}
            evaluation, _ = metrics.evaluate_vae_baseline(
                model,
                train_sets,
                test,
                eq_sets,
                data["names"],
                iwae_samples=s,
                generator=generator,
            )
    return evaluation.to_dict()


def summarise(metrics_dict: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of an evaluation: gate accuracy, ``E_k`` per transformation
    (sum over pixels, channels and t), IWAE in nats per image."""
    out: dict[str, float] = {}
    if "gates" in metrics_dict:
        out["gate_accuracy"] = metrics_dict["gates"]["accuracy"]
    for name, row in metrics_dict.get("equivariance", {}).items():
        out[f"E_{name}"] = row["sum_over_pixels"]
    for name, row in metrics_dict.get("equivariance_supervised", {}).items():
        out[f"E_{name}_supervised"] = row["sum_over_pixels"]
    ll = metrics_dict.get("log_likelihood", {})
    for key in ("mean", "nats_per_image", "log_likelihood"):
        if key in ll:
            out["iwae_nats_per_image"] = ll[key]
            break
    return out


# ---------------------------------------------------------------------------- checkpoints
def _rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path | str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with ``torch.save`` to a temporary file, then ``os.replace`` it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def _resolve_checkpoint(resume: Path | str) -> Path:
    path = Path(resume)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"expected a checkpoint file or a run folder holding one, got {resume}"
        )
    return path


def load_checkpoint(
    resume: Path | str, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`train` (a file, or the run folder holding it)."""
    return torch.load(_resolve_checkpoint(resume), map_location=map_location, weights_only=False)


def load_model(resume: Path | str, device: str | torch.device = "cpu") -> LatentFlowModel:
    """The trained model stored in a checkpoint, in evaluation mode."""
    state = load_checkpoint(resume, device)
    model = LatentFlowModel(config_from_dict(state["config"])).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


# ---------------------------------------------------------------------------- bookkeeping
def _git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tutorial_lib"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    # "dirty": the library differs from the commit (modified or untracked files in tutorial_lib).
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def _hardware(device: torch.device, world: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "processes": world,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _scalars(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items() if v.dim() == 0}


# ---------------------------------------------------------------------------- the loop
def train(
    config: Config | None = None,
    resume: Path | str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    run_dir: Path | str | None = None,
    progress: bool = True,
    evaluate_at_end: bool = True,
) -> TrainResult:
    """Train the model of ``config`` (or continue the run stored at ``resume``).

    Args:
        config: the run's configuration (default: the ``cpu-demo`` preset). Ignored when
            ``resume`` is given, except through ``overrides``.
        resume: a checkpoint file or a run folder; training continues from its step.
        overrides: ``key=value`` strings (or a dict) applied on top of the config, e.g. a
            larger ``max_steps`` when resuming.
        run_dir: output folder (default ``config.out_dir / run name``, or the resumed folder).
        progress: show a tqdm progress bar (rank 0 only).
        evaluate_at_end: run the held-out evaluation after the last step.

    Returns:
        A :class:`TrainResult`.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the last good checkpoint stays).
    """
    started = time.time()
    state = None
    if resume is not None:
        state = load_checkpoint(resume)
        config = config_from_dict(state["config"])
        run_dir = Path(run_dir) if run_dir is not None else _resolve_checkpoint(resume).parent
    config = (config or Config()).validate()
    if overrides:
        config = apply_overrides(config, overrides)

    runtime.setup(seed=config.seed, threads=config.threads, device=config.device)
    ddp, device = _init_distributed(config.device)
    if config.batch_size % ddp.world:
        raise ValueError(
            f"expected batch_size divisible by the {ddp.world} processes, got {config.batch_size}"
        )
    runtime.seed_everything(config.seed + ddp.rank)
    if run_dir is None:
        name = config.run_name or f"{config.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path(config.out_dir) / name
    run_dir = Path(run_dir)
    if ddp.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CONFIG_NAME).write_text(config.to_json() + "\n")
    logger.info("config:\n%s", config.to_json())

    model = LatentFlowModel(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batches = _make_batches(
        config, config.batch_size // ddp.world, config.seed * 1000 + ddp.rank, device
    )
    step, history_all, prior_wall = 0, [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        batches.load_state_dict(state["data"][ddp.rank])
        _set_rng_state(state["rng"][ddp.rank])
        history_all = list(state.get("history", []))
        prior_wall = float(state.get("wall_time_s", 0.0))
        logger.info("resumed from %s at step %d", resume, step)
    wrapped: torch.nn.Module = model
    if ddp.world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def checkpoint(at_step: int) -> Path | None:
        rng = [_rng_state()]
        data_state = [batches.state_dict()]
        if ddp.world > 1:
            rng, data_state = [None] * ddp.world, [None] * ddp.world
            dist.all_gather_object(rng, _rng_state())
            dist.all_gather_object(data_state, batches.state_dict())
        if not ddp.main:
            return None
        payload = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": at_step,
            "config": config.to_dict(),
            "rng": rng,
            "data": data_state,
            "history": history_all,
            "wall_time_s": prior_wall + time.time() - started,
        }
        return save_checkpoint(run_dir / CHECKPOINT_NAME, payload)

    history: list[dict[str, float]] = []
    eval_data = _eval_data(config) if ddp.main else None
    evaluations: list[dict[str, Any]] = []
    bar = tqdm(
        total=config.max_steps,
        initial=step,
        disable=not (progress and ddp.main),
        desc=config.preset,
    )
    model.train()
    last_saved = step
    stopped_by_time = False
    while step < config.max_steps:
        frames = batches.next()
        terms = wrapped(frames, step=step)
        loss = terms["loss"]
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if ddp.world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1.0:
            where = run_dir / CHECKPOINT_NAME
            message = (
                f"non-finite loss {float(loss.detach())} at step {step} "
                f"(terms: {_scalars(terms)}); stopping. The last good checkpoint is kept at "
                f"{where} (step {last_saved}); resume from it with a smaller lr or grad_clip."
            )
            logger.error(message)
            bar.close()
            raise NonFiniteLossError(message)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        record = {"step": step, **_scalars(terms)}
        history.append(record)
        history_all.append(record)
        bar.update(1)
        if step % config.log_every == 0 or step == config.max_steps:
            shown = {"loss": f"{record['loss']:.1f}"}
            if config.is_flow:
                shown["spikes"] = f"{record['spike_rate']:.2f}"
                shown["tau"] = f"{record['temperature']:.2f}"
            bar.set_postfix(shown)
            logger.info("step %d: %s", step, {k: round(v, 4) for k, v in record.items()})
        if step % config.checkpoint_every == 0:
            checkpoint(step)
            last_saved = step
        if ddp.main and step % config.eval_every == 0 and step < config.max_steps:
            model.eval()
            result = evaluate(model, config, eval_data, iwae_samples=min(10, config.iwae_samples))
            model.train()
            evaluations.append({"step": step, **summarise(result)})
            logger.info("evaluation at step %d: %s", step, evaluations[-1])
        elapsed = prior_wall + time.time() - started
        if config.time_limit_s is not None and elapsed > config.time_limit_s:
            logger.warning(
                "time limit %.0f s reached at step %d of %d",
                config.time_limit_s,
                step,
                config.max_steps,
            )
            stopped_by_time = True
            break
    bar.close()
    if last_saved != step or state is None:
        checkpoint(step)
    train_wall = prior_wall + time.time() - started

    final: dict[str, Any] = {}
    if ddp.main and evaluate_at_end:
        eval_started = time.time()
        model.eval()
        final = evaluate(model, config, eval_data)
        logger.info("final evaluation (%.0f s): %s", time.time() - eval_started, summarise(final))
    results: dict[str, Any] = {
        "preset": config.preset,
        "model": config.model,
        "steps": step,
        "stopped_by_time_limit": stopped_by_time,
        "summary": summarise(final),
        "metrics": final,
        "evaluations": evaluations,
        "final_terms": history_all[-1] if history_all else {},
        "loss_curve": [
            {"step": r["step"], "loss": r["loss"]}
            for r in history_all
            if r["step"] % config.log_every == 0 or r["step"] == step
        ],
        "config": config.to_dict(),
        "git": _git_commit(),
        "hardware": _hardware(device, ddp.world),
        "device": str(device),
        "train_wall_time_s": train_wall,
        "wall_time_s": prior_wall + time.time() - started,
    }
    if ddp.main:
        tmp = run_dir / (RESULTS_NAME + ".tmp")
        tmp.write_text(json.dumps(_jsonable(results), indent=2) + "\n")
        os.replace(tmp, run_dir / RESULTS_NAME)
    return TrainResult(model, history, results, run_dir, final)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
