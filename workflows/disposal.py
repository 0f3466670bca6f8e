"""What happens to an input once its job is over: moved to ``--move-done`` after a success; after a failure moved
to ``INBOX/failed/`` ("move"), left in place with a note beside it ("mark"), or left alone ("none", batch runs).

Inputs are never modified or overwritten: a taken name gets `` (2)``, a move across file systems goes through a
hidden temp name, and the ``NAME.error.txt`` a person reads is written atomically.
"""
from __future__ import annotations

import errno
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from workflows.queue import FAILED, Job

NOTE_SUFFIX = ".error.txt"


class Disposal:
    """Where inputs go: ``inbox`` is the watch folder (relative paths below it are kept), ``on_failure`` is
    "move", "mark" or "none", ``move_done`` the folder finished inputs move to (None: they stay)."""

    def __init__(self, *, inbox: Path | None = None, on_failure: str = "none", move_done: Path | None = None,
                 say: Callable[[str], None] = print):
        self.inbox = inbox.resolve() if inbox else None
        self.on_failure = on_failure
        self.move_done = move_done.resolve() if move_done else None
        self.say = say

    def done_target(self, job: Job) -> Path | None:
        """Where the input of a job about to succeed goes (None: it stays)."""
        if self.move_done is None:
            return None
        return unique_path(self.move_done / self._relative(job.input))

    def failed_target(self, job: Job) -> Path | None:
        """Where the input of a failed job goes (None: it stays)."""
        if self.on_failure == "move" and self.inbox is not None and job.input.exists():
            return unique_path(self.inbox / "failed" / self._relative(job.input))
        return None

    def mark(self, job: Job) -> None:
        """In "mark" mode, the note beside a failed input that stays where it is."""
        if self.on_failure == "mark" and job.input.exists():
            self.write_note(note_for(job.input), job)

    def dispose(self, job: Job) -> bool:
        """Move the input to ``job.dispose_to`` (a failed one with its note); idempotent, so it can be re-run after
        a crash. False, after saying why, when the move failed (the queue keeps it pending for the next start)."""
        target = job.dispose_to
        if target is None:
            return False
        if job.state == FAILED:
            self.write_note(note_for(target), job)
        if job.input.exists():
            try:
                move_file(job.input, target)
            except OSError as e:
                self.say(f"[job {job.id}] could not move {job.input} to {target}: {e}")
                return False
        return True

    def write_note(self, note: Path, job: Job) -> None:
        """The ``NAME.error.txt`` a person reads: what failed, why, and how to retry."""
        retry = ("put the file back into the watch folder" if self.on_failure == "move"
                 else "delete this .error.txt")
        text = (f"dubkit could not dub {job.input.name}\n\n"
                f"reason:   {job.error or 'unknown'}\n"
                f"input:    {job.input}\n"
                f"attempts: {job.attempts}\n"
                f"when:     {datetime.now(timezone.utc).isoformat(timespec='seconds')}\n\n"
                f"To try again after fixing the cause, {retry}.\n")
        note.parent.mkdir(parents=True, exist_ok=True)
        tmp = note.with_name(f".{note.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, note)

    def _relative(self, path: Path) -> Path:
        if self.inbox is not None:
            try:
                return path.resolve().relative_to(self.inbox)
            except ValueError:
                pass
        return Path(path.name)


def note_for(path: Path) -> Path:
    """The failure note that belongs to the input at ``path``."""
    return path.with_name(path.name + NOTE_SUFFIX)


def noted_input(note: Path) -> Path | None:
    """The input a failure note belongs to; None if ``note`` is not one."""
    if not note.name.endswith(NOTE_SUFFIX) or note.name == NOTE_SUFFIX:
        return None
    return note.with_name(note.name[: -len(NOTE_SUFFIX)])


def unique_path(path: Path) -> Path:
    """``path`` or, if taken, ``stem (2).ext``, ``stem (3).ext`` ... (never overwrite what a user may need)."""
    if not path.exists():
        return path
    n = 2
    while True:
        cand = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not cand.exists():
            return cand
        n += 1


def move_file(src: Path, dst: Path) -> None:
    """Rename, or across file systems copy to a hidden temp name then rename, so ``dst`` is never partial."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(f".{dst.name}.dubkit-moving")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
        os.unlink(src)
