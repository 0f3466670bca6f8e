"""Batch runs: the watch folder's job machinery over a fixed list of files, then a summary.

Inputs come from the command line or a CSV manifest (``input`` column, optional ``output`` column, any other
column is a ``dubkit.dub`` keyword argument for that row). The queue lives in ``OUT/.dubkit/`` so an interrupted
batch resumes where it stopped when run again: finished inputs are skipped (``force`` redoes them), failed ones
are retried.
"""
from __future__ import annotations

import csv
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dubkit.errors import InputError, OutputError
from workflows.config import STATE_DIR, WorkflowConfig, validate
from workflows.identity import file_key
from workflows.joblog import JobLog
from workflows.lock import FolderLock
from workflows.queue import DONE, FAILED, QUEUED, RUNNING, Job, JobQueue
from workflows.runner import JobFunction, Reporter, Runner, load_job_function


@dataclass
class BatchItem:
    input: Path
    output: Path | None = None  # None → OUT/<input name>
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchRow:
    """One line of the summary."""

    input: Path
    output: Path | None
    state: str  # done | failed | skipped (done by an earlier run) | queued (interrupted)
    seconds: float | None = None
    error: str | None = None
    backends: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchSummary:
    rows: list[BatchRow]

    @property
    def failed(self) -> list[BatchRow]:
        return [r for r in self.rows if r.state not in ("done", "skipped")]

    @property
    def ok(self) -> bool:
        return not self.failed


def _cell(value: str) -> Any:
    """Manifest cells are text; turn the obvious ones into bool/int/float so they reach ``dub`` typed."""
    v = value.strip()
    if v.lower() in ("true", "yes"):
        return True
    if v.lower() in ("false", "no"):
        return False
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def read_manifest(path: Path) -> list[BatchItem]:
    """CSV with a header; ``input`` required, ``output`` optional, other columns are dub options (empty = unset).
    Relative paths are relative to the manifest's folder (inputs) or to ``--out`` (outputs)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "input" not in reader.fieldnames:
                raise InputError(f"manifest {path} needs a header row with an 'input' column "
                                 f"(found {reader.fieldnames or 'no header'})")
            items = []
            for n, row in enumerate(reader, start=2):
                src = (row.pop("input") or "").strip()
                if not src:
                    raise InputError(f"manifest {path}, line {n}: empty 'input'")
                out = (row.pop("output", "") or "").strip()
                opts = {k.strip(): _cell(v) for k, v in row.items() if k and v is not None and v.strip()}
                items.append(BatchItem(path.parent / src if not os.path.isabs(src) else Path(src),
                                       Path(out) if out else None, opts))
            return items
    except OSError as e:
        raise InputError(f"cannot read manifest {path}: {e.strerror}") from e
    except (csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"manifest {path} is not a readable UTF-8 CSV: {e}") from e


def run_batch(items: list[BatchItem], out: Path, config: WorkflowConfig | None = None, *,
              job_fn: JobFunction | None = None, state_dir: Path | None = None, log_path: Path | None = None,
              force: bool = False, reporter: Reporter | None = None, stop: threading.Event | None = None,
              if_locked: str = "exit") -> BatchSummary:
    """Dub every item into ``out`` with ``config.workers`` threads; returns the summary (never raises for a
    single bad input: that is a failed row)."""
    config = config or WorkflowConfig()
    validate(config)
    out = Path(out).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {out}: {e.strerror}") from e
    reporter = reporter or Reporter()
    state_dir = Path(state_dir).resolve() if state_dir else out / STATE_DIR
    targets = _plan_outputs(items, out)
    lock = FolderLock(state_dir / "batch.lock", what=f"output folder {out}")
    lock.acquire(wait=if_locked == "wait")
    try:
        queue = JobQueue(state_dir / "jobs.sqlite")
        runner = Runner(queue, config, job_fn or load_job_function(), on_failure="none",
                        log=JobLog(log_path or state_dir / "jobs.log"), reporter=reporter)
        runner.recover(roots=[out])
        todo = _enqueue(queue, items, targets, config, force)
        _work_through(runner, todo.given, config.workers, stop or threading.Event())
        for job_id, given in todo.given.items():
            todo.rows[job_id] = _row(queue.get(job_id), given)
        runner.sweep_staging([out])
        return BatchSummary([todo.rows[i] for i in sorted(todo.rows)] + todo.missing)
    finally:
        lock.release()


@dataclass
class _Todo:
    """What a batch run has to do: ``given`` maps the job ids to run to the inputs as the user wrote them (for the
    table); ``rows`` already holds the skipped ones, ``missing`` the unreadable inputs."""

    given: dict[int, Path] = field(default_factory=dict)
    rows: dict[int, BatchRow] = field(default_factory=dict)
    missing: list[BatchRow] = field(default_factory=list)


def _enqueue(queue: JobQueue, items: list[BatchItem], targets: list[Path], config: WorkflowConfig,
             force: bool) -> _Todo:
    """Queue every item; one done by an earlier run is skipped unless ``force`` or its destination moved."""
    todo = _Todo()
    for item, target in zip(items, targets):
        try:
            key = file_key(item.input, content_hash=config.content_hash)
        except OSError as e:
            todo.missing.append(BatchRow(item.input, None, "failed", error=f"cannot read input: {e.strerror}"))
            continue
        options = {**config.dub, **item.options}
        job, created = queue.enqueue(key, target, options)
        moved = job.output != target  # same input, new destination: a new delivery, not a repeat
        if not created and (job.state == FAILED or (job.state == DONE and (force or moved))):
            queue.retry(job.id, output=target, options=options)
        elif not created and job.state == DONE:
            todo.rows[job.id] = BatchRow(item.input, job.output, "skipped", job.seconds, None, job.backends)
            continue
        todo.given[job.id] = item.input
    return todo


def _work_through(runner: Runner, ids: Iterable[int], workers: int, stop: threading.Event) -> None:
    """Run the jobs ``ids`` on ``workers`` threads until none is left waiting; Ctrl-C hands running jobs back to
    the queue for the next run."""
    ids = list(ids)
    threads = [threading.Thread(target=runner.work, args=(f"{os.getpid()}-batch-{i}", stop),
                                kwargs={"ids": ids, "until_idle": True}, daemon=True)
               for i in range(min(workers, max(1, len(ids))))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive() and not runner.cancelled:
                t.join(0.2)
    except KeyboardInterrupt:  # stop now: running jobs go back to the queue for the next run
        runner.abort()
        raise
    runner.close()


def _row(job: Job, given: Path) -> BatchRow:
    """The summary line of a job this run worked on."""
    state = job.state if job.state in (DONE, FAILED) else QUEUED if job.state in (QUEUED, RUNNING) else "?"
    err = (job.error or "").splitlines()[0] if job.error else (
        "interrupted: run the same command again to resume" if state == QUEUED else None)
    return BatchRow(given, job.output if state == DONE else None, state, job.seconds, err, job.backends)


def _plan_outputs(items: list[BatchItem], out: Path) -> list[Path]:
    """Where each item goes; two inputs writing the same output is refused up front."""
    targets, seen, by_input = [], {}, {}
    for item in items:
        src = item.input.resolve()
        t = item.output if item.output is not None else Path(item.input.name)
        t = (t if t.is_absolute() else out / t).resolve()
        if by_input.setdefault(src, t) != t:
            raise InputError(f"{item.input} is listed twice with different outputs ({by_input[src]} and {t}); "
                             "dub it in two batch runs")
        if t in seen and Path(seen[t]).resolve() != src:
            raise InputError(f"{seen[t]} and {item.input} would both be written to {t}; give them distinct "
                             "'output' names in a manifest")
        if t == src:
            raise OutputError(f"the output for {item.input} would overwrite the input; choose another --out")
        seen[t] = item.input
        targets.append(t)
    return targets


def print_summary(summary: BatchSummary, console=None) -> None:
    """The table at the end of a batch (rich)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    table = Table(title="dubkit batch", show_lines=False)
    for col, kw in (("input", {"overflow": "fold"}), ("state", {}), ("seconds", {"justify": "right"}),
                    ("output / error", {"overflow": "fold"})):
        table.add_column(col, **kw)
    style = {"done": "green", "skipped": "cyan", "failed": "red", "queued": "yellow"}
    for r in summary.rows:
        table.add_row(Text(str(r.input)), Text(r.state, style=style.get(r.state, "")),  # Text: names are not markup
                      "" if r.seconds is None else f"{r.seconds:.1f}",
                      Text(str(r.output) if r.output else (r.error or "")))
    console.print(table)
    n = len(summary.rows)
    failed = sum(r.state == "failed" for r in summary.rows)
    waiting = len(summary.failed) - failed
    console.print(f"{n - len(summary.failed)}/{n} ok" + (f", {failed} failed" if failed else "")
                  + (f", {waiting} interrupted" if waiting else ""))
