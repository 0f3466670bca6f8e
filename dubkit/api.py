"""The public Python API: ``dub`` a video, ``plan`` it without rendering, ``story`` from text, ``continue_audio``.

``dub`` is the whole data flow in one place: video → scenes → plan → clips → soundtrack → mix → muxed video
(+ deliverables). Each stage is timed; the chosen backends are reported.

Options come grouped (``ModelOptions``, ``CaptionOptions``, ``MusicOptions``, ``FinishingOptions`` in
``dubkit.options``) or as
their flat field names (``dub(video, mix="duck", loudness=-14)``). ``backends=`` takes what
``dubkit.backends.build_backends`` loaded, so many calls share one set of models.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import soundfile as sf

from audiostory_core.assemble import Soundtrack, to_samples
from audiostory_core.pipeline import AudioStoryPipeline
from audiostory_core.plan.base import Planner
from audiostory_core.plan.types import Plan
from audiostory_core.request import Scene, StoryRequest
from audiostory_core.tracks import Track, TrackStore

from .backends import Backends, build_backends, with_shot_list
from .deliver.package import Deliverables
from .errors import InputError
from .deliver.space import check_dub_space
from .heap import keep_large_buffers_out_of_the_heap
from .io import (WavTrack, atomic_output, check_input, check_output, decode_audio, decode_audio_into,
                 no_space_named, scratch_file, write_wav)
from .options import (CROSSFADE_SECONDS, SEEDS, STORY_SECONDS, CaptionOptions, FinishingOptions, MixMode,
                      ModelOptions, MusicOptions, apply_keywords, check_range)
from .scenes.base import ShotDescriber, keyframe_width
from .soundtrack.loudness import LoudnessReport
from .soundtrack.master import Mastered
from .video.types import MediaInfo, Shot, VideoScan

if TYPE_CHECKING:  # imported where a dub muxes (ffmpeg's wrapper stays out of plan/story)
    from .deliver.mux import MuxStream
    from .video.early import EarlyStart

MIX_RATE = 48000  # video post standard; every soundtrack is mixed and delivered at 48 kHz stereo
keep_large_buffers_out_of_the_heap()  # memory flat in the video's length: see dubkit.heap
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
    deliverables: Deliverables | None = None
    loudness: LoudnessReport | None = None  # None when loudness normalisation was off
    mix_mode: MixMode = "replace"
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
        from audiostory_core.plan.io import PLAN_FILE_VERSION

        return {
            "version": PLAN_FILE_VERSION,  # `dub --plan` checks it
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
    credits: Path | None = None  # <output name>.dubkit/credits.txt beside the output (every library clip heard)
    licences: Path | None = None  # licences.json beside it

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


def _probe(video: Path, stages: _Stages, early: EarlyStart | None = None) -> MediaInfo:
    from .video.probe import probe

    with stages.stage("probe", f"probing {video.name}"):
        info = early.info if early is not None and early.path == str(video) else probe(video)
    if info.duration <= 0:
        raise InputError(f"{video}: video has zero duration")
    return info


def _backends(stages: _Stages, backends: Backends | None, models: ModelOptions | None,
              captioning: CaptionOptions | None = None, music: MusicOptions | None = None) -> Backends:
    """The given backends (checked against any model, caption or music options also given), or new ones, loaded
    as the "load" stage."""
    if backends is None:
        with stages.stage("load", "loading backends"):
            backends = build_backends(models, captioning, music)
    else:
        backends.check_built_from(models, captioning, music)
    return backends


@dataclass
class _Seen:
    """What the front of ``dub`` and ``plan`` found in the video (and heard in its audio)."""

    info: MediaInfo
    scan: VideoScan
    scenes: list[Scene]
    summary: dict[str, str]  # the backends by name, with the captioner that described the shots
    original: Track | None = None  # the video's own audio at MIX_RATE on the video's clock (None: no audio)
    speech: list[tuple[float, float]] | None = None  # its speech regions, when the mix or the music needs them


def _analyse(video: Path, stages: _Stages, backends: Backends | None, models: ModelOptions | None,
             captioning: CaptionOptions | None, music: MusicOptions | None, captions: str | Path | None,
             check: Callable[[MediaInfo], None] | None = None,
             early: EarlyStart | None = None) -> tuple[Backends, _Seen]:
    """The shared front of ``dub`` and ``plan``: probe (bad input fails here, before any model loads; ``check``
    then vets the output against the stream facts), backends, one decoding pass (``early``: begun already),
    describe every shot."""
    from .video.scan import scan_video

    info = _probe(video, stages, early)
    if check is not None:
        check(info)
    backends = _backends(stages, backends, models, captioning, music)
    if backends.captioner is None:  # built on the first video run of these backends, then kept
        with stages.stage("load", "loading the captioner"):
            backends.video_captioner()
    captioner = with_shot_list(backends.video_captioner(), captions)
    stages.say(backends.line("video", captioner))
    # Each shot is described as soon as the scan has it, while the decoding goes on ("caption" times the rest).
    with ShotDescriber(captioner) as describer:
        with stages.stage("scan", f"detecting shots and visual cues (one decoding pass), describing them with "
                                  f"{captioner.name}"):
            scan = scan_video(video, info, keyframe_width=keyframe_width(captioner), on_shot=describer.submit,
                              early=early)
        for warning in scan.warnings:
            stages.say(f"warning: {warning}")
        with stages.stage("caption", f"described {len(scan.shots)} shots with {captioner.name}"):
            scenes = describer.scenes(scan)
    return backends, _Seen(info, scan, scenes, backends.summary("video", captioner))


def _listen(video: Path, seen: _Seen, backends: Backends, stages: _Stages, *, mix: MixMode | None,
            speech_model: Path | None = None, store: TrackStore | None = None) -> None:
    """Decode the original audio once, on the video's clock (into a ``store`` track: block by block, never whole
    in memory), and find its speech when the ``mix`` (auto, duck) or the music needs it: "auto" music leaves
    live-action dialogue scenes alone, so each scene learns its share of speech before planning. The mix reuses
    both; ``mix=None``: no mix follows (``plan``)."""
    from .scenes.look import mark_speech
    from .soundtrack.master import find_speech

    info = seen.info
    music_auto = backends.music.music == "auto"
    if not info.has_audio or (mix is None and not music_auto):
        return
    samples = to_samples(info.duration, MIX_RATE)
    with stages.stage("read_original", "reading the original audio"):
        seen.original = decode_audio_into((store or TrackStore()).new("original", 2, samples), video, MIX_RATE,
                                          shift=to_samples(info.audio_start - info.video_start, MIX_RATE))
    if mix in ("auto", "duck") or music_auto:
        with stages.stage("speech", "finding speech in the original audio"):
            seen.speech = find_speech(seen.original, MIX_RATE, speech_model)
    if music_auto:
        mark_speech(seen.scenes, seen.speech or [])


def _generate(backends: Backends, request: StoryRequest, stages: _Stages, *, seed: int, crossfade: float,
              sample_rate: int | None = None, total_samples: int | None = None,
              planner: Planner | None = None, store: TrackStore | None = None) -> Soundtrack:
    """Plan (with ``planner``, else the backends' own), render and assemble through the pipeline, timed (into
    ``store``'s tracks if given)."""
    pipe = AudioStoryPipeline(planner or backends.planner, backends.renderer, crossfade=crossfade,
                              sample_rate=sample_rate)
    track = pipe.generate(request, seed=seed, progress=stages.say, total_samples=total_samples, store=store)
    stages.timings.update(plan=pipe.timings.plan, render=pipe.timings.render, assemble=pipe.timings.assemble)
    return track


def plan(
    video: str | Path,
    *,
    captions: str | Path | None = None,
    instruction: str | None = None,
    models: ModelOptions | None = None,
    captioning: CaptionOptions | None = None,
    scoring: MusicOptions | None = None,
    backends: Backends | None = None,
    progress: Progress | None = None,
    **keywords: Any,
) -> PlanResult:
    """Scenes and sub-events for ``video`` without rendering anything, as ``dub`` plans them (with "auto" music
    the original audio is searched for speech too). ``captions``: your shot list for it."""
    video = check_input(video)
    models, captioning, music = apply_keywords(
        "plan", keywords, [(ModelOptions, models), (CaptionOptions, captioning), (MusicOptions, scoring)])
    stages = _Stages(progress)
    backends, seen = _analyse(video, stages, backends, models, captioning, music, captions)
    _listen(video, seen, backends, stages, mix=None)
    with stages.stage("plan", f"planning with {seen.summary['planner']}"):
        p = backends.planner.plan(StoryRequest.from_scenes(seen.scenes, seen.info.duration, instruction))
    return PlanResult(p, seen.scenes, seen.scan.shots, seen.info, stages.timings, seen.summary)


def dub(
    video: str | Path,
    output: str | Path | None = None,
    *,
    captions: str | Path | None = None,
    seed: int = 0,
    instruction: str | None = None,
    crossfade: float = 0.25,
    models: ModelOptions | None = None,
    captioning: CaptionOptions | None = None,
    scoring: MusicOptions | None = None,
    finishing: FinishingOptions | None = None,
    backends: Backends | None = None,
    progress: Progress | None = None,
    plan_file: str | Path | None = None,
    early: EarlyStart | None = None,
    **keywords: Any,
) -> DubResult:
    """Give ``video`` a soundtrack and write ``output`` (default ``<name>.dubbed.<ext>``); the input is never modified.

    With no model everything runs offline on CPU (visual cues, scene planner, foley renderer, and the composer
    for the score: by default ``music="auto"`` scores cartoons and live-action scenes without dialogue). Ambience
    beds change at each cut with a short ``crossfade`` (0.25 s: the new scene's sound is at full level within
    six frames of the cut, and the old one does not linger). ``captions`` is your shot list for this video;
    ``keywords`` are fields of the option groups by name (``mix="duck"``, ``loudness=-14``, ``model=DIR``).
    ``plan_file``: an edited ``dubkit plan`` file, rendered as given instead of planning (validated first).
    ``early``: the scan's decoding of ``video``, started while the caller got ready (``dubkit.video.early``):
    the scan takes it over if it matches; the caller closes it (``with``) in case nothing did.
    """
    from .deliver.mux import check_container

    check_range("seed", seed, *SEEDS, integer=True)
    check_range("crossfade", crossfade, *CROSSFADE_SECONDS, " s")
    video = check_input(video)
    out = check_output(output or default_output(video), video)
    models, captioning, music, finishing = apply_keywords(
        "dub", keywords, [(ModelOptions, models), (CaptionOptions, captioning), (MusicOptions, scoring),
                          (FinishingOptions, finishing)])
    finishing = finishing or FinishingOptions()
    stages = _Stages(progress)

    def vet(info: MediaInfo) -> None:  # before any model loads: the container, and room on the output's disk
        check_container(out, info.video_codec)
        check_dub_space(out, video, info, finishing)

    backends, seen = _analyse(video, stages, backends, models, captioning, music, captions, check=vet, early=early)
    planner = backends.planner
    if plan_file is not None:  # an edited plan is rendered as given (per call: the backends stay as built)
        from audiostory_core.plan.io import FixedPlanner, load_plan

        planner = FixedPlanner(load_plan(plan_file, duration=seen.info.duration))
    request = StoryRequest.from_scenes(seen.scenes, seen.info.duration, instruction)
    # The soundtrack's layers and the original audio live in scratch files beside the output, worked on block by
    # block: memory stays flat whatever the video's length. The files go when the dub ends, however it ends.
    with no_space_named(out.parent, f"dubbing {video.name}"), TrackStore(out.parent) as store:
        _listen(video, seen, backends, stages, mix=finishing.mix, speech_model=finishing.speech_model, store=store)
        soundtrack = _generate(backends, request, stages, seed=seed, crossfade=crossfade, sample_rate=MIX_RATE,
                               total_samples=to_samples(seen.info.duration, MIX_RATE), planner=planner, store=store)
        return _finish(video, out, seen, soundtrack, backends, stages, finishing)


def _finish(video: Path, out: Path, seen: _Seen, soundtrack: Soundtrack, backends: Backends, stages: _Stages,
            finishing: FinishingOptions) -> DubResult:
    """Mix with the original audio, normalise, write deliverables, then the video (last: its appearance means done)."""
    info = seen.info
    package = None
    # The video is muxed under a temporary name, its soundtrack encoded as the mastering writes it (ffmpeg's own
    # process, beside it), then checked while the deliverables are written; only once both are done is the
    # video renamed into place: any failure leaves no new video, and the package is whole or absent (written
    # apart, and renamed over an older one only once the mux has succeeded).
    with scratch_file(out.parent, ".wav") as wav_path, atomic_output(out) as tmp_video:
        wav = WavTrack(wav_path, 2, soundtrack.audio.shape[-1], MIX_RATE)
        try:
            muxing = _start_mux(video, out, tmp_video, info, stages, finishing.keep_original_audio)
            wav.copy_to = muxing.stream.write
            try:
                mastered = _master(seen, soundtrack, stages, finishing, wav)
            except BaseException:
                muxing.stream.abort()
                raise
            if finishing.deliverables or finishing.stems:
                with ThreadPoolExecutor(1, thread_name_prefix="dubkit-mux") as pool:
                    muxed = pool.submit(muxing.finish_and_verify)
                    # The package replaces an older one only once the mux has succeeded (its error raised).
                    package = _deliver(out, seen, soundtrack, mastered, backends, stages, stems=finishing.stems,
                                       ready=muxed.result)
            else:
                muxing.finish_and_verify()
        finally:
            wav.close()
    if finishing.keep_original_audio and not info.has_audio:
        stages.say("the video has no audio track: nothing to keep as a second track")
    return DubResult(out, soundtrack.plan, seen.scenes, seen.scan.shots, info, stages.timings,
                     seen.summary, package, mastered.loudness, mastered.mix.mode, mastered.speech)


def _master(seen: _Seen, soundtrack: Soundtrack, stages: _Stages, finishing: FinishingOptions,
            out: WavTrack) -> Mastered:
    """The soundtrack against the original audio (decoded and searched for speech before planning, see
    ``_listen``): mixed, then brought to loudness, into ``out``."""
    from .soundtrack.master import master_soundtrack

    mix, loudness = finishing.mix, finishing.loudness
    if seen.original is None and mix in ("under", "duck"):
        stages.say(f"the video has no audio track: `mix` {mix!r} falls back to 'replace'")
        mix = "replace"
    stages.say(f"mixing ({mix})" + (f", loudness {loudness:g} LUFS / -1 dBTP" if loudness is not None else ""))
    mastered = master_soundtrack(soundtrack.audio, seen.original, MIX_RATE, mode=mix, duck_db=finishing.duck_db,
                                 loudness=loudness, speech_model=finishing.speech_model,
                                 speech=seen.speech if seen.original is not None else None, out=out)
    out.finish()
    stages.timings.update(mastered.timings)
    return mastered


@dataclass
class _Muxing:
    """A mux under way (``MuxStream``), timed as the "mux" stage from its start to its check."""

    stream: MuxStream
    tmp_video: Path
    out: Path
    info: MediaInfo
    audio_streams: int
    stages: _Stages
    started: float

    def finish_and_verify(self) -> None:
        from .deliver.mux import verify_muxed

        self.stream.finish()
        verify_muxed(self.tmp_video, self.info, audio_streams=self.audio_streams, shown_as=self.out)
        self.stages.timings["mux"] = time.perf_counter() - self.started


def _start_mux(video: Path, out: Path, tmp_video: Path, info: MediaInfo, stages: _Stages,
               keep_original_audio: bool) -> _Muxing:
    from .deliver.mux import MuxStream

    keep = keep_original_audio and info.has_audio
    stages.say(f"muxing {out.name} (video stream copied) as the soundtrack is mastered")
    t0 = time.perf_counter()
    stream = MuxStream(video, tmp_video, info=info, sample_rate=MIX_RATE, channels=2, keep_original_audio=keep,
                       container=out.suffix, say=stages.say)
    return _Muxing(stream, tmp_video, out, info, _audio_streams(info, keep), stages, t0)


def _audio_streams(info: MediaInfo, keep: bool) -> int:
    """Audio streams the muxed file must hold: the soundtrack, and every original track when they are kept."""
    return 1 + (sum(st.get("codec_type") == "audio" for st in info.streams) if keep else 0)


def _deliver(out: Path, seen: _Seen, soundtrack: Soundtrack, mastered: Mastered, backends: Backends,
             stages: _Stages, *, stems: bool, ready: Callable[[], object] | None = None) -> Deliverables:
    from .deliver.package import Picture, package_folder, write_deliverables

    name, package = out.stem.removesuffix(".dubbed"), package_folder(out).name
    shots = seen.scan.shots
    with stages.stage("deliverables", f"writing {package}/ (timeline, captions, report{', stems' if stems else ''})"):
        # One thumbnail per shot (its middle keyframe), drawn from the shot's first frame on the time axis.
        thumbs = [(shot.start, fr.keyframes[len(fr.keyframes) // 2])
                  for shot, fr in zip(shots, seen.scan.frames) if fr.keyframes]
        picture = Picture(out, seen.info.duration, seen.info.fps or 24.0, [s.start for s in shots[1:]], thumbs)
        return write_deliverables(out.parent, name, package=package, picture=picture, plan=soundtrack.plan, mastered=mastered,
                                  stems=soundtrack.stems if stems else None, backends=seen.summary,
                                  timings=dict(stages.timings), clips=soundtrack.clips, ready=ready)


def story(
    instruction: str,
    duration: float,
    output: str | Path | None = None,
    *,
    seed: int = 0,
    crossfade: float = 3.0,
    models: ModelOptions | None = None,
    scoring: MusicOptions | None = None,
    backends: Backends | None = None,
    progress: Progress | None = None,
    **keywords: Any,
) -> AudioResult:
    """Text → long-form audio of exactly ``duration`` seconds, written as 24-bit WAV when ``output`` is given.
    With ``music="auto"`` the clauses that ask for music ("playful orchestral music, then rain") are composed."""
    check_range("duration", duration, *STORY_SECONDS, " s", above_low=True)
    check_range("seed", seed, *SEEDS, integer=True)
    check_range("crossfade", crossfade, *CROSSFADE_SECONDS, " s")
    if output is not None:
        check_output(output)
    models, music = apply_keywords("story", keywords, [(ModelOptions, models), (MusicOptions, scoring)])
    stages = _Stages(progress)
    backends = _backends(stages, backends, models, None, music)
    stages.say(backends.line("text"))
    track = _generate(backends, StoryRequest.from_text(instruction, duration), stages, seed=seed, crossfade=crossfade)
    credits = _write_audio(output, track, stages)
    return AudioResult(Path(output) if output else None, track, stages.timings, backends.summary("text"), *credits)


def _write_audio(output: str | Path | None, track: Soundtrack, stages: _Stages, subtype: str = "PCM_24"
                 ) -> tuple[Path | None, Path | None]:
    """The credits (``<output name>.dubkit/``), then the WAV (last: its appearance means done); both atomic."""
    if output is None:
        return None, None
    from .deliver.package import credits_folder, write_audio_credits

    with stages.stage("write", f"writing {Path(output).name} and {credits_folder(output).name}/credits.txt"):
        credits = write_audio_credits(output, track.clips)
        write_wav(output, track.audio, track.sample_rate, subtype=subtype)
    return credits


def continue_audio(
    audio_path: str | Path,
    duration: float,
    output: str | Path | None = None,
    *,
    instruction: str | None = None,
    include_input: bool = False,
    seed: int = 0,
    models: ModelOptions | None = None,
    backends: Backends | None = None,
    progress: Progress | None = None,
    **keywords: Any,
) -> AudioResult:
    """Continue an audio clip for ``duration`` seconds; with ``include_input`` the output starts with the input,
    sample for sample. Offline: matched sounds from the foley bank; with a model: the input enters the LLM
    through its audio encoder and the DiT renders the continuation. Either way the seam is level-matched and
    crossfaded from the input's tail."""
    check_range("duration", duration, *STORY_SECONDS, " s", above_low=True)
    check_range("seed", seed, *SEEDS, integer=True)
    path = check_input(audio_path)
    if output is not None:
        check_output(output, path)
    (models,) = apply_keywords("continue_audio", keywords, [(ModelOptions, models)])
    stages = _Stages(progress)
    with stages.stage("read", f"reading {path.name}"):
        audio, sr = decode_audio(path)
    # Continuations are not scored: backends built for one need no SoundFont.
    backends = _backends(stages, backends, models, None, MusicOptions(music="off") if backends is None else None)
    stages.say(backends.line("continuation"))
    track = _continue(backends, audio, sr, duration, stages, instruction=instruction, seed=seed,
                      include_input=include_input)
    credits = _write_audio(output, track, stages, _wav_subtype(path) if output is not None else "PCM_24")
    return AudioResult(Path(output) if output else None, track, stages.timings, backends.summary("continuation"),
                       *credits)


def _continue(backends: Backends, audio: np.ndarray, sr: int, duration: float, stages: _Stages, *,
              instruction: str | None, seed: int, include_input: bool) -> Soundtrack:
    from audiostory_core.continuation import continue_audio as continue_offline
    from audiostory_core.continuation import join_continuation

    offline = backends.continuation
    if offline is not None:  # the analysis planner picks sounds; its bank (or the library) plays them
        with stages.stage("render", f"continuing for {duration:g} s"):
            res = continue_offline(audio, sr, duration, instruction=instruction, seed=seed,
                                   include_input=include_input, planner=offline.planner, renderer=offline.renderer)
        return Soundtrack(res.audio, res.sample_rate, res.plan, clips=res.clips)
    # A model: the audio prompt goes through the LLM's audio encoder (or the analysis planner plans for the DiT).
    stages.say(f"continuing for {duration:g} s")
    request = StoryRequest.from_audio(audio, sr, duration, instruction)
    generated = _generate(backends, request, stages, seed=seed, crossfade=min(3.0, duration / 4))
    joined = join_continuation(audio, sr, generated.audio, generated.sample_rate, include_input=include_input)
    return Soundtrack(joined, sr, generated.plan, clips=generated.clips)


def _wav_subtype(source: Path) -> str:
    # Keep the input's precision so an included input reproduces its samples exactly.
    try:
        sub = sf.info(str(source)).subtype
        return sub if sub in ("PCM_16", "PCM_24", "PCM_32", "FLOAT") else "PCM_24"
    except Exception:  # noqa: BLE001 - not a soundfile format: 24-bit is the delivery default
        return "PCM_24"
