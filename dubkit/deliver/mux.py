"""Mux: the input's video stream copied bit for bit, the new soundtrack added (and optionally the original audio)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg

from ..errors import DubkitError, MediaToolError, OutputError
from ..io import atomic_output, ffprobe, require_tool, space_error, tool_path
from ..video.types import MediaInfo

# Audio codec per output container: AAC where players expect it, PCM/lossless where the container allows, what
# broadcast containers require (MXF: PCM; MPEG program streams: MP2).
_AUDIO_CODECS = {
    ".mp4": "aac", ".m4v": "aac", ".mov": "pcm_s24le", ".mkv": "flac", ".webm": "libopus",
    ".ts": "aac", ".m2ts": "aac", ".mts": "aac", ".mxf": "pcm_s24le", ".mpg": "mp2", ".mpeg": "mp2",
    ".avi": "pcm_s16le",
}
_WEBM_VIDEO = {"vp8", "vp9", "av1"}


def audio_codec_for(path: str | Path) -> str:
    return _AUDIO_CODECS[Path(path).suffix.lower()]


def check_container(output: str | Path, video_codec: str) -> None:
    """Refuse, before any work, an output container that cannot hold the copied video stream."""
    ext = Path(output).suffix.lower()
    if ext not in _AUDIO_CODECS:
        raise OutputError(f"{output}: unsupported output container {ext or '(no extension)'!s}; "
                          f"use one of {', '.join(sorted(_AUDIO_CODECS))}")
    if ext == ".webm" and video_codec and video_codec not in _WEBM_VIDEO:
        raise OutputError(f"{output}: WebM cannot hold {video_codec} video (the video is copied, not re-encoded); "
                          "use .mp4, .mov or .mkv")


def mux(
    video: str | Path,
    soundtrack_wav: str | Path,
    output: str | Path,
    *,
    keep_original_audio: bool = False,
    video_start: float = 0.0,
    audio_title: str = "dubkit soundtrack",
    atomic: bool = True,
    container: str | None = None,
) -> Path:
    """Write ``output`` = video stream of ``video`` (stream copy) + ``soundtrack_wav`` as the first audio track.

    With ``keep_original_audio`` the input's first audio stream follows as a second track, also stream-copied.
    ``video_start`` (the video stream's start time) offsets the soundtrack so sample 0 plays with frame 0.
    Written under a temporary name and renamed when ffmpeg has finished (``atomic=False``: straight to ``output``,
    for callers that manage the temporary name themselves; ``container`` then names the real extension).
    """
    require_tool("ffmpeg")
    out = Path(output)
    kind = (container or out.suffix).lower()
    codec = _AUDIO_CODECS[kind]
    src = ffmpeg.input(tool_path(video))
    wav = tool_path(soundtrack_wav)
    snd = ffmpeg.input(wav, itsoffset=video_start) if video_start else ffmpeg.input(wav)
    streams = [src["v:0"], snd["a:0"]]
    opts: dict = {
        "c:v": "copy",
        "c:a:0": codec,
        "metadata:s:a:0": f"title={audio_title}",
        "disposition:a:0": "default",
        "map_metadata": 0,
    }
    if codec == "aac":
        opts["b:a:0"] = "256k"
    if keep_original_audio:
        streams.append(src["a:0"])
        opts["c:a:1"] = "copy"
        opts["metadata:s:a:1"] = "title=original audio"
        opts["disposition:a:1"] = "0"
    if kind in (".mp4", ".m4v", ".mov"):
        opts["movflags"] = "+faststart"
    if atomic:
        with atomic_output(out) as tmp:
            _run(ffmpeg.output(*streams, tool_path(tmp), **opts), kind, out)
    else:
        _run(ffmpeg.output(*streams, tool_path(out), **opts), kind, out)
    return out


_NO_SPACE = ("No space left on device", "Disk quota exceeded")


def _run(stream, kind: str, out: Path) -> None:
    cmd = stream.overwrite_output().global_args("-nostdin", "-v", "error").compile()
    proc = subprocess.run(cmd, capture_output=True)
    text = proc.stderr.decode(errors="replace")
    if any(s in text for s in _NO_SPACE):  # ffmpeg can exit 0 after a failed write (e.g. in the faststart pass)
        raise space_error(out.parent if str(out.parent) else Path("."), f"the dubbed video ({kind})")
    if proc.returncode != 0:
        lines = [line for line in text.splitlines() if line.strip()]
        # ffmpeg's last line is often a generic "Error initializing output stream"; the first says why.
        detail = "; ".join(dict.fromkeys(lines[:2])) if lines else "unknown error"
        raise MediaToolError(f"ffmpeg could not write the {kind} file: {detail} (try .mp4, .mov or .mkv)")


def verify_muxed(path: str | Path, info: MediaInfo, *, audio_streams: int, shown_as: str | Path | None = None) -> None:
    """Check a muxed file before it is renamed into place: ffprobe reads it, it has the copied video stream with
    every one of the input's video packets (read from the file, so a file cut short is caught even when its
    header is intact) and the expected audio streams, and it lasts as long as the input. ``OutputError`` if not,
    naming ``shown_as`` (the final name)."""
    name = Path(shown_as or path)
    try:
        data = ffprobe(path, want="a complete video", count_packets=None,
                       show_entries="stream=codec_type,codec_name,nb_read_packets:format=duration")
    except DubkitError as e:
        raise _rejected(name, f"ffprobe cannot read it ({e})") from e
    streams = data.get("streams") or []
    video = [s for s in streams if s.get("codec_type") == "video"]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video or (info.video_codec and video[0].get("codec_name") != info.video_codec):
        raise _rejected(name, f"its video stream is missing or not the input's {info.video_codec}")
    packets = int(video[0].get("nb_read_packets") or 0)
    if info.frame_count and packets < info.frame_count:
        raise _rejected(name, f"it holds {packets} of the input's {info.frame_count} video frames")
    if len(audio) != audio_streams or not all(int(a.get("nb_read_packets") or 0) > 0 for a in audio):
        raise _rejected(name, f"it has {len(audio)} playable audio stream(s), {audio_streams} expected")
    duration = float((data.get("format") or {}).get("duration") or 0.0)
    slack = 0.5 + 2.0 / (info.fps or 24.0)  # audio frames and the video's last frame round either way
    if abs(duration - info.duration) > slack:
        raise _rejected(name, f"it lasts {duration:.2f} s, the input {info.duration:.2f} s")


def _rejected(name: Path, why: str) -> OutputError:
    return OutputError(f"{name}: the muxed file failed its check ({why}); nothing was written — if the disk is "
                       "full free some space, else report this with the input file")
