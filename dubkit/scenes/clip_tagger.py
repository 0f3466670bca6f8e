"""Zero-shot tagging of a shot's keyframes with open_clip against a sound vocabulary.

Why zero-shot tags rather than captions: a sound designer needs *what makes noise* (a car, rain, a slam), which
a fixed vocabulary of sound sources names directly, and a contrastive model scores cheaply: the vocabulary's text
embeddings are computed once per tagger (and kept on disk for the next run), then each shot costs one batched
image forward.

Weights never download here. ``pretrained`` is a local file/folder, or an open_clip tag whose weights are already
on this machine (in dubkit's models folder, where ``dubkit models pull clip-vit-b-32`` puts them, or in the
Hugging Face / open_clip cache); anything else fails at once with a CheckpointError.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from audiostory_core import cache
from audiostory_core.device import pick_device_dtype
from audiostory_core.errors import CheckpointError
from audiostory_core.request import Scene

from ..video.types import Shot, ShotFrames
from .combined import CombinedCaptioner  # noqa: F401  (its old home: imports of it from here keep working)
from .vocabulary import DEFAULT_VOCABULARY, GROUPS, Vocabulary

DEFAULT_TAGS = {"ViT-B-32": "laion2b_s34b_b79k"}  # the tag `dubkit models pull` fetches for the default model
PULLED = {("ViT-B-32", "laion2b_s34b_b79k"): "clip-vit-b-32"}  # (model, tag) -> `dubkit models pull` name
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
_FOLDER_WEIGHTS = (  # open_clip's hub layout first, then any file with a weight suffix
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "model.safetensors", "pytorch_model.bin",
)
PULL_HINT = "run `dubkit models pull clip-vit-b-32` (the only command that downloads) or pass a local weights file"


# ---------------------------------------------------------------------------------------------------------------
# Resolving what to build and which weights to load, without touching the network.


def _resolve_architecture(model_name: str | Path) -> tuple[str, Path | None]:
    """The name open_clip's factory understands, and the model folder when the config came from one."""
    import open_clip

    path = Path(model_name)
    if path.is_dir():
        if not (path / "open_clip_config.json").is_file():
            raise CheckpointError(f"{path} has no open_clip_config.json; give a model folder, a model config JSON "
                                  f"or a built-in name such as ViT-B-32")
        return f"local-dir:{path.resolve()}", path
    if path.suffix == ".json":
        if not path.is_file():
            raise CheckpointError(f"model config not found: {path}")
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"model config {path} is not valid JSON: {e}") from e
        if isinstance(cfg, dict) and "model_cfg" in cfg and path.name == "open_clip_config.json":
            return f"local-dir:{path.parent.resolve()}", path.parent
        if not (isinstance(cfg, dict) and all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg"))):
            raise CheckpointError(f"model config {path} must be an open_clip model config with embed_dim, "
                                  f"vision_cfg and text_cfg")
        if open_clip.get_model_config(path.stem) != cfg:
            open_clip.add_model_config(path)  # registers it under the file's stem (once per content)
        return path.stem, None
    name = str(model_name)
    if name not in open_clip.list_models():
        raise CheckpointError(f"unknown open_clip model {name!r}: give a built-in name (e.g. ViT-B-32, "
                              f"ViT-B-16), a model config JSON or a model folder")
    return name, None


def _weights_in_folder(folder: Path) -> Path:
    for name in _FOLDER_WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not found:
        raise CheckpointError(f"no weights file ({', '.join(WEIGHT_SUFFIXES)}) in {folder}; {PULL_HINT}")
    return found[0]


def cached_pretrained(model_name: str, tag: str, cache_dir: str | Path | None = None) -> Path | None:
    """Where the weights of an open_clip pretrained tag lie in the local cache, or None. Never downloads."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        return None
    if cfg.get("file") and Path(cfg["file"]).is_file():
        return Path(cfg["file"])
    if cfg.get("hf_hub"):
        repo_id, filename = os.path.split(cfg["hf_hub"])
        candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for name in candidates:
            hit = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(hit, str):
                return Path(hit)
    if cfg.get("url"):
        local = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        if local.is_file():
            return local
    return None


def _pulled(arch: str, tag: str) -> Path | None:
    """The weights `dubkit models pull` put in the dubkit models folder for this model and tag, if any."""
    from audiostory_core.models.hub import local_path

    name = PULLED.get((arch, tag))
    if name is None or not local_path(name).is_dir():
        return None
    try:
        return _weights_in_folder(local_path(name))
    except CheckpointError:
        return None


def _resolve_weights(
    arch: str, pretrained: str | Path | None, model_dir: Path | None, cache_dir: str | Path | None
) -> tuple[Path, dict]:
    """(weights file, open_clip pretrained cfg of the tag or {})."""
    import open_clip

    if pretrained is None and model_dir is not None:
        return _weights_in_folder(model_dir), {}
    if pretrained is not None:
        path = Path(pretrained)
        if path.is_file():
            return path, {}
        if path.is_dir():
            return _weights_in_folder(path), {}
    tags = [] if arch.startswith("local-dir:") else open_clip.list_pretrained_tags_by_model(arch)
    tag = str(pretrained) if pretrained is not None else DEFAULT_TAGS.get(arch, tags[0] if tags else None)
    if tag is None:
        raise CheckpointError(f"open_clip model {arch!r} needs weights: pass a local weights file")
    if tag not in tags:
        if isinstance(pretrained, Path) or os.sep in tag or Path(tag).suffix in WEIGHT_SUFFIXES:
            raise CheckpointError(f"open_clip weights file not found: {tag}; {PULL_HINT}")
        known = ", ".join(tags) if tags else "none"
        raise CheckpointError(f"{tag!r} is neither a weights file nor a pretrained tag of {arch} (tags: {known})")
    cached = _pulled(arch, tag) or cached_pretrained(arch, tag, cache_dir)
    if cached is None:
        raise CheckpointError(f"the weights of {arch} ({tag}) are not in the local cache; {PULL_HINT}")
    return cached, open_clip.get_pretrained_cfg(arch, tag)


class _DropRecords(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _check_readable(weights: Path) -> None:
    """A truncated or foreign .safetensors file fails here, before a large model is built for nothing."""
    if weights.suffix != ".safetensors":
        return
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt"):
            pass
    except Exception as e:
        raise CheckpointError(f"cannot load open_clip weights from {weights}: not a readable safetensors file "
                              f"({' '.join(str(e).split())[:200]}); {PULL_HINT}") from e


def _load_model(arch: str, weights: Path, tag_cfg: dict, device: torch.device, precision: str) -> torch.nn.Module:
    import open_clip

    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    quiet = _DropRecords("No pretrained weights loaded")  # we load them ourselves, right after
    logging.getLogger().addFilter(quiet)
    try:
        model = open_clip.create_model(
            arch, pretrained=None, load_weights=False, precision=precision, device=device,
            force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)), force_preprocess_cfg=preprocess,
            pretrained_text=False,  # never fetch a text tower's base weights from the hub
        )
    except Exception as e:  # a malformed config surfaces here
        raise CheckpointError(f"cannot build open_clip model {arch}: {e}") from e
    finally:
        logging.getLogger().removeFilter(quiet)
    try:
        open_clip.load_checkpoint(model, str(weights), strict=True, weights_only=True)
    except Exception as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        if "Weights only load failed" in reason:
            reason = "it is not a plain tensor checkpoint (it holds pickled code or is a TorchScript archive)"
        elif len(reason) > 300:
            reason = reason[:300].rsplit(" ", 1)[0] + " …"
        raise CheckpointError(
            f"cannot load open_clip weights from {weights} into {arch}: {reason}. Check that the file is an "
            f"open_clip state dict for this model (or {PULL_HINT})"
        ) from e
    return model.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------------


def describe_tags(vocabulary: Vocabulary, tags: dict[str, float]) -> str:
    """A sound designer's line from the best place, object and action among ``tags``:
    "a street at night (distant traffic hum); a car driving past (engine rumble, tyre hiss, a passing whoosh)"."""
    best = {}
    for name, score in tags.items():
        lab = vocabulary[name]
        if lab.group not in best or score > tags[best[lab.group].name]:
            best[lab.group] = lab
    parts = []
    if "place" in best:
        parts.append(f"{best['place'].phrase} ({best['place'].sound})")
    obj, act = best.get("object"), best.get("action")
    if obj or act:
        subject = obj.phrase if obj else "something"
        words = " ".join([subject] + ([act.phrase] if act else []))
        sounds = ", ".join(lab.sound for lab in (obj, act) if lab)
        parts.append(f"{words} ({sounds})")
    return "; ".join(parts)


class ClipTagger:
    """Captioner: open_clip zero-shot tags of a shot's keyframes against a sound vocabulary.

    ``model_name``: a built-in open_clip name (ViT-B-32), an open_clip model config JSON, or a model folder with
    open_clip_config.json. ``pretrained``: a weights file or folder, or a pretrained tag already in the local cache
    (None: the model folder's weights, else the default tag); ``cache_dir`` is the hub cache to look in.
    The vocabulary's text embeddings are kept on disk under ``text_cache_dir`` (default ``clip_text`` in the
    project's cache folder, ``audiostory_core.cache``; False: memory only), keyed by model, weights file and
    vocabulary, so a second run skips the text tower. ``Scene.tags`` holds, per group (place, object, action),
    up to ``top_k`` labels whose probability (softmax over the whole vocabulary, averaged over the keyframes) is
    at least ``min_score``.
    """

    name = "clip"

    def __init__(
        self,
        model_name: str | Path = "ViT-B-32",
        pretrained: str | Path | None = None,
        *,
        vocabulary: Vocabulary | None = None,
        device: str | torch.device | None = None,
        top_k: int = 3,
        min_score: float = 0.02,
        cache_dir: str | Path | None = None,
        text_cache_dir: str | Path | Literal[False] | None = None,
        text_batch: int = 64,
    ) -> None:
        import open_clip
        from open_clip.transform import PreprocessCfg, image_transform_v2

        self.vocabulary = vocabulary or DEFAULT_VOCABULARY
        self.top_k, self.min_score, self.text_batch = top_k, min_score, text_batch
        self.device, self.dtype = pick_device_dtype(device)
        precision = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

        arch, model_dir = _resolve_architecture(model_name)
        weights, tag_cfg = _resolve_weights(arch, pretrained, model_dir, cache_dir)  # fails before building
        _check_readable(weights)
        self.model = _load_model(arch, weights, tag_cfg, self.device, precision)
        self.arch, self.weights = arch, weights
        if text_cache_dir is None:
            text_cache_dir = cache.cache_dir("clip_text")
        self.text_cache_dir = Path(text_cache_dir) if text_cache_dir is not False else None
        try:
            self.tokenizer = open_clip.get_tokenizer(arch)
        except Exception as e:
            raise CheckpointError(f"cannot load the tokenizer of {arch} from local files: {e}; {PULL_HINT}") from e
        pp = PreprocessCfg(**open_clip.get_model_preprocess_cfg(self.model))
        self.preprocess = image_transform_v2(pp, is_train=False)
        self._text_features: torch.Tensor | None = None

    @property
    def text_features(self) -> torch.Tensor:
        """(labels, dim) unit vectors, one per vocabulary label (templates averaged); computed once, then cached
        in memory and on disk."""
        if self._text_features is None:
            cached = self._load_text_cache()
            self._text_features = cached if cached is not None else self._encode_vocabulary()
            if cached is None:
                self._save_text_cache(self._text_features)
        return self._text_features

    def _encode_vocabulary(self) -> torch.Tensor:
        """Each label's prompts through its group's templates, ``text_batch`` labels per forward; the template
        embeddings of a label are averaged and renormalised (CLIP's prompt ensembling)."""
        rows: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            for group in GROUPS:
                labels, templates = self.vocabulary.group(group), self.vocabulary.templates.get(group, ())
                for i in range(0, len(labels), self.text_batch):
                    chunk = labels[i:i + self.text_batch]
                    prompts = [t.format(lab.prompt) for lab in chunk for t in templates]
                    emb = self.encode_text(self.tokenizer(prompts).to(self.device)).float()
                    emb = F.normalize(emb.reshape(len(chunk), len(templates), -1).mean(dim=1), dim=-1)
                    rows.update(zip((lab.name for lab in chunk), emb))
        return torch.stack([rows[n] for n in self.vocabulary.names])

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unit text embeddings of a batch of token rows.

        For a causal CLIP text tower only the positions up to the last pooled (end-of-text) token are run: the
        causal mask means later padding cannot change them, and a prompt is ~10 of the 77 positions, so this is
        the same result several times faster. Other towers take open_clip's own path."""
        import open_clip
        from open_clip.transformer import text_global_pool

        m = self.model
        pool = getattr(m, "text_pool_type", None)
        if type(m) is not open_clip.CLIP or getattr(m, "attn_mask", None) is None or pool not in ("argmax", "eos"):
            return m.encode_text(tokens, normalize=True)
        pooled = tokens.argmax(dim=-1) if pool == "argmax" else (tokens == m.text_eos_id).int().argmax(dim=-1)
        n = int(pooled.max()) + 1
        tokens = tokens[:, :n]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:n].to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:n, :n]))
        x = text_global_pool(x, tokens, pool, eos_token_id=getattr(m, "text_eos_id", None))
        if m.text_projection is not None:
            x = m.text_projection(x) if isinstance(m.text_projection, torch.nn.Linear) else x @ m.text_projection
        return F.normalize(x, dim=-1)

    def _text_cache_path(self) -> Path | None:
        if self.text_cache_dir is None:
            return None
        import open_clip

        st = self.weights.stat()
        key = json.dumps([
            open_clip.__version__, self.arch, str(self.weights.resolve()), st.st_size, st.st_mtime_ns, str(self.dtype),
            [(lab.name, lab.group, lab.prompt) for lab in self.vocabulary.labels],
            {g: list(t) for g, t in sorted(self.vocabulary.templates.items())},
        ])
        return self.text_cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors"

    def _load_text_cache(self) -> torch.Tensor | None:
        path = self._text_cache_path()
        if path is None or not path.is_file():
            return None
        from safetensors.torch import load_file

        try:
            text = load_file(str(path))["text"]
        except Exception:  # a torn or foreign file: recompute and overwrite
            return None
        return text.to(self.device) if text.shape[0] == len(self.vocabulary) else None

    def _save_text_cache(self, text: torch.Tensor) -> None:
        path = self._text_cache_path()
        if path is None:
            return
        from safetensors.torch import save_file

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
            save_file({"text": text.detach().cpu().contiguous()}, str(tmp))
            os.replace(tmp, path)  # atomic: concurrent runs never read half a file
        except OSError as e:  # a read-only home only costs the next run the text forward
            logging.getLogger(__name__).debug("text feature cache not written: %s", e)

    def scores(self, keyframes: list[np.ndarray]) -> np.ndarray:
        """Probability of each vocabulary label, averaged over the keyframes (one batched image forward)."""
        from PIL import Image

        text = self.text_features
        batch = torch.stack([self.preprocess(Image.fromarray(np.ascontiguousarray(k)).convert("RGB"))
                             for k in keyframes])
        with torch.inference_mode():
            image = self.model.encode_image(batch.to(self.device, self.dtype), normalize=True).float()
            scale = self.model.logit_scale.float().exp().clamp(max=100.0)
            probs = (scale * image @ text.T).softmax(dim=-1).mean(dim=0)
        return probs.cpu().numpy()

    def select(self, probs: np.ndarray) -> dict[str, float]:
        """Up to ``top_k`` labels per group scoring at least ``min_score``, best first."""
        labels = self.vocabulary.labels
        picked: list[tuple[str, float]] = []
        for group in GROUPS:
            idx = [i for i, lab in enumerate(labels) if lab.group == group]
            idx.sort(key=lambda i: -probs[i])
            picked += [(labels[i].name, float(probs[i])) for i in idx[: self.top_k] if probs[i] >= self.min_score]
        picked.sort(key=lambda kv: -kv[1])
        return {name: round(score, 4) for name, score in picked}

    def describe(self, frames: ShotFrames, shot: Shot) -> Scene:
        if not frames.keyframes:
            return Scene(shot.start, shot.end, "")
        tags = self.select(self.scores(frames.keyframes))
        return Scene(shot.start, shot.end, describe_tags(self.vocabulary, tags), [], tags)
