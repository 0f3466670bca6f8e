"""Known model checkpoints, where they come from, and which are already on this machine.

``pull`` is the ONE function in the project that touches the network (``huggingface_hub.snapshot_download``);
everything else loads local folders only. Models live in ``$DUBKIT_MODELS_DIR`` (default ``models/`` in the
project's cache folder, ``audiostory_core.cache``: ``~/.cache/dubkit/models``), one folder per name:
``<models_dir>/<name>/``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import cache_dir
from ..errors import CheckpointError


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable model: hub repo, the files a complete copy has, and what to fetch."""

    name: str
    repo_id: str
    files: tuple[str, ...]  # present in every complete copy (a *.index.json also requires its shards)
    description: str
    allow_patterns: tuple[str, ...] | None = None  # None = the whole repo
    revision: str | None = None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "audiostory-3b", "TencentARC/AudioStory-3B", ("config.yaml", "pytorch_model.bin"),
            "AudioStory-3B: LLM planner (Qwen2.5-3B + LoRA), query bridge and DiT weights (text → long audio); "
            "needs qwen2.5-3b-instruct and flan-t5-large as base models",
        ),
        ModelSpec(
            "tangoflux", "declare-lab/TangoFlux", ("config.json", "tangoflux.safetensors", "vae.safetensors"),
            "TangoFlux DiT + Stable Audio Open VAE (text → audio, up to 30 s, 44.1 kHz stereo)",
            allow_patterns=("config.json", "*.safetensors", "*.md"),
        ),
        ModelSpec(
            "flan-t5-large", "google/flan-t5-large", ("config.json", "model.safetensors", "tokenizer_config.json"),
            "flan-t5-large encoder: caption embeddings and the empty-prompt embedding for guidance",
            allow_patterns=("*.json", "model.safetensors", "spiece.model"),
        ),
        ModelSpec(
            "qwen2.5-3b-instruct", "Qwen/Qwen2.5-3B-Instruct",
            ("config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"),
            "Qwen2.5-3B-Instruct: the base LLM of AudioStory-3B",
            allow_patterns=("*.json", "*.safetensors", "merges.txt", "vocab.json", "LICENSE"),
        ),
        ModelSpec(
            "clip-vit-b-32", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            ("open_clip_config.json", "open_clip_model.safetensors"),
            "open_clip ViT-B-32 (laion2b_s34b_b79k): zero-shot shot tagging for video dubbing",
            allow_patterns=("open_clip_config.json", "open_clip_model.safetensors", "*.md"),
        ),
    )
}


def models_dir() -> Path:
    """``$DUBKIT_MODELS_DIR``, else ``models/`` in the project's cache folder (``$DUBKIT_CACHE_DIR``,
    ``$XDG_CACHE_HOME/dubkit`` or ``~/.cache/dubkit``)."""
    env = os.environ.get("DUBKIT_MODELS_DIR")
    return Path(env).expanduser() if env else cache_dir("models")


def spec(name: str) -> ModelSpec:
    """The registry entry for ``name``, or a CheckpointError listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise CheckpointError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}.") from None


def local_path(name: str) -> Path:
    """Where ``pull(name)`` puts the model by default."""
    return models_dir() / spec(name).name


def missing_files(model: ModelSpec, folder: Path) -> list[str]:
    """Files a complete copy of ``model`` needs that ``folder`` lacks (shards named by an index count too)."""
    missing = [f for f in model.files if not (folder / f).is_file()]
    for index in (f for f in model.files if f.endswith(".index.json") and (folder / f).is_file()):
        try:
            shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
        except (ValueError, KeyError) as exc:
            missing.append(f"{index} (unreadable: {exc})")
            continue
        missing += [s for s in shards if not (folder / s).is_file()]
    return missing


@dataclass
class LocalModel:
    """A folder found under the models dir."""

    name: str
    path: Path
    known: bool
    complete: bool
    missing: list[str] = field(default_factory=list)
    size_bytes: int = 0
    repo_id: str = ""


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def list_local(root: str | os.PathLike | None = None) -> list[LocalModel]:
    """Every model folder under the models dir: known registry names first (complete or not), then others."""
    base = Path(root) if root is not None else models_dir()
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        model = REGISTRY.get(folder.name)
        if model is None:
            found.append(LocalModel(folder.name, folder, known=False, complete=False, size_bytes=_size(folder)))
            continue
        missing = missing_files(model, folder)
        found.append(LocalModel(model.name, folder, known=True, complete=not missing, missing=missing,
                                size_bytes=_size(folder), repo_id=model.repo_id))
    return sorted(found, key=lambda m: (not m.known, m.name))


def pull(name: str, dest: str | os.PathLike | None = None) -> Path:
    """Download model ``name`` into ``dest`` (default ``<models_dir>/<name>``) and check it is complete.

    Resumes partial downloads. Without a network (or with ``HF_HUB_OFFLINE=1``) it raises a CheckpointError
    that says what to do instead.
    """
    model = spec(name)
    target = Path(dest) if dest is not None else local_path(name)
    if target.is_dir() and not missing_files(model, target):
        return target
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub import errors as hf_errors
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers/diffusers
        raise CheckpointError("downloading models needs the huggingface_hub package (pip install huggingface_hub).") from exc

    offline_hint = (
        f"cannot download {name} ({model.repo_id}): no network connection to the Hugging Face Hub"
        + (" (HF_HUB_OFFLINE=1 is set; unset it to download)" if os.environ.get("HF_HUB_OFFLINE") == "1" else "")
        + f". Connect and rerun `dubkit models pull {name}`, or copy {', '.join(model.files)} from "
        f"https://huggingface.co/{model.repo_id} into {target}."
    )
    target.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(
            repo_id=model.repo_id, revision=model.revision, local_dir=str(target),
            allow_patterns=list(model.allow_patterns) if model.allow_patterns else None,
        )
    except (hf_errors.GatedRepoError, hf_errors.RepositoryNotFoundError) as exc:
        raise CheckpointError(
            f"{model.repo_id} is gated or not found on the Hub ({type(exc).__name__}); accept its licence on "
            "huggingface.co and log in with `huggingface-cli login`, then rerun the pull."
        ) from exc
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled, OSError) as exc:
        raise CheckpointError(offline_hint) from exc
    except Exception as exc:  # network stacks (requests/httpx) raise their own connection errors
        if "connect" in type(exc).__name__.lower() or "timeout" in type(exc).__name__.lower():
            raise CheckpointError(offline_hint) from exc
        raise
    missing = missing_files(model, target)
    if missing:
        raise CheckpointError(
            f"downloaded {model.repo_id} into {target} but it lacks {', '.join(missing)}; the repository layout may "
            "have changed — check the files on huggingface.co."
        )
    return target
