"""``AudioStoryModel``: tokenizer + LLM (with LoRA) + query bridge + DiT (+ optional audio prompt encoder).

Saved layout (``save_pretrained`` / ``from_pretrained``)::

    DIR/audiostory.json          {"format": "dubkit-audiostory", "config": AudioStoryConfig, "llm": "peft-lora"|"plain"}
    DIR/tokenizer/               tokenizer (HF fast tokenizer files, AudioStory tokens included)
    DIR/llm/                     the base LLM in Hugging Face format (config.json + model.safetensors), embeddings
                                 already resized; loadable by ``Qwen2ForCausalLM.from_pretrained``
    DIR/llm/adapter/             the LoRA adapter + fully trained norms (peft ``save_pretrained``), when lora_r > 0
    DIR/bridge.safetensors       semantic_proj.*, residual_proj.*, fusion.*
    DIR/dit/                     the DiT (``TangoFluxDiT.save_pretrained``), when the model has one
    DIR/audio_encoder/           the audio prompt encoder (its own save_pretrained), when the model has one

The adapter is kept separate (not merged) so the folder can be fine-tuned further and shows exactly what
AudioStory trained on top of Qwen. The published AudioStory-3B layout is read by ``models.published``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn

from ..device import pick_device_dtype
from ..errors import CheckpointError, PlanError
from . import tokens as T
from .bridge import QueryBridge
from .checkpoint import load_state_checked, read_json, read_safetensors, require_files, save_safetensors
from .config import AudioStoryConfig
from .llm import build_llm, last_hidden_states

if TYPE_CHECKING:
    from .published import LoadReport


FORMAT = "dubkit-audiostory"
CONFIG_FILE = "audiostory.json"


class AudioStoryModel(nn.Module):
    """Everything AudioStory needs to plan (LLM + bridge) and render (DiT) a story, as one module."""

    def __init__(
        self,
        config: AudioStoryConfig,
        tokenizer: Any,
        llm: nn.Module | None = None,
        dit: nn.Module | None = None,
        audio_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.llm = llm if llm is not None else build_llm(config, len(tokenizer))
        self.bridge = QueryBridge(config.hidden_size, config.cond_width, config.fusion_heads, config.feature_scale)
        if dit is None and config.dit is not None:
            dit = _new_dit(config.dit)
        if audio_encoder is None and config.audio_encoder is not None:
            audio_encoder = _new_audio_encoder(config.audio_encoder)
        self.dit, self.audio_encoder = dit, audio_encoder
        if self.dit is not None and self.dit.config.joint_attention_dim != config.cond_width:
            raise CheckpointError(
                f"the DiT reads {self.dit.config.joint_attention_dim}-d condition tokens but the query bridge "
                f"makes {config.cond_width}-d ones; the DiT and the LLM side come from different models"
            )
        if self.audio_encoder is not None and self.audio_encoder.config.llm_hidden != config.hidden_size:
            raise CheckpointError(
                f"the audio encoder produces {self.audio_encoder.config.llm_hidden}-d embeddings but the LLM is "
                f"{config.hidden_size}-d; they come from different models"
            )
        self.token_ids = T.TokenIds.from_tokenizer(tokenizer, config.n_semantic, config.n_residual)
        if len(tokenizer) > self.vocab_size:
            raise CheckpointError(
                f"the tokenizer has {len(tokenizer)} tokens but the LLM embeds only {self.vocab_size}; "
                "tokenizer and weights come from different models"
            )
        self.load_report: LoadReport | None = None

    # ------------------------------------------------------------------------------------------ facts

    @property
    def vocab_size(self) -> int:
        return int(self.llm.get_input_embeddings().weight.shape[0])

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    @property
    def audio_queries(self) -> int:
        """How many placeholder tokens an audio prompt occupies in the LLM input (0 without an encoder)."""
        if self.audio_encoder is None:
            return 0
        return int(getattr(self.audio_encoder, "n_queries"))

    def place(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "AudioStoryModel":
        """Move the whole model (LLM too, not only the DiT) to the device and dtype ``pick_device_dtype`` chooses."""
        device, dtype = pick_device_dtype(device, dtype)
        return self.to(device=device, dtype=dtype)

    # ------------------------------------------------------------------------------------------ compute

    def encode_audio(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor:
        """An audio prompt (channels, samples) → (1, n_queries, llm_hidden) input embeddings."""
        if self.audio_encoder is None:
            raise PlanError("this AudioStory model has no audio encoder; it cannot take an audio prompt")
        emb = self.audio_encoder.encode(audio, sample_rate)
        emb = emb if emb.dim() == 3 else emb[None]
        return emb.to(self.device, self.llm.get_input_embeddings().weight.dtype)

    def input_embeddings(self, input_ids: torch.Tensor, audio: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings, with ``audio`` (k, n, H) spliced in at the ``<video_padding>`` placeholder positions
        (k = the rows that carry placeholders, in row order)."""
        embeds = self.llm.get_input_embeddings()(input_ids)
        if audio is None:
            return embeds
        slots = input_ids == self.token_ids.video_pad
        if int(slots.sum()) != audio.shape[0] * audio.shape[1]:
            raise PlanError(
                f"the prompt has {int(slots.sum())} audio placeholders but the audio encoder gave "
                f"{audio.shape[1]} embeddings"
            )
        embeds = embeds.clone()
        embeds[slots] = audio.reshape(-1, audio.shape[-1]).to(embeds.dtype)
        return embeds

    def hidden_states(
        self, input_ids: torch.Tensor, audio: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Last-layer hidden states (B, T, H) of whole (left-padded) sequences in one forward pass."""
        return last_hidden_states(self.llm, self.input_embeddings(input_ids, audio), attention_mask)

    # ------------------------------------------------------------------------------------------ construction

    @classmethod
    def tiny(
        cls, seed: int = 0, with_dit: bool = True, config: AudioStoryConfig | None = None,
        with_audio_encoder: bool = False,
    ) -> "AudioStoryModel":
        """A random tiny model (offline tokenizer, 2-layer Qwen2, tiny DiT) for tests and smoke runs.

        ``config`` replaces ``AudioStoryConfig.tiny(with_dit)``. LoRA B matrices and the trained norm copies are
        randomised too (peft starts them at identity), so saving/loading bugs that drop the adapter change the
        output and get caught.
        """
        torch.manual_seed(seed)
        tokenizer = T.build_tiny_tokenizer()
        cfg = config or AudioStoryConfig.tiny(with_dit=with_dit, with_audio_encoder=with_audio_encoder)
        cfg.llm["vocab_size"] = len(tokenizer)
        model = cls(cfg, tokenizer)
        with torch.no_grad():
            for name, p in model.llm.named_parameters():
                if "lora_B" in name:
                    p.normal_(0.0, 0.05)
                elif "modules_to_save" in name:
                    p.add_(torch.randn_like(p) * 0.1)
        return model.eval()

    # ------------------------------------------------------------------------------------------ files

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the layout described in the module docstring; returns the folder."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        lora = self.config.lora_r > 0
        meta = {"format": FORMAT, "config": self.config.to_dict(), "llm": "peft-lora" if lora else "plain"}
        (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        self.tokenizer.save_pretrained(str(out / "tokenizer"))
        if lora:
            base = self.llm.get_base_model()
            base.save_pretrained(str(out / "llm"), state_dict=_unwrapped_base_state(self.llm.state_dict()))
            self.llm.save_pretrained(str(out / "llm" / "adapter"))
        else:
            self.llm.save_pretrained(str(out / "llm"))
        save_safetensors(self.bridge, out / "bridge.safetensors", FORMAT)
        if self.dit is not None:
            self.dit.save_pretrained(out / "dit")
        if self.audio_encoder is not None:
            self.audio_encoder.save_pretrained(out / "audio_encoder")
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, dtype: torch.dtype | None = None) -> "AudioStoryModel":
        """Load a folder written by ``save_pretrained``."""
        folder = Path(path)
        meta_file = folder / CONFIG_FILE
        if not meta_file.is_file():
            raise CheckpointError(
                f"{folder} is not an AudioStory model folder ({CONFIG_FILE} is missing); "
                "for the published AudioStory-3B layout use load_published()"
            )
        meta = read_json(meta_file)
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{meta_file} has format {meta.get('format')!r}, expected {FORMAT!r}")
        cfg = AudioStoryConfig.from_dict(meta["config"])
        require_files(folder, ["tokenizer", "llm/config.json", "bridge.safetensors"])
        tokenizer, llm = _load_llm(folder, dtype, adapter=meta.get("llm") == "peft-lora")
        dit = encoder = None
        if cfg.dit is not None:
            from .dit import TangoFluxDiT

            require_files(folder, ["dit"])
            dit = TangoFluxDiT.from_pretrained(folder / "dit")
        if cfg.audio_encoder is not None:
            from .audio_encoder import AudioPromptEncoder

            require_files(folder, ["audio_encoder"])
            encoder = AudioPromptEncoder.from_pretrained(folder / "audio_encoder")
        model = cls(cfg, tokenizer, llm=llm, dit=dit, audio_encoder=encoder)
        bridge_file = folder / "bridge.safetensors"
        load_state_checked(model.bridge, read_safetensors(bridge_file), what="query bridge", files=str(bridge_file))
        if dtype is not None:
            model.to(dtype=dtype)
        return model.eval()


def _new_dit(config: dict) -> nn.Module:
    from .dit import DiTConfig, TangoFluxDiT

    return TangoFluxDiT(DiTConfig.from_dict(config))


def _new_audio_encoder(config: dict) -> nn.Module:
    from .audio_encoder import AudioEncoderConfig, AudioPromptEncoder

    return AudioPromptEncoder(AudioEncoderConfig.from_dict(config))


def _load_llm(folder: Path, dtype: torch.dtype | None, *, adapter: bool) -> tuple[Any, nn.Module]:
    """Tokenizer and LLM of a saved folder, the LoRA adapter applied when there is one; strict about missing
    weights, which transformers only warns about (and leaves random)."""
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        llm, info = Qwen2ForCausalLM.from_pretrained(
            str(folder / "llm"), local_files_only=True, dtype=dtype, output_loading_info=True
        )
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot load the tokenizer/LLM from {folder}: {e}") from e
    tied = {"lm_head.weight"} if llm.config.tie_word_embeddings else set()
    missing = sorted(set(info.get("missing_keys", ())) - tied)
    wrong = sorted(str(k) for k in info.get("mismatched_keys", ()))
    if missing or wrong or info.get("unexpected_keys"):
        raise CheckpointError(
            f"{folder / 'llm'} does not match its config: missing {missing[:4]}, wrong shape {wrong[:4]}, "
            f"unexpected {sorted(info.get('unexpected_keys', ()))[:4]}; save the model again"
        )
    return tokenizer, _load_adapter(llm, folder / "llm" / "adapter") if adapter else llm


def _load_adapter(llm: nn.Module, adapter_dir: Path) -> nn.Module:
    """``llm`` wrapped with the saved LoRA adapter and trained norms, refusing an adapter file that lacks any."""
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors import safe_open

    require_files(adapter_dir, ["adapter_config.json", "adapter_model.safetensors"])
    llm = PeftModel.from_pretrained(llm, str(adapter_dir))
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as f:
        stored = set(f.keys())
    absent = sorted(set(get_peft_model_state_dict(llm)) - stored)
    if absent:
        raise CheckpointError(
            f"{adapter_dir} lacks {len(absent)} LoRA/norm weights (e.g. {absent[:3]}); "
            "the adapter file is incomplete: save the model again"
        )
    return llm


def _unwrapped_base_state(peft_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base model's own weights from a peft-wrapped state dict (HF names; adapters and trained copies
    dropped, frozen originals kept)."""
    out = {}
    for key, value in peft_state.items():
        if "lora_" in key or ".modules_to_save." in key:
            continue
        name = key.removeprefix("base_model.model.").replace(".base_layer.", ".").replace(".original_module.", ".")
        out[name] = value
    return out
