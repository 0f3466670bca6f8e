"""Wait until a file has stopped changing before taking it.

A file still being copied (slowly, in chunks, or over a network share) changes size or mtime between
observations; it is "ready" only once both have stayed the same for ``stable_seconds``. Events merely nominate
candidates; readiness is always decided by ``stat`` polling, so a missed event costs latency, never correctness.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # monotonic time at which this (size, mtime) was first seen


class StabilityTracker:
    def __init__(self, stable_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.stable_seconds = stable_seconds
        self._clock = clock
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
            self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now)
        return st

    def ready(self) -> list[tuple[Path, os.stat_result]]:
        """Re-stat every candidate; return (and forget) those unchanged for ``stable_seconds``."""
        out = []
        for path in list(self._seen):
            st = self.observe(path)
            if st is None:
                continue
            if self._clock() - self._seen[path].since >= self.stable_seconds:
                out.append((path, st))
                del self._seen[path]
        return out
