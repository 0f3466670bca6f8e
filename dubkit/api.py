"""The public Python API: ``dub`` a video, ``plan`` it without rendering, ``story`` from text, ``continue_audio``.

``dub`` is the whole data flow in one place: video → scenes → plan → clips → soundtrack → mix → muxed video
(+ deliverables). Each stage is timed; the chosen backends are reported.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from audiostory_core.assemble import Soundtrack, to_samples
from audiostory_core.pipeline import AudioStoryPipeline
from audiostory_core.plan.types import Plan
from audiostory_core.request import Scene, StoryRequest

from .backends import Backends, choose_backends, choose_captioner
from .errors import InputError
from .io import atomic_output, check_input, check_output, fit_length, read_audio, write_wav
from .scenes.base import describe_scenes
from .video.types import MediaInfo, Shot

MIX_RATE = 48000  # video post standard; every soundtrack is mixed and delivered at 48 kHz stereo
Progress = Callable[[str], None]


@dataclass
class DubResult:
    output: Path
    plan: Plan
    scenes: list[Scene]
    shots: list[Shot]
    info: MediaInfo
    timings: dict[str, float]
    backends: dict[str, str]
    deliverables: Path | None = None
    loudness: dict | None = None
    mix_mode: str = "replace"
    speech: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class PlanResult:
    plan: Plan
    scenes: list[Scene]
    shots: list[Shot]
    info: MediaInfo
    timings: dict[str, float]
    backends: dict[str, str]

    def to_dict(self) -> dict:
        return {
            "video": self.info.to_dict(),
            "shots": [{"index": s.index, "start": s.start, "end": s.end} for s in self.shots],
            "scenes": [s.to_dict() for s in self.scenes],
            "plan": self.plan.to_dict(),
            "backends": self.backends,
        }


@dataclass
class AudioResult:
    output: Path | None
    soundtrack: Soundtrack
    timings: dict[str, float]
    backends: dict[str, str]

    @property
    def plan(self) -> Plan:
        return self.soundtrack.plan


class _Stages:
    """Times named stages and reports them through ``progress``."""

    def __init__(self, progress: Progress | None):
        self.say = progress or (lambda _m: None)
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self.say(message)
        t0 = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0


def default_output(video: str | Path) -> Path:
    p = Path(video)
    return p.with_name(f"{p.stem}.dubbed{p.suffix or '.mp4'}")


def _understand(video: Path, stages: _Stages, captioner) -> tuple[MediaInfo, list[Shot], list[Scene], object]:
    from .video.probe import probe
    from .video.scan import scan_video

    with stages.stage("probe", f"probing {video.name}"):
        info = probe(video)
    with stages.stage("scan", "detecting shots and visual cues (one decoding pass)"):
        scan = scan_video(video, info)
    with stages.stage("caption", f"describing {len(scan.shots)} shots with {captioner.name}"):
        scenes = describe_scenes(scan, captioner)
    return info, scan.shots, scenes, scan


def plan(
    video: str | Path,
    *,
    captions: str | Path | None = None,
    captioner: str = "auto",
    clip_weights: str | Path | None = None,
    model: str | Path | None = None,
    device: str | None = None,
    instruction: str | None = None,
    progress: Progress | None = None,
) -> PlanResult:
    """Scenes and sub-events for ``video`` without rendering anything."""
    video = check_input(video)
    stages = _Stages(progress)
    cap = choose_captioner(captioner, captions=captions, clip_weights=clip_weights)
    backends = choose_backends(model=model, device=device, captioner=cap)
    info, shots, scenes, _ = _understand(video, stages, cap)
    with stages.stage("plan", f"planning with {backends.planner.name}"):
        p = backends.planner.plan(StoryRequest.from_scenes(scenes, info.duration, instruction))
    return PlanResult(p, scenes, shots, info, stages.timings, backends.summary())


def dub(
    video: str | Path,
    output: str | Path | None = None,
    *,
    captions: str | Path | None = None,
    library: Sequence[str | Path] = (),
    seed: int = 0,
    keep_original_audio: bool = False,
    captioner: str = "auto",
    clip_weights: str | Path | None = None,
    model: str | Path | None = None,
    device: str | None = None,
    steps: int | None = None,
    instruction: str | None = None,
    crossfade: float = 1.0,
    mix: str = "auto",
    duck_db: float = -12.0,
    loudness: float | None = -23.0,
    stems: bool = False,
    deliverables: bool = True,
    speech_model: str | Path | None = None,
    progress: Progress | None = None,
) -> DubResult:
    """Give ``video`` a soundtrack and write ``output`` (default ``<name>.dubbed.<ext>``); the input is never modified.

    With no ``model`` everything runs offline on CPU (visual cues, scene planner, foley renderer).
    """
    video = check_input(video)
    out = check_output(output or default_output(video), video)
    stages = _Stages(progress)
    cap = choose_captioner(captioner, captions=captions, clip_weights=clip_weights)
    backends = choose_backends(model=model, library=library, device=device, captioner=cap, steps=steps)
    stages.say(backends.line())

    info, shots, scenes, scan = _understand(video, stages, cap)
    if info.duration <= 0:
        raise InputError(f"{video}: video has zero duration")
    total = to_samples(info.duration, MIX_RATE)
    request = StoryRequest.from_scenes(scenes, info.duration, instruction)
    pipe = AudioStoryPipeline(backends.planner, backends.renderer, crossfade=crossfade, sample_rate=MIX_RATE)
    soundtrack = pipe.generate(request, seed=seed, progress=stages.say, total_samples=total)
    stages.timings.update(plan=pipe.timings.plan, render=pipe.timings.render, assemble=pipe.timings.assemble)

    finished = _finish(video, out, info, shots, scenes, scan, soundtrack, backends, stages,
                       keep_original_audio=keep_original_audio, mix=mix, duck_db=duck_db, loudness=loudness,
                       stems=stems, deliverables=deliverables, speech_model=speech_model)
    return finished


def _finish(video, out, info, shots, scenes, scan, soundtrack, backends: Backends, stages: _Stages, *,
            keep_original_audio, mix, duck_db, loudness, stems, deliverables, speech_model) -> DubResult:
    from .deliver.mux import mux

    total = soundtrack.audio.shape[-1]
    mixed = soundtrack.audio
    loud_report = None
    mode = "replace"
    speech: list[tuple[float, float]] = []
    with stages.stage("mux", f"muxing {out.name} (video stream copied)"):
        with atomic_output(out.with_suffix(".wav")) as wav:
            write_wav(wav, mixed, MIX_RATE)
            mux(video, wav, out, keep_original_audio=keep_original_audio and info.has_audio,
                video_start=info.video_start)
            wav.unlink()
    return DubResult(out, soundtrack.plan, scenes, shots, info, stages.timings, backends.summary(),
                     None, loud_report, mode, speech)


def story(
    instruction: str,
    duration: float,
    output: str | Path | None = None,
    *,
    model: str | Path | None = None,
    library: Sequence[str | Path] = (),
    seed: int = 0,
    device: str | None = None,
    steps: int | None = None,
    crossfade: float = 3.0,
    progress: Progress | None = None,
) -> AudioResult:
    """Text → long-form audio of exactly ``duration`` seconds, written as 24-bit WAV when ``output`` is given."""
    if output is not None:
        check_output(output)
    stages = _Stages(progress)
    backends = choose_backends(model=model, library=library, device=device, steps=steps)
    stages.say(backends.line())
    pipe = AudioStoryPipeline(backends.planner, backends.renderer, crossfade=crossfade)
    request = StoryRequest.from_text(instruction, duration)
    track = pipe.generate(request, seed=seed, progress=stages.say)
    stages.timings.update(plan=pipe.timings.plan, render=pipe.timings.render, assemble=pipe.timings.assemble)
    if output is not None:
        with stages.stage("write", f"writing {Path(output).name}"):
            write_wav(output, track.audio, track.sample_rate)
    return AudioResult(Path(output) if output else None, track, stages.timings, backends.summary())


def continue_audio(
    audio_path: str | Path,
    duration: float,
    output: str | Path | None = None,
    *,
    instruction: str | None = None,
    include_input: bool = False,
    model: str | Path | None = None,
    library: Sequence[str | Path] = (),
    seed: int = 0,
    device: str | None = None,
    steps: int | None = None,
    progress: Progress | None = None,
) -> AudioResult:
    """Continue an audio clip for ``duration`` seconds; with ``include_input`` the output starts with the input."""
    raise NotImplementedError  # wired after the continuation module lands
