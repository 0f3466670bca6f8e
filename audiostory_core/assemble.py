"""Long-form assembly: clips placed on exact samples, per layer, crossfaded where a layer changes event.

The published AudioStory script renders each non-final clip ``crossfade`` seconds longer and joins it to the
next with a linear crossfade (clips shorter than the crossfade are joined hard). We do the same per layer, so
sequential story events and per-scene ambience beds share one mechanism, and the stems (one per layer) sum to the
mix exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .audio import fit_length, match_channels, resample
from .plan.types import ONSET_KINDS, Plan, SubEvent, assign_tails  # noqa: F401 - assign_tails: its callers import it from here
from .render.base import Clip, event_samples
from .timing import to_samples
from .tracks import SumTrack, Track, TrackStore, read_into, resample_track, to_array


@dataclass
class Soundtrack:
    """The assembled result: ``audio`` is the sum of ``stems`` (one per layer), all ``samples`` long — arrays, or
    ``Track`` objects when assembled into a store (then ``clips`` hold no audio: it lives in the stems; they still
    say what made each event and whose recordings it holds)."""

    audio: np.ndarray | Track
    sample_rate: int
    plan: Plan
    stems: dict[str, np.ndarray | Track] = field(default_factory=dict)
    clips: list[Clip] = field(default_factory=list, repr=False)

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


def assemble(
    clips: list[Clip],
    plan: Plan,
    sample_rate: int,
    channels: int = 2,
    crossfade: float = 3.0,
    total_samples: int | None = None,
    store: TrackStore | None = None,
) -> Soundtrack:
    """Place every clip at ``to_samples(start)`` on its layer and sum the layers.

    The result is exactly ``total_samples`` long (default: the plan's duration in samples); anything past the end
    is cut. A clip's tail (``assign_tails``) and the start of the next clip on its layer are crossfaded linearly
    (equal-gain, so a constant signal stays constant); every other overlap, such as two spot effects ringing
    together, simply sums. Clips are laid out at their own rate and each stem is resampled once, so joins between
    clips never ring the way separately resampled clips would.

    Without ``store`` the stems and the mix are arrays. With one (files in a scratch folder) the stems are its
    tracks and ``audio`` is their sum computed when read (see ``Assembler``, which also takes clips one by one).
    """
    rates = {int(c.sample_rate) for c in clips}
    layout = rates.pop() if len(rates) == 1 else sample_rate
    asm = Assembler(plan, sample_rate, channels=channels, total_samples=total_samples, store=store,
                    layout_rate=layout)
    for clip in clips:
        asm.add(clip)
    track = asm.finish()
    if store is None:
        track.clips = list(clips)
    return track


class Assembler:
    """Assembly one clip at a time, in any order: each clip is faded, placed and added to its layer's track as it
    arrives, so a renderer that yields clips one by one never has the whole soundtrack's clips in memory.

    The fades come from the plan (a clip fades in over the previous event's tail on its layer), which is why the
    order of arrival does not matter. Clips are laid out at ``layout_rate`` (the renderer's rate) and each layer
    is resampled to ``sample_rate`` once at the end when the two differ.
    """

    def __init__(self, plan: Plan, sample_rate: int, *, channels: int = 2, total_samples: int | None = None,
                 store: TrackStore | None = None, layout_rate: int | None = None):
        self.plan, self.sample_rate, self.channels = plan, int(sample_rate), channels
        self.n = total_samples if total_samples is not None else to_samples(plan.duration, sample_rate)
        self.rate = int(layout_rate or sample_rate)
        # A little extra at a native rate so the resampler's edge stays past the end of the track.
        self.length = self.n if self.rate == self.sample_rate else to_samples(self.n / sample_rate, self.rate) + 64
        self.store, self.work = store, store or TrackStore()
        self.fades = _fades(plan, self.rate)
        self.tracks: dict[str, Track] = {}
        self.records: dict[int, Clip] = {}  # per event (by id): its clip without audio, for credits and reports

    def add(self, clip: Clip) -> None:
        self._record(clip)
        if clip.offset is not None:
            self._add_part(clip)
            return
        start, audio, _ = _prepared(clip, self.rate, self.channels)
        fade_in, tail = self.fades.get(id(clip.event), (0, 0))
        if fade_in:
            audio[:, :fade_in] *= _ramp(fade_in)
        if tail:  # the tail overlaps the next clip, which starts where this one ends
            audio[:, -tail:] *= _ramp(tail)[::-1]
        self._sum(clip.event.layer, start, audio)

    def _add_part(self, clip: Clip) -> None:
        """A part of an event (``Clip.offset``): placed at its offset, with the share of the event's fades that
        falls in it — the parts of one event add up to the whole clip exactly."""
        ev = clip.event
        audio = match_channels(resample(np.asarray(clip.audio, dtype=np.float32), clip.sample_rate, self.rate),
                               self.channels)
        audio = np.array(audio * np.float32(10 ** (ev.gain_db / 20)) if ev.gain_db else audio, np.float32)
        offset = to_samples(clip.offset / clip.sample_rate, self.rate)
        want = event_samples(ev, self.rate)
        audio = audio[:, : max(0, want - offset)]
        fade_in, tail = self.fades.get(id(ev), (0, 0))
        m = audio.shape[-1]
        if fade_in and offset < fade_in:
            k = min(m, fade_in - offset)
            audio[:, :k] *= _ramp(fade_in)[offset : offset + k]
        if tail and offset + m > want - tail:
            k = max(0, want - tail - offset)
            audio[:, k:] *= _ramp(tail)[::-1][offset + k - (want - tail) : offset + m - (want - tail)]
        self._sum(ev.layer, to_samples(ev.start, self.rate) + offset, audio)

    def _sum(self, layer: str, start: int, audio: np.ndarray) -> None:
        """Add ``audio`` (a copy this assembler owns: it is used up) to its layer's track at ``start``."""
        if layer not in self.tracks:
            self.tracks[layer] = self.work.new(layer, self.channels, self.length)
        track = self.tracks[layer]
        lo, hi = max(start, 0), min(start + audio.shape[-1], self.length)
        if hi <= lo:
            return
        part = audio[:, lo - start : hi - start]
        read_into(track, part, lo, add=True)  # the layer so far added into the clip (its own copy): no fresh block
        track.write(lo, part)

    def _record(self, clip: Clip) -> None:
        """What made each event and whose recordings it holds (the credits), without its audio."""
        if id(clip.event) not in self.records:
            self.records[id(clip.event)] = replace(clip, audio=np.zeros((self.channels, 0), np.float32), offset=None)

    def finish(self) -> Soundtrack:
        # Layers in the plan's order, whatever order their clips came in (renderers run side by side): the mix
        # adds them in that order, so one seed gives the same samples every run.
        layers = list(dict.fromkeys(ev.layer for ev in self.plan.events))
        rank = {k: i for i, k in enumerate(layers)}
        stems = {k: self.tracks[k] for k in sorted(self.tracks, key=lambda k: rank.get(k, len(rank)))}
        if self.rate != self.sample_rate:
            stems = {k: resample_track(v, self.work.new(k, self.channels, self.n), self.rate, self.sample_rate)
                     for k, v in stems.items()}
        order = {id(ev): i for i, ev in enumerate(self.plan.events)}
        records = sorted(self.records.values(), key=lambda c: order.get(id(c.event), len(order)))
        if self.store is not None:
            return Soundtrack(audio=SumTrack(list(stems.values()), self.channels, self.n),
                              sample_rate=self.sample_rate, plan=self.plan, stems=stems, clips=records)
        arrays = {k: to_array(v) for k, v in stems.items()}
        mix = np.zeros((self.channels, self.n), dtype=np.float32)
        for track in arrays.values():
            mix += track
        return Soundtrack(audio=mix, sample_rate=self.sample_rate, plan=self.plan, stems=arrays)


def _fades(plan: Plan, sample_rate: int) -> dict[int, tuple[int, int]]:
    """Per event (by id): (samples it fades in over the previous event's tail on its layer, samples of its own
    tail that fade out under the next one). Joins shorter than a clip's length are skipped, as published."""
    by_layer: dict[str, list[SubEvent]] = {}
    for ev in plan.events:
        by_layer.setdefault(ev.layer, []).append(ev)
    fades: dict[int, tuple[int, int]] = {}
    for events in by_layer.values():
        events.sort(key=lambda e: to_samples(e.start, sample_rate))
        previous = 0
        for ev in events:
            start, want = to_samples(ev.start, sample_rate), event_samples(ev, sample_rate)
            tail = want - (to_samples(ev.end, sample_rate) - start) if ev.tail > 0 else 0
            fade_in = previous if 0 < previous <= want else 0
            previous = tail if 0 < tail <= want else 0
            fades[id(ev)] = (fade_in, previous)
    return fades


def _prepared(clip: Clip, sample_rate: int, channels: int) -> tuple[int, np.ndarray, int]:
    """(first sample, audio at ``sample_rate`` with the event's gain and exact length — a copy the caller may
    change, crossfade tail in samples) of one clip."""
    audio = match_channels(resample(np.asarray(clip.audio, dtype=np.float32), clip.sample_rate, sample_rate), channels)
    ev = clip.event
    if ev.gain_db:
        audio = audio * np.float32(10 ** (ev.gain_db / 20))
    start = to_samples(ev.start, sample_rate)
    want = event_samples(ev, sample_rate)
    tail = want - (to_samples(ev.end, sample_rate) - start) if ev.tail > 0 else 0
    return start, np.array(fit_length(audio, want), dtype=np.float32, copy=True), tail


def _ramp(length: int) -> np.ndarray:
    # Sample k of the fade-in has gain (k + 0.5) / length; the mirrored fade-out sums with it to exactly 1.
    return ((np.arange(length, dtype=np.float32) + 0.5) / length).astype(np.float32)
