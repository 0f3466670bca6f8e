"""Fitting a click track to the picture: tempos that put a section's strong cues on beats.

A film composer catches hits by choosing the tempo (and bending it a little, a ritardando or accelerando) so that
the frames that matter fall on beats. Here, per section: every stretch between two "anchors" (the section's
start, the cues chosen as anchors, its end) gets a whole number of beats, so each anchor lands exactly on a beat
and the cut at the end on a beat too. A dynamic programme picks which cues become anchors and how many beats each
stretch gets, trading caught cues against how far the tempo strays from the section's base tempo and how sharply
it changes between stretches; the base tempo is searched over the mood's range. Cues it cannot catch stay where
they are: the hit is played exactly on its frame, off the beat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# How far the tempo may bend from the base within a section, and from one stretch to the next.
BEND = 0.15
STEP = 0.12
# The last stretch before a cut may bend further (a ritardando or push into the next scene).
END_BEND = 0.25
MIN_BPM, MAX_BPM = 40.0, 240.0
# Costs, in units of one caught cue of strength 1.
DEVIATION_COST = 2.0  # per unit of |ln(bpm / base)|
CHANGE_COST = 3.0  # per unit of |ln(bpm / previous bpm)|
BASE_COST = 1.5  # per unit of |ln(base / nominal)|
WHOLE_BARS_BONUS = 0.25  # the section is a whole number of bars


@dataclass
class SectionTempo:
    """The fitted click of one section: stretches ``(start_time, beats, bpm)`` and which cues landed on a beat."""

    base: float
    stretches: list[tuple[float, int, float]]
    anchored: list[int]  # indices into the cue list given to ``fit_section``

    @property
    def beats(self) -> int:
        return sum(n for _, n, _ in self.stretches)


def fit_section(
    start: float,
    end: float,
    cues: list[tuple[float, float]],
    tempo_range: tuple[float, float],
    nominal: float,
    meter: int = 4,
) -> SectionTempo:
    """Tempo stretches tiling ``[start, end)`` with a whole number of beats each.

    ``cues`` are ``(time, weight)``: weight 0 never anchors, 1 is a cue worth one unit of tempo cost.
    ``tempo_range`` bounds the base tempo searched (integer bpm); ``nominal`` is the mood's preferred tempo.
    """
    if not end > start:
        raise ValueError(f"a section must have positive length, got [{start}, {end})")
    lo, hi = int(math.floor(tempo_range[0])), int(math.ceil(tempo_range[1]))
    best: tuple[float, SectionTempo] | None = None
    for base in range(max(lo, int(MIN_BPM)), min(hi, int(MAX_BPM)) + 1):
        fit = _fit_at(start, end, cues, float(base), meter)
        if fit is None:
            continue
        score, tempo = fit
        score -= BASE_COST * abs(math.log(base / nominal))
        if best is None or score > best[0] + 1e-9:
            best = (score, tempo)
    if best is None:  # too short for the bounds: one stretch at the nearest whole number of beats
        n = max(1, round((end - start) * nominal / 60.0))
        return SectionTempo(nominal, [(start, n, 60.0 * n / (end - start))], [])
    return best[1]


def _fit_at(start: float, end: float, cues: list[tuple[float, float]], base: float, meter: int):
    points = [(start, 0.0, -1)]
    points += [(t, w, i) for i, (t, w) in enumerate(cues) if start < t < end and w > 0]
    points.sort(key=lambda p: p[0])
    points.append((end, 0.0, -2))
    last = len(points) - 1
    # states[j]: {(beats into j, bpm into j rounded) : (score, prev_state_key, prev_index, total_beats)}
    states: list[dict] = [dict() for _ in points]
    states[0][(0, 0.0)] = (0.0, None, None, 0)
    for j in range(1, len(points)):
        tj, wj, _ = points[j]
        bend = END_BEND if j == last else BEND
        for i in range(j):
            if not states[i] or (i > 0 and points[i][2] < 0):
                continue
            gap = tj - points[i][0]
            if gap <= 0:
                continue
            n_lo = max(1, math.ceil(gap * max(base * (1 - bend), MIN_BPM) / 60.0 - 1e-9))
            n_hi = math.floor(gap * min(base * (1 + bend), MAX_BPM) / 60.0 + 1e-9)
            for n in range(n_lo, n_hi + 1):
                bpm = 60.0 * n / gap
                for key, (score, _, _, total) in states[i].items():
                    prev = key[1]
                    if prev and abs(math.log(bpm / prev)) > (STEP if j != last else END_BEND):
                        continue
                    s = score + wj - DEVIATION_COST * abs(math.log(bpm / base))
                    if prev:
                        s -= CHANGE_COST * abs(math.log(bpm / prev))
                    new_key = (n, round(bpm, 6))
                    if new_key not in states[j] or s > states[j][new_key][0]:
                        states[j][new_key] = (s, key, i, total + n)
    if not states[last]:
        return None
    key, (score, *_rest) = max(states[last].items(), key=lambda kv: kv[1][0] + _bars_bonus(kv[1][3], meter))
    score += _bars_bonus(states[last][key][3], meter)
    # Walk back.
    stretches: list[tuple[float, int, float]] = []
    anchored: list[int] = []
    j = last
    while j > 0:
        s, prev_key, i, _ = states[j][key]
        n, bpm = key
        stretches.append((points[i][0], n, bpm))
        if points[i][2] >= 0:
            anchored.append(points[i][2])
        j, key = i, prev_key
    stretches.reverse()
    anchored.reverse()
    return score, SectionTempo(base, stretches, anchored)


def _bars_bonus(total_beats: int, meter: int) -> float:
    return WHOLE_BARS_BONUS if meter > 0 and total_beats % meter == 0 else 0.0
