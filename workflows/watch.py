"""The watch folder: new videos dropped into INBOX are dubbed into DONE.

Events come from watchdog; a periodic rescan is the safety net (network shares miss events). Either only
*nominates* a file: it is queued once its size and mtime have been stable for ``stable_seconds`` and no process
holds it open for writing (``stability.py``). The durable queue (``queue.py``) makes each input version run
exactly once across restarts, the folder locks (``lock.py``) keep a second watcher off the same INBOX, even one
deleted and created again, and ``runner.py`` publishes outputs atomically. If INBOX or the queue file is deleted
or replaced under a running watcher, it stops with one line: its queue no longer stands for what is on disk.
"""
from __future__ import annotations

import os
import queue as pyqueue
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from audiostory_core.cache import cache_dir
from dubkit.errors import DubkitError, InputError, OutputError
from workflows.config import FAILED_DIR, FOLDER_CONFIG_NAME, STATE_DIR, WorkflowConfig, validate
from workflows.disposal import note_for, noted_input
from workflows.failures import describe, mount_point, says_disk_full
from workflows.identity import file_key
from workflows.joblog import JobLog
from workflows.lock import FolderLock, path_lock_file
from workflows.queue import FAILED, JobQueue
from workflows.runner import JobFunction, Reporter, Runner, load_job_function
from workflows.stability import StabilityTracker

EXIT_OK, EXIT_LOCKED = 0, 3


class WatchFolderGone(DubkitError):
    """INBOX or its queue file was deleted or replaced while the watcher ran."""


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Nominator(FileSystemEventHandler):
    """watchdog callback thread → a thread-safe queue of paths the main loop looks at."""

    def __init__(self, sink: "pyqueue.Queue[Path]"):
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        for p in (getattr(event, "dest_path", None), event.src_path):
            if p:
                self.sink.put(Path(os.fsdecode(p)))


class Watcher:
    """``Watcher(inbox, done, config).run()`` blocks until SIGTERM/SIGINT (or, with ``exit_when_idle``, until
    nothing is left to do) and returns an exit code."""

    def __init__(self, inbox: Path, done: Path, config: WorkflowConfig | None = None, *,
                 job_fn: JobFunction | None = None, state_dir: Path | None = None, move_done: Path | None = None,
                 log_path: Path | None = None, if_locked: str = "exit", exit_when_idle: bool = False,
                 reporter: Reporter | None = None, poll_seconds: float = 0.25):
        self.inbox = Path(inbox).resolve()
        self.done = Path(done).resolve()
        self.config = config or WorkflowConfig()
        validate(self.config)
        self.state_dir = Path(state_dir).resolve() if state_dir else self.inbox / STATE_DIR
        self.move_done = Path(move_done).resolve() if move_done else None
        self.log_path = Path(log_path) if log_path else self.state_dir / "jobs.log"
        if if_locked not in ("exit", "wait"):
            raise InputError(f"--if-locked must be 'exit' or 'wait', not {if_locked!r}")
        self.if_locked = if_locked
        self.exit_when_idle = exit_when_idle
        self.reporter = reporter or Reporter()
        self.poll_seconds = poll_seconds
        self._job_fn = job_fn
        self._stop = threading.Event()
        self._signals = 0
        self._excluded = [p for p in (self.state_dir, self.inbox / FAILED_DIR, self.done, self.move_done) if p]
        self._handled: dict[Path, tuple[int, int]] = {}

    # -- what counts as an input --------------------------------------------------------------------------------
    def wanted(self, path: Path) -> bool:
        """A video file inside INBOX, not hidden, not in failed/, the state folder, DONE or the move-done folder."""
        try:
            rel = path.relative_to(self.inbox)
        except ValueError:
            return False
        if any(part.startswith(".") for part in rel.parts):
            return False
        if any(path == ex or ex in path.parents for ex in self._excluded):
            return False
        return path.suffix.lower() in self.config.extensions and path.name != FOLDER_CONFIG_NAME

    def scan(self) -> list[Path]:
        """Every wanted file now in INBOX (the rescan safety net)."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.inbox):
            d = Path(dirpath)
            dirnames[:] = [n for n in dirnames if not n.startswith(".") and self.wanted_dir(d / n)]
            out += [d / n for n in filenames if self.wanted(d / n)]
        return out

    def wanted_dir(self, path: Path) -> bool:
        return not any(path == ex or ex in path.parents for ex in self._excluded)

    # -- main loop ----------------------------------------------------------------------------------------------
    def request_stop(self, signum: int | None = None, frame=None) -> None:
        """First signal: stop (finish or requeue the current job, per ``on_stop``); second: requeue now."""
        self._signals += 1
        self._stop.set()
        if self._signals > 1 and getattr(self, "runner", None) is not None:
            self.runner.abort()

    def run(self) -> int:
        if not self.inbox.is_dir():
            raise InputError(f"watch folder {self.inbox} does not exist or is not a folder; create it first")
        if self.done == self.inbox:
            raise OutputError("--out must differ from the watch folder (outputs would be taken as new inputs)")
        try:
            self.done.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create output folder {self.done}: {e.strerror}") from e
        # The lock lives in INBOX itself (not in --state): two watchers with different state folders must still
        # see each other. A second one, named after INBOX's path and kept beside it, outlives INBOX: a watcher
        # still running on a deleted INBOX keeps out a new one on the folder created again at that path.
        inode = _inode(self.inbox)
        identity = f"{self.inbox} dev {inode[0]} inode {inode[1]}" if inode else str(self.inbox)
        what = f"watch folder {self.inbox}"
        locks = [FolderLock(path_lock_file(self.inbox, cache_dir("watch-locks")), what=what, identity=identity),
                 FolderLock(self.inbox / STATE_DIR / "watch.lock", what=what, identity=identity)]
        held: list[FolderLock] = []
        try:
            for lock in locks:
                lock.acquire(wait=self.if_locked == "wait",
                             on_wait=lambda who: self.reporter.say(f"{self.inbox} is being watched by {who}; "
                                                                   "waiting for it to stop"))
                held.append(lock)
            return self._run_locked()
        finally:
            for lock in reversed(held):
                lock.release()

    def _run_locked(self) -> int:
        cfg = self.config
        job_fn = self._job_fn or load_job_function()
        self.queue = JobQueue(self.state_dir / "jobs.sqlite")
        self.runner = Runner(self.queue, cfg, job_fn, inbox=self.inbox, on_failure=cfg.on_failure,
                             move_done=self.move_done, log=JobLog(self.log_path), reporter=self.reporter)
        recovered = self.runner.recover(roots=[self.done])
        if recovered:
            self.reporter.say(f"resuming {len(recovered)} job(s) interrupted by the previous run")
        events: pyqueue.Queue[Path] = pyqueue.Queue()
        observer = Observer()
        observer.schedule(_Nominator(events), str(self.inbox), recursive=True)
        observer.start()
        tracker = StabilityTracker(cfg.stable_seconds, say=self.reporter.say)
        identity = {self.inbox: _inode(self.inbox), self.queue.path: _inode(self.queue.path)}
        workers = [threading.Thread(target=self.runner.work, args=(f"{os.getpid()}-{i}", self._stop),
                                    name=f"dubkit-worker-{i}", daemon=True) for i in range(cfg.workers)]
        for w in workers:
            w.start()
        self.reporter.say(f"watching {self.inbox} -> {self.done} ({cfg.workers} worker(s); stop with Ctrl-C)")
        last_scan = last_recover = -float("inf")
        gone = None
        try:
            while not self._stop.is_set():
                if (gone := self._lost(identity)) is not None:
                    break
                try:
                    last_scan, last_recover = self._tick(tracker, events, last_scan, last_recover)
                except (OSError, sqlite3.Error) as e:  # a share went away, the disk is full...: keep watching
                    self._warn(e)
                    self._stop.wait(5)
                    continue
                if self.exit_when_idle and self._idle(tracker, events):
                    break
                self._stop.wait(self.poll_seconds)
        finally:
            observer.stop()
        self._stop.set()
        if gone is not None:
            self._give_up(observer, gone)
        if cfg.on_stop == "requeue" and self._signals:
            self.runner.abort()
        else:
            self.runner.wake()
            for w in workers:
                while w.is_alive() and not self.runner.cancelled:
                    w.join(0.2)
        observer.join(timeout=5)
        self.runner.close()
        self.runner.sweep_staging([self.done])
        counts = self.queue.counts()
        self.reporter.say("stopped: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return EXIT_OK

    def _warn(self, e: BaseException) -> None:
        if says_disk_full(e) is not None:
            self.reporter.say(f"warning: no space left on {mount_point(self.state_dir)} for the job queue "
                              f"({describe(e)}); free some space there; retrying in 5 s")
        else:
            self.reporter.say(f"warning: {type(e).__name__}: {e}; retrying in 5 s")

    def _give_up(self, observer, why: str) -> None:
        """INBOX or the queue went away: nothing of this run can be recorded any more. Hand the running jobs back,
        publish nothing, raise ``WatchFolderGone``."""
        try:
            self.runner.abort()
        except sqlite3.Error:
            pass
        self.runner.close()
        observer.join(timeout=5)
        raise WatchFolderGone(why)

    def _lost(self, identity: dict[Path, tuple[int, int] | None]) -> str | None:
        """Why this watcher must stop because INBOX or its queue file is no longer the one it started with."""
        for path, was in identity.items():
            now = _inode(path)
            if now == was:
                continue
            if path == self.inbox:
                if now is None:
                    return (f"the watch folder {path} was deleted while the watcher ran; stopped. Create it and "
                            "start the watcher again")
                return (f"the watch folder {path} was deleted and created again while the watcher ran; stopped (its "
                        "job queue went with the old folder). Start the watcher again to watch the new one")
            if now is None:
                return (f"the job queue {path} was deleted while the watcher ran; stopped (without it, finished "
                        "files would be dubbed again). Start the watcher again to begin a new queue")
            return (f"the job queue {path} was replaced by another file while the watcher ran; stopped. Start the "
                    "watcher again to use the new one")
        return None

    def _tick(self, tracker: StabilityTracker, events: "pyqueue.Queue[Path]", last_scan: float,
              last_recover: float) -> tuple[float, float]:
        """One pass of the main loop: rescan when due, take in events, queue stable files, catch dead leases."""
        if time.monotonic() - last_scan >= self.config.rescan_seconds:
            present = self.scan()
            for p in set(self._handled) - set(present):  # gone: if it comes back, look again
                del self._handled[p]
            for p in present:
                self._nominate(tracker, p)
            last_scan = time.monotonic()
        self._drain(events, tracker)
        for path, st in tracker.ready():
            self._take(path, st)
        if time.monotonic() - last_recover >= 5:  # leases of hung workers
            self.runner.recover(everything=False)
            last_recover = time.monotonic()
        return last_scan, last_recover

    def _drain(self, events: "pyqueue.Queue[Path]", tracker: StabilityTracker) -> None:
        while True:
            try:
                p = events.get_nowait()
            except pyqueue.Empty:
                return
            self._handled.pop(p, None)  # something happened to it: look again
            if self.wanted(p):
                self._nominate(tracker, p)
            elif (src := noted_input(p)) is not None and self.wanted(src):  # a deleted mark-mode note: retry
                self._handled.pop(src, None)
                self._nominate(tracker, src)

    def _nominate(self, tracker: StabilityTracker, path: Path) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        if self._handled.get(path) == (st.st_size, st.st_mtime_ns):
            return
        tracker.nominate(path)

    def _take(self, path: Path, st: os.stat_result) -> None:
        """A stable file: queue it (a no-op for a version already known), or retry it if the user asked to."""
        try:
            key = file_key(path, content_hash=self.config.content_hash, stat=st)
        except OSError:
            return
        out = self.done / path.relative_to(self.inbox)
        options = self.config.dub_options(self.inbox, path)
        job, created = self.queue.enqueue(key, out, options)
        if not created and job.state == FAILED and self._wants_retry(job, path):
            self.reporter.say(f"[job {job.id}] {path.name} is back; trying again")
            self.queue.retry(job.id, options=options)
            created = True
        if created:
            self.reporter.say(f"[job {job.id}] queued {path.name}")
            self.runner.wake()
        if not (job.state == FAILED and self.config.on_failure == "mark"):
            self._handled[path] = (st.st_size, st.st_mtime_ns)

    def _wants_retry(self, job, path: Path) -> bool:
        """A failed input moved back into INBOX, or (mark mode) whose .error.txt was deleted, is retried."""
        if self.config.on_failure == "mark":
            return not note_for(path).exists()
        return job.disposed and job.dispose_to is not None and job.dispose_to != path

    def _idle(self, tracker: StabilityTracker, events: "pyqueue.Queue[Path]") -> bool:
        c = self.queue.counts()
        return not len(tracker) and events.empty() and not c["queued"] and not c["running"] and not self.runner.busy


def install_signal_handlers(handler: Callable[[int, object], None]) -> None:
    """SIGTERM (systemd stop, docker stop) and SIGINT (Ctrl-C) both ask for a clean stop."""
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
