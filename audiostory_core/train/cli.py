"""Command-line entry points of the training room, as typer commands dubkit's CLI registers as they are:

    app.command("train")(audiostory_core.train.cli.train_command)      # dubkit train CONFIG.yaml
    app.add_typer(audiostory_core.train.cli.data_app, name="data")     # dubkit data build FOLDER

and ``python -m audiostory_core.train CONFIG.yaml`` / ``… data build FOLDER`` (also under ``accelerate launch -m``
or ``torchrun -m``). Importing this module loads typer only; torch comes with the command.
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Training data: build a manifest from long audio files and their caption files.",
                       no_args_is_help=True)


@data_app.callback()
def _data() -> None:
    """Training data: build a manifest from long audio files and their caption files."""


def train_command(
    config: Path = typer.Argument(..., help="The training config (YAML): stage, model, data, train, losses."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Total optimisation steps (overrides train.steps)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the data order, noise and initialisation."),
    resume: Optional[str] = typer.Option(None, "--resume", help="'latest' or a checkpoint folder to continue from."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Train one AudioStory stage (1 single events, 2 + residual queries, 3 long form); multi-process runs go
    through `accelerate launch -m audiostory_core.train CONFIG.yaml` or `torchrun -m audiostory_core.train`."""
    from .config import load_config
    from .loop import train

    cfg = load_config(config, max_steps=max_steps, seed=seed, resume=resume)
    train(cfg, log=None if not quiet else (lambda _m: None), progress_bar=not quiet)


@data_app.command("build")
def data_build_command(
    folder: Path = typer.Argument(..., help="Long audio files, each with NAME.txt (Audacity labels) or NAME.csv."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Manifest to write (default FOLDER/manifest.jsonl)."),
    max_event: float = typer.Option(30.0, "--max-event", help="Longest event in seconds (the DiT's range)."),
) -> None:
    """Check every caption file and write the JSON Lines manifest training reads."""
    from .build import build_dataset

    report = build_dataset(folder, output, max_event=max_event)
    typer.echo(report.summary())


def main(argv: list[str] | None = None) -> None:
    """``python -m audiostory_core.train``: errors print one line and exit 1 (tracebacks with DUBKIT_DEBUG=1)."""
    from ..errors import DubkitError

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["data"]:
        app, args = data_app, args[1:]
    else:
        app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        app.command()(train_command)
    try:
        app(args=args, prog_name="python -m audiostory_core.train", standalone_mode=False)
    except DubkitError as exc:
        if os.environ.get("DUBKIT_DEBUG"):
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
    except Exception as exc:  # usage errors (typer's click exceptions: they know how to show themselves)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
