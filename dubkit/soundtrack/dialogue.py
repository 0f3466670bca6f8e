"""Where people speak in the original audio, so the new soundtrack can duck under the dialogue.

Two detectors behind one function:
- silero-vad (default): its weights ship inside the pip package, so it works offline with nothing to download.
- pyannote.audio's ``VoiceActivityDetection`` pipeline, when the user points ``model_dir`` at a local pyannote
  segmentation checkpoint (a ``pytorch_model.bin`` or the folder holding one).

Neural VADs decide on ~30 ms frames and their speech probability lags the signal by a frame or three, so the
detected edges are tightened onto the audio's own energy envelope (never moved outward, at most ``_MAX_TIGHTEN``
seconds), then padded by ``pad``. That keeps the edges within a few tens of milliseconds of where the voice
starts and stops, which is what the ducking ramps are timed against.
"""
from __future__ import annotations

import importlib
import threading
import warnings
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from dubkit.errors import CheckpointError, InputError

VAD_RATE = 16000  # both detectors run on 16 kHz mono
_FRAME = 160  # 10 ms energy frames at 16 kHz, for edge tightening
_MAX_TIGHTEN = 0.25  # seconds an edge may move inward onto the energy envelope
_EDGE_DB = 12.0  # a frame is "voiced" when it is this far above the recording's noise floor

Regions = list[tuple[float, float]]


def detect_speech(
    audio: np.ndarray,
    sample_rate: int,
    *,
    model_dir: str | Path | None = None,
    threshold: float = 0.5,
    min_speech: float = 0.25,
    min_silence: float = 0.15,
    pad: float = 0.03,
) -> Regions:
    """Speech regions ``[(start, end), ...]`` in seconds, sorted and non-overlapping.

    ``audio`` is float (channels, samples) or (samples,) at ``sample_rate``; it is downmixed and resampled to
    16 kHz. ``threshold`` is the speech probability above which a frame counts as speech; regions shorter than
    ``min_speech`` are dropped and gaps shorter than ``min_silence`` are bridged; each region is widened by
    ``pad`` on both sides (clamped to the audio). ``model_dir`` selects pyannote instead of silero-vad.
    """
    mono = _to_vad_input(audio, sample_rate)
    duration = mono.size / VAD_RATE
    if not 0.0 < threshold < 1.0:
        raise InputError(f"speech threshold must be between 0 and 1, got {threshold}")
    if mono.size < VAD_RATE // 10 or not np.any(mono):
        return []
    if model_dir is None:
        raw = _silero_regions(mono, threshold, min_speech, min_silence)
    else:
        raw = _pyannote_regions(mono, Path(model_dir), threshold, min_speech, min_silence)
    db = _frame_db(mono)
    floor = float(np.percentile(db, 10))  # the recording's quietest tenth: room tone / noise floor
    tightened = [_tighten(db, floor, s, e) for s, e in raw]
    return _pad_and_merge(tightened, pad, duration)


# ---------------------------------------------------------------------------------------------------------------
# input


def _to_vad_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0)
    if a.ndim != 1:
        raise InputError(f"audio for speech detection must be (channels, samples) or (samples,), got shape {a.shape}")
    if sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}")
    if not np.all(np.isfinite(a)):
        raise InputError("audio for speech detection contains NaN or infinite samples")
    if sample_rate != VAD_RATE:
        g = gcd(int(sample_rate), VAD_RATE)
        a = resample_poly(a, VAD_RATE // g, int(sample_rate) // g).astype(np.float32)
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------------------------------------------
# silero-vad


_SILERO = threading.local()  # one model per thread: see _silero_model
_SILERO_LOAD = threading.Lock()  # catch_warnings below is process-global: one load at a time


def _silero_model():
    """This thread's silero-vad model, loaded on first use (~0.2 s).

    The model is stateful (its recurrent state and audio context live inside the TorchScript module and are
    reset and updated chunk by chunk), so two threads on one instance corrupt each other's state; with
    a watch folder running two workers that crashed the process (SIGSEGV, heap corruption). Each worker thread
    therefore gets its own instance; a thread keeps it for all its later calls.
    """
    model = getattr(_SILERO, "model", None)
    if model is not None:
        return model
    try:
        from silero_vad import load_silero_vad
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise CheckpointError("silero-vad is not installed: pip install silero-vad (or pass `speech_model`, a local pyannote checkpoint)") from e
    with _SILERO_LOAD, warnings.catch_warnings():  # its loader uses deprecated importlib/jit calls; not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        _SILERO.model = load_silero_vad()
    return _SILERO.model


def _silero_regions(mono: np.ndarray, threshold: float, min_speech: float, min_silence: float) -> Regions:
    import torch
    from silero_vad import get_speech_timestamps

    stamps = get_speech_timestamps(
        torch.from_numpy(mono),
        _silero_model(),
        threshold=threshold,
        sampling_rate=VAD_RATE,
        min_speech_duration_ms=int(round(min_speech * 1000)),
        min_silence_duration_ms=int(round(min_silence * 1000)),
        speech_pad_ms=0,  # padding is applied after edge tightening
    )
    return [(s["start"] / VAD_RATE, s["end"] / VAD_RATE) for s in stamps]


# ---------------------------------------------------------------------------------------------------------------
# pyannote.audio


def load_pyannote_segmentation(model_dir: str | Path):
    """Load a pyannote segmentation model from a local ``pytorch_model.bin`` (or the folder holding one).

    The checkpoint is read with ``torch.load(weights_only=True)`` — only tensors, plain containers and pyannote's
    own task-specification types are accepted — and the architecture must be one of pyannote.audio's models, so
    a checkpoint cannot run arbitrary code. The model is rebuilt the way pyannote's own loader does it
    (hyper-parameters → specifications → task layers → weights).
    """
    import torch

    path = Path(model_dir)
    if path.is_dir():
        path = path / "pytorch_model.bin"
    if not path.is_file():
        raise CheckpointError(
            f"no pyannote segmentation checkpoint at {path}: pass a pytorch_model.bin or the folder that holds it"
        )
    try:
        from pyannote.audio.core.task import Problem, Resolution, Specifications
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise CheckpointError("pyannote.audio is not installed: pip install pyannote.audio") from e

    try:
        with torch.serialization.safe_globals([Specifications, Problem, Resolution]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; all mean "not a loadable checkpoint"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path} is not a pyannote checkpoint that loads with weights_only=True ({first[:200]})"
        ) from e
    meta = ckpt.get("pyannote.audio") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a pyannote.audio model checkpoint (no 'pyannote.audio'/'state_dict' keys)")
    module_name = str(meta.get("architecture", {}).get("module", ""))
    class_name = str(meta.get("architecture", {}).get("class", ""))
    if not module_name.startswith("pyannote.audio.models."):
        raise CheckpointError(f"{path} names architecture {module_name}.{class_name}, not a pyannote.audio model")
    try:
        klass = getattr(importlib.import_module(module_name), class_name)
        model = klass(**dict(ckpt.get("hyper_parameters", {})))
        model.specifications = meta["specifications"]
        model.setup()  # adds the task-dependent classifier for these specifications
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: cannot rebuild {class_name} from the checkpoint ({e})") from e
    return model.eval()


def _pyannote_regions(
    mono: np.ndarray, model_dir: Path, threshold: float, min_speech: float, min_silence: float
) -> Regions:
    import torch
    from pyannote.audio.pipelines import VoiceActivityDetection

    model = load_pyannote_segmentation(model_dir)
    pipeline = VoiceActivityDetection(segmentation=model)
    params = {"min_duration_on": float(min_speech), "min_duration_off": float(min_silence)}
    if not model.specifications.powerset:  # powerset models fix onset/offset at 0.5 themselves
        params.update(onset=float(threshold), offset=float(max(threshold - 0.15, 0.01)))
    pipeline.instantiate(params)
    with torch.inference_mode():
        speech = pipeline({"waveform": torch.from_numpy(mono)[None], "sample_rate": VAD_RATE, "uri": "dialogue"})
    return [(float(seg.start), float(seg.end)) for seg in speech.get_timeline().support()]


# ---------------------------------------------------------------------------------------------------------------
# edges


def _frame_db(mono: np.ndarray) -> np.ndarray:
    n = mono.size // _FRAME
    frames = mono[: n * _FRAME].reshape(n, _FRAME)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def _tighten(db: np.ndarray, floor: float, start: float, end: float) -> tuple[float, float]:
    """Move a region's edges inward to the first/last 10 ms frame that stands ``_EDGE_DB`` above the floor."""
    lo, hi = int(start * VAD_RATE) // _FRAME, min(int(np.ceil(end * VAD_RATE / _FRAME)), db.size)
    voiced = np.flatnonzero(db[lo:hi] > floor + _EDGE_DB)
    if voiced.size == 0:
        return start, end
    new_start = max(start, min((lo + voiced[0]) * _FRAME / VAD_RATE, start + _MAX_TIGHTEN))
    new_end = min(end, max((lo + voiced[-1] + 1) * _FRAME / VAD_RATE, end - _MAX_TIGHTEN))
    return (float(new_start), float(new_end)) if new_end > new_start else (start, end)


def _pad_and_merge(regions: Regions, pad: float, duration: float) -> Regions:
    out: Regions = []
    for s, e in sorted(regions):
        s, e = max(0.0, s - pad), min(duration, e + pad)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
