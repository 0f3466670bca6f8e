"""Long-form assembly: clips placed on exact samples, per layer, crossfaded where a layer changes event.

The published AudioStory script renders each non-final clip ``crossfade`` seconds longer and joins it to the
next with a linear crossfade (clips shorter than the crossfade are joined hard). We do the same per layer, so
sequential story events and per-scene ambience beds share one mechanism, and the stems (one per layer) sum to the
mix exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .audio import fit_length, match_channels, resample
from .plan.types import ONSET_KINDS, Plan, SubEvent
from .render.base import Clip, event_samples
from .timing import to_samples


@dataclass
class Soundtrack:
    """The assembled result: ``audio`` is the sum of ``stems`` (one per layer), all ``samples`` long."""

    audio: np.ndarray
    sample_rate: int
    plan: Plan
    stems: dict[str, np.ndarray] = field(default_factory=dict)
    clips: list[Clip] = field(default_factory=list, repr=False)

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


def assign_tails(plan: Plan, crossfade: float, max_render: float | None = None) -> Plan:
    """Give each event that is followed on its layer by an abutting event a crossfade tail.

    An event gets ``tail = crossfade`` when the next event on its layer starts within ``1e-6`` s of its end and
    is at least ``crossfade`` long (shorter ones are joined hard, as published). Events that do not abut (spot
    effects) keep their natural ending. ``max_render`` caps duration + tail (the published DiT renders at most
    30 s); an event already that long is joined hard.
    """
    by_layer: dict[str, list[SubEvent]] = {}
    for ev in plan.events:
        ev.tail = 0.0
        by_layer.setdefault(ev.layer, []).append(ev)
    for events in by_layer.values():
        events.sort(key=lambda e: e.start)
        for cur, nxt in zip(events, events[1:]):
            if cur.kind in ONSET_KINDS or nxt.kind in ONSET_KINDS:
                continue  # spot effects are placed hard: a fade-in would blur the hit the picture shows
            if abs(nxt.start - cur.end) < 1e-6 and nxt.duration >= crossfade > 0:
                room = crossfade if max_render is None else min(crossfade, max_render - cur.duration)
                cur.tail = room if room > 1e-3 else 0.0
    return plan


def assemble(
    clips: list[Clip],
    plan: Plan,
    sample_rate: int,
    channels: int = 2,
    crossfade: float = 3.0,
    total_samples: int | None = None,
) -> Soundtrack:
    """Place every clip at ``to_samples(start)`` on its layer and sum the layers.

    The result is exactly ``total_samples`` long (default: the plan's duration in samples); anything past the end
    is cut. A clip's tail (``assign_tails``) and the start of the next clip on its layer are crossfaded linearly
    (equal-gain, so a constant signal stays constant); every other overlap, such as two spot effects ringing
    together, simply sums. Clips are laid out at their own rate and each stem is resampled once, so joins between
    clips never ring the way separately resampled clips would.
    """
    n = total_samples if total_samples is not None else to_samples(plan.duration, sample_rate)
    rates = {int(c.sample_rate) for c in clips}
    if len(rates) == 1 and sample_rate not in rates:
        (native,) = rates
        # A little extra so the resampler's edge stays past the end of the track.
        longer = to_samples(n / sample_rate, native) + 64
        built = _layout(clips, plan, native, channels, longer)
        stems = {k: fit_length(resample(v, native, sample_rate), n) for k, v in built.items()}
    else:
        stems = _layout(clips, plan, sample_rate, channels, n)
    mix = np.zeros((channels, n), dtype=np.float32)
    for track in stems.values():
        mix += track
    return Soundtrack(audio=mix, sample_rate=sample_rate, plan=plan, stems=stems, clips=list(clips))


def _layout(clips: list[Clip], plan: Plan, sample_rate: int, channels: int, n: int) -> dict[str, np.ndarray]:
    """One track per layer at ``sample_rate``, ``n`` samples long."""
    placed: dict[str, list[tuple[int, np.ndarray, int]]] = {}
    for clip in clips:
        audio = match_channels(resample(np.asarray(clip.audio, dtype=np.float32), clip.sample_rate, sample_rate), channels)
        ev = clip.event
        if ev.gain_db:
            audio = audio * np.float32(10 ** (ev.gain_db / 20))
        start = to_samples(ev.start, sample_rate)
        want = event_samples(ev, sample_rate)
        tail = want - (to_samples(ev.end, sample_rate) - start) if ev.tail > 0 else 0
        placed.setdefault(ev.layer, []).append((start, fit_length(audio, want), tail))

    stems: dict[str, np.ndarray] = {}
    for layer, items in placed.items():
        items.sort(key=lambda t: t[0])
        track = np.zeros((channels, n), dtype=np.float32)
        fade_in = 0  # samples of the current clip that crossfade with the previous clip's tail
        for start, audio, tail in items:
            audio = audio.copy()
            if 0 < fade_in <= audio.shape[-1]:
                audio[:, :fade_in] *= _ramp(fade_in)
            fade_in = 0
            if 0 < tail <= audio.shape[-1]:  # the tail overlaps the next clip, which starts where this one ends
                audio[:, -tail:] *= _ramp(tail)[::-1]
                fade_in = tail
            lo, hi = max(start, 0), min(start + audio.shape[-1], n)
            if hi > lo:
                track[:, lo:hi] += audio[:, lo - start : hi - start]
        stems[layer] = track
    return stems


def _ramp(length: int) -> np.ndarray:
    # Sample k of the fade-in has gain (k + 0.5) / length; the mirrored fade-out sums with it to exactly 1.
    return ((np.arange(length, dtype=np.float32) + 0.5) / length).astype(np.float32)
