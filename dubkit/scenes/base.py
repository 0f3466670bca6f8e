"""The captioner seam: ``Captioner.describe(frames, shot) -> Scene``.

Like PySceneDetect's detectors, a captioner is a small object with one job; ``describe_scenes`` runs one over
every shot of a scan.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from audiostory_core.request import Scene

from ..video.early import KEYFRAME_WIDTH
from ..video.types import Shot, ShotFrames, VideoScan


@runtime_checkable
class Captioner(Protocol):
    name: str

    def describe(self, frames: ShotFrames, shot: Shot) -> Scene: ...


DEFAULT_KEYFRAME_WIDTH = KEYFRAME_WIDTH  # pixels: enough for the thumbnails and the visual cues


def keyframe_width(captioner: Captioner | None) -> int:
    """How wide the scan should keep keyframes for ``captioner``: an image tagger names more at a higher width
    (its class says so with a ``keyframe_width`` attribute), the others need only the default."""
    return int(getattr(captioner, "keyframe_width", DEFAULT_KEYFRAME_WIDTH))


def describe_scenes(scan: VideoScan, captioner: Captioner) -> list[Scene]:
    """One Scene per shot, in order, with the shot's exact times and its look (``Scene.features``: brightness,
    motion, saturation, warmth, cartoon) measured whatever the captioner."""
    return [describe_shot(captioner, shot, frames) for shot, frames in zip(scan.shots, scan.frames)]


def describe_shot(captioner: Captioner, shot: Shot, frames: ShotFrames) -> Scene:
    """The Scene of one shot (see ``describe_scenes``)."""
    from .look import shot_look

    scene = captioner.describe(frames, shot)
    scene.start, scene.end = shot.start, shot.end
    scene.features = {**shot_look(frames), **scene.features}
    return scene


class ShotDescriber:
    """Describes shots in a worker thread as the scan hands them over (``submit``, its ``on_shot``), so the
    captioner runs while the video is still being decoded; ``scenes(scan)`` then waits for them, in order, and
    describes again any shot the finished scan drew differently (a cut confirmed late). Use as a context
    manager: leaving it early (the scan failed) drops what is still queued."""

    def __init__(self, captioner: Captioner) -> None:
        self.captioner = captioner
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dubkit-caption")
        self._early: list[tuple[Shot, Future]] = []

    def submit(self, shot: Shot, frames: ShotFrames) -> None:
        self._early.append((shot, self._pool.submit(describe_shot, self.captioner, shot, frames)))

    def scenes(self, scan: VideoScan) -> list[Scene]:
        scenes = []
        for k, (shot, frames) in enumerate(zip(scan.shots, scan.frames)):
            early = self._early[k] if k < len(self._early) else None
            same = early is not None and (early[0].start_frame, early[0].end_frame) == (shot.start_frame, shot.end_frame)
            scenes.append(early[1].result() if same else describe_shot(self.captioner, shot, frames))
        return scenes

    def __enter__(self) -> "ShotDescriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
