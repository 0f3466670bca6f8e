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
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .assemble import assemble, assign_tails
from .errors import PlanError
from .plan.reconcile import reconcile_sequence, span
from .plan.types import Plan, SubEvent
from .render.base import Clip, Renderer, event_seed
from .request import StoryRequest

EPS = 1e-12
SILENCE_DB = -90.0


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


def analyse_audio(audio: np.ndarray, sample_rate: int) -> AudioProfile:
    """Measure loudness, envelope, spectral shape, centroid, flatness, onsets and pitch of ``audio``.

    ``audio`` is float (channels, samples) or (samples,); channels are averaged. Frames are ~43 ms with a quarter
    hop, so the envelope and onsets resolve ~11 ms.
    """
    x = _mono(audio)
    sr = _check_rate(sample_rate)
    n_fft = int(2 ** round(math.log2(0.043 * sr)))
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
    return float(np.median(estimates))


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
    count = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    return x[idx]


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


SynthFn = Callable[[str, float, int, int], np.ndarray]


def _default_bank() -> tuple[Mapping[str, Any], SynthFn]:
    try:
        from .render.foley.bank import BANK, synthesize
    except ImportError as exc:  # pragma: no cover - the foley bank ships with the package
        raise PlanError("offline continuation needs the foley bank (audiostory_core.render.foley.bank)") from exc
    return BANK, synthesize


_PREVIEW_CACHE: dict[tuple, AudioProfile] = {}
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
    """

    name = "continuation"

    def __init__(
        self,
        *,
        bank: Mapping[str, Any] | None = None,
        synthesize: SynthFn | None = None,
        preview_seconds: float = 2.0,
        tail_seconds: float = 4.0,
        instruction_bias_db: float = 6.0,
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
            bed_level = prof.floor_db if prof.rhythmic else prof.rms_db
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
                events.append(SubEvent(one.description, t, span(t, end), layer="fx", kind="onset", gain_db=gain))
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
        query = _words(instruction or "")
        textures = self._rank("texture", prof, query)
        oneshots = self._rank("oneshot", prof, query)
        texture = textures[0] if textures else None
        oneshot = None
        onset_times: list[float] = []
        if rhythm.rhythmic and oneshots:
            # Match the one-shot to the hits, not the bed: the spectrum of the frames at the onsets.
            hits = _hits_profile(x, sr, rhythm)
            oneshots = self._rank("oneshot", hits, query)
            oneshot = oneshots[0]
            onset_times = _continue_rhythm(rhythm, x.shape[-1] / sr, duration)
            if rhythm.floor_db < SILENCE_DB + 20:  # clicks over silence: no bed
                texture = None
            prof = _merge_rhythm(prof, rhythm)
        if texture is None and oneshot is None and textures:
            texture = textures[0]
        if prof.rms <= 1e-6 and not query:
            texture, oneshot, onset_times = None, None, []
        return ContinuationChoice(prof, texture, oneshot, textures, oneshots, onset_times)

    def _rank(self, kind: str, target: AudioProfile, query: set[str]) -> list[Candidate]:
        out: list[Candidate] = []
        for name, sound in self.bank.items():
            if getattr(sound, "kind", "texture") != kind:
                continue
            prof = self.preview(name, target.sample_rate)
            dist = shape_distance(target, prof)
            desc = str(getattr(sound, "description", name))
            bias = 0.0
            if query:
                overlap = len(query & (_words(desc) | _words(name.replace("_", " "))))
                bias = self.instruction_bias_db * overlap / len(query)
            out.append(Candidate(name, desc, kind, dist, dist - bias, prof))
        out.sort(key=lambda c: (c.score, c.name))
        return out

    def preview(self, name: str, sample_rate: int) -> AudioProfile:
        """The profile of a short render of bank sound ``name`` (cached per synthesiser, name and rate)."""
        key = (id(self.synthesize), name, int(sample_rate), self.preview_seconds)
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
        if choice.oneshot is not None and choice.onset_times:
            lines.append(f"The input has repeating onsets ({p.onset_rate:.2f}/s): keep them going with "
                         f"{len(choice.onset_times)} × '{choice.oneshot.name}' from {choice.onset_times[0]:.2f} s.")
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


def _continue_rhythm(rhythm: AudioProfile, input_duration: float, duration: float) -> list[float]:
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
    from dataclasses import replace

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
    tilt; its first ``crossfade`` seconds are an equal-power crossfade from a mirror image of the input's tail
    (so the first new sample continues the last input sample) into the continuation. With ``include_input`` the
    result starts with the input's samples, unchanged. ``renderer`` renders the plan instead of the bank's
    synthesiser (e.g. the DiT renderer); the level and seam treatment are the same.
    """
    sr = _check_rate(sample_rate)
    x = _check_audio(audio)
    duration = _check_duration(duration)
    planner = planner or ContinuationPlanner()
    plan, choice, names = planner.plan_with_choice(x, sr, duration, instruction=instruction)
    n = int(math.floor(duration * sr + 0.5))
    channels = x.shape[0]
    xfade = min(float(crossfade), 3.0)
    assign_tails(plan, xfade)
    if renderer is not None:
        clips = renderer.render(plan, plan.conditioning, seed=seed)
    else:
        clips = _render_from_bank(plan, names, planner.synthesize, sr, seed)
    new = assemble(clips, plan, sr, channels=channels, crossfade=xfade, total_samples=n).audio
    new = _match_level(new, x, sr, choice, planner.tail_seconds, match_tilt)
    new = _crossfade_from_tail(x, new, int(round(max(crossfade, 0.0) * sr)))
    out = np.concatenate([x, new], axis=-1) if include_input else new
    return ContinuationResult(audio=out.astype(np.float32, copy=False), sample_rate=sr, plan=plan, choice=choice)


def _render_from_bank(plan: Plan, names: Sequence[str], synthesize: SynthFn, sr: int, seed: int) -> list[Clip]:
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
        else:
            audio = np.asarray(synthesize(name, ev.render_duration, sr, event_seed(seed, i)), np.float32)
        clips.append(Clip(audio=audio, sample_rate=sr, event=ev, source=f"synth:{name}"))
    return clips


def _match_level(
    new: np.ndarray, x: np.ndarray, sr: int, choice: ContinuationChoice, tail_seconds: float, match_tilt: bool
) -> np.ndarray:
    """Scale (and tilt-EQ) the new audio so its RMS and spectral tilt match the input's tail."""
    if new.shape[-1] == 0 or not np.any(new):
        return new
    tail_len = int(round(max(tail_seconds, 2 * (choice.profile.onset_period or 0.0)) * sr))
    tail = x[:, -max(1, tail_len) :]
    if match_tilt and new.shape[-1] >= int(0.1 * sr):
        got = analyse_audio(new, sr)
        want = analyse_audio(tail, sr)
        new = apply_tilt(new, sr, _clamp(want.tilt - got.tilt, -3.0, 3.0))
    target = float(np.sqrt(np.mean(tail.astype(np.float64) ** 2)))
    have = float(np.sqrt(np.mean(new.astype(np.float64) ** 2)))
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


def _crossfade_from_tail(x: np.ndarray, new: np.ndarray, length: int) -> np.ndarray:
    """Equal-power crossfade from the input's mirrored tail into ``new`` over its first ``length`` samples.

    The mirror image ``x[-1], x[-2], ...`` starts on the input's last sample, so there is no step at the seam, and
    it has the tail's spectrum and level, so the fade is a blend of two like sounds rather than a dip.
    """
    length = min(length, x.shape[-1], new.shape[-1])
    if length <= 0:
        return new
    out = new.copy()
    mirror = x[:, ::-1][:, :length]
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    fade_out, fade_in = np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)
    out[:, :length] = (mirror * fade_out + new[:, :length] * fade_in).astype(np.float32)
    return out


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
