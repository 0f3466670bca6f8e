"""A job function that copies the streams instead of dubbing: checks a watch-folder deployment end to end in
seconds (permissions, shares, systemd unit, downstream scripts) without spending CPU on rendering::

    dubkit watch /srv/inbox --out /srv/done --job workflows.dryrun:remux

It fails like ``dub`` does on a file that is not media (``InputError``, not transient), so the failure path is
exercised too.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dubkit.errors import InputError, MediaToolError


def remux(video: str | Path, output: str | Path, **options: Any) -> SimpleNamespace:
    """Copy every stream of ``video`` into ``output`` (container from the output's extension)."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(Path(video).absolute()), "-map", "0", "-c", "copy",
           str(Path(output).absolute())]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as e:
        raise MediaToolError("ffmpeg is not installed; install it (apt install ffmpeg)") from e
    if proc.returncode != 0:
        Path(output).unlink(missing_ok=True)
        last = (proc.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
        raise InputError(f"{Path(video).name} is not a readable video ({last})")
    return SimpleNamespace(output=Path(output), backends={"job": "remux"}, deliverables=None, options=options)
