"""Continuing a recording: render the continuation plan and join it to the input so the seam is inaudible.

The planner (``plan.continuation_planner``) listens to the tail and picks bank sounds; here they are rendered at
the tail's loudness and spectral tilt (the rhythm's phase kept), and the new audio is cross-faded in from the
input "played on". ``continue_audio(audio, sample_rate, duration)`` is the one-call entry point;
``join_continuation`` gives audio generated elsewhere (the AudioStory model through the pipeline) the same seam.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .analysis import EPS, analyse_audio
from .assemble import assemble, assign_tails
from .audio import check_audio, check_rate, match_channels, resample
from .plan.continuation_planner import INPUT_SOUND, ContinuationChoice, ContinuationPlanner, SynthFn, check_duration
from .plan.types import Plan
from .render.base import Clip, Renderer, event_seed
from .render.foley.bank import BANK, synthesize
from .timing import to_samples

BED_CROSSFADE = 2.0  # seconds between consecutive ≤30 s bed renders of a long continuation


@dataclass
class ContinuationResult:
    """``audio`` (channels, samples) at ``sample_rate``: the new audio, or input + new audio with include_input."""

    audio: np.ndarray
    sample_rate: int
    plan: Plan
    choice: ContinuationChoice | None = field(default=None, repr=False)
    clips: list[Clip] = field(default_factory=list, repr=False)  # what was rendered (their credits: the clips heard)

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
    input's samples, unchanged. ``renderer`` renders the plan instead of the bank's synthesiser (the foley
    renderer plays the sound each event names; the DiT renderer its caption, at any rate); the level and seam
    treatment are the same. Beds longer than 30 s are joined with
    ``BED_CROSSFADE``-second crossfades, as in long-form assembly.
    """
    sr = check_rate(sample_rate)
    x = check_audio(audio)
    duration = check_duration(duration)
    planner = planner or ContinuationPlanner(BANK, synthesize)
    plan, choice = planner.plan_with_choice(x, sr, duration, instruction=instruction)
    assign_tails(plan, BED_CROSSFADE)
    clips = _render(plan, choice, x, sr, seed, planner, renderer)
    track = assemble(clips, plan, sr, channels=x.shape[0], crossfade=BED_CROSSFADE,
                     total_samples=to_samples(duration, sr))
    if choice.loop_seconds is not None or choice.own_texture:  # its own sound: at its level (a loop on its beat)
        out = _join(x, sr, track.audio, period=choice.loop_seconds, beat=choice.loop_seconds, crossfade=crossfade,
                    match_tilt=False, tail_seconds=planner.tail_seconds, include_input=include_input, level=False)
        return ContinuationResult(audio=out, sample_rate=sr, plan=plan, choice=choice, clips=track.clips)
    # Loudness is matched on what continues the input: the bed, unless the input's own hits are part of it.
    bed = track.stems.get("ambience") if choice.oneshot is None else None
    out = _join(x, sr, track.audio, period=choice.profile.onset_period,
                beat=choice.profile.onset_period if choice.onset_times else None, crossfade=crossfade,
                match_tilt=match_tilt, tail_seconds=planner.tail_seconds, include_input=include_input, measure=bed)
    return ContinuationResult(audio=out, sample_rate=sr, plan=plan, choice=choice, clips=track.clips)


def _render(plan: Plan, choice: ContinuationChoice, x: np.ndarray, sr: int, seed: int,
            planner: ContinuationPlanner, renderer: Renderer | None) -> list[Clip]:
    """Every event's clip: the input's own material played on, else the renderer's (or the planner's bank's)."""
    own = [ev for ev in plan.events if ev.sound == INPUT_SOUND]
    rest = Plan(plan.reasoning, [ev for ev in plan.events if ev.sound != INPUT_SOUND], plan.duration,
                planner=plan.planner) if own else plan
    if renderer is not None:
        clips = renderer.render(rest, rest.conditioning if own else plan.conditioning, seed=seed) if rest.events else []
    else:
        clips = _render_from_bank(rest, planner.synthesize, sr, seed, choice, getattr(planner.bank, "credits", None))
    for i, ev in enumerate(own):
        n = int(round(ev.render_duration * sr))
        if choice.loop_seconds is not None:
            audio, how = play_on(x, sr, choice.loop_seconds, n), "loop"
        else:
            audio, how = extend_texture(x, sr, n, event_seed(seed, i)), "texture"
        clips.append(Clip(audio=audio, sample_rate=sr, event=ev, source=f"{INPUT_SOUND}:{how}"))
    return clips


def extend_texture(x: np.ndarray, sr: int, n: int, seed: int, piece: float = 2.0, overlap: float = 0.25,
                   source: float = 8.0) -> np.ndarray:
    """``n`` samples of the input's own texture: seeded excerpts of the sustained part of its last ``source``
    seconds (a sample's attack and release left out), each up to ``piece`` s, joined by equal-power crossfades
    of ``overlap`` s — the sound goes on without gaps and without the fixed period a loop would have."""
    src = _sustained(x[:, -int(source * sr):].astype(np.float64), sr)
    length = src.shape[-1]
    seg = max(2, min(int(piece * sr), length * 3 // 4))
    f = max(1, min(int(overlap * sr), seg // 3))
    t = (np.arange(f) + 0.5) / f
    fade_in, fade_out = np.sin(t * np.pi / 2), np.cos(t * np.pi / 2)
    rng = np.random.default_rng(seed)
    out = np.zeros((x.shape[0], max(n, 0) + seg))
    pos = 0
    while pos < n:
        s0 = int(rng.integers(0, length - seg + 1))
        part = src[:, s0:s0 + seg].copy()
        if pos:
            part[:, :f] *= fade_in
        part[:, -f:] *= fade_out
        out[:, pos:pos + seg] += part
        pos += seg - f
    return out[:, :n].astype(np.float32)


def play_on(x: np.ndarray, sr: int, cycle: float, n: int, fade: float = 0.01) -> np.ndarray:
    """``n`` samples of the input's last ``cycle`` seconds (whole periods of a loop) played again and again.

    Each repeat wraps from the cycle's end back to its start; the last ``fade`` seconds of the cycle are
    crossfaded into what precedes its start in the input, so the wrap joins two samples that followed each other
    in the recording (no step, no click). The seam after the input itself is made by the crossfade in ``_join``.
    """
    n_in = x.shape[-1]
    length = min(n_in, max(1, int(round(cycle * sr))))
    loop = x[:, n_in - length:].astype(np.float64)
    f = min(int(round(fade * sr)), n_in - length, length // 4)
    if f > 1:
        before = x[:, n_in - length - f: n_in - length]
        t = (np.arange(f) + 0.5) / f
        loop[:, -f:] = loop[:, -f:] * np.cos(t * np.pi / 2) + before * np.sin(t * np.pi / 2)
    reps = -(-max(n, 0) // length)
    return np.tile(loop, (1, reps))[:, :n].astype(np.float32)


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
    sr = check_rate(sample_rate)
    x = check_audio(audio)
    fresh = match_channels(resample(np.asarray(new, np.float32), int(new_rate), sr), x.shape[0])
    profile = analyse_audio(x[:, -int(tail_seconds * sr):], sr)
    period = profile.onset_period if profile.onset_times.size else None
    return _join(x, sr, fresh, period=period, beat=period, crossfade=crossfade, match_tilt=match_tilt,
                 tail_seconds=tail_seconds, include_input=include_input)


def _join(
    x: np.ndarray, sr: int, new: np.ndarray, *, period: float | None, beat: float | None, crossfade: float,
    match_tilt: bool, tail_seconds: float, include_input: bool, measure: np.ndarray | None = None,
    level: bool = True,
) -> np.ndarray:
    """The seam, one way for every path: level (and tilt) matched to the input's tail (unless ``level`` is off:
    the input's own material), then the first ``crossfade`` seconds faded in from the input played on; the input
    in front with ``include_input``."""
    if level:
        new = _match_level(new, x, sr, period, tail_seconds, match_tilt, measure=measure)
    new = _crossfade_from_tail(x, new, sr, int(round(max(crossfade, 0.0) * sr)), beat)
    out = np.concatenate([x, new], axis=-1) if include_input else new
    return out.astype(np.float32, copy=False)


def _render_from_bank(
    plan: Plan, synthesize: SynthFn, sr: int, seed: int, choice: ContinuationChoice, credits=None,
) -> list[Clip]:
    """Each event's chosen bank sound (``SubEvent.sound``); a texture that carries the input's rhythm is
    rendered with a hit on the next beat. ``credits(name)`` gives a recording's credits (a ``RecordingBank``)."""
    clips: list[Clip] = []
    variants: dict[tuple[str, float], list[np.ndarray]] = {}
    for i, ev in enumerate(plan.events):
        name = ev.sound
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
        heard = credits(name) if credits is not None else []
        clips.append(Clip(audio=audio, sample_rate=sr, event=ev, source=f"library:{name}" if heard else f"synth:{name}",
                          credits=heard))
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


def _sustained(x: np.ndarray, sr: int, within_db: float = 6.0) -> np.ndarray:
    """From the first to the last 50 ms frame within ``within_db`` of the loudest: where a sound holds its level."""
    w = max(1, int(0.05 * sr))
    k = x.shape[-1] // w
    if k < 4:
        return x
    level = 10 * np.log10(np.mean(x[:, : k * w].reshape(x.shape[0], k, w) ** 2, axis=(0, 2)) + 1e-12)
    held = np.nonzero(level >= level.max() - within_db)[0]
    part = x[:, held[0] * w: (held[-1] + 1) * w]
    return part if part.shape[-1] >= 4 * w else x


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
        tilt = float(np.clip(want.tilt - got.tilt, -3.0, 3.0))
        new = apply_tilt(new, sr, tilt)
        ref = new if ref is new or measure is None else apply_tilt(ref, sr, tilt)
    target = float(np.sqrt(np.mean(tail.astype(np.float64) ** 2)))
    have = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    if have <= EPS:
        return new
    if target <= 1e-6:
        return np.zeros_like(new)
    gain = 10 ** (float(np.clip(20 * math.log10(target / have), -40.0, 40.0)) / 20)
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


__all__ = ["BED_CROSSFADE", "ContinuationResult", "apply_tilt", "continue_audio", "extend_texture",
           "join_continuation", "play_on"]
