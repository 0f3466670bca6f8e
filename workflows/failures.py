"""What a failed job means: worth retrying later (transient) or not (permanent), and one line saying so.

The runner asks ``is_transient`` whether to schedule another attempt; everything here looks only at the
exception, never at the queue or the files.
"""
from __future__ import annotations

import errno
import subprocess
import traceback

from audiostory_core.errors import DubkitError

_TRANSIENT_ERRNOS = {
    errno.EIO, errno.ENOSPC, errno.EAGAIN, errno.EBUSY, errno.ESTALE, errno.ENOMEM, errno.EDQUOT, errno.ETIMEDOUT,
    errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTDOWN,
    errno.EHOSTUNREACH, errno.EINTR, errno.ENOLCK,
}


class OutputRejected(DubkitError):
    """The job function returned, but what it wrote is missing or not media ffprobe accepts."""


class InputChanged(DubkitError):
    """The input vanished or was rewritten after it was queued (its new version is a job of its own)."""


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
