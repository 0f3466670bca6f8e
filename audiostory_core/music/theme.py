"""The theme: a short motif written once per piece and varied in every section, so the score sounds like one
piece, not a string of unrelated cues.

A theme is a contour (scale steps from its first note) and a rhythm made of cells. Sections restate it
transformed the way composers do: in the section's key and mode (a major tune turns minor in a dark scene),
augmented for calm (twice as slow), diminished for a chase (twice as fast, repeated), inverted for a sneak,
fragmented and sequenced upward for tension, cut to fit a short scene.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Rhythm cells, in beats; each fills one or two beats.
CELLS = ((1.0,), (0.5, 0.5), (1.5, 0.5), (0.75, 0.25), (0.5, 0.25, 0.25), (2.0,), (0.5, 1.0, 0.5))


@dataclass(frozen=True)
class Theme:
    steps: tuple[int, ...]  # scale-degree offsets of each note from the first (0-based degrees)
    start_degree: int  # the first note's degree (0 = tonic, 4 = fifth)
    cells: tuple[int, ...]  # indices into CELLS, cycled to make the rhythm


@dataclass(frozen=True)
class MelodyNote:
    beat: float  # from the start of the statement
    length: float
    degree: int  # 0-based scale degree (may exceed 7: octaves up; negative: below the tonic)
    accent: bool = False


def make_theme(rng: np.random.Generator) -> Theme:
    """A singable motif: 6-8 notes, mostly steps with one characteristic leap, ending on a chord tone."""
    n = int(rng.integers(6, 9))
    leap_at = int(rng.integers(1, 3))
    steps = [0]
    for k in range(1, n):
        if k == leap_at:
            move = int(rng.choice([3, 4, -3, 5]))
        else:
            move = int(rng.choice([1, -1, 1, -1, 2, -2, 0]))
        nxt = steps[-1] + move
        if abs(nxt) > 6:
            nxt = steps[-1] - move
        steps.append(nxt)
    start = int(rng.choice([0, 2, 4]))
    # End on a tone of the tonic triad (0, 2, 4, 7 from the tonic) for a rounded phrase.
    last = start + steps[-1]
    options = [d for d in (-3, 0, 2, 4, 7) if abs(d - last) <= 2]
    if options:
        steps[-1] = min(options, key=lambda d: abs(d - last)) - start
    cells = tuple(int(c) for c in rng.choice([0, 1, 2, 3, 4, 6], size=4))
    return Theme(tuple(steps), start, cells)


def statement(theme: Theme, space: float, variation: str, bar: int = 4) -> list[MelodyNote]:
    """The theme as a phrase of at most ``space`` beats in bars of ``bar`` beats, transformed by ``variation``:
    "plain" (two bars), "augmented" (four: twice as slow), "diminished" (one bar, played twice), "inverted",
    "sequenced" (the head of the theme, then the same a step higher), "fragment" (the head alone).
    The phrase's last note is held to its end, as a phrase ending is."""
    steps = list(theme.steps)
    if variation == "inverted":
        steps = [-x for x in steps]
    head = variation in ("fragment", "sequenced")
    if head:
        steps = steps[: max(3, len(steps) // 2)]
    scale = {"augmented": 2.0, "diminished": 0.5}.get(variation, 1.0)
    length = (bar if head else 2 * bar) * scale
    reps = 2 if variation in ("diminished", "sequenced") else 1
    while length * reps > space + 1e-9 and reps > 1:
        reps -= 1
    if length > space:  # a short scene: as much of the theme as fits
        length = space
    notes: list[MelodyNote] = []
    for r in range(reps):
        shift = 1 if (variation == "sequenced" and r == 1) else 0
        rhythm = _rhythm(theme, len(steps), length, scale)
        beat = r * length
        for k, (x, d) in enumerate(zip(steps, rhythm)):
            notes.append(MelodyNote(beat, d, theme.start_degree + x + shift, accent=(k == 0)))
            beat += d
    return notes


def _rhythm(theme: Theme, n: int, length: float, scale: float) -> list[float]:
    """Durations for ``n`` notes filling ``length`` beats: the theme's cells, the last note held to the end."""
    cells: list[float] = []
    k = 0
    while len(cells) < n - 1:
        cells.extend(d * scale for d in CELLS[theme.cells[k % len(theme.cells)]])
        k += 1
    cells = cells[: n - 1]
    hold = max(0.5 * scale, min(1.0, length / 4))
    while cells and 2 * sum(cells) <= length - hold and min(cells) < 1.0 * scale:
        cells = [2 * d for d in cells]  # a motif of quick notes spreads over the phrase instead of one long hold
    while cells and sum(cells) > length - hold + 1e-9:
        cells.pop()  # too long for the space: the theme's head only
    return [*cells, length - sum(cells)]


VARIATION_FOR_MOOD = {
    "calm": "augmented",
    "playful": "plain",
    "sneak": "inverted",
    "chase": "diminished",
    "tense": "sequenced",
    "stormy": "augmented",
}
