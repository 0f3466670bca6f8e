"""Harmony: scales, chords on scale degrees, and voice leading (each chord voiced to move as little as possible).

Why voice leading: a progression played as root-position blocks jumps about and sounds like a toy; voiced so
that each part moves to the nearest tone of the next chord (common tones held, no parallel fifths or octaves
between parts) it sounds like an arranger wrote it. That is a small search over the chord's tones in range.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}


@dataclass(frozen=True)
class Chord:
    """A chord on scale ``degree`` (1..7) of a key: ``pcs`` are its pitch classes, root first."""

    degree: int
    pcs: tuple[int, ...]

    @property
    def root(self) -> int:
        return self.pcs[0]


def scale_pc(tonic: int, mode: str, degree: int) -> int:
    """Pitch class of scale ``degree`` (0-based, any integer: 7 is the octave's tonic again)."""
    scale = SCALES[mode]
    return (tonic + scale[degree % 7]) % 12


def scale_pitch(tonic: int, mode: str, degree: int, octave_base: int) -> int:
    """MIDI pitch of 0-based ``degree`` counted from the tonic at or above ``octave_base`` (degree 7 = +12)."""
    scale = SCALES[mode]
    base = octave_base + ((tonic - octave_base) % 12)
    return base + 12 * (degree // 7) + scale[degree % 7]


def chord(tonic: int, mode: str, degree: int, seventh: bool = False) -> Chord:
    """The diatonic triad (or seventh chord) on ``degree`` 1..7; in minor the dominant is major (harmonic minor)."""
    d = degree - 1
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    pcs = [scale_pc(tonic, mode, d + s) for s in steps]
    if mode == "minor" and degree == 5:
        pcs[1] = (pcs[1] + 1) % 12  # the leading tone
    return Chord(degree, tuple(pcs))


def voice(ch: Chord, previous: list[int] | None, low: int, high: int, voices: int = 3) -> list[int]:
    """``voices`` pitches (ascending) of ``ch`` within [low, high], moving least from ``previous``.

    Every chord tone is present when there are enough voices (a seventh chord with three voices drops its
    fifth); parallel fifths and octaves with the previous voicing are avoided when an alternative exists.
    """
    tones = list(ch.pcs)
    if len(tones) > voices:
        tones = [t for k, t in enumerate(tones) if k != 2][:voices]  # drop the fifth first
    pool = [p for p in range(low, high + 1) if p % 12 in tones]
    best: tuple[float, list[int]] | None = None
    for combo in itertools.combinations(pool, voices):
        if not set(tones) <= {p % 12 for p in combo} or combo[-1] - combo[0] > 19:
            continue
        cost = _cost(list(combo), previous, low, high)
        if best is None or cost < best[0]:
            best = (cost, list(combo))
    if best is None:  # a very narrow range: stack the tones upward from low
        return sorted(low + (t - low) % 12 for t in tones[:voices])
    return best[1]


def _cost(v: list[int], prev: list[int] | None, low: int, high: int) -> float:
    centre = (low + high) / 2
    cost = 0.05 * abs(sum(v) / len(v) - centre)
    if prev is None or len(prev) != len(v):
        return cost
    cost += sum(abs(a - b) for a, b in zip(v, prev))
    for (a0, a1), (b0, b1) in itertools.combinations(zip(prev, v), 2):
        before, after = (b0 - a0) % 12, (b1 - a1) % 12
        moved = a0 != a1
        if moved and before == after and after in (0, 7):
            cost += 6.0  # parallel octaves / fifths
    return cost


def nearest(pc: int, around: int, low: int, high: int) -> int:
    """The pitch of class ``pc`` nearest ``around`` within [low, high]."""
    cands = [p for p in range(low, high + 1) if p % 12 == pc % 12]
    if not cands:
        return max(low, min(high, around))
    return min(cands, key=lambda p: (abs(p - around), p))


def snap_to_chord(pitch: int, ch: Chord) -> int:
    """``pitch`` moved to the nearest tone of ``ch`` (down on a tie)."""
    for step in (0, -1, 1, -2, 2):
        if (pitch + step) % 12 in ch.pcs:
            return pitch + step
    return pitch
