"""workflows: automation on top of ``dubkit.dub`` — the watch folder with its durable job queue, batch runs, and
example post-production scripts. It imports dubkit; dubkit never imports it (its CLI finds ``watch``, ``batch``
and ``jobs`` through the ``dubkit.commands`` entry point).

    >>> from pathlib import Path
    >>> from workflows import Watcher, run_batch, BatchItem, load_config
    >>> Watcher("inbox", "done", load_config("watch.toml")).run()            # blocks until SIGTERM/SIGINT
    >>> run_batch([BatchItem(Path("a.mp4"))], Path("out")).ok
"""
from __future__ import annotations

_EXPORTS = {
    "Watcher": "workflows.watch",
    "run_batch": "workflows.batch", "read_manifest": "workflows.batch", "BatchItem": "workflows.batch",
    "BatchSummary": "workflows.batch", "print_summary": "workflows.batch",
    "JobQueue": "workflows.queue", "Job": "workflows.queue",
    "Runner": "workflows.runner", "Reporter": "workflows.runner", "load_job_function": "workflows.runner",
    "WorkflowConfig": "workflows.config", "RetryPolicy": "workflows.config", "load_config": "workflows.config",
    "FolderLock": "workflows.lock", "FolderLocked": "workflows.lock",
    "JobLog": "workflows.joblog", "file_key": "workflows.identity", "FileKey": "workflows.identity",
}


def __getattr__(name: str):
    # Lazy, so `dubkit --help` loading the entry point does not pay for watchdog/sqlite/ffmpeg imports.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)


__all__ = sorted(_EXPORTS)
