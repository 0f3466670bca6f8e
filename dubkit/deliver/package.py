"""The deliverables folder ``<output file name>.dubkit/`` (``clip.dubbed.mp4.dubkit/``): stems, OTIO timeline,
SRT cue sheet, plan JSON, the MIDI score (when the dub has music), report and credits, together.

It is built in a hidden sibling folder and renamed into place only when every file is written, so a reader (an
editor, a watch-folder job) never sees a half-written package; an existing package is moved aside, the new one
renamed in, and the old one deleted — if the swap fails the old package is put back. The folder is named after
the whole output file name, so ``clip.mp4`` and ``clip.mov`` dubbed into one folder never share (and overwrite)
one package.
"""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audiostory_core.plan.types import Plan
from audiostory_core.render.base import Clip
from dubkit.errors import OutputError
from dubkit.io import no_space_named
from dubkit.soundtrack.master import Mastered
from dubkit.soundtrack.stems import mix_stems, write_stems

from .credits import write_credits
from .report import write_report
from .score import write_score_midi
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
    score: Path | None = None  # <name>.score.mid, when the plan has music
    credits: Path | None = None  # credits.txt, when the rendered clips were given
    licences: Path | None = None  # licences.json, beside it

    def to_dict(self) -> dict:
        d = {
            **({"score": str(self.score)} if self.score is not None else {}),
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


@dataclass
class Picture:
    """The dubbed video as the deliverables describe it: where it is, how long, its frame rate, the cuts, and a
    thumbnail per shot (start time, RGB image) for the report."""

    path: Path
    duration: float
    fps: float
    cuts: Sequence[float] = ()
    thumbnails: Sequence[tuple[float, np.ndarray]] = ()


def package_folder(output: str | Path) -> Path:
    """The deliverables folder of the dubbed video ``output``: ``<folder>/<output file name>.dubkit``."""
    out = Path(output)
    return out.with_name(f"{out.name}.dubkit")


def write_deliverables(
    folder: str | Path,
    name: str,
    *,
    package: str | None = None,
    picture: Picture,
    plan: Plan,
    mastered: Mastered,
    stems: dict[str, np.ndarray] | None = None,
    backends: dict[str, str] | None = None,
    timings: dict[str, float] | None = None,
    extra: dict | None = None,
    clips: Sequence[Clip] | None = None,
    ready: Callable[[], None] | None = None,
) -> Deliverables:
    """Write ``<folder>/<package>`` (default ``<name>.dubkit``) and return its paths; the files in it are named
    after ``name``.

    ``mastered`` holds the mix before loudness normalisation (``mix``), the delivered audio (``audio``), the
    loudness report and the speech regions; ``stems`` are the assembled soundtrack's layers — when given, stems
    are written (``stems/<layer>.wav``: the layers as they sit in the mix, plus "dialogue" when the original was
    kept) and the timeline's clips point into them. ``extra`` is added to plan.json.
    ``ready`` is called when every file is written, before the package replaces an older one; if it raises,
    nothing is replaced. ``clips`` (the rendered clips, ``Soundtrack.clips``) adds ``credits.txt`` and ``licences.json``: every
    recording used, with its licence.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise OutputError(f"deliverables folder {folder} does not exist: create it or choose another output folder")
    final = folder / (package or f"{name}.dubkit")
    tmp = folder / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    run = {"backends": backends or {}, "timings": timings or {}}
    try:
        with no_space_named(folder, f"the deliverables {final.name}/"):
            tmp.mkdir()
            written = _write_files(tmp, name, picture, plan, mastered, stems, run, extra or {}, clips)
        if ready is not None:
            ready()  # e.g. the mux that ran beside: its failure must leave the older package in place
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    moved = {k: (final / v.relative_to(tmp) if isinstance(v, Path) else v) for k, v in written.items()}
    moved["stems"] = {k: final / v.relative_to(tmp) for k, v in written["stems"].items()}
    return Deliverables(folder=final, **moved)


def _write_files(tmp: Path, name: str, picture: Picture, plan: Plan, mastered: Mastered,
                 stems: dict[str, np.ndarray] | None, run: dict, extra: dict, clips: Sequence[Clip] | None) -> dict:
    """Every file of the package, into ``tmp``; returns their paths by ``Deliverables`` field."""
    mix, loudness, rate = mastered.mix, mastered.loudness, mastered.mix.sample_rate
    stem_paths: dict[str, Path] = {}
    if stems:
        layers = mix_stems(stems, mix, loudness.gain_db if loudness is not None else 0.0)
        stem_paths = write_stems(tmp / "stems", layers, rate)
    timeline = write_timeline(
        tmp / f"{name}.otio", video_path=picture.path, video_duration=picture.duration, fps=picture.fps,
        stem_paths=stem_paths, events=plan.events, cuts=picture.cuts, sample_rate=rate, name=name,
    )  # fmt: skip
    srt = write_srt(tmp / f"{name}.events.srt", plan.events, duration=picture.duration)
    score = write_score_midi(plan, tmp / f"{name}.score.mid") if plan.score is not None else None
    plan_json = write_plan_json(
        tmp / f"{name}.plan.json", plan, video=Path(picture.path).name, duration=picture.duration, fps=picture.fps,
        cuts=list(picture.cuts), mix_mode=mix.mode, speech=[list(r) for r in mastered.speech], loudness=loudness,
        **run, **extra,
    )  # fmt: skip
    report = write_report(
        tmp / "report.html", title=Path(picture.path).name, duration=picture.duration,
        thumbnails=picture.thumbnails, events=plan.events, cuts=picture.cuts, audio=mastered.audio,
        sample_rate=rate, loudness=loudness, speech=mastered.speech, score=plan.score, clips=clips or (), **run,
    )  # fmt: skip
    credits = write_credits(tmp, clips, title=Path(picture.path).name) if clips is not None else (None, None)
    return {"plan": plan_json, "srt": srt, "timeline": timeline, "report": report, "stems": stem_paths, "score": score,
            "credits": credits[0], "licences": credits[1]}


def credits_folder(output: str | Path) -> Path:
    """Where the credits of an audio output (``dubkit story``/``continue``) go: ``<output file name>.dubkit/``
    beside it, named like a dub's package so two outputs never share one."""
    return package_folder(output)


def write_audio_credits(output: str | Path, clips: Sequence[Clip]) -> tuple[Path, Path]:
    """``credits.txt`` and ``licences.json`` for an audio output, in :func:`credits_folder`: every library clip
    heard, with source, licence and attribution. A new folder is built under a hidden name and renamed into
    place; an existing one (from an earlier run to the same output) keeps its other files, each file replaced
    atomically."""
    final = credits_folder(output)
    title = Path(output).name
    if final.is_dir():
        return write_credits(final, clips, title=title)
    if final.exists():
        raise OutputError(f"cannot write credits to {final}: a file of that name is in the way")
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()
        write_credits(tmp, clips, title=title)
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / "credits.txt", final / "licences.json"


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
