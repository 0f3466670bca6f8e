"""Temporary outputs: a job writes into a hidden staging folder beside its destination, and is published from
there with renames only.

The folder is ``DONE/.dubkit-partial-<queue>-<job>.<attempt>/`` (same file system as the destination, so
publishing is a rename), the output is checked with ffprobe before it is published, and folders of jobs that did
not finish are removed when the queue's owner starts again. DONE therefore never shows a partial file, whatever
moment the process is killed at.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import ffmpeg

from dubkit.io import current_umask
from workflows.failures import OutputRejected, mark_transient
from workflows.queue import Job

STAGING_PREFIX = ".dubkit-partial-"


class Staging:
    """The staging folders of one queue (named by its id, so two queues writing into one DONE never touch each
    other's)."""

    def __init__(self, queue_id: str):
        self.queue_id = queue_id

    def folder(self, job: Job) -> Path:
        """Per attempt, so a late finisher of a lost lease cannot collide with the job's new owner."""
        return job.output.parent / f"{STAGING_PREFIX}{self.queue_id}-{job.id}.{job.attempts}"

    def prepare(self, job: Job) -> Path:
        """An empty staging folder for this attempt; returns the path the job function writes its output to.

        Failing here is the output side's fault (full disk, read-only share), not the input's: it is transient."""
        folder = self.folder(job)
        try:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        except OSError as e:
            raise mark_transient(e)
        return folder / job.output.name

    def discard(self, job: Job) -> None:
        """Remove this attempt's folder."""
        shutil.rmtree(self.folder(job), ignore_errors=True)

    def discard_all_attempts(self, job: Job) -> None:
        """Remove the folders of every attempt of ``job`` (its worker died: none of them will publish)."""
        for d in job.output.parent.glob(f"{STAGING_PREFIX}{self.queue_id}-{job.id}.*"):
            shutil.rmtree(d, ignore_errors=True)

    def sweep(self, roots: list[Path]) -> None:
        """Remove every staging folder of this queue under ``roots`` (call it only while none of its jobs runs)."""
        for root in roots:
            for stale in Path(root).rglob(f"{STAGING_PREFIX}{self.queue_id}-*"):
                shutil.rmtree(stale, ignore_errors=True)


def verify(staged: Path) -> float:
    """The staged output's duration in seconds; ``OutputRejected`` if it is missing or not valid media."""
    if not staged.is_file():
        raise OutputRejected(f"the job function returned but wrote no {staged.name}")
    return probe_duration(staged)


def probe_duration(path: Path) -> float:
    """Duration in seconds if ffprobe accepts the file, else ``OutputRejected``."""
    try:
        info = ffmpeg.probe(str(path))
        return float(info["format"]["duration"])
    except (ffmpeg.Error, KeyError, ValueError) as e:
        detail = getattr(e, "stderr", b"") or b""
        last = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(e)]
        raise OutputRejected(f"the dubbed output {path.name} is not valid media ({last[0]})") from e


def publish(staged: Path, output: Path) -> None:
    """Rename what the job wrote into ``output``'s folder: everything else (deliverables folder, stems) first, the
    video last, so once the video is visible all that belongs to it is there too. Hidden names are the job's own
    temp files and stay behind."""
    dest_dir = output.parent
    dest_dir.mkdir(parents=True, exist_ok=True)
    for extra in sorted(staged.parent.iterdir()):
        if extra == staged or extra.name.startswith("."):
            continue
        target = dest_dir / extra.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        normal_permissions(extra)
        os.replace(extra, target)
    normal_permissions(staged)
    os.replace(staged, output)
    _fsync_dir(dest_dir)


def normal_permissions(path: Path) -> None:
    """Give a published output the mode a plain file/folder would get (temp files are created 0600, which would
    hide DONE from the editors and scripts downstream)."""
    mask = current_umask()
    targets = [path] + (list(path.rglob("*")) if path.is_dir() else [])
    for p in targets:
        if p.is_symlink():
            continue
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
