"""One decoding pass over a video that yields shots, per-frame features and keyframes together.

Decoding is the expensive part of video understanding, so it happens once: decord decodes at a reduced size
(the decoder scales, we never hold a full-resolution frame), in small batches, and each frame is handed to
(a) the cut detector (PySceneDetect's ContentDetector plus a flash check, ``shots.py``),
(b) the feature accumulator (brightness, motion, where the motion is, colour), and
(c) the keyframe reservoir of the current shot (``keyframes.py``).
Frame times come from decord's per-frame timestamps, so variable-frame-rate files get true times.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from .keyframes import KeyframeCollector
from .probe import probe
from .shots import CutDetector
from .types import FrameFeatures, MediaInfo, Shot, ShotFrames, VideoScan

CHANGED = 0.08  # a pixel whose luma moved by more than this (0..1) counts as "changed" for the motion centroid


_cv_lock = threading.Lock()
_cv_users = [0, 0]  # scans running, OpenCV's thread count before the first of them


@contextlib.contextmanager
def _opencv_single_threaded() -> Iterator[None]:
    """OpenCV's thread pool on frames this small costs more than it gains, and its threads' allocations made the
    scan's memory grow with the video's length (60 min at 160x90: 1.16 GB with it, 0.32 GB without, and faster).
    The setting is process-wide: the first of concurrent scans sets it, the last one puts it back."""
    with _cv_lock:
        if _cv_users[0] == 0:
            _cv_users[1] = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv_users[0] += 1
    try:
        yield
    finally:
        with _cv_lock:
            _cv_users[0] -= 1
            if _cv_users[0] == 0:
                cv2.setNumThreads(_cv_users[1])


def _even(v: float) -> int:
    return max(2, int(round(v / 2)) * 2)


class FeatureAccumulator:
    """Per-frame brightness, motion, motion centroid and mean colour, computed on the small analysis frame."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float, float, float, float, float]] = []
        self._prev: np.ndarray | None = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def push(self, time: float, rgb: np.ndarray) -> None:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1 / 255)
        r, g, b = cv2.mean(rgb)[:3]
        motion, cx, cy = 0.0, np.nan, np.nan
        if self._prev is not None:
            diff = cv2.absdiff(gray, self._prev)
            motion = float(diff.mean())
            _, weights = cv2.threshold(diff, CHANGED, 0.0, cv2.THRESH_TOZERO)  # only clearly changed pixels
            total = float(weights.sum())
            if total > 4 * CHANGED:  # a few pixels at least
                if self._grid is None:
                    h, w = gray.shape
                    self._grid = ((np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h)
                xs, ys = self._grid
                cx = float(weights.sum(axis=0) @ xs) / total
                cy = float(weights.sum(axis=1) @ ys) / total
        self._prev = gray
        self.rows.append((time, float(gray.mean()), motion, cx, cy, r / 255, g / 255, b / 255))

    def result(self) -> FrameFeatures:
        a = np.array(self.rows, dtype=np.float64).reshape(-1, 8)
        return FrameFeatures(times=a[:, 0], brightness=a[:, 1], motion=a[:, 2], centroid=a[:, 3:5], color=a[:, 5:8])


def _open_reader(path: str, width: int, height: int):
    import decord

    decord.logging.set_level(decord.logging.QUIET)  # libav's per-packet complaints: the error below says it once
    try:
        return decord.VideoReader(os.path.abspath(path), ctx=decord.cpu(0), width=width, height=height)
    except (decord.DECORDError, RuntimeError) as e:
        raise InputError(f"{path}: the video cannot be decoded ({str(e).splitlines()[0][:120]}) — re-export it") from e


@dataclass(frozen=True)
class _Sizes:
    """Decode size (keyframes, display orientation), analysis size, and the display's quarter turns."""

    out_w: int
    out_h: int
    aw: int
    ah: int
    quarter: int


def _sizes(path: str, info: MediaInfo, keyframe_width: int, analysis_width: int) -> _Sizes:
    quarter = (info.rotation // 90) % 4  # clockwise quarter turns for display
    dw, dh = (info.height, info.width) if quarter % 2 else (info.width, info.height)
    if dw <= 0 or dh <= 0:
        raise InputError(f"{path}: the video stream reports no picture size — re-export it")
    out_w = min(dw, max(keyframe_width, analysis_width))
    out_h = _even(out_w * dh / dw)
    out_w = _even(out_w)
    aw = min(out_w, analysis_width)
    return _Sizes(out_w, out_h, aw, _even(aw * dh / dw), quarter)


def scan_video(
    path: str | os.PathLike,
    info: MediaInfo | None = None,
    *,
    threshold: float = 27.0,
    min_shot_frames: int = 8,
    keyframes_per_shot: int = 3,
    analysis_width: int = 256,
    keyframe_width: int = 320,
    batch_size: int = 32,
    progress: Callable[[str], None] | None = None,
) -> VideoScan:
    """Decode ``path`` once and return its shots (``[start, end)``, tiling 0 → container duration), per-frame
    features and ``keyframes_per_shot`` RGB keyframes per shot (``keyframe_width`` wide, display orientation).

    ``threshold``/``min_shot_frames`` are PySceneDetect's ContentDetector settings; ``progress`` receives short
    status lines (about every 10 %).
    """
    path = os.fspath(path)
    info = info or probe(path)
    size = _sizes(path, info, keyframe_width, analysis_width)
    # decord (0.6) applies the display rotation itself and takes the size in display orientation; should a build
    # hand back coded-orientation frames instead, they are turned here (checked on the first batch).
    reader = _open_reader(path, size.out_w, size.out_h)
    n = len(reader)
    if n == 0:
        raise InputError(f"{path}: no video frames could be decoded — the file is broken; re-export it")
    # decord reports float32 seconds; round away the float32 noise (1 µs is far below a frame).
    times = np.round(np.asarray(reader.get_frame_timestamp(np.arange(n))[:, 0], dtype=np.float64), 6)
    fps = info.fps or (n / info.duration if info.duration else 24.0)
    cuts = CutDetector(fps, threshold=threshold, min_shot_frames=min_shot_frames)
    features = FeatureAccumulator()
    keys = KeyframeCollector(keyframes_per_shot, delay=cuts.lag)
    with _opencv_single_threaded():
        _decode_pass(reader, times, size, batch_size, progress, cuts, features, keys, path)
    cut_frames = cuts.finish()
    return _assemble_scan(info, times, cut_frames, keys.finish(set(cut_frames)), features.result())


def _decode_pass(reader, times: np.ndarray, size: _Sizes, batch_size: int, progress: Callable[[str], None] | None,
                 cuts: CutDetector, features: FeatureAccumulator, keys: KeyframeCollector, path: str) -> None:
    """Hand every decoded frame to the cut detector, the feature accumulator and the keyframe reservoir."""
    n = len(times)
    next_report = 0.1
    for lo in range(0, n, batch_size):
        batch = _batch(reader, lo, min(n, lo + batch_size), times, path)
        turn = size.quarter if size.quarter % 2 and batch.shape[1:3] == (size.out_w, size.out_h) else 0
        for j, frame in enumerate(batch):
            i = lo + j
            if turn:
                frame = np.ascontiguousarray(np.rot90(frame, k=-turn))
            # Bilinear: the step down from keyframe to analysis size is small, and INTER_AREA costs 5x more.
            small = frame if size.aw == size.out_w else cv2.resize(frame, (size.aw, size.ah), interpolation=cv2.INTER_LINEAR)
            cuts.push(i, small)
            features.push(float(times[i]), small)
            keys.push(i, float(times[i]), frame.copy(), cuts.cut_set)
        del batch
        if progress is not None and (lo + batch_size) / n >= next_report:
            done = min(n, lo + batch_size)
            progress(f"scanning frames {done}/{n} ({100 * done // n}%)")
            next_report += 0.1


def _batch(reader, lo: int, hi: int, times: np.ndarray, path: str) -> np.ndarray:
    """Frames ``lo..hi-1``, or an ``InputError`` saying where the stream is damaged (not decord's C++ trace)."""
    import decord

    try:
        return reader.get_batch(list(range(lo, hi))).asnumpy()
    except (decord.DECORDError, RuntimeError) as e:
        raise InputError(f"{path}: the video stream is damaged near {_clock(float(times[lo]))} (frame {lo}: "
                         f"{_decoder_said(str(e))}) — re-export it, or keep what is readable with "
                         "`ffmpeg -err_detect ignore_err -i IN -c copy OUT`") from None


def _decoder_said(message: str) -> str:
    """decord's complaint without its source locations and check expressions: "Error sending packet"."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    said = first.split("Thread worker: ")[-1] if "Thread worker: " in first else re.sub(r"\[[^]]*\]\s*\S+:\d+:\s*", "", first)
    return said.strip().rstrip(".")[:120] or "the decoder failed"


def _clock(t: float) -> str:
    m, sec = divmod(max(t, 0.0), 60)
    return f"{int(m)}:{sec:04.1f}"


def _assemble_scan(info: MediaInfo, times: np.ndarray, cut_frames: list[int], picks: list, feats: FrameFeatures) -> VideoScan:
    """Shots from the cut frames (the last one ends at the container's duration), each with its keyframes."""
    n = len(times)
    starts = [0, *cut_frames]
    ends = [*cut_frames, n]
    shots: list[Shot] = []
    frames: list[ShotFrames] = []
    for k, (s, e) in enumerate(zip(starts, ends)):
        t0 = 0.0 if k == 0 else float(times[s])
        t1 = float(times[e]) if e < n else max(float(info.duration), float(times[-1]))
        shots.append(Shot(index=k, start=t0, end=t1, start_frame=s, end_frame=e))
        chosen = picks[k] if k < len(picks) else []
        frames.append(
            ShotFrames(keyframes=[im for _, _, im in chosen], keyframe_times=[t for _, t, _ in chosen], features=feats.slice(s, e))
        )
    return VideoScan(info=info, shots=shots, features=feats, frames=frames)
