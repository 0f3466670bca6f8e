"""``<name>.score.mid``: the music of a dub as a Standard MIDI File, for an editor or composer to re-orchestrate.

It is the piece that was heard: the plan's cue sheet recomposed with the seed it was rendered with (the composer
is deterministic), so the tempo map, bars, markers at the cuts and every note match the music stem.
"""
from __future__ import annotations

from pathlib import Path

from audiostory_core.music.composer import compose
from audiostory_core.music.midi import write_midi
from audiostory_core.music.types import ScorePlan
from audiostory_core.plan.types import Plan
from dubkit.errors import OutputError


def write_score_midi(score: Plan | ScorePlan, path: str | Path, *, seed: int | None = None) -> Path:
    """Write the score of ``score`` (a plan with a cue sheet, or the sheet) to ``path`` and return it.

    ``seed`` defaults to the seed the score was rendered with (``ScorePlan.seed``), else 0.
    """
    sheet = score.score if isinstance(score, Plan) else score
    if sheet is None:
        raise OutputError("this plan has no music to write as MIDI (music was off)")
    use = seed if seed is not None else (sheet.seed if sheet.seed is not None else 0)
    try:
        return write_midi(compose(sheet, use), path)
    except OSError as e:
        raise OutputError(f"cannot write the score {path}: {e.strerror}") from e
