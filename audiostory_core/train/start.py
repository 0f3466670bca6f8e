"""The model a run starts from: a tiny random one, an AudioStory folder (ours, published, or a checkpoint of an
earlier stage), or base Qwen + TangoFlux folders (stage 1 from scratch, as the paper trains)."""
from __future__ import annotations

import difflib
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import DubkitError
from ..models import tokens as T
from ..models.audiostory import CONFIG_FILE, AudioStoryModel
from ..models.config import AudioStoryConfig
from .config import ModelSection
from .errors import ConfigError

# Qwen2 config fields an AudioStoryConfig carries (the rest of a Hugging Face config.json is bookkeeping).
QWEN_FIELDS = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_parameters", "tie_word_embeddings",
    "hidden_act", "use_sliding_window", "sliding_window", "max_window_layers", "attention_dropout",
)


def model_folder(path: str | os.PathLike) -> Path:
    """The model inside a checkpoint folder (``checkpoint-N/model``), or the folder itself."""
    p = Path(path)
    return p / "model" if (p / "model" / CONFIG_FILE).is_file() else p


def with_overrides(cfg: AudioStoryConfig, overrides: dict[str, Any]) -> AudioStoryConfig:
    names = {f.name for f in fields(AudioStoryConfig)}
    for key in overrides:
        if key not in names:
            close = difflib.get_close_matches(key, sorted(names), n=1)
            raise ConfigError(f"model.overrides: {key!r} is not an AudioStoryConfig field"
                              + (f" (did you mean '{close[0]}'?)" if close else ""))
    return replace(cfg, **overrides)


def tiny_model(seed: int = 0, overrides: dict[str, Any] | None = None) -> AudioStoryModel:
    """``AudioStoryModel.tiny`` with a VAE whose encoder makes the latents its decoder and the DiT read
    (``DiTConfig.tiny``'s encoder gives 2 channels for an 8-channel decoder: fine for sampling, not for encoding)."""
    cfg = with_overrides(AudioStoryConfig.tiny(), overrides or {})
    if cfg.dit is not None:
        vae = dict(cfg.dit.get("vae") or {})
        vae["encoder_hidden_size"] = 2 * int(vae.get("decoder_input_channels", cfg.dit["in_channels"]))
        cfg.dit = {**cfg.dit, "vae": vae}
    return AudioStoryModel.tiny(seed=seed, config=cfg)


def from_base(qwen: str | os.PathLike, dit: str | os.PathLike, overrides: dict[str, Any] | None = None) -> AudioStoryModel:
    """A fresh AudioStory model: base Qwen (tokenizer + weights) with the 612 tokens added and a new LoRA adapter,
    a new query bridge, and a TangoFlux DiT folder."""
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from ..models.dit import TangoFluxDiT
    from ..models.llm import build_llm

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(qwen), local_files_only=True)
        base = Qwen2ForCausalLM.from_pretrained(str(qwen), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.qwen: cannot load a Qwen tokenizer and model from {qwen}: {exc}") from None
    T.add_audiostory_tokens(tokenizer)
    dit_model = TangoFluxDiT.from_pretrained(dit)
    llm_cfg = {k: v for k, v in base.config.to_dict().items() if k in QWEN_FIELDS}
    llm_cfg.update(model_type="qwen2", vocab_size=len(tokenizer))
    cfg = AudioStoryConfig(llm=llm_cfg, cond_width=dit_model.config.joint_attention_dim, dit=dit_model.config.to_dict())
    cfg = with_overrides(cfg, overrides or {})
    llm = build_llm(cfg, len(tokenizer), base=base)
    return AudioStoryModel(cfg, tokenizer, llm=llm, dit=dit_model)


def initial_model(section: ModelSection, resume: Path | None = None) -> AudioStoryModel:
    """The model to train, in float32 (mixed precision is autocast); ``resume`` (a checkpoint) wins over
    ``section.init``."""
    try:
        if resume is not None:
            model = AudioStoryModel.from_pretrained(model_folder(resume))
        elif section.qwen is not None:
            model = from_base(section.qwen, section.dit, section.overrides)
        elif section.init == "tiny":
            model = tiny_model(section.tiny_seed, section.overrides)
        else:
            if section.overrides:
                raise ConfigError("model.overrides apply only to a model built new (init: tiny, or qwen + dit); "
                                  f"{section.init} already has its sizes")
            from ..models.published import load_model

            model = load_model(model_folder(section.init))
    except ConfigError:
        raise
    except DubkitError as exc:
        raise ConfigError(f"model: {exc}") from None
    if model.dit is None:
        raise ConfigError("model: the model has no DiT; training needs one (the flow-matching loss)")
    return model.float()
