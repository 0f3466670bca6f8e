"""Mux: the input's video stream copied bit for bit, the new soundtrack added, everything else carried or named.

Timing is explicit, never left to ffmpeg's guesses: with ``-copyts`` the input keeps its own clock, shifted by
``-origin`` so its origin becomes the output's 0, and the soundtrack starts at ``video_start`` — the first frame's
offset — so sample 0 plays with frame 0 and the output keeps the input's start offset. (Left to itself, ffmpeg
re-bases an MPEG-TS input on the streams it maps and drops an MP4's empty edit, so a soundtrack offset measured
against the whole file lands 10 ms late, or a late-starting video loses its delay.)

The other streams — subtitles, attachments (fonts, cover art), every original audio track when the caller keeps
them, the timecode — go across by stream copy when the output container can hold them (text subtitles are
converted to the container's text format); whatever cannot go is named in one warning, and the written file is
checked for what was meant to arrive.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DubkitError, MediaToolError, OutputError
from ..io import ffprobe, require_tool, space_error, tool_path
from ..video.types import MediaInfo

# Audio codec per output container: AAC where players expect it, PCM/lossless where the container allows, what
# broadcast containers require (MXF: PCM; MPEG program streams: MP2).
_AUDIO_CODECS = {
    ".mp4": "aac", ".m4v": "aac", ".mov": "pcm_s24le", ".mkv": "flac", ".webm": "libopus",
    ".ts": "aac", ".m2ts": "aac", ".mts": "aac", ".mxf": "pcm_s24le", ".mpg": "mp2", ".mpeg": "mp2",
    ".avi": "pcm_s16le",
}
_WEBM_VIDEO = {"vp8", "vp9", "av1"}
_ISO = {".mp4", ".m4v", ".mov"}
_TS = {".ts", ".m2ts", ".mts"}
# Subtitle codecs each container holds as they are, and the text format text subtitles are converted to.
_SUBTITLES_COPY = {
    ".mp4": {"mov_text"}, ".m4v": {"mov_text"}, ".mov": {"mov_text"},
    ".mkv": {"subrip", "ass", "ssa", "webvtt", "dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"},
    ".webm": {"webvtt"}, ".ts": {"dvb_subtitle", "dvb_teletext"}, ".m2ts": {"dvb_subtitle", "hdmv_pgs_subtitle"},
    ".mts": {"dvb_subtitle", "hdmv_pgs_subtitle"},
}
_SUBTITLES_TEXT = {".mp4": "mov_text", ".m4v": "mov_text", ".mov": "mov_text", ".mkv": "subrip", ".webm": "webvtt"}
# Audio codecs each container holds as they are: a kept original track in any other codec is re-encoded.
_AUDIO_COPY = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "mp2"}, ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_s16be",
             "pcm_s24be"},
    ".ts": {"aac", "mp2", "mp3", "ac3", "eac3", "opus"}, ".m2ts": {"aac", "mp2", "mp3", "ac3", "eac3"},
    ".mts": {"aac", "mp2", "mp3", "ac3", "eac3"}, ".webm": {"opus", "vorbis"},
    ".mxf": {"pcm_s16le", "pcm_s24le"}, ".mpg": {"mp2", "mp3", "ac3"}, ".mpeg": {"mp2", "mp3", "ac3"},
    ".avi": {"pcm_s16le", "mp3", "mp2", "ac3"},
}  # (Matroska holds them all)
_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text", "microdvd", "subviewer", "sami",
                   "realtext", "stl", "jacosub", "mpl2", "pjs", "vplayer"}  # fmt: skip
# Containers whose muxer writes a timecode from the video stream's "timecode" tag (MOV/MP4: a tmcd track).
_TIMECODE = {".mp4", ".m4v", ".mov", ".mkv", ".mxf"}
_OPUS_PRE_SKIP = 312  # samples at 48 kHz: libopus's encoder delay (its "pre-skip") at the default frame size
_log = logging.getLogger("dubkit")


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


def _name(s: dict) -> str:
    """'subtitle #2 (subrip, eng)' — how a warning names a stream."""
    lang = (s.get("tags") or {}).get("language")
    what = "cover picture" if (s.get("disposition") or {}).get("attached_pic") else s.get("codec_type", "stream")
    detail = ", ".join(x for x in (s.get("codec_name") or s.get("codec_tag_string"), lang) if x and x != "und")
    return f"{what} #{s.get('index')}" + (f" ({detail})" if detail else "")


def _tag(stream: dict, key: str) -> str | None:
    """A stream's tag, whatever its case (Matroska writes TIMECODE, MOV timecode)."""
    return next((str(v) for k, v in (stream.get("tags") or {}).items() if k.lower() == key and v), None)


def _timecode(info: MediaInfo) -> str | None:
    return next((tc for s in info.streams if (tc := _tag(s, "timecode"))), None)


def plan_streams(info: MediaInfo, kind: str, *, keep_original_audio: bool) -> tuple[list[str], list[str], list[str]]:
    """ffmpeg arguments that carry the input's other streams into a ``kind`` (".mkv") file, after the video (output
    stream 0) and the soundtrack (1): (map/codec arguments, names of what is carried, names of what cannot be)."""
    args: list[str] = []
    carried: list[str] = []
    dropped: list[str] = []
    out = 2  # output stream index
    audio_out = 1
    video = next((s for s in info.streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)  # fmt: skip
    for s in info.streams:
        idx, kind_s, codec = s.get("index"), s.get("codec_type"), str(s.get("codec_name") or "")
        if s is video:
            continue
        cover = kind_s == "video" and (s.get("disposition") or {}).get("attached_pic")
        if kind_s == "audio":
            if not keep_original_audio:
                continue  # replaced by the soundtrack (the first track is mixed into it): the caller's choice
            if kind == ".mkv" or codec in _AUDIO_COPY.get(kind, set()):
                args += ["-map", f"1:{idx}", f"-c:{out}", "copy", f"-disposition:{out}", "0"]
            else:  # the container cannot hold it as it is: carried, re-encoded like the soundtrack
                args += ["-map", f"1:{idx}", f"-c:{out}", _AUDIO_CODECS[kind], f"-disposition:{out}", "0"]
            if not _tag(s, "title"):
                args += [f"-metadata:s:{out}", "title=original audio"]
            audio_out += 1
        elif kind_s == "subtitle":
            if codec in _SUBTITLES_COPY.get(kind, set()):
                args += ["-map", f"1:{idx}", f"-c:{out}", "copy"]
            elif codec in _TEXT_SUBTITLES and kind in _SUBTITLES_TEXT:
                target = "ass" if kind == ".mkv" and codec in ("ass", "ssa") else _SUBTITLES_TEXT[kind]
                args += ["-map", f"1:{idx}", f"-c:{out}", target]
            else:
                dropped.append(_name(s))
                continue
        elif kind_s == "attachment" or cover:
            if kind == ".mkv" or (cover and kind in _ISO):
                args += ["-map", f"1:{idx}", f"-c:{out}", "copy"]
            else:
                dropped.append(_name(s))
                continue
        elif kind_s == "data" and s.get("codec_tag_string") == "tmcd":
            continue  # the timecode travels as the video stream's tag (below); the muxer rebuilds its track
        else:
            dropped.append(_name(s))
            continue
        carried.append(_name(s))
        out += 1
    tc = _timecode(info)
    if tc:
        if kind in _TIMECODE:
            args += ["-metadata:s:v:0", f"timecode={tc}"]
            carried.append(f"timecode {tc}")
        else:
            dropped.append(f"timecode {tc}")
    return args, carried, dropped


def _command(video: str | Path, info: MediaInfo, soundtrack: list[str], kind: str, kept: bool, start: float,
             audio_title: str) -> tuple[list[str], list[str], list[str]]:
    """The ffmpeg command up to the output's name (``soundtrack``: its input arguments), and the streams it
    carries and drops."""
    extra, carried, dropped = plan_streams(info, kind, keep_original_audio=kept)
    cmd = [require_tool("ffmpeg"), *_timing_args(info, soundtrack, video, start, _AUDIO_CODECS[kind]),
           *_output_args(info, kind, extra, audio_title)]  # fmt: skip
    return cmd, carried, dropped


def _warn_lost(out: Path, kind: str, video: str | Path, lost: list[str], say: Callable[[str], None] | None) -> None:
    if lost:
        message = f"{out.name}: {kind} cannot carry {', '.join(lost)} from {Path(video).name}; dropped"
        (say or _log.warning)(f"warning: {message}" if say else message)


class MuxStream:
    """Writes ``output`` = the video stream of ``video`` (stream copy) + the soundtrack as the first audio track,
    its sample 0 on the first frame, the video at its original offset (``info.video_start``), fed while the
    soundtrack is still being mastered: ffmpeg reads it as raw float32 from a pipe and encodes it (AAC for MP4)
    beside the mastering, not after it — on a 60 s 720p dub that encode was a second of single-threaded tail.
    With ``keep_original_audio`` every audio track of the input follows, stream-copied; subtitles, attachments
    and the timecode follow where the container holds them, and ``say`` (default: the "dubkit" logger) gets one
    warning naming whatever could not be carried. Written straight to ``output`` (the caller holds the temporary
    name; ``container`` names the real extension). Blocks pass through a short queue to a writer thread, so the
    mastering waits on the encoder only when it runs far ahead.

    ``write(block)`` in order, (channels, n) float32; ``finish()`` once every sample is written (raises what
    ffmpeg reported; warns about streams the container could not carry); ``abort()`` on any failure."""

    DEPTH = 8  # blocks queued for the encoder

    def __init__(self, video: str | Path, output: str | Path, *, info: MediaInfo, sample_rate: int, channels: int = 2,
                 keep_original_audio: bool = False, audio_title: str = "dubkit soundtrack",
                 container: str | None = None, say: Callable[[str], None] | None = None) -> None:
        self.video, self.out, self.info, self.say = video, Path(output), info, say
        self.kind = (container or self.out.suffix).lower()
        self.kept = keep_original_audio and info.has_audio
        raw = ["-f", "f32le", "-ar", str(int(sample_rate)), "-ac", str(int(channels)), "-i", "pipe:0"]
        cmd, self.carried, self.dropped = _command(video, info, raw, self.kind, self.kept, info.video_start,
                                                   audio_title)  # fmt: skip
        self.proc = subprocess.Popen([*cmd, tool_path(self.out)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)  # fmt: skip
        self._stderr: list[bytes] = []
        self._queue: queue.Queue = queue.Queue(maxsize=self.DEPTH)
        self._threads = [threading.Thread(target=self._drain, daemon=True, name="mux-stderr"),
                         threading.Thread(target=self._feed, daemon=True, name="mux-feed")]
        for t in self._threads:
            t.start()

    def write(self, block: np.ndarray) -> None:
        """Queue (channels, n) samples; interleaved here, so the caller may reuse its buffer."""
        self._queue.put(np.ascontiguousarray(np.asarray(block, np.float32).T))

    def finish(self) -> None:
        self._queue.put(None)
        rc = self.proc.wait()
        for t in self._threads:
            t.join(timeout=10)
        _check_ffmpeg(rc, b"".join(self._stderr).decode(errors="replace"), self.kind, self.out)
        _warn_lost(self.out, self.kind, self.video, self.dropped + _missing(self.out, self.carried, self.kept, self.info),
                   self.say)  # fmt: skip

    def abort(self) -> None:
        """Stop ffmpeg (the partial file is the caller's to remove)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self._queue.put(None)
        self.proc.wait()
        for t in self._threads:
            t.join(timeout=10)

    def _feed(self) -> None:
        stdin, broken = self.proc.stdin, False
        while (block := self._queue.get()) is not None:
            if not broken:
                try:
                    stdin.write(memoryview(block).cast("B"))
                except OSError:  # ffmpeg stopped (its error is on stderr, raised by finish)
                    broken = True
        with contextlib.suppress(OSError):
            stdin.close()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)


def _timing_args(info: MediaInfo, soundtrack: list[str], video: str | Path, start: float, codec: str) -> list[str]:
    """The two inputs on one explicit clock: the video's origin at 0, the soundtrack (``soundtrack``: its input
    arguments, ending in ``-i``) from its first frame."""
    # ffmpeg 5's Matroska muxer stores an Opus stream's first (priming) packet at its own time and the reader then
    # subtracts the codec delay again: the soundtrack would play 6.5 ms early. Start it that much later.
    delay = _OPUS_PRE_SKIP / 48000 if codec == "libopus" else 0.0
    return [
        "-nostdin", "-v", "error", "-y", "-copyts",
        "-itsoffset", f"{start + delay:.6f}", *soundtrack,
        # 1 µs more than the origin (below any stream's tick, so no timestamp moves): ffmpeg 5 re-bases an MPEG-TS
        # input on its mapped streams' start when the offset equals minus the file's start exactly.
        "-itsoffset", f"{-info.origin - 1e-6:.6f}", "-i", tool_path(video),
    ]  # fmt: skip


def _output_args(info: MediaInfo, kind: str, extra: list[str], audio_title: str) -> list[str]:
    """Maps and codecs: the video copied, the soundtrack encoded for ``kind``, the other streams as planned."""
    codec = _AUDIO_CODECS[kind]
    video_index = next((s.get("index") for s in info.streams if s.get("codec_type") == "video"
                        and not (s.get("disposition") or {}).get("attached_pic")), None)  # fmt: skip
    args = [
        "-map", f"1:{video_index}" if video_index is not None else "1:v:0", "-map", "0:a:0", *extra,
        "-c:v:0", "copy", "-c:a:0", codec, "-metadata:s:a:0", f"title={audio_title}",
        "-metadata:s:a:0", f"handler_name={audio_title}", "-disposition:a:0", "default",  # (MP4 names it here)
        "-map_metadata", "1", "-map_chapters", "1",
    ]  # fmt: skip
    if codec == "aac":
        args += ["-b:a:0", "256k"]
    if kind in _ISO:
        # Edit lists in 1/48000 s: the soundtrack's start (after the encoder's priming) lands on its sample, not
        # on the nearest millisecond.
        args += ["-movflags", "+faststart", "-movie_timescale", "48000"]
    return args


def _missing(path: Path, carried: list[str], kept_audio: bool, info: MediaInfo) -> list[str]:
    """What was meant to be carried but is not in the written file (checked with ffprobe: names, not promises)."""
    if not carried:
        return []
    import ffmpeg as ffmpeg_python

    try:
        streams = ffmpeg_python.probe(tool_path(path)).get("streams") or []
    except ffmpeg_python.Error:
        return []
    have = {k: sum(s.get("codec_type") == k for s in streams) for k in ("subtitle", "attachment", "audio")}
    want = {k: sum(c.startswith(k) for c in carried) for k in ("subtitle", "attachment")}
    missing = [f"{want[k] - have[k]} {k} stream(s)" for k in want if have[k] < want[k]]
    if kept_audio:
        originals = sum(s.get("codec_type") == "audio" for s in info.streams)
        if have["audio"] < 1 + originals:
            missing.append(f"{1 + originals - have['audio']} original audio track(s)")
    tc = next((c for c in carried if c.startswith("timecode")), None)
    if tc and not any(_tag(s, "timecode") for s in streams):
        missing.append(tc)
    return missing


_NO_SPACE = ("No space left on device", "Disk quota exceeded")


def _check_ffmpeg(returncode: int, text: str, kind: str, out: Path) -> None:
    """ffmpeg's exit and stderr turned into one error a user can act on (none when it wrote the file)."""
    if any(s in text for s in _NO_SPACE):  # ffmpeg can exit 0 after a failed write (e.g. in the faststart pass)
        raise space_error(out.parent if str(out.parent) else Path("."), f"the dubbed video ({kind})")
    if returncode != 0:
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
    # The picture (from its start offset) must all be there; kept original tracks may run past it, up to the
    # input's own length.
    shortest = info.duration
    longest = max(info.video_start + info.duration, info.container_duration or 0.0)
    if not shortest - slack <= duration <= longest + slack:
        raise _rejected(name, f"it lasts {duration:.2f} s, the input's picture {info.duration:.2f} s")


def _rejected(name: Path, why: str) -> OutputError:
    return OutputError(f"{name}: the muxed file failed its check ({why}); nothing was written — if the disk is "
                       "full free some space, else report this with the input file")
