"""The training config (YAML), validated up front: a wrong key or value stops the run with one line naming it.

Example (every key but ``stage``, ``output``, ``data.manifest`` and ``train.steps`` has a default)::

    stage: 1                      # 1 single events + semantic queries | 2 + residual queries and fusion | 3 long-form
    output: runs/stage1           # checkpoints, metrics.csv, final/
    model:
      init: tiny                  # tiny | an AudioStory model folder | a checkpoint of an earlier stage
      # qwen: models/qwen2.5-3b-instruct   # stage 1 from scratch: base Qwen + TangoFlux DiT folders
      # dit: models/tangoflux
      t5: models/flan-t5-large    # reconstruction targets (omit with losses.rec: 0)
    data:
      manifest: data/manifest.jsonl
    train:
      steps: 1000
      batch_size: 4               # per process
      lr: 1.0e-4
    losses: {lm: 1.0, rec: 1.0, flow: 1.0}
    distributed: {strategy: auto} # auto (DDP when launched on several processes) | fsdp | deepspeed

Relative paths are relative to the config file's folder.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Section):
    init: str = "tiny"
    qwen: str | None = None
    dit: str | None = None
    t5: str | None = None
    tiny_seed: int = 0
    overrides: dict[str, Any] = Field(default_factory=dict)  # AudioStoryConfig fields, for a model built new

    @model_validator(mode="after")
    def _base_pair(self) -> "ModelSection":
        if (self.qwen is None) != (self.dit is None):
            raise ValueError("'qwen' and 'dit' go together (a base Qwen folder and a TangoFlux DiT folder)")
        return self


class DataSection(_Section):
    manifest: str
    cache: str | None = None  # default: <manifest folder>/latent-cache
    max_tokens: int = Field(4096, gt=0)
    shard_mb: int = Field(512, gt=0)
    sample_latents: bool = True  # draw from the VAE posterior (mean + std · ε) instead of its mean
    num_workers: int = Field(0, ge=0)
    eval_manifest: str | None = None  # evaluation stories (default: the training manifest, with fixed noise)


class TrainSection(_Section):
    steps: int = Field(gt=0)
    batch_size: int = Field(1, gt=0)
    grad_accum: int = Field(1, gt=0)
    lr: float = Field(1e-4, gt=0)
    lr_dit: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(0, ge=0)
    scheduler: Literal["constant", "cosine", "linear"] = "constant"
    max_grad_norm: float | None = Field(1.0, gt=0)
    seed: int = 0
    freeze_dit: bool = False
    train_embeddings: bool = True
    gradient_checkpointing: bool = False
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    save_every: int = Field(0, ge=0)  # 0: only the final checkpoint
    keep_last: int | None = Field(None, gt=0)
    log_every: int = Field(1, gt=0)
    eval_every: int = Field(0, ge=0)  # 0: evaluate before the first step and after the last only
    cpu: bool = False  # train on the CPU even when a GPU is there


class LossSection(_Section):
    lm: float = Field(1.0, ge=0)
    rec: float = Field(1.0, ge=0)
    flow: float = Field(1.0, ge=0)


class DistributedSection(_Section):
    strategy: Literal["auto", "fsdp", "deepspeed"] = "auto"
    fsdp: dict[str, Any] = Field(default_factory=dict)  # accelerate FullyShardedDataParallelPlugin kwargs
    deepspeed: dict[str, Any] = Field(default_factory=dict)  # accelerate DeepSpeedPlugin kwargs
    find_unused_parameters: bool = False


class TrainConfig(_Section):
    stage: Literal[1, 2, 3]
    output: str
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection
    train: TrainSection
    losses: LossSection = Field(default_factory=LossSection)
    distributed: DistributedSection = Field(default_factory=DistributedSection)
    log_with: list[str] = Field(default_factory=list)  # accelerate trackers, e.g. [tensorboard]; CSV is always written
    resume: str | None = None  # latest | a checkpoint folder

    @model_validator(mode="after")
    def _needs(self) -> "TrainConfig":
        if self.losses.lm + self.losses.rec + self.losses.flow == 0:
            raise ValueError("losses: every weight is 0; nothing would be trained")
        return self

    @property
    def cache_dir(self) -> Path:
        return Path(self.data.cache) if self.data.cache else Path(self.data.manifest).parent / "latent-cache"


PATH_KEYS = (("output",), ("resume",), ("model", "init"), ("model", "qwen"), ("model", "dit"), ("model", "t5"),
             ("data", "manifest"), ("data", "cache"), ("data", "eval_manifest"))


def _suggest(model: type[BaseModel], loc: tuple) -> str:
    """' (did you mean …?)' for an unknown key, looked up in the section the key sits in."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        inner = getattr(field, "annotation", None) if field else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return ""
        model = inner
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _explain(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    where = ".".join(str(p) for p in loc) or "(top level)"
    if err.get("type") == "extra_forbidden":
        return f"{where}: unknown key{_suggest(TrainConfig, loc)}"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        return f"{where}: required key missing"
    return f"{where}: {msg} (got {err.get('input')!r})" if "input" in err and not isinstance(err["input"], dict) else f"{where}: {msg}"


def _resolve_paths(data: dict, base: Path) -> None:
    for keys in PATH_KEYS:
        node = data
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
            value = node[keys[-1]]
            if keys == ("model", "init") and value == "tiny" or keys == ("resume",) and value == "latest":
                continue
            p = Path(value).expanduser()
            node[keys[-1]] = str(p if p.is_absolute() else base / p)


def parse_config(data: Any, *, source: str = "config", base: str | os.PathLike = ".") -> TrainConfig:
    """A config from already-loaded data (paths relative to ``base``)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (stage, output, model, data, train, …)")
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    _resolve_paths(data, Path(base))
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_explain(exc)}") from None


def load_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """Read and validate ``path``; ``overrides`` (``max_steps``, ``seed``, ``resume``; None = keep) win over it."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the training config {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if isinstance(data, dict):
        data = dict(data)
        train = dict(data.get("train") or {})
        if overrides.get("max_steps") is not None:
            train["steps"] = int(overrides["max_steps"])
        if overrides.get("seed") is not None:
            train["seed"] = int(overrides["seed"])
        data["train"] = train
        if overrides.get("resume") is not None:
            data["resume"] = str(Path(overrides["resume"]).resolve()) if overrides["resume"] != "latest" else "latest"
    return parse_config(data, source=str(path), base=path.parent)
