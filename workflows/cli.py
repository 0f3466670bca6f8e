"""``dubkit watch``, ``dubkit batch`` and ``dubkit jobs``.

dubkit's CLI finds these through the ``dubkit.commands`` entry point and calls ``register(app)``; dubkit itself
never imports workflows. ``python -m workflows`` offers the same commands standalone.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from audiostory_core.errors import DubkitError
from workflows.config import STATE_DIR, load_config, validate

EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED = 1, 2, 3

_JOB_HELP = "Job function as 'package.module:function' (default dubkit:dub); for custom pipelines and tests."


def _exit(code: int) -> None:
    """Exit with ``code`` via SystemExit: unlike ``typer.Exit`` it survives a host CLI that runs click with
    ``standalone_mode=False`` (which turns Exit into an ignored return value)."""
    if code:
        sys.exit(code)


def _fail(msg: str, code: int = EXIT_USAGE) -> None:
    typer.echo(f"error: {msg}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _job_source(ray: Optional[str], cfg, job: Optional[str], gpus_per_job: float, reporter,
                workers: Optional[int]):
    """``(config, job function)``: the job function in this process, or with ``--ray`` one that hands each job to
    a Ray actor (one runner thread per actor; see workflows/ray_runner.py)."""
    from workflows.runner import load_job_function

    if ray is None:
        if gpus_per_job:
            _fail("--gpus-per-job needs --ray")
        yield cfg, load_job_function(job)
        return
    if gpus_per_job < 0:
        _fail("--gpus-per-job must be >= 0")
    from workflows.ray_runner import cluster_jobs

    load_job_function(job)  # a bad --job spec fails here, before any cluster is touched
    actors = workers or (cfg.workers if cfg.workers > 1 else None)  # None: one per CPU (GPU share) of the cluster
    with cluster_jobs(ray, actors, job_spec=job,
                      dub_options=cfg.dub, gpus_per_job=gpus_per_job, say=reporter.say) as (job_fn, size):
        yield cfg.with_overrides(workers=size), job_fn


def _stop_now(msg: str, code: int) -> None:
    """Print ``msg`` and exit without waiting for worker threads still inside ``dub`` (nothing they do can be
    recorded or published any more)."""
    typer.echo(msg, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def watch(
    inbox: Path = typer.Argument(..., help="Folder to watch for new videos (sub-folders included)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder that receives the dubbed videos."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Parallel jobs (default 1; dub is CPU-heavy)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config with tables watch, retry, dub and folders (see workflows/config.py)."),
    stable_seconds: Optional[float] = typer.Option(None, help="Take a file once size+mtime are unchanged this long (default 5)."),
    rescan_seconds: Optional[float] = typer.Option(None, help="Full rescan period, the safety net for missed events (default 30)."),
    on_failure: Optional[str] = typer.Option(None, help="'move' a failed input to INBOX/failed/ (default) or 'mark' it in place; both write NAME.error.txt."),
    on_stop: Optional[str] = typer.Option(None, help="On SIGTERM/SIGINT 'requeue' the current job and exit (default) or 'finish' it first."),
    if_locked: str = typer.Option("exit", help="If another watcher holds INBOX: 'exit' (code 3) or 'wait' for it to stop."),
    move_done: Optional[Path] = typer.Option(None, help="Move each input here once its output is complete (default: inputs stay)."),
    log: Optional[Path] = typer.Option(None, help="Job log, one JSON line per job (default INBOX/.dubkit/jobs.log)."),
    state: Optional[Path] = typer.Option(None, help="Queue/lock folder (default INBOX/.dubkit; keep it on a local disk)."),
    content_hash: Optional[bool] = typer.Option(None, "--content-hash/--no-content-hash", help="Add a head/tail hash to each file's identity (catches rewrites that keep size and mtime)."),
    once: bool = typer.Option(False, "--once", help="Exit when everything present is done (cron, tests)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help="Run the jobs on a Ray cluster: 'local' starts a local instance, 'auto' joins the one this node belongs to, or HOST:PORT of its head. Inputs and --out must be on storage every node sees."),
    gpus_per_job: float = typer.Option(0.0, "--gpus-per-job", help="With --ray: GPUs reserved per worker actor (the model path); the model then runs on cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    job: Optional[str] = typer.Option(None, hidden=True, help=_JOB_HELP),
) -> None:
    """Dub every video that appears in INBOX into --out, exactly once, surviving restarts and crashes."""
    from workflows.lock import FolderLocked
    from workflows.runner import Reporter, load_job_function
    from workflows.watch import Watcher, WatchFolderGone, install_signal_handlers

    try:
        cfg = load_config(config).with_overrides(workers=workers, stable_seconds=stable_seconds,
                                                 rescan_seconds=rescan_seconds, on_failure=on_failure,
                                                 on_stop=on_stop, content_hash=content_hash)
        validate(cfg)
        reporter = Reporter(quiet=quiet)
        with _job_source(ray, cfg, job, gpus_per_job, reporter, workers) as (cfg, job_fn):
            watcher = Watcher(inbox, out, cfg, job_fn=job_fn, state_dir=state, move_done=move_done,
                              log_path=log, if_locked=if_locked, exit_when_idle=once, reporter=reporter)
            install_signal_handlers(watcher.request_stop)
            code = watcher.run()
    except FolderLocked as e:
        _fail(str(e), EXIT_LOCKED)
    except WatchFolderGone as e:
        _stop_now(f"error: {e}", EXIT_FAILED)
    except DubkitError as e:
        _fail(str(e))
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.daemon and t.is_alive() and t.name.startswith("dubkit-worker") for t in threading.enumerate()):
        os._exit(code)  # a requeued job's thread is still inside dub(): do not wait for it, nothing will publish
    _exit(code)


def batch(
    files: Optional[list[Path]] = typer.Argument(None, help="Videos to dub (use -- before names starting with '-')."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder that receives the dubbed videos."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", "-m", help="CSV: input[,output][,dub options...]."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", help="Parallel jobs (default 1)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config with tables dub and retry (see workflows/config.py)."),
    force: bool = typer.Option(False, help="Redo inputs an earlier run already finished."),
    content_hash: Optional[bool] = typer.Option(None, "--content-hash/--no-content-hash", help="Add a head/tail hash to each file's identity."),
    log: Optional[Path] = typer.Option(None, help="Job log (default OUT/.dubkit/jobs.log)."),
    state: Optional[Path] = typer.Option(None, help="Queue folder (default OUT/.dubkit)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help="Run the jobs on a Ray cluster: 'local' starts a local instance, 'auto' joins the one this node belongs to, or HOST:PORT of its head. Inputs and --out must be on storage every node sees."),
    gpus_per_job: float = typer.Option(0.0, "--gpus-per-job", help="With --ray: GPUs reserved per worker actor (the model path); the model then runs on cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    job: Optional[str] = typer.Option(None, hidden=True, help=_JOB_HELP),
) -> None:
    """Dub a list of files (or a CSV manifest) with the watch folder's job machinery; summary table at the end;
    exit code 1 if any input failed."""
    from workflows.batch import BatchItem, print_summary, read_manifest, run_batch
    from workflows.lock import FolderLocked
    from workflows.runner import Reporter, load_job_function

    try:
        cfg = load_config(config).with_overrides(workers=workers, content_hash=content_hash)
        items = [BatchItem(Path(f)) for f in files or []]
        if manifest is not None:
            items += read_manifest(manifest)
        if not items:
            _fail("nothing to do: give video files or --manifest CSV")
        seen, unique = set(), []
        for it in items:  # the same file named twice is one job
            k = (os.path.abspath(it.input), it.output)
            if k not in seen:
                seen.add(k)
                unique.append(it)
        stop = threading.Event()

        def on_signal(signum, frame):  # first: finish running jobs, queue the rest; second: stop at once
            if stop.is_set():
                raise KeyboardInterrupt
            typer.echo("stopping after the running job(s); run the same command again to resume "
                       "(signal again to stop now)", err=True)
            stop.set()

        reporter = Reporter(quiet=quiet)
        with _job_source(ray, cfg, job, gpus_per_job, reporter, workers) as (cfg, job_fn):
            signal.signal(signal.SIGINT, on_signal)
            signal.signal(signal.SIGTERM, on_signal)
            summary = run_batch(unique, out, cfg, job_fn=job_fn, state_dir=state, log_path=log,
                                force=force, reporter=reporter, stop=stop)
    except FolderLocked as e:
        _fail(str(e), EXIT_LOCKED)
    except DubkitError as e:
        _fail(str(e))
    print_summary(summary)
    _exit(0 if summary.ok else EXIT_FAILED)


def jobs(
    folder: Path = typer.Argument(Path("."), help="A watch folder (INBOX) or batch output folder."),
    state: Optional[Path] = typer.Option(None, help="Queue folder, if not FOLDER/.dubkit."),
    only: Optional[str] = typer.Option(None, "--state-filter", help="Only jobs in this state (queued, running, done, failed)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per job instead of a table."),
) -> None:
    """List the job queue of a watch folder or batch output folder, with states."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from workflows.queue import STATES, JobQueue

    db = (state or folder / STATE_DIR) / "jobs.sqlite"
    if not db.is_file():
        _fail(f"no job queue at {db}; give the watch folder or batch --out folder (or --state)")
    if only is not None and only not in STATES:
        _fail(f"--state-filter must be one of {', '.join(STATES)}")
    q = JobQueue(db, readonly=True)
    rows = q.jobs(only)
    if as_json:
        for j in rows:
            typer.echo(json.dumps({"id": j.id, "state": j.state, "attempts": j.attempts, "input": str(j.input),
                                   "output": str(j.output), "seconds": j.seconds, "error": j.error,
                                   "backends": j.backends}, ensure_ascii=False))
        return
    table = Table(title=f"jobs in {db.parent}")
    for col in ("id", "state", "tries", "input", "output / error", "seconds", "updated"):
        table.add_column(col, overflow="fold")
    style = {"done": "green", "failed": "red", "running": "yellow", "queued": "cyan"}
    for j in rows:
        when = j.finished or j.started or j.created
        table.add_row(str(j.id), Text(j.state, style=style[j.state]), str(j.attempts), Text(str(j.input)),
                      Text((j.error or "").splitlines()[0] if j.error else str(j.output)),
                      "" if j.seconds is None else f"{j.seconds:.1f}",
                      datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S"))
    console = Console()
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in q.counts().items()))


def register(app: typer.Typer) -> None:
    """Add ``watch``, ``batch`` and ``jobs`` to a typer app (dubkit's CLI calls this via the entry point)."""
    app.command("watch")(watch)
    app.command("batch")(batch)
    app.command("jobs")(jobs)
