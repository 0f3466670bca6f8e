"""One watcher per folder: an exclusive ``fcntl.flock`` on a lock file in the folder's state directory, and one on
a lock file named after the folder's path, beside it.

The kernel drops a flock when its process dies, however it dies (``kill -9`` included), so a stale lock can never
block a restart. The holder writes its pid (and what it locked) into the file so a second watcher can say who is in
the way. A lock file inside the folder dies with the folder: if the folder is deleted and created again, a second
watcher would find a fresh, free lock while the first still runs on the deleted queue. ``path_lock`` is the lock
that outlives the folder: same path, same lock, whatever inode is there now.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

from dubkit.errors import DubkitError


class FolderLocked(DubkitError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """``with FolderLock(path):`` — exclusive, non-blocking by default; ``wait=True`` blocks until free.

    ``identity`` (e.g. the folder's device and inode) is written after the pid: a refusal can then tell that the
    holder works on an earlier folder of the same name."""

    def __init__(self, path: Path | str, *, what: str = "this folder", identity: str = ""):
        self.path = Path(path)
        self.what = what
        self.identity = identity
        self._fd: int | None = None

    def _contents(self) -> list[str]:
        try:
            return self.path.read_text().splitlines()
        except OSError:
            return []

    def holder(self) -> str:
        """Best-effort description of the current holder (its pid), for messages."""
        lines = self._contents()
        pid = lines[0].strip() if lines else ""
        who = f"pid {pid}" if pid else "another process"
        if self.identity and len(lines) > 1 and lines[1].strip() and lines[1].strip() != self.identity:
            who += ", which still works on an earlier folder of this name (deleted or replaced since)"
        return who

    def acquire(self, *, wait: bool = False, poll_s: float = 0.5, on_wait=None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DubkitError(f"cannot create the lock file {self.path}: {e.strerror}; dubkit needs write access "
                              f"to {self.path.parent.parent}") from e
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    holder = self.holder()
                    os.close(fd)
                    raise FolderLocked(
                        f"{self.what} is already being processed by {holder} (lock {self.path}); stop that one, "
                        "or pass --if-locked wait to take over when it exits"
                    ) from None
                if on_wait is not None and not told:
                    on_wait(self.holder())
                    told = True
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n{self.identity}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                os.close(self._fd)  # closing drops the flock
                self._fd = None

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def path_lock_file(folder: Path, fallback_dir: Path) -> Path:
    """Where the lock named after ``folder``'s path lives: ``.NAME.dubkit-watch.lock`` beside the folder (seen by
    every user and host that sees the folder), or in ``fallback_dir`` when the parent is not writable."""
    folder = Path(folder)
    parent = folder.parent
    if parent != folder and os.access(parent, os.W_OK | os.X_OK):
        return parent / f".{folder.name}.dubkit-watch.lock"
    digest = hashlib.sha1(os.fsencode(folder)).hexdigest()[:16]
    return Path(fallback_dir) / f"{digest}.lock"
