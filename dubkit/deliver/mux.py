"""Mux: the input's video stream copied bit for bit, the new soundtrack added (and optionally the original audio)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg

from ..errors import MediaToolError
from ..io import atomic_output, require_tool

# Audio codec per container: AAC where players expect it, lossless where the container allows.
_AUDIO_CODECS = {".mp4": "aac", ".m4v": "aac", ".mov": "pcm_s24le", ".mkv": "flac", ".webm": "libopus"}


def audio_codec_for(path: str | Path) -> str:
    return _AUDIO_CODECS.get(Path(path).suffix.lower(), "aac")


def mux(
    video: str | Path,
    soundtrack_wav: str | Path,
    output: str | Path,
    *,
    keep_original_audio: bool = False,
    video_start: float = 0.0,
    audio_title: str = "dubkit soundtrack",
) -> Path:
    """Write ``output`` = video stream of ``video`` (stream copy) + ``soundtrack_wav`` as the first audio track.

    With ``keep_original_audio`` the input's first audio stream follows as a second track, also stream-copied.
    ``video_start`` (the video stream's start time) offsets the soundtrack so sample 0 plays with frame 0.
    Written under a temporary name and renamed when ffmpeg has finished.
    """
    require_tool("ffmpeg")
    out = Path(output)
    codec = audio_codec_for(out)
    src = ffmpeg.input(str(video))
    snd = ffmpeg.input(str(soundtrack_wav), itsoffset=video_start) if video_start else ffmpeg.input(str(soundtrack_wav))
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
    if out.suffix.lower() in (".mp4", ".m4v", ".mov"):
        opts["movflags"] = "+faststart"
    with atomic_output(out) as tmp:
        cmd = ffmpeg.output(*streams, str(tmp), **opts).overwrite_output().global_args("-nostdin", "-v", "error")
        proc = subprocess.run(cmd.compile(), capture_output=True)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise MediaToolError(f"ffmpeg could not mux {out.name}: {err[-1] if err else 'unknown error'}")
    return out
