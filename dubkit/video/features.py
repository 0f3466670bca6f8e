"""Per-frame measurements taken during the single decoding pass, on the small analysis frame, with the camera's own
motion removed first.

For each frame: brightness and mean colour; the camera's step from the previous frame (``camera.py``); and what
changed *in the scene* once the previous frame is warped onto this one — how much (``motion``), where (the
``centroid`` of the clearly changed pixels) and what the change looks like (``specks``, ``streaks``, ``flow``).
"Clearly changed" is relative to the frame's own noise (film grain, compression): the robust spread of the
difference sets the bar, so grain is not motion.

Why the look of the change: precipitation and noise both scatter small changes over the whole frame, and both
would read as "fine motion everywhere". They differ in structure: rain is streaks sharing one near-vertical
direction (the change image's autocorrelation is elongated), snow is flakes that persist and drift down (the
change image correlates with the previous one at a downward shift); grain and compression noise have neither,
and grass or leaves stirring in place correlate with the previous change at no shift at all.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np
import scipy.fft as sfft  # single precision (numpy's FFT is double only: 5x slower here)

from .camera import UNKNOWN, CameraStep, CameraTracker
from .types import FrameFeatures

CHANGED = 0.08  # a pixel whose luma moved by more than this (0..1) counts as "changed" (raised above the noise)
NOISE_BAR = 4.0  # ... and by more than this many noise sigmas
SCATTERED = 10.0  # small changed specks per 10k pixels below which the change's look is not measured
_LAG = 6  # autocorrelation window radius (pixels) for the streak direction
_DRIFT = (10, 20)  # |dx|, |dy| search window (pixels) for how the change pattern moved since the previous frame
_SQUARE = np.ones((3, 3), np.uint8)
_LAGS_Y, _LAGS_X = np.mgrid[-_LAG : _LAG + 1, -_LAG : _LAG + 1]


class FeatureAccumulator:
    """Push frames in order with ``push(time, rgb)``; ``result()`` gives the ``FrameFeatures`` of all of them."""

    def __init__(self) -> None:
        self.rows: list[list[float]] = []
        self.camera = CameraTracker()
        self._prev: np.ndarray | None = None
        self._prev_change: np.ndarray | None = None  # signed change of the previous frame, previous frame's pixels
        self._prev_spec: np.ndarray | None = None  # its spectrum
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        self._ones: np.ndarray | None = None  # the warp of an all-ones frame: which pixels the previous frame saw
        self._scratch: np.ndarray | None = None

    def push(self, time: float, rgb: np.ndarray) -> None:
        gray8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        gray = gray8.astype(np.float32) * (1 / 255)
        r, g, b = cv2.mean(rgb)[:3]
        row = [time, float(gray.mean()), 0.0, np.nan, np.nan, r / 255, g / 255, b / 255,
               0.0, 0.0, 1.0, 1.0,  # camera: shift x, y (frame sizes), zoom, confidence
               0.0, 0.0, 0.0,  # specks: density (per 10k pixels), spread (0..1), changed share (0..1)
               0.0, 0.0,  # streaks: elongation (0..1), angle from vertical (radians)
               0.0, 0.0, 0.0,  # flow: persistence (-1..1), drift x, y (frame sizes per frame)
               np.nan]  # extent: RMS distance of the changed pixels from their centre (frame sizes)  # fmt: skip
        step = self.camera.step(gray8)
        row[8:12] = [step.shift[0], step.shift[1], step.zoom, step.confidence]
        if self._prev is not None:
            change, valid = gray - self._prev, None
            if step.moved:
                change, valid, step = self._compensate(gray, change, step)
                if step is UNKNOWN:
                    row[8:12] = [0.0, 0.0, 1.0, 0.0]
            self._measure(row, change, valid, step)
        self._prev = gray
        self.rows.append(row)

    def _compensate(self, gray: np.ndarray, change: np.ndarray,
                    step: CameraStep) -> tuple[np.ndarray, np.ndarray | None, CameraStep]:
        """The change once the previous frame is warped by the camera's step, and the pixels both frames saw —
        or the raw change and ``UNKNOWN`` when the "move" explains little of it."""
        h, w = gray.shape
        warped = cv2.warpAffine(self._prev, step.matrix, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        if self._ones is None or self._ones.shape != gray.shape:
            self._ones = np.ones_like(gray)
        inside = cv2.warpAffine(self._ones, step.matrix, (w, h), flags=cv2.INTER_NEAREST)
        seen = cv2.erode(inside, _SQUARE) > 0.5  # what the previous frame saw too
        compensated = np.where(seen, gray - warped, 0.0).astype(np.float32, copy=False)
        # A camera move explains most of the change; a "move" fitted to snowflakes or a crowd explains little.
        if float(np.abs(compensated).mean()) < 0.7 * float(np.abs(change[seen]).mean()):
            return compensated, seen, step
        return change, None, UNKNOWN

    def _measure(self, row: list[float], change: np.ndarray, valid: np.ndarray | None, step: CameraStep) -> None:
        """Fill ``row``'s motion, centroid, extent, specks, streaks and flow from the (compensated) change."""
        h, w = change.shape
        diff = np.abs(change)
        # The noise from every other pixel each way: the same spread, a quarter of the sorting.
        sub = diff[::2, ::2]
        noise = 1.4826 * _median(sub if valid is None else sub[valid[::2, ::2]])
        bar = max(CHANGED, NOISE_BAR * noise)
        if noise > 1e-3:
            above = np.subtract(diff, 3 * noise, out=self._buffer(diff))
            row[2] = float(np.maximum(above, 0.0, out=above).mean())
        else:
            row[2] = float(diff.mean())
        _, weights = cv2.threshold(diff, bar, 0.0, cv2.THRESH_TOZERO)  # only clearly changed pixels
        total = float(weights.sum())
        if total > 4 * CHANGED:  # a few pixels at least
            if self._grid is None:
                self._grid = ((np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h)
            xs, ys = self._grid
            col, line = weights.sum(axis=0), weights.sum(axis=1)
            row[3], row[4] = float(col @ xs) / total, float(line @ ys) / total
            var = (float(col @ (xs - row[3]) ** 2) + float(line @ (ys - row[4]) ** 2)) / total
            row[20] = float(np.sqrt(var))
        row[12:15], small = _specks(weights > 0)
        # The look of the scattered part of the change only: long edges and whole objects are not precipitation.
        # (Few specks: nothing to read, and two FFTs saved.)
        clear = np.where(small(), change, 0.0).astype(np.float32, copy=False) if row[12] >= SCATTERED else None
        prev_change, prev_spec = self._prev_change, self._prev_spec
        if prev_change is not None and step.moved:
            prev_change = cv2.warpAffine(prev_change, step.matrix, (w, h), flags=cv2.INTER_LINEAR)
            prev_spec = None
        if clear is not None:
            row[15:20], self._prev_spec = self._pattern(clear, prev_change, prev_spec)
        else:
            self._prev_spec = None
        self._prev_change = clear

    def _buffer(self, like: np.ndarray) -> np.ndarray:
        """A scratch array the shape of ``like``, kept between frames (no allocation per frame)."""
        if self._scratch is None or self._scratch.shape != like.shape or self._scratch.dtype != like.dtype:
            self._scratch = np.empty_like(like)
        return self._scratch

    def _pattern(self, change: np.ndarray, before: np.ndarray | None,
                 before_spec: np.ndarray | None) -> tuple[list[float], np.ndarray | None]:
        """[elongation, angle from vertical, persistence, drift x, drift y] of the signed change image, and its
        spectrum (for the next frame)."""
        h, w = change.shape
        energy = float(np.square(change).sum())
        if energy <= 1e-6:
            return [0.0, 0.0, 0.0, 0.0, 0.0], None
        spec = sfft.rfft2(change)
        auto = sfft.irfft2(spec * np.conj(spec), s=change.shape)
        lags_y, lags_x, drift_y, drift_x = _windows(h, w)
        out = [*_elongation(auto[np.ix_(lags_y, lags_x)] / auto[0, 0]), 0.0, 0.0, 0.0]
        if before is not None:
            prior = float(np.square(before).sum())
            if prior > 1e-6:
                other = before_spec if before_spec is not None else sfft.rfft2(before)
                cross = sfft.irfft2(spec * np.conj(other), s=change.shape)
                win = cross[np.ix_(drift_y, drift_x)] / np.sqrt(energy * prior)  # only the lags searched
                iy, ix = np.unravel_index(int(np.argmax(win)), win.shape)
                dy = int(drift_y[iy]) - (h if drift_y[iy] > h // 2 else 0)
                dx = int(drift_x[ix]) - (w if drift_x[ix] > w // 2 else 0)
                out[2:] = [float(win[iy, ix]), dx / w, dy / h]
        return out, spec

    def result(self, lo: int = 0, hi: int | None = None) -> FrameFeatures:
        """The features of frames ``lo``..``hi`` pushed so far (all of them by default)."""
        a = np.array(self.rows[lo:hi], dtype=np.float64).reshape(-1, 21)
        return FrameFeatures(times=a[:, 0], brightness=a[:, 1], motion=a[:, 2], centroid=a[:, 3:5], color=a[:, 5:8],
                             camera=a[:, 8:12], specks=a[:, 12:15], streaks=a[:, 15:17], flow=a[:, 17:20],
                             extent=a[:, 20])  # fmt: skip


def _specks(mask: np.ndarray) -> tuple[list[float], Callable[[], np.ndarray]]:
    """[density of small changed blobs per 10k pixels, share of a 4x4 grid they reach, share of pixels changed],
    and how to get the mask of those small blobs (a streak or a flake: a few pixels, a few pixels across) — built
    only when asked: most frames have too few specks to look at."""
    h, w = mask.shape
    changed = np.count_nonzero(mask) / mask.size  # = mask.mean(), to the bit
    if changed == 0.0:
        return [0.0, 0.0, 0.0], lambda: mask
    # 16-bit labels when they fit (at most one blob per 2x2 pixels): the same blobs, 3-4x faster than 32-bit.
    ltype = cv2.CV_16U if ((h + 1) // 2) * ((w + 1) // 2) < 65535 else cv2.CV_32S
    n, labels, stats, centres = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8, ltype=ltype)
    area = stats[:, cv2.CC_STAT_AREA]
    reach = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    small = (area <= max(6, 0.0015 * w * h)) & (reach <= max(4, h // 8))
    small[0] = False  # the background
    count = np.count_nonzero(small)
    if not count:
        return [0.0, 0.0, changed], lambda: np.zeros_like(mask)
    cell = np.floor_divide(centres[small] * 4, (w, h)).astype(np.intp)  # each speck's cell of a 4x4 grid
    cells = np.count_nonzero(np.bincount(cell[:, 0] * 4 + cell[:, 1], minlength=16))
    return [float(count) * 1e4 / (w * h), cells / 16, changed], lambda: np.take(small, labels)


def _median(values: np.ndarray) -> float:
    """``np.median``, the same value to the bit (the mean of the two middle ones, in their own precision), from a
    vectorised sort: on a frame difference, half zeros and a few hundred distinct values, the partition behind
    ``np.median`` is 5x slower than sorting it all."""
    flat = np.sort(values, axis=None)
    n = flat.size
    if n == 0:
        return float("nan")
    return float(flat[n // 2] if n % 2 else (flat[n // 2 - 1] + flat[n // 2]) / 2)


@functools.lru_cache(maxsize=4)
def _windows(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows and columns of the autocorrelation's lags around zero (``_LAG``) and of the drift search (``_DRIFT``)
    in an ``h`` x ``w`` correlation image (negative lags wrap around)."""
    dx_max, dy_max = _DRIFT
    return (np.arange(-_LAG, _LAG + 1) % h, np.arange(-_LAG, _LAG + 1) % w,
            np.r_[0 : dy_max + 1, h - dy_max : h], np.r_[0 : dx_max + 1, w - dx_max : w])  # fmt: skip


def _elongation(win: np.ndarray) -> tuple[float, float]:
    """How line-like the change pattern is — (λ1 − λ2) / (λ1 + λ2) of the lag spread of the autocorrelation's
    significant part around zero lag — and its direction from vertical (radians, positive: leaning right).
    ``win``: the normalised autocorrelation at lags -``_LAG``..``_LAG`` each way (zero lag in the middle)."""
    k = _LAG
    wts = np.where(win > 0.15, win, 0.0)
    wts[k, k] = 0.0
    if wts.sum() < 1.0:  # nothing correlated beyond a pixel: noise, not structure
        return 0.0, 0.0
    yy, xx = _LAGS_Y, _LAGS_X
    cxx, cyy, cxy = (wts * xx * xx).sum(), (wts * yy * yy).sum(), (wts * xx * yy).sum()
    vals, vecs = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    if vals.sum() <= 0:
        return 0.0, 0.0
    vx, vy = vecs[:, 1]  # the major axis
    angle = float(np.arctan2(vx, vy))  # from the y (down) axis
    angle = (angle + np.pi / 2) % np.pi - np.pi / 2  # an axis, not an arrow: fold into (-90°, 90°]
    return float((vals[1] - vals[0]) / vals.sum()), angle
