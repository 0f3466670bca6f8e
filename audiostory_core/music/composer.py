"""The composer: a ``ScorePlan`` (cue sheet) → a ``Composition`` (notes per instrument on the plan's tempo map).

How it writes, section by section, like an arranger working to picture:
- harmony: a progression for the mood, one chord per bar, closed by a cadence where the section closes (V–I
  into a cadence or the end, V before a stinger), carried on unbroken where the mood carries on; every chord is
  voiced to move least from the last (``harmony.voice``);
- melody: the piece's theme (``theme.py``), passed between the ensemble's melody instruments and varied per
  mood, its strong-beat notes fitted to the chords, ending on the tonic where a phrase closes;
- accompaniment: the mood's texture (broken chords, oom-pah, a pizzicato walking bass, a fast ostinato,
  tremolo, a pulse), its loudness following the section's motion energy and swelling into each hit;
- hits: a gesture per cue, sounding exactly at the cue's time (stab, pizzicato, timpani, a run that arrives on
  the frame, a cymbal swell that breaks on it); a stinger on a cut; a final tonic that holds to the last frame.
Deterministic for a seed (one ``numpy`` generator); another seed gives another theme, progressions and patterns.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .harmony import SCALES, Chord, chord, nearest, scale_pitch, snap_to_chord, voice
from .styles import (
    CONCERT_BD, CRASH, HIT_INSTRUMENTS, INSTRUMENTS, KICK, MOODS, SNARE, CLOSED_HAT, SUS_CYMBAL, LOW_TOM, MID_TOM,
    RIDE, ensemble,
)  # fmt: skip
from .theme import VARIATION_FOR_MOOD, Theme, make_theme, statement
from .types import ScorePlan, Section, TempoMap

RUN_SECONDS = 0.4  # a run takes this long to arrive on its cue
SWELL_SECONDS = 1.2  # a cymbal swell builds for this long before its flash
PAN = {  # orchestral seating, -1 left .. 1 right
    "flute": -0.15, "oboe": 0.1, "clarinet": -0.1, "bassoon": 0.15, "horn": -0.35, "trumpet": 0.3,
    "trombone": 0.4, "tuba": 0.5, "strings": -0.35, "tremolo strings": -0.3, "pizzicato": -0.2, "harp": -0.55,
    "timpani": 0.2, "xylophone": 0.35, "orchestra hit": 0.0, "glockenspiel": 0.3, "celesta": 0.25,
    "vibraphone": 0.2, "marimba": -0.2, "choir": 0.0, "fretless bass": 0.05, "taiko": 0.15, "woodblock": 0.4,
}  # fmt: skip


@dataclass
class Note:
    track: str
    pitch: int
    velocity: int
    start: float  # beats
    end: float  # beats
    role: str = "music"  # "music" | "hit" (sounds at a cue) | "lead" (leads into a hit) | "stinger"
    cue: int = -1  # for hits and lead-ins: the index of their hit in ``score.hits``


@dataclass
class Control:
    track: str
    beat: float
    control: int
    value: int


@dataclass
class Composition:
    """Everything the MIDI file and the synthesizer need: per-instrument notes and controls in beats, the tempo
    map, meter and key changes, and markers (cuts, hits)."""

    score: ScorePlan
    seed: int
    theme: Theme
    notes: list[Note] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    time_signatures: list[tuple[float, int, int]] = field(default_factory=list)  # (beat, numerator, denominator)
    key_signatures: list[tuple[float, int, str]] = field(default_factory=list)  # (beat, tonic pc, mode)
    markers: list[tuple[float, str]] = field(default_factory=list)  # (seconds, text): cuts and sections
    cue_points: list[tuple[float, str]] = field(default_factory=list)  # (seconds, text): the hits

    @property
    def tempo_map(self) -> TempoMap:
        return self.score.tempo_map

    @property
    def tracks(self) -> list[str]:
        """Instruments in order of first use."""
        return list(dict.fromkeys(n.track for n in sorted(self.notes, key=lambda n: (n.start, n.track))))

    def add(self, track: str, pitch: int, velocity: float, start: float, end: float, role: str = "music",
            cue: int = -1) -> None:
        inst = INSTRUMENTS[track]
        if not inst.drum:
            while pitch < inst.low:
                pitch += 12
            while pitch > inst.high:
                pitch -= 12
        end = min(end, self.score.tempo_map.beat_at(self.score.duration))
        if end - start <= 1e-6:
            return
        self.notes.append(Note(track, int(pitch), int(np.clip(round(velocity), 1, 127)), float(start), float(end), role,
                               cue))


def compose(score: ScorePlan, seed: int = 0) -> Composition:
    """Write the piece for ``score``; the same score and seed always give the same notes."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x6D75736963])  # "music"
    comp = Composition(score, int(seed), make_theme(rng))
    state = _State()
    for k, sec in enumerate(score.sections):
        prev = score.sections[k - 1] if k > 0 else None
        if sec.texture == "tacet":
            comp.markers.append((sec.start, f"{'cut' if k else 'start'}: music {k + 1}, tacet"))
            state.voicing = state.bass = None
            continue
        _section(comp, sec, prev, rng, state)
        comp.markers.append((sec.start, f"{'cut' if k else 'start'}: music {k + 1}, {sec.mood} in {sec.key_name}"))
    for h in score.hits:
        comp.cue_points.append((h.time, f"{h.kind} for {h.cue} at {h.time:.3f} s"))
    comp.notes.sort(key=lambda n: (n.start, n.track, n.pitch))
    comp.controls.sort(key=lambda c: (c.beat, c.track, c.control))
    return comp


@dataclass
class _State:
    """What carries from one section to the next: voicings, the melody's turn, the progression's position."""

    voicing: list[int] | None = None
    bass: int | None = None
    melody_turn: int = 0
    progression: tuple[int, ...] | None = None
    position: int = 0
    last_melody: int | None = None


# ---------------------------------------------------------------------------------------------------------------
# one section


def _section(comp: Composition, sec: Section, prev: Section | None, rng: np.random.Generator, state: _State) -> None:
    score = comp.score
    mood = MOODS[sec.mood]
    ens = ensemble(score.style, sec.mood)
    b0, nb = sec.start_beat, sec.beats
    bars = [(b0 + s, min(sec.meter, nb - s)) for s in range(0, nb, sec.meter)]
    comp.time_signatures.append((float(b0), sec.meter, 4))
    if bars and bars[-1][1] != sec.meter:
        comp.time_signatures.append((float(bars[-1][0]), bars[-1][1], 4))
    comp.key_signatures.append((float(b0), sec.tonic, sec.mode))

    carry = prev is not None and prev.transition == "crossfade"
    if not carry or state.progression not in mood.progressions:
        state.progression = mood.progressions[int(rng.integers(len(mood.progressions)))]
        state.position = 0
    degrees = [state.progression[(state.position + i) % len(state.progression)] for i in range(len(bars))]
    state.position += len(bars)
    if not carry:
        degrees[0] = 1  # establish the key
    _cadence(degrees, sec, bars, comp.tempo_map)
    sevenths = [d == 5 and i >= len(degrees) - 2 for i, d in enumerate(degrees)]
    chords = [chord(sec.tonic, sec.mode, d, s) for d, s in zip(degrees, sevenths)]
    steps = [(start, length, ch) for (start, length), ch in zip(bars, chords)]

    level = 40 + 62 * sec.energy  # the section's loudness follows the picture's motion
    vel = _Dynamics(sec, comp.tempo_map, level)
    _harmony(comp, sec, ens, steps, vel, state)
    _melody(comp, sec, ens, steps, vel, state, rng)
    if prev is not None and prev.transition == "stinger":
        _stinger(comp, sec, steps[0][2], level)
    for h in sec.hits:
        ch = next((c for s, l, c in steps if s <= h.beat < s + l), steps[-1][2])
        _hit(comp, h, ch, sec, level, next(i for i, x in enumerate(comp.score.hits) if x is h))
    if sec.transition == "crossfade":
        _fade(comp, sec, ens, out=True)
    if carry:
        _fade(comp, sec, ens, out=False)


def _cadence(degrees: list[int], sec: Section, bars: list[tuple[int, int]], tmap: TempoMap) -> None:
    """Close the section's harmony as its transition asks (in place)."""
    n = len(degrees)
    if sec.transition in ("end", "cadence"):
        if n >= 2:
            degrees[-2:] = [5, 1]
            # An ending needs time to be heard: a last bar shorter than a second and a half starts the tonic earlier.
            if sec.transition == "end" and n >= 3:
                last_start = tmap.time_at(bars[-1][0])
                if sec.end - last_start < 1.5:
                    degrees[-3:] = [5, 1, 1]
        else:
            degrees[-1] = 1
    elif sec.transition == "stinger" and n >= 2:
        degrees[-1] = 5  # a half cadence: the cut answers it


class _Dynamics:
    """Velocity for a note at a beat: the section's level, an arch over each phrase, a swell into each hit."""

    def __init__(self, sec: Section, tmap: TempoMap, level: float):
        self.sec, self.tmap, self.level = sec, tmap, level
        self.hit_beats = [(h.beat, h.strength) for h in sec.hits]

    def __call__(self, beat: float, offset: float = 0.0) -> float:
        sec = self.sec
        pos = (beat - sec.start_beat) / max(sec.beats, 1)
        arch = 6.0 * np.sin(np.pi * min(max(pos, 0.0), 1.0))
        swell = 0.0
        for hb, strength in self.hit_beats:
            d = hb - beat
            if 0 < d <= 1.5:
                swell = max(swell, 14.0 * strength * (1 - d / 1.5))
        if sec.transition in ("end", "cadence") and pos > 0.8:
            arch -= 8.0 * (pos - 0.8) / 0.2  # a diminuendo into the close
        return self.level + offset + arch + swell


# ---------------------------------------------------------------------------------------------------------------
# accompaniment


@dataclass
class _Bar:
    """One chord's span in the accompaniment: the chord, its voicing and bass, where it starts and ends."""

    ch: Chord
    v: list[int]
    bass: int
    start: float
    length: float
    end: float
    final: bool
    i: int
    next_chord: Chord


def _harmony(comp: Composition, sec: Section, ens, steps, vel: _Dynamics, state: _State) -> None:
    h_inst, b_inst = INSTRUMENTS[ens.harmony], INSTRUMENTS[ens.bass]
    h_low, h_high = max(h_inst.low, 52), min(h_inst.high, 79)
    b_low, b_high = max(b_inst.low, 31), min(b_inst.high, 55)
    last = len(steps) - 1
    held = False
    for i, (start, length, ch) in enumerate(steps):
        final = sec.transition == "end" and i >= last - 1 and ch.degree == 1 and all(c.degree == 1 for _, _, c in steps[i:])
        if final and held:
            continue  # the final tonic is already sounding
        held = held or final
        v = voice(ch, state.voicing, h_low, h_high, 3 if len(ch.pcs) == 3 else 4)
        state.voicing = v
        bass = nearest(ch.root, state.bass if state.bass is not None else (b_low + b_high) // 2, b_low, b_high)
        state.bass = bass
        end = start + length
        if final:  # the resolution holds to the section's last frame
            end = float(sec.start_beat + sec.beats)
        if comp.score.style == "piano":
            _piano_bar(comp, sec, ch, v, bass, start, length, end, vel, final)
            continue
        if comp.score.style == "percussion":
            _percussion_bar(comp, sec, ens, ch, v, bass, start, length, end, vel, final)
            continue
        bar = _Bar(ch, v, bass, start, length, end, final, i, steps[i + 1][2] if i < last else ch)
        texture = _TEXTURES.get(sec.texture) if not final else None
        (texture or _arpeggio_bar)(comp, ens, bar, vel, (b_low, b_high), h_inst)


def _oompah_bar(comp: Composition, ens, bar: _Bar, vel: _Dynamics, b_range, h_inst) -> None:
    for k in range(int(bar.length)):
        b = bar.start + k
        if k % 2 == 0:
            p = bar.bass if (k // 2) % 2 == 0 else nearest(bar.ch.pcs[2 % len(bar.ch.pcs)], bar.bass, *b_range)
            comp.add(ens.bass, p, vel(b, -2), b, b + 0.6)
        else:
            for p in bar.v:
                comp.add(ens.harmony, p, vel(b, -8), b, b + 0.35)
    if bar.length == 3:  # a waltz bar: chords on 2 and 3
        for p in bar.v:
            comp.add(ens.harmony, p, vel(bar.start + 2, -10), bar.start + 2, bar.start + 2.35)


def _walking_bar(comp: Composition, ens, bar: _Bar, vel: _Dynamics, b_range, h_inst) -> None:
    walk = _walk(bar.ch, bar.next_chord, bar.bass, int(bar.length), *b_range)
    for k, p in enumerate(walk):
        comp.add(ens.bass, p, vel(bar.start + k, 2), bar.start + k, bar.start + k + 0.45)
    for p in bar.v:  # a soft sustained chord underneath
        comp.add(ens.harmony, p - 12 if p - 12 >= h_inst.low else p, vel(bar.start, -22), bar.start, bar.end)


def _ostinato_bar(comp: Composition, ens, bar: _Bar, vel: _Dynamics, b_range, h_inst) -> None:
    start, length, v = bar.start, bar.length, bar.v
    step = 0.5 if comp.tempo_map.tempo_at(comp.tempo_map.time_at(start)) > 150 else 0.25
    figure = [v[0], v[-1], v[1], v[-1]]
    t = start
    k = 0
    while t < start + length - 1e-9:
        comp.add(ens.rhythm or ens.harmony, figure[k % 4], vel(t, -6 + 6 * (k % 4 == 0)), t, t + step * 0.8)
        t += step
        k += 1
    for k in range(int(length * 2)):
        b = start + 0.5 * k
        comp.add(ens.bass, bar.bass, vel(b, -4 + 6 * (k % 2 == 0)), b, b + 0.4)
    if ens.percussion:
        for k in range(int(length)):
            b = start + k
            comp.add(ens.percussion, KICK if k % 2 == 0 else SNARE, vel(b, -10), b, b + 0.25)


def _held_bar(comp: Composition, ens, bar: _Bar, vel: _Dynamics, b_range, h_inst, *, tremolo: bool) -> None:
    """Tremolo strings an octave down, or a pulse of repeated notes over held chords."""
    start, end = bar.start, bar.end
    for p in bar.v:
        comp.add(ens.harmony, p - 12 if tremolo else p, vel(start, -10), start, end)
    comp.add(ens.bass, bar.bass, vel(start, -2), start, end)
    if not tremolo and ens.rhythm:
        for k in range(int(bar.length * 2)):
            b = start + 0.5 * k
            comp.add(ens.rhythm, bar.bass + 12, vel(b, -8 + 5 * (k % 2 == 0)), b, b + 0.35)
    if ens.percussion == "timpani" and (bar.i % 2 == 0 or not tremolo):
        comp.add("timpani", bar.bass, vel(start, -6), start, start + 0.5)


def _arpeggio_bar(comp: Composition, ens, bar: _Bar, vel: _Dynamics, b_range, h_inst) -> None:
    """Broken chords over held harmony; also every final chord (rolled)."""
    start, end, v, r_inst = bar.start, bar.end, bar.v, ens.rhythm
    for p in v:
        comp.add(ens.harmony, p, vel(start, -12), start, end)
    comp.add(ens.bass, bar.bass, vel(start, -6), start, end)
    if r_inst and not bar.final:
        pattern = [v[0], v[1], v[2 % len(v)], v[0] + 12, v[2 % len(v)], v[1]]
        # Broken chords in eighths at a slow tempo, in quarters at a quick one (no faster than ~5 notes/s).
        step = 0.5 if comp.tempo_map.tempo_at(comp.tempo_map.time_at(start)) < 100 else 1.0
        for k in range(int(bar.length / step)):
            b = start + step * k
            comp.add(r_inst, pattern[k % len(pattern)], vel(b, -10), b, b + 1.0)
    elif r_inst and bar.final:
        for k, p in enumerate(v + [v[0] + 12]):  # a rolled final chord
            comp.add(r_inst, p, vel(start, -8), start + 0.08 * k, end)


_TEXTURES = {
    "oompah": _oompah_bar,
    "walking": _walking_bar,
    "ostinato": _ostinato_bar,
    "tremolo": lambda *a: _held_bar(*a, tremolo=True),
    "pulse": lambda *a: _held_bar(*a, tremolo=False),
}


def _walk(ch: Chord, nxt: Chord, root: int, beats: int, low: int, high: int) -> list[int]:
    """A walking bass bar: root, chord tones, and a chromatic approach to the next root on the last beat."""
    if beats <= 0:
        return []
    target = nearest(nxt.root, root, low, high)
    line = [root]
    tones = [nearest(pc, root + 4, low, high) for pc in ch.pcs[1:]]
    for k in range(1, beats):
        if k == beats - 1:
            line.append(target + (1 if target < line[-1] else -1))
        else:
            line.append(tones[(k - 1) % len(tones)])
    return line[:beats]


def _piano_bar(comp, sec, ch, v, bass, start, length, end, vel, final) -> None:
    """Solo piano: the left hand plays the texture, the right hand's melody comes from ``_melody``."""
    lh = [bass, *[p - 12 for p in v]]
    tex = sec.texture
    if final or tex in ("tremolo", "pulse") and not final:
        for p in lh:
            comp.add("piano", p, vel(start, -8), start, end)
        if tex == "pulse" and not final:
            for k in range(1, int(length * 2)):
                b = start + 0.5 * k
                comp.add("piano", bass, vel(b, -12), b, b + 0.4)
        return
    if tex == "oompah":
        for k in range(int(length)):
            b = start + k
            notes = [bass] if k % 2 == 0 else [p - 12 for p in v]
            for p in notes:
                comp.add("piano", p, vel(b, -6), b, b + 0.45)
    elif tex == "walking":
        for k, p in enumerate(_walk(ch, ch, bass, int(length), 28, 55)):
            comp.add("piano", p, vel(start + k, -4), start + k, start + k + 0.4)
    elif tex == "ostinato":
        for k in range(int(length * 2)):
            b = start + 0.5 * k
            comp.add("piano", bass + (12 if k % 2 else 0), vel(b, -6), b, b + 0.4)
    else:  # arpeggio: broken chords in eighths
        pattern = [bass, v[0] - 12, v[1] - 12, v[2 % len(v)] - 12]
        for k in range(int(length * 2)):
            b = start + 0.5 * k
            comp.add("piano", pattern[k % 4], vel(b, -12), b, b + 1.5)


def _percussion_bar(comp, sec, ens, ch, v, bass, start, length, end, vel, final) -> None:
    """Percussion ensemble: a drum pattern for the mood, a marimba figure for the harmony, timpani/taiko bass."""
    kit = ens.percussion
    if final:
        comp.add(kit, CRASH, vel(start, 6), start, start + 1)
        comp.add(ens.bass, bass, vel(start, 4), start, end)
        for k, p in enumerate(v):
            comp.add(ens.harmony, p, vel(start, -6), start + 0.06 * k, end)
        return
    eighths = int(length * 2)
    dense = sec.texture in ("ostinato", "pulse")
    for k in range(eighths):
        b = start + 0.5 * k
        if sec.texture != "arpeggio" or k % 2 == 0:
            comp.add(kit, CLOSED_HAT if sec.texture != "arpeggio" else RIDE, vel(b, -16 + 4 * (k % 2 == 0)), b, b + 0.25)
        if k % 4 == 0 or (dense and k % 4 == 3):
            comp.add(kit, KICK, vel(b, -4), b, b + 0.25)
        if k % 4 == 2:
            comp.add(kit, SNARE if sec.texture != "walking" else MID_TOM, vel(b, -6), b, b + 0.25)
    pattern = [v[0], v[2 % len(v)], v[1], v[2 % len(v)]]
    for k in range(eighths):
        b = start + 0.5 * k
        comp.add(ens.harmony, pattern[k % 4], vel(b, -12), b, b + 0.45)
    comp.add(ens.bass, bass, vel(start, -4), start, start + min(length, 2))
    if sec.texture == "walking":
        for k in range(int(length)):
            comp.add("woodblock", 76 if k % 2 else 77, vel(start + k, -14), start + k, start + k + 0.2)


# ---------------------------------------------------------------------------------------------------------------
# melody


def _melody(comp: Composition, sec: Section, ens, steps, vel: _Dynamics, state: _State, rng) -> None:
    name = ens.melody[state.melody_turn % len(ens.melody)]
    state.melody_turn += 1
    inst = INSTRUMENTS[name]
    low, high = max(inst.low, 55 if comp.score.style == "piano" else inst.low), inst.high
    centre = (low + high) // 2 + (5 if comp.score.style == "piano" else 0)
    base = centre - 6  # degree 0 is near the lower middle of the range
    meter = sec.meter
    variation = VARIATION_FOR_MOOD[sec.mood]
    staccato = sec.mood in ("playful", "sneak")
    total = float(sec.beats)
    if total < 2:
        return
    chords = [(s - sec.start_beat, l, c) for s, l, c in steps]
    # Statement, answer, statement...: the theme in the mood's variation, answered by its head stepped up
    # (a chase answers with the theme again, diminished); a bar's breath after each pair when there is room.
    answer = variation if sec.mood == "chase" else "sequenced"
    notes = []
    pos, k = 0.0, 0
    while total - pos >= 2:
        var = variation if k % 2 == 0 else answer
        if var == "augmented" and total - pos < 4 * meter:
            var = "plain"
        phrase = statement(comp.theme, total - pos, var, meter)
        if not phrase:
            break
        for n in phrase:
            notes.append((pos + n.beat, n.length, n.degree, n.accent))
        pos += phrase[-1].beat + phrase[-1].length
        k += 1
        if k % 2 == 0 and total - pos >= 3 * meter:
            pos += meter
    if not notes:
        return
    closes = sec.transition in ("end", "cadence")
    prev = state.last_melody
    for j, (b, length, degree, accent) in enumerate(notes):
        pitch = scale_pitch(sec.tonic, sec.mode, degree, base)
        ch = next((c for s, l, c in chords if s <= b < s + l), chords[-1][2])
        if abs(b - round(b)) < 1e-9 and int(round(b)) % meter in (0, meter // 2):
            pitch = snap_to_chord(pitch, ch)
        if j == len(notes) - 1 and closes:
            pitch = nearest(sec.tonic, prev if prev is not None else pitch, low, high)
            length = max(length, total - b) / (0.95 if sec.transition == "end" else 1.0)
        while pitch < low:
            pitch += 12
        while pitch > high:
            pitch -= 12
        start = sec.start_beat + b
        dur = length * (0.5 if staccato and length <= 1 else 0.95)
        comp.add(name, pitch, vel(start, 10 + 6 * accent), start, start + dur)
        for extra in ens.extra:
            if accent or (staccato and length <= 0.5):
                comp.add(extra, pitch + 12, vel(start, -4), start, start + min(dur, 0.5))
        prev = pitch
    state.last_melody = prev


# ---------------------------------------------------------------------------------------------------------------
# hits and transitions


def _hit(comp: Composition, h, ch: Chord, sec: Section, level: float, cue: int) -> None:
    """One gesture for a cue; the note whose onset is the hit is role "hit", lead-ins are role "lead"."""
    tmap = comp.tempo_map
    b = tmap.beat_at(h.time)
    v = min(127.0, max(level, 70.0) + 35 * h.strength)
    short = tmap.beat_at(h.time + 0.35) - b
    names = HIT_INSTRUMENTS[comp.score.style][h.kind]
    top = nearest(ch.root, 72, 60, 84)
    for n, name in enumerate(names):
        inst = INSTRUMENTS[name]
        gain = 0 if n == 0 else -10
        if inst.drum:
            if h.kind == "swell":
                _cymbal_swell(comp, name, h.time, v, cue)
                comp.add(name, CRASH, v, b, b + 2.0, "hit", cue)
            elif h.kind == "timpani":
                comp.add(name, CONCERT_BD, v + gain, b, b + 1.0, "hit", cue)
            else:
                comp.add(name, SNARE if h.kind == "stab" else LOW_TOM, v + gain, b, b + 0.5, "hit", cue)
                if h.kind == "stab" and h.strength >= 0.8:
                    comp.add(name, CRASH, v - 12, b, b + 1.0, "hit", cue)
            continue
        if h.kind == "run" and n == 0:
            _run(comp, name, h, ch, sec, v, cue)
            continue
        if name == "timpani":
            root = nearest(ch.root, 45, inst.low, inst.high)
            comp.add(name, root, v + gain, b, b + (1.5 if h.kind == "timpani" else 0.6), "hit", cue)
            continue
        if h.kind == "swell":  # a pitched swell (piano): a tremolo crescendo breaking on the chord
            _tremolo_swell(comp, name, ch, h.time, v, cue)
        pitches = [top - 12, top, *(nearest(pc, top + 4, top, top + 12) for pc in ch.pcs[1:])]
        if h.kind in ("pizzicato", "run"):
            pitches = [top, nearest(ch.pcs[2 % len(ch.pcs)], top + 7, top, top + 12)]
        if h.kind == "timpani":
            pitches = [top - 24, top - 12]
        for p in pitches:
            comp.add(name, p, v + gain, b, b + short, "hit", cue)


def _run(comp: Composition, name: str, h, ch: Chord, sec: Section, v: float, cue: int) -> None:
    """A scale run that arrives on the cue: lead-in notes over ``RUN_SECONDS``, the arrival note on the frame."""
    tmap = comp.tempo_map
    inst = INSTRUMENTS[name]
    arrive = nearest(ch.root if h.direction > 0 else ch.pcs[2 % len(ch.pcs)], 79 if h.direction > 0 else 60,
                     inst.low + 10, inst.high - 5)
    count = 8
    start_time = max(h.time - RUN_SECONDS, tmap.time_at(sec.start_beat))
    scale = SCALES[sec.mode]
    pcs = {(sec.tonic + s) % 12 for s in scale}
    line = []
    p = arrive
    while len(line) < count:
        p -= h.direction
        if p % 12 in pcs:
            line.append(p)
    line.reverse()
    for k, pitch in enumerate(line):
        t = start_time + (h.time - start_time) * k / count
        bt = tmap.beat_at(t)
        comp.add(name, pitch, v - 30 + 3 * k, bt, tmap.beat_at(t + 0.2), "lead", cue)
    b = tmap.beat_at(h.time)
    comp.add(name, arrive, v, b, tmap.beat_at(h.time + 0.6), "hit", cue)


def _cymbal_swell(comp: Composition, kit: str, time: float, v: float, cue: int) -> None:
    """A rolled cymbal rising over ``SWELL_SECONDS`` and stopping just before the flash (the crash is the hit)."""
    tmap = comp.tempo_map
    t0 = max(0.0, time - SWELL_SECONDS)
    n = 10
    for k in range(n):
        t = t0 + (time - 0.05 - t0) * k / n
        comp.add(kit, SUS_CYMBAL, 20 + (v - 40) * k / n, tmap.beat_at(t), tmap.beat_at(t + 0.1), "lead", cue)


def _tremolo_swell(comp: Composition, name: str, ch: Chord, time: float, v: float, cue: int) -> None:
    tmap = comp.tempo_map
    t0 = max(0.0, time - SWELL_SECONDS)
    a, b_ = nearest(ch.root, 60, 48, 72), nearest(ch.pcs[1], 64, 48, 76)
    n = 16
    for k in range(n):
        t = t0 + (time - 0.05 - t0) * k / n
        comp.add(name, a if k % 2 == 0 else b_, 25 + (v - 45) * k / n, tmap.beat_at(t), tmap.beat_at(t + 0.07), "lead", cue)


def _stinger(comp: Composition, sec: Section, ch: Chord, level: float) -> None:
    """An accent on the cut: the new section's first downbeat, struck by the style's stab instruments."""
    b = float(sec.start_beat)
    names = HIT_INSTRUMENTS[comp.score.style]["stab"]
    v = min(120.0, level + 25)
    root = nearest(ch.root, 60, 48, 72)
    for name in names:
        inst = INSTRUMENTS[name]
        if inst.drum:
            comp.add(name, CRASH, v - 10, b, b + 1.5, "stinger")
        elif name == "timpani":
            comp.add(name, nearest(ch.root, 45, inst.low, inst.high), v, b, b + 1.0, "stinger")
        else:
            for p in (root, *(nearest(pc, root + 4, root, root + 12) for pc in ch.pcs[1:])):
                comp.add(name, p, v - 6, b, b + 0.5, "stinger")


def _fade(comp: Composition, sec: Section, ens, *, out: bool) -> None:
    """A musical crossfade through the cut: the section's accompaniment thins out over its last bar (``out``)
    or grows over its first bar, by expression (CC 11)."""
    names = {ens.harmony, ens.bass, ens.rhythm} - {""}
    if out:
        b1 = float(sec.start_beat + sec.beats)
        b0 = max(float(sec.start_beat), b1 - sec.meter)
        values = (127, 112, 100, 90)
    else:
        b0 = float(sec.start_beat)
        b1 = min(b0 + sec.meter, float(sec.start_beat + sec.beats))
        values = (95, 108, 118, 127)
    for name in names:
        if INSTRUMENTS[name].drum:
            continue
        for k, val in enumerate(values):
            comp.controls.append(Control(name, b0 + (b1 - b0) * k / len(values), 11, val))
        if out:
            comp.controls.append(Control(name, b1, 11, 127))
