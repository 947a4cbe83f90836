"""Configuration of the latent flow model and its training: one dataclass, named presets.

Presets:

- ``cpu-demo`` (default): the shipped MNIST subset, small networks, 2,400 steps on one CPU
  thread (measured: 9 min 17 s end to end on a 2-core machine), stopped early after 780 s of
  training on slower machines (``time_limit_s``).
- ``mnist``, ``shapes3d``, ``falcor3d``, ``isaac3d``: the published sizes (latent 324 or 226,
  K = 3, 5, 7, 8 fields, batch 128, Adam 1e-4, 8, 7, 4 and 3 transitions per sequence).
- ``vae``, ``beta-vae``: baselines with the cpu-demo's data, networks and budget, trained on every
  frame as an independent image.

Any field can be overridden, e.g. ``apply_overrides(cfg, ["latent_dim=32", "lr=3e-4"])``.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "PRESETS", "get_preset", "apply_overrides", "config_from_dict"]

MODELS = ("flow", "vae", "beta-vae")
DATASETS = (
    "mnist-subset", "mnist", "shapes3d", "shapes3d-procedural", "falcor3d", "isaac3d",
)  # fmt: skip
FLOW_METHODS = ("euler_logdet", "euler", "rk4")
DIVERGENCES = ("exact", "hutchinson")
CONTROLS = ("single", "double")
PRIOR_PATHS = ("static", "heat")
LIKELIHOODS = ("bernoulli", "gaussian")
SLAB_PRIORS = ("lognormal", "laplace")
SEQUENCE_MODES = ("cumulative", "absolute")


@dataclass
class Config:
    """Everything a run needs; :meth:`validate` raises naming the bad field and value.

    Sizes: ``image_size`` and ``in_channels`` describe one frame; ``enc_channels`` the stride-2
    convolutions of encoder, decoder and pair posterior; ``latent_dim`` is ``D``; ``n_fields`` is
    ``K``; ``n_steps`` the transitions per sequence (frames ``n_steps + 1``).
    """

    preset: str = "cpu-demo"
    model: str = "flow"
    dataset: str = "mnist-subset"
    sequence_mode: str = "cumulative"
    image_size: int = 28
    in_channels: int = 3
    n_steps: int = 8

    # networks
    latent_dim: int = 16
    enc_channels: tuple[int, ...] = (32, 64)
    enc_hidden: int = 256
    n_fields: int = 3
    field_hidden: int = 64
    field_depth: int = 2
    skew_terms: int = 2
    skew_rank: int | None = None
    time_dependent: bool = False
    control: str = "single"

    # flow step and densities ("divergence" is unused by "euler_logdet", which is exact)
    flow_method: str = "euler"
    divergence: str = "hutchinson"
    n_probes: int = 1
    n_substeps: int = 1
    prior_path: str = "static"
    prior_diffusion: float = 0.0

    # likelihood
    likelihood: str = "bernoulli"
    gaussian_sigma: float = 0.1

    # gates
    p_on_first: float = 0.5
    p_stay_on: float = 0.8
    p_switch_on: float = 0.2
    slab_prior: str = "lognormal"
    slab_prior_loc: float = 1.0
    slab_prior_scale: float = 0.1
    hard_spikes: bool = True
    temperature_rate: float = 3e-3
    temperature_floor: float = 0.2

    # objective weights
    beta: float = 1.0
    spike_kl_weight: float = 1.0
    slab_kl_weight: float = 1.0
    # The path term sums KL(q_t || p_t) over the T transitions; with a static prior it counts
    # the z_0 KL once per frame. Weight 1 starved the latent code of the cpu-demo; 0.1 learned
    # the gates faster (held-out gate accuracy at step 900: 0.95 against 0.90).
    path_weight: float = 0.1
    hj_weight: float = 0.0
    hj_points: int = 1

    # optimisation
    batch_size: int = 32
    lr: float = 1e-3
    max_steps: int = 2400
    time_limit_s: float | None = 780.0
    grad_clip: float | None = 10.0
    seed: int = 0
    # One intra-op thread: the flow step is many small autograd operations (see README).
    threads: int | None = 1
    device: str | None = None
    num_workers: int = 0

    # bookkeeping and evaluation
    out_dir: str = "runs"
    run_name: str | None = None
    log_every: int = 50
    eval_every: int = 1200
    checkpoint_every: int = 250
    eval_sequences: int = 512
    iwae_samples: int = 100
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> Config:
        """Check every field; raise ``ValueError`` naming the field, the expected and the value."""
        choices = {
            "model": MODELS,
            "dataset": DATASETS,
            "flow_method": FLOW_METHODS,
            "divergence": DIVERGENCES,
            "control": CONTROLS,
            "prior_path": PRIOR_PATHS,
            "likelihood": LIKELIHOODS,
            "slab_prior": SLAB_PRIORS,
            "sequence_mode": SEQUENCE_MODES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"expected {name} in {list(allowed)}, got {value!r}")
        positive_ints = (
            "image_size", "in_channels", "n_steps", "latent_dim", "enc_hidden", "n_fields",
            "field_hidden", "field_depth", "skew_terms", "n_probes", "n_substeps", "hj_points",
            "batch_size", "max_steps", "log_every", "eval_every", "checkpoint_every",
            "eval_sequences", "iwae_samples",
        )  # fmt: skip
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"expected {name} to be a positive integer, got {value!r}")
        if not self.enc_channels or any(
            isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.enc_channels
        ):
            raise ValueError(
                f"expected enc_channels to be a non-empty tuple of positive integers, "
                f"got {self.enc_channels!r}"
            )
        factor = 2 ** len(self.enc_channels)
        if self.image_size % factor:
            raise ValueError(
                f"expected image_size divisible by 2**len(enc_channels) = {factor}, "
                f"got image_size={self.image_size} with enc_channels={self.enc_channels}"
            )
        for name in ("p_on_first", "p_stay_on", "p_switch_on"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"expected {name} strictly between 0 and 1, got {value!r}")
        for name in ("slab_prior_loc", "slab_prior_scale", "gaussian_sigma", "lr"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"expected {name} > 0, got {value!r}")
        for name in (
            "beta", "spike_kl_weight", "slab_kl_weight", "path_weight", "hj_weight",
            "prior_diffusion", "temperature_rate",
        ):  # fmt: skip
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"expected {name} >= 0, got {value!r}")
        if not 0.0 < self.temperature_floor <= 1.0:
            raise ValueError(
                f"expected temperature_floor in (0, 1], got {self.temperature_floor!r}"
            )
        if self.skew_rank is not None and self.skew_rank < 1:
            raise ValueError(f"expected skew_rank None or >= 1, got {self.skew_rank!r}")
        if self.hj_weight > 0 and not self.time_dependent:
            raise ValueError(
                "expected time_dependent=True when hj_weight > 0 (the Hamilton-Jacobi residual "
                "of a time-independent potential is just 0.5*|grad u|^2), got "
                "time_dependent=False"
            )
        if self.prior_path == "heat" and self.prior_diffusion <= 0:
            raise ValueError(
                "expected prior_diffusion > 0 with prior_path='heat', "
                f"got {self.prior_diffusion!r}"
            )
        if self.model == "vae" and self.beta != 1.0:
            raise ValueError(
                f"expected beta=1 for model='vae' (use 'beta-vae'), got {self.beta!r}"
            )
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(f"expected time_limit_s None or > 0, got {self.time_limit_s!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"expected grad_clip None or > 0, got {self.grad_clip!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"expected threads None or >= 1, got {self.threads!r}")
        return self

    @property
    def is_flow(self) -> bool:
        """Whether this is the latent flow model (not a VAE baseline)."""
        return self.model == "flow"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        """The config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _paper(**kwargs: Any) -> Config:
    base = dict(
        latent_dim=324,
        enc_channels=(64, 128),
        enc_hidden=512,
        field_hidden=256,
        field_depth=2,
        skew_terms=4,
        skew_rank=16,
        flow_method="euler",
        divergence="hutchinson",
        batch_size=128,
        lr=1e-4,
        max_steps=100_000,
        time_limit_s=None,
        path_weight=1.0,
        temperature_rate=3e-5,
        temperature_floor=0.05,
        eval_every=5000,
        checkpoint_every=2000,
        log_every=200,
        eval_sequences=2000,
        num_workers=4,
        threads=None,
    )
    base.update(kwargs)
    return Config(**base)


PRESETS: dict[str, typing.Callable[[], Config]] = {
    "cpu-demo": lambda: Config(preset="cpu-demo"),
    "mnist": lambda: _paper(preset="mnist", dataset="mnist", n_fields=3, n_steps=8),
    "shapes3d": lambda: _paper(
        preset="shapes3d",
        dataset="shapes3d",
        image_size=64,
        enc_channels=(32, 64, 128, 256),
        latent_dim=226,
        n_fields=5,
        n_steps=7,
        likelihood="bernoulli",
    ),
    "falcor3d": lambda: _paper(
        preset="falcor3d",
        dataset="falcor3d",
        image_size=128,
        enc_channels=(32, 64, 128, 256, 256),
        n_fields=7,
        n_steps=4,
    ),
    "isaac3d": lambda: _paper(
        preset="isaac3d",
        dataset="isaac3d",
        image_size=128,
        enc_channels=(32, 64, 128, 256, 256),
        n_fields=8,
        n_steps=3,
    ),
    "vae": lambda: Config(preset="vae", model="vae"),
    "beta-vae": lambda: Config(preset="beta-vae", model="beta-vae", beta=4.0),
}


def get_preset(name: str) -> Config:
    """A fresh copy of the named preset; unknown names raise naming the known ones."""
    if name not in PRESETS:
        raise ValueError(f"expected preset in {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]()


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(Config)


def _parse_value(name: str, text: str) -> Any:
    """Convert the text of an override to the field's type (None, bool, int, float, tuple)."""
    hint = _field_types()[name]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    allows_none = type(None) in args
    if allows_none and text.strip().lower() in ("none", "null"):
        return None
    if allows_none:
        args = tuple(a for a in args if a is not type(None))
        hint = args[0] if len(args) == 1 else hint
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if hint is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is str:
            return text
        if origin is tuple:
            parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
            return tuple(int(p) for p in parts)
        if origin is dict:
            return json.loads(text)
    except (ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"expected {name} of type {hint}, got {text!r}") from err
    raise ValueError(f"cannot parse an override for {name} of type {hint}")


def apply_overrides(config: Config, overrides: list[str] | dict[str, Any]) -> Config:
    """Return a copy of ``config`` with ``key=value`` strings (or a dict) applied and validated.

    Unknown keys raise ``ValueError`` listing the nearest valid names.
    """
    names = {f.name for f in dataclasses.fields(Config)}
    updates: dict[str, Any] = {}
    items = overrides.items() if isinstance(overrides, dict) else None
    if items is None:
        pairs = []
        for text in overrides:
            if "=" not in text:
                raise ValueError(f"expected an override of the form key=value, got {text!r}")
            key, value = text.split("=", 1)
            pairs.append((key.strip().replace("-", "_"), value))
        items = pairs
    for key, value in items:
        if key not in names:
            import difflib

            near = difflib.get_close_matches(key, sorted(names), n=3)
            raise ValueError(f"expected a config field name, got {key!r} (did you mean {near}?)")
        updates[key] = _parse_value(key, value) if isinstance(value, str) else value
    return dataclasses.replace(config, **updates).validate()


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :meth:`Config.to_dict` output (e.g. a checkpoint)."""
    data = dict(data)
    if "enc_channels" in data:
        data["enc_channels"] = tuple(data["enc_channels"])
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"expected only Config fields, got unknown keys {unknown}")
    return Config(**data).validate()
