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
    """One row per decoded frame, computed while decoding (the video is never held in memory; ``features.py``).

    ``motion`` is the mean absolute luma change from the previous frame above its noise (0..1), after the camera's
    own motion is removed; ``centroid`` the (x, y) centre of the clearly changed pixels in 0..1 (NaN when nothing
    moved); ``brightness`` mean luma (0..1); ``color`` mean RGB (0..1). The look of the change:
    ``camera`` (pan x, tilt y in frame sizes per frame, zoom factor, confidence 0..1 — 0: unknown, not
    compensated); ``specks`` (small changed blobs per 10k pixels, share of a 4x4 grid they reach, share of pixels
    changed); ``streaks`` (how line-like the change pattern is 0..1, its angle from vertical in radians); ``flow``
    (how strongly the change pattern repeats the previous one -1..1, and the shift x, y it repeats at, in frame
    sizes per frame); ``extent`` (how far the changed pixels lie from their centre, RMS, frame sizes: small for
    one object, large for change all over; NaN when nothing moved). Left out (synthetic tracks), they read as
    "a still camera, nothing scattered, one compact thing moving".
    """

    times: np.ndarray  # (n,) presentation time of each frame, seconds
    brightness: np.ndarray  # (n,)
    motion: np.ndarray  # (n,)
    centroid: np.ndarray  # (n, 2)
    color: np.ndarray  # (n, 3)
    camera: np.ndarray | None = None  # (n, 4)
    specks: np.ndarray | None = None  # (n, 3)
    streaks: np.ndarray | None = None  # (n, 2)
    flow: np.ndarray | None = None  # (n, 3)
    extent: np.ndarray | None = None  # (n,)

    def __post_init__(self) -> None:
        n = len(self.times)
        if self.camera is None:
            self.camera = np.tile(np.array([0.0, 0.0, 1.0, 1.0]), (n, 1))
        if self.specks is None:
            self.specks = np.zeros((n, 3))
        if self.streaks is None:
            self.streaks = np.zeros((n, 2))
        if self.flow is None:
            self.flow = np.zeros((n, 3))
        if self.extent is None:
            self.extent = np.where(np.isfinite(self.centroid).all(axis=1), 0.05, np.nan) if n else np.zeros(0)

    def slice(self, lo: int, hi: int) -> "FrameFeatures":
        return FrameFeatures(
            self.times[lo:hi], self.brightness[lo:hi], self.motion[lo:hi], self.centroid[lo:hi], self.color[lo:hi],
            self.camera[lo:hi], self.specks[lo:hi], self.streaks[lo:hi], self.flow[lo:hi], self.extent[lo:hi],
        )  # fmt: skip

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
    warnings: list[str] = field(default_factory=list)  # what the user should know (a damaged stream)
