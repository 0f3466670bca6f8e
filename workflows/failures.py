"""What a failed job means: worth retrying later (transient) or not (permanent), and one line saying so.

The runner asks ``is_transient`` whether to schedule another attempt, and first ``out_of_space`` whether the
output's file system is full: a full disk surfaces as many errors (ffmpeg failing, a truncated file ffprobe
rejects, libsndfile's "System error."), none of them the input's fault, so it is named as such and waited out.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import traceback
from pathlib import Path

from audiostory_core.errors import DubkitError

_TRANSIENT_ERRNOS = {
    errno.EIO, errno.ENOSPC, errno.EAGAIN, errno.EBUSY, errno.ESTALE, errno.ENOMEM, errno.EDQUOT, errno.ETIMEDOUT,
    errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTDOWN,
    errno.EHOSTUNREACH, errno.EINTR, errno.ENOLCK,
}
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_DISK_FULL_WORDS = ("no space left", "disk quota exceeded", "database or disk is full", "quota exceeded")
_SF_ERR_SYSTEM = 2  # libsndfile's code for "System error." (a failed read/write/seek underneath)
LOW_SPACE_BYTES = 16 * 2**20  # a failure with less than this free where the output goes is blamed on the disk


class OutputRejected(DubkitError):
    """The job function returned, but what it wrote is missing or not media ffprobe accepts."""


class InputChanged(DubkitError):
    """The input vanished or was rewritten after it was queued (its new version is a job of its own)."""


class DiskFull(DubkitError):
    """The file system a job writes to is full (or over quota). Transient: the job waits for space, its input
    stays where it is."""

    transient = True


class StillBeingWritten(DubkitError):
    """Another process still holds the input open for writing (a copy in progress). Transient: the job waits."""

    transient = True


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def says_disk_full(exc: BaseException) -> OSError | BaseException | None:
    """The exception in ``exc``'s chain that names a full disk or quota (errno, or the words ffmpeg, SQLite and
    dubkit use for it), else None."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS:
            return e
        text = " ".join(str(x) for x in (e, getattr(e, "stderr", None) or "") if x).lower()
        if any(w in text for w in _DISK_FULL_WORDS):
            return e
    return None


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system holding ``path`` (its nearest existing
    folder); None where that cannot be asked."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return None
    return st.f_bavail * st.f_frsize


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (the name a user recognises: /, /mnt/share...)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        dev = p.stat().st_dev
        while p != p.parent and p.parent.stat().st_dev == dev:
            p = p.parent
    except OSError:
        pass
    return p


def out_of_space(exc: BaseException, where: Path, *, needed: int = 0) -> DiskFull | None:
    """A ``DiskFull`` naming the full file system if ``exc`` happened because of it, else None.

    Either the error says so (ENOSPC/EDQUOT, "No space left on device" in ffmpeg's words...), or the job failed
    with less than ``max(LOW_SPACE_BYTES, needed)`` free where it writes (``where``): errors such as a truncated
    mux or libsndfile's bare "System error." do not carry the errno. ``needed`` is a size the job cannot do with
    less of (its output copies the input's video, so at least the input's size)."""
    named = says_disk_full(exc)
    if named is not None and isinstance(named, OSError) and named.filename:
        where = Path(os.fsdecode(named.filename)).parent
    free = free_bytes(where)
    if named is None and (free is None or free >= max(LOW_SPACE_BYTES, needed)):
        return None
    quota = named is not None and (getattr(named, "errno", None) == errno.EDQUOT or "quota" in str(named).lower())
    what = "disk quota exceeded on" if quota else "no space left on"
    parts = [f"{_size(free)} free"] if free is not None else []
    if needed and (free is None or needed > free):
        parts.append(f"at least {_size(needed)} needed")
    detail = f" ({', '.join(parts)})" if parts else ""
    full = DiskFull(f"{what} {mount_point(where)}{detail}; free some space there ({describe(exc)})")
    full.__cause__ = exc
    return full


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.0f} KB"


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: I/O hiccups, full disks, network shares, timeouts, out of memory.

    Bad input (any ``DubkitError``: corrupt file, no video stream, ...) and programming errors are permanent:
    retrying cannot change their outcome. A job function can force either way with an ``exc.transient`` attribute.
    """
    flag = getattr(exc, "transient", None)
    if isinstance(flag, bool):
        return flag
    if isinstance(exc, DubkitError):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError, MemoryError, subprocess.TimeoutExpired)):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_ERRNOS
    sf = sys.modules.get("soundfile")  # only loaded soundfile can have raised its error
    if sf is not None and isinstance(exc, sf.LibsndfileError) and exc.code == _SF_ERR_SYSTEM:
        return True  # the OS refused a read or write (errno not kept): an I/O error
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()  # torch OOM


def mark_transient(exc: BaseException) -> BaseException:
    """Flag ``exc`` as worth a retry whatever its type says (e.g. the output side, not the input, is at fault)."""
    exc.transient = True  # type: ignore[attr-defined]
    return exc


def describe(exc: BaseException) -> str:
    """One line for logs and tables: the class name and the first line of the message."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {msg}" if msg else name


def detail(exc: BaseException) -> str:
    """The traceback kept in the queue for a programming error; empty for a ``DubkitError`` (its message says it
    all and a user must not be shown a traceback)."""
    return "" if isinstance(exc, DubkitError) else "".join(traceback.format_exception(exc))
