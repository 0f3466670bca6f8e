"""A scan's decoding started ahead of the scan: probe the video and set ffmpeg decoding it while the caller
gets ready. Light to import (no analysis, no scipy): the command line starts it before loading the rest of dubkit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InputError
from .decode import Decoder
from .probe import probe
from .types import MediaInfo


KEYFRAME_WIDTH = 320  # pixels: the scan's keyframes unless the captioner asks for more
ANALYSIS_WIDTH = 256  # pixels: the frames the cut detector and the features see


def _even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


@dataclass(frozen=True)
class ScanSizes:
    """Decode size (keyframes, display orientation) and analysis size."""

    out_w: int
    out_h: int
    aw: int
    ah: int


def scan_sizes(path: str, info: MediaInfo, keyframe_width: int, analysis_width: int) -> ScanSizes:
    """What the decoder hands over (the keyframes' width, never wider than the picture) and the analysis size."""
    quarter = (info.rotation // 90) % 4  # clockwise quarter turns for display (ffmpeg applies them)
    dw, dh = (info.height, info.width) if quarter % 2 else (info.width, info.height)
    if dw <= 0 or dh <= 0:
        raise InputError(f"{path}: the video stream reports no picture size — re-export it")
    out_w = min(dw, max(keyframe_width, analysis_width))
    out_h = _even(out_w * dh / dw)
    out_w = _even(out_w)
    aw = min(out_w, analysis_width)
    return ScanSizes(out_w, out_h, aw, _even(aw * dh / dw))


class EarlyStart:
    """A scan's decoding begun before the scan itself (``start_scan``): ffmpeg decodes and its frames are read
    ahead while the caller gets ready — a command line loading the rest of dubkit, a pipeline its models (about
    a second on a 2-core machine, otherwise spent with a core idle). ``scan_video(..., early=)`` takes it over
    when it decodes the same file at the same size, else closes it; ``close()`` (or leaving a ``with`` block)
    drops it unused."""

    READ_AHEAD_BYTES = 96 << 20  # what it may read ahead: 0.9 s of 720p decoding at 448x252

    def __init__(self, path: str | os.PathLike, info: MediaInfo, sizes: ScanSizes) -> None:
        self.path, self.info, self.sizes = os.fspath(path), info, sizes
        depth = max(1, self.READ_AHEAD_BYTES // (sizes.out_w * sizes.out_h * 3 // 2))
        self.decoder: Decoder | None = Decoder(self.path, info, sizes.out_w, sizes.out_h, depth=depth)

    def take(self, path: str, sizes: ScanSizes) -> Decoder | None:
        """The decoder, for a scan of ``path`` at ``sizes`` (then no longer this object's), else None (closed)."""
        decoder, self.decoder = self.decoder, None
        if decoder is not None and (os.path.realpath(path) != os.path.realpath(self.path) or sizes != self.sizes):
            decoder.close()
            return None
        return decoder

    def close(self) -> None:
        if self.decoder is not None:
            self.decoder.close()
            self.decoder = None

    def __enter__(self) -> EarlyStart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_scan(path: str | os.PathLike, *, keyframe_width: int = KEYFRAME_WIDTH,
               analysis_width: int = ANALYSIS_WIDTH) -> EarlyStart:
    """Probe ``path`` and start decoding it for ``scan_video`` with these widths (see ``EarlyStart``)."""
    info = probe(path)
    return EarlyStart(path, info, scan_sizes(os.fspath(path), info, keyframe_width, analysis_width))
