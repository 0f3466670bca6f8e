"""Published checkpoints → our modules, and which model a folder holds.

Two published layouts are read, every key mapped by an explicit table so a wrong or partial checkpoint fails
with a message that names the keys instead of silently loading random weights:

- TangoFlux / AudioStory DiT folders (``load_tangoflux_folder``): the published files name things differently
  from our modules (``fc`` for the pooled projection, the misspelled ``duration_emebdder``, the VAE keys
  without any prefix).
- The AudioStory-3B release (``load_published``): ``config.yaml`` (Hydra, read as plain data) +
  ``pytorch_model.bin`` (read weights-only) holding the LoRA-tuned Qwen, the query bridge and the DiT, next to
  base Qwen2.5-3B-Instruct, flan-t5-large and DiT folders.

``detect_layout`` is the one place that tells model folders apart; ``load_model`` is the one entry point for
an AudioStory ``--model DIR`` whichever layout it has.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import torch

from ..errors import CheckpointError
from . import tokens as T
from .audiostory import CONFIG_FILE, AudioStoryModel
from .checkpoint import check_state, first, load_state_checked, read_safetensors
from .config import AudioStoryConfig
from .dit import CONFIG_NAME, WEIGHTS_NAME, DiTConfig, T5TextEncoder, TangoFluxDiT, read_dit_config
from .llm import build_llm, resize_embeddings

Layout = Literal["dubkit-audiostory", "published-audiostory", "dit"]


def detect_layout(path: str | os.PathLike) -> Layout | None:
    """Which model ``path`` holds, from its file names alone: our AudioStory format (``audiostory.json``), the
    published AudioStory-3B (``config.yaml`` + ``pytorch_model.bin``), a DiT (``config.json``: ours or
    TangoFlux's, ``TangoFluxDiT.from_pretrained`` reads both), or None."""
    p = Path(path)
    if (p / CONFIG_FILE).is_file():
        return "dubkit-audiostory"
    if (p / "config.yaml").is_file() and (p / "pytorch_model.bin").is_file():
        return "published-audiostory"
    if (p / CONFIG_NAME).is_file():
        return "dit"
    return None


# ============================================================================== the TangoFlux DiT


# Our parameter name (inside TangoFluxDiT)  <-  the published TangoFlux name (no "transformer." prefix here).
TANGOFLUX_RENAMES: dict[str, str] = {
    "pooled_proj.weight": "fc.0.weight",
    "pooled_proj.bias": "fc.0.bias",
    "duration_embedder.freqs": "duration_emebdder.time_positional_embedding.0.weights",
    "duration_embedder.proj.weight": "duration_emebdder.time_positional_embedding.1.weight",
    "duration_embedder.proj.bias": "duration_emebdder.time_positional_embedding.1.bias",
}
# Published prefixes that belong to the DiT; "transformer." keys keep their names (both sides use diffusers).
# Published prefixes we know and deliberately do not load: the flan-t5 encoder TangoFlux carried inside its
# module (we load T5 separately, only when a caller wants caption conditioning) and DPO's reference copy.
IGNORED_PREFIXES = ("text_encoder.", "ref_transformer.")
# The Oobleck VAE's top-level modules; in the published DiT folder they appear without any prefix.
VAE_PREFIXES = ("encoder.", "decoder.")
# Where AudioStory keeps the DiT inside its whole-model state dict (``pytorch_model.bin``).
DIT_PREFIX = "tangoflux."

# Fields of the published DiT config.json and the DiTConfig field each one sets.
TANGOFLUX_CONFIG_FIELDS: dict[str, str] = {
    "num_layers": "num_layers",
    "num_single_layers": "num_single_layers",
    "in_channels": "in_channels",
    "attention_head_dim": "attention_head_dim",
    "joint_attention_dim": "joint_attention_dim",
    "num_attention_heads": "num_attention_heads",
    "max_duration": "max_duration",
}


def split_published_state(state: Mapping[str, torch.Tensor]) -> tuple[dict, dict, list[str]]:
    """Split one published state dict into (DiT weights under our names, VAE weights, unknown keys).

    Accepts keys with or without AudioStory's ``tangoflux.`` prefix and with or without a ``vae.`` prefix on
    the VAE weights, so the same function serves the DiT folder, TangoFlux's own files and the sub-dict the
    AudioStory whole-model loader hands over.
    """
    ours = {v: k for k, v in TANGOFLUX_RENAMES.items()}
    dit: dict[str, torch.Tensor] = {}
    vae: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        name = key.removeprefix(DIT_PREFIX)
        if name.startswith("vae."):
            vae[name[len("vae."):]] = value
        elif name.startswith(VAE_PREFIXES):
            vae[name] = value
        elif name.startswith("transformer."):
            dit[name] = value
        elif name in ours:
            dit[ours[name]] = value
        elif name.startswith(IGNORED_PREFIXES):
            continue
        else:
            unknown.append(key)
    return dit, vae, unknown


def rope_axes(head_dim: int) -> tuple[int, int, int]:
    """Three even RoPE axes summing to the head width: (16, 56, 56) for Flux's 128, other widths alike."""
    first_axis = max(2, (head_dim // 8) // 2 * 2)
    rest = head_dim - first_axis
    second = rest // 2 // 2 * 2
    return (first_axis, second, rest - second)


def tangoflux_config(meta: Mapping[str, Any], folder: Path, vae_config: dict | None = None) -> DiTConfig:
    """A ``DiTConfig`` from a published DiT ``config.json`` (the fields in ``TANGOFLUX_CONFIG_FIELDS``)."""
    missing_fields = [k for k in TANGOFLUX_CONFIG_FIELDS if k not in meta]
    if "num_layers" not in meta or "joint_attention_dim" not in meta:
        raise CheckpointError(
            f"{folder / CONFIG_NAME} is neither a dubkit DiT config nor a TangoFlux config "
            f"(expected fields {sorted(TANGOFLUX_CONFIG_FIELDS)}; missing {missing_fields})."
        )
    values = {ours: meta[theirs] for theirs, ours in TANGOFLUX_CONFIG_FIELDS.items() if theirs in meta}
    rope = rope_axes(int(values.get("attention_head_dim", 128)))  # (16, 56, 56) for the published 128-wide heads
    vae_kwargs = dict(vae_config or {})
    if vae_config is not None:
        vae_kwargs.setdefault("decoder_input_channels", int(values.get("in_channels", 64)))
    return DiTConfig(**values, axes_dims_rope=rope, vae=vae_kwargs)


def _tangoflux_weights(folder: Path) -> tuple[dict, dict, list[str], str]:
    """(DiT part, VAE part, unknown keys, the files read) of a published DiT folder."""
    if (folder / "tangoflux.safetensors").is_file():  # TangoFlux's own release
        dit_file, vae_file = folder / "tangoflux.safetensors", folder / "vae.safetensors"
        dit_part, _, unknown_a = split_published_state(read_safetensors(dit_file))
        _, vae_part, unknown_b = split_published_state({"vae." + k: v for k, v in read_safetensors(vae_file).items()})
        return dit_part, vae_part, unknown_a + unknown_b, f"{dit_file.name} + {vae_file.name} in {folder}"
    weights_file = folder / WEIGHTS_NAME
    dit_part, vae_part, unknown = split_published_state(read_safetensors(weights_file))
    return dit_part, vae_part, unknown, str(weights_file)


def load_tangoflux_folder(
    path: str | os.PathLike, *, dit_state: dict[str, torch.Tensor] | None = None, vae_config: dict | None = None,
) -> TangoFluxDiT:
    """Load the published DiT layout into a ``TangoFluxDiT``.

    Layouts understood:
    - AudioStory's ``<dit_dir>``: ``config.json`` (TangoFlux fields) + ``model.safetensors``. The VAE weights
      sit in that file under their plain Oobleck names and go into a default-constructed
      ``AutoencoderOobleck``. If the file also holds the DiT (``transformer.*``, ``fc.*``,
      ``duration_emebdder.*``, optionally prefixed ``tangoflux.``) it is loaded from there; AudioStory-3B keeps
      the DiT inside its whole-model ``pytorch_model.bin`` instead, and its loader passes that sub-dict as
      ``dit_state``.
    - TangoFlux's own release: ``config.json`` + ``tangoflux.safetensors`` + ``vae.safetensors``.

    ``vae_config`` overrides the VAE's constructor kwargs (tests use a tiny VAE). Missing files, missing or
    unexpected keys and wrong shapes raise ``CheckpointError`` naming the file and keys.
    """
    folder = Path(path)
    config = tangoflux_config(read_dit_config(folder), folder, vae_config)
    dit_part, vae_part, unknown, files = _tangoflux_weights(folder)
    if dit_state is not None:
        extra_dit, extra_vae, extra_unknown = split_published_state(dit_state)
        dit_part.update(extra_dit)
        unknown += extra_unknown + [f"vae weight {k} in dit_state" for k in extra_vae]
        files += " + the given DiT state dict"
    if unknown:
        raise CheckpointError(
            f"{files} holds {len(unknown)} key(s) that belong to neither the TangoFlux DiT nor the Oobleck VAE: "
            f"{first(unknown)}."
        )
    if not vae_part:
        raise CheckpointError(f"{files} holds no VAE weights (expected Oobleck keys such as encoder.conv1.weight_v).")
    if not dit_part:
        raise CheckpointError(
            f"{files} holds only the VAE; the DiT weights (transformer.*, fc.*, duration_emebdder.*) are missing. "
            "AudioStory-3B keeps them in <model_dir>/pytorch_model.bin: load the whole model (AudioStoryModel), "
            "or pass its 'tangoflux.*' entries as dit_state."
        )
    model = TangoFluxDiT(config)
    load_state_checked(model.vae, vae_part, what="Oobleck VAE", files=files)
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("vae.") and k != "null_tokens"}
    check_state(own, dit_part, what="TangoFlux DiT", files=files)
    model.load_state_dict(dit_part, strict=False)
    return model.eval()


# ============================================================================== the AudioStory-3B release


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
# Our keys that must come from the checkpoint (everything AudioStory trained); other LLM weights may come from
# the base Qwen folder.
_TRAINED = re.compile(r"lora_[AB]\.|modules_to_save\.|embed_tokens\.|lm_head\.|^bridge\.")
# peft ≥ 0.6 moved a LoRA-wrapped layer's own weights under ``base_layer``; peft 0.4 (published) did not.
_LORA_BASE = re.compile(r"\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.(weight|bias)$")
# The Qwen2 config fields an AudioStoryConfig keeps from the base model's config.json.
_QWEN_FIELDS = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_parameters", "tie_word_embeddings",
    "hidden_act", "use_sliding_window", "sliding_window", "max_window_layers", "attention_dropout",
)


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
    state: dict[str, torch.Tensor] = {}
    inverse = [(mine, theirs) for theirs, mine in PUBLISHED_PREFIXES if theirs != "seedx.llm.model."]
    for key, value in model.state_dict().items():
        value = value.detach().clone()
        if key.startswith("dit."):
            name = key[len("dit.") :]
            if not name.startswith("vae.") and name != "null_tokens":
                state[DIT_PREFIX + TANGOFLUX_RENAMES.get(name, name)] = value
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


def _read_published_state(path: Path) -> dict[str, torch.Tensor]:
    """The whole-model state dict of ``pytorch_model.bin`` (DeepSpeed's ``module`` wrapper removed)."""
    state = _load_weights_only(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    if "module" in state and isinstance(state["module"], dict):  # DeepSpeed wraps the state dict
        state = state["module"]
    return state


def _load_qwen(qwen_dir: Path, rows: int, dtype: torch.dtype | None) -> tuple[Any, torch.nn.Module]:
    """The base tokenizer (AudioStory's tokens added) and LLM from ``qwen_dir``, checked against the ``rows``
    of the checkpoint's embedding table."""
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(qwen_dir), local_files_only=True)
        base = Qwen2ForCausalLM.from_pretrained(str(qwen_dir), local_files_only=True, dtype=dtype)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot load Qwen (tokenizer + weights) from {qwen_dir}: {e}") from e
    T.add_audiostory_tokens(tokenizer)
    if len(tokenizer) != rows:
        raise CheckpointError(
            f"the tokenizer from {qwen_dir} has {len(tokenizer)} tokens with AudioStory's 612 added, but the "
            f"checkpoint embeds {rows}; use the Qwen2.5-3B-Instruct release the model was trained from"
        )
    return tokenizer, base


def _published_dit(
    dit_dir: Path, state: Mapping[str, torch.Tensor], t5_dir: Path | None, vae_config: dict | None
) -> TangoFluxDiT:
    """The DiT: config and VAE from ``dit_dir``, weights from the whole-model state, null tokens from flan-t5."""
    dit_state = {k: v for k, v in state.items() if k.startswith(DIT_PREFIX)}
    dit = load_tangoflux_folder(dit_dir, dit_state=dit_state or None, vae_config=vae_config)
    if t5_dir is not None:
        t5 = T5TextEncoder.from_pretrained(t5_dir)
        dit.set_null_tokens(t5.null(dit.config.null_tokens), source="t5")
    return dit


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
    model_dir, dit_dir, qwen_dir = Path(model_dir), Path(dit_dir), Path(qwen_dir)
    weights = model_dir / "pytorch_model.bin"
    need = [model_dir / "config.yaml", weights, dit_dir / "config.json", qwen_dir / "config.json"]
    missing = [str(p) for p in need if not p.is_file()]
    if missing:
        raise CheckpointError(f"the published AudioStory layout is incomplete: missing {', '.join(missing)}")
    fields = read_published_config(model_dir / "config.yaml")
    state = _read_published_state(weights)
    embed_key = next((k for k in state if k.endswith("embed_tokens.weight")), None)
    if embed_key is None:
        raise CheckpointError(f"{weights} has no embed_tokens.weight; not an AudioStory LLM")
    rows = int(state[embed_key].shape[0])
    tokenizer, base = _load_qwen(qwen_dir, rows, dtype)

    proj_key = "seedx.projector.2.weight"
    width = int(state[proj_key].shape[0]) if proj_key in state else 1024
    llm_cfg = {k: v for k, v in base.config.to_dict().items() if k in _QWEN_FIELDS}
    llm_cfg["vocab_size"] = rows
    cfg = AudioStoryConfig(llm=llm_cfg, cond_width=width, **{k: v for k, v in fields.items() if k != "vocab_size"})
    resize_embeddings(base, rows)
    llm = build_llm(cfg, rows, base=base)
    dit = _published_dit(dit_dir, state, Path(t5_dir) if t5_dir is not None else None, vae_config)
    cfg.dit = dit.config.to_dict()

    model = AudioStoryModel(cfg, tokenizer, llm=llm, dit=dit)
    llm_state = {k: v for k, v in state.items() if not k.startswith(DIT_PREFIX)}
    report = apply_published_state(model, llm_state, source=str(weights))
    if t5_dir is None:
        report.notes.append("no flan-t5 folder given: classifier-free guidance uses zero null tokens")
    model.load_report = report
    if dtype is not None:
        model.to(dtype=dtype)
    return model.eval()


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
        problems.append(f"{len(missing_trained)} trained weight(s) missing: {first(missing_trained)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {first(mismatched, 3)}")
    if report.unmatched:
        problems.append(f"{len(report.unmatched)} key(s) match no module: {first(report.unmatched)}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit the AudioStory model its config.yaml describes: " + "; ".join(problems)
            + ". Check that config.yaml, pytorch_model.bin and the Qwen folder belong to the same release."
        )
    model.load_state_dict(mapped, strict=False)
    report.loaded = len(mapped)
    report.from_base = sorted(k for k in ours if k not in mapped and not (tied and k.endswith("lm_head.weight")))
    return report


# ============================================================================== one entry point for --model DIR


def _find_folder(
    model: Path, given: str | os.PathLike | None, names: tuple[str, ...], what: str, required: bool = True,
) -> Path | None:
    """``given``, else the first of ``names`` holding a config.json inside ``model``, next to it or in the
    models folder ``dubkit models pull`` fills."""
    if given is not None:
        return Path(given)
    from .hub import models_dir

    for candidate in [root / n for root in (model, model.parent, models_dir()) for n in names]:
        if (candidate / "config.json").is_file():
            return candidate
    if required:
        raise CheckpointError(
            f"cannot find the {what} folder for {model}; pass it explicitly (looked for {', '.join(names)} "
            f"inside and next to {model})"
        )
    return None


def load_model(
    path: str | os.PathLike,
    *,
    dit_dir: str | os.PathLike | None = None,
    qwen_dir: str | os.PathLike | None = None,
    t5_dir: str | os.PathLike | None = None,
    dtype: torch.dtype | None = None,
    vae_config: dict | None = None,
) -> AudioStoryModel:
    """Load ``path`` whichever AudioStory layout it has: our own (``audiostory.json``) or the published
    AudioStory-3B one (``config.yaml`` + ``pytorch_model.bin``). For the published layout the DiT, Qwen and
    flan-t5 folders are taken from the arguments, else looked for inside ``path`` (dit/, qwen/, t5/), next to
    it (the published script's ckpt/ names: Flux_detokenizer, Qwen2.5-3B-Instruct, flan-t5-large) and in the
    models folder ``dubkit models pull`` fills (tangoflux, qwen2.5-3b-instruct, flan-t5-large)."""
    p = Path(path)
    if not p.is_dir():
        raise CheckpointError(f"model folder {p} does not exist")
    layout = detect_layout(p)
    if layout == "dubkit-audiostory":
        return AudioStoryModel.from_pretrained(p, dtype=dtype)
    if layout != "published-audiostory":
        raise CheckpointError(
            f"{p} is neither an AudioStory model folder ({CONFIG_FILE}) nor the published AudioStory-3B layout "
            "(config.yaml + pytorch_model.bin)"
        )
    dit = _find_folder(p, dit_dir, ("dit", "Flux_detokenizer", "tangoflux"), "DiT")
    qwen = _find_folder(p, qwen_dir, ("qwen", "Qwen2.5-3B-Instruct", "qwen2.5-3b-instruct"), "Qwen2.5-3B-Instruct")
    t5 = _find_folder(p, t5_dir, ("t5", "flan-t5-large"), "flan-t5-large", required=False)
    return load_published(p, dit, qwen, t5, dtype=dtype, vae_config=vae_config)
