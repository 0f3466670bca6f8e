"""Run queued jobs: claim, run, verify, publish, retry or give up — the scheduling of the watch folder and batch.

The work itself is a *job function* ``fn(input: Path, output: Path, **options) -> result`` — ``dubkit.dub`` by
default; ``result`` may carry ``backends``/``deliverables`` like ``dubkit.DubResult``. Tests and advanced users
inject their own (``--job module:function``). Where outputs are written before they are published is
``staging.py``; what happens to inputs afterwards is ``disposal.py``; which errors are retried is ``failures.py``.
"""
from __future__ import annotations

import importlib
import inspect
import threading
import time
from pathlib import Path
from typing import Any, Callable

from audiostory_core.errors import DubkitError
from workflows import staging
from workflows.config import WorkflowConfig
from workflows.disposal import Disposal
from workflows.failures import (InputChanged, StillBeingWritten, describe, detail, is_transient, out_of_space,
                                says_disk_full)
from workflows.identity import file_key
from workflows.joblog import JobLog
from workflows.queue import DONE, FAILED, QUEUED, Job, JobQueue
from workflows.stability import describe_writers, open_for_writing

JobFunction = Callable[..., Any]


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

    def waiting(self, job: Job, error: str, delay: float) -> None:
        self.say(f"[job {job.id}] {job.input.name} waits: {error}; trying again in {delay:.0f} s")

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
        self.log = log
        self.reporter = reporter or Reporter()
        self.queue_id = queue.queue_id
        self.staging = staging.Staging(queue.queue_id)
        self.inputs = Disposal(inbox=inbox, on_failure=on_failure, move_done=move_done, say=self.reporter.say)
        self._publish_lock = threading.Lock()
        self._cancelled = threading.Event()
        self._active: dict[int, tuple[str, Job]] = {}
        self._active_lock = threading.Lock()
        self._wake = threading.Condition()
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._accepts_progress = _accepts_kwarg(job_fn, "progress")
        self._waits: dict[int, int] = {}  # job id -> how often in a row it waited (disk space, a writer)

    @property
    def cancelled(self) -> bool:
        """True once ``abort`` ran: workers stop claiming and nothing more is published."""
        return self._cancelled.is_set()

    @property
    def busy(self) -> bool:
        with self._active_lock:
            return bool(self._active)

    # -- start-up recovery --------------------------------------------------------------------------------------
    def recover(self, *, roots: list[Path] = (), everything: bool = True) -> list[Job]:
        """Requeue jobs whose worker died, delete their staging folders (and any other of this queue's under
        ``roots``), finish interrupted input moves. The lock holder calls it with ``everything`` before any worker
        starts (every running job is then an orphan); later calls only catch leases that ran out (a hung worker)."""
        recovered = self.queue.recover(max_attempts=self.config.retry.max_attempts, everything=everything)
        for job in recovered:
            self.staging.discard_all_attempts(job)
            now = self.queue.get(job.id)
            if now.state == FAILED:  # it killed its worker max_attempts times: treat like a bad input
                self.queue.set_disposal(now.id, self.inputs.failed_target(now))
                self._finish_failure(self.queue.get(job.id), now.error or "the worker died")
        if everything:
            self.sweep_staging(roots)  # e.g. a crash after a job finished but before its staging folder went
            for job in self.queue.pending_disposals():
                self._dispose(job)
        return recovered

    def sweep_staging(self, roots: list[Path]) -> None:
        """Remove this queue's staging folders under ``roots`` (only while no job of ours is running)."""
        if not self.busy:
            self.staging.sweep(roots)

    # -- workers ------------------------------------------------------------------------------------------------
    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def work(self, worker: str, stop: threading.Event, *, ids: list[int] | None = None,
             until_idle: bool = False) -> None:
        """Worker loop: claim, run, repeat until ``stop`` (or, with ``until_idle``, until none of ``ids`` is
        waiting any more)."""
        self._ensure_heartbeat()
        while not stop.is_set() and not self.cancelled:
            try:
                job = self.queue.claim(worker, self.config.lease_seconds, ids=ids)
                if job is not None:
                    self.run_job(job, worker)
                    continue
            except Exception as e:  # the queue itself failed (disk full, database busy): never let a worker die
                full = " (no space left for the job queue: free some space there)" if says_disk_full(e) else ""
                self.reporter.say(f"warning: worker {worker}: {type(e).__name__}: {e}{full}; retrying in 5 s")
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
            self._cancelled.set()
            with self._active_lock:
                active = list(self._active.values())
            out = []
            for worker, job in active:
                if self.queue.requeue(job.id, worker):
                    out.append(job)
                    self.reporter.requeued(job)
                self.staging.discard(job)
        self._heartbeat_stop.set()
        self.wake()
        return out

    def close(self) -> None:
        """Stop the heartbeat thread (after the workers are done)."""
        self._heartbeat_stop.set()

    # -- one job ------------------------------------------------------------------------------------------------
    def run_job(self, job: Job, worker: str) -> str:
        """Run a claimed job to its next state; returns it ("done", "failed", "queued")."""
        with self._active_lock:
            self._active[job.id] = (worker, job)
        t0 = time.monotonic()
        self.reporter.started(job)
        try:
            _check_input(job)
            if writers := open_for_writing(job.input):  # e.g. a batch input still being copied, or a waiting job
                raise StillBeingWritten(f"{job.input.name} is still open for writing by {describe_writers(writers)}; waiting "
                                        "for it to be closed")
            staged = self.staging.prepare(job)
            result = self.job_fn(job.input, staged, **self._job_kwargs(job))
            duration = staging.verify(staged)
            backends = {str(k): str(v) for k, v in (getattr(result, "backends", None) or {}).items()}
            seconds = time.monotonic() - t0
            self._publish(job, worker, staged, seconds=seconds, duration=duration, backends=backends)
        except _Cancelled:
            return QUEUED
        except Exception as exc:  # every failure is recorded; the loop keeps going
            if self.cancelled:
                return QUEUED
            return self._handle_error(job, worker, exc, time.monotonic() - t0)
        finally:
            self.staging.discard(job)
            with self._active_lock:
                self._active.pop(job.id, None)
        self._waits.pop(job.id, None)
        done = self.queue.get(job.id)
        self.reporter.done(done, seconds, backends)
        self._log(done, DONE)
        self._dispose(done)
        return DONE

    def _job_kwargs(self, job: Job) -> dict[str, Any]:
        kwargs = {k: None if v == "off" else v for k, v in job.options.items()}  # TOML/CSV have no null
        if self._accepts_progress and "progress" not in kwargs:
            kwargs["progress"] = lambda *a, **k: self.reporter.progress(job, *a, **k)
        return kwargs

    def _publish(self, job: Job, worker: str, staged: Path, *, seconds: float, duration: float,
                 backends: dict[str, str]) -> None:
        dispose_to = self.inputs.done_target(job)
        with self._publish_lock:
            if self.cancelled or not self.queue.heartbeat(job.id, worker, self.config.lease_seconds):
                raise _Cancelled  # shutting down, or our lease ran out and the job went to someone else
            staging.publish(staged, job.output)
            self.queue.complete(job.id, worker, seconds=seconds, duration=duration, backends=backends,
                                dispose_to=dispose_to)

    def _handle_error(self, job: Job, worker: str, exc: Exception, seconds: float) -> str:
        policy = self.config.retry
        wait = self._reason_to_wait(job, exc)
        if wait is None and not isinstance(exc, InputChanged) and not self._will_retry(job, exc):
            # About to blame the input. A copy that paused longer than the stability window looks truncated: if
            # it grew meanwhile its new version is a new job, if a writer still holds it open we wait for it.
            changed = _changed_since_queued(job)
            if changed is not None:
                exc = changed
            elif writers := open_for_writing(job.input):
                wait = StillBeingWritten(f"{job.input.name} looks incomplete ({describe(exc)}) and is still open "
                                         f"for writing by {describe_writers(writers)}; waiting for the copy to finish")
        if wait is not None:  # not the input's fault: wait however long it takes, the attempt is not counted
            n = self._waits[job.id] = self._waits.get(job.id, 0) + 1
            delay = policy.delay(n)
            self.queue.postpone(job.id, worker, describe(wait), retry_at=time.time() + delay)
            self.reporter.waiting(job, str(wait), delay)
            self.wake()
            return QUEUED
        self._waits.pop(job.id, None)
        error = describe(exc)
        if self._will_retry(job, exc):
            delay = policy.delay(job.attempts)
            self.queue.fail(job.id, worker, error, seconds=seconds, retry_at=time.time() + delay)
            self.reporter.retrying(job, error, delay, policy.max_attempts)
            self.wake()
            return QUEUED
        if is_transient(exc):
            error = f"{error} (gave up after {job.attempts} attempts)"
        touch_input = not isinstance(exc, InputChanged)  # a rewritten input is someone else's new job
        dispose_to = self.inputs.failed_target(job) if touch_input else None
        trace = detail(exc)
        self.queue.fail(job.id, worker, error + (f"\n{trace}" if trace else ""), seconds=seconds,
                        dispose_to=dispose_to)
        self._finish_failure(self.queue.get(job.id), error, touch_input=touch_input)
        return FAILED

    def _will_retry(self, job: Job, exc: Exception) -> bool:
        return is_transient(exc) and job.attempts < self.config.retry.max_attempts

    def _reason_to_wait(self, job: Job, exc: Exception) -> DubkitError | None:
        """Why the job must wait rather than count a failure: its input is still being written, or the disk it
        writes to is full (the output copies the input's video stream: it needs at least the input's size)."""
        if isinstance(exc, StillBeingWritten):
            return exc
        if isinstance(exc, InputChanged):
            return None
        return out_of_space(exc, job.output.parent, needed=job.size)

    def _finish_failure(self, job: Job, error: str, *, touch_input: bool = True) -> None:
        self.reporter.failed(job, error, job.dispose_to)
        self._log(job, FAILED, error=error)
        if touch_input:
            self.inputs.mark(job)
        self._dispose(job)

    def _dispose(self, job: Job) -> None:
        """Move the input where its finished job says; the queue records it once the move happened."""
        if job.disposed or job.dispose_to is None:
            return
        if self.inputs.dispose(job):
            self.queue.mark_disposed(job.id, job.dispose_to)

    def _log(self, job: Job, state: str, error: str | None = None) -> None:
        if self.log is None:
            return
        self.log.write(job_id=job.id, input=job.input, output=job.output if state == DONE else None, state=state,
                       duration=job.duration, seconds=job.seconds, attempts=job.attempts, backends=job.backends,
                       error=error)


def _check_input(job: Job) -> None:
    """``InputChanged`` unless the input is still the version that was queued."""
    try:
        now = file_key(job.input, content_hash=bool(job.digest))
    except FileNotFoundError:
        raise InputChanged(f"{job.input} disappeared before it could be dubbed") from None
    if (now.size, now.mtime_ns, now.digest) != (job.size, job.mtime_ns, job.digest):
        raise InputChanged(f"{job.input} changed after it was queued; its new version is a new job")


def _changed_since_queued(job: Job) -> InputChanged | None:
    """An ``InputChanged`` if the input was rewritten, grew or vanished while its job ran, else None."""
    try:
        _check_input(job)
    except InputChanged as e:
        return InputChanged(str(e).replace("changed after it was queued", "changed while it was being dubbed")
                            .replace("before it could be dubbed", "while it was being dubbed"))
    except OSError:
        return None
    return None


def _accepts_kwarg(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params
