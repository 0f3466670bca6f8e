"""Where dubkit keeps what it can rebuild (embedding indexes, rendered banks, text features) and, by default,
the models ``dubkit models pull`` fetches: one rule, so one variable moves or clears all of it.

``$DUBKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/dubkit``, else ``~/.cache/dubkit`` on every platform (the XDG
rule rather than each OS's own cache folder, so models pulled before keep being found where they are).
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "DUBKIT_CACHE_DIR"


def cache_dir(*parts: str, root: str | os.PathLike | None = None) -> Path:
    """``root`` (a caller's explicit choice) or the project's cache folder, joined with ``parts``; not created
    here, so reading a cache never leaves folders behind."""
    if root is not None:
        base = Path(root).expanduser()
    elif os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV]).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dubkit"
    return base.joinpath(*parts)
