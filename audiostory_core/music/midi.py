"""A ``Composition`` as a Standard MIDI File (type 1): a conductor track with the tempo map, meters, keys,
markers at every cut and cue points at every hit, then one track per instrument (General MIDI programs).

Why a file at all: an editor or composer can open ``<name>.score.mid`` in any DAW or notation program and
re-orchestrate the cue against the same picture, because the tempo map puts every bar where the audio had it.
"""
from __future__ import annotations

import os
from pathlib import Path

import mido

from .composer import Composition
from .styles import INSTRUMENTS

PPQ = 960  # ticks per quarter note: ~0.5 ms at 120 bpm
DRUM_CHANNEL = 9
_KEYS = {"major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
         "minor": ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")}


def channels(comp: Composition) -> dict[str, int]:
    """MIDI channel per instrument track: drum kits on channel 10 (index 9), the rest in order of first use."""
    out: dict[str, int] = {}
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    for name in comp.tracks:
        if INSTRUMENTS[name].drum:
            out[name] = DRUM_CHANNEL
        else:
            if not free:
                raise ValueError("the composition uses more than 15 pitched instruments; MIDI has 15 channels for them")
            out[name] = free.pop(0)
    return out


def to_midi(comp: Composition) -> mido.MidiFile:
    """The composition as a type-1 MIDI file (not written anywhere)."""
    tmap = comp.tempo_map
    mid = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    conductor: list[tuple[int, int, mido.Message | mido.MetaMessage]] = []

    def tick(beat: float) -> int:
        return max(0, int(round(beat * PPQ)))

    for t, b, bpm in zip(tmap.times, tmap.beats, tmap.bpm):
        conductor.append((tick(b), 0, mido.MetaMessage("set_tempo", tempo=int(round(60_000_000 / bpm)))))
    for b, num, den in comp.time_signatures:
        conductor.append((tick(b), 1, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
    for b, tonic, mode in comp.key_signatures:
        conductor.append((tick(b), 2, mido.MetaMessage("key_signature", key=_KEYS[mode][tonic % 12])))
    for t, text in comp.markers:
        conductor.append((tick(tmap.beat_at(t)), 3, mido.MetaMessage("marker", text=text)))
    for t, text in comp.cue_points:
        conductor.append((tick(tmap.beat_at(t)), 4, mido.MetaMessage("cue_marker", text=text)))
    end_tick = tick(tmap.beat_at(comp.score.duration))
    head = mido.MidiTrack([mido.MetaMessage("track_name", name=f"dubkit score ({comp.score.style}, seed {comp.seed})")])
    mid.tracks.append(_delta(head, conductor, end_tick))

    chans = channels(comp)
    for name in comp.tracks:
        ch = chans[name]
        inst = INSTRUMENTS[name]
        setup = [mido.MetaMessage("track_name", name=name)]
        if inst.drum:
            setup.append(mido.Message("control_change", channel=ch, control=0, value=0))
        setup.append(mido.Message("program_change", channel=ch, program=inst.program))
        for control, value in initial_controls(name):
            setup.append(mido.Message("control_change", channel=ch, control=control, value=value))
        events: list[tuple[int, int, mido.Message]] = []
        for n in comp.notes:
            if n.track != name:
                continue
            on, off = tick(n.start), max(tick(n.end), tick(n.start) + 1)
            events.append((off, 0, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
            events.append((on, 2, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
        for c in comp.controls:
            if c.track == name:
                events.append((tick(c.beat), 1, mido.Message("control_change", channel=ch, control=c.control, value=c.value)))
        mid.tracks.append(_delta(mido.MidiTrack(setup), events, end_tick))
    return mid


def initial_controls(name: str) -> list[tuple[int, int]]:
    """(controller, value) set at the start of an instrument's track: volume, pan (orchestral seating),
    expression, reverb send."""
    from .composer import PAN

    pan = int(round(64 + 63 * PAN.get(name, 0.0)))
    return [(7, 100), (10, max(0, min(127, pan))), (11, 127), (91, 48), (93, 0)]


def _delta(track: mido.MidiTrack, events: list, end_tick: int) -> mido.MidiTrack:
    """Absolute (tick, order, message) events → delta times, ending with end_of_track at ``end_tick``."""
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=t - now))
        now = t
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def write_midi(comp: Composition, path: str | os.PathLike) -> Path:
    """Write ``path`` (.mid) atomically: a temporary sibling renamed into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        to_midi(comp).save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
