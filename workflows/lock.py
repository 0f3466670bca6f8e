"""One watcher per folder: an exclusive ``fcntl.flock`` on a lock file in the folder's state directory.

The kernel drops a flock when its process dies, however it dies (``kill -9`` included), so a stale lock can never
block a restart. The holder writes its pid into the file so a second watcher can say who is in the way.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from dubkit.errors import DubkitError


class FolderLocked(DubkitError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """``with FolderLock(path):`` — exclusive, non-blocking by default; ``wait=True`` blocks until free."""

    def __init__(self, path: Path | str, *, what: str = "this folder"):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def holder(self) -> str:
        """Best-effort description of the current holder (its pid), for messages."""
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"pid {pid}" if pid else "another process"

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
        os.write(fd, f"{os.getpid()}\n".encode())
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
