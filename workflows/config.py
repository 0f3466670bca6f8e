"""Settings for watch folders and batch runs, read from TOML (``tomllib``).

A config file (``--config FILE``) looks like::

    [watch]
    stable_seconds = 5        # a file is taken once size and mtime have not changed for this long
    rescan_seconds = 30       # full rescan as a safety net for missed events (network shares)
    workers = 1
    on_failure = "move"       # "move": INBOX/failed/NAME + NAME.error.txt; "mark": leave it, write NAME.error.txt
    on_stop = "requeue"       # SIGTERM/SIGINT: "requeue" the current job and exit now, or "finish" it first
    content_hash = false      # add a head/tail hash to the job identity
    extensions = [".mp4", ".mov", ".mkv"]

    [retry]                   # transient errors only (I/O, timeouts, out of memory)
    max_attempts = 3
    backoff_seconds = 10      # doubled after each attempt ...
    max_backoff_seconds = 600 # ... up to this

    [dub]                     # keyword arguments of dubkit.dub for every file ("off" = None)
    mix = "auto"
    loudness = -23.0
    stems = false

    [folders."trailers/teasers"]   # sub-folder of INBOX (relative path): overrides [dub] for files in it
    mix = "replace"

Per folder, a ``dubkit.toml`` inside INBOX or any sub-folder may also carry a ``[dub]`` table; the nearest folder
wins, key by key, over ``[folders]`` and then ``[dub]`` of the config file.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dubkit.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mxf", ".mts", ".m2ts", ".ts", ".mpg",
                    ".mpeg", ".wmv", ".flv", ".3gp")
FOLDER_CONFIG_NAME = "dubkit.toml"
FAILED_DIR = "failed"
STATE_DIR = ".dubkit"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_seconds: float = 10.0
    max_backoff_seconds: float = 600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (exponential, capped)."""
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class WorkflowConfig:
    stable_seconds: float = 5.0
    rescan_seconds: float = 30.0
    workers: int = 1
    on_failure: str = "move"
    on_stop: str = "requeue"
    content_hash: bool = False
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    lease_seconds: float = 60.0  # a running job whose worker stops heart-beating for this long is requeued
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    dub: dict[str, Any] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)

    def with_overrides(self, **kw: Any) -> "WorkflowConfig":
        """Command-line options win over the file; ``None`` means "not given"."""
        return replace(self, **{k: v for k, v in kw.items() if v is not None})

    def dub_options(self, inbox: Path, file: Path) -> dict[str, Any]:
        """The dub keyword arguments for ``file`` in ``inbox``: [dub] < [folders."rel"] < nearest dubkit.toml."""
        opts = dict(self.dub)
        try:
            rel_dir = file.parent.resolve().relative_to(inbox.resolve())
        except ValueError:
            return opts
        parts = rel_dir.parts
        for depth in range(len(parts) + 1):  # outermost first so deeper folders win
            opts.update(self.folders.get("/".join(parts[:depth]) or ".", {}))
        for depth in range(len(parts) + 1):
            folder_file = inbox.joinpath(*parts[:depth]) / FOLDER_CONFIG_NAME
            if folder_file.is_file():
                opts.update(_read_toml(folder_file).get("dub", {}))
        return opts


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise InputError(f"cannot read config {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"config {path} is not valid TOML: {e}; fix the file (see workflows/config.py)") from e


def load_config(path: Path | str | None) -> WorkflowConfig:
    """Read a config file (None → defaults). Unknown keys are errors: a typo must not be silently ignored."""
    if path is None:
        return WorkflowConfig()
    path = Path(path)
    data = _read_toml(path)
    unknown = set(data) - {"watch", "batch", "retry", "dub", "folders"}
    if unknown:
        raise InputError(f"config {path}: unknown table(s) {sorted(unknown)}; expected [watch], [retry], [dub], "
                         "[folders.\"sub/dir\"]")
    top = {**data.get("batch", {}), **data.get("watch", {})}
    allowed = {f.name for f in fields(WorkflowConfig)} - {"retry", "dub", "folders"}
    bad = set(top) - allowed
    if bad:
        raise InputError(f"config {path}: unknown [watch] key(s) {sorted(bad)}; allowed: {sorted(allowed)}")
    retry_data = data.get("retry", {})
    bad = set(retry_data) - {f.name for f in fields(RetryPolicy)}
    if bad:
        raise InputError(f"config {path}: unknown [retry] key(s) {sorted(bad)}")
    if "extensions" in top:
        top["extensions"] = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in top["extensions"])
    cfg = WorkflowConfig(**top, retry=RetryPolicy(**retry_data), dub=dict(data.get("dub", {})),
                         folders={k.strip("/") or ".": dict(v) for k, v in data.get("folders", {}).items()})
    validate(cfg, where=f"config {path}")
    return cfg


def validate(cfg: WorkflowConfig, *, where: str = "options") -> None:
    if cfg.on_failure not in ("move", "mark"):
        raise InputError(f"{where}: on_failure must be 'move' or 'mark', not {cfg.on_failure!r}")
    if cfg.on_stop not in ("requeue", "finish"):
        raise InputError(f"{where}: on_stop must be 'requeue' or 'finish', not {cfg.on_stop!r}")
    if cfg.workers < 1:
        raise InputError(f"{where}: workers must be at least 1, not {cfg.workers}")
    if cfg.stable_seconds < 0 or cfg.rescan_seconds <= 0:
        raise InputError(f"{where}: stable_seconds must be >= 0 and rescan_seconds > 0")
    if cfg.retry.max_attempts < 1:
        raise InputError(f"{where}: retry.max_attempts must be at least 1")
