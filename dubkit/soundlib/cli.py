"""``dubkit library``: list the installed sound sources and folders, add or remove one, search the index.

Adding a copyleft source (0ad-data) says what that means: syncing CC-BY-SA sound to picture makes the video an
adaptation that inherits the licence; such clips are used only with ``--licence any``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

library_app = typer.Typer(help="The sound library: free recordings installed at set-up, your own folders, search.",
                          no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _cache(cache_dir: Optional[Path]) -> Path:
    from audiostory_core.cache import cache_dir as _cache_dir

    return _cache_dir(root=cache_dir)


def _say(message: str) -> None:
    err.print(message, markup=False, soft_wrap=True)


@library_app.command("list")
def list_cmd(cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="The dubkit cache (default: "
                                                                                "$DUBKIT_CACHE_DIR or ~/.cache/dubkit).")) -> None:
    """Show every known source (installed or not, with its licences) and the folders you added."""
    from audiostory_core.render.foley import sources as S

    cache = _cache(cache_dir)
    config = S.read_config(cache)
    out.print(f"sound library in {S.library_root(cache)}", markup=False)
    for src in S.SOURCES.values():
        folder = S.sources_dir(cache) / src.name
        kind = "default" if src.default else f"opt-in, {src.copyleft}"
        if (folder / S.MANIFEST).is_file():
            try:
                clips = S.read_manifest(folder)["clips"]
                counts: dict[str, int] = {}
                for c in clips:
                    counts[c.get("licence", "?")] = counts.get(c.get("licence", "?"), 0) + 1
                state = f"{len(clips)} clips (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")"
            except Exception as exc:  # noqa: BLE001 - a broken manifest is shown, not fatal
                state = f"BROKEN: {exc}"
        elif src.name in config["removed"]:
            state = "removed (dubkit library add %s)" % src.name
        else:
            state = "not installed (dubkit library add %s)" % src.name
        out.print(f"  {src.name:<22} [{kind}] {state}\n      {src.summary}; licence: {src.licence_note}",
                  markup=False, soft_wrap=True)
    for folder in config["folders"]:
        ok = "" if os.path.isdir(folder) else "  (MISSING)"
        out.print(f"  folder {folder}{ok}", markup=False, soft_wrap=True)


@library_app.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="A source name from `dubkit library list`, or a folder of your sounds."),
    no_download: bool = typer.Option(False, "--no-download", help="Only use a package already on this machine."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir"),
) -> None:
    """Install a source (downloading its package, keeping only the audio) or add a folder of your own sounds."""
    from audiostory_core.errors import RenderError
    from audiostory_core.render.foley import sources as S

    cache = _cache(cache_dir)
    if name not in S.SOURCES:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            known = ", ".join(S.SOURCES)
            raise RenderError(f"{name!r} is neither a known source ({known}) nor a folder")
        config = S.read_config(cache)
        path = str(folder.resolve())
        if path not in config["folders"]:
            config["folders"].append(path)
            S.write_config(cache, config)
        out.print(f"added folder {path}; it joins the index on the next run", markup=False)
        _index(cache)
        return
    src = S.SOURCES[name]
    if src.copyleft:
        _say(f"note: {name} is {src.copyleft}. Syncing its sounds to picture makes your video an adaptation, which "
             f"then inherits {src.copyleft} (share-alike, with attribution). Its clips are only used with "
             "--licence any; the credits list them.")
    status = S.install(src, cache, fetch=not no_download, log=_say)
    if not status.ok:
        raise RenderError(status.message)
    out.print(f"installed {status.message} ({', '.join(f'{v} {k}' for k, v in sorted(status.licences.items()))})",
              markup=False)
    _index(cache)


@library_app.command("remove")
def remove_cmd(name: str = typer.Argument(..., help="A source name or a folder you added."),
               cache_dir: Optional[Path] = typer.Option(None, "--cache-dir")) -> None:
    """Remove an installed source's audio (set-up will not bring it back) or forget a folder."""
    from audiostory_core.errors import RenderError
    from audiostory_core.render.foley import sources as S

    cache = _cache(cache_dir)
    config = S.read_config(cache)
    path = str(Path(name).expanduser().resolve())
    if path in config["folders"]:
        config["folders"].remove(path)
        S.write_config(cache, config)
        out.print(f"forgot folder {path} (its files are untouched)", markup=False)
        return
    if name not in S.SOURCES and not (S.sources_dir(cache) / name).is_dir():
        raise RenderError(f"{name!r} is not an installed source or an added folder (see `dubkit library list`)")
    S.remove(name, cache)
    out.print(f"removed {name}", markup=False)


@library_app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help='What to hear, e.g. "a heavy door slams".'),
    top: int = typer.Option(10, "--top", "-n", help="How many clips to show."),
    licence: str = typer.Option("by", "--licence", help="cc0 | by (CC0 and attribution-only) | any (copyleft too)."),
    layer: str = typer.Option("fx", "--layer", help="fx | ambience | narrative: beds prefer loopable textures."),
    duration: float = typer.Option(1.0, "--duration", help="The event's length in seconds."),
    library: list[Path] = typer.Option([], "--library", help="Also search a folder of your own sounds."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir"),
) -> None:
    """The recordings that best match QUERY, best first: alternatives to audition or swap in."""
    from audiostory_core.render.foley.renderer import FoleyRenderer

    r = FoleyRenderer(library, licence=licence, cache_dir=cache_dir)
    for note in r.notes:
        _say(f"note: {note}")
    hits = r.search(query, top=top, layer=layer, duration=duration)
    if not hits:
        out.print("no recording fits; the procedural bank would be used", markup=False)
    for sound, score in hits:
        out.print(f"{score:5.2f}  {sound.kind:<7} {sound.duration:6.2f}s  {sound.licence or 'own':<14} "
                  f"{sound.source:<20} {sound.path}\n       {sound.text[:90]}", markup=False, soft_wrap=True)


@library_app.command("install")
def install_cmd(
    refresh: bool = typer.Option(False, "--refresh", help="Extract again even where already installed."),
    no_download: bool = typer.Option(False, "--no-download", help="Only use packages already on this machine."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not build the search index now."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir"),
) -> None:
    """Install the default (CC0 / attribution-only) sources; what scripts/setup.sh runs. A package that cannot
    be had is reported and skipped."""
    from audiostory_core.render.foley import sources as S

    cache = _cache(cache_dir)
    for status in S.install_defaults(cache, fetch=not no_download, log=_say, only_missing=not refresh):
        _say(("ok:      " if status.ok else "skipped: ") + status.message)
    if not no_index:
        _index(cache)


def _index(cache: Path) -> None:
    """Build (or update) the index now, so the first dub does not pay for it."""
    from audiostory_core.render.foley.renderer import FoleyRenderer

    r = FoleyRenderer(cache_dir=cache, licence="any")
    n = sum(len(lib.sounds) for lib in r.libraries)
    _say(f"index: {n} clips ready")


def main(argv: list[str] | None = None) -> int:
    """Run the sub-app on its own (``python -m dubkit.soundlib``): one error line, non-zero exit."""
    import click

    from audiostory_core.errors import DubkitError

    try:
        return int(library_app(args=list(sys.argv[1:] if argv is None else argv), prog_name="dubkit library",
                               standalone_mode=False) or 0)
    except (typer.Exit, click.exceptions.Exit) as e:
        return int(e.exit_code or 0)
    except DubkitError as e:
        err.print(f"dubkit: error: {e}", markup=False, soft_wrap=True)
        return 1
    except click.exceptions.ClickException as e:
        e.show()
        return e.exit_code
