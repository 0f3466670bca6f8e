"""Test-only job function for the Ray tests: remux, leave a trace naming the actor process, then wait, so a test
can kill that process while its job is "rendering" (its output already in the staging folder, not yet published)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from workflows.dryrun import remux


def slow_remux(video: Path, output: Path, *, trace_dir: str, delay: float = 1.0,
               progress: Callable[..., Any] | None = None) -> Any:
    """``remux`` then ``delay`` seconds; ``trace_dir/<pid>-<name>`` records which process ran which input."""
    result = remux(video, output)
    if progress is not None:
        progress("remuxed", name=Path(video).name)
    (Path(trace_dir) / f"{os.getpid()}-{Path(video).name}").write_text(str(output))
    time.sleep(delay)
    return result
