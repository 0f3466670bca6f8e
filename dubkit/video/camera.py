"""Global camera motion between two consecutive frames: pan, tilt, zoom, roll and shake, as one similarity transform.

Why: a camera move changes every pixel, so read raw it looks like objects rushing about — and a camera that stops
after a pan looks like something slamming to a halt. Once the camera's own motion is known, the previous frame is
warped onto the current one and only what moved *in the scene* is left.

How (OpenCV), on a half-size copy with specks smaller than a few pixels removed: corners of the previous frame (``goodFeaturesToTrack``) are tracked into the current one (pyramidal
Lucas–Kanade), and a similarity transform (shift, scale, rotation) is fitted with RANSAC, so a moving object's
points are outliers. The camera counts as still when many tracked points did not move at all (a still camera
watching a moving object), and as unknown when the points do not agree on one motion or cover too little of the
frame (then nothing is compensated: better a raw reading than a wrong warp).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SPECK = np.ones((3, 3), np.uint8)
_LK = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


@dataclass(frozen=True)
class CameraStep:
    """The camera's motion from one frame to the next. ``matrix`` maps previous-frame pixels to current-frame
    pixels (2x3, None when still or unknown); ``shift`` is the pan/tilt in frame sizes (x, y), ``zoom`` the scale
    change, ``confidence`` 0..1 how well the points agree (0: unknown)."""

    matrix: np.ndarray | None
    shift: tuple[float, float]
    zoom: float
    confidence: float

    @property
    def moved(self) -> bool:
        return self.matrix is not None


STILL = CameraStep(None, (0.0, 0.0), 1.0, 1.0)
UNKNOWN = CameraStep(None, (0.0, 0.0), 1.0, 0.0)


class CameraTracker:
    """``step(gray_u8) -> CameraStep`` for each frame in order (the first frame gives ``STILL``)."""

    def __init__(self, *, max_points: int = 120, min_points: int = 8, still_px: float = 0.15):
        self.max_points = max_points
        self.min_points = min_points
        self.still_px = still_px  # a point that moved less than this (half-size pixels) did not move
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (after a cut there is no camera motion to measure)."""
        self._prev = None

    def step(self, gray: np.ndarray) -> CameraStep:
        """The camera's motion since the previous frame, for a full-size ``gray`` (uint8) frame."""
        full_h, full_w = gray.shape
        # Half size, then small bright and dark specks opened and closed away: grain, rain streaks and snowflakes
        # leave no corners to track, the scene's own structure stays.
        small = cv2.morphologyEx(cv2.morphologyEx(cv2.pyrDown(gray), cv2.MORPH_OPEN, _SPECK), cv2.MORPH_CLOSE, _SPECK)
        prev, self._prev = self._prev, small
        if prev is None:
            return STILL
        gray = small
        h, w = gray.shape
        pts = cv2.goodFeaturesToTrack(prev, maxCorners=self.max_points, qualityLevel=0.01, minDistance=max(3, w // 40),
                                      blockSize=3)  # fmt: skip
        if pts is None or len(pts) < self.min_points:
            return STILL if _flat(prev, gray) else UNKNOWN
        tracked = self._track(prev, gray, pts)
        if isinstance(tracked, CameraStep):
            return tracked
        p0, p1 = tracked
        m, inliers = cv2.estimateAffinePartial2D(p0, p1, method=cv2.RANSAC, ransacReprojThreshold=1.0, maxIters=200,
                                                 confidence=0.99)  # fmt: skip
        if m is None or inliers is None:
            return UNKNOWN
        keep = inliers.ravel().astype(bool)
        share = np.count_nonzero(keep) / len(keep)  # keep.mean()
        span = np.ptp(p0[keep], axis=0) / (w, h) if keep.sum() >= 2 else np.zeros(2)
        if keep.sum() < self.min_points or share < 0.5 or span.min() < 0.4:
            return UNKNOWN  # no single motion shared across the frame: an object, not the camera
        zoom = float(np.hypot(m[0, 0], m[1, 0]))
        # Shift of the frame centre, in frame sizes.
        c = np.array([w / 2, h / 2])
        shift = (m[:, :2] @ c + m[:, 2] - c) / (w, h)
        full = m.astype(np.float32).copy()
        full[:, 2] *= (full_w / w + full_h / h) / 2  # the same motion in full-size pixels
        return CameraStep(full, (float(shift[0]), float(shift[1])), zoom, share * min(1.0, keep.sum() / 20))

    def _track(self, prev: np.ndarray, gray: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | CameraStep:
        """The points of ``prev`` that Lucas-Kanade found in ``gray`` (before, after) — or ``STILL`` when a good
        share of them (30 %) did not move, ``UNKNOWN`` when too few were found.

        Each point is tracked on its own, so the strongest half go first: when enough of them already stood still
        the camera is known to be still whatever the rest do (a still camera: most frames), and the other half
        need no tracking; otherwise the rest are tracked and the answer is the one all the points give at once."""
        first = min(len(pts), max(self.min_points, (len(pts) + 1) // 2))
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, gray, pts[:first], None, **_LK)
        if first < len(pts):
            still = np.count_nonzero(self._still(pts[:first], nxt, status))
            # The still share of all the found points is at least this (still / all the points), to the bit.
            if still >= self.min_points and still / len(pts) >= 0.3:
                return STILL
            more, more_status, _ = cv2.calcOpticalFlowPyrLK(prev, gray, pts[first:], None, **_LK)
            nxt, status = np.concatenate([nxt, more]), np.concatenate([status, more_status])
        ok = status.ravel() == 1
        p0, p1 = pts.reshape(-1, 2)[ok], nxt.reshape(-1, 2)[ok]
        if len(p0) < self.min_points:
            return UNKNOWN
        if np.count_nonzero(self._still(pts, nxt, status)) / len(p0) >= 0.3:
            return STILL  # a good share of the scene stands still: so does the camera
        return p0, p1

    def _still(self, pts: np.ndarray, nxt: np.ndarray, status: np.ndarray) -> np.ndarray:
        """Which of the found points moved less than ``still_px`` (one flag per found point)."""
        ok = status.ravel() == 1
        d = nxt.reshape(-1, 2)[ok] - pts.reshape(-1, 2)[ok]
        return np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) < self.still_px  # np.linalg.norm(d, axis=1) < still_px


def _flat(a: np.ndarray, b: np.ndarray) -> bool:
    """Too little texture to track: flat colour fields. Nothing to compensate either way."""
    return float(np.std(a)) < 4 and float(np.std(b)) < 4


def camera_between(prev: np.ndarray, gray: np.ndarray) -> CameraStep:
    """The camera's motion between two uint8 grey frames that need not be neighbours in a stream (a candidate
    cut's two sides), by the same flow and similarity fit as ``CameraTracker``."""
    tracker = CameraTracker()
    tracker.step(prev)
    return tracker.step(gray)


def phase_shift(prev: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray, float]:
    """A pure translation from ``prev`` to ``gray`` by phase correlation (2x3 matrix, and the correlation peak's
    strength 0..1). Why beside the point tracker: in a whip pan the picture moves a third of its width per frame
    and smears, corners are lost, yet the whole frame's spectrum still shifts as one."""
    a, b = np.float32(prev), np.float32(gray)
    window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, window)
    return np.float32([[1, 0, dx], [0, 1, dy]]), float(response)
