"""One sequential decode of a video's frames, small and in display orientation, each with its presentation time.

Why ffmpeg itself (piped raw frames) and not a frame-index reader: whatever ffmpeg can decode, this reads — VP9 from
a real-time encoder, AV1, MPEG-2 — and it shows exactly what a player shows: edit lists are honoured (the hidden
pre-roll of a file cut with ``-ss … -c copy`` is never a frame), the display rotation is applied, and frames come
in presentation order. The decoder scales down (no full-size frame reaches Python) and runs in its own process,
so decoding overlaps the analysis. It hands over 8-bit 4:2:0 YCbCr in limited range with BT.601's matrix
(converted to it from the stream's own where they differ, on the small frames) and OpenCV turns that into RGB:
swscale's own RGB output costs the decoder 1.1 s more CPU per minute of 720p than the whole conversion here, and
the two agree within 2 levels on average (4 at the 99th percentile).

Each frame's time is its own presentation timestamp, read from ffmpeg's ``showinfo`` report of the frame as it
leaves the decoder (``-copyts``: the container's clock, untouched), minus the first shown frame's time from the
probe — so 0.0 is the first frame of the picture whatever the container's clock says (1.4 s for MPEG-TS,
26001 s for a broadcast recording), and variable frame rates keep their true times.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from fractions import Fraction

import cv2
import numpy as np

from ..errors import InputError
from ..io import require_tool, tool_path
from .types import MediaInfo

_CONFIG = re.compile(r"config in time_base: (\d+)/(\d+)")
_FRAME = re.compile(r"\bn:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)")


class _Log(threading.Thread):
    """Reads ffmpeg's stderr as it comes: frame timestamps into ``pts``, everything else kept for error messages."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        # Through a buffer: the pipes are unbuffered (the frames are read whole, into their own buffers), and a
        # line from a raw pipe is read a byte at a time (a minute of 720p: 536k system calls, 0.2 s of CPU).
        self.stream = stream if isinstance(stream, io.BufferedIOBase) else io.BufferedReader(stream)
        self.time_base: Fraction | None = None
        self.pts: list[int | None] = []
        self.other: deque[str] = deque(maxlen=20)
        self.errors = 0  # decoder errors (damaged packets ffmpeg concealed) and the frame they came before
        self.first_error_frame: int | None = None
        self.first_error = ""
        self.ready = threading.Condition()
        self.done = False

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode("utf-8", "replace").rstrip()
            m = _FRAME.search(line) if "showinfo" in line.lower() else None
            with self.ready:
                if m:
                    self.pts.append(None if m.group(2) == "NOPTS" else int(m.group(2)))
                    self.ready.notify_all()
                elif "showinfo" in line.lower() and (c := _CONFIG.search(line)):
                    self.time_base = Fraction(int(c.group(1)), int(c.group(2)))
                elif line.strip():
                    self.other.append(line)
                    if line.startswith("[error]"):
                        self.errors += 1
                        if self.first_error_frame is None:
                            self.first_error_frame = len(self.pts)
                            self.first_error = re.sub(r"^\[\w+\]\s*(\[[^]]*\]\s*)?", "", line)[:100]
        with self.ready:
            self.done = True
            self.ready.notify_all()

    def wait_for(self, i: int) -> int | None:
        """Timestamp (ticks) of frame ``i``; ffmpeg logs a frame before it writes it, so this rarely waits."""
        with self.ready:
            self.ready.wait_for(lambda: len(self.pts) > i or self.done, timeout=60)
            return self.pts[i] if len(self.pts) > i else None

    def reason(self) -> str:
        if self.first_error:  # the decoder's own complaint, not ffmpeg's closing "Conversion failed!"
            return self.first_error
        errors = [ln for ln in self.other if ln.startswith("[error]") or ln.startswith("[fatal]")] or list(self.other)
        text = errors[-1] if errors else "ffmpeg failed"
        return re.sub(r"^\[\w+\]\s*", "", text)[:160]


def decode_frames(path: str | os.PathLike, info: MediaInfo, width: int, height: int,
                  damage: list[str] | None = None, started: Decoder | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time, rgb)`` for every shown frame of the video stream, in presentation order: ``time`` in seconds
    after the first shown frame, ``rgb`` (height, width, 3) uint8, display orientation, scaled by the decoder;
    each frame is an array of its own (keep it without copying). ``width`` and ``height`` must be even.
    ``started``: this very decoding, begun earlier by ``Decoder`` (its frames read ahead meanwhile).

    Raises ``InputError`` when ffmpeg cannot decode the stream (with ffmpeg's own reason). A stream damaged in
    places still decodes (ffmpeg conceals the broken frames); ``damage`` then receives one line saying where.
    """
    decoder = started or Decoder(path, info, width, height)
    decoder.frames.depth = _ReadAhead.DEPTH  # what an early start read ahead is used up first, then no more
    yield from decoder.decoded(damage)


class Decoder:
    """ffmpeg decoding ``path`` at ``width``x``height`` (see ``decode_frames``), started at once; its frames are
    read ahead, up to ``depth`` of them, until ``decoded`` hands them out. Dropped unconsumed: ``close()``."""

    def __init__(self, path: str | os.PathLike, info: MediaInfo, width: int, height: int,
                 depth: int | None = None) -> None:
        ffmpeg = require_tool("ffmpeg")
        self.path, self.info, self.width, self.height = os.fspath(path), info, width, height
        stream = next((s for s in info.streams if s.get("codec_type") == "video"
                       and not (s.get("disposition") or {}).get("attached_pic")), None)  # fmt: skip
        select = f"0:{stream['index']}" if stream and stream.get("index") is not None else "0:v:0"
        cmd = [
            ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
            "-threads", str(decoder_threads(info.width * info.height)), "-copyts", "-i", tool_path(self.path),
            "-map", select, "-an", "-sn", "-dn", "-vf", _filters(width, height, (stream or {}).get("color_space")),
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     bufsize=0)
        size = width * height * 3 // 2  # 4:2:0: a full-size luma plane and two quarter-size chroma planes
        _widen_pipe(self.proc.stdout, size)
        self.log = _Log(self.proc.stderr)
        self.log.start()
        self.frames = _ReadAhead(self.proc.stdout, size, depth or _ReadAhead.DEPTH)
        self.frames.start()

    def decoded(self, damage: list[str] | None = None) -> Iterator[tuple[float, np.ndarray]]:
        """The frames with their times, as ``decode_frames`` yields them; the decoder is closed at the end."""
        zero = self.info.first_frame_time
        step = 1.0 / self.info.fps if self.info.fps > 0 else 1 / 24
        last: float | None = None
        i = 0
        log, width, height = self.log, self.width, self.height
        try:
            while (buf := self.frames.next()) is not None:
                ticks = log.wait_for(i)
                if ticks is not None and log.time_base is not None:
                    t = round(float(ticks * log.time_base) - zero, 6)
                else:  # a frame without a timestamp (raw streams): one frame after the last
                    t = 0.0 if last is None else last + step
                last = t
                yield t, cv2.cvtColor(np.frombuffer(buf, np.uint8).reshape(height * 3 // 2, width), cv2.COLOR_YUV2RGB_I420)
                i += 1
        finally:
            self.close()
        code = self.proc.returncode
        if i == 0 or (code not in (0, None) and code > 0):
            raise InputError(f"{self.path}: the video cannot be decoded ({log.reason()}) — re-export it")
        if log.errors and damage is not None:
            at = (log.first_error_frame or 0) * step
            damage.append(f"{self.path}: the video stream is damaged near {int(at // 60)}:{at % 60:04.1f} ({log.errors} "
                          f"decoder errors, the first: {log.first_error}); the shots there were seen through ffmpeg's concealment — "
                          "re-export the video for a clean analysis")

    def close(self) -> None:
        """Stop ffmpeg (if still decoding) and its readers; safe to call again."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.frames.stop()
        self.proc.wait()
        self.log.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


# The stream's YCbCr matrix (ffprobe's name) -> the colormatrix filter's, for streams not already in BT.601's
# (unknown ones are shown as BT.601 by players and by swscale).
_TO_BT601 = {"bt709": "bt709", "bt2020nc": "bt2020", "bt2020c": "bt2020", "smpte240m": "smpte240m", "fcc": "fcc"}


def _filters(width: int, height: int, color_space: str | None) -> str:
    """Scale (area averaging: the right filter for a step down of 3x and more, and cheaper than bilinear), in
    limited range and 8-bit 4:2:0 whatever the source's; then BT.601's matrix; then ``showinfo`` for the times."""
    chain = f"scale={width}:{height}:flags=area:out_range=tv,format=yuv420p"
    if color_space in _TO_BT601:
        chain += f",colormatrix={_TO_BT601[color_space]}:bt601"
    return chain + ",showinfo"


def _widen_pipe(stream, frame_bytes: int) -> None:
    """Let the pipe hold a whole frame or more (Linux: 64 KiB by default, up to ``pipe-max-size``): ffmpeg then
    writes a frame at once and the reader takes it in one read, instead of a dozen hand-overs each waiting for
    the interpreter's lock while the analysis holds it (measured: the scan waited on frames for a third of its
    time)."""
    try:
        import fcntl

        want = 1 << max(16, (4 * frame_bytes - 1).bit_length())
        with open("/proc/sys/fs/pipe-max-size") as f:
            want = min(want, int(f.read()))
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, want)
    except (ImportError, AttributeError, OSError, ValueError):
        pass  # not Linux, or not allowed: the default pipe works, only slower


def decoder_threads(source_pixels: int = 0) -> int:
    """Threads for ffmpeg's decoder. Up to 1080p, every core but one: the analysis of the frames needs a whole
    core beside the decoder, and on a 2-core machine a second decoder thread fights it for the CPU (0.5 s more
    CPU per minute of 720p on their hand-over). Above 1080p (``source_pixels`` a frame) decoding costs several
    times the analysis (4K: 4.5 s of CPU per 10 s against 0.9 s), so the decoder takes every core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 2
    return cores if source_pixels > _LARGE else max(1, cores - 1)


_LARGE = 1920 * 1080 * 3 // 2  # pixels a frame above which decoding, not the analysis, bounds the scan


class _ReadAhead(threading.Thread):
    """Reads whole frames from ffmpeg's pipe into a short queue: the pipe holds a few frames at most (often less
    than one where it cannot be widened), so without it ffmpeg would wait for every read and decode in lock-step
    with the analysis instead of beside it (measured on a 60 s 720p clip: the scan waited 5.6 s of its 12.5 s on
    the pipe). ``depth``, the most frames it holds, may be lowered while it reads: it then reads on once the
    consumer has taken the queue under the new depth."""

    DEPTH = 32  # frames read ahead (5.4 MB of 4:2:0 at 448x252)

    def __init__(self, stream, size: int, depth: int = DEPTH) -> None:
        super().__init__(daemon=True, name="decode-read-ahead")
        self.stream, self.size, self.depth = stream, size, depth
        self.queue: deque[bytearray | None] = deque()
        self.changed = threading.Condition()
        self.halt = False

    def run(self) -> None:
        try:
            while not self.halt:
                buf = _read_exactly(self.stream, self.size)
                self._put(buf)
                if buf is None:
                    return
        except (OSError, ValueError):  # the pipe closed under us: the consumer has stopped
            self._put(None)

    def _put(self, item: bytearray | None) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.halt or len(self.queue) < self.depth)
            self.queue.append(item)
            self.changed.notify_all()

    def next(self) -> bytearray | None:
        with self.changed:
            self.changed.wait_for(lambda: self.queue)
            item = self.queue.popleft()
            self.changed.notify_all()
            return item

    def stop(self) -> None:
        with self.changed:
            self.halt = True
            self.changed.notify_all()
        self.join(timeout=5)


def _read_exactly(stream, size: int) -> bytearray | None:
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            return None
        got += n
    return buf
