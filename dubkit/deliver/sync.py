"""The video's clock for audio: where the original audio sits against the first frame, sample for sample.

Why here and not in the API: every mix, whatever mode, must put the original sound where it was against the picture,
and the decisions (which offset, how long) follow from the probed stream facts, not from the workflow. The new
soundtrack covers exactly the video's presentation interval (``MediaInfo.duration``) starting at its first frame;
the original audio is moved onto that clock (audio that starts before the first frame loses its head, audio that
starts later gets leading silence) and cut or padded to the same length.
"""
from __future__ import annotations

import numpy as np

from audiostory_core.assemble import to_samples

from audiostory_core.audio import fit_length

from ..video.types import MediaInfo


def soundtrack_samples(info: MediaInfo, sample_rate: int) -> int:
    """Samples the soundtrack must have: the video's presentation interval (first frame to the end of the last)."""
    return to_samples(info.duration, sample_rate)


def align_to_video(audio: np.ndarray, offset: float, samples: int, sample_rate: int = 48000) -> np.ndarray:
    """Place audio that starts ``offset`` seconds after the first video frame on the video's clock, ``samples`` long."""
    shift = to_samples(offset, sample_rate)
    if shift > 0:
        audio = np.pad(audio, ((0, 0), (shift, 0)))
    elif shift < 0:
        audio = audio[:, -shift:]
    return fit_length(audio, samples)
