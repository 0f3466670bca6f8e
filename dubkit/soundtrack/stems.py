"""Stems: one WAV per layer so an editor can rebalance the soundtrack without re-rendering it.

The contract: every stem is the layer exactly as it went into the mix — the new-soundtrack layers multiplied by
the mix's gain curve (ducking / under level), the kept original as "dialogue" — all scaled by the same static
loudness-normalisation gain. So the stems sum to the normalised mix *before* the true-peak limiter, sample for
sample, and each is exactly the video's length.

Stems of tracks are computed and written block by block (``StemTrack``), so writing the stems of an hour-long
soundtrack holds a block, not the layers; each file's length is checked after it is written.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audiostory_core.tracks import BLOCK, Track, as_track, blocks
from dubkit.errors import InputError, OutputError
from dubkit.io import write_failure

from .mix import MixResult

STEM_ORDER = ("ambience", "fx", "narrative", "score", "dialogue")


class StemTrack:
    """One layer as it sits in the mix, ``layer * gain curve * g``, computed block by block when read."""

    def __init__(self, layer: Track, mix: MixResult, g: float, curve: bool = True):
        self.layer, self.mix, self.g, self.curve = layer, mix, np.float32(g), curve
        self.channels, self.samples = layer.channels, layer.samples

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.samples

    def read(self, start: int, stop: int) -> np.ndarray:
        audio = self.layer.read(start, stop)
        if self.curve:
            return (audio * (self.mix.gain_at(start, stop)[None, :] * self.g)).astype(np.float32)
        return (audio * self.g).astype(np.float32)

    def write(self, start: int, block: np.ndarray) -> None:
        raise TypeError("a stem is computed from its layer and the mix")


def mix_stems(soundtrack_stems: dict[str, np.ndarray | Track], mix: MixResult,
              gain_db: float = 0.0) -> dict[str, np.ndarray | Track]:
    """Per-layer audio as it sits in the mix: ``layer * mix.gain * g`` and ``dialogue * g`` (g = ``gain_db``).

    ``soundtrack_stems`` are the assembled soundtrack's layers (they sum to the ``new`` that was mixed);
    ``gain_db`` is ``LoudnessReport.gain_db`` (0 when loudness normalisation is off). Arrays give arrays;
    tracks give ``StemTrack`` objects, computed when read.
    """
    g = 10 ** (gain_db / 20)
    n = mix.audio.shape[-1]
    out: dict[str, np.ndarray | Track] = {}
    for layer in sorted(soundtrack_stems, key=_order):
        audio = soundtrack_stems[layer]
        if isinstance(audio, np.ndarray) or not hasattr(audio, "read"):
            audio = np.asarray(audio, dtype=np.float32)
            audio = audio[None, :] if audio.ndim == 1 else audio
        if audio.shape[-1] != n:
            raise InputError(f"stem {layer!r} is {audio.shape[-1]} samples but the mix is {n}; stems must match the mix")
        out[layer] = _stem(audio, mix, g, curve=True)
    if mix.dialogue is not None:
        out["dialogue"] = _stem(mix.dialogue, mix, g, curve=False)
    return out


def _stem(audio: np.ndarray | Track, mix: MixResult, g: float, curve: bool) -> np.ndarray | Track:
    track = StemTrack(as_track(audio), mix, g, curve)
    return track if not isinstance(audio, np.ndarray) else track.read(0, track.samples)


def write_stems(folder: str | Path, stems: dict[str, np.ndarray | Track], sample_rate: int = 48000) -> dict[str, Path]:
    """Write ``<folder>/<layer>.wav`` per stem (48 kHz 24-bit PCM) and return their paths.

    All stems must have the same shape. If any stem peaks above full scale (possible: stems are pre-limiter, and
    a limited mix can be louder than 0 dBFS before limiting), every stem is written as 32-bit float WAV instead,
    so that no stem clips and they still sum to the mix.
    """
    if not stems:
        return {}
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create stems folder {folder}: {e.strerror}") from e
    tracks = {k: as_track(v) for k, v in stems.items()}
    shapes = {t.shape for t in tracks.values()}
    if len(shapes) != 1:
        raise InputError(f"stems must all have the same shape, got {sorted(shapes)}")
    peak = max(_peak(t) for t in tracks.values())
    subtype = "PCM_24" if peak <= 1.0 else "FLOAT"
    paths: dict[str, Path] = {}
    for layer in sorted(tracks, key=_order):
        path = folder / f"{_safe_name(layer)}.wav"
        _write_wav_blocks(path, tracks[layer], sample_rate, subtype)
        paths[layer] = path
    return paths


def _peak(track: Track) -> float:
    return max((float(np.max(np.abs(track.read(a, b)), initial=0.0)) for a, b in blocks(track.samples)), default=0.0)


def _write_wav_blocks(path: Path, track: Track, sample_rate: int, subtype: str) -> None:
    """Write ``track`` to ``path`` block by block, then check the file holds every frame (a full disk can leave
    a short file behind an error libsndfile only calls "System error")."""
    try:
        with sf.SoundFile(str(path), "w", sample_rate, track.channels, subtype=subtype, format="WAV") as f:
            for start, stop in blocks(track.samples, BLOCK):
                f.write(np.ascontiguousarray(track.read(start, stop).T))
        frames = sf.info(str(path)).frames
    except (OSError, RuntimeError) as e:
        raise write_failure(path, e, f"stem {path.name}") from e
    if frames != track.samples:
        raise write_failure(path, None, f"stem {path.name}", detail=f"{frames} of {track.samples} frames written")


def _order(layer: str) -> tuple[int, str]:
    return (STEM_ORDER.index(layer) if layer in STEM_ORDER else len(STEM_ORDER), layer)


def _safe_name(layer: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in layer).strip("_")
    return name or "layer"
