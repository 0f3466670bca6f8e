"""Wait until a file has stopped changing, and nobody is still writing it, before taking it.

A file still being copied (slowly, in chunks, or over a network share) changes size or mtime between
observations; it is "ready" only once both have stayed the same for ``stable_seconds`` *and* no process holds it
open for writing (Linux: ``/proc/*/fd``; a copy that pauses longer than the window is still open). Events merely
nominate candidates; readiness is always decided by polling, so a missed event costs latency, never correctness.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_PROC = Path("/proc")
_FLAGS = re.compile(r"^flags:\s+([0-7]+)", re.M)
_ACCESS_MODE = 0o3  # O_ACCMODE: 0 read-only, 1 write-only, 2 read-write


def open_for_writing(path: Path) -> list[int]:
    """The pids of processes that hold ``path`` open for writing (Linux ``/proc``). Empty where that cannot be
    known (no ``/proc``, or other users' processes when not root): callers then rely on stability alone."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    name = os.path.basename(os.path.realpath(path))
    try:
        pids = [p for p in os.listdir(_PROC) if p.isdigit()]
    except OSError:
        return []
    writers = []
    for pid in pids:
        fd_dir = f"{_PROC}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                # A cheap filter first (the name is the same in every mount namespace), then the inode decides.
                if not os.readlink(f"{fd_dir}/{fd}").split(" (deleted)")[0].endswith(name):
                    continue
                fst = os.stat(f"{fd_dir}/{fd}")
                if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                    continue
                with open(f"{_PROC}/{pid}/fdinfo/{fd}") as f:
                    m = _FLAGS.search(f.read())
            except OSError:
                continue
            if m and int(m.group(1), 8) & _ACCESS_MODE in (os.O_WRONLY, os.O_RDWR):
                writers.append(int(pid))
                break
    return writers


def describe_writers(pids: list[int] | tuple[int, ...]) -> str:
    """``pid 812 (rsync)``: for messages (the name from ``/proc/PID/comm`` where readable)."""
    out = []
    for pid in pids:
        try:
            name = (_PROC / str(pid) / "comm").read_text().strip()
        except OSError:
            name = ""
        out.append(f"pid {pid}" + (f" ({name})" if name else ""))
    return ", ".join(out)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # monotonic time at which this (size, mtime) was first seen (or a writer last seen)
    writers: tuple[int, ...] = ()


class StabilityTracker:
    """``nominate`` candidates, then ``ready()`` hands back each one once it is stable and closed.

    ``writers`` finds the processes writing a file (``open_for_writing``; injectable for tests); ``say`` hears
    once per file that it is stable but still open, so a paused copy is visibly waited for."""

    def __init__(self, stable_seconds: float, clock: Callable[[], float] = time.monotonic, *,
                 writers: Callable[[Path], list[int]] = open_for_writing,
                 say: Callable[[str], None] | None = None):
        self.stable_seconds = stable_seconds
        self._clock = clock
        self._writers = writers
        self._say = say
        self._seen: dict[Path, _Seen] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def nominate(self, path: Path) -> None:
        """Start (or keep) watching ``path``; an unchanged file keeps its timer."""
        self.observe(path)

    def observe(self, path: Path) -> os.stat_result | None:
        try:
            st = os.stat(path)
        except OSError:
            self._seen.pop(path, None)
            return None
        now = self._clock()
        seen = self._seen.get(path)
        if seen is None or (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now, seen.writers if seen else ())
        return st

    def ready(self) -> list[tuple[Path, os.stat_result]]:
        """Re-stat every candidate; return (and forget) those unchanged for ``stable_seconds`` and not open for
        writing. One still open starts its window again (it is looked at once per window, not on every poll)."""
        out = []
        for path in list(self._seen):
            st = self.observe(path)
            if st is None:
                continue
            seen = self._seen[path]
            if self._clock() - seen.since < self.stable_seconds:
                continue
            writers = tuple(self._writers(path))
            if writers:
                if self._say is not None and writers != seen.writers:
                    self._say(f"{path.name} has not changed for {self.stable_seconds:g} s but is still open for "
                              f"writing by {describe_writers(writers)}; waiting for it to be closed")
                seen.writers, seen.since = writers, self._clock()
                continue
            out.append((path, st))
            del self._seen[path]
        return out
