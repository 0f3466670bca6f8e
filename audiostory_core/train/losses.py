"""The three training losses of AudioStory and the module that computes them end to end in one forward.

- LM: next-token cross-entropy on the answer (reasoning, captions, timestamps, markup).
- Reconstruction: MSE of the projected semantic queries onto the flan-t5 embedding of the event's caption times
  ``feature_scale`` (10, the published ``t5_feature_scale``).
- Flow matching: the DiT's rectified-flow loss on the event's VAE latents, conditioned on the query tokens, so
  its gradient reaches the LLM through the bridge.

Every loss is a mean per example first (an event's over its frames, an example's over its tokens and events),
then over examples: every example weighs the same whatever its length, so the loss does not depend on how the
examples are split across processes or micro-batches.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..models.llm import last_hidden_states


def per_example(values: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    """Mean of ``values`` (E,) per example (owner (E,) holds each one's example row) → (n,)."""
    total = values.new_zeros(n).index_add(0, owner, values)
    count = values.new_zeros(n).index_add(0, owner, torch.ones_like(values))
    return total / count.clamp_min(1)


def lm_loss(head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example (B,) mean next-token cross-entropy; the LM head runs only where a label is."""
    h, y = hidden[:, :-1], labels[:, 1:]
    where = y != -100
    rows = torch.nonzero(where, as_tuple=True)[0]
    logits = head(h[where]).float()
    ce = F.cross_entropy(logits, y[where], reduction="none")
    return per_example(ce, rows, hidden.shape[0])


def reconstruction_loss(semantic: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    """Per event (E,) MSE of projected semantic queries (E, N, W) onto T5 targets (E, N, W) × ``scale``."""
    return (semantic.float() - targets.float() * scale).pow(2).mean(dim=(1, 2))


def flow_matching_loss(
    dit: Any, condition: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor,
    seconds: torch.Tensor, frame_mask: torch.Tensor,
) -> torch.Tensor:
    """Per event (E,) rectified-flow MSE between the DiT's velocity and ``noise - latents`` over real frames.

    ``latents``/``noise`` (E, L, C) are padded to the longest event; padded frames are masked out of attention
    and of the loss, so an event's loss does not depend on what it is batched with."""
    s = sigma.to(latents.dtype)[:, None, None]
    noisy = (1 - s) * latents + s * noise
    context, pooled, _ = dit.encode_condition(condition, seconds)
    ragged = not bool(frame_mask.all())
    pred = dit.velocity(noisy, sigma, context, pooled, None, frame_mask if ragged else None).float()
    err = (pred - (noise - latents).float()).pow(2).mean(dim=-1)
    m = frame_mask.to(err.dtype)
    return (err * m).sum(dim=1) / m.sum(dim=1).clamp_min(1)


class StoryObjective(nn.Module):
    """``AudioStoryModel`` + a stage: ``forward(**batch)`` returns the weighted total and each loss (means over
    the batch's examples). This is the module accelerate wraps (DDP/FSDP need the forward to go through it)."""

    def __init__(self, model: nn.Module, *, residual: bool, weights: dict[str, float]) -> None:
        super().__init__()
        self.model = model
        self.residual = residual
        self.weights = dict(weights)

    def condition(self, semantic_states: torch.Tensor, residual_states: torch.Tensor) -> torch.Tensor:
        """The DiT condition: stage 1 the semantic queries alone (``proj / feature_scale``, ≈ T5 range); from
        stage 2 the bridge's fusion of semantic and residual queries, exactly as at inference."""
        bridge = self.model.bridge
        if self.residual:
            return bridge(semantic_states, residual_states)
        return bridge.semantic_proj(semantic_states) / bridge.feature_scale

    def forward(self, input_ids, attention_mask, labels, semantic_index, residual_index, event_sample, latents,
                noise, frame_mask, sigma, seconds, targets=None) -> dict[str, torch.Tensor]:
        m = self.model
        hidden = last_hidden_states(m.llm, m.llm.get_input_embeddings()(input_ids), attention_mask)
        flat = hidden.reshape(-1, hidden.shape[-1])
        sem, res = flat[semantic_index], flat[residual_index]
        n = input_ids.shape[0]
        parts = {"lm": lm_loss(m.llm.get_output_embeddings(), hidden, labels)}
        if targets is not None:
            rec = reconstruction_loss(m.bridge.semantic_proj(sem), targets, m.bridge.feature_scale)
            parts["rec"] = per_example(rec, event_sample, n)
        cond = self.condition(sem, res)
        flow = flow_matching_loss(m.dit, cond, latents, noise, sigma, seconds, frame_mask)
        parts["flow"] = per_example(flow, event_sample, n)
        total = sum(self.weights.get(k, 0.0) * v for k, v in parts.items())
        out = {k: v.mean() for k, v in parts.items()}
        out["loss"] = total.mean()
        return out
