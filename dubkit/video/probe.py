"""Stream facts from ffprobe (``dubkit.io.ffprobe``), with bad input turned into one actionable ``InputError``.

One ffprobe call reads the container header *and* the video packet timestamps (no decoding). The packets are what
make the facts trustworthy: the real frame count, whether frame intervals vary (variable frame rate), whether the
file is truncated (fewer packets on disk than the header promises — an export or copy that did not finish), and
the video's presentation interval: from its first shown frame to the end of its last, on the container's clock.
Packets an edit list hides (flagged "discard": the pre-roll of a file cut with ``-ss … -c copy``) are not shown,
so they are neither frames nor part of the interval.

Times on that clock are kept relative to the container's *origin*: an ISO/QuickTime file's presentation always
starts at 0 (a video that starts late has an empty edit before it, and keeps that offset), a broadcast stream's
clock starts wherever the encoder's did (1.4 s, 26001 s …), so its origin is the first timestamp in the file.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import check_input
from ..io import ffprobe as run_ffprobe
from .types import MediaInfo


def _rate(text: str | None) -> float:
    try:
        r = Fraction(text or "0/0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(r)


def _float(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if np.isfinite(v) else 0.0


def _rotation(stream: dict) -> int:
    """Clockwise degrees a player turns the coded picture for display (phones record portrait as 90).

    ffprobe's display-matrix ``rotation`` is counter-clockwise, the legacy ``rotate`` tag is clockwise.
    """
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(round(-_float(side["rotation"]))) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(round(_float(tag))) % 360 if tag is not None else 0


def _is_variable(pts: np.ndarray) -> bool:
    """True when frame times stray from any constant rate by more than half a frame.

    A robust straight line (median slopes over half the file) through the sorted timestamps: timestamp rounding
    (41/42 ms ticks for 24 fps at 1/1000) and a lone odd frame (an edit-list trim) stay near it; a change of rate
    part-way (24 fps joined to 30 fps) or irregular capture does not.
    """
    t = np.sort(pts.astype(np.float64))
    n = len(t)
    if n < 4:
        return False
    k = n // 2
    slope = float(np.median((t[k:] - t[:-k]) / k))
    if slope <= 0:
        return False
    i = np.arange(n)
    resid = np.abs(t - float(np.median(t - slope * i)) - slope * i)
    return float(np.quantile(resid, 0.98)) > 0.5 * slope


# Formats whose presentation timeline starts at 0 by definition (ISO base media / QuickTime).
_ZERO_ORIGIN = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}


def probe(path: str | os.PathLike, *, ffprobe: str = "ffprobe") -> MediaInfo:
    """Read what the rest of dubkit needs to know about a video, or raise ``InputError`` saying what is wrong.

    ``duration`` is the video's presentation interval (``container_duration`` the file's); ``fps`` the average
    rate; ``frame_count`` the shown video frames in the file; ``rotation`` clockwise degrees for display;
    ``width``/``height`` the coded (unrotated) size; ``origin``/``video_start``/``audio_start`` where the
    container's clock starts and where the first frame and the audio sit on it.
    """
    p = check_input(path)
    data = run_ffprobe(p, cmd=ffprobe, show_entries="packet=stream_index,pts,duration,flags")
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    video = next((s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None:
        what = "it has only audio" if audio is not None else "it has no video stream"
        raise InputError(f"{p}: no video stream ({what}) — dubkit needs a video file; for audio use `dubkit continue`")
    _refuse_raw_stream(p, fmt, video)
    packets = [pk for pk in data.get("packets") or [] if pk.get("stream_index") == video.get("index")]
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    pts, first, end = _presentation(packets, _rate(video.get("time_base")), fps)
    origin = _origin(fmt, streams)
    if first is None:  # a raw stream without timestamps: it starts at the origin
        first = origin
    container = _float(fmt.get("duration")) or _float(video.get("duration"))
    duration = _duration(p, container, first, end, packets, video)
    count = _frame_count(p, fmt, video, packets, len(pts))
    return MediaInfo(
        path=str(p),
        duration=duration,
        container_duration=container or duration,
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        fps=fps or count / duration,
        frame_count=count,
        variable_frame_rate=_is_variable(pts),
        rotation=_rotation(video),
        video_codec=str(video.get("codec_name") or ""),
        has_video=True,
        has_audio=audio is not None,
        audio_sample_rate=int(_float(audio.get("sample_rate"))) if audio else 0,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
        # Relative to the container's origin: where the first frame (and with it the new soundtrack) and the
        # original audio sit; the output keeps both offsets.
        origin=origin,
        video_start=first - origin,
        audio_start=(_float(audio.get("start_time")) - origin) if audio else 0.0,
        format_name=str(fmt.get("format_name") or ""),
        streams=streams,
    )


# Elementary streams without a container: no timestamps, so no trustworthy duration or frame times.
_RAW_STREAMS = {"h264": "H.264", "hevc": "H.265 (HEVC)", "m4v": "MPEG-4 part 2", "mpegvideo": "MPEG video",
                "obu": "AV1", "vc1": "VC-1", "cavsvideo": "CAVS", "rawvideo": "raw video"}


def _refuse_raw_stream(p: Path, fmt: dict, video: dict) -> None:
    kind = _RAW_STREAMS.get(str(fmt.get("format_name") or ""))
    if kind is None:
        return
    rate = _rate(video.get("r_frame_rate"))
    hint = f"{rate:g}" if 0 < rate < 1000 else "25"
    raise InputError(
        f"{p}: is a bare {kind} stream with no container, so it has no timestamps to put sound against — wrap it "
        f"first at the frame rate it was recorded at, e.g. `ffmpeg -framerate {hint} -i {p.name} -c copy "
        f"{p.stem}.mp4`, then dub the .mp4")


def _origin(fmt: dict, streams: list[dict]) -> float:
    """The container clock's zero for this file: 0 for ISO/QuickTime, else the earliest timestamp in it (from the
    streams' exact start ticks: the format's start is rounded to microseconds)."""
    if set(str(fmt.get("format_name") or "").split(",")) & _ZERO_ORIGIN:
        return 0.0
    starts = [int(s["start_pts"]) * _rate(s.get("time_base")) for s in streams
              if s.get("start_pts") is not None and _rate(s.get("time_base")) > 0]  # fmt: skip
    return float(min(starts)) if starts else _float(fmt.get("start_time"))


def _presentation(packets: list[dict], tb: float, fps: float) -> tuple[np.ndarray, float | None, float | None]:
    """Shown frames' pts (ticks, sorted) and the video's first/end presentation times in seconds (None: no pts).

    The end is the last frame's pts plus its duration; a duration far from the frame interval around it (encoders
    that pass timestamps through write 1-tick durations) is replaced by that interval.
    """
    shown = [pk for pk in packets if pk.get("pts") is not None and "D" not in str(pk.get("flags") or "")]
    if not shown or tb <= 0:
        return np.zeros(0, np.int64), None, None
    pts = np.sort(np.array([pk["pts"] for pk in shown], dtype=np.int64))
    last = max(shown, key=lambda pk: pk["pts"])
    step = float(np.median(np.diff(pts[-9:]))) if len(pts) > 1 else (1 / (fps * tb) if fps > 0 else 0.0)
    dur = float(last.get("duration") or 0)
    if not 0.5 * step <= dur <= 2 * step:
        dur = step
    return pts, float(pts[0] * tb), float((pts[-1] + dur) * tb)


def _duration(p: Path, container: float, first: float, end: float | None, packets: list[dict], video: dict) -> float:
    """The video's presentation interval; without timestamps (raw streams) the container's, or the packets'
    durations added up."""
    if end is not None:
        duration = end - first
    else:
        ticks = sum(int(pk.get("duration") or 0) for pk in packets)
        duration = container or ticks * _rate(video.get("time_base"))
    if duration <= 0:
        raise InputError(f"{p}: has no playable duration (a still image or a broken file?) — give a video file")
    return float(duration)


def _frame_count(p: Path, fmt: dict, video: dict, packets: list[dict], shown: int) -> int:
    """The shown video frames in the file, refusing still images and files with fewer than the header promises."""
    declared = int(_float(video.get("nb_frames")))
    count = shown or len(packets) or declared
    if count <= 1 and ("pipe" in str(fmt.get("format_name")) or "image" in str(fmt.get("format_name"))):
        raise InputError(f"{p}: is a still image, not a video — give a video file such as .mp4 or .mov")
    if declared and len(packets) < declared:
        raise InputError(
            f"{p}: the file is truncated ({len(packets)} of {declared} video frames are present) — the export or "
            "copy did not finish; export or copy it again"
        )
    if count == 0:
        raise InputError(f"{p}: the video stream has no frames — the file is truncated or broken; export it again")
    return count
