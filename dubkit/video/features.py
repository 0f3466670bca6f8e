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

import cv2
import numpy as np
import scipy.fft as sfft  # single precision (numpy's FFT is double only: 5x slower here)

from .camera import UNKNOWN, CameraTracker
from .types import FrameFeatures

CHANGED = 0.08  # a pixel whose luma moved by more than this (0..1) counts as "changed" (raised above the noise)
NOISE_BAR = 4.0  # ... and by more than this many noise sigmas
SCATTERED = 10.0  # small changed specks per 10k pixels below which the change's look is not measured
_LAG = 6  # autocorrelation window radius (pixels) for the streak direction
_DRIFT = (10, 20)  # |dx|, |dy| search window (pixels) for how the change pattern moved since the previous frame


class FeatureAccumulator:
    """Push frames in order with ``push(time, rgb)``; ``result()`` gives the ``FrameFeatures`` of all of them."""

    def __init__(self) -> None:
        self.rows: list[list[float]] = []
        self.camera = CameraTracker()
        self._prev: np.ndarray | None = None
        self._prev_change: np.ndarray | None = None  # signed change of the previous frame, previous frame's pixels
        self._prev_spec: np.ndarray | None = None  # its spectrum
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        self._window: np.ndarray | None = None

    def push(self, time: float, rgb: np.ndarray) -> None:
        gray8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        gray = gray8.astype(np.float32) * (1 / 255)
        r, g, b = cv2.mean(rgb)[:3]
        h, w = gray.shape
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
                warped = cv2.warpAffine(self._prev, step.matrix, (w, h), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
                inside = cv2.warpAffine(np.ones_like(gray), step.matrix, (w, h), flags=cv2.INTER_NEAREST)
                seen = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0.5  # what the previous frame saw too
                compensated = np.where(seen, gray - warped, 0.0).astype(np.float32)
                # A camera move explains most of the change; a "move" fitted to snowflakes or a crowd explains little.
                if float(np.abs(compensated).mean()) < 0.7 * float(np.abs(change[seen]).mean()):
                    change, valid = compensated, seen
                else:
                    step = UNKNOWN
                    row[8:12] = [0.0, 0.0, 1.0, 0.0]
            diff = np.abs(change)
            # The noise from every other pixel each way: the same spread, a quarter of the sorting.
            sub = diff[::2, ::2]
            noise = 1.4826 * float(np.median(sub if valid is None else sub[valid[::2, ::2]]))
            bar = max(CHANGED, NOISE_BAR * noise)
            row[2] = float(np.maximum(diff - 3 * noise, 0.0).mean()) if noise > 1e-3 else float(diff.mean())
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
            clear = np.where(small, change, 0.0).astype(np.float32) if row[12] >= SCATTERED else None
            prev_change, prev_spec = self._prev_change, self._prev_spec
            if prev_change is not None and step.moved:
                prev_change = cv2.warpAffine(prev_change, step.matrix, (w, h), flags=cv2.INTER_LINEAR)
                prev_spec = None
            if clear is not None:
                row[15:20], self._prev_spec = self._pattern(clear, prev_change, prev_spec)
            else:
                self._prev_spec = None
            self._prev_change = clear
        self._prev = gray
        self.rows.append(row)

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
        out = [*_elongation(auto / auto[0, 0]), 0.0, 0.0, 0.0]
        if before is not None:
            prior = float(np.square(before).sum())
            if prior > 1e-6:
                other = before_spec if before_spec is not None else sfft.rfft2(before)
                cross = sfft.irfft2(spec * np.conj(other), s=change.shape) / np.sqrt(energy * prior)
                dx_max, dy_max = _DRIFT
                xs = np.r_[0 : dx_max + 1, w - dx_max : w]
                ys = np.r_[0 : dy_max + 1, h - dy_max : h]
                win = cross[np.ix_(ys, xs)]
                iy, ix = np.unravel_index(int(np.argmax(win)), win.shape)
                dy = int(ys[iy]) - (h if ys[iy] > h // 2 else 0)
                dx = int(xs[ix]) - (w if xs[ix] > w // 2 else 0)
                out[2:] = [float(win[iy, ix]), dx / w, dy / h]
        return out, spec

    def result(self, lo: int = 0, hi: int | None = None) -> FrameFeatures:
        """The features of frames ``lo``..``hi`` pushed so far (all of them by default)."""
        a = np.array(self.rows[lo:hi], dtype=np.float64).reshape(-1, 21)
        return FrameFeatures(times=a[:, 0], brightness=a[:, 1], motion=a[:, 2], centroid=a[:, 3:5], color=a[:, 5:8],
                             camera=a[:, 8:12], specks=a[:, 12:15], streaks=a[:, 15:17], flow=a[:, 17:20],
                             extent=a[:, 20])  # fmt: skip


def _specks(mask: np.ndarray) -> tuple[list[float], np.ndarray]:
    """[density of small changed blobs per 10k pixels, share of a 4x4 grid they reach, share of pixels changed],
    and the mask of those small blobs (a streak or a flake: a few pixels, a few pixels across)."""
    h, w = mask.shape
    changed = float(mask.mean())
    if changed == 0.0:
        return [0.0, 0.0, 0.0], mask
    n, labels, stats, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    area = stats[:, cv2.CC_STAT_AREA]
    reach = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    small = (area <= max(6, 0.0015 * w * h)) & (reach <= max(4, h // 8))
    small[0] = False  # the background
    if not small.any():
        return [0.0, 0.0, changed], np.zeros_like(mask)
    cells = {(int(x * 4 // w), int(y * 4 // h)) for x, y in centres[small]}
    return [float(small.sum()) * 1e4 / (w * h), len(cells) / 16, changed], small[labels]


def _elongation(auto: np.ndarray) -> tuple[float, float]:
    """How line-like the change pattern is — (λ1 − λ2) / (λ1 + λ2) of the lag spread of the autocorrelation's
    significant part around zero lag — and its direction from vertical (radians, positive: leaning right)."""
    k = _LAG
    win = np.roll(np.roll(auto, k, axis=0), k, axis=1)[: 2 * k + 1, : 2 * k + 1]
    wts = np.where(win > 0.15, win, 0.0)
    wts[k, k] = 0.0
    if wts.sum() < 1.0:  # nothing correlated beyond a pixel: noise, not structure
        return 0.0, 0.0
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1]
    cxx, cyy, cxy = (wts * xx * xx).sum(), (wts * yy * yy).sum(), (wts * xx * yy).sum()
    vals, vecs = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
    if vals.sum() <= 0:
        return 0.0, 0.0
    vx, vy = vecs[:, 1]  # the major axis
    angle = float(np.arctan2(vx, vy))  # from the y (down) axis
    angle = (angle + np.pi / 2) % np.pi - np.pi / 2  # an axis, not an arrow: fold into (-90°, 90°]
    return float((vals[1] - vals[0]) / vals.sum()), angle
