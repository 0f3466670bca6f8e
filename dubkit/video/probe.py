"""Stream facts from ffprobe (``dubkit.io.ffprobe``), with bad input turned into one actionable ``InputError``.

One ffprobe call reads the container header *and* the video packet timestamps (no decoding). The packets are what
make the facts trustworthy: the real frame count, whether frame intervals vary (variable frame rate), and whether
the file is truncated (fewer packets on disk than the header promises — an export or copy that did not finish).
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


def probe(path: str | os.PathLike, *, ffprobe: str = "ffprobe") -> MediaInfo:
    """Read what the rest of dubkit needs to know about a video, or raise ``InputError`` saying what is wrong.

    ``duration`` is the container's; ``fps`` the average rate; ``frame_count`` the video packets actually in the
    file; ``rotation`` clockwise degrees for display; ``width``/``height`` the coded (unrotated) size.
    """
    p = check_input(path)
    data = run_ffprobe(p, cmd=ffprobe, show_entries="packet=stream_index,pts,duration")
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    video = next((s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None:
        what = "it has only audio" if audio is not None else "it has no video stream"
        raise InputError(f"{p}: no video stream ({what}) — dubkit needs a video file; for audio use `dubkit continue`")
    _refuse_raw_stream(p, fmt, video)
    packets = [pk for pk in data.get("packets") or [] if pk.get("stream_index") == video.get("index")]
    pts = np.array([pk["pts"] for pk in packets if pk.get("pts") is not None], dtype=np.int64)
    duration = _duration(p, fmt, video, packets, pts)
    count = _frame_count(p, fmt, video, packets)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")) or count / duration
    start = _float(fmt.get("start_time"))
    return MediaInfo(
        path=str(p),
        duration=duration,
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        fps=fps,
        frame_count=count,
        variable_frame_rate=_is_variable(pts),
        rotation=_rotation(video),
        video_codec=str(video.get("codec_name") or ""),
        has_video=True,
        has_audio=audio is not None,
        audio_sample_rate=int(_float(audio.get("sample_rate"))) if audio else 0,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
        # Relative to the container's start: ffmpeg aligns every input to that, so these are the offsets the new
        # soundtrack (video_start) and the original audio (audio_start) sit at against the first frame.
        video_start=_float(video.get("start_time")) - start,
        audio_start=(_float(audio.get("start_time")) - start) if audio else 0.0,
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


def _duration(p: Path, fmt: dict, video: dict, packets: list[dict], pts: np.ndarray) -> float:
    """The container's duration; for raw streams (none in the header) the span of the video packets."""
    duration = _float(fmt.get("duration")) or _float(video.get("duration"))
    tb = _rate(video.get("time_base"))
    if duration <= 0 and len(pts) and tb > 0:
        last_dur = max((pk.get("duration") or 0) for pk in packets)
        duration = float((pts.max() - pts.min() + last_dur) * tb)
    if duration <= 0:
        raise InputError(f"{p}: has no playable duration (a still image or a broken file?) — give a video file")
    return duration


def _frame_count(p: Path, fmt: dict, video: dict, packets: list[dict]) -> int:
    """The video packets in the file, refusing still images and files with fewer than the header promises."""
    declared = int(_float(video.get("nb_frames")))
    count = len(packets) or declared
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
