"""The ``dubkit`` command line. Errors print one line and exit non-zero (the traceback only with --debug)."""
from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import DubkitError
from .options import (
    CAPTIONERS, DEVICES, LICENCES, LOUDNESS_PRESET_NAMES, MIX_MODES, MUSIC_MODE_NAMES, MUSIC_STYLE_NAMES,
    CaptionOptions, FinishingOptions,
)
from .soundlib.cli import library_app
from audiostory_core.train.cli import data_app, train_command  # light: typer only

app = typer.Typer(
    name="dubkit",
    help="Automatic soundtracks for video: a score, sound effects and ambience that follow the picture, shot by shot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Model folders: list what is available locally, pull from the hub (the only network use).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(library_app, name="library")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class _Progress:
    """Prints each stage with the time elapsed since the command started."""

    def __init__(self, quiet: bool = False, started: float | None = None):
        self.t0 = time.perf_counter() if started is None else started
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if message.startswith("warning:"):  # said even with --quiet: the result is usable but not what was asked
            err.print(f"[yellow]warning:[/yellow] {escape(in_flags(message.removeprefix('warning:').strip()))}",
                      soft_wrap=True)  # one line, whatever the terminal's width: scripts grep for it
        elif not self.quiet:
            err.print(f"[dim]{time.perf_counter() - self.t0:7.2f}s[/dim] {escape(in_flags(message))}")


@functools.cache
def _flags() -> dict[str, str]:
    """Each option's API name → its flag, from the commands themselves (``duck_db`` → ``--duck-db``)."""
    flags: dict[str, str] = {}
    groups = [typer.main.get_command(app)]
    while groups:
        for cmd in getattr(groups.pop(), "commands", {}).values():
            groups.append(cmd)
            for param in cmd.params:
                if param.param_type_name == "option" and param.name:  # typer vendors its own click
                    flags.setdefault(param.name, max(param.opts, key=len))
    return flags


def in_flags(message: str) -> str:
    """The API and io name an option as `name` (its Python parameter); on the command line, say its flag."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: _flags().get(m.group(1), m.group(0)), message)


def _version(value: bool) -> None:
    if value:
        out.print(f"dubkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    if debug:
        os.environ["DUBKIT_DEBUG"] = "1"


# Option groups in `--help` (rich panels), and each option declared once for every command that has it.
IO, SHOTS, MODELS, SOUND, MIX, GENERAL = "Input and output", "Shots", "Models", "Soundtrack", "Mix and loudness", "General"
MUSIC = "Music"
Captions = Annotated[Optional[Path], typer.Option(
    "--captions", help="Your shot list (SRT, JSON or CSV) to describe the shots.", rich_help_panel=SHOTS)]
Captioner = Annotated[str, typer.Option(
    "--captioner", metavar="[" + "|".join(CAPTIONERS) + "]", rich_help_panel=SHOTS,
    help="tagger: an offline ImageNet tagger names what is seen, plus visual cues; cues: visual cues only; "
         "clip: open_clip tags instead of the tagger; auto: clip when --clip-weights is given, else tagger.")]
ClipWeights = Annotated[Optional[Path], typer.Option(
    "--clip-weights", help="Local open_clip weights for --captioner clip.", rich_help_panel=SHOTS)]
Model = Annotated[Optional[Path], typer.Option(
    "--model", help="An AudioStory or DiT model folder (default: offline foley).", rich_help_panel=MODELS)]
T5 = Annotated[Optional[Path], typer.Option(
    "--t5", help="A flan-t5 folder (caption embeddings for a DiT-only --model).", rich_help_panel=MODELS)]
Device = Annotated[Optional[str], typer.Option(
    "--device", metavar="[" + "|".join(DEVICES) + "]", help="Where models run (default: best available).",
    rich_help_panel=MODELS)]
Steps = Annotated[Optional[int], typer.Option(
    "--steps", help="Diffusion steps for --model (default 50 AudioStory, 25 TangoFlux).", rich_help_panel=MODELS)]
Library = Annotated[list[Path], typer.Option(
    "--library", help="A folder of your own sound effects (repeatable).", rich_help_panel=MODELS)]
PresetOption = Annotated[Optional[str], typer.Option(
    "--preset", metavar="[faithful|fast]", rich_help_panel=MODELS,
    help="faithful: the published inference (default for published weights); fast: dubkit's speed-ups.")]
LicenceFilter = Annotated[str, typer.Option(
    "--licence", metavar="[" + "|".join(LICENCES) + "]", rich_help_panel=MODELS,
    help="Recordings allowed: cc0, by (CC0 + attribution-only, default) or any (copyleft too; the result inherits it).")]
Seed = Annotated[int, typer.Option(
    "--seed", help="Same seed, same soundtrack; change it for a variation.", rich_help_panel=SOUND)]
Instruction = Annotated[Optional[str], typer.Option("--instruction", rich_help_panel=SOUND)]
Music = Annotated[str, typer.Option(
    "--music", metavar="[" + "|".join(MUSIC_MODE_NAMES) + "]", rich_help_panel=MUSIC,
    help="A composed score: auto (cartoons, and live-action scenes without dialogue; for story: clauses that ask "
         "for music), on (under everything), only (the score alone) or off.")]
MusicStyle = Annotated[str, typer.Option(
    "--music-style", metavar="[" + "|".join(MUSIC_STYLE_NAMES) + "]", rich_help_panel=MUSIC,
    help="orchestral (cartoon orchestra), ambient (pads), piano (solo piano), percussion; auto: named in "
         "--instruction, else orchestral for cartoons, ambient for live action.")]
SoundFont = Annotated[Optional[Path], typer.Option(
    "--soundfont", metavar="FILE", rich_help_panel=MUSIC,
    help="A .sf2/.sf3 SoundFont to play the score (default: the installed General MIDI one).")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No progress output.", rich_help_panel=GENERAL)]


def _models(model: Path | None, t5: Path | None, device: str | None, steps: int | None, library: list[Path],
            licence: str = "by", preset: str | None = None):
    from .options import ModelOptions

    return ModelOptions(model=model, t5=t5, device=device, steps=steps, library=tuple(library),
                        licence=licence, preset=preset)  # type: ignore[arg-type]


def _music(music: str, music_style: str, soundfont: Path | None):
    from .options import MusicOptions

    return MusicOptions(music=music, music_style=music_style, soundfont=soundfont)  # type: ignore[arg-type]


@app.command()
def dub(
    video: Path = typer.Argument(..., help="The video to dub (never modified)."),
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Output video (default: <name>.dubbed.<ext>).", rich_help_panel=IO)] = None,
    captions: Captions = None,
    captioner: Captioner = "auto",
    clip_weights: ClipWeights = None,
    model: Model = None,
    t5: T5 = None,
    device: Device = None,
    steps: Steps = None,
    library: Library = [],  # noqa: B006 - typer reads the default, never mutates it
    licence: LicenceFilter = "by",
    preset: PresetOption = None,
    seed: Seed = 0,
    instruction: Annotated[Optional[str], typer.Option(
        "--instruction", help="A style hint for the planner.", rich_help_panel=SOUND)] = None,
    crossfade: Annotated[float, typer.Option(
        "--crossfade", help="Seconds the ambience crossfades at each cut.", rich_help_panel=SOUND)] = 0.25,
    music: Music = "auto",
    music_style: MusicStyle = "auto",
    soundfont: SoundFont = None,
    mix: Annotated[str, typer.Option(
        "--mix", metavar="[" + "|".join(MIX_MODES) + "]", rich_help_panel=MIX,
        help="Replace the original audio, sit under it, or duck under speech (auto: duck when there is speech).")] = "auto",
    duck_db: Annotated[float, typer.Option(
        "--duck-db", help="How far the new soundtrack dips under speech, in dB.", rich_help_panel=MIX)] = -12.0,
    loudness: Annotated[str, typer.Option(
        "--loudness", metavar="[LUFS|" + "|".join(LOUDNESS_PRESET_NAMES) + "|off]", rich_help_panel=MIX,
        help="Target LUFS (-23 broadcast, -14 streaming) or 'off'.")] = "-23",
    speech_model: Annotated[Optional[Path], typer.Option(
        "--speech-model", help="A local pyannote checkpoint for speech detection.", rich_help_panel=MIX)] = None,
    keep_original_audio: Annotated[bool, typer.Option(
        "--keep-original-audio", help="Keep the input's audio as a second track.", rich_help_panel=IO)] = False,
    stems: Annotated[bool, typer.Option(
        "--stems", help="Write 48 kHz 24-bit WAV stems per layer.", rich_help_panel=IO)] = False,
    plan_file: Annotated[Optional[Path], typer.Option(
        "--plan", help="Render this edited `dubkit plan` file as given instead of planning.",
        rich_help_panel=SOUND)] = None,
    quiet: Quiet = False,
) -> None:
    """Give VIDEO a soundtrack that follows the picture; writes the dubbed video and its deliverables."""
    started = time.perf_counter()
    captioning = CaptionOptions(captioner=captioner, clip_weights=clip_weights)  # type: ignore[arg-type]
    with _early_scan(video, captioning) as early:
        from .api import dub as run_dub

        res = run_dub(
            video, output, captions=captions, seed=seed, instruction=instruction, crossfade=crossfade,
            models=_models(model, t5, device, steps, library, licence, preset), captioning=captioning,
            scoring=_music(music, music_style, soundfont),
            finishing=FinishingOptions(mix=mix, duck_db=duck_db, loudness=_parse_loudness(loudness),  # type: ignore[arg-type]
                                       keep_original_audio=keep_original_audio, stems=stems, speech_model=speech_model),
            progress=_Progress(quiet, started), plan_file=plan_file, early=early,
        )
    extra = f"; deliverables in {res.deliverables.folder}" if res.deliverables else ""
    out.print(f"wrote {res.output} ({res.info.duration:.2f} s, {len(res.plan.events)} events, mix {res.mix_mode}) "
              f"in {time.perf_counter() - started:.1f} s{extra}",  # the run's time (the mux runs beside stages)
              soft_wrap=True, markup=False)


def _early_scan(video: Path, captioning: CaptionOptions) -> contextlib.AbstractContextManager:
    """The scan's decoding started now: ffmpeg decodes while the rest of dubkit is imported (about a second in
    which a core would idle); nothing (a null context) when it cannot start: the dub then finds and reports the problem in
    its own order."""
    from .backends import captioner_keyframe_width
    from .video.early import start_scan

    try:
        return start_scan(video, keyframe_width=captioner_keyframe_width(captioning))
    except (DubkitError, OSError, ValueError):
        return contextlib.nullcontext()


def _parse_loudness(value: str) -> float | None:
    from .soundtrack.loudness import resolve_target

    if value.strip().lower() in ("off", "none"):
        return None
    try:
        return resolve_target(value)
    except DubkitError as exc:
        raise typer.BadParameter(str(exc), param_hint="--loudness") from None


@app.command("plan")
def plan_cmd(
    video: Path = typer.Argument(..., help="The video to analyse."),
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Write the JSON here (default: stdout).", rich_help_panel=IO)] = None,
    captions: Captions = None,
    captioner: Captioner = "auto",
    clip_weights: ClipWeights = None,
    model: Model = None,
    t5: T5 = None,
    device: Device = None,
    instruction: Instruction = None,
    music: Music = "auto",
    music_style: MusicStyle = "auto",
    soundfont: SoundFont = None,
    quiet: Quiet = False,
) -> None:
    """Write the scenes and sub-events of VIDEO as JSON, without rendering."""
    from .api import plan as run_plan
    from .io import atomic_output, check_output

    res = run_plan(video, captions=captions, instruction=instruction, models=_models(model, t5, device, None, []),
                   captioning=CaptionOptions(captioner=captioner, clip_weights=clip_weights),  # type: ignore[arg-type]
                   scoring=_music(music, music_style, soundfont), progress=_Progress(quiet))
    text = json.dumps(res.to_dict(), indent=2)
    if output is None:
        out.print(text, markup=False, soft_wrap=True)
    else:
        check_output(output, video)
        with atomic_output(output) as tmp:
            tmp.write_text(text + "\n")
        err.print(f"wrote {output} ({len(res.scenes)} scenes, {len(res.plan.events)} events)", markup=False)


@app.command()
def story(
    instruction: str = typer.Argument(..., help='What to hear, e.g. "rain, then thunder, then a car passes".'),
    duration: Annotated[float, typer.Option("--duration", "-d", help="Total length in seconds.", rich_help_panel=IO)] = ...,  # type: ignore[assignment]
    output: Annotated[Path, typer.Option("-o", "--output", help="Output WAV.", rich_help_panel=IO)] = Path("story.wav"),
    model: Model = None,
    t5: T5 = None,
    device: Device = None,
    steps: Steps = None,
    library: Library = [],  # noqa: B006
    licence: LicenceFilter = "by",
    preset: PresetOption = None,
    seed: Seed = 0,
    crossfade: Annotated[float, typer.Option(
        "--crossfade", help="Seconds of crossfade between events.", rich_help_panel=SOUND)] = 3.0,
    music: Music = "auto",
    music_style: MusicStyle = "auto",
    soundfont: SoundFont = None,
    quiet: Quiet = False,
) -> None:
    """Turn a text instruction into long-form audio ("playful orchestral music, then heavy rain" is composed)."""
    from .api import story as run_story

    res = run_story(instruction, duration, output, seed=seed, crossfade=crossfade,
                    models=_models(model, t5, device, steps, library, licence, preset),
                    scoring=_music(music, music_style, soundfont), progress=_Progress(quiet))
    for ev in res.plan.events:
        err.print(f"  {ev.start:7.2f}s +{ev.duration:6.2f}s  {ev.caption}", markup=False, soft_wrap=True)
    out.print(f"wrote {res.output} ({res.soundtrack.duration:.2f} s, {len(res.plan.events)} events; credits in "
              f"{res.credits})", markup=False)


@app.command("continue")
def continue_cmd(
    audio: Path = typer.Argument(..., help="The audio (or video) whose sound to continue."),
    duration: Annotated[float, typer.Option("--duration", "-d", help="Seconds of new audio.", rich_help_panel=IO)] = ...,  # type: ignore[assignment]
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Output WAV (default: <name>.continued.wav).", rich_help_panel=IO)] = None,
    include_input: Annotated[bool, typer.Option(
        "--include-input", help="Start the output with the input, unchanged.", rich_help_panel=IO)] = False,
    instruction: Annotated[Optional[str], typer.Option(
        "--instruction", help="What should happen next.", rich_help_panel=SOUND)] = None,
    model: Model = None,
    t5: T5 = None,
    device: Device = None,
    steps: Steps = None,
    library: Library = [],  # noqa: B006
    licence: LicenceFilter = "by",
    preset: PresetOption = None,
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    """Continue an audio clip seamlessly."""
    from .api import continue_audio

    output = output or audio.with_name(f"{audio.stem}.continued.wav")
    res = continue_audio(audio, duration, output, instruction=instruction, include_input=include_input, seed=seed,
                         models=_models(model, t5, device, steps, library, licence, preset), progress=_Progress(quiet))
    out.print(f"wrote {res.output} ({res.soundtrack.duration:.2f} s; credits in {res.credits})", markup=False)


@models_app.command("list")
def models_list(known: bool = typer.Option(False, "--known", help="Also list the models `pull` can fetch.")) -> None:
    """Show model folders available locally (in $DUBKIT_MODELS_DIR) and whether each is complete."""
    from audiostory_core.models.hub import REGISTRY, list_local, models_dir

    rows = list_local()
    if not rows:
        out.print(f"no models in {models_dir()} (dubkit runs offline with its foley renderer; see `dubkit models pull`)")
    for m in rows:
        state = "complete" if m.complete else ("INCOMPLETE: missing " + ", ".join(m.missing[:3]) if m.known else "unknown")
        out.print(f"{m.name:<22} {m.size_bytes / 2**20:9.1f} MiB  {state}  {m.path}", soft_wrap=True)
    if known:
        out.print("\nknown models (dubkit models pull NAME):")
        for spec in REGISTRY.values():
            out.print(f"  {spec.name:<22} {spec.repo_id:<40} {spec.description}", soft_wrap=True)


@models_app.command("pull")
def models_pull(
    name: str = typer.Argument(..., help="A model name from `dubkit models list --known`."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Where to put it (default: the models folder)."),
) -> None:
    """Download a model from the hub (the only command that uses the network)."""
    from audiostory_core.models.hub import pull

    path = pull(name, dest)
    out.print(f"{name} → {path}", markup=False)


def _load_plugins() -> None:
    """Commands from other packages (workflows: watch, batch, jobs) via the ``dubkit.commands`` entry points."""
    for ep in entry_points(group="dubkit.commands"):
        try:
            ep.load()(app)
        except Exception as exc:  # a broken plugin must not break dub/story/continue
            if os.environ.get("DUBKIT_DEBUG"):
                traceback.print_exc()
            err.print(f"[yellow]warning:[/yellow] could not load commands from {ep.value}: {exc}")


# typer vendors its own click: its ClickException is not click's, so catch both (usage errors → exit 2).
_CLICK_ERRORS = tuple({next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
                       click.ClickException})


# Training sits beside the model code (audiostory_core/train); its commands come last in --help.
app.command("train")(train_command)
app.add_typer(data_app, name="data")


def _operands_after_dashes(args: list[str]) -> list[str]:
    """``dubkit batch -- -take.mp4 --out DONE``: after ``--`` a name starting with '-' is a file, yet the options
    written after it still count (click alone would take ``--out`` for a file name). For commands whose operands
    are all paths, the ``--`` is dropped and each such name becomes ``./name``, unless it is one of the command's
    own options and no file of that name exists."""
    if "--" not in args:
        return args
    cut = args.index("--")
    names = [a for a in args[:cut] if not a.startswith("-")]
    command = typer.main.get_command(app)
    for name in names[:2]:  # `dub`, or a group and its command (`models pull`)
        command = getattr(command, "commands", {}).get(name, command)
    params = getattr(command, "params", [])
    operands = [p for p in params if p.param_type_name == "argument"]
    if not operands or not all("Path" in str(getattr(p, "type_descriptor", None) and p.type_descriptor.annotation)
                               for p in operands):
        return args
    takes_value = {o: not p.is_flag for p in params if p.param_type_name == "option"
                   for o in [*p.opts, *p.secondary_opts]}
    rest, out, i = args[cut + 1:], args[:cut], 0
    while i < len(rest):
        tok = rest[i]
        option = tok.split("=", 1)[0]
        if option in takes_value and not os.path.lexists(tok):
            out.append(tok)
            if takes_value[option] and "=" not in tok and i + 1 < len(rest):
                i += 1
                out.append(rest[i])
        else:
            out.append(f"./{tok}" if tok.startswith("-") and tok != "-" else tok)
        i += 1
    return out


class _Signalled(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM. Not a KeyboardInterrupt (typer would turn that into a silent
    exit code) and not an Exception (nothing may swallow it): it unwinds through every ``finally`` and
    ``except BaseException`` that removes a temporary file, then ``main`` says what happened."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_SIGNAL_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def _on_signal(signum: int, _frame: object) -> None:
    for s in _SIGNAL_WORDS:  # the clean-up that follows is short: a second signal must not cut it off
        signal.signal(s, signal.SIG_IGN)
    raise _Signalled(signum)


def _catch_signals() -> dict:
    """Turn SIGINT and SIGTERM into ``_Signalled`` — unless the parent ignores them (``cmd &`` in a script ignores
    SIGINT, as every Unix tool does), or this is not the main thread (signals are the caller's business then).
    Returns the handlers it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for s in _SIGNAL_WORDS:
        if signal.getsignal(s) is not signal.SIG_IGN:
            previous[s] = signal.signal(s, _on_signal)
    return previous


def _no_space(exc: BaseException) -> DubkitError | None:
    """The full-disk message for an error caused by ENOSPC/EDQUOT (on the folder of the file it names)."""
    from .io import is_no_space, space_error

    if not is_no_space(exc):
        return None
    cause = exc
    while not isinstance(cause, OSError) and (cause.__cause__ or cause.__context__) is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    name = getattr(cause, "filename", None)
    return space_error(Path(name).parent if name else Path("."), "the output")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Library progress bars and warnings would drown the stage lines; nothing here downloads anyway.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "--debug" in args:
        os.environ["DUBKIT_DEBUG"] = "1"
    _load_plugins()
    args = _operands_after_dashes(args)
    previous = _catch_signals()
    try:
        return _run(args)
    finally:  # called in-process (tests, scripts): leave the caller's signal handlers as they were
        for s, handler in previous.items():
            signal.signal(s, handler)


def _run(args: list[str]) -> int:
    """The command, every way it can end turned into an exit code and at most one line."""
    try:
        # Without standalone mode click returns a command's exit code instead of exiting with it.
        return int(app(args=args, prog_name="dubkit", standalone_mode=False) or 0)
    except (typer.Exit, click.exceptions.Exit) as e:
        return int(e.exit_code or 0)
    except _CLICK_ERRORS as e:
        if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            e.show()
        return e.exit_code
    except _Signalled as e:
        err.print(f"dubkit: {_SIGNAL_WORDS.get(e.signum, 'stopped by a signal')}", markup=False)
        return 128 + e.signum
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt):
        err.print("dubkit: interrupted", markup=False)
        return 130
    except Exception as e:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if os.environ.get("DUBKIT_DEBUG"):
            traceback.print_exc()
        if not isinstance(e, DubkitError) and _no_space(e) is not None:
            e = _no_space(e)  # a full disk met where nothing named it: still say so, not "internal error"
        if isinstance(e, DubkitError):
            err.print(f"dubkit: error: {in_flags(str(e))}", markup=False, soft_wrap=True)
            return 1
        err.print(f"dubkit: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  markup=False, soft_wrap=True)
        return 3


def run() -> NoReturn:
    """The console script (and ``python -m dubkit.cli``): ``main``, then out of the process as soon as its
    threads are done, its exit handlers have run and its output is flushed. The interpreter's own teardown of
    the ~1,400 modules a dub loads (and of their C++ libraries) took 0.25-0.4 s after the work was finished, and
    nothing it does outlives the process."""
    code = main()
    for thread in threading.enumerate():  # what the interpreter waits for before its exit handlers
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # logging's flush, concurrent.futures, tempfile's clean-ups, ray.shutdown ...
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`dubkit ... | head`): nothing left to say
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    run()
