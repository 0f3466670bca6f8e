"""Files in and out: audio decoding through ffmpeg, 24-bit WAV writing, and atomic outputs.

Every output dubkit writes goes to a temporary name in the destination folder and is renamed into place only when
complete, so a crash or Ctrl-C never leaves a half-written file under the real name.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from audiostory_core.audio import fit_length  # noqa: F401 - one rule for the whole project (used by api)

from .errors import InputError, MediaToolError, OutputError


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MediaToolError(f"{name} is not installed; install ffmpeg (e.g. `apt-get install ffmpeg`) and retry")
    return path


def check_input(path: str | Path) -> Path:
    """The file-level checks every input gets before any tool reads it, each with what to do about it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file — check the path (and that the drive is mounted)")
    if p.is_dir():
        raise InputError(f"{p}: is a folder — give the path of one video file (or audio file)")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: cannot read the file (permission denied) — check its permissions")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes) — the export or copy did not finish; make it again")
    return p


def check_output(path: str | Path, *inputs: str | Path) -> Path:
    """Refuse outputs that would overwrite an input or land in a folder that is missing or read-only."""
    out = Path(path)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.exists():
        raise OutputError(f"{out}: output folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{out}: {folder} is not a folder")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file name for the output")
    try:  # permission bits say little for root or network shares: try it
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"{out}: cannot write into {folder} ({exc.strerror or exc})") from None
    for inp in inputs:
        if Path(inp).exists() and out.exists() and os.path.samefile(inp, out):
            raise OutputError(f"{out}: output would overwrite the input; choose another name with -o")
        if Path(inp).resolve() == out.resolve():
            raise OutputError(f"{out}: output would overwrite the input; choose another name with -o")
    return out


def current_umask() -> int:
    """The process umask without the set-and-restore dance, which races with other threads (Linux: /proc;
    elsewhere assume 022)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same extension, so tools pick the right format); rename on success.

    On any exception the temporary file is removed and the exception propagates; ``path`` is untouched.
    """
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".partial{dest.suffix}", dir=dest.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; a finished output gets normal permissions
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def scratch_file(folder: str | Path, suffix: str) -> Iterator[Path]:
    """A hidden temporary file in ``folder`` (where we know we may write), always removed afterwards."""
    fd, tmp = tempfile.mkstemp(prefix=".dubkit-scratch.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_audio(path: str | Path, sample_rate: int = 48000, channels: int = 2, stream: int = 0) -> np.ndarray:
    """Decode audio stream ``stream`` of any media file to float32 (channels, samples) at ``sample_rate``."""
    ffmpeg = require_tool("ffmpeg")
    cmd = [
        ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:a:{stream}",
        "-ac", str(channels), "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1",
    ]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"{path}: cannot decode audio ({msg[-1] if msg else 'ffmpeg failed'})")
    data = np.frombuffer(proc.stdout, dtype=np.float32)
    return data.reshape(-1, channels).T.copy()


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_24") -> Path:
    """Write (channels, samples) float audio as WAV, atomically. Samples beyond ±1 are clipped by the format."""
    out = Path(path)
    with atomic_output(out) as tmp:
        sf.write(str(tmp), np.ascontiguousarray(np.asarray(audio, dtype=np.float32).T), sample_rate, subtype=subtype)
    return out
