"""The planning LLM: a Qwen2-family causal LM with AudioStory's added tokens and a LoRA adapter.

As published: the embedding table is resized for the 612 added tokens (new rows start at the mean of the old
ones), then peft wraps the model with LoRA (r=32, alpha=32, dropout 0.05 on every attention and MLP projection)
and trains the RMS norms in full (peft's ``modules_to_save``).
"""
from __future__ import annotations


import torch
from torch import nn

from .config import AudioStoryConfig



def qwen2_config(cfg: AudioStoryConfig, vocab_size: int):
    """A ``transformers.Qwen2Config`` from ``cfg.llm`` with the given vocabulary size."""
    from transformers import Qwen2Config

    kwargs = {k: v for k, v in cfg.llm.items() if k != "model_type"}
    kwargs["vocab_size"] = int(vocab_size)
    return Qwen2Config(**kwargs)


def lora_config(cfg: AudioStoryConfig):
    """The published adapter recipe as a ``peft.LoraConfig``."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets),
        modules_to_save=list(cfg.lora_full_trained),
        task_type="CAUSAL_LM",
    )


def build_llm(cfg: AudioStoryConfig, vocab_size: int, base: nn.Module | None = None) -> nn.Module:
    """The LLM ready for AudioStory: ``base`` (or a randomly initialised Qwen2 from ``cfg.llm``) resized to
    ``vocab_size`` and wrapped with LoRA when ``cfg.lora_r > 0``."""
    from transformers import Qwen2ForCausalLM

    if base is None:
        base = Qwen2ForCausalLM(qwen2_config(cfg, vocab_size))
    else:
        resize_embeddings(base, vocab_size)
    if cfg.lora_r <= 0:
        return base
    from peft import get_peft_model

    return get_peft_model(base, lora_config(cfg))


@torch.no_grad()
def resize_embeddings(model: nn.Module, vocab_size: int) -> None:
    """Resize to ``vocab_size``; new input rows take the mean old row (new output rows 3× the mean, when the
    output embedding is untied), as the published training initialised them."""
    old = model.get_input_embeddings().weight.shape[0]
    if old == vocab_size:
        return
    model.resize_token_embeddings(vocab_size, mean_resizing=False)
    if vocab_size > old:
        emb = model.get_input_embeddings().weight
        emb[old:] = emb[:old].mean(dim=0, keepdim=True)
        out = model.get_output_embeddings()
        if out is not None and not model.config.tie_word_embeddings:
            out.weight[old:] = out.weight[:old].mean(dim=0, keepdim=True) * 3


def decoder_of(llm: nn.Module) -> nn.Module:
    """The transformer body (``Qwen2Model``) under any peft wrapping: it returns the final-normed hidden states."""
    return llm.get_decoder()  # peft forwards the call to the wrapped Qwen2ForCausalLM


def last_hidden_states(llm: nn.Module, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None):
    """Last-layer (final-normed) hidden states for ``inputs_embeds`` (B, T, H), one forward pass, no LM head.

    With a left-padding ``attention_mask`` positions count from each row's first real token, as in generation.
    """
    position_ids = None
    if attention_mask is not None:
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
    out = decoder_of(llm)(
        inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
    )
    return out.last_hidden_state
