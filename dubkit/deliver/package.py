"""The deliverables folder ``<name>.dubkit/``: stems, OTIO timeline, SRT cue sheet, plan JSON, report and credits.

It is built in a hidden sibling folder and renamed into place only when every file is written, so a reader (an
editor, a watch-folder job) never sees a half-written package; an existing package is moved aside, the new one
renamed in, and the old one deleted — if the swap fails the old package is put back.
"""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from audiostory_core.plan.types import Plan
from audiostory_core.render.base import Clip
from dubkit.errors import OutputError
from dubkit.soundtrack.loudness import LoudnessReport
from dubkit.soundtrack.mix import MixResult
from dubkit.soundtrack.stems import mix_stems, write_stems

from .credits import write_credits
from .report import write_report
from .subtitles import write_plan_json, write_srt
from .timeline import write_timeline


@dataclass
class Deliverables:
    """Paths of everything written (all inside ``folder``)."""

    folder: Path
    plan: Path
    srt: Path
    timeline: Path
    report: Path
    stems: dict[str, Path] = field(default_factory=dict)
    credits: Path | None = None
    licences: Path | None = None

    def to_dict(self) -> dict:
        d = {
            "folder": str(self.folder),
            "plan": str(self.plan),
            "srt": str(self.srt),
            "timeline": str(self.timeline),
            "report": str(self.report),
            "stems": {k: str(v) for k, v in self.stems.items()},
        }
        if self.credits is not None:
            d.update(credits=str(self.credits), licences=str(self.licences))
        return d


def write_deliverables(
    folder: str | Path,
    name: str,
    *,
    video_path: str | Path,
    video_duration: float,
    fps: float,
    plan: Plan,
    cuts: Sequence[float],
    mix: MixResult,
    final_audio: np.ndarray,
    loudness: LoudnessReport | None = None,
    soundtrack_stems: dict[str, np.ndarray] | None = None,
    thumbnails: Sequence[tuple[float, np.ndarray]] = (),
    backends: dict[str, str] | None = None,
    timings: dict[str, float] | None = None,
    speech: Sequence[tuple[float, float]] = (),
    extra: dict | None = None,
    clips: Sequence[Clip] | None = None,
) -> Deliverables:
    """Write ``<folder>/<name>.dubkit/`` and return its paths.

    ``mix`` is the mix before loudness normalisation and ``final_audio`` the delivered (normalised, limited)
    audio; ``soundtrack_stems`` are the assembled soundtrack's layers — when given, stems are written
    (``stems/<layer>.wav``: the layers as they sit in the mix, plus "dialogue" when the original was kept) and
    the timeline's clips point into them. ``extra`` is added to plan.json. ``clips`` (the rendered clips,
    ``Soundtrack.clips``) adds ``credits.txt`` and ``licences.json``: every recording used, with its licence.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise OutputError(f"deliverables folder {folder} does not exist: create it or choose another output folder")
    final = folder / f"{name}.dubkit"
    tmp = folder / f".{name}.dubkit.tmp-{uuid.uuid4().hex[:8]}"
    sample_rate = mix.sample_rate
    try:
        tmp.mkdir()
        stem_paths: dict[str, Path] = {}
        if soundtrack_stems:
            stems = mix_stems(soundtrack_stems, mix, loudness.gain_db if loudness is not None else 0.0)
            stem_paths = write_stems(tmp / "stems", stems, sample_rate)
        timeline = write_timeline(
            tmp / f"{name}.otio", video_path=video_path, video_duration=video_duration, fps=fps,
            stem_paths=stem_paths, events=plan.events, cuts=cuts, sample_rate=sample_rate, name=name,
        )  # fmt: skip
        srt = write_srt(tmp / f"{name}.events.srt", plan.events, duration=video_duration)
        plan_json = write_plan_json(
            tmp / f"{name}.plan.json", plan, video=Path(video_path).name, duration=video_duration, fps=fps,
            cuts=list(cuts), mix_mode=mix.mode, speech=[list(r) for r in speech],
            loudness=loudness, backends=backends or {}, timings=timings or {}, **(extra or {}),
        )  # fmt: skip
        report = write_report(
            tmp / "report.html", title=Path(video_path).name, duration=video_duration, thumbnails=thumbnails,
            events=plan.events, cuts=cuts, audio=final_audio, sample_rate=sample_rate, loudness=loudness,
            backends=backends or {}, timings=timings or {}, speech=speech,
        )  # fmt: skip
        credit_paths = write_credits(tmp, clips, title=Path(video_path).name) if clips is not None else None
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def moved(p: Path) -> Path:
        return final / p.relative_to(tmp)

    return Deliverables(
        folder=final,
        plan=moved(plan_json),
        srt=moved(srt),
        timeline=moved(timeline),
        report=moved(report),
        stems={k: moved(v) for k, v in stem_paths.items()},
        credits=moved(credit_paths[0]) if credit_paths else None,
        licences=moved(credit_paths[1]) if credit_paths else None,
    )


def _swap_in(new: Path, final: Path) -> None:
    """Rename ``new`` to ``final``; an existing ``final`` is set aside first and deleted only after the swap."""
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(final, old)
        except OSError as e:
            raise OutputError(f"cannot replace {final}: {e.strerror} (is a file in it open elsewhere?)") from e
    try:
        os.replace(new, final)
    except OSError as e:
        if old is not None:
            os.replace(old, final)  # put the previous package back
        raise OutputError(f"cannot write {final}: {e.strerror}") from e
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
