"""Audio analysis: what a sound is like, measured (level, 1/3-octave spectrum, envelope, onsets, pitch).

The continuation planner uses it to pick matching sounds and keep a rhythm going; the seam code uses it to match
level and tilt; tests use it to check that what we render sounds like what was asked. numpy only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import check_rate
from .errors import PlanError

EPS = 1e-12
SILENCE_DB = -90.0


@dataclass
class AudioProfile:
    """What a sound is like, measured: enough to pick a matching sound and to continue its loudness and rhythm.

    ``band_db`` are mean 1/3-octave band energies (dB) at ``band_hz``; ``shape`` is the same with its mean
    removed and very quiet bands floored, so it compares spectral shape independent of level. ``envelope_db`` is
    the frame loudness every ``hop`` seconds. ``pitch`` is a fundamental frequency in Hz, ``None`` when unpitched.
    """

    sample_rate: int
    duration: float
    rms: float
    band_hz: np.ndarray
    band_db: np.ndarray
    centroid: float
    flatness: float
    tilt: float  # dB per octave, least-squares slope of band_db over log2(frequency)
    envelope_db: np.ndarray = field(repr=False)
    hop: float
    onset_times: np.ndarray = field(repr=False)
    onset_rate: float
    onset_period: float | None  # median inter-onset interval when the onsets are regular, else None
    onset_db: float  # median frame loudness at the onsets (SILENCE_DB when there are none)
    floor_db: float  # loudness between events (20th percentile of the envelope)
    floor_band_db: np.ndarray = field(repr=False)  # band levels of the quieter half of the frames (the bed)
    modulation_db: np.ndarray = field(repr=False)  # envelope fluctuation (dB RMS) at 0.5–2, 2–6, 6–16 Hz
    pitch: float | None

    @property
    def rms_db(self) -> float:
        return _db(self.rms**2)

    @property
    def shape(self) -> np.ndarray:
        return spectral_shape(self.band_db)

    @property
    def rhythmic(self) -> bool:
        """Distinct repeated onsets (footsteps, a clock, knocks) rather than a texture."""
        return 2 <= self.onset_times.size and 0.2 <= self.onset_rate <= 6.0 and self.onset_db - self.floor_db >= 10.0

    def describe(self) -> str:
        pitch = f"pitch {self.pitch:.0f} Hz" if self.pitch else "unpitched"
        rhythm = f", onsets {self.onset_rate:.2f}/s" + (f" (every {self.onset_period:.2f} s)" if self.onset_period else "")
        return (
            f"{self.duration:.2f} s, RMS {self.rms_db:.1f} dBFS, centroid {self.centroid:.0f} Hz, "
            f"flatness {self.flatness:.2f}, tilt {self.tilt:+.1f} dB/oct{rhythm}, {pitch}"
        )


def profile_arrays(p: AudioProfile) -> dict[str, np.ndarray]:
    """``p`` as named arrays (for ``np.savez``): a profile saved costs nothing to hear again."""
    out = {}
    for name in AudioProfile.__dataclass_fields__:
        value = getattr(p, name)
        out[name] = np.asarray(np.nan if value is None else value)
    return out


def profile_from_arrays(d: Any) -> AudioProfile:
    """The profile :func:`profile_arrays` saved (``KeyError``/``ValueError`` when it is not one)."""
    kw: dict[str, Any] = {}
    for name in AudioProfile.__dataclass_fields__:
        v = np.asarray(d[name])
        if v.ndim:
            kw[name] = v
        elif name in ("onset_period", "pitch"):
            kw[name] = None if np.isnan(v) else float(v)
        else:
            kw[name] = int(v) if name == "sample_rate" else float(v)
    return AudioProfile(**kw)


def third_octave_centers(sample_rate: int, low: float = 50.0) -> np.ndarray:
    """Nominal 1/3-octave centre frequencies from ``low`` up to the band that still fits under Nyquist."""
    k = np.arange(-13, 14)
    fc = 1000.0 * 2.0 ** (k / 3.0)
    return fc[(fc >= low * 0.99) & (fc * 2 ** (1 / 6) < sample_rate / 2)]


def spectral_shape(band_db: np.ndarray, dynamic_range: float = 60.0) -> np.ndarray:
    """Band levels relative to their mean, with bands more than ``dynamic_range`` dB below the peak floored."""
    b = np.maximum(band_db, band_db.max() - dynamic_range)
    return b - b.mean()


def shape_distance(a: AudioProfile, b: AudioProfile) -> float:
    """RMS difference (dB) of two spectral shapes over their common bands."""
    n = min(a.band_db.size, b.band_db.size)
    return float(np.sqrt(np.mean((spectral_shape(a.band_db[:n]) - spectral_shape(b.band_db[:n])) ** 2)))


def texture_distance(a: AudioProfile, b: AudioProfile) -> float:
    """Spectral-shape distance plus how differently the two move in time (dB-like units).

    Two sounds with the same spectrum can still be different textures (steady wind vs a chopping helicopter), so
    the envelope's modulation depth in slow/medium/fast bands and the onset rate count too.
    """
    mod = float(np.sqrt(np.mean((a.modulation_db - b.modulation_db) ** 2)))
    rate = abs(math.log((a.onset_rate + 0.5) / (b.onset_rate + 0.5)))
    return shape_distance(a, b) + mod + 4.0 * rate


def character_distance(a: AudioProfile, b: AudioProfile) -> float:
    """How differently two sounds are made (dB-like units), beyond their spectra: voiced vs unvoiced (a pitch or
    none: a choir is not a drone of noise), how far apart their pitches are (semitones, folded into an octave)
    and how noise-like they are (spectral flatness, in decades)."""
    if (a.pitch is None) != (b.pitch is None):
        tonal = 8.0
    elif a.pitch is not None and b.pitch is not None:
        semis = abs(12.0 * math.log2(a.pitch / b.pitch)) % 12.0
        tonal = 0.5 * min(semis, 12.0 - semis)
    else:
        tonal = 0.0
    flat = abs(math.log10((a.flatness + 1e-3) / (b.flatness + 1e-3)))
    return tonal + 4.0 * flat


def repeat_period(audio: np.ndarray, sample_rate: int, *, shortest: float = 0.3, longest: float = 4.0,
                  min_strength: float = 0.5) -> float | None:
    """The period (s) a loop repeats with — a drum loop's bar, or its beat when bars differ — or ``None``.

    The onset envelope (rises of the 5 ms loudness) is autocorrelated; the strongest lag between ``shortest``
    and ``longest`` (and at most half the input, so at least two repeats are heard) wins, a longer lag preferred
    when it is nearly as strong (the whole pattern rather than one beat). Its normalised correlation must reach
    ``min_strength``: a texture (hiss, a choir) has no repeating onsets and gets ``None``. The lag is then
    refined on a 1 ms envelope so repeats stay on time over many periods.
    """
    x = _mono(audio).astype(np.float64)
    sr = check_rate(sample_rate)
    hop = max(1, int(round(0.005 * sr)))
    flux = _onset_strength(x, hop)
    lo, hi = int(round(shortest * sr / hop)), int(min(longest * sr, x.size / 2) / hop)
    if flux.size < 4 or hi <= lo + 2 or not np.any(flux):
        return None
    ac = _autocorrelation(_smooth(flux, 3))  # ±15 ms: a hit played a little early still repeats
    lags = np.arange(lo, min(hi, ac.size - 2) + 1)
    peaks = [k for k in lags if ac[k] >= ac[k - 1] and ac[k] >= ac[min(k + 1, ac.size - 1)]]
    if not peaks:
        return None
    best = max(peaks, key=lambda k: ac[k])
    if ac[best] < min_strength:
        return None
    lag = max(k for k in peaks if ac[k] >= 0.9 * ac[best])
    return _refine_period(x, sr, lag * hop / sr)


def _onset_strength(x: np.ndarray, hop: int) -> np.ndarray:
    """Half-wave rectified rise of the frame loudness (dB, floored 50 dB under the peak): where hits start."""
    k = x.size // hop
    if k < 2:
        return np.zeros(0)
    db = _db(np.mean(x[: k * hop].reshape(k, hop) ** 2, axis=1))
    db = np.maximum(db, db.max() - 50.0)
    return np.maximum(np.diff(db), 0.0)


def _smooth(v: np.ndarray, radius: int) -> np.ndarray:
    """``v`` convolved with a Hann window of ``2 * radius + 1`` taps (same length)."""
    w = np.hanning(2 * radius + 3)[1:-1]
    return np.convolve(v, w / w.sum(), mode="same")


def _autocorrelation(v: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of ``v`` (mean removed), unbiased: each lag divided by its overlap."""
    v = v - v.mean()
    size = 1 << int(math.ceil(math.log2(2 * v.size)))
    spec = np.fft.rfft(v, size)
    ac = np.fft.irfft(spec * np.conj(spec), size)[: v.size]
    ac = ac / np.maximum(np.arange(v.size, 0, -1), 1) * v.size
    return ac / ac[0] if ac[0] > EPS else np.zeros_like(ac)


def _refine_period(x: np.ndarray, sr: int, period: float, search: float = 0.012) -> float:
    """``period`` moved (within ±``search`` s) to the lag where the 1 ms onset envelope best repeats itself."""
    hop = max(1, int(round(0.001 * sr)))
    flux = _onset_strength(x, hop)
    centre, radius = int(round(period * sr / hop)), int(round(search * sr / hop))
    best, best_score = centre, -np.inf
    for lag in range(max(1, centre - radius), min(flux.size - 1, centre + radius) + 1):
        a, b = flux[:-lag], flux[lag:]
        score = float(a @ b) / max(a.size, 1)
        if score > best_score:
            best, best_score = lag, score
    return best * hop / sr


def analyse_audio(audio: np.ndarray, sample_rate: int) -> AudioProfile:
    """Measure loudness, envelope, spectral shape, centroid, flatness, onsets and pitch of ``audio``.

    ``audio`` is float (channels, samples) or (samples,); channels are averaged. Frames are ~43 ms with a quarter
    hop, so the envelope and onsets resolve ~11 ms.
    """
    x = _mono(audio)
    sr = check_rate(sample_rate)
    n_fft = int(round(0.043 * sr)) // 4 * 4  # ~43 ms at any rate, so envelopes compare across rates
    hop = n_fft // 4
    frames = _frames(x, n_fft, hop)
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)

    centers = third_octave_centers(sr)
    weights = _band_matrix(freqs, centers)
    band_power = power @ weights.T  # (frames, bands)
    band_db = _db(band_power.mean(axis=0))
    mean_power = power.mean(axis=0)
    total = mean_power[1:].sum()
    centroid = float((freqs[1:] * mean_power[1:]).sum() / total) if total > EPS else 0.0
    flat = mean_power[1:] + EPS
    flatness = float(np.exp(np.mean(np.log(flat))) / np.mean(flat)) if total > EPS else 0.0
    active = band_db > band_db.max() - 60.0
    tilt = float(np.polyfit(np.log2(centers[active]), band_db[active], 1)[0]) if active.sum() >= 2 else 0.0

    frame_energy = power.sum(axis=-1) * 2.0 / (n_fft * np.sum(np.hanning(n_fft) ** 2))  # ≈ mean square
    envelope_db = _db(frame_energy)
    onsets, onset_db = _onsets(envelope_db, hop / sr)
    onsets = _refine_onsets(x, sr, onsets, n_fft)
    rate = onsets.size / (x.size / sr) if x.size else 0.0
    period = _regular_period(onsets)
    floor_db = float(np.percentile(envelope_db, 20)) if envelope_db.size else SILENCE_DB
    quiet = envelope_db <= np.median(envelope_db)
    floor_band_db = _db(band_power[quiet].mean(axis=0)) if quiet.any() else band_db
    return AudioProfile(
        sample_rate=sr,
        duration=x.size / sr,
        rms=float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0,
        band_hz=centers,
        band_db=band_db,
        centroid=centroid,
        flatness=flatness,
        tilt=tilt,
        envelope_db=envelope_db,
        hop=hop / sr,
        onset_times=onsets,
        onset_rate=rate,
        onset_period=period,
        onset_db=onset_db,
        floor_db=floor_db,
        floor_band_db=floor_band_db,
        modulation_db=_modulation(envelope_db, sr / hop),
        pitch=estimate_pitch(x, sr),
    )


def estimate_pitch(x: np.ndarray, sample_rate: int, fmin: float = 60.0, fmax: float = 1000.0) -> float | None:
    """YIN-style fundamental estimate over the loudest frames; ``None`` when the sound is not periodic."""
    sr = sample_rate
    w = int(0.03 * sr)
    max_lag = min(int(sr / fmin), w)
    min_lag = max(2, int(sr / fmax))
    n = w + max_lag
    if x.size < n or max_lag <= min_lag + 2:
        return None
    starts = np.arange(0, x.size - n + 1, max(n // 2, 1))
    energies = np.array([np.sum(x[s : s + w].astype(np.float64) ** 2) for s in starts])
    if energies.max() <= EPS:
        return None
    chosen = starts[np.argsort(energies)[::-1][:12]]
    estimates: list[float] = []
    for s in chosen:
        seg = x[s : s + n].astype(np.float64)
        d = _yin_difference(seg, w, max_lag)
        cmnd = d[1:] * np.arange(1, max_lag + 1) / np.maximum(np.cumsum(d[1:]), EPS)
        cmnd = np.concatenate([[1.0], cmnd])
        below = np.where(cmnd[min_lag:] < 0.15)[0]
        if below.size == 0:
            continue
        lag = below[0] + min_lag
        while lag + 1 <= max_lag and cmnd[lag + 1] < cmnd[lag]:
            lag += 1
        if 0 < lag < max_lag:  # parabolic refinement of the dip
            a, b, c = cmnd[lag - 1], cmnd[lag], cmnd[lag + 1]
            den = a - 2 * b + c
            lag = lag + (0.5 * (a - c) / den if abs(den) > EPS else 0.0)
        estimates.append(sr / lag)
    if len(estimates) < max(2, len(chosen) // 2):
        return None
    f0 = float(np.median(estimates))
    # Inharmonic sounds (bells, noise) give scattered dips: call them unpitched rather than guess.
    return f0 if float(np.median(np.abs(np.array(estimates) - f0))) <= 0.03 * f0 else None


def _yin_difference(seg: np.ndarray, w: int, max_lag: int) -> np.ndarray:
    """d(tau) = sum_j (x_j - x_{j+tau})^2 for j < w, via FFT cross-correlation."""
    size = 1 << int(math.ceil(math.log2(len(seg) + w)))
    cross = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(seg[:w], size)), size)[: max_lag + 1]
    sq = np.concatenate([[0.0], np.cumsum(seg**2)])
    energy0 = sq[w]
    energy_tau = sq[np.arange(max_lag + 1) + w] - sq[np.arange(max_lag + 1)]
    return np.maximum(energy0 + energy_tau - 2 * cross, 0.0)


def _onsets(envelope_db: np.ndarray, hop_s: float, rise_db: float = 8.0) -> tuple[np.ndarray, float]:
    """Frames where loudness jumps ``rise_db`` over the quietest of the previous ~50 ms, at least 80 ms apart."""
    e = envelope_db
    if e.size < 8:
        return np.zeros(0), SILENCE_DB
    look = max(2, int(round(0.05 / hop_s)))
    padded = np.concatenate([np.full(look, e[0]), e])
    prev_min = np.min(np.stack([padded[k : k + e.size] for k in range(look)]), axis=0)
    rise = e - prev_min
    gap = max(1, int(round(0.08 / hop_s)))
    loud_enough = e > max(e.max() - 45.0, SILENCE_DB + 10)
    times: list[int] = []
    for i in np.where((rise >= rise_db) & loud_enough)[0]:
        if times and i - times[-1] < gap:
            continue
        # Report the onset at the loudest frame of the attack, so onset_db measures the hit.
        times.append(int(i))
    if not times:
        return np.zeros(0), SILENCE_DB
    peak_frames = [min(e.size - 1, t + int(np.argmax(e[t : t + gap]))) for t in times]
    return np.array(times, dtype=np.float64) * hop_s, float(np.median(e[peak_frames]))


MODULATION_BANDS = ((0.5, 2.0), (2.0, 6.0), (6.0, 16.0))


def _modulation(envelope_db: np.ndarray, frame_rate: float) -> np.ndarray:
    """How much the loudness fluctuates (dB RMS) in slow, medium and fast modulation bands."""
    e = np.maximum(envelope_db, envelope_db.max() - 60.0) if envelope_db.size else envelope_db
    if e.size < 8:
        return np.zeros(len(MODULATION_BANDS))
    spec = np.fft.rfft((e - e.mean()) * np.hanning(e.size))
    f = np.fft.rfftfreq(e.size, 1.0 / frame_rate)
    norm = np.sum(np.hanning(e.size) ** 2)
    power = 2.0 * np.abs(spec) ** 2 / (norm * e.size)
    return np.array([math.sqrt(float(power[(f >= lo) & (f < hi)].sum())) for lo, hi in MODULATION_BANDS])


def _refine_onsets(x: np.ndarray, sr: int, onsets: np.ndarray, n_fft: int) -> np.ndarray:
    """Move each frame-level onset to the sample where the attack crosses half its peak (1 ms envelope)."""
    if onsets.size == 0:
        return onsets
    smooth = max(1, int(0.001 * sr))
    out = []
    for t in onsets:
        a = int(round(t * sr))
        seg = np.abs(x[a : a + n_fft + n_fft // 2]).astype(np.float64)
        if seg.size <= smooth:
            out.append(t)
            continue
        env = np.convolve(seg, np.ones(smooth) / smooth, mode="valid")
        floor, peak = float(np.percentile(env[: max(1, env.size // 8)], 50)), float(env.max())
        hit = np.where(env >= floor + 0.5 * (peak - floor))[0]
        out.append((a + (int(hit[0]) if hit.size else 0)) / sr)
    return np.array(out)


def _regular_period(onsets: np.ndarray) -> float | None:
    if onsets.size < 3:
        return None
    iv = np.diff(onsets)
    med = float(np.median(iv))
    if med <= 0:
        return None
    return med if float(np.median(np.abs(iv - med))) <= 0.2 * med else None


def _band_matrix(freqs: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Rectangular 1/3-octave bands over FFT bins; a band too narrow for any bin takes its nearest bin."""
    w = np.zeros((centers.size, freqs.size))
    for i, fc in enumerate(centers):
        sel = (freqs >= fc * 2 ** (-1 / 6)) & (freqs < fc * 2 ** (1 / 6))
        if sel.any():
            w[i, sel] = 1.0
        else:
            w[i, int(np.argmin(np.abs(freqs - fc)))] = 1.0
    return w


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    return np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]


def _db(power: Any) -> Any:
    return 10.0 * np.log10(np.maximum(power, 10 ** (SILENCE_DB / 10)))


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        return a
    if a.ndim != 2 or a.shape[0] == 0:
        raise PlanError(f"audio must be shaped (channels, samples), got {a.shape}")
    return a.mean(axis=0)


__all__ = [
    "EPS", "SILENCE_DB", "AudioProfile", "analyse_audio", "character_distance", "estimate_pitch", "profile_arrays",
    "profile_from_arrays", "repeat_period",
    "shape_distance", "spectral_shape",
    "texture_distance", "third_octave_centers",
]
