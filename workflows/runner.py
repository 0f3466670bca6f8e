"""Run queued jobs: stage the output beside its destination, verify it, publish it with one rename.

The output of a job is first written inside a hidden staging folder next to its final place
(``DONE/.dubkit-partial-<queue>-<job>/``, same file system), checked with ffprobe, and only then renamed into
DONE, so DONE never shows a partial file, whatever moment the process is killed at. Staging folders of jobs that
did not finish are removed when the queue's owner starts again.

The work itself is a *job function* ``fn(input: Path, output: Path, **options) -> result`` — ``dubkit.dub`` by
default; ``result`` may carry ``backends``/``deliverables`` like ``dubkit.DubResult``. Tests and advanced users
inject their own (``--job module:function``).
"""
from __future__ import annotations

import errno
import importlib
import inspect
import os
import shutil
import subprocess
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import ffmpeg

from audiostory_core.errors import DubkitError
from dubkit.io import current_umask
from workflows.config import WorkflowConfig
from workflows.identity import file_key
from workflows.joblog import JobLog
from workflows.queue import DONE, FAILED, QUEUED, Job, JobQueue

JobFunction = Callable[..., Any]

#: Test-only hook: seconds to sleep after the job function wrote its staged output and before it is published,
#: so a test can ``kill -9`` the watcher "during a render" deterministically. Never set it in production.
TEST_DELAY_ENV = "DUBKIT_TEST_JOB_DELAY"
STAGING_PREFIX = ".dubkit-partial-"

_TRANSIENT_ERRNOS = {
    errno.EIO, errno.ENOSPC, errno.EAGAIN, errno.EBUSY, errno.ESTALE, errno.ENOMEM, errno.EDQUOT, errno.ETIMEDOUT,
    errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTDOWN,
    errno.EHOSTUNREACH, errno.EINTR, errno.ENOLCK,
}


class OutputRejected(DubkitError):
    """The job function returned, but what it wrote is missing or not media ffprobe accepts."""


class InputChanged(DubkitError):
    """The input vanished or was rewritten after it was queued (its new version is a job of its own)."""


class _Cancelled(Exception):
    """The job was handed back (shutdown) while it ran: nothing may be published."""


def load_job_function(spec: str | None = None) -> JobFunction:
    """``"package.module:function"`` → the callable; None → ``dubkit.dub`` (imported lazily: it pulls in torch)."""
    spec = spec or "dubkit:dub"
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise DubkitError(f"job function {spec!r} must look like 'package.module:function'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise DubkitError(f"cannot load job function {spec!r}: {e}") from e


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: I/O hiccups, full disks, network shares, timeouts, out of memory.

    Bad input (any ``DubkitError``: corrupt file, no video stream, ...) and programming errors are permanent:
    retrying cannot change their outcome. A job function can force either way with an ``exc.transient`` attribute.
    """
    flag = getattr(exc, "transient", None)
    if isinstance(flag, bool):
        return flag
    if isinstance(exc, DubkitError):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError, MemoryError, subprocess.TimeoutExpired)):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_ERRNOS
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()  # torch OOM


def describe(exc: BaseException) -> str:
    """One line for logs and tables: the class name and the message (the message alone for DubkitError)."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {msg}" if msg else name


def probe_duration(path: Path) -> float:
    """Duration in seconds if ffprobe accepts the file, else ``OutputRejected``."""
    try:
        info = ffmpeg.probe(str(path))
        return float(info["format"]["duration"])
    except (ffmpeg.Error, KeyError, ValueError) as e:
        detail = getattr(e, "stderr", b"") or b""
        last = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(e)]
        raise OutputRejected(f"the dubbed output {path.name} is not valid media ({last[0]})") from e


def unique_path(path: Path) -> Path:
    """``path`` or, if taken, ``stem (2).ext``, ``stem (3).ext`` ... (never overwrite what a user may need)."""
    if not path.exists():
        return path
    n = 2
    while True:
        cand = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not cand.exists():
            return cand
        n += 1


def move_file(src: Path, dst: Path) -> None:
    """Rename, or across file systems copy to a hidden temp name then rename, so ``dst`` is never partial."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(f".{dst.name}.dubkit-moving")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
        os.unlink(src)


def normal_permissions(path: Path) -> None:
    """Give a published output the mode a plain file/folder would get (temp files are created 0600, which would
    hide DONE from the editors and scripts downstream)."""
    mask = current_umask()
    targets = [path] + (list(path.rglob("*")) if path.is_dir() else [])
    for p in targets:
        if p.is_symlink():
            continue
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Reporter:
    """Progress on the terminal (rich, to stderr). Replace or subclass to route it elsewhere."""

    def __init__(self, console=None, *, quiet: bool = False):
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False)
        self.quiet = quiet

    def say(self, msg: str) -> None:
        if not self.quiet:
            self.console.print(msg, markup=False, soft_wrap=True)

    def started(self, job: Job) -> None:
        self.say(f"[job {job.id}] dubbing {job.input.name} (attempt {job.attempts})")

    def progress(self, job: Job, *args: Any, **kwargs: Any) -> None:
        """Called from ``dub(progress=...)`` with a stage message."""
        parts = [str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()]
        self.say(f"[job {job.id}]   {' '.join(parts)}")

    def done(self, job: Job, seconds: float, backends: dict[str, str]) -> None:
        b = ", ".join(f"{k}={v}" for k, v in backends.items())
        self.say(f"[job {job.id}] done {job.input.name} -> {job.output} in {seconds:.1f} s" + (f" ({b})" if b else ""))

    def failed(self, job: Job, error: str, where: Path | None) -> None:
        self.say(f"[job {job.id}] FAILED {job.input.name}: {error}" + (f" (moved to {where})" if where else ""))

    def retrying(self, job: Job, error: str, delay: float, attempts: int) -> None:
        self.say(f"[job {job.id}] transient error on {job.input.name}: {error}; retry {job.attempts + 1}/{attempts} "
                 f"in {delay:.0f} s")

    def requeued(self, job: Job) -> None:
        self.say(f"[job {job.id}] stopped; {job.input.name} is queued again and resumes on the next start")


class Runner:
    """Claims jobs from ``queue`` and runs them; one instance per process, any number of worker threads.

    ``inbox``/``on_failure`` decide what happens to an input that cannot be dubbed ("move" to ``inbox/failed``,
    "mark" in place, "none" for batch runs); ``move_done`` moves inputs away once their output is complete.
    """

    def __init__(self, queue: JobQueue, config: WorkflowConfig, job_fn: JobFunction, *,
                 inbox: Path | None = None, on_failure: str = "none", move_done: Path | None = None,
                 log: JobLog | None = None, reporter: Reporter | None = None):
        self.queue = queue
        self.config = config
        self.job_fn = job_fn
        self.inbox = inbox.resolve() if inbox else None
        self.on_failure = on_failure
        self.move_done = move_done.resolve() if move_done else None
        self.log = log
        self.reporter = reporter or Reporter()
        self.queue_id = queue.queue_id
        self._publish_lock = threading.Lock()
        self._cancelled = False
        self._active: dict[int, tuple[str, Job]] = {}
        self._active_lock = threading.Lock()
        self._wake = threading.Condition()
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._accepts_progress = _accepts_kwarg(job_fn, "progress")

    # -- start-up recovery --------------------------------------------------------------------------------------
    def staging_dir(self, job: Job) -> Path:
        """Per attempt, so a late finisher of a lost lease cannot collide with the job's new owner."""
        return job.output.parent / f"{STAGING_PREFIX}{self.queue_id}-{job.id}.{job.attempts}"

    def _remove_staging(self, job: Job) -> None:
        for d in job.output.parent.glob(f"{STAGING_PREFIX}{self.queue_id}-{job.id}.*"):
            shutil.rmtree(d, ignore_errors=True)

    def recover(self, *, roots: list[Path] = (), everything: bool = True) -> list[Job]:
        """Requeue jobs whose worker died, delete their staging folders (and any other of this queue's under
        ``roots``), finish interrupted input moves. The lock holder calls it with ``everything`` before any worker
        starts (every running job is then an orphan); later calls only catch leases that ran out (a hung worker)."""
        recovered = self.queue.recover(max_attempts=self.config.retry.max_attempts, everything=everything)
        for job in recovered:
            self._remove_staging(job)
            now = self.queue.get(job.id)
            if now.state == FAILED:  # it killed its worker max_attempts times: treat like a bad input
                self.queue.set_disposal(now.id, self._failed_target(now))
                self._finish_failure(self.queue.get(job.id), now.error or "the worker died")
        if everything:
            self.sweep_staging(roots)  # e.g. a crash after a job finished but before its staging folder went
            for job in self.queue.pending_disposals():
                self._dispose(job)
        return recovered

    def sweep_staging(self, roots: list[Path]) -> None:
        """Remove this queue's staging folders under ``roots`` (only while no job of ours is running)."""
        if self.busy:
            return
        for root in roots:
            for stale in Path(root).rglob(f"{STAGING_PREFIX}{self.queue_id}-*"):
                shutil.rmtree(stale, ignore_errors=True)

    # -- workers ------------------------------------------------------------------------------------------------
    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def work(self, worker: str, stop: threading.Event, *, ids: list[int] | None = None,
             until_idle: bool = False) -> None:
        """Worker loop: claim, run, repeat until ``stop`` (or, with ``until_idle``, until none of ``ids`` is
        waiting any more)."""
        self._ensure_heartbeat()
        while not stop.is_set() and not self._cancelled:
            try:
                job = self.queue.claim(worker, self.config.lease_seconds, ids=ids)
                if job is not None:
                    self.run_job(job, worker)
                    continue
            except Exception as e:  # the queue itself failed (disk full, database busy): never let a worker die
                self.reporter.say(f"warning: worker {worker}: {type(e).__name__}: {e}; retrying in 5 s")
                stop.wait(5)
                continue
            if until_idle and not self._waiting(ids):
                return
            nxt = self.queue.next_wakeup()
            timeout = 1.0 if nxt is None else min(1.0, max(0.05, nxt - time.time()))
            with self._wake:
                self._wake.wait(timeout)

    def _waiting(self, ids: list[int] | None) -> bool:
        jobs = self.queue.jobs(QUEUED)
        return any(ids is None or j.id in ids for j in jobs)

    def _ensure_heartbeat(self) -> None:
        with self._active_lock:
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name="dubkit-heartbeat", daemon=True)
                self._heartbeat.start()

    def _beat(self) -> None:
        period = max(0.2, self.config.lease_seconds / 3)
        while not self._heartbeat_stop.wait(period):
            with self._active_lock:
                active = list(self._active.items())
            for job_id, (worker, _) in active:
                try:
                    self.queue.heartbeat(job_id, worker, self.config.lease_seconds)
                except Exception:  # a busy database must not kill the heartbeat; the lease has slack
                    pass

    def abort(self) -> list[Job]:
        """Shutdown without waiting: hand every running job back to the queue (attempt not counted) and make sure
        none of them publishes anything afterwards. Returns the requeued jobs."""
        with self._publish_lock:
            self._cancelled = True
            with self._active_lock:
                active = list(self._active.values())
            out = []
            for worker, job in active:
                if self.queue.requeue(job.id, worker):
                    out.append(job)
                    self.reporter.requeued(job)
                shutil.rmtree(self.staging_dir(job), ignore_errors=True)
        self._heartbeat_stop.set()
        self.wake()
        return out

    def close(self) -> None:
        """Stop the heartbeat thread (after the workers are done)."""
        self._heartbeat_stop.set()

    @property
    def busy(self) -> bool:
        with self._active_lock:
            return bool(self._active)

    # -- one job ------------------------------------------------------------------------------------------------
    def run_job(self, job: Job, worker: str) -> str:
        """Run a claimed job to its next state; returns it ("done", "failed", "queued")."""
        with self._active_lock:
            self._active[job.id] = (worker, job)
        staging = self.staging_dir(job)
        t0 = time.monotonic()
        self.reporter.started(job)
        try:
            self._check_input(job)
            try:
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
            except OSError as e:  # the output side, not the input, is at fault: retry, do not blame the file
                e.transient = True
                raise
            staged = staging / job.output.name
            kwargs = {k: None if v == "off" else v for k, v in job.options.items()}  # TOML/CSV have no null
            if self._accepts_progress and "progress" not in kwargs:
                kwargs["progress"] = lambda *a, **k: self.reporter.progress(job, *a, **k)
            result = self.job_fn(job.input, staged, **kwargs)
            if not staged.is_file():
                raise OutputRejected(f"the job function returned but wrote no {staged.name}")
            duration = probe_duration(staged)
            delay = float(os.environ.get(TEST_DELAY_ENV, "0") or 0)
            if delay > 0:
                time.sleep(delay)
            backends = {str(k): str(v) for k, v in (getattr(result, "backends", None) or {}).items()}
            seconds = time.monotonic() - t0
            self._publish(job, worker, staged, seconds=seconds, duration=duration, backends=backends)
        except _Cancelled:
            return QUEUED
        except Exception as exc:  # every failure is recorded; the loop keeps going
            if self._cancelled:
                return QUEUED
            return self._handle_error(job, worker, exc, time.monotonic() - t0)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with self._active_lock:
                self._active.pop(job.id, None)
        done = self.queue.get(job.id)
        self.reporter.done(done, seconds, backends)
        self._log(done, DONE)
        self._dispose(done)
        return DONE

    def _check_input(self, job: Job) -> None:
        try:
            now = file_key(job.input, content_hash=bool(job.digest))
        except FileNotFoundError:
            raise InputChanged(f"{job.input} disappeared before it could be dubbed") from None
        if (now.size, now.mtime_ns, now.digest) != (job.size, job.mtime_ns, job.digest):
            raise InputChanged(f"{job.input} changed after it was queued; its new version is a new job")

    def _publish(self, job: Job, worker: str, staged: Path, *, seconds: float, duration: float,
                 backends: dict[str, str]) -> None:
        dispose_to = None
        if self.move_done is not None:
            dispose_to = unique_path(self.move_done / self._relative(job.input))
        with self._publish_lock:
            if self._cancelled or not self.queue.heartbeat(job.id, worker, self.config.lease_seconds):
                raise _Cancelled  # shutting down, or our lease ran out and the job went to someone else
            dest_dir = job.output.parent
            dest_dir.mkdir(parents=True, exist_ok=True)
            # Everything else the job wrote (deliverables folder, stems) goes first, the video last: once the video
            # is visible, all that belongs to it is there too. Hidden names are the job's own temp files.
            for extra in sorted(staged.parent.iterdir()):
                if extra == staged or extra.name.startswith("."):
                    continue
                target = dest_dir / extra.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                normal_permissions(extra)
                os.replace(extra, target)
            normal_permissions(staged)
            os.replace(staged, job.output)
            _fsync_dir(dest_dir)
            self.queue.complete(job.id, worker, seconds=seconds, duration=duration, backends=backends,
                                dispose_to=dispose_to)

    def _handle_error(self, job: Job, worker: str, exc: Exception, seconds: float) -> str:
        error = describe(exc)
        detail = "".join(traceback.format_exception(exc)) if not isinstance(exc, DubkitError) else ""
        policy = self.config.retry
        if is_transient(exc) and job.attempts < policy.max_attempts:
            delay = policy.delay(job.attempts)
            self.queue.fail(job.id, worker, error, seconds=seconds, retry_at=time.time() + delay)
            self.reporter.retrying(job, error, delay, policy.max_attempts)
            self.wake()
            return QUEUED
        if is_transient(exc):
            error = f"{error} (gave up after {job.attempts} attempts)"
        touch_input = not isinstance(exc, InputChanged)  # a rewritten input is someone else's new job
        dispose_to = self._failed_target(job) if touch_input else None
        self.queue.fail(job.id, worker, error + (f"\n{detail}" if detail else ""), seconds=seconds,
                        dispose_to=dispose_to)
        self._finish_failure(self.queue.get(job.id), error, touch_input=touch_input)
        return FAILED

    def _failed_target(self, job: Job) -> Path | None:
        if self.on_failure == "move" and self.inbox is not None and job.input.exists():
            return unique_path(self.inbox / "failed" / self._relative(job.input))
        return None

    def _finish_failure(self, job: Job, error: str, *, touch_input: bool = True) -> None:
        self.reporter.failed(job, error, job.dispose_to)
        self._log(job, FAILED, error=error)
        if touch_input and self.on_failure == "mark" and job.input.exists():
            self._write_note(job.input.with_name(job.input.name + ".error.txt"), job)
        self._dispose(job)

    # -- inputs after the job -----------------------------------------------------------------------------------
    def _relative(self, path: Path) -> Path:
        if self.inbox is not None:
            try:
                return path.resolve().relative_to(self.inbox)
            except ValueError:
                pass
        return Path(path.name)

    def _write_note(self, note: Path, job: Job) -> None:
        """The ``NAME.error.txt`` a person reads: what failed, why, and how to retry."""
        retry = ("put the file back into the watch folder" if self.on_failure == "move"
                 else "delete this .error.txt")
        text = (f"dubkit could not dub {job.input.name}\n\n"
                f"reason:   {job.error or 'unknown'}\n"
                f"input:    {job.input}\n"
                f"attempts: {job.attempts}\n"
                f"when:     {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n\n"
                f"To try again after fixing the cause, {retry}.\n")
        note.parent.mkdir(parents=True, exist_ok=True)
        tmp = note.with_name(f".{note.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, note)

    def _dispose(self, job: Job) -> None:
        """Move the input where its finished job says (idempotent: re-run after a crash)."""
        if job.disposed or job.dispose_to is None:
            return
        target = job.dispose_to
        if job.state == FAILED:
            self._write_note(target.with_name(target.name + ".error.txt"), job)
        if job.input.exists():
            try:
                move_file(job.input, target)
            except OSError as e:
                self.reporter.say(f"[job {job.id}] could not move {job.input} to {target}: {e}")
                return
        self.queue.mark_disposed(job.id, target)

    def _log(self, job: Job, state: str, error: str | None = None) -> None:
        if self.log is None:
            return
        self.log.write(job_id=job.id, input=job.input, output=job.output if state == DONE else None, state=state,
                       duration=job.duration, seconds=job.seconds, attempts=job.attempts, backends=job.backends,
                       error=error)


def _accepts_kwarg(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params
