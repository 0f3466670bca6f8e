"""Seconds ↔ samples, one rule everywhere, so every boundary lands on the same sample whoever computes it."""
from __future__ import annotations

import numpy as np


def to_samples(seconds: float, sample_rate: int) -> int:
    """Seconds → sample index, rounded half up (not Python's half-to-even ``round``)."""
    return int(np.floor(seconds * sample_rate + 0.5))


def span_samples(start: float, duration: float, sample_rate: int) -> int:
    """Samples between the boundaries ``start`` and ``start + duration``: abutting spans tile with no gap."""
    return to_samples(start + duration, sample_rate) - to_samples(start, sample_rate)
