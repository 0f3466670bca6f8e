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
AudioStory trained on top of Qwen. ``load_published`` reads the published AudioStory-3B layout instead.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..device import pick_device_dtype
from ..errors import CheckpointError, PlanError
from . import tokens as T
from .bridge import QueryBridge
from .config import AudioStoryConfig
from .llm import build_llm, last_hidden_states, resize_embeddings


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
            from .dit import DiTConfig, TangoFluxDiT

            dit = TangoFluxDiT(DiTConfig.from_dict(config.dit))
        if dit is not None and dit.config.joint_attention_dim != config.cond_width:
            raise CheckpointError(
                f"the DiT reads {dit.config.joint_attention_dim}-d condition tokens but the query bridge makes "
                f"{config.cond_width}-d ones; the DiT and the LLM side come from different models"
            )
        self.dit = dit
        if audio_encoder is None and config.audio_encoder is not None:
            from .audio_encoder import AudioEncoderConfig, AudioPromptEncoder

            audio_encoder = AudioPromptEncoder(AudioEncoderConfig.from_dict(config.audio_encoder))
        if audio_encoder is not None and audio_encoder.config.llm_hidden != config.hidden_size:
            raise CheckpointError(
                f"the audio encoder produces {audio_encoder.config.llm_hidden}-d embeddings but the LLM is "
                f"{config.hidden_size}-d; they come from different models"
            )
        self.audio_encoder = audio_encoder
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
        """Move to the best device and dtype, chosen once: cuda (bf16) > mps (fp16) > cpu (fp32) unless given."""
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
        from safetensors.torch import save_file

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
        bridge = {k: v.detach().cpu().contiguous() for k, v in self.bridge.state_dict().items()}
        save_file(bridge, str(out / "bridge.safetensors"), metadata={"format": FORMAT})
        if self.dit is not None:
            self.dit.save_pretrained(out / "dit")
        if self.audio_encoder is not None:
            self.audio_encoder.save_pretrained(out / "audio_encoder")
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, dtype: torch.dtype | None = None) -> "AudioStoryModel":
        """Load a folder written by ``save_pretrained``."""
        from transformers import AutoTokenizer, Qwen2ForCausalLM

        folder = Path(path)
        meta_file = folder / CONFIG_FILE
        if not meta_file.is_file():
            raise CheckpointError(
                f"{folder} is not an AudioStory model folder ({CONFIG_FILE} is missing); "
                "for the published AudioStory-3B layout use load_published()"
            )
        meta = _read_json(meta_file)
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{meta_file} has format {meta.get('format')!r}, expected {FORMAT!r}")
        cfg = AudioStoryConfig.from_dict(meta["config"])
        _require(folder, ["tokenizer", "llm/config.json", "bridge.safetensors"])
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
            llm, info = Qwen2ForCausalLM.from_pretrained(
                str(folder / "llm"), local_files_only=True, dtype=dtype, output_loading_info=True
            )
        except (OSError, ValueError) as e:
            raise CheckpointError(f"cannot load the tokenizer/LLM from {folder}: {e}") from e
        # transformers only warns about missing weights (and leaves them random): a damaged folder must fail.
        tied = {"lm_head.weight"} if llm.config.tie_word_embeddings else set()
        missing = sorted(set(info.get("missing_keys", ())) - tied)
        wrong = sorted(str(k) for k in info.get("mismatched_keys", ()))
        if missing or wrong or info.get("unexpected_keys"):
            raise CheckpointError(
                f"{folder / 'llm'} does not match its config: missing {missing[:4]}, wrong shape {wrong[:4]}, "
                f"unexpected {sorted(info.get('unexpected_keys', ()))[:4]}; save the model again"
            )
        if meta.get("llm") == "peft-lora":
            from peft import PeftModel, get_peft_model_state_dict
            from safetensors import safe_open

            _require(folder, ["llm/adapter/adapter_config.json", "llm/adapter/adapter_model.safetensors"])
            llm = PeftModel.from_pretrained(llm, str(folder / "llm" / "adapter"))
            with safe_open(str(folder / "llm" / "adapter" / "adapter_model.safetensors"), "pt") as f:
                stored = set(f.keys())
            absent = sorted(set(get_peft_model_state_dict(llm)) - stored)
            if absent:
                raise CheckpointError(
                    f"{folder / 'llm' / 'adapter'} lacks {len(absent)} LoRA/norm weights (e.g. {absent[:3]}); "
                    "the adapter file is incomplete: save the model again"
                )
        dit = None
        if cfg.dit is not None:
            from .dit import TangoFluxDiT

            _require(folder, ["dit"])
            dit = TangoFluxDiT.from_pretrained(folder / "dit")
        encoder = None
        if cfg.audio_encoder is not None:
            _require(folder, ["audio_encoder"])
            from .audio_encoder import AudioPromptEncoder

            encoder = AudioPromptEncoder.from_pretrained(folder / "audio_encoder")
        model = cls(cfg, tokenizer, llm=llm, dit=dit, audio_encoder=encoder)
        from .published import load_state_checked, read_safetensors

        load_state_checked(
            model.bridge, read_safetensors(folder / "bridge.safetensors"), what="query bridge",
            files=str(folder / "bridge.safetensors"),
        )
        if dtype is not None:
            model.to(dtype=dtype)
        return model.eval()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e


def _require(folder: Path, names: list[str]) -> None:
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise CheckpointError(f"{folder} is incomplete: missing {', '.join(missing)}")


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


# ============================================================================== the published AudioStory-3B layout


@dataclass
class LoadReport:
    """What ``load_published`` did with each checkpoint key."""

    loaded: int = 0
    from_base: list[str] = field(default_factory=list)  # our keys not in the checkpoint, kept from qwen_dir
    ignored: list[str] = field(default_factory=list)  # known published keys with no use here
    unmatched: list[str] = field(default_factory=list)  # published keys no rule maps
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"loaded {self.loaded} tensors; {len(self.from_base)} kept from the base LLM; "
            f"{len(self.ignored)} ignored; {len(self.unmatched)} unmatched"
            + (f" ({', '.join(self.unmatched[:5])}{' …' if len(self.unmatched) > 5 else ''})" if self.unmatched else "")
        )


# Published module tree (AudioStory_unified: seedx = AudioStory_llm wrapping a peft-0.4 PeftModelForCausalLM,
# multihead_attention, tangoflux) → our module tree. First matching prefix wins.
PUBLISHED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("seedx.llm.base_model.model.", "llm.base_model.model."),
    ("seedx.llm.model.", "llm.base_model.model.model."),  # the published loader's rename of un-wrapped names
    ("seedx.projector.", "bridge.semantic_proj."),
    ("seedx.audio_projector.", "bridge.residual_proj."),
    ("multihead_attention.", "bridge.fusion."),
)
# Published sub-modules the text → audio path never uses (image resamplers from SEED-X; the Whisper resampler of
# the unreleased continuation path).
PUBLISHED_IGNORED = (
    "seedx.input_resampler.",
    "seedx.output_resampler.",
    "seedx.whisper_resampler_llava.",
    "seedx.patch_pos_embed",
)
PUBLISHED_DIT_PREFIX = "tangoflux."
# Our keys that must come from the checkpoint (everything AudioStory trained); other LLM weights may come from
# the base Qwen folder.
_TRAINED = re.compile(r"lora_[AB]\.|modules_to_save\.|embed_tokens\.|lm_head\.|^bridge\.")
# peft ≥ 0.6 moved a LoRA-wrapped layer's own weights under ``base_layer``; peft 0.4 (published) did not.
_LORA_BASE = re.compile(r"\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.(weight|bias)$")


def map_published_key(key: str, ours: Mapping[str, Any]) -> str | None:
    """Our state-dict key for a published key, or None."""
    for theirs, mine in PUBLISHED_PREFIXES:
        if key.startswith(theirs):
            name = mine + key[len(theirs) :]
            if name in ours:
                return name
            moved = _LORA_BASE.sub(lambda m: f".{m.group(1)}.base_layer.{m.group(2)}", name)
            return moved if moved in ours else None
    return None


def to_published_state(model: AudioStoryModel) -> dict[str, torch.Tensor]:
    """``pytorch_model.bin`` contents under the published key names (peft-0.4 LLM naming; the DiT under
    ``tangoflux.`` with TangoFlux's names, its VAE left out as the published DiT folder holds it) — the inverse
    of the mapping table, for exporting to other AudioStory code and for tests."""
    from .published import TANGOFLUX_RENAMES

    state: dict[str, torch.Tensor] = {}
    inverse = [(mine, theirs) for theirs, mine in PUBLISHED_PREFIXES if theirs != "seedx.llm.model."]
    for key, value in model.state_dict().items():
        value = value.detach().clone()
        if key.startswith("dit."):
            name = key[len("dit.") :]
            if not name.startswith("vae.") and name != "null_tokens":
                state[PUBLISHED_DIT_PREFIX + TANGOFLUX_RENAMES.get(name, name)] = value
            continue
        for mine, theirs in inverse:
            if key.startswith(mine):
                state[theirs + key[len(mine) :].replace(".base_layer.", ".")] = value
                break
    return state


def _yaml_get(data: Any, *path: Any) -> Any:
    for p in path:
        if isinstance(p, int):
            if not isinstance(data, list) or len(data) <= p:
                return None
        elif not isinstance(data, dict) or p not in data:
            return None
        data = data[p]
    return data


def read_published_config(path: Path) -> dict[str, Any]:
    """The fields we need from the published Hydra ``config.yaml``, read as plain data (nothing instantiated)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CheckpointError(f"cannot read {path} as YAML: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a mapping; expected the AudioStory Hydra config")
    pipe = _yaml_get(data, "train_dataset", "datapipes", 0) or {}
    peft_cfg = _yaml_get(data, "llm_model", "peft_config") or {}
    out: dict[str, Any] = {}
    for ours, value in (
        ("n_semantic", pipe.get("num_t5_out_tokens") if isinstance(pipe, dict) else None),
        ("n_residual", pipe.get("num_aud_out_tokens") if isinstance(pipe, dict) else None),
        ("lora_r", peft_cfg.get("r")),
        ("lora_alpha", peft_cfg.get("lora_alpha")),
        ("lora_dropout", peft_cfg.get("lora_dropout")),
        ("feature_scale", _yaml_get(data, "agent_model", "t5_feature_scale")),
        ("vocab_size", _yaml_get(data, "llm_model", "vocab_size")),
    ):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[ours] = value
    targets = peft_cfg.get("target_modules")
    if isinstance(targets, list) and targets:
        out["lora_targets"] = tuple(str(t).strip() for t in targets)
    saved = peft_cfg.get("modules_to_save")
    if isinstance(saved, list):
        out["lora_full_trained"] = tuple(str(t).strip() for t in saved)
    if "n_semantic" not in out or "n_residual" not in out:
        raise CheckpointError(
            f"{path} does not say how many query tokens the model emits "
            "(train_dataset.datapipes[0].num_t5_out_tokens / num_aud_out_tokens); is it AudioStory's config.yaml?"
        )
    return out


def load_published(
    model_dir: str | os.PathLike,
    dit_dir: str | os.PathLike,
    qwen_dir: str | os.PathLike,
    t5_dir: str | os.PathLike | None = None,
    *,
    dtype: torch.dtype | None = None,
    vae_config: dict | None = None,
) -> AudioStoryModel:
    """Load the published AudioStory-3B: ``model_dir`` (config.yaml + pytorch_model.bin), the DiT folder
    (config.json + model.safetensors, VAE inside), a local Qwen2.5-3B-Instruct folder (config, tokenizer, base
    weights) and optionally a flan-t5-large folder (the empty-prompt embedding for classifier-free guidance).

    Every checkpoint key goes through ``PUBLISHED_PREFIXES``; ``model.load_report`` lists what was loaded,
    ignored or unmatched. Missing files, missing trained weights and shape mismatches raise CheckpointError.
    ``vae_config`` overrides the Oobleck VAE's constructor kwargs (the published one is the default VAE).
    """
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    model_dir, dit_dir, qwen_dir = Path(model_dir), Path(dit_dir), Path(qwen_dir)
    need = [model_dir / "config.yaml", model_dir / "pytorch_model.bin", dit_dir / "config.json", qwen_dir / "config.json"]
    missing = [str(p) for p in need if not p.is_file()]
    if missing:
        raise CheckpointError(f"the published AudioStory layout is incomplete: missing {', '.join(missing)}")
    fields = read_published_config(model_dir / "config.yaml")
    state = _load_weights_only(model_dir / "pytorch_model.bin")
    if not isinstance(state, dict):
        raise CheckpointError(f"{model_dir / 'pytorch_model.bin'} does not hold a state dict")
    if "module" in state and isinstance(state["module"], dict):  # DeepSpeed wraps the state dict
        state = state["module"]

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(qwen_dir), local_files_only=True)
        base = Qwen2ForCausalLM.from_pretrained(str(qwen_dir), local_files_only=True, dtype=dtype)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot load Qwen (tokenizer + weights) from {qwen_dir}: {e}") from e
    T.add_audiostory_tokens(tokenizer)
    embed_key = next((k for k in state if k.endswith("embed_tokens.weight")), None)
    if embed_key is None:
        raise CheckpointError(f"{model_dir / 'pytorch_model.bin'} has no embed_tokens.weight; not an AudioStory LLM")
    rows = int(state[embed_key].shape[0])
    if len(tokenizer) != rows:
        raise CheckpointError(
            f"the tokenizer from {qwen_dir} has {len(tokenizer)} tokens with AudioStory's 612 added, but the "
            f"checkpoint embeds {rows}; use the Qwen2.5-3B-Instruct release the model was trained from"
        )
    proj_key = "seedx.projector.2.weight"
    width = int(state[proj_key].shape[0]) if proj_key in state else 1024

    llm_cfg = {k: v for k, v in base.config.to_dict().items() if k in _QWEN_FIELDS}
    llm_cfg["vocab_size"] = rows
    cfg = AudioStoryConfig(llm=llm_cfg, cond_width=width, **{k: v for k, v in fields.items() if k != "vocab_size"})
    resize_embeddings(base, rows)
    llm = build_llm(cfg, rows, base=base)

    from .dit import load_tangoflux_folder

    dit_state = {k: v for k, v in state.items() if k.startswith(PUBLISHED_DIT_PREFIX)}
    dit = load_tangoflux_folder(dit_dir, dit_state=dit_state or None, vae_config=vae_config)
    cfg.dit = dit.config.to_dict()
    if t5_dir is not None:
        from .dit import T5TextEncoder

        t5 = T5TextEncoder.from_pretrained(t5_dir)
        dit.set_null_tokens(t5.null(dit.config.null_tokens), source="t5")

    model = AudioStoryModel(cfg, tokenizer, llm=llm, dit=dit)
    report = apply_published_state(model, {k: v for k, v in state.items() if not k.startswith(PUBLISHED_DIT_PREFIX)},
                                   source=str(model_dir / "pytorch_model.bin"))
    if t5_dir is None:
        report.notes.append("no flan-t5 folder given: classifier-free guidance uses zero null tokens")
    model.load_report = report
    if dtype is not None:
        model.to(dtype=dtype)
    return model.eval()


def _load_weights_only(path: Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers; memory-mapped when the file allows it (a 3B
    checkpoint then pages in as it is copied into the model instead of being held twice)."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as e:  # pickle/zip errors of all kinds
        raise CheckpointError(f"cannot read {path} (weights only): {e}") from e


_QWEN_FIELDS = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_parameters", "tie_word_embeddings",
    "hidden_act", "use_sliding_window", "sliding_window", "max_window_layers", "attention_dropout",
)


def apply_published_state(model: AudioStoryModel, state: Mapping[str, torch.Tensor], *, source: str) -> LoadReport:
    """Load published LLM/bridge/fusion weights into ``model`` by the mapping table; strict about what was
    trained (LoRA, norms, embeddings, bridge), lenient about frozen base weights (kept from the base folder)."""
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith(("dit.", "audio_encoder."))}
    report = LoadReport()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(PUBLISHED_IGNORED) or key.endswith("rotary_emb.inv_freq"):
            report.ignored.append(key)
            continue
        name = map_published_key(key, ours)
        if name is None:
            report.unmatched.append(key)
        else:
            mapped[name] = value
    tied = bool(model.llm.config.tie_word_embeddings)
    missing_trained = [
        k for k in ours if k not in mapped and _TRAINED.search(k) and not (tied and k.endswith("lm_head.weight"))
    ]
    mismatched = [
        f"{k} {tuple(v.shape)} (expected {tuple(ours[k].shape)})" for k, v in mapped.items() if v.shape != ours[k].shape
    ]
    problems = []
    if missing_trained:
        problems.append(f"{len(missing_trained)} trained weight(s) missing: {_first(missing_trained)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_first(mismatched, 3)}")
    if report.unmatched:
        problems.append(f"{len(report.unmatched)} key(s) match no module: {_first(report.unmatched)}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit the AudioStory model its config.yaml describes: " + "; ".join(problems)
            + ". Check that config.yaml, pytorch_model.bin and the Qwen folder belong to the same release."
        )
    model.load_state_dict(mapped, strict=False)
    report.loaded = len(mapped)
    report.from_base = sorted(k for k in ours if k not in mapped and not (tied and k.endswith("lm_head.weight")))
    return report


def _first(keys: list[str], n: int = 5) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" … (+{len(keys) - n} more)" if len(keys) > n else "")


# ============================================================================== one entry point for --model DIR


def is_published_layout(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / "config.yaml").is_file() and (p / "pytorch_model.bin").is_file()


def load_model(
    path: str | os.PathLike,
    *,
    dit_dir: str | os.PathLike | None = None,
    qwen_dir: str | os.PathLike | None = None,
    t5_dir: str | os.PathLike | None = None,
    dtype: torch.dtype | None = None,
    vae_config: dict | None = None,
) -> AudioStoryModel:
    """Load ``path`` whichever layout it has: our own (``audiostory.json``) or the published AudioStory-3B one
    (``config.yaml`` + ``pytorch_model.bin``). For the published layout the DiT, Qwen and flan-t5 folders are
    taken from the arguments, else looked for inside ``path`` (dit/, qwen/, t5/), next to it (the published
    script's ckpt/ names: Flux_detokenizer, Qwen2.5-3B-Instruct, flan-t5-large) and in the models folder
    ``dubkit models pull`` fills (tangoflux, qwen2.5-3b-instruct, flan-t5-large)."""
    p = Path(path)
    if not p.is_dir():
        raise CheckpointError(f"model folder {p} does not exist")
    if (p / CONFIG_FILE).is_file():
        return AudioStoryModel.from_pretrained(p, dtype=dtype)
    if not is_published_layout(p):
        raise CheckpointError(
            f"{p} is neither an AudioStory model folder ({CONFIG_FILE}) nor the published AudioStory-3B layout "
            "(config.yaml + pytorch_model.bin)"
        )

    def find(given, names: tuple[str, ...], what: str, required: bool = True) -> Path | None:
        if given is not None:
            return Path(given)
        from .hub import models_dir

        roots = [p, p.parent, models_dir()]
        for candidate in [root / n for root in roots for n in names]:
            if (candidate / "config.json").is_file():
                return candidate
        if required:
            raise CheckpointError(
                f"cannot find the {what} folder for {p}; pass it explicitly (looked for {', '.join(names)} "
                f"inside and next to {p})"
            )
        return None

    dit = find(dit_dir, ("dit", "Flux_detokenizer", "tangoflux"), "DiT")
    qwen = find(qwen_dir, ("qwen", "Qwen2.5-3B-Instruct", "qwen2.5-3b-instruct"), "Qwen2.5-3B-Instruct")
    t5 = find(t5_dir, ("t5", "flan-t5-large"), "flan-t5-large", required=False)
    return load_published(p, dit, qwen, t5, dtype=dtype, vae_config=vae_config)
