"""The training loop on 🤗 accelerate: one process on the CPU, several with ``accelerate launch`` / ``torchrun``
(DDP; FSDP or DeepSpeed from the config), gradient accumulation, mixed precision, checkpoints and resume."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import Progress, checkpoints, export_model, install_hooks, resume_folder, save_checkpoint
from .config import TrainConfig
from .errors import ConfigError
from .metrics import EVAL_COLUMNS, MetricsLog
from .stages import STAGES, parameter_groups, set_trainable

LOSS_KEYS = ("loss", "lm", "rec", "flow")


@dataclass
class RunResult:
    output: Path
    final: Path
    steps: int
    metrics: Path
    rows: list[dict[str, float]] = field(default_factory=list)  # the training rows this run logged
    eval_rows: list[dict[str, float]] = field(default_factory=list)  # its evaluations (fixed noise)


def make_accelerator(cfg: TrainConfig):
    """An ``Accelerator`` for the config; the launch (accelerate launch / torchrun) decides the processes."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, GradientAccumulationPlugin, ProjectConfiguration

    # accelerate sees a multi-process CPU launch (gloo) only when told to use the CPU.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = cfg.train.cpu or (several and not torch.cuda.is_available())
    kwargs: dict[str, Any] = dict(
        mixed_precision=cfg.train.mixed_precision, cpu=cpu, step_scheduler_with_optimizer=False,
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=cfg.train.grad_accum,
                                                                sync_with_dataloader=False),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.distributed.find_unused_parameters)],
        project_config=ProjectConfiguration(project_dir=cfg.output, logging_dir=str(Path(cfg.output) / "logs")),
        log_with=cfg.log_with or None,
    )
    try:
        if cfg.distributed.strategy == "fsdp":
            from accelerate import FullyShardedDataParallelPlugin

            kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(**cfg.distributed.fsdp)
        elif cfg.distributed.strategy == "deepspeed":
            from accelerate import DeepSpeedPlugin

            kwargs["deepspeed_plugin"] = DeepSpeedPlugin(**cfg.distributed.deepspeed)
        accelerator = Accelerator(**kwargs)
    except (ValueError, ImportError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"distributed/train settings rejected by accelerate: {str(exc).splitlines()[0]}") from None
    have = {str(getattr(t, "name", t)).lower() for t in accelerator.log_with}
    missing = [t for t in cfg.log_with if t.lower() not in have]
    if missing:
        raise ConfigError(f"log_with: {', '.join(missing)} is not installed (e.g. pip install {missing[0]}); "
                          "metrics.csv is written without it")
    return accelerator


def prepare_data(cfg: TrainConfig, model: Any, accelerator: Any, log: Callable[[str], None]):
    """Manifests → cache (built by the main process first) → the stage's training and evaluation samples."""
    from .cache import LatentCache
    from .data import build_samples
    from .manifest import read_manifest

    manifest = read_manifest(cfg.data.manifest)
    evaluation = read_manifest(cfg.data.eval_manifest) if cfg.data.eval_manifest else manifest
    want_targets = cfg.losses.rec > 0
    if want_targets and not cfg.model.t5:
        raise ConfigError("losses.rec is above 0 but model.t5 is not set: give a flan-t5 folder (the "
                          "reconstruction targets) or set losses.rec: 0")
    with accelerator.main_process_first():  # the main process encodes; the others then read what it wrote
        if accelerator.is_main_process:
            cache = _build_cache(cfg, model, accelerator, [manifest, evaluation], want_targets, log)
        else:
            cache = LatentCache(cfg.cache_dir)
    stage = STAGES[cfg.stage]

    def samples(m):
        return build_samples(m, model.tokenizer, model.token_ids, long_form=stage.long_form,
                             max_tokens=cfg.data.max_tokens, max_event=model.config.max_event, with_targets=want_targets)

    train_samples = samples(manifest)
    return train_samples, (samples(evaluation) if evaluation is not manifest else train_samples), cache


def _build_cache(cfg: TrainConfig, model: Any, accelerator: Any, manifests, want_targets: bool, log):
    from ..models.dit import T5TextEncoder
    from .cache import build_cache

    t5 = T5TextEncoder.from_pretrained(cfg.model.t5).to(accelerator.device) if want_targets else None
    if t5 is not None and t5.width != model.config.cond_width:
        raise ConfigError(f"model.t5 is {t5.width}-d but the model's conditions are {model.config.cond_width}-d")
    model.dit.to(accelerator.device)
    return build_cache(manifests, cfg.cache_dir, model.dit, t5=t5, n_tokens=model.config.n_semantic,
                       shard_mb=cfg.data.shard_mb, progress=log)


def _optimizer(cfg: TrainConfig, model: Any):
    from transformers import get_scheduler

    t = cfg.train
    opt = torch.optim.AdamW(parameter_groups(model, lr=t.lr, lr_dit=t.lr_dit, weight_decay=t.weight_decay),
                            betas=t.betas)
    name = {"constant": "constant_with_warmup", "cosine": "cosine", "linear": "linear"}[t.scheduler]
    return opt, get_scheduler(name, opt, num_warmup_steps=t.warmup_steps, num_training_steps=t.steps)


def _loader(cfg: TrainConfig, samples, cache, accelerator, start: int, pad_id: int):
    from .data import StepBatches, StoryDataset, collate

    batches = StepBatches(len(samples), batch_size=cfg.train.batch_size, processes=accelerator.num_processes,
                          rank=accelerator.process_index, grad_accum=cfg.train.grad_accum, steps=cfg.train.steps,
                          seed=cfg.train.seed, start=start)
    dataset = StoryDataset(samples, cache, seed=cfg.train.seed, sample_latents=cfg.data.sample_latents)
    # Its own generator: starting to iterate must not draw from the global RNG (dropout's), or a resumed run
    # would drift from an uninterrupted one.
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=partial(collate, pad_id=pad_id),
                                       num_workers=cfg.data.num_workers,
                                       generator=torch.Generator().manual_seed(cfg.train.seed))


@dataclass
class _Run:
    """Everything a running stage holds."""

    cfg: TrainConfig
    accelerator: Any
    objective: Any
    optimizer: Any
    scheduler: Any
    progress: Progress
    loader: Any
    evaluator: Callable[[Any], dict[str, float]]


def _setup(cfg: TrainConfig, log: Callable[[str], None]) -> _Run:
    from accelerate.utils import set_seed

    from .evaluate import make_evaluator
    from .losses import StoryObjective
    from .start import initial_model

    accelerator = make_accelerator(cfg)
    resume = resume_folder(cfg.resume, Path(cfg.output))
    if resume is None and (checkpoints(Path(cfg.output)) or (Path(cfg.output) / "final").exists()):
        raise ConfigError(f"output {cfg.output} already holds a run; continue it with --resume latest (from its "
                          "checkpoints: train.save_every > 0), or choose another output folder")
    set_seed(cfg.train.seed)
    stage = STAGES[cfg.stage]
    model = initial_model(cfg.model, resume)
    counts = set_trainable(model, stage, freeze_dit=cfg.train.freeze_dit, train_embeddings=cfg.train.train_embeddings)
    samples, eval_samples, cache = prepare_data(cfg, model, accelerator, log)
    if cfg.train.gradient_checkpointing:
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.dit.transformer.enable_gradient_checkpointing()
    weights = {"lm": cfg.losses.lm, "rec": cfg.losses.rec, "flow": cfg.losses.flow}
    objective = StoryObjective(model, residual=stage.residual, weights=weights).train()
    optimizer, scheduler = _optimizer(cfg, model)
    objective, optimizer, scheduler = accelerator.prepare(objective, optimizer, scheduler)
    progress = Progress()
    accelerator.register_for_checkpointing(progress)
    install_hooks(accelerator)
    if resume is not None:
        accelerator.load_state(str(resume / "state"))
        log(f"resumed from {resume} at step {progress.step}")
    if cfg.distributed.strategy != "auto" and accelerator.distributed_type.value.lower() != cfg.distributed.strategy:
        log(f"note: distributed.strategy {cfg.distributed.strategy} applies to multi-GPU launches only; "
            f"running {accelerator.distributed_type.value}")
    log(f"stage {stage.number} ({stage.summary}): {len(samples)} sequences, {accelerator.num_processes} process(es) "
        f"on {accelerator.device}, trainable llm {counts['llm']:,} / bridge {counts['bridge']:,} / dit {counts['dit']:,}")
    pad = int(model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else model.token_ids.eos)
    evaluator = make_evaluator(accelerator, eval_samples, cache, batch_size=cfg.train.batch_size,
                               seed=cfg.train.seed, sample_latents=cfg.data.sample_latents, pad_id=pad)
    return _Run(cfg, accelerator, objective, optimizer, scheduler, progress,
                _loader(cfg, samples, cache, accelerator, progress.step, pad), evaluator)


def _micro_step(accelerator, objective, optimizer, scheduler, batch, max_norm):
    """One micro-batch forward/backward; the optimizer steps when accumulation is complete."""
    grad_norm = None
    with accelerator.accumulate(objective):
        out = objective(**batch)
        accelerator.backward(out["loss"])
        if accelerator.sync_gradients and max_norm:
            grad_norm = accelerator.clip_grad_norm_(objective.parameters(), max_norm)
        optimizer.step()
        if accelerator.sync_gradients and not optimizer.step_was_skipped:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return {k: v.detach() for k, v in out.items()}, grad_norm


def _row(accelerator, sums, counts, step, lr, grad_norm, elapsed) -> dict[str, float]:
    keys = [k for k in LOSS_KEYS if k in sums]
    means = accelerator.reduce(torch.stack([sums[k] for k in keys]), reduction="mean")
    work = accelerator.reduce(torch.tensor(counts, dtype=torch.float64, device=accelerator.device), reduction="sum")
    row = {"step": step, **{k: float(v) for k, v in zip(keys, means)}, "lr": lr, "elapsed_s": elapsed}
    if grad_norm is not None:
        row["grad_norm"] = float(grad_norm)
    row["tokens_per_s"], row["frames_per_s"] = (float(w) / max(elapsed, 1e-9) for w in work)
    return row


class _Logs:
    """The CSV logs (main process) and the optional accelerate trackers."""

    def __init__(self, run: _Run) -> None:
        out, step, main = Path(run.cfg.output), run.progress.step, run.accelerator.is_main_process
        self.run = run
        self.metrics = MetricsLog(out / "metrics.csv", step) if main else None
        self.evals = MetricsLog(out / "eval.csv", step, EVAL_COLUMNS) if main else None
        self.rows: list[dict] = []
        self.eval_rows: list[dict] = []

    def step(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        cfg = self.run.cfg
        if row["step"] % cfg.train.log_every == 0 or row["step"] == cfg.train.steps:
            if self.metrics is not None:
                self.metrics.write(row)
            if cfg.log_with:
                self.run.accelerator.log({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))

    def evaluate(self) -> None:
        row = {"step": self.run.progress.step, **self.run.evaluator(self.run.objective)}
        self.eval_rows.append(row)
        if self.evals is not None:
            self.evals.write(row)
        if self.run.cfg.log_with:
            self.run.accelerator.log({f"eval_{k}": v for k, v in row.items() if k != "step"}, step=int(row["step"]))


def _run(run: _Run, logs: _Logs, bar) -> None:
    cfg, acc, progress = run.cfg, run.accelerator, run.progress
    sums, counts, t0 = {}, [0.0, 0.0], time.perf_counter()
    for batch in run.loader:
        batch = {k: v.to(acc.device) for k, v in batch.items()}
        out, grad_norm = _micro_step(acc, run.objective, run.optimizer, run.scheduler, batch, cfg.train.max_grad_norm)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + v.float() / cfg.train.grad_accum
        counts[0] += float(batch["attention_mask"].sum())
        counts[1] += float(batch["frame_mask"].sum())
        if not acc.sync_gradients:
            continue
        progress.step += 1
        logs.step(_row(acc, sums, counts, progress.step, run.scheduler.get_last_lr()[0], grad_norm,
                       time.perf_counter() - t0))
        bar.set_postfix(loss=f"{logs.rows[-1]['loss']:.4f}", refresh=False)
        bar.update(1)
        if cfg.train.eval_every and progress.step % cfg.train.eval_every == 0 and progress.step < cfg.train.steps:
            logs.evaluate()
        if cfg.train.save_every and progress.step % cfg.train.save_every == 0 and progress.step < cfg.train.steps:
            save_checkpoint(acc, run.objective, Path(cfg.output), progress.step, cfg.train.keep_last)
        sums, counts, t0 = {}, [0.0, 0.0], time.perf_counter()


def train(cfg: TrainConfig, *, log: Callable[[str], None] | None = None, progress_bar: bool = True) -> RunResult:
    """Run (or resume) one stage as the config says; returns where the model and metrics are."""
    from huggingface_hub.utils import disable_progress_bars
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    disable_progress_bars()  # one bar per checkpoint save/load would bury the training bar
    hf_logging.disable_progress_bar()
    say = log or print
    run = _setup(cfg, lambda m: say(m) if accelerator_is_main() else None)
    acc, output, start = run.accelerator, Path(cfg.output), run.progress.step
    logs = _Logs(run)
    if cfg.log_with:
        acc.init_trackers(f"audiostory-stage{cfg.stage}")
    if start == 0:
        logs.evaluate()
    bar = tqdm(total=cfg.train.steps, initial=start, desc=f"stage {cfg.stage}",
               disable=not (progress_bar and acc.is_main_process))
    _run(run, logs, bar)
    bar.close()
    if run.progress.step > start or start == 0:
        logs.evaluate()
    if cfg.train.save_every and logs.rows:
        save_checkpoint(acc, run.objective, output, run.progress.step, cfg.train.keep_last)
    export_model(acc, run.objective, output / "final")
    if cfg.log_with:
        acc.end_training()
    if acc.is_main_process:
        ev = logs.eval_rows
        say(f"stage {cfg.stage} done at step {run.progress.step}: eval loss {ev[0]['loss']:.4f} → {ev[-1]['loss']:.4f}; "
            f"model in {output / 'final'}, metrics in {output / 'metrics.csv'}")
    return RunResult(output, output / "final", run.progress.step, output / "metrics.csv", logs.rows, logs.eval_rows)


def accelerator_is_main() -> bool:
    """Whether this is the main process (also before an Accelerator exists: the launcher's RANK)."""
    from accelerate import PartialState

    return PartialState().is_main_process
