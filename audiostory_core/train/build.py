"""``data build``: a folder of long audio files with timestamped caption files → a training manifest.

For each audio (or video) file ``NAME.ext`` in the folder the captions are read from the first of:

- ``NAME.txt`` / ``NAME.tsv`` — an Audacity label track (``start<TAB>end<TAB>caption`` per line, seconds; the
  frequency lines Audacity writes for spectral labels are skipped);
- ``NAME.csv`` — a header with ``start``, ``end`` and ``caption`` (or ``label`` / ``text``) columns.

An optional ``NAME.json`` adds ``instruction``, ``reasoning`` and ``scenes`` (the output of ``dubkit plan`` works
as is: its ``scenes`` are our captioner's descriptions of the video). Without an instruction or scenes the
captions, joined in order, become the instruction. Every problem stops the build with one error naming the file
and line; the manifest is written only when everything is valid.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from .errors import DataError
from .manifest import TIME_TOLERANCE, EventSpec, Example, first_error, read_manifest, write_manifest

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus", ".m4a", ".aac",
                    ".mp4", ".mov", ".mkv", ".webm"}
LABEL_EXTENSIONS = (".txt", ".tsv", ".csv")
CAPTION_COLUMNS = ("caption", "label", "text")
MAX_EVENT_SECONDS = 30.0  # the DiT renders at most this much per event (its duration embedding's range)


@dataclass
class BuildReport:
    manifest: Path
    stories: int
    events: int
    seconds: float

    def summary(self) -> str:
        return f"{self.manifest}: {self.stories} stories, {self.events} events, {self.seconds:.1f} s of audio"


def audio_duration(path: Path) -> float:
    """Seconds of audio in ``path``: soundfile's header, else ffprobe (compressed and video files)."""
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except (RuntimeError, sf.LibsndfileError, OSError):
        pass
    import ffmpeg

    try:
        info = ffmpeg.probe(str(path))
        streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
        return float(streams[0].get("duration") or info["format"]["duration"])
    except (ffmpeg.Error, KeyError, IndexError, ValueError) as exc:
        raise DataError(f"cannot read the audio of {path}: {exc}") from None


def read_labels(path: Path) -> list[tuple[int, float, float, str]]:
    """(line, start, end, caption) rows of an Audacity label file or a CSV; bad rows raise naming the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the caption file {path}: {exc}") from None
    rows = _csv_rows(path, text) if path.suffix.lower() == ".csv" else _audacity_rows(path, text)
    if not rows:
        raise DataError(f"{path} holds no captions")
    return rows


def _number(value: str, path: Path, line: int, what: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise DataError(f"{path} line {line}: the {what} time {value!r} is not a number of seconds") from None
    if not (x == x) or x < 0 or x == float("inf"):
        raise DataError(f"{path} line {line}: the {what} time {value!r} is not a non-negative number of seconds")
    return x


def _audacity_rows(path: Path, text: str) -> list[tuple[int, float, float, str]]:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith(("\\", "#")):
            continue
        parts = line.split("\t") if "\t" in line else line.split(None, 2)
        if len(parts) < 3:
            raise DataError(f"{path} line {n}: expected 'start<TAB>end<TAB>caption' (Audacity labels)")
        start, end = _number(parts[0], path, n, "start"), _number(parts[1], path, n, "end")
        rows.append((n, start, end, "\t".join(parts[2:]).strip()))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, float, float, str]]:
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower(): f for f in reader.fieldnames or []}
    caption = next((fields[c] for c in CAPTION_COLUMNS if c in fields), None)
    if "start" not in fields or "end" not in fields or caption is None:
        raise DataError(f"{path} line 1: the header needs 'start', 'end' and 'caption' columns, got {reader.fieldnames}")
    rows = []
    for row in reader:
        n = reader.line_num
        start = _number(row[fields["start"]] or "", path, n, "start")
        rows.append((n, start, _number(row[fields["end"]] or "", path, n, "end"), (row[caption] or "").strip()))
    return rows


def _events(labels: Path, rows, duration: float, max_event: float) -> list[EventSpec]:
    events = []
    for n, start, end, caption in rows:
        where = f"{labels} line {n}"
        if not caption:
            raise DataError(f"{where}: the caption is empty")
        if end <= start:
            raise DataError(f"{where}: the event ends at {end} s, not after its start {start} s")
        if end > duration + TIME_TOLERANCE:
            raise DataError(f"{where}: the event ends at {end} s but the audio lasts {duration:.3f} s")
        if end - start > max_event + TIME_TOLERANCE:
            raise DataError(f"{where}: the event lasts {end - start:.2f} s; the DiT renders at most {max_event:g} s "
                            "per event: split it into shorter events")
        try:
            events.append(EventSpec(caption=caption, start=start, end=min(end, duration)))
        except ValidationError as exc:
            raise DataError(f"{where}: {first_error(exc)}") from None
    return events


def _sidecar(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with 'instruction', 'reasoning' and/or 'scenes'")
    return {k: data[k] for k in ("instruction", "reasoning", "scenes") if data.get(k) is not None}


def _story(audio: Path, labels: Path, out_dir: Path, max_event: float) -> Example:
    duration = audio_duration(audio)
    events = _events(labels, read_labels(labels), duration, max_event)
    extra = _sidecar(audio.with_suffix(".json"))
    if not extra.get("instruction") and not extra.get("scenes"):
        extra["instruction"] = ", then ".join(e.caption.rstrip(".") for e in sorted(events, key=lambda e: e.start)) + "."
    try:
        return Example(id=audio.stem, duration=round(duration, 6), audio=os.path.relpath(audio, out_dir),
                       events=events, **extra)
    except ValidationError as exc:
        raise DataError(f"{audio.with_suffix('.json')}: {first_error(exc)}") from None


def caption_file(audio: Path) -> Path | None:
    """The caption file that goes with ``audio`` (same name, a label extension), or None."""
    return next((audio.with_suffix(ext) for ext in LABEL_EXTENSIONS if audio.with_suffix(ext).is_file()), None)


def build_dataset(
    folder: str | os.PathLike, output: str | os.PathLike | None = None, *, max_event: float = MAX_EVENT_SECONDS,
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    """Turn ``folder`` into a manifest (default ``folder/manifest.jsonl``); audio paths are written relative to
    the manifest. Audio files without a caption file are an error (nothing is dropped silently)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    out = Path(output) if output is not None else folder / "manifest.jsonl"
    audios = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not audios:
        raise DataError(f"{folder} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})")
    stories = []
    for audio in audios:
        labels = caption_file(audio)
        if labels is None:
            raise DataError(f"{audio} has no caption file: add {audio.stem}.txt (Audacity labels) or {audio.stem}.csv")
        stories.append(_story(audio, labels, out.parent.resolve(), max_event))
        if progress:
            progress(f"{audio.name}: {len(stories[-1].events)} events")
    write_manifest(out, stories)
    read_manifest(out)  # what was written reads back valid
    return BuildReport(out, len(stories), sum(len(s.events) for s in stories), sum(s.duration for s in stories))
