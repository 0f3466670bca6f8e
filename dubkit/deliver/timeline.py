"""An OpenTimelineIO timeline of the dub, so an editor can open the soundtrack as editable clips in their NLE.

One video track holds the output video; each soundtrack layer gets an audio track whose clips are the plan's
events, named by caption, cut from that layer's stem. Audio ranges use the sample rate as the time base and the
video uses its frame rate, so every range is an exact integer count (no rounding drift over a long timeline).
Events that overlap on one layer go to extra tracks of that layer ("fx 2", ...), since a track is sequential.
Media paths are written relative to the .otio file, so the deliverables folder can be moved as a whole.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import opentimelineio as otio

from audiostory_core.assemble import to_samples
from audiostory_core.plan.types import LAYERS, SubEvent
from dubkit.errors import InputError, OutputError


def build_timeline(
    *,
    video_path: str | Path,
    video_duration: float,
    fps: float,
    stem_paths: dict[str, Path],
    events: Iterable[SubEvent],
    cuts: Sequence[float] = (),
    sample_rate: int = 48000,
    name: str | None = None,
    relative_to: str | Path | None = None,
) -> otio.schema.Timeline:
    """The timeline object (see ``write_timeline``); ``relative_to`` is the folder media paths are relative to."""
    if not (video_duration > 0 and fps > 0):
        raise InputError(f"timeline needs a positive video duration and frame rate, got {video_duration} s at {fps} fps")
    video_path = Path(video_path)
    timeline = otio.schema.Timeline(name=name or video_path.stem)
    timeline.global_start_time = otio.opentime.RationalTime(0, fps)
    timeline.tracks.append(_video_track(video_path, video_duration, fps, cuts, relative_to))
    total = to_samples(video_duration, sample_rate)
    timeline.tracks.extend(_audio_tracks(events, stem_paths, sample_rate, total, relative_to))
    return timeline


def _video_track(video_path: Path, duration: float, fps: float, cuts: Sequence[float], relative_to) -> otio.schema.Track:
    """The picture as one clip, with a marker at each cut."""
    frames = max(int(round(duration * fps)), 1)
    video = otio.schema.Track(name="Video", kind=otio.schema.TrackKind.Video)
    video_range = otio.opentime.TimeRange(otio.opentime.RationalTime(0, fps), otio.opentime.RationalTime(frames, fps))
    video.append(
        otio.schema.Clip(
            name=video_path.name,
            media_reference=otio.schema.ExternalReference(
                target_url=_url(video_path, relative_to), available_range=video_range
            ),
            source_range=video_range,
        )
    )
    for i, cut in enumerate(sorted(float(c) for c in cuts)):
        if 0.0 < cut < duration:
            video.markers.append(
                otio.schema.Marker(
                    name=f"cut {i + 1}",
                    marked_range=otio.opentime.TimeRange(
                        otio.opentime.RationalTime(int(round(cut * fps)), fps), otio.opentime.RationalTime(0, fps)
                    ),
                    color=otio.schema.MarkerColor.RED,
                    metadata={"dubkit": {"time": cut}},
                )
            )
    return video


def _audio_tracks(events: Iterable[SubEvent], stem_paths: dict[str, Path], sample_rate: int, total: int,
                  relative_to) -> list[otio.schema.Track]:
    """One track per layer (more where its events overlap), clips on exact samples, gaps to the full length."""
    by_layer: dict[str, list[SubEvent]] = {}
    for ev in events:
        by_layer.setdefault(ev.layer, []).append(ev)
    tracks = []
    for layer in sorted(by_layer, key=lambda l: (LAYERS.index(l) if l in LAYERS else len(LAYERS), l)):
        for lane_no, lane in enumerate(_lanes(by_layer[layer], sample_rate, total)):
            track = otio.schema.Track(
                name=layer if lane_no == 0 else f"{layer} {lane_no + 1}", kind=otio.schema.TrackKind.Audio
            )
            cursor = 0
            for start, end, ev in lane:
                if start > cursor:
                    track.append(otio.schema.Gap(source_range=_range(0, start - cursor, sample_rate)))
                track.append(
                    otio.schema.Clip(
                        name=ev.caption,
                        media_reference=_stem_reference(stem_paths.get(layer), total, sample_rate, relative_to),
                        source_range=_range(start, end - start, sample_rate),
                        metadata={"dubkit": ev.to_dict()},
                    )
                )
                cursor = end
            if cursor < total:  # every track runs the full length of the video
                track.append(otio.schema.Gap(source_range=_range(0, total - cursor, sample_rate)))
            tracks.append(track)
    return tracks


def write_timeline(path: str | Path, **spec: Any) -> Path:
    """Write ``path`` (.otio) from ``build_timeline``'s keywords: video track + one audio track per layer
    (clips = events), markers at ``cuts``; media paths relative to the file's folder.

    Clip ranges are the events' [start, end) on exact samples (``round(t * sample_rate)``, as assembly places
    them), clamped to the video; the media reference is the layer's stem (a MissingReference when there is none).
    """
    path = Path(path)
    timeline = build_timeline(**spec, relative_to=path.parent)
    try:
        otio.adapters.write_to_file(timeline, str(path))
    except OSError as e:
        raise OutputError(f"cannot write timeline {path}: {e.strerror}") from e
    return path


def _lanes(events: list[SubEvent], sample_rate: int, total: int) -> list[list[tuple[int, int, SubEvent]]]:
    """Spread events over as few sequential lanes as possible (first lane whose last clip has ended)."""
    lanes: list[list[tuple[int, int, SubEvent]]] = []
    for ev in sorted(events, key=lambda e: (e.start, e.end)):
        start = min(max(to_samples(ev.start, sample_rate), 0), total)
        end = min(to_samples(ev.end, sample_rate), total)
        if end <= start:
            continue
        for lane in lanes:
            if lane[-1][1] <= start:
                lane.append((start, end, ev))
                break
        else:
            lanes.append([(start, end, ev)])
    return lanes


def _range(start: int, duration: int, rate: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(duration, rate))


def _stem_reference(stem: Path | None, total: int, rate: int, relative_to) -> otio.core.MediaReference:
    if stem is None:
        return otio.schema.MissingReference()
    return otio.schema.ExternalReference(target_url=_url(Path(stem), relative_to), available_range=_range(0, total, rate))


def _url(path: Path, relative_to) -> str:
    if relative_to is None:
        return path.resolve().as_uri()
    return Path(os.path.relpath(path.resolve(), Path(relative_to).resolve())).as_posix()
