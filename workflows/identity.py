"""What makes two sightings of a file "the same job".

A job is keyed by the input's absolute path, its size and its modification time (nanoseconds), plus optionally a
hash of its first and last 64 KiB. A re-dropped identical file (same path, size and mtime, e.g. ``mv``/``rsync -t``)
is therefore not redone, while any rewrite of the file (new mtime or size) is a new job. The hash catches
rewrites that keep size and mtime (rare: tools that restore timestamps) without reading whole videos.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

_END_BYTES = 64 * 1024


@dataclass(frozen=True)
class FileKey:
    """The identity of one version of one input file."""

    path: str  # absolute, normalised (symlinks kept: the user dropped *this* name)
    size: int
    mtime_ns: int
    digest: str = ""  # sha256 of head+tail when content hashing is on, else ""


def ends_digest(path: Path, size: int) -> str:
    """sha256 over the first and last 64 KiB (and the size), cheap even for multi-GB videos."""
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_END_BYTES))
        if size > _END_BYTES:
            f.seek(max(_END_BYTES, size - _END_BYTES))
            h.update(f.read(_END_BYTES))
    return h.hexdigest()


def file_key(path: Path, *, content_hash: bool = False, stat: os.stat_result | None = None) -> FileKey:
    """Identity of the file as it is now. Raises ``FileNotFoundError`` if it vanished."""
    st = stat or os.stat(path)
    digest = ends_digest(path, st.st_size) if content_hash else ""
    return FileKey(os.path.abspath(path), st.st_size, st.st_mtime_ns, digest)
