"""``AudioStoryConfig``: every size and switch of the AudioStory model in one JSON-serialisable dataclass.

Defaults are the published AudioStory-3B's (Qwen2.5-3B-Instruct + LoRA, 64 semantic and 8 residual query tokens
per event, 1024-wide conditions); ``AudioStoryConfig.tiny()`` is a random few-layer model for tests.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .checkpoint import config_from_dict

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Trained in full next to the LoRA adapters (peft's ``modules_to_save``; "norm" is the final norm).
FULL_TRAINED = ("input_layernorm", "post_attention_layernorm", "norm")

# Qwen2.5-3B-Instruct's config.json (what the published checkpoint was trained from), vocabulary after the
# 612 added tokens.
QWEN25_3B = {
    "model_type": "qwen2",
    "vocab_size": 152277,
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
}


@dataclass
class AudioStoryConfig:
    """Sizes of the LLM side, the bridge and (by reference) the DiT.

    - ``llm``: keyword arguments of ``transformers.Qwen2Config`` (``vocab_size`` is set from the tokenizer).
    - ``lora_*``: the adapter on the LLM (``lora_r = 0`` means no adapter: a plain, e.g. merged, LLM).
    - ``n_semantic`` / ``n_residual``: query tokens the LLM emits per event (``<t5_…>`` / ``<aud_…>``).
    - ``cond_width``: width of the fused condition (flan-t5-large's 1024, the DiT's cross-attention input).
    - ``feature_scale``: the semantic outputs are trained at 10× T5 scale; the fused condition divides it out.
    - ``dit``: the DiT's own config as a dict (``audiostory_core.models.dit.DiTConfig``), or None.
    - ``audio_encoder``: the audio prompt encoder's config as a dict, or None (no continuation input).
    - ``max_event``: the longest event (seconds) the DiT renders in one go.
    """

    llm: dict[str, Any] = field(default_factory=lambda: dict(QWEN25_3B))
    lora_r: int = 32
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    lora_full_trained: tuple[str, ...] = FULL_TRAINED
    n_semantic: int = 64
    n_residual: int = 8
    cond_width: int = 1024
    fusion_heads: int = 8
    feature_scale: float = 10.0
    dit: dict[str, Any] | None = None
    audio_encoder: dict[str, Any] | None = None
    max_event: float = 30.0
    max_events: int = 16  # events one plan may hold before decoding is forced to stop
    max_reasoning_tokens: int = 512
    max_caption_tokens: int = 48
    max_new_tokens: int = 1600  # the published script's budget

    @property
    def hidden_size(self) -> int:
        return int(self.llm["hidden_size"])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        d["lora_full_trained"] = list(self.lora_full_trained)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AudioStoryConfig":
        d = dict(d)
        for key in ("lora_targets", "lora_full_trained"):
            if key in d:
                d[key] = tuple(d[key])
        return config_from_dict(cls, d, "AudioStory")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "AudioStoryConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise CheckpointError(f"cannot read the AudioStory config {path}: {e}") from e

    @classmethod
    def tiny(cls, with_dit: bool = True, with_audio_encoder: bool = False) -> "AudioStoryConfig":
        """A random model small enough for CPU tests: 2-layer Qwen2 (hidden 64), 4 semantic + 2 residual queries,
        32-wide conditions, ``DiTConfig.tiny()`` and optionally ``AudioEncoderConfig.tiny()`` (continuation)."""
        llm = {
            "model_type": "qwen2",
            "vocab_size": 0,  # set from the tokenizer
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "tie_word_embeddings": True,
        }
        dit = tiny_dit_config(cond_width=32) if with_dit else None
        audio_encoder = None
        if with_audio_encoder:
            from .audio_encoder import AudioEncoderConfig

            audio_encoder = {**AudioEncoderConfig.tiny().to_dict(), "llm_hidden": llm["hidden_size"]}
        return cls(
            llm=llm,
            lora_r=4,
            lora_alpha=4,
            n_semantic=4,
            n_residual=2,
            cond_width=32 if dit is None else int(dit.get("joint_attention_dim", 32)),
            fusion_heads=4,
            dit=dit,
            audio_encoder=audio_encoder,
            max_events=6,
            max_reasoning_tokens=24,
            max_caption_tokens=8,
            max_new_tokens=160,
        )


def tiny_dit_config(cond_width: int = 32) -> dict[str, Any]:
    """The DiT's tiny config as a dict, reading ``cond_width``-d condition tokens."""
    from dataclasses import replace

    from .dit import DiTConfig

    return replace(DiTConfig.tiny(), joint_attention_dim=cond_width).to_dict()
