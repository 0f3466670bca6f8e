"""Audio tracks that need not fit in memory: (channels, samples) float32 signals read and written in blocks.

An hour of 48 kHz stereo is 1.4 GB as float32, so a long soundtrack cannot be held as a handful of full-length
arrays. Assembly, mixing, loudness and stems therefore work through ``Track`` objects one block at a time: an
``ArrayTrack`` wraps an array (short audio, tests, the in-memory API), a ``FileTrack`` keeps its samples in a
scratch file of a ``TrackStore``, a ``SumTrack`` is the sum of others computed when read. Whatever the length,
a stage then holds a few blocks, not copies of the soundtrack.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

BLOCK = 1 << 18  # samples per block: 5.5 s at 48 kHz, 2 MB of stereo float32


@runtime_checkable
class Track(Protocol):
    """A (channels, samples) float32 signal. ``read`` gives zeros outside ``[0, samples)``."""

    channels: int
    samples: int

    def read(self, start: int, stop: int) -> np.ndarray: ...

    def write(self, start: int, block: np.ndarray) -> None: ...


def blocks(samples: int, size: int = BLOCK) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks covering ``[0, samples)``."""
    for start in range(0, samples, size):
        yield start, min(start + size, samples)


def _window(samples: int, start: int, stop: int) -> tuple[int, int]:
    return min(max(start, 0), samples), min(max(stop, 0), samples)


class ArrayTrack:
    """A track over an array (no copy): short audio and the in-memory API."""

    def __init__(self, audio: np.ndarray):
        a = np.asarray(audio, dtype=np.float32)
        self.audio = a[None, :] if a.ndim == 1 else a
        self.channels, self.samples = self.audio.shape

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.samples

    def read(self, start: int, stop: int) -> np.ndarray:
        lo, hi = _window(self.samples, start, stop)
        if lo == start and hi == stop:
            return self.audio[:, lo:hi]
        out = np.zeros((self.channels, max(stop - start, 0)), np.float32)
        out[:, lo - start : hi - start] = self.audio[:, lo:hi]
        return out

    def write(self, start: int, block: np.ndarray) -> None:
        lo, hi = _window(self.samples, start, start + block.shape[-1])
        self.audio[:, lo:hi] = block[:, lo - start : hi - start]


class FileTrack:
    """A track in a raw float32 file, one channel after the other, created full length and zeroed.

    Planar, not interleaved: a channel's samples are one run of bytes, so reads and writes go straight between
    the file and the rows of a (channels, m) array, with no transposing copy (which cost a 60 s dub 0.3 s of CPU
    in the assembly and the mastering). The space is reserved when it is made (``posix_fallocate``), so a full
    disk fails here, at once, with ``OSError(ENOSPC)`` and the number of bytes it needed, not half-way through a
    write.
    """

    def __init__(self, path: str | Path, channels: int, samples: int):
        self.path = Path(path)
        self.channels, self.samples = int(channels), int(samples)
        self.nbytes = 4 * self.channels * self.samples
        self._kept: dict[int, np.ndarray] = {}  # per thread: a reused buffer for reads that add
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if self.nbytes:
                _reserve(self._fd, self.nbytes, self.path)
        except BaseException:
            self.close()
            raise

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.samples

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((self.channels, max(stop - start, 0)), np.float32)
        self.read_into(out, start)
        return out

    def read_into(self, out: np.ndarray, start: int, add: bool = False) -> None:
        """``out`` (channels, m) = (or += when ``add``) samples ``[start, start + m)``: each channel is read
        straight into its row (when adding, into a buffer kept for this thread: a block's worth of fresh pages
        costs as much as reading it, here)."""
        stop = start + out.shape[-1]
        lo, hi = _window(self.samples, start, stop)
        if not add:
            out[:, : max(lo - start, 0)] = 0.0
            out[:, max(hi - start, 0) :] = 0.0
        if hi <= lo:
            return
        direct = not add and out.dtype == np.float32 and out.strides[-1] == 4
        rows = out[:, lo - start : hi - start] if direct else self._buffer(hi - lo)
        for c in range(self.channels):
            self._read_row(rows[c], c, lo)
        if not direct:
            if add:
                out[:, lo - start : hi - start] += rows
            else:
                out[:, lo - start : hi - start] = rows

    def _read_row(self, row: np.ndarray, channel: int, lo: int) -> None:
        view, offset, done = memoryview(row).cast("B"), 4 * (channel * self.samples + lo), 0
        while done < len(view):
            got = os.preadv(self._fd, [view[done:]], offset + done) if _PREADV else _pread_into(
                self._fd, view[done:], offset + done)
            if got <= 0:
                raise OSError(f"{self.path}: the scratch track ends early")
            done += got

    def _buffer(self, frames: int) -> np.ndarray:
        """A (channels, frames) float32 scratch array of this thread: up to two blocks' worth, kept and reused
        (a longer read gets a fresh one, so nothing of a track's length is ever kept)."""
        if frames > 2 * BLOCK:
            return np.empty((self.channels, frames), np.float32)
        key = threading.get_ident()
        buf = self._kept.get(key)
        if buf is None or buf.shape[1] < frames:
            buf = self._kept[key] = np.empty((self.channels, max(frames, BLOCK)), np.float32)
        return buf[:, :frames]

    def write(self, start: int, block: np.ndarray) -> None:
        lo, hi = _window(self.samples, start, start + block.shape[-1])
        if hi <= lo:
            return
        for c in range(self.channels):
            row = np.ascontiguousarray(block[c, lo - start : hi - start], dtype=np.float32)
            view, offset, done = memoryview(row).cast("B"), 4 * (c * self.samples + lo), 0
            while done < len(view):
                done += os.pwrite(self._fd, view[done:], offset + done)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._kept.clear()


_PREADV = hasattr(os, "preadv")


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


def _reserve(fd: int, nbytes: int, path: Path) -> None:
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        if e.errno not in (getattr(os, "EOPNOTSUPP", 95), 22):  # file systems without fallocate: sparse file
            err = OSError(e.errno, e.strerror, str(path))
            err.needed, err.folder = nbytes, str(path.parent.parent)  # type: ignore[attr-defined]
            raise err from None
        os.ftruncate(fd, nbytes)


def read_into(track: Track, out: np.ndarray, start: int, add: bool = False) -> None:
    """``out`` (channels, m) = (or += when ``add``) ``track``'s samples ``[start, start + m)``: straight from its
    file when it has one (``FileTrack.read_into``: no fresh block), else through its ``read``."""
    into = getattr(track, "read_into", None)
    if into is not None:
        into(out, start, add=add)
    elif add:
        out += track.read(start, start + out.shape[-1])
    else:
        out[...] = track.read(start, start + out.shape[-1])


class SumTrack:
    """The sum of tracks of one shape, computed block by block when read (a soundtrack is the sum of its stems)."""

    def __init__(self, parts: Sequence[Track], channels: int, samples: int):
        self.parts = list(parts)
        self.channels, self.samples = int(channels), int(samples)

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.samples

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((self.channels, max(stop - start, 0)), np.float32) if not self.parts else \
            np.empty((self.channels, max(stop - start, 0)), np.float32)
        for i, part in enumerate(self.parts):  # the first part is copied, not added to zeros: the same sums
            read_into(part, out, start, add=i > 0)
        return out

    def write(self, start: int, block: np.ndarray) -> None:
        raise TypeError("a SumTrack is computed from its parts; write to one of them")


class TrackStore:
    """Makes the tracks of one job: in memory (``folder=None``) or as files in a hidden scratch folder that
    ``close`` removes (also on errors and signals: use it as a context manager)."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = None if folder is None else Path(tempfile.mkdtemp(prefix=".dubkit-scratch.", dir=folder))
        self._files: list[FileTrack] = []

    def new(self, name: str, channels: int, samples: int) -> Track:
        """A zeroed track; ``name`` labels its file."""
        if self.folder is None:
            return ArrayTrack(np.zeros((channels, samples), np.float32))
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "track"
        track = FileTrack(self.folder / f"{len(self._files):02d}-{safe}.f32", channels, samples)
        self._files.append(track)
        return track

    def close(self) -> None:
        for track in self._files:
            track.close()
        self._files.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "TrackStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_track(audio: np.ndarray | Track) -> Track:
    """``audio`` as a track: tracks pass through, arrays are wrapped without a copy."""
    return ArrayTrack(audio) if isinstance(audio, np.ndarray) or not hasattr(audio, "read") else audio


def to_array(track: np.ndarray | Track) -> np.ndarray:
    """The whole track as one array (for short audio; an ``ArrayTrack`` gives its array without a copy)."""
    if isinstance(track, np.ndarray):
        return track
    if isinstance(track, ArrayTrack):
        return track.audio
    return track.read(0, track.samples)


def track_samples(audio: np.ndarray | Track) -> int:
    return int(audio.shape[-1]) if isinstance(audio, np.ndarray) else int(audio.samples)


def resample_track(src: Track, dst: Track, rate_in: int, rate_out: int, size: int = BLOCK) -> Track:
    """``dst`` = ``src`` resampled from ``rate_in`` to ``rate_out`` (polyphase, as ``audio.resample``), block by
    block: each block is filtered with enough of its neighbours that the joins are exactly those of one
    whole-signal ``resample_poly`` (which pads with zeros, as ``read`` does outside the track)."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate_in), int(rate_out))
    up, down = int(rate_out) // g, int(rate_in) // g
    step = -(-size // down) * down  # input blocks start on multiples of `down`: output samples line up exactly
    context = -(-(10 * max(up, down) // up + 4) // down) * down  # the filter's half-length, in input samples
    lead = context * up // down
    for start in range(0, src.samples, step):
        stop = min(start + step, src.samples)
        chunk = src.read(start - context, stop + context)
        out = resample_poly(chunk, up, down, axis=-1).astype(np.float32, copy=False)
        first = start * up // down
        dst.write(first, out[:, lead : lead + -(-(stop - start) * up // down)])
    return dst
