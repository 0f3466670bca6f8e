"""Stems: one WAV per layer so an editor can rebalance the soundtrack without re-rendering it.

The contract: every stem is the layer exactly as it went into the mix — the new-soundtrack layers multiplied by
the mix's gain curve (ducking / under level), the kept original as "dialogue" — all scaled by the same static
loudness-normalisation gain. So the stems sum to the normalised mix *before* the true-peak limiter, sample for
sample, and each is exactly the video's length.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from dubkit.errors import InputError, OutputError

from .mix import MixResult

STEM_ORDER = ("ambience", "fx", "narrative", "score", "dialogue")


def mix_stems(soundtrack_stems: dict[str, np.ndarray], mix: MixResult, gain_db: float = 0.0) -> dict[str, np.ndarray]:
    """Per-layer audio as it sits in the mix: ``layer * mix.gain * g`` and ``dialogue * g`` (g = ``gain_db``).

    ``soundtrack_stems`` are the assembled soundtrack's layers (they sum to the ``new`` that was mixed);
    ``gain_db`` is ``LoudnessReport.gain_db`` (0 when loudness normalisation is off).
    """
    g = np.float32(10 ** (gain_db / 20))
    n = mix.audio.shape[-1]
    curve = mix.gain[None, :].astype(np.float32) * g
    out: dict[str, np.ndarray] = {}
    for layer in sorted(soundtrack_stems, key=_order):
        audio = np.asarray(soundtrack_stems[layer], dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None, :]
        if audio.shape[-1] != n:
            raise InputError(f"stem {layer!r} is {audio.shape[-1]} samples but the mix is {n}; stems must match the mix")
        out[layer] = (audio * curve).astype(np.float32)
    if mix.dialogue is not None:
        out["dialogue"] = (mix.dialogue * g).astype(np.float32)
    return out


def write_stems(folder: str | Path, stems: dict[str, np.ndarray], sample_rate: int = 48000) -> dict[str, Path]:
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
    shapes = {np.shape(a) for a in stems.values()}
    if len(shapes) != 1:
        raise InputError(f"stems must all have the same shape, got {sorted(shapes)}")
    peak = max(float(np.max(np.abs(a), initial=0.0)) for a in stems.values())
    subtype = "PCM_24" if peak <= 1.0 else "FLOAT"
    paths: dict[str, Path] = {}
    for layer in sorted(stems, key=_order):
        audio = np.asarray(stems[layer], dtype=np.float32)
        audio = audio[None, :] if audio.ndim == 1 else audio
        path = folder / f"{_safe_name(layer)}.wav"
        try:
            sf.write(path, audio.T, sample_rate, subtype=subtype)
        except (OSError, RuntimeError) as e:
            raise OutputError(f"cannot write stem {path}: {e}") from e
        paths[layer] = path
    return paths


def _order(layer: str) -> tuple[int, str]:
    return (STEM_ORDER.index(layer) if layer in STEM_ORDER else len(STEM_ORDER), layer)


def _safe_name(layer: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in layer).strip("_")
    return name or "layer"
