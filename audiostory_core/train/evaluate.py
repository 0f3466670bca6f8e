"""Evaluation losses with fixed noise: the same noise and noise levels at every evaluation, no dropout, so two
evaluations differ only by what the model learned (a training step's loss also varies with the noise drawn)."""
from __future__ import annotations

from functools import partial
from typing import Any

import torch

from .data import Sample, StoryDataset, collate

EVAL_EPOCH = -1  # the seed "epoch" of evaluation noise: never one a training batch uses


@torch.no_grad()
def evaluate(accelerator: Any, objective: Any, samples: list[Sample], cache: Any, *, batch_size: int, seed: int,
             sample_latents: bool, pad_id: int) -> dict[str, float]:
    """Mean losses over ``samples`` (every example counted once, split across the processes)."""
    dataset = StoryDataset(samples, cache, seed=seed, sample_latents=sample_latents)
    mine = list(range(accelerator.process_index, len(samples), accelerator.num_processes))
    was_training = objective.training
    objective.eval()
    sums: dict[str, torch.Tensor] = {}
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        batch = collate([dataset[(EVAL_EPOCH, i)] for i in idx], pad_id)
        out = objective(**{k: v.to(accelerator.device) for k, v in batch.items()})
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float() * len(idx)
    objective.train(was_training)
    keys = ["loss", "lm", "flow"] + (["rec"] if samples and samples[0].events[0].target_key else [])
    local = torch.stack([torch.as_tensor(sums.get(k, 0.0), device=accelerator.device, dtype=torch.float32)
                         for k in keys])
    total = accelerator.reduce(local, reduction="sum")
    return {k: float(v) / len(samples) for k, v in zip(keys, total)}


def make_evaluator(accelerator: Any, samples: list[Sample], cache: Any, *, batch_size: int, seed: int,
                   sample_latents: bool, pad_id: int):
    """``evaluator(objective) -> losses`` bound to one evaluation set."""
    return partial(evaluate, accelerator, samples=samples, cache=cache, batch_size=batch_size, seed=seed,
                   sample_latents=sample_latents, pad_id=pad_id)
