"""What video understanding produces: stream facts, shots, per-frame features and keyframes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class MediaInfo:
    """Facts from ffprobe.

    ``duration`` is the video's presentation interval, from its first shown frame to the end of its last: what the
    soundtrack must cover, to the sample (not the container's ``container_duration``, which may include audio
    that runs on, or an empty edit before a late video). Times in dubkit's timeline are seconds after the first
    frame; ``origin + video_start`` is that frame's time on the container's own clock.
    """

    path: str
    duration: float
    container_duration: float = 0.0
    width: int = 0
    height: int = 0
    fps: float = 0.0  # average frame rate
    frame_count: int = 0
    variable_frame_rate: bool = False
    rotation: int = 0  # degrees, from the display matrix / rotate tag
    video_codec: str = ""
    has_video: bool = False
    has_audio: bool = False
    audio_sample_rate: int = 0
    audio_channels: int = 0
    origin: float = 0.0  # the container clock's zero, seconds (0 for MP4/MOV; a stream's first timestamp for TS)
    video_start: float = 0.0  # the first shown frame, seconds after the container's origin
    audio_start: float = 0.0  # the first audio stream's start, seconds after the container's origin
    format_name: str = ""  # ffprobe's, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "mpegts"
    streams: list[dict] = field(default_factory=list)

    @property
    def first_frame_time(self) -> float:
        """The first shown frame's presentation time on the container's clock (what frame pts are measured from)."""
        return self.origin + self.video_start

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("streams", None)
        return d


@dataclass(frozen=True)
class Shot:
    """A run of frames between two hard cuts: [start, end) in seconds and frame indices."""

    index: int
    start: float
    end: float
    start_frame: int
    end_frame: int  # exclusive

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class FrameFeatures:
    """One row per decoded frame, computed while decoding (the video is never held in memory).

    ``motion`` is the mean absolute luma change from the previous frame (0..1); ``centroid`` the (x, y) centre of
    the changed pixels in 0..1 (NaN when nothing moved); ``brightness`` mean luma (0..1); ``color`` mean RGB (0..1).
    """

    times: np.ndarray  # (n,) presentation time of each frame, seconds
    brightness: np.ndarray  # (n,)
    motion: np.ndarray  # (n,)
    centroid: np.ndarray  # (n, 2)
    color: np.ndarray  # (n, 3)

    def slice(self, lo: int, hi: int) -> "FrameFeatures":
        return FrameFeatures(
            self.times[lo:hi], self.brightness[lo:hi], self.motion[lo:hi], self.centroid[lo:hi], self.color[lo:hi]
        )

    def __len__(self) -> int:
        return len(self.times)


@dataclass
class ShotFrames:
    """What a captioner sees of one shot: a few evenly spaced RGB keyframes (H, W, 3 uint8) with their times,
    and the per-frame features of the whole shot."""

    keyframes: list[np.ndarray]
    keyframe_times: list[float]
    features: FrameFeatures


@dataclass
class VideoScan:
    """The result of the single decoding pass over a video."""

    info: MediaInfo
    shots: list[Shot]
    features: FrameFeatures
    frames: list[ShotFrames]  # one per shot, same order
