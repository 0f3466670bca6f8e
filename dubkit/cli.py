"""The ``dubkit`` command line. Errors print one line and exit non-zero (the traceback only with --debug)."""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import DubkitError

app = typer.Typer(
    name="dubkit",
    help="Automatic soundtracks for video: sound effects and ambience that follow the picture, shot by shot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Model folders: list what is available locally, pull from the hub (the only network use).",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


class _Progress:
    """Prints each stage with the time elapsed since the command started."""

    def __init__(self, quiet: bool = False):
        self.t0 = time.perf_counter()
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            err.print(f"[dim]{time.perf_counter() - self.t0:7.2f}s[/dim] {escape(message)}")


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


@app.command()
def dub(
    video: Path = typer.Argument(..., help="The video to dub (never modified)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output video (default: <name>.dubbed.<ext>)."),
    captions: Optional[Path] = typer.Option(None, "--captions", help="Your shot list (SRT, JSON or CSV) to describe the shots."),
    library: list[Path] = typer.Option([], "--library", help="A folder of your own sound effects (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same soundtrack; change it for a variation."),
    keep_original_audio: bool = typer.Option(False, "--keep-original-audio", help="Keep the input's audio as a second track."),
    model: Optional[Path] = typer.Option(None, "--model", help="An AudioStory model folder (default: offline foley)."),
    t5: Optional[Path] = typer.Option(None, "--t5", help="A flan-t5 folder (caption embeddings for a DiT-only --model)."),
    captioner: str = typer.Option("auto", "--captioner", help="auto | cues | clip"),
    clip_weights: Optional[Path] = typer.Option(None, "--clip-weights", help="Local open_clip weights for --captioner clip."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda | mps | cpu (default: best available)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Diffusion steps for --model (default 50)."),
    instruction: Optional[str] = typer.Option(None, "--instruction", help="A style hint for the planner."),
    crossfade: float = typer.Option(0.25, "--crossfade", help="Seconds the ambience crossfades at each cut."),
    mix: str = typer.Option("auto", "--mix", help="replace | under | duck (auto: duck when the video has speech)."),
    duck_db: float = typer.Option(-12.0, "--duck-db", help="How far the new soundtrack dips under speech, in dB."),
    loudness: str = typer.Option("-23", "--loudness", help="Target LUFS (-23 broadcast, -14 streaming) or 'off'."),
    stems: bool = typer.Option(False, "--stems", help="Write 48 kHz 24-bit WAV stems per layer."),
    speech_model: Optional[Path] = typer.Option(None, "--speech-model", help="A local pyannote checkpoint for speech detection."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress output."),
) -> None:
    """Give VIDEO a soundtrack that follows the picture; writes the dubbed video and its deliverables."""
    from .api import dub as run_dub

    progress = _Progress(quiet)
    res = run_dub(
        video, output, captions=captions, library=library, seed=seed, keep_original_audio=keep_original_audio,
        captioner=captioner, clip_weights=clip_weights, model=model, t5=t5, device=device, steps=steps,
        instruction=instruction, crossfade=crossfade, mix=mix, duck_db=duck_db, loudness=_parse_loudness(loudness), stems=stems,
        speech_model=speech_model, progress=progress,
    )
    total = sum(res.timings.values())
    extra = f"; deliverables in {res.deliverables}" if res.deliverables else ""
    out.print(f"wrote {res.output} ({res.info.duration:.2f} s, {len(res.plan.events)} events, mix {res.mix_mode}) "
              f"in {total:.1f} s{extra}", soft_wrap=True, markup=False)


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
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the JSON here (default: stdout)."),
    captions: Optional[Path] = typer.Option(None, "--captions", help="Your shot list (SRT, JSON or CSV)."),
    model: Optional[Path] = typer.Option(None, "--model", help="An AudioStory model folder (default: scene planner)."),
    t5: Optional[Path] = typer.Option(None, "--t5", help="A flan-t5 folder (caption embeddings for a DiT-only --model)."),
    captioner: str = typer.Option("auto", "--captioner"),
    clip_weights: Optional[Path] = typer.Option(None, "--clip-weights"),
    device: Optional[str] = typer.Option(None, "--device"),
    quiet: bool = typer.Option(False, "-q", "--quiet"),
) -> None:
    """Write the scenes and sub-events of VIDEO as JSON, without rendering."""
    from .api import plan as run_plan
    from .io import atomic_output, check_output

    res = run_plan(video, captions=captions, captioner=captioner, clip_weights=clip_weights, model=model, t5=t5,
                   device=device, progress=_Progress(quiet))
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
    duration: float = typer.Option(..., "--duration", "-d", help="Total length in seconds."),
    output: Path = typer.Option(Path("story.wav"), "-o", "--output", help="Output WAV."),
    model: Optional[Path] = typer.Option(None, "--model", help="An AudioStory model folder (default: offline foley)."),
    t5: Optional[Path] = typer.Option(None, "--t5", help="A flan-t5 folder (caption embeddings for a DiT-only --model)."),
    library: list[Path] = typer.Option([], "--library", help="A folder of your own sound effects (repeatable)."),
    seed: int = typer.Option(0, "--seed"),
    device: Optional[str] = typer.Option(None, "--device"),
    steps: Optional[int] = typer.Option(None, "--steps"),
    crossfade: float = typer.Option(3.0, "--crossfade", help="Seconds of crossfade between events."),
    quiet: bool = typer.Option(False, "-q", "--quiet"),
) -> None:
    """Turn a text instruction into long-form audio."""
    from .api import story as run_story

    res = run_story(instruction, duration, output, model=model, t5=t5, library=library, seed=seed, device=device,
                    steps=steps, crossfade=crossfade, progress=_Progress(quiet))
    for ev in res.plan.events:
        err.print(f"  {ev.start:7.2f}s +{ev.duration:6.2f}s  {ev.caption}", markup=False)
    out.print(f"wrote {res.output} ({res.soundtrack.duration:.2f} s, {len(res.plan.events)} events)", markup=False)


@app.command("continue")
def continue_cmd(
    audio: Path = typer.Argument(..., help="The audio (or video) whose sound to continue."),
    duration: float = typer.Option(..., "--duration", "-d", help="Seconds of new audio."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output WAV (default: <name>.continued.wav)."),
    instruction: Optional[str] = typer.Option(None, "--instruction", help="What should happen next."),
    include_input: bool = typer.Option(False, "--include-input", help="Start the output with the input, unchanged."),
    model: Optional[Path] = typer.Option(None, "--model"),
    t5: Optional[Path] = typer.Option(None, "--t5", help="A flan-t5 folder (caption embeddings for a DiT-only --model)."),
    library: list[Path] = typer.Option([], "--library"),
    seed: int = typer.Option(0, "--seed"),
    device: Optional[str] = typer.Option(None, "--device"),
    steps: Optional[int] = typer.Option(None, "--steps"),
    quiet: bool = typer.Option(False, "-q", "--quiet"),
) -> None:
    """Continue an audio clip seamlessly."""
    from .api import continue_audio

    output = output or audio.with_name(f"{audio.stem}.continued.wav")
    res = continue_audio(audio, duration, output, instruction=instruction, include_input=include_input, model=model, t5=t5,
                         library=library, seed=seed, device=device, steps=steps, progress=_Progress(quiet))
    out.print(f"wrote {res.output} ({res.soundtrack.duration:.2f} s)", markup=False)


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


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Library progress bars and warnings would drown the stage lines; nothing here downloads anyway.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "--debug" in args:
        os.environ["DUBKIT_DEBUG"] = "1"
    _load_plugins()
    try:
        # Without standalone mode click returns a command's exit code instead of exiting with it.
        return int(app(args=args, prog_name="dubkit", standalone_mode=False) or 0)
    except (typer.Exit, click.exceptions.Exit) as e:
        return int(e.exit_code or 0)
    except _CLICK_ERRORS as e:
        if type(e).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            e.show()
        return e.exit_code
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt):
        err.print("dubkit: interrupted")
        return 130
    except DubkitError as e:
        if os.environ.get("DUBKIT_DEBUG"):
            traceback.print_exc()
        err.print(f"dubkit: error: {e}", markup=False, soft_wrap=True)
        return 1
    except Exception as e:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if os.environ.get("DUBKIT_DEBUG"):
            traceback.print_exc()
        err.print(f"dubkit: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
                  markup=False, soft_wrap=True)
        return 3


if __name__ == "__main__":
    sys.exit(main())
