"""Audio encoded once to VAE latents, captions once to T5 targets, kept in safetensors shards.

Layout::

    CACHE/index.json               {"format", "vae": fingerprint, "t5": fingerprint | null, "entries": {key: shard}}
    CACHE/shard-00000.safetensors  "<key>.mean" / "<key>.std" (frames, channels) latents; "<key>.t5" (tokens, width)

An event's key hashes its audio file (path, size, modification time) and its time span, so editing a file or a
caption file re-encodes only what changed; a different VAE or T5 (by weight fingerprint) starts the cache anew.
Training reads entries lazily (memory-mapped), so the cache may be larger than memory.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from .errors import DataError
from .manifest import Manifest

FORMAT = "dubkit-latent-cache"
INDEX = "index.json"


def fingerprint(module: torch.nn.Module, extra: Any = None) -> str:
    """A hash of a module's weights (and ``extra``): equal fingerprints mean identical encodings."""
    h = hashlib.sha1(json.dumps(extra, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _file_id(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def event_key(path: Path, start: float, seconds: float) -> str:
    """Cache key of ``seconds`` of audio from ``path`` starting at ``start``."""
    return "a" + hashlib.sha1(f"{_file_id(path)}|{start:.6f}|{seconds:.6f}".encode()).hexdigest()[:24]


def caption_key(caption: str, n_tokens: int) -> str:
    return "t" + hashlib.sha1(f"{caption}|{n_tokens}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class AudioSpan:
    """Where an event's audio is: a file, the offset into it, the length; ``where`` names it in errors."""

    path: Path
    start: float
    seconds: float
    where: str

    @property
    def key(self) -> str:
        return event_key(self.path, self.start, self.seconds)


def audio_spans(manifest: Manifest) -> list[list[AudioSpan]]:
    """Per example, per event (in the example's event order): its audio span."""
    out = []
    for i, ex in enumerate(manifest.examples):
        spans = []
        for j, e in enumerate(ex.events):
            where = f"{manifest.where(i)} event {j}"
            if e.audio:
                spans.append(AudioSpan(manifest.resolve(e.audio), 0.0, float(e.duration), where))
            else:
                spans.append(AudioSpan(manifest.resolve(ex.audio), float(e.start), float(e.duration), where))
        out.append(spans)
    return out


class LatentCache:
    """Read access to a built cache (``build_cache`` makes one)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.index = _read_index(self.folder)
        self._open: dict[str, Any] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.index["entries"]

    def _tensor(self, key: str, part: str) -> torch.Tensor:
        from safetensors import safe_open

        shard = self.index["entries"].get(key)
        if shard is None:
            raise DataError(f"the latent cache {self.folder} has no entry {key}; delete it to rebuild")
        if shard not in self._open:
            self._open[shard] = safe_open(str(self.folder / shard), "pt")
        return self._open[shard].get_tensor(f"{key}.{part}")

    def latents(self, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std), each (frames, channels) float32."""
        return self._tensor(key, "mean"), self._tensor(key, "std")

    def target(self, key: str) -> torch.Tensor:
        """(tokens, width) float32 T5 embedding of a caption."""
        return self._tensor(key, "t5")

    def __getstate__(self) -> dict:  # data-loader workers reopen the shards themselves
        return {"folder": self.folder, "index": self.index, "_open": {}}


def _read_index(folder: Path) -> dict:
    path = folder / INDEX
    if not path.is_file():
        return {"format": FORMAT, "vae": None, "t5": None, "entries": {}}
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"the latent cache index {path} is unreadable ({exc}); delete the folder to rebuild") from None
    if index.get("format") != FORMAT:
        raise DataError(f"{path} is not a dubkit latent cache; choose another data.cache folder")
    return index


class _ShardWriter:
    """Collects tensors and writes them as shards of about ``limit`` bytes (temporary name, then renamed)."""

    def __init__(self, folder: Path, entries: dict[str, str], limit: int) -> None:
        self.folder, self.entries, self.limit = folder, entries, limit
        self.pending: dict[str, torch.Tensor] = {}
        self.keys: set[str] = set()
        self.size = 0

    def add(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        for part, t in tensors.items():
            t = t.detach().to("cpu", torch.float32).contiguous()
            self.pending[f"{key}.{part}"] = t
            self.size += t.numel() * 4
        self.keys.add(key)
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        from safetensors.torch import save_file

        if not self.pending:
            return
        n = 0
        while (self.folder / f"shard-{n:05d}.safetensors").exists():
            n += 1
        name = f"shard-{n:05d}.safetensors"
        tmp = self.folder / (name + ".part")
        save_file(self.pending, str(tmp), metadata={"format": FORMAT})
        os.replace(tmp, self.folder / name)
        self.entries.update({k: name for k in self.keys})
        self.pending, self.keys, self.size = {}, set(), 0


def _load_audio(path: Path, sample_rate: int, channels: int, where: str) -> np.ndarray:
    from ..errors import DubkitError
    from ..render.foley.library import decode

    try:
        audio = decode(path, sample_rate)
    except DubkitError as exc:
        raise DataError(f"{where}: {exc}") from None
    return audio.mean(axis=0, keepdims=True) if channels == 1 else audio[:channels]


@torch.no_grad()
def _encode_span(dit: Any, audio: np.ndarray, span: AudioSpan) -> dict[str, torch.Tensor]:
    """One event's audio (already at the VAE rate) → posterior mean and std, (frames, channels)."""
    sr, hop = dit.sample_rate, dit.hop_length
    first, n = round(span.start * sr), round(span.seconds * sr)
    piece = audio[:, first : first + n]
    if piece.shape[-1] < n - round(0.01 * sr):
        raise DataError(f"{span.where}: {span.path} holds {audio.shape[-1] / sr:.3f} s of audio, too short for "
                        f"the event ({span.start:.3f} s + {span.seconds:.3f} s)")
    frames = dit.frames_for(span.seconds)
    x = torch.zeros(1, audio.shape[0], frames * hop)
    x[0, :, : piece.shape[-1]] = torch.from_numpy(np.ascontiguousarray(piece))
    dist = dit.vae.encode(x.to(dit.device, dit.dtype)).latent_dist
    mean, std = dist.mean[0].transpose(0, 1), dist.std[0].transpose(0, 1)
    if mean.shape != (frames, dit.config.in_channels):
        raise DataError(f"the VAE encodes to {tuple(mean.shape[1:])} channels but the DiT reads "
                        f"{dit.config.in_channels}: the VAE and DiT configs do not fit together")
    return {"mean": mean, "std": std}


def _encode_audio(spans: Iterable[AudioSpan], dit: Any, writer: _ShardWriter, progress) -> int:
    by_file: dict[Path, list[AudioSpan]] = defaultdict(list)
    for s in spans:
        by_file[s.path].append(s)
    done = 0
    for path, items in by_file.items():
        audio = _load_audio(path, dit.sample_rate, dit.audio_channels, items[0].where)
        for span in items:
            writer.add(span.key, _encode_span(dit, audio, span))
            done += 1
        if progress:
            progress(f"encoded {done} event(s) to latents ({path.name})")
    return done


@torch.no_grad()
def t5_targets(t5: Any, captions: list[str], n_tokens: int) -> torch.Tensor:
    """flan-t5 embeddings of ``captions`` padded/truncated to ``n_tokens`` positions, (B, n_tokens, width):
    the reconstruction target of the semantic queries (the published training regresses onto exactly this)."""
    batch = t5.tokenizer(captions, max_length=n_tokens, padding="max_length", truncation=True, return_tensors="pt")
    device = next(t5.model.parameters()).device
    out = t5.model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device))[0]
    return out.float().cpu()


def _encode_captions(captions: list[str], t5: Any, n_tokens: int, writer: _ShardWriter, batch: int = 32) -> None:
    for i in range(0, len(captions), batch):
        chunk = captions[i : i + batch]
        for caption, emb in zip(chunk, t5_targets(t5, chunk, n_tokens)):
            writer.add(caption_key(caption, n_tokens), {"t5": emb})


def _stale(index: dict, vae_fp: str, t5_fp: str | None) -> bool:
    return index["vae"] not in (None, vae_fp) or (t5_fp is not None and index["t5"] not in (None, t5_fp))


def build_cache(
    manifests: Manifest | list[Manifest], folder: str | os.PathLike, dit: Any, *, t5: Any = None,
    n_tokens: int = 0, shard_mb: int = 512, progress: Callable[[str], None] | None = None,
) -> LatentCache:
    """Encode what the cache lacks: every event's audio through ``dit.vae`` and, with ``t5``, every caption to
    ``n_tokens`` T5 positions (entries no given manifest uses are dropped). Returns the cache ready to read."""
    manifests = [manifests] if isinstance(manifests, Manifest) else list(manifests)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vae_fp = fingerprint(dit.vae, {"rate": dit.sample_rate, "hop": dit.hop_length})
    t5_fp = fingerprint(t5.model, {"tokens": n_tokens}) if t5 is not None else None
    index = _read_index(folder)
    if _stale(index, vae_fp, t5_fp):
        for old in folder.glob("shard-*.safetensors"):
            old.unlink()
        index = {"format": FORMAT, "vae": None, "t5": None, "entries": {}}
    entries = index["entries"]
    writer = _ShardWriter(folder, entries, shard_mb << 20)
    all_spans = [s for m in manifests for per in audio_spans(m) for s in per]
    captions = sorted({e.caption for m in manifests for ex in m.examples for e in ex.events})
    _encode_audio({s.key: s for s in all_spans if s.key not in entries}.values(), dit, writer, progress)
    if t5 is not None:
        _encode_captions([c for c in captions if caption_key(c, n_tokens) not in entries], t5, n_tokens, writer)
    writer.flush()
    live = {s.key for s in all_spans} | {caption_key(c, n_tokens) for c in captions}
    for key in [k for k in entries if k not in live]:  # entries this manifest no longer uses
        del entries[key]
    index.update(vae=vae_fp, t5=t5_fp or index.get("t5"))
    tmp = folder / (INDEX + ".part")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, folder / INDEX)
    for shard in set(folder.glob("shard-*.safetensors")) - {folder / name for name in entries.values()}:
        shard.unlink()  # after the index stopped naming them
    return LatentCache(folder)
