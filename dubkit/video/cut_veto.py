"""Is a candidate cut only the camera moving? The veto the cut detector asks before it believes a change.

Why: ContentDetector scores how much the picture changed since the previous frame, and a fast pan or a whip pan
changes every pixel — on handheld footage at low frame rates it scores like a cut, several frames in a row. A hard
cut and a pan differ in what explains the change: after a pan, the previous frame *moved* onto the current one,
so warping it by the camera's motion makes the two match; across a cut, the new shot shares no coherent motion
with the old one and no warp makes them match.

How: the camera's motion between the two frames is estimated twice — the point tracker's similarity fit
(``camera.camera_between``: pans, tilts, zooms) and phase correlation (``camera.phase_shift``: fast, smeared
translations the tracker loses) — and the candidate is vetoed when the better warp removes most of the brightness
difference (the compensated difference below ``RATIO`` of the raw one) over a fair share of the frame. Brightness
(HSV value) rather than hue: hue is noise in dark, grey pixels and no warp removes noise. On the dev set the
pans' ratio stays ≤ 0.5 and true cuts' ≥ 0.75 (tests/bench/bench_cuts.py).
"""
from __future__ import annotations

import cv2
import numpy as np

from .camera import camera_between, phase_shift

RATIO = 0.6  # compensated / raw brightness difference below which the camera explains the change
MIN_COVER = 0.3  # share of the frame the warped previous frame must still cover
MIN_RESPONSE = 0.2  # phase-correlation peak below which its shift is no estimate (cuts score about 0.0–0.13)


def camera_explains(before_hsv: np.ndarray, after_hsv: np.ndarray) -> bool:
    """True when a camera move maps the frame before a candidate cut onto the frame after it (uint8 HSV images
    of one size): the change is a pan, tilt or zoom, not a cut."""
    before = np.ascontiguousarray(before_hsv[..., 2])
    after = np.ascontiguousarray(after_hsv[..., 2])
    raw = float(cv2.absdiff(before, after).mean())
    if raw <= 0.0:
        return False
    warps = []
    step = camera_between(before, after)
    if step.moved:
        warps.append(step.matrix)
    shift, response = phase_shift(before, after)
    if response >= MIN_RESPONSE:
        warps.append(shift)
    return any(_compensated(before, after, m) < RATIO * raw for m in warps)


def _compensated(before: np.ndarray, after: np.ndarray, matrix: np.ndarray) -> float:
    """Mean absolute difference between ``after`` and ``before`` warped by ``matrix``, over the pixels the warp
    covers (infinite when it covers too little of the frame to judge)."""
    h, w = after.shape
    warped = cv2.warpAffine(before, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones((h, w), np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST) > 0
    if inside.mean() < MIN_COVER:
        return float("inf")
    return float(cv2.absdiff(warped, after)[inside].mean())
