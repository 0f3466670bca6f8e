"""One decoding pass over a video that yields shots, per-frame features and keyframes together.

Decoding is the expensive part of video understanding, so it happens once: ffmpeg decodes at a reduced size
(the decoder scales, we never hold a full-resolution frame; ``decode.py``), and each frame is handed to
(a) the cut detector (PySceneDetect's ContentDetector plus a flash check, ``shots.py``),
(b) the feature accumulator (brightness, colour, camera motion, and what moved in the scene; ``features.py``),
(c) the keyframe reservoir of the current shot (``keyframes.py``).
Frame times are the frames' presentation timestamps, seconds after the first shown frame (``decode.py``), so
variable frame rates, edit lists and broadcast clocks all give true times.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from .decode import Decoder, decode_frames
from .early import ANALYSIS_WIDTH, KEYFRAME_WIDTH, EarlyStart, ScanSizes, scan_sizes
from .features import FeatureAccumulator
from .keyframes import KeyframeCollector
from .probe import probe
from .shots import CutDetector
from .types import FrameFeatures, MediaInfo, Shot, ShotFrames, VideoScan


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


def scan_video(
    path: str | os.PathLike,
    info: MediaInfo | None = None,
    *,
    threshold: float = 27.0,
    min_shot_frames: int = 8,
    keyframes_per_shot: int = 3,
    analysis_width: int = ANALYSIS_WIDTH,
    keyframe_width: int = KEYFRAME_WIDTH,
    progress: Callable[[str], None] | None = None,
    on_shot: Callable[[Shot, ShotFrames], None] | None = None,
    early: EarlyStart | None = None,
) -> VideoScan:
    """Decode ``path`` once and return its shots (``[start, end)``, tiling 0 → the video's duration), per-frame
    features and ``keyframes_per_shot`` RGB keyframes per shot (``keyframe_width`` wide, display orientation).

    ``threshold``/``min_shot_frames`` are PySceneDetect's ContentDetector settings; ``progress`` receives short
    status lines (about every 10 %); ``on_shot`` receives each shot as soon as it is known — while the decoding
    goes on, so a captioner can describe it meanwhile — built as the returned scan has it (check
    ``start_frame``/``end_frame`` against the scan's own shots: they agree unless a cut was confirmed late).
    ``early``: this scan's decoding, started beforehand (``start_scan``).
    """
    path = os.fspath(path)
    info = info or probe(path)
    size = scan_sizes(path, info, keyframe_width, analysis_width)
    started = early.take(path, size) if early is not None else None
    fps = info.fps or (info.frame_count / info.duration if info.duration else 24.0)
    cuts = CutDetector(fps, threshold=threshold, min_shot_frames=min_shot_frames)
    features = FeatureAccumulator()
    stamps: list[float] = []
    hand_off = _ShotHandOff(on_shot, info, stamps, features) if on_shot is not None else None
    keys = KeyframeCollector(keyframes_per_shot, delay=cuts.lag, on_close=hand_off)
    damage: list[str] = []
    try:
        with _opencv_single_threaded():
            times = _decode_pass(path, info, size, progress, cuts, features, keys, damage, stamps, started)
    finally:
        if started is not None:  # (a decoding begun early is closed even if the pass never reached it)
            started.close()
    cut_frames = cuts.finish()
    scan = _assemble_scan(info, times, cut_frames, keys.finish(set(cut_frames)), features.result())
    scan.warnings.extend(damage)
    return scan


class _ShotHandOff:
    """Called by the keyframe collector as a shot closes: that shot, built from what is decoded so far."""

    def __init__(self, on_shot: Callable[[Shot, ShotFrames], None], info: MediaInfo, stamps: list[float],
                 features: FeatureAccumulator) -> None:
        self.on_shot, self.info, self.stamps, self.features = on_shot, info, stamps, features
        self.handed: list[Shot] = []

    def __call__(self, picks: list, next_start: int | None) -> None:
        start = self.handed[-1].end_frame if self.handed else 0
        end = len(self.stamps) if next_start is None else next_start
        shot, frames = _shot(len(self.handed), start, end, self.stamps, self.info, picks,
                             self.features.result(start, end))  # fmt: skip
        self.handed.append(shot)
        self.on_shot(shot, frames)


def _decode_pass(path: str, info: MediaInfo, size: ScanSizes, progress: Callable[[str], None] | None,
                 cuts: CutDetector, features: FeatureAccumulator, keys: KeyframeCollector,
                 damage: list[str] | None = None, stamps: list[float] | None = None,
                 started: Decoder | None = None) -> np.ndarray:
    """Hand every decoded frame to the cut detector, the feature accumulator and the keyframe reservoir; the
    frames' presentation times (also appended to ``stamps`` as they come)."""
    expected = max(1, info.frame_count)
    stamps = [] if stamps is None else stamps
    next_report = 0.1
    for i, (t, frame) in enumerate(decode_frames(path, info, size.out_w, size.out_h, damage, started)):
        # Bilinear: the step down from keyframe to analysis size is small, and INTER_AREA costs 5x more.
        small = frame if size.aw == size.out_w else cv2.resize(frame, (size.aw, size.ah), interpolation=cv2.INTER_LINEAR)
        cuts.push(i, small)
        features.push(t, small)
        stamps.append(t)  # before the keyframes: a shot they close may end on this frame
        keys.push(i, t, frame, cuts.cut_set)  # the decoder's frames are arrays of their own
        if progress is not None and (i + 1) / expected >= next_report:
            progress(f"scanning frames {i + 1}/{expected} ({min(100, 100 * (i + 1) // expected)}%)")
            next_report += 0.1
    return np.asarray(stamps, dtype=np.float64)


def _assemble_scan(info: MediaInfo, times: np.ndarray, cut_frames: list[int], picks: list, feats: FrameFeatures) -> VideoScan:
    """Shots from the cut frames (the last one ends with the video), each with its keyframes."""
    n = len(times)
    starts = [0, *cut_frames]
    ends = [*cut_frames, n]
    shots: list[Shot] = []
    frames: list[ShotFrames] = []
    for k, (s, e) in enumerate(zip(starts, ends)):
        shot, seen = _shot(k, s, e, times, info, picks[k] if k < len(picks) else [], feats.slice(s, e))
        shots.append(shot)
        frames.append(seen)
    return VideoScan(info=info, shots=shots, features=feats, frames=frames)


def _shot(k: int, s: int, e: int, times, info: MediaInfo, chosen: list, features: FrameFeatures) -> tuple[Shot, ShotFrames]:
    """Shot ``k`` of frames ``s``..``e`` (exclusive; ``e`` = all the frames: the last shot, which ends with the
    video) and what its captioner sees."""
    n = len(times)
    t0 = 0.0 if k == 0 else float(times[s])
    t1 = float(times[e]) if e < n else max(float(info.duration), float(times[-1]))
    return (Shot(index=k, start=t0, end=t1, start_frame=s, end_frame=e),
            ShotFrames(keyframes=[im for _, _, im in chosen], keyframe_times=[t for _, t, _ in chosen], features=features))
