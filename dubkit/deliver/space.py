"""How much room a dub needs on its output's disk, checked before any work: a full disk is refused up front
with the numbers, instead of failing (or worse, half-writing) after minutes of rendering.

The sizes are predictable: the soundtrack's scratch tracks (float32, one per layer and one for the original
audio), the 24-bit WAV that is muxed, the muxed video (the copied video stream plus the new audio at its
codec's rate) and, with stems, one 24-bit WAV per layer. The layers are not known before planning, so two are
assumed (ambience and effects: every offline dub has them); the scratch tracks are reserved on the disk as they
are made, so a plan with more layers than that still fails at once, with its own numbers.
"""
from __future__ import annotations

from pathlib import Path

from audiostory_core.timing import to_samples

from ..io import check_space
from ..options import FinishingOptions
from ..video.types import MediaInfo

RATE, CHANNELS = 48000, 2
MIN_LAYERS = 2
# Bytes per second of the new soundtrack in each container's audio codec (AAC at 256k, PCM, FLAC about 60 %).
_AUDIO_BYTES_PER_S = {"aac": 32_000, "libopus": 24_000, "mp2": 48_000, "flac": RATE * CHANNELS * 3 * 0.6,
                      "pcm_s24le": RATE * CHANNELS * 3, "pcm_s16le": RATE * CHANNELS * 2}


def dub_space_needed(video: Path, info: MediaInfo, finishing: FinishingOptions, container: str) -> int:
    """Bytes a dub of ``video`` into a ``container`` output needs at its peak (scratch and output together)."""
    from .mux import audio_codec_for

    n = to_samples(info.duration, RATE)
    frame32, frame24 = CHANNELS * 4 * n, CHANNELS * 3 * n
    scratch = frame32 * (MIN_LAYERS + (1 if info.has_audio else 0))
    new_audio = int(_AUDIO_BYTES_PER_S.get(audio_codec_for(f"x{container}"), RATE * CHANNELS * 3) * info.duration)
    muxed = video.stat().st_size + new_audio  # the input's video (and, kept, audio) streams, copied, plus ours
    stems = frame24 * (MIN_LAYERS + (1 if finishing.keep_original_audio and info.has_audio else 0))
    return scratch + frame24 + muxed + (stems if finishing.stems else 0) + 1_000_000  # + report, plan, timeline


def check_dub_space(out: Path, video: Path, info: MediaInfo, finishing: FinishingOptions) -> None:
    """Refuse a dub whose output disk cannot hold what ``dub_space_needed`` says it will write."""
    check_space(out.parent if str(out.parent) else Path("."), dub_space_needed(video, info, finishing, out.suffix),
                f"dubbing {video.name} into {out.name}")
