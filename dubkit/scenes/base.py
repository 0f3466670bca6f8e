"""The captioner seam: ``Captioner.describe(frames, shot) -> Scene``.

Like PySceneDetect's detectors, a captioner is a small object with one job; ``describe_scenes`` runs one over
every shot of a scan.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from audiostory_core.request import Scene

from ..video.types import Shot, ShotFrames, VideoScan


@runtime_checkable
class Captioner(Protocol):
    name: str

    def describe(self, frames: ShotFrames, shot: Shot) -> Scene: ...


DEFAULT_KEYFRAME_WIDTH = 320  # pixels: enough for the thumbnails and the visual cues


def keyframe_width(captioner: Captioner | None) -> int:
    """How wide the scan should keep keyframes for ``captioner``: an image tagger names more at a higher width
    (its class says so with a ``keyframe_width`` attribute), the others need only the default."""
    return int(getattr(captioner, "keyframe_width", DEFAULT_KEYFRAME_WIDTH))


def describe_scenes(scan: VideoScan, captioner: Captioner) -> list[Scene]:
    """One Scene per shot, in order, with the shot's exact times and its look (``Scene.features``: brightness,
    motion, saturation, warmth, cartoon) measured whatever the captioner."""
    from .look import shot_look

    scenes = []
    for shot, frames in zip(scan.shots, scan.frames):
        scene = captioner.describe(frames, shot)
        scene.start, scene.end = shot.start, shot.end
        scene.features = {**shot_look(frames), **scene.features}
        scenes.append(scene)
    return scenes
