"""How a shot looks, as numbers a planner can score music by: brightness, motion energy, saturation, warmth and
whether it is drawn (cartoon) or filmed.

Why numbers and not words: "dark" and "busy" are thresholds on a scale, and the music's energy and mood want the
scale itself. All of it comes from what the single decoding pass already has (per-frame features and a few
keyframes), so it costs a few milliseconds per shot.

Cartoon or live action: drawn frames are mostly flat fills bounded by edges, so most pixels have almost no
local gradient, while filmed frames carry texture, grain and soft light everywhere. The share of flat pixels
(Sobel magnitude under a small threshold, on the keyframes) separates the two well; saturation adds a little.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from audiostory_core.request import Scene

from ..video.types import ShotFrames

FLAT_GRADIENT = 8.0  # Sobel magnitude (on 0..255 luma) under which a pixel is "flat"
FLAT_LIVE, FLAT_DRAWN = 0.35, 0.70  # flat-pixel shares typical of filmed and drawn frames


def shot_look(frames: ShotFrames) -> dict[str, float]:
    """``brightness``, ``motion`` (per-frame mean absolute luma change, averaged without the top 5 %: flashes),
    ``saturation``,
    ``warmth`` (mean red minus blue, -1..1), ``flat`` (share of flat pixels) and ``cartoon`` (0..1)."""
    f = frames.features
    out: dict[str, float] = {}
    if len(f):
        out["brightness"] = float(np.mean(f.brightness))
        m = f.motion[1:]
        out["motion"] = float(m[m <= np.percentile(m, 95)].mean()) if len(m) else 0.0  # a flash is no motion
        out["warmth"] = float(np.mean(f.color[:, 0] - f.color[:, 2]))
    if frames.keyframes:
        flat, sat = [], []
        for im in frames.keyframes:
            gray = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32)
            mag = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
            flat.append(float((mag < FLAT_GRADIENT).mean()))
            sat.append(float(cv2.cvtColor(im, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255.0))
        out["flat"] = float(np.mean(flat))
        out["saturation"] = float(np.mean(sat))
        drawn = (out["flat"] - FLAT_LIVE) / (FLAT_DRAWN - FLAT_LIVE) + 0.3 * (out["saturation"] - 0.4)
        out["cartoon"] = float(min(1.0, max(0.0, drawn)))
    return out


def mark_speech(scenes: Sequence[Scene], regions: Sequence[tuple[float, float]]) -> None:
    """Set each scene's ``features["speech"]``: the share of its time inside the speech ``regions`` ((start, end)
    seconds, e.g. from ``dubkit.soundtrack.dialogue.detect_speech`` on the original audio), so "auto" music can
    leave dialogue scenes of live action alone."""
    for scene in scenes:
        length = scene.end - scene.start
        if length <= 0:
            continue
        covered = sum(max(0.0, min(e, scene.end) - max(s, scene.start)) for s, e in regions)
        scene.features["speech"] = float(min(1.0, covered / length))
