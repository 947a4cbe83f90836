"""Configs, the CLI parser, checkpoints, exact resume, non-finite losses, a two-process DDP run."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tutorial_lib import training
from tutorial_lib.config import Config, apply_overrides, config_from_dict, get_preset
from tutorial_lib.model import LatentFlowModel
from tutorial_lib.train import main, parse_args

TINY = dict(
    enc_channels=(4, 8),
    enc_hidden=16,
    latent_dim=4,
    n_fields=3,
    field_hidden=8,
    skew_terms=1,
    n_steps=2,
    batch_size=4,
    max_steps=4,
    log_every=1,
    checkpoint_every=2,
    eval_every=1000,
    threads=1,
)


def tiny_config(tmp_path: Path, **overrides: object) -> Config:
    return apply_overrides(Config(), {**TINY, "out_dir": str(tmp_path), **overrides})


def test_paper_presets_have_the_published_sizes() -> None:
    expected = {
        "mnist": (324, 3, 8),
        "shapes3d": (226, 5, 7),
        "falcor3d": (324, 7, 4),
        "isaac3d": (324, 8, 3),
    }
    for name, (latent, k, steps) in expected.items():
        config = get_preset(name).validate()
        assert (config.latent_dim, config.n_fields, config.n_steps) == (latent, k, steps)
        assert config.batch_size == 128 and config.lr == 1e-4
    assert get_preset("cpu-demo").dataset == "mnist-subset"
    assert get_preset("beta-vae").beta > 1 and get_preset("vae").model == "vae"


def test_bad_configs_raise_errors_naming_field_and_value() -> None:
    with pytest.raises(ValueError, match=r"expected flow_method in .*got 'heun'"):
        apply_overrides(Config(), ["flow_method=heun"])
    with pytest.raises(ValueError, match=r"expected latent_dim to be a positive integer, got 0"):
        apply_overrides(Config(), ["latent_dim=0"])
    with pytest.raises(ValueError, match=r"divisible by 2\*\*len\(enc_channels\) = 8"):
        apply_overrides(Config(), ["enc_channels=8,8,8"])
    with pytest.raises(ValueError, match=r"did you mean \['latent_dim'\]"):
        apply_overrides(Config(), ["latent_dims=3"])
    with pytest.raises(ValueError, match="p_stay_on strictly between 0 and 1"):
        apply_overrides(Config(), {"p_stay_on": 1.0})
    with pytest.raises(ValueError, match="expected preset in"):
        get_preset("imagenet")
    with pytest.raises(ValueError, match="time_dependent=True"):
        apply_overrides(Config(), ["hj_weight=1"])


def test_overrides_parse_types_and_round_trip_through_json() -> None:
    config = apply_overrides(
        Config(), ["latent_dim=8", "lr=3e-4", "hard_spikes=false", "skew_rank=none"]
    )
    assert (config.latent_dim, config.lr, config.hard_spikes, config.skew_rank) == (
        8,
        3e-4,
        False,
        None,
    )
    assert config_from_dict(json.loads(config.to_json())) == config


def test_cli_accepts_set_and_dashed_overrides() -> None:
    args, overrides = parse_args(
        ["--preset", "vae", "--set", "lr=1e-3", "--max_steps", "7", "--latent_dim=5"]
    )
    assert args.preset == "vae"
    assert overrides == ["lr=1e-3", "max_steps=7", "latent_dim=5"]


def test_cli_reports_a_bad_config_without_training(capsys: pytest.CaptureFixture) -> None:
    assert main(["--latent_dim", "0"]) == 2
    assert "expected latent_dim to be a positive integer, got 0" in capsys.readouterr().err


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path: Path) -> None:
    full = training.train(
        tiny_config(tmp_path, run_name="full"), progress=False, evaluate_at_end=False
    )
    first = training.train(
        tiny_config(tmp_path, run_name="part", max_steps=2), progress=False, evaluate_at_end=False
    )
    resumed = training.train(
        resume=first.run_dir, overrides=["max_steps=4"], progress=False, evaluate_at_end=False
    )
    losses_full = [r["loss"] for r in full.history]
    losses_resumed = [r["loss"] for r in first.history + resumed.history]
    assert [r["step"] for r in resumed.history] == [3, 4]
    assert losses_resumed == losses_full
    assert len(set(losses_full)) == 4  # the losses do change from step to step
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_run_writes_config_checkpoint_and_results(tmp_path: Path) -> None:
    result = training.train(
        tiny_config(tmp_path, run_name="r", max_steps=2), progress=False, evaluate_at_end=False
    )
    files = sorted(p.name for p in result.run_dir.iterdir())
    assert files == ["checkpoint.pt", "config.json", "results.json"]
    results = json.loads((result.run_dir / "results.json").read_text())
    for key in ("config", "git", "hardware", "device", "wall_time_s", "metrics", "steps"):
        assert key in results, key
    assert results["steps"] == 2 and results["config"]["latent_dim"] == 4
    state = training.load_checkpoint(result.run_dir)
    assert state["step"] == 2 and "optimizer" in state and "rng" in state
    model = training.load_model(result.run_dir)
    assert isinstance(model, LatentFlowModel) and not model.training


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = LatentFlowModel.elbo

    def poisoned(self, frames, step=0, **kwargs):
        terms = original(self, frames, step, **kwargs)
        if step >= 3:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(LatentFlowModel, "elbo", poisoned)
    config = tiny_config(tmp_path, run_name="nan", max_steps=6)
    with pytest.raises(training.NonFiniteLossError, match=r"non-finite loss nan at step 3"):
        training.train(config, progress=False, evaluate_at_end=False)
    state = training.load_checkpoint(tmp_path / "nan")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_checkpoints_are_written_atomically(tmp_path: Path) -> None:
    path = training.save_checkpoint(tmp_path / "c.pt", {"x": torch.ones(3)})
    training.save_checkpoint(path, {"x": torch.zeros(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
    assert torch.equal(torch.load(path)["x"], torch.zeros(3))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        TUTORIAL_DEVICE="cpu",
    )
    config = apply_overrides(
        Config(), {**TINY, "out_dir": out, "run_name": "ddp", "max_steps": 2, "batch_size": 4}
    )
    result = training.train(config, progress=False, evaluate_at_end=False)
    flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    torch.save(flat, Path(out) / f"params{rank}.pt")
    torch.distributed.destroy_process_group()


def test_ddp_with_two_cpu_processes_keeps_replicas_identical(tmp_path: Path) -> None:
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    p0, p1 = (torch.load(tmp_path / f"params{r}.pt") for r in range(2))
    assert torch.equal(p0, p1)
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["hardware"]["processes"] == 2 and results["steps"] == 2
    state = training.load_checkpoint(tmp_path / "ddp")
    assert len(state["rng"]) == 2  # every process's random state is kept for resuming


class _Sequences(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> dict:
        gates = torch.zeros(2, 3)
        return {
            "frames": torch.full((3, 1, 2, 2), float(index)),
            "factors": torch.zeros(3, 2, dtype=torch.long),
            "gates": gates,
            "magnitudes": gates,
            "factor": 0,
        }


def test_dataset_batches_resume_the_same_stream_across_epochs() -> None:
    stream = training.DatasetBatches(_Sequences(), 3, seed=0, device=torch.device("cpu"))
    seen = [stream.next()[:, 0, 0, 0, 0] for _ in range(2)]
    state = stream.state_dict()
    rest = [stream.next()[:, 0, 0, 0, 0] for _ in range(4)]  # crosses an epoch (3 per epoch)
    again = training.DatasetBatches(_Sequences(), 3, seed=0, device=torch.device("cpu"))
    again.load_state_dict(state)
    assert all(torch.equal(a, again.next()[:, 0, 0, 0, 0]) for a in rest)
    first_epoch = torch.cat(seen + rest[:1])
    assert sorted(first_epoch.tolist()) == sorted(set(first_epoch.tolist()))  # no repeats
