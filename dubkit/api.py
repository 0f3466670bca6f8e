"""The public Python API: ``dub`` a video, ``plan`` it without rendering, ``story`` from text, ``continue_audio``.

``dub`` is the whole data flow in one place: video → scenes → plan → clips → soundtrack → mix → muxed video
(+ deliverables). Each stage is timed; the chosen backends are reported.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import soundfile as sf

from audiostory_core.assemble import Soundtrack, to_samples
from audiostory_core.pipeline import AudioStoryPipeline
from audiostory_core.plan.types import Plan
from audiostory_core.request import Scene, StoryRequest

from .backends import Backends, choose_backends, choose_captioner
from .errors import InputError
from .io import atomic_output, check_input, check_output, read_audio, scratch_file, write_wav
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
    """``<name>.dubbed.<ext>`` in the input's container when dubkit can write it, else Matroska (holds any codec)."""
    from .deliver.mux import audio_codec_for

    p = Path(video)
    try:
        audio_codec_for(p)
        ext = p.suffix
    except KeyError:
        ext = ".mkv"
    return p.with_name(f"{p.stem}.dubbed{ext}")


def _probe(video: Path, stages: _Stages) -> MediaInfo:
    from .video.probe import probe

    with stages.stage("probe", f"probing {video.name}"):
        info = probe(video)
    if info.duration <= 0:
        raise InputError(f"{video}: video has zero duration")
    return info


def _analyse(video: Path, stages: _Stages, *, captioner: str, captions, clip_weights, model, t5, device,
             library: Sequence[str | Path] = (), steps: int | None = None,
             check: Callable[[MediaInfo], None] | None = None):
    """The shared front of ``dub`` and ``plan``: probe (bad input fails here, before any model loads; ``check``
    then vets the output against the stream facts), load backends, one decoding pass, describe every shot."""
    from .video.scan import scan_video

    info = _probe(video, stages)
    if check is not None:
        check(info)
    with stages.stage("load", "loading backends"):
        cap = choose_captioner(captioner, captions=captions, clip_weights=clip_weights, device=device)
        backends = choose_backends(model=model, t5=t5, library=library, device=device, captioner=cap, steps=steps)
    backends.mode = "video"
    stages.say(backends.line())
    with stages.stage("scan", "detecting shots and visual cues (one decoding pass)"):
        scan = scan_video(video, info)
    with stages.stage("caption", f"describing {len(scan.shots)} shots with {cap.name}"):
        scenes = describe_scenes(scan, cap)
    return info, backends, scenes, scan


def plan(
    video: str | Path,
    *,
    captions: str | Path | None = None,
    captioner: str = "auto",
    clip_weights: str | Path | None = None,
    model: str | Path | None = None,
    t5: str | Path | None = None,
    device: str | None = None,
    instruction: str | None = None,
    progress: Progress | None = None,
) -> PlanResult:
    """Scenes and sub-events for ``video`` without rendering anything."""
    video = check_input(video)
    stages = _Stages(progress)
    info, backends, scenes, scan = _analyse(video, stages, captioner=captioner, captions=captions,
                                            clip_weights=clip_weights, model=model, t5=t5, device=device)
    with stages.stage("plan", f"planning with {backends.summary()['planner']}"):
        p = backends.planner.plan(StoryRequest.from_scenes(scenes, info.duration, instruction))
    return PlanResult(p, scenes, scan.shots, info, stages.timings, backends.summary())


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
    t5: str | Path | None = None,
    device: str | None = None,
    steps: int | None = None,
    instruction: str | None = None,
    crossfade: float = 0.25,
    mix: str = "auto",
    duck_db: float = -12.0,
    loudness: float | str | None = -23.0,
    stems: bool = False,
    deliverables: bool = True,
    speech_model: str | Path | None = None,
    progress: Progress | None = None,
) -> DubResult:
    """Give ``video`` a soundtrack and write ``output`` (default ``<name>.dubbed.<ext>``); the input is never modified.

    With no ``model`` everything runs offline on CPU (visual cues, scene planner, foley renderer). Ambience beds
    change at each cut with a short ``crossfade`` (0.25 s: the new scene's sound is at full level within six
    frames of the cut, and the old one does not linger).
    """
    video = check_input(video)
    out = check_output(output or default_output(video), video)
    mix, loudness = _check_finishing(mix, duck_db, loudness)
    stages = _Stages(progress)
    from .deliver.mux import check_container

    info, backends, scenes, scan = _analyse(
        video, stages, captioner=captioner, captions=captions, clip_weights=clip_weights, model=model, t5=t5,
        device=device, library=library, steps=steps, check=lambda i: check_container(out, i.video_codec))
    shots = scan.shots
    total = to_samples(info.duration, MIX_RATE)
    request = StoryRequest.from_scenes(scenes, info.duration, instruction)
    pipe = AudioStoryPipeline(backends.planner, backends.renderer, crossfade=crossfade, sample_rate=MIX_RATE)
    soundtrack = pipe.generate(request, seed=seed, progress=stages.say, total_samples=total)
    stages.timings.update(plan=pipe.timings.plan, render=pipe.timings.render, assemble=pipe.timings.assemble)

    return _finish(video, out, info, shots, scenes, scan, soundtrack, backends, stages,
                   keep_original_audio=keep_original_audio, mix=mix, duck_db=duck_db, loudness=loudness,
                   stems=stems, deliverables=deliverables, speech_model=speech_model)


def _check_finishing(mix: str, duck_db: float, loudness: float | str | None) -> tuple[str, float | None]:
    """Options that would otherwise fail only after the whole render."""
    from .soundtrack.loudness import resolve_target
    from .soundtrack.mix import MIX_MODES

    if mix not in MIX_MODES:
        raise InputError(f"unknown mix mode {mix!r}: use one of {', '.join(MIX_MODES)}")
    if not duck_db <= 0:
        raise InputError(f"--duck-db must be zero or negative (how far the soundtrack dips), got {duck_db:g}")
    return mix, (None if loudness is None else resolve_target(loudness))


def _finish(video, out, info, shots, scenes, scan, soundtrack, backends: Backends, stages: _Stages, *,
            keep_original_audio, mix, duck_db, loudness, stems, deliverables, speech_model) -> DubResult:
    """Mix with the original audio, normalise, write deliverables, then the video (last: its appearance means done)."""
    from .deliver.mux import mux
    from .deliver.sync import original_audio
    from .soundtrack.master import master_soundtrack

    total = soundtrack.audio.shape[-1]
    original = None
    if info.has_audio:
        with stages.stage("read_original", "reading the original audio"):
            original = original_audio(video, info, MIX_RATE, total)
    elif mix in ("under", "duck"):
        stages.say(f"the video has no audio track: --mix {mix} falls back to replace")
        mix = "replace"
    stages.say(f"mixing ({mix})" + (f", loudness {loudness:g} LUFS / -1 dBTP" if loudness is not None else ""))
    mastered = master_soundtrack(soundtrack.audio, original, MIX_RATE, mode=mix, duck_db=duck_db, loudness=loudness,
                                 speech_model=speech_model)
    stages.timings.update(mastered.timings)
    package = None
    # The video is muxed under a temporary name, the deliverables are written, and only then is the video renamed
    # into place: a failure anywhere leaves neither a video nor a half-new package behind.
    with atomic_output(out) as tmp_video:
        with stages.stage("mux", f"muxing {out.name} (video stream copied)"):
            with scratch_file(out.parent, ".wav") as wav:
                sf.write(str(wav), np.ascontiguousarray(mastered.audio.T), MIX_RATE, subtype="PCM_24")
                mux(video, wav, tmp_video, keep_original_audio=keep_original_audio and info.has_audio,
                    info=info, say=stages.say, atomic=False, container=out.suffix)
        if deliverables or stems:
            from .deliver.package import write_deliverables

            name = out.stem.removesuffix(".dubbed")
            with stages.stage("deliverables", f"writing {name}.dubkit/ (timeline, captions, report{', stems' if stems else ''})"):
                # One thumbnail per shot (its middle keyframe), drawn from the shot's first frame on the time axis.
                thumbs = [(shot.start, fr.keyframes[len(fr.keyframes) // 2])
                          for shot, fr in zip(shots, scan.frames) if fr.keyframes]
                package = write_deliverables(
                    out.parent, name, video_path=out, video_duration=info.duration, fps=info.fps or 24.0,
                    plan=soundtrack.plan, cuts=[s.start for s in shots[1:]], mix=mastered.mix,
                    final_audio=mastered.audio, loudness=mastered.loudness,
                    soundtrack_stems=soundtrack.stems if stems else None, thumbnails=thumbs,
                    backends=backends.summary(), timings=dict(stages.timings), speech=mastered.speech,
                ).folder
    if keep_original_audio and not info.has_audio:
        stages.say("the video has no audio track: nothing to keep as a second track")
    loud = mastered.loudness.to_dict() if mastered.loudness is not None else None
    return DubResult(out, soundtrack.plan, scenes, shots, info, stages.timings, backends.summary(), package,
                     loud, mastered.mix.mode, mastered.speech)


def story(
    instruction: str,
    duration: float,
    output: str | Path | None = None,
    *,
    model: str | Path | None = None,
    t5: str | Path | None = None,
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
    backends = choose_backends(model=model, t5=t5, library=library, device=device, steps=steps)
    backends.mode = "text"
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
    t5: str | Path | None = None,
    library: Sequence[str | Path] = (),
    seed: int = 0,
    device: str | None = None,
    steps: int | None = None,
    progress: Progress | None = None,
) -> AudioResult:
    """Continue an audio clip for ``duration`` seconds; with ``include_input`` the output starts with the input,
    sample for sample. Offline: matched sounds from the foley bank; with ``model``: the input enters the LLM
    through its audio encoder and the DiT renders the continuation. Either way the seam is level-matched and
    crossfaded from the input's tail."""
    from audiostory_core.continuation import continue_audio as continue_core

    path = check_input(audio_path)
    if output is not None:
        check_output(output, path)
    stages = _Stages(progress)
    with stages.stage("read", f"reading {path.name}"):
        audio, sr = load_audio(path)
    renderer = planner = None
    backends: dict[str, str] = {"planner": "continuation (audio analysis)", "renderer": "foley bank"}
    if model is not None or library:
        chosen = choose_backends(model=model, t5=t5, library=library, device=device, steps=steps)
        renderer = chosen.renderer
        backends = chosen.summary()
        if model is not None:
            planner = chosen.planner
    stages.say("backends: " + ", ".join(f"{k}={v}" for k, v in backends.items()))
    with stages.stage("render", f"continuing for {duration:g} s"):
        if planner is not None:  # AudioStory: the audio prompt goes through the LLM's audio encoder
            from audiostory_core.continuation import join_continuation

            request = StoryRequest.from_audio(audio, sr, duration, instruction)
            pipe = AudioStoryPipeline(planner, renderer, crossfade=min(3.0, duration / 4))
            generated = pipe.generate(request, seed=seed, progress=stages.say)
            joined = join_continuation(audio, sr, generated.audio, generated.sample_rate, include_input=include_input)
            track = Soundtrack(joined, sr, generated.plan)
        else:
            res = continue_core(audio, sr, duration, instruction=instruction, seed=seed,
                                include_input=include_input, renderer=renderer)
            track = Soundtrack(res.audio, res.sample_rate, res.plan)
    if output is not None:
        with stages.stage("write", f"writing {Path(output).name}"):
            write_wav(output, track.audio, track.sample_rate, subtype=_wav_subtype(path))
    return AudioResult(Path(output) if output else None, track, stages.timings, backends)


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """Audio at its own rate and channels: WAV/FLAC/OGG through soundfile (exact samples), anything else via ffmpeg."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        if data.shape[0] == 0:
            raise InputError(f"{path}: audio file has no samples")
        return data.T.copy(), int(sr)
    except sf.LibsndfileError:
        import ffmpeg

        try:
            streams = ffmpeg.probe(str(path)).get("streams", [])
        except ffmpeg.Error:
            raise InputError(f"{path}: not a readable audio or media file") from None
        a = next((st for st in streams if st.get("codec_type") == "audio"), None)
        if a is None:
            raise InputError(f"{path}: has no audio stream to continue") from None
        rate, channels = int(a.get("sample_rate") or MIX_RATE), int(a.get("channels") or 2)
        return read_audio(path, rate, channels), rate


def _wav_subtype(source: Path) -> str:
    # Keep the input's precision so --include-input reproduces its samples exactly.
    try:
        sub = sf.info(str(source)).subtype
        return sub if sub in ("PCM_16", "PCM_24", "PCM_32", "FLOAT") else "PCM_24"
    except Exception:  # noqa: BLE001 - not a soundfile format: 24-bit is the delivery default
        return "PCM_24"
