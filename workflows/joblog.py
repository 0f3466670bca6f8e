"""The job log: one JSON line per finished job (input, output, duration, seconds taken, backends, error).

JSON lines rather than columns because file names may hold tabs, quotes or newlines; ``jq`` or
``pandas.read_json(lines=True)`` read it directly. Each line is written with one ``write`` in append mode, so
lines from several processes never interleave.
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class JobLog:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, *, job_id: int, input: Path, output: Path | None, state: str, duration: float | None,
              seconds: float | None, attempts: int, backends: dict[str, str] | None = None,
              error: str | None = None, **extra: Any) -> None:
        rec = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "job": job_id, "state": state, "input": str(input), "output": str(output) if output else None,
            "duration": None if duration is None else round(duration, 3),
            "seconds": None if seconds is None else round(seconds, 3),
            "attempts": attempts, "backends": backends or {}, "error": error, **extra,
        }
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
