"""The three progressive stages (paper §3.3) as data: what each trains and which condition the DiT gets.

1. Single events, bridge (semantic) queries: LLM LoRA + norms (+ embeddings), the semantic projector, the DiT
   (unless frozen); condition = semantic projection / feature_scale.
2. Single events with residual queries: adds the residual projector and the fusion attention; condition = the
   bridge's fused output (the inference condition).
3. Long form: whole stories interleaved (reasoning, then event after event, each after the previous events in
   one causal sequence); the same modules, everything end to end.
The VAE is never trained (latents are cached); parameters a stage does not use are frozen, so DDP needs no
unused-parameter search.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Stage:
    number: int
    long_form: bool
    residual: bool
    summary: str


STAGES = {
    1: Stage(1, False, False, "single events, semantic (bridge) queries"),
    2: Stage(2, False, True, "single events, semantic + residual queries with fusion"),
    3: Stage(3, True, True, "long-form stories, interleaved reasoning and events, end to end"),
}


def _is_adapter(name: str) -> bool:
    return "lora_" in name or ".modules_to_save." in name


def set_trainable(model: nn.Module, stage: Stage, *, freeze_dit: bool, train_embeddings: bool) -> dict[str, int]:
    """Set ``requires_grad`` for ``stage``; returns trainable parameter counts per part (llm, bridge, dit).

    An LLM with a LoRA adapter trains the adapter and the fully trained norms (``modules_to_save``); a plain LLM
    (no adapter) trains in full. ``train_embeddings`` also trains the token embeddings (tied to the LM head in
    Qwen2.5-3B): AudioStory's added tokens start as the mean row and the published checkpoint carries them trained.
    """
    model.requires_grad_(False)
    has_adapter = model.config.lora_r > 0
    for name, p in model.llm.named_parameters():
        if not has_adapter or _is_adapter(name):
            p.requires_grad_(True)
    if train_embeddings:
        model.llm.get_input_embeddings().weight.requires_grad_(True)
        out = model.llm.get_output_embeddings()
        if out is not None:
            out.weight.requires_grad_(True)
    model.bridge.semantic_proj.requires_grad_(True)
    if stage.residual:
        model.bridge.residual_proj.requires_grad_(True)
        model.bridge.fusion.requires_grad_(True)
    if model.dit is not None and not freeze_dit:
        for name, p in model.dit.named_parameters():
            p.requires_grad_(not name.startswith("vae."))
    parts = {"llm": model.llm, "bridge": model.bridge, "dit": model.dit}
    return {k: sum(p.numel() for p in m.parameters() if p.requires_grad) if m is not None else 0 for k, m in parts.items()}


def parameter_groups(model: nn.Module, *, lr: float, lr_dit: float | None, weight_decay: float) -> list[dict]:
    """AdamW groups: DiT and the rest (own learning rates), no weight decay on norms and biases (1-D)."""
    groups: dict[tuple[str, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((("dit" if name.startswith("dit.") else "llm"), p.ndim < 2), []).append(p)
    out = []
    for (part, flat), params in sorted(groups.items()):
        out.append({"params": params, "lr": (lr_dit or lr) if part == "dit" else lr,
                    "weight_decay": 0.0 if flat else weight_decay})
    return out
