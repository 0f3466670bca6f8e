"""Offline audio continuation: extend a recording with sounds that match it, without a model.

AudioStory continues audio by encoding it (Whisper) into the LLM. Without weights we do what a sound editor
would: listen to the recording's tail (spectral shape, loudness, onsets, pitch), pick the foley bank's texture
(and, for rhythmic input such as footsteps or a clock, one-shot) whose spectral shape is closest, render it at
the tail's loudness and spectral tilt, keep the onset rhythm going, and cross-fade from the recording into the
new audio so the seam is inaudible.

``continue_audio(audio, sample_rate, duration)`` is the one-call entry point; ``ContinuationPlanner`` is the
planner-seam version (its plans can be rendered by any renderer).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .assemble import assemble, assign_tails
from .errors import PlanError
from .plan.reconcile import reconcile_sequence, span
from .plan.types import Plan, SubEvent
from .render.base import Clip, Renderer, event_seed
from .request import StoryRequest
from .timing import to_samples

EPS = 1e-12
SILENCE_DB = -90.0
BED_CROSSFADE = 2.0  # seconds between consecutive ≤30 s bed renders of a long continuation


# ---------------------------------------------------------------------------------------------------------------
# Analysis


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


def analyse_audio(audio: np.ndarray, sample_rate: int) -> AudioProfile:
    """Measure loudness, envelope, spectral shape, centroid, flatness, onsets and pitch of ``audio``.

    ``audio`` is float (channels, samples) or (samples,); channels are averaged. Frames are ~43 ms with a quarter
    hop, so the envelope and onsets resolve ~11 ms.
    """
    x = _mono(audio)
    sr = _check_rate(sample_rate)
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


def _check_rate(sample_rate: Any) -> int:
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        sr = 0
    if sr < 8000:
        raise PlanError(f"sample rate must be at least 8000 Hz, got {sample_rate!r}")
    return sr


# ---------------------------------------------------------------------------------------------------------------
# Choosing matching sounds


@dataclass
class Candidate:
    name: str
    description: str
    kind: str  # "texture" | "oneshot"
    distance: float  # spectral-shape distance (dB) to the input
    score: float  # distance minus the instruction bias: lower is better
    profile: AudioProfile = field(repr=False)


@dataclass
class ContinuationChoice:
    """What the planner decided: the bed texture, the one-shot for onsets (if rhythmic), and where they go."""

    profile: AudioProfile  # of the input's tail
    texture: Candidate | None
    oneshot: Candidate | None
    ranked_textures: list[Candidate]
    ranked_oneshots: list[Candidate]
    onset_times: list[float]  # in the new audio, seconds
    requested: Candidate | None = None  # a one-shot the instruction asks for by name ("... then thunder")
    requested_time: float | None = None


SynthFn = Callable[[str, float, int, int], np.ndarray]


def _default_bank() -> tuple[Mapping[str, Any], SynthFn]:
    try:
        from .render.foley.bank import BANK, synthesize
    except ImportError as exc:  # pragma: no cover - the foley bank ships with the package
        raise PlanError("offline continuation needs the foley bank (audiostory_core.render.foley.bank)") from exc
    return BANK, synthesize


_PREVIEW_CACHE: dict[tuple, AudioProfile] = {}
# Previews are rendered at most at this rate (bands up to 12.5 kHz are compared): half the cost of 48 kHz for the
# cold start, and shapes are compared over the bands both sides have.
PREVIEW_RATE = 32000
_WORD = re.compile(r"[a-z]+")
_STOP = {"a", "an", "the", "of", "and", "with", "in", "on", "at", "to", "sound", "sounds", "some", "more", "it",
         "continue", "continues", "continuing", "keep", "going", "like", "for", "audio", "this", "that", "then"}


def _words(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall((text or "").lower()):
        if w in _STOP or len(w) < 3:
            continue
        out.add(w[:-1] if w.endswith("s") and len(w) > 3 else w)  # crude plural folding: "steps" ~ "step"
    return out


class ContinuationPlanner:
    """Plans a continuation of ``request.audio_prompt`` from the foley bank (no model needed).

    ``bank`` maps names to sound types with ``description`` and ``kind`` ("oneshot" | "texture"); ``synthesize``
    renders one by name: ``synthesize(name, duration, sample_rate, seed) -> (2, n) float32``. Both default to
    ``audiostory_core.render.foley.bank``. Candidate previews are rendered once per (name, rate) and cached.
    An instruction steers the choice by up to ``instruction_bias_db``; ``embedder`` (``encode(texts)`` →
    unit vectors; "auto" = the project's MiniLM ``TextEmbedder``, loaded on the first instruction; ``None`` =
    words only) adds sentence similarity to the word match.
    """

    name = "continuation"

    def __init__(
        self,
        *,
        bank: Mapping[str, Any] | None = None,
        synthesize: SynthFn | None = None,
        preview_seconds: float = 4.0,
        tail_seconds: float = 4.0,
        instruction_bias_db: float = 12.0,
        embedder: Any = "auto",
        rhythmic_match_db: float = 10.0,
        max_event: float = 30.0,
    ) -> None:
        if bank is None or synthesize is None:
            default_bank, default_synth = _default_bank()
            bank = default_bank if bank is None else bank
            synthesize = default_synth if synthesize is None else synthesize
        self.bank = bank
        self.synthesize = synthesize
        self.preview_seconds = float(preview_seconds)
        self.tail_seconds = float(tail_seconds)
        self.instruction_bias_db = float(instruction_bias_db)
        self.rhythmic_match_db = float(rhythmic_match_db)
        self._embedder = embedder
        self.max_event = float(max_event)

    # -- the planner seam -------------------------------------------------------------------------------------

    def plan(self, request: StoryRequest) -> Plan:
        if request.audio_prompt is None or request.audio_prompt_rate is None:
            raise PlanError("the continuation planner needs an audio prompt (StoryRequest.from_audio)")
        plan, _, _ = self.plan_with_choice(request.audio_prompt, request.audio_prompt_rate, request.duration,
                                           instruction=request.instruction)
        return plan

    def plan_with_choice(
        self, audio: np.ndarray, sample_rate: int, duration: float, *, instruction: str | None = None
    ) -> tuple[Plan, ContinuationChoice, list[str]]:
        """The plan, the choice behind it, and the bank name each event renders (parallel to ``plan.events``)."""
        duration = _check_duration(duration)
        choice = self.choose(audio, sample_rate, duration, instruction=instruction)
        events: list[SubEvent] = []
        names: list[str] = []
        prof = choice.profile
        if choice.texture is not None:
            bed_level = prof.floor_db + 1.5 if choice.oneshot is not None else prof.rms_db
            gain = _clamp(bed_level - choice.texture.profile.rms_db, -60.0, 30.0)
            for ev in reconcile_sequence([(choice.texture.description, None)], duration, max_event=self.max_event,
                                         layer="ambience"):
                ev.kind, ev.gain_db = "bed", gain
                events.append(ev)
                names.append(choice.texture.name)
        if choice.oneshot is not None and choice.onset_times:
            one = choice.oneshot
            gain = _clamp(prof.onset_db - float(one.profile.envelope_db.max()), -60.0, 30.0)
            length = min(one.profile.duration, 1.5)
            times = choice.onset_times
            for k, t in enumerate(times):
                end = min(t + length, times[k + 1] if k + 1 < len(times) else duration, duration)
                if end - t < 0.01:
                    continue
                events.append(SubEvent(one.description, t, span(t, end), layer="fx", kind="hit", gain_db=gain))
                names.append(one.name)
        if choice.requested is not None and choice.requested_time is not None:
            one, t = choice.requested, choice.requested_time
            # A named event stands out: its loudest moment 6 dB over the input's loudest frame.
            gain = _clamp(float(prof.envelope_db.max()) + 6.0 - float(one.profile.envelope_db.max()), -60.0, 30.0)
            end = min(t + 3.0, duration)
            events.append(SubEvent(one.description, t, span(t, end), layer="fx", kind="hit", gain_db=gain))
            names.append(one.name)
        order = sorted(range(len(events)), key=lambda i: (events[i].start, events[i].layer))
        events = [events[i] for i in order]
        names = [names[i] for i in order]
        plan = Plan(reasoning=self._reasoning(choice, duration, instruction), events=events, duration=duration,
                    planner=self.name)
        return plan, choice, names

    # -- choosing ---------------------------------------------------------------------------------------------

    def choose(
        self, audio: np.ndarray, sample_rate: int, duration: float, *, instruction: str | None = None
    ) -> ContinuationChoice:
        """Rank the bank's textures and one-shots by spectral distance to the input's tail (biased by the
        instruction's words), and lay out onsets that continue the input's rhythm."""
        sr = _check_rate(sample_rate)
        x = _check_audio(audio)
        tail = x[:, -max(1, int(round(self.tail_seconds * sr))) :]
        prof = analyse_audio(tail, sr)
        whole = analyse_audio(x, sr) if x.shape[-1] > tail.shape[-1] else prof
        # Rhythm is judged on more of the input than the tail: a slow clock needs a few ticks to be seen.
        rhythm = whole if whole.onset_times.size > prof.onset_times.size else prof
        query = self.affinity(instruction)
        textures = self._rank("texture", prof, query)
        oneshots: list[Candidate] = []
        texture = textures[0] if textures else None
        oneshot = None
        onset_times: list[float] = []
        if rhythm.rhythmic:
            prof = _merge_rhythm(prof, rhythm)
            onset_times = _continue_rhythm(rhythm, duration)
            # A texture that already has this rhythm (footsteps, a clock) continues it best: it is rendered with
            # its first hit on the next beat. Otherwise place one-shots on the beats over a bed that matches
            # what lies between the hits and brings no rhythm of its own.
            rhythmic = [c for c in textures if c.profile.rhythmic]
            if not (rhythmic and rhythmic[0].score <= self.rhythmic_match_db):
                between = replace(prof, band_db=prof.floor_band_db, onset_rate=0.0, onset_times=np.zeros(0),
                                  modulation_db=np.zeros_like(prof.modulation_db))
                textures = [c for c in self._rank("texture", between, query) if not c.profile.rhythmic] or textures
                texture = textures[0] if textures else None
                hits = _hits_profile(x, sr, rhythm)  # match the one-shot to the hits, not to the bed
                oneshots = self._rank("oneshot", hits, query)
                oneshot = oneshots[0] if oneshots else None
                if oneshot is not None and rhythm.floor_db < SILENCE_DB + 20:  # clicks over silence: no bed
                    texture = None
            else:
                texture = rhythmic[0]
        requested, when = self._requested_oneshot(query, prof, duration, oneshot)
        if prof.rms <= 1e-6:  # silence continues as silence
            texture, oneshot, onset_times, requested, when = None, None, [], None, None
        return ContinuationChoice(prof, texture, oneshot, textures, oneshots, onset_times, requested, when)

    def _requested_oneshot(
        self, query: dict[str, float], target: AudioProfile, duration: float, rhythm_oneshot: Candidate | None
    ) -> tuple[Candidate | None, float | None]:
        """The one-shot an instruction clearly names (affinity >= 0.5), placed once, a third of the way in."""
        named = [n for n in self.bank if getattr(self.bank[n], "kind", "") == "oneshot" and query.get(n, 0.0) >= 0.5]
        if not named or duration < 0.3:
            return None, None
        best = max(named, key=lambda n: (query[n], n))
        if rhythm_oneshot is not None and rhythm_oneshot.name == best:
            return None, None
        cand = next(c for c in self._rank("oneshot", target, {best: query[best]}) if c.name == best)
        return cand, round(min(max(duration / 3.0, 0.6), duration - 0.1), 6)

    def affinity(self, instruction: str | None) -> dict[str, float]:
        """How strongly (0..1) the instruction asks for each bank sound; empty without an instruction.

        A sound counts as asked for by the share of its name's words in the instruction (all of "door slam"), one
        of its keyword phrases, or the share of the instruction's words its description has; with an ``embedder`` the sentence
        similarity counts too (cosine 0.2 → 0, 0.6 and above → 1), whichever is larger.
        """
        words = _words(instruction or "")
        if not words:
            return {}
        names = list(self.bank)
        text = " " + " ".join(_WORD.findall(instruction.lower())) + " "
        out = {}
        for name in names:
            sound = self.bank[name]
            own = _words(name.replace("_", " "))  # "thunder", "door slam": named outright
            named = len(words & own) / len(own) if own else 0.0
            phrase = any(f" {k.lower().strip()} " in text for k in getattr(sound, "keywords", ()) if k.strip())
            described = len(words & _words(str(getattr(sound, "description", "")))) / len(words)
            out[name] = max(named, float(phrase), described)
        embedder = self._get_embedder()
        if embedder is not None:
            vecs = embedder.encode([instruction] + [str(getattr(self.bank[n], "description", n)) for n in names])
            sims = vecs[1:] @ vecs[0]
            for name, sim in zip(names, sims):
                out[name] = max(out[name], _clamp((float(sim) - 0.2) / 0.4, 0.0, 1.0))
        return out

    def _get_embedder(self) -> Any:
        if self._embedder == "auto":
            try:
                from .embeddings import TextEmbedder

                self._embedder = TextEmbedder()
            except Exception:  # no model installed: the word match alone steers the choice
                self._embedder = None
        return self._embedder

    def _rank(self, kind: str, target: AudioProfile, query: dict[str, float]) -> list[Candidate]:
        out: list[Candidate] = []
        for name, sound in self.bank.items():
            if getattr(sound, "kind", "texture") != kind:
                continue
            prof = self.preview(name, min(target.sample_rate, PREVIEW_RATE))
            dist = texture_distance(target, prof) if kind == "texture" else shape_distance(target, prof)
            desc = str(getattr(sound, "description", name))
            bias = self.instruction_bias_db * query.get(name, 0.0)
            out.append(Candidate(name, desc, kind, dist, dist - bias, prof))
        out.sort(key=lambda c: (c.score, c.name))
        return out

    def preview(self, name: str, sample_rate: int) -> AudioProfile:
        """The profile of a short render of bank sound ``name`` (cached per synthesiser, name and rate)."""
        key = (self.synthesize, name, int(sample_rate), self.preview_seconds)  # the function, not its id: ids are reused
        if key not in _PREVIEW_CACHE:
            audio = np.asarray(self.synthesize(name, self.preview_seconds, int(sample_rate), 0), dtype=np.float32)
            _PREVIEW_CACHE[key] = analyse_audio(audio, int(sample_rate))
        return _PREVIEW_CACHE[key]

    def _reasoning(self, choice: ContinuationChoice, duration: float, instruction: str | None) -> str:
        p = choice.profile
        lines = [f"Input tail: {p.describe()}."]
        if instruction:
            lines.append(f"Instruction: {instruction.strip()}.")
        close = ", ".join(f"{c.name} ({c.distance:.1f} dB)" for c in choice.ranked_textures[:3])
        if close:
            lines.append(f"Closest textures by spectral shape: {close}.")
        if choice.texture is not None:
            lines.append(f"Continue for {duration:.2f} s with a bed of '{choice.texture.name}' "
                         f"({choice.texture.description}) at the tail's loudness.")
        if choice.oneshot is None and choice.onset_times and choice.texture is not None:
            lines.append(f"The input has repeating onsets ({p.onset_rate:.2f}/s) and '{choice.texture.name}' carries "
                         f"that rhythm: its first hit is placed on the next beat, {choice.onset_times[0]:.2f} s in.")
        if choice.oneshot is not None and choice.onset_times:
            lines.append(f"The input has repeating onsets ({p.onset_rate:.2f}/s): keep them going with "
                         f"{len(choice.onset_times)} × '{choice.oneshot.name}' from {choice.onset_times[0]:.2f} s.")
        if choice.requested is not None:
            lines.append(f"The instruction names '{choice.requested.name}': one at {choice.requested_time:.2f} s.")
        if choice.texture is None and choice.oneshot is None:
            lines.append(f"The input is silent: continue with {duration:.2f} s of silence.")
        return "\n".join(lines)


def _hits_profile(x: np.ndarray, sr: int, rhythm: AudioProfile) -> AudioProfile:
    """Profile of ~60 ms windows at the input's onsets (what one hit sounds like)."""
    w = int(0.06 * sr)
    first = x.shape[-1] - int(round(rhythm.duration * sr))  # rhythm covers the last rhythm.duration seconds
    starts = [first + int(round(t * sr)) for t in rhythm.onset_times]
    pieces = [x[:, max(0, s - w // 8) : s + w] for s in starts if 0 <= s < x.shape[-1]]
    if not pieces:
        return analyse_audio(x, sr)
    return analyse_audio(np.concatenate(pieces, axis=-1), sr)


def _continue_rhythm(rhythm: AudioProfile, duration: float) -> list[float]:
    """Onset times in the new audio that keep the input's rhythm: on its period when regular, else at its rate."""
    # Onset times relative to the input's end (the rhythm profile may cover only its tail).
    last = rhythm.onset_times[-1] - rhythm.duration
    if rhythm.onset_period:
        step = rhythm.onset_period
    else:
        step = 1.0 / max(rhythm.onset_rate, 1e-3)
    t = last + step
    while t < 0.02:
        t += step
    out = []
    while t < duration - 0.02:
        out.append(round(t, 6))
        t += step
    return out


def _merge_rhythm(prof: AudioProfile, rhythm: AudioProfile) -> AudioProfile:
    if rhythm is prof:
        return prof
    return replace(prof, onset_times=rhythm.onset_times, onset_rate=rhythm.onset_rate,
                   onset_period=rhythm.onset_period, onset_db=rhythm.onset_db)


# ---------------------------------------------------------------------------------------------------------------
# Rendering and the seam


@dataclass
class ContinuationResult:
    """``audio`` (channels, samples) at ``sample_rate``: the new audio, or input + new audio with include_input."""

    audio: np.ndarray
    sample_rate: int
    plan: Plan
    choice: ContinuationChoice | None = field(default=None, repr=False)

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


def continue_audio(
    audio: np.ndarray,
    sample_rate: int,
    duration: float,
    *,
    instruction: str | None = None,
    seed: int = 0,
    include_input: bool = False,
    crossfade: float = 0.5,
    match_tilt: bool = True,
    planner: ContinuationPlanner | None = None,
    renderer: Renderer | None = None,
) -> ContinuationResult:
    """Continue ``audio`` for exactly ``duration`` seconds (``round(duration * sample_rate)`` samples).

    The new audio matches the tail's loudness (RMS of the last seconds) and, with ``match_tilt``, its spectral
    tilt; its first ``crossfade`` seconds are an equal-power crossfade from the input "played on" (a copy of
    its recent past, one beat back for rhythmic input, entered through its mirror image so the first new sample
    continues the last input sample) into the continuation. With ``include_input`` the result starts with the
    input's samples, unchanged. ``renderer`` renders the plan instead of the bank's synthesiser (e.g. the DiT
    renderer, at any rate); the level and seam treatment are the same. Beds longer than 30 s are joined with
    ``BED_CROSSFADE``-second crossfades, as in long-form assembly.
    """
    sr = _check_rate(sample_rate)
    x = _check_audio(audio)
    duration = _check_duration(duration)
    planner = planner or ContinuationPlanner()
    plan, choice, names = planner.plan_with_choice(x, sr, duration, instruction=instruction)
    n = to_samples(duration, sr)
    channels = x.shape[0]
    assign_tails(plan, BED_CROSSFADE)
    if renderer is not None:
        clips = renderer.render(plan, plan.conditioning, seed=seed)
    else:
        clips = _render_from_bank(plan, names, planner.synthesize, sr, seed, choice)
    track = assemble(clips, plan, sr, channels=channels, crossfade=BED_CROSSFADE, total_samples=n)
    # Loudness is matched on what continues the input: the bed, unless the input's own hits are part of it.
    bed = track.stems.get("ambience") if choice.oneshot is None else None
    new = _match_level(track.audio, x, sr, choice.profile.onset_period, planner.tail_seconds, match_tilt, measure=bed)
    beat = choice.profile.onset_period if choice.onset_times else None
    new = _crossfade_from_tail(x, new, sr, int(round(max(crossfade, 0.0) * sr)), beat)
    out = np.concatenate([x, new], axis=-1) if include_input else new
    return ContinuationResult(audio=out.astype(np.float32, copy=False), sample_rate=sr, plan=plan, choice=choice)


def join_continuation(
    audio: np.ndarray,
    sample_rate: int,
    new: np.ndarray,
    new_rate: int,
    *,
    include_input: bool = False,
    crossfade: float = 0.5,
    match_tilt: bool = True,
    tail_seconds: float = 4.0,
) -> np.ndarray:
    """Seam treatment for audio generated elsewhere (e.g. by the AudioStory model from the audio prompt).

    ``new`` is brought to the input's rate and channels, its level and tilt matched to the input's tail, and it is
    crossfaded from the input played on, exactly as ``continue_audio`` does for its own renders.
    """
    from .assemble import match_channels, resample

    sr = _check_rate(sample_rate)
    x = _check_audio(audio)
    fresh = match_channels(resample(np.asarray(new, np.float32), int(new_rate), sr), x.shape[0])
    profile = analyse_audio(x[:, -int(tail_seconds * sr):], sr)
    period = profile.onset_period if profile.onset_times.size else None
    fresh = _match_level(fresh, x, sr, period, tail_seconds, match_tilt)
    fresh = _crossfade_from_tail(x, fresh, sr, int(round(max(crossfade, 0.0) * sr)), period)
    out = np.concatenate([x, fresh], axis=-1) if include_input else fresh
    return out.astype(np.float32, copy=False)


def _render_from_bank(
    plan: Plan, names: Sequence[str], synthesize: SynthFn, sr: int, seed: int, choice: ContinuationChoice
) -> list[Clip]:
    clips: list[Clip] = []
    variants: dict[tuple[str, float], list[np.ndarray]] = {}
    for i, (ev, name) in enumerate(zip(plan.events, names)):
        if ev.layer == "fx":
            # Repeated hits: four takes of the one-shot, cycled, so a long rhythm costs four renders.
            key = (name, round(ev.render_duration, 3))
            takes = variants.setdefault(key, [])
            if len(takes) < 4:
                takes.append(np.asarray(synthesize(name, ev.render_duration, sr, event_seed(seed, i)), np.float32))
            audio = takes[i % len(takes)] if len(takes) == 4 else takes[-1]
        elif ev.start == 0.0 and choice.oneshot is None and choice.onset_times and choice.texture is not None:
            beat = choice.profile.onset_period or 1.0 / max(choice.profile.onset_rate, 0.2)
            audio = _render_on_beat(synthesize, name, ev.render_duration, sr, event_seed(seed, i),
                                    choice.onset_times[0], beat)
        else:
            audio = np.asarray(synthesize(name, ev.render_duration, sr, event_seed(seed, i)), np.float32)
        clips.append(Clip(audio=audio, sample_rate=sr, event=ev, source=f"synth:{name}"))
    return clips


def _render_on_beat(
    synthesize: SynthFn, name: str, duration: float, sr: int, seed: int, first_beat: float, beat: float | None
) -> np.ndarray:
    """Render a rhythmic texture whose tempo matches ``beat`` (s) with one of its hits on ``first_beat``.

    A synthesiser may pick its tempo at random, so up to four takes are tried and the closest tempo kept; the
    render is then started late so that its next hit lands on the input's next beat (the phase carries on).
    """
    n = int(round(duration * sr))
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for take in range(4):
        lead = min(2.0 * (beat or 1.0) + 0.5, 10.0)
        audio = np.asarray(synthesize(name, duration + lead, sr, event_seed(seed, 101 + take)), np.float32)
        hits = analyse_audio(audio, sr).onset_times
        period = float(np.median(np.diff(hits))) if hits.size >= 2 else None
        miss = abs(math.log(period / beat)) if (beat and period) else 0.0
        if best is None or miss < best[0]:
            best = (miss, audio, hits)
        if miss < 0.1:
            break
    assert best is not None
    _, audio, hits = best
    later = hits[hits >= first_beat]
    lead_s = audio.shape[-1] / sr - duration
    if later.size == 0 or later[0] - first_beat > lead_s:
        return audio[:, :n]
    shift = int(round((later[0] - first_beat) * sr))
    return audio[:, shift : shift + n]


def _match_level(
    new: np.ndarray,
    x: np.ndarray,
    sr: int,
    period: float | None,
    tail_seconds: float,
    match_tilt: bool,
    measure: np.ndarray | None = None,
) -> np.ndarray:
    """Scale (and tilt-EQ) the new audio so its RMS and spectral tilt match the input's tail.

    ``measure`` is the part of ``new`` whose level and tilt should match (default: all of it).
    """
    if new.shape[-1] == 0 or not np.any(new):
        return new
    ref = new if measure is None or not np.any(measure) else measure
    tail_len = int(round(max(tail_seconds, 2 * (period or 0.0)) * sr))
    tail = x[:, -max(1, tail_len) :]
    if match_tilt and new.shape[-1] >= int(0.1 * sr):
        got = analyse_audio(ref[:, : int(8 * sr)], sr)  # a few seconds tell the tilt; the rest costs time
        want = analyse_audio(tail, sr)
        tilt = _clamp(want.tilt - got.tilt, -3.0, 3.0)
        new = apply_tilt(new, sr, tilt)
        ref = new if ref is new or measure is None else apply_tilt(ref, sr, tilt)
    target = float(np.sqrt(np.mean(tail.astype(np.float64) ** 2)))
    have = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    if have <= EPS:
        return new
    if target <= 1e-6:
        return np.zeros_like(new)
    gain = 10 ** (_clamp(20 * math.log10(target / have), -40.0, 40.0) / 20)
    return (new * np.float32(gain)).astype(np.float32)


def apply_tilt(audio: np.ndarray, sample_rate: int, db_per_octave: float, pivot_hz: float = 1000.0) -> np.ndarray:
    """A gentle EQ: gain ``db_per_octave * log2(f / pivot)`` (±12 dB at most), applied in the frequency domain."""
    if abs(db_per_octave) < 0.05:
        return audio
    n = audio.shape[-1]
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    gain_db = np.clip(db_per_octave * np.log2(np.maximum(f, 20.0) / pivot_hz), -12.0, 12.0)
    spec = np.fft.rfft(audio.astype(np.float64), axis=-1) * (10 ** (gain_db / 20))[None, :]
    return np.fft.irfft(spec, n, axis=-1).astype(np.float32)


def _crossfade_from_tail(
    x: np.ndarray, new: np.ndarray, sr: int, length: int, beat: float | None = None
) -> np.ndarray:
    """Equal-power crossfade over the first ``length`` samples of ``new`` from the input "played on".

    The input played on is a copy of its own recent past (one beat back for rhythmic input, so the rhythm keeps
    its phase; otherwise the lag whose lead-in best matches the input's last 10 ms). Its first 5 ms blend in from
    the input's mirror image ``x[-1], x[-2], ...``, which starts on the input's last sample, so there is no step at
    the seam; after that the fade is a blend of two like sounds, so the level does not dip.
    """
    n_in = x.shape[-1]
    length = min(length, n_in, new.shape[-1])
    if length <= 0:
        return new
    lag = _splice_lag(x, sr, length, beat)
    played_on = x[:, n_in - lag : n_in - lag + length]
    mirror = x[:, ::-1][:, :length]
    m = min(length, max(1, int(round(0.005 * sr))))
    u = (np.arange(m, dtype=np.float64) + 0.5) / m
    ext = played_on.astype(np.float64).copy()
    ext[:, :m] = mirror[:, :m] * np.cos(u * np.pi / 2) + played_on[:, :m] * np.sin(u * np.pi / 2)
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    out = new.copy()
    out[:, :length] = (ext * np.cos(t * np.pi / 2) + new[:, :length] * np.sin(t * np.pi / 2)).astype(np.float32)
    return out


def _splice_lag(x: np.ndarray, sr: int, length: int, beat: float | None) -> int:
    """How far back (samples) to copy the input from, at least ``length`` so the copy lies inside the input."""
    n_in = x.shape[-1]
    if beat and beat > 0:
        period = int(round(beat * sr))
        if period > 0:
            lag = period * int(math.ceil(length / period))
            if lag <= n_in:
                return lag
    lo, hi = length, min(n_in, length + int(0.1 * sr))
    w = min(int(0.01 * sr), n_in - hi) if hi < n_in else 0
    if hi <= lo or w < 16:
        return min(max(length, 1), n_in)
    mono = x.mean(axis=0).astype(np.float64)
    ref = mono[n_in - w :]
    # Candidate lag L: compare x[n-L-w : n-L] with the last w samples (normalised correlation).
    region = mono[n_in - hi - w : n_in - lo]
    seg = np.lib.stride_tricks.sliding_window_view(region, w)  # rows: start offsets n-hi-w ... n-lo-w
    num = seg @ ref
    den = np.sqrt((seg**2).sum(axis=1) * (ref @ ref)) + EPS
    best = int(np.argmax(num / den))
    return hi - best


def _check_audio(audio: Any) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[-1] == 0:
        raise PlanError(f"input audio must be shaped (channels, samples) with some samples, got {a.shape}")
    if a.shape[0] > 16 and a.shape[-1] <= 16:
        raise PlanError(f"input audio looks transposed {a.shape}: pass it as (channels, samples)")
    if not np.all(np.isfinite(a)):
        raise PlanError("input audio contains NaN or infinite samples; clean it before continuing it")
    return a


def _check_duration(duration: Any) -> float:
    try:
        d = float(duration)
    except (TypeError, ValueError):
        d = float("nan")
    if not (d > 0) or not math.isfinite(d):
        raise PlanError(f"continuation duration must be a positive number of seconds, got {duration!r}")
    return d


def _clamp(v: float, lo: float, hi: float) -> float:
    return float(min(max(v, lo), hi))


__all__ = [
    "AudioProfile", "Candidate", "ContinuationChoice", "ContinuationPlanner", "ContinuationResult", "analyse_audio",
    "apply_tilt", "continue_audio", "estimate_pitch", "shape_distance", "spectral_shape", "third_octave_centers",
]
