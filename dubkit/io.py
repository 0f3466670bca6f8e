"""Files in and out: the input and output checks, the one ffprobe wrapper, the one audio decoder, 24-bit WAV
writing, and atomic outputs.

Every output dubkit writes goes to a temporary name in the destination folder and is renamed into place only when
complete, so a crash or Ctrl-C never leaves a half-written file under the real name.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import ffmpeg
import numpy as np
import soundfile as sf

from audiostory_core.audio import fit_length  # noqa: F401 - one rule for the whole project (used by api)

from .errors import InputError, MediaToolError, OutputError

_INSTALL_HINT = "install ffmpeg (it provides ffprobe), e.g. `apt install ffmpeg` or `brew install ffmpeg`"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MediaToolError(f"{name} is not installed; install ffmpeg (e.g. `apt-get install ffmpeg`) and retry")
    return path


def tool_path(path: str | Path) -> str:
    """``path`` as ffmpeg/ffprobe must get it: absolute, so a name starting with '-' is never read as an option
    (pathlib turns ``./-take.mp4`` back into ``-take.mp4``) and one with a colon never as a protocol."""
    return os.path.abspath(os.fspath(path))


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
            raise OutputError(f"{out}: output would overwrite the input; choose another name for `output`")
        if Path(inp).resolve() == out.resolve():
            raise OutputError(f"{out}: output would overwrite the input; choose another name for `output`")
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


def ffprobe(path: str | Path, *, cmd: str = "ffprobe", want: str = "a video file such as .mp4 or .mov",
            **entries: str) -> dict:
    """ffprobe's JSON for ``path`` (``entries`` as ffprobe options, e.g. ``show_entries="packet=pts"``), each
    failure turned into one error saying what to do; ``want`` names the kind of file the caller needs."""
    p = Path(path)
    try:
        return ffmpeg.probe(tool_path(p), cmd=cmd, **entries)
    except FileNotFoundError as e:
        raise MediaToolError(f"ffprobe was not found ({cmd!r}) — {_INSTALL_HINT}") from e
    except PermissionError as e:
        raise MediaToolError(f"ffprobe ({cmd!r}) cannot be run — {_INSTALL_HINT}") from e
    except ffmpeg.Error as e:
        raise _unreadable(p, (e.stderr or b"").decode("utf-8", "replace").strip(), want) from e
    except json.JSONDecodeError as e:  # pragma: no cover - ffprobe printed garbage
        raise MediaToolError(f"ffprobe returned unreadable output for {p} — check your ffmpeg install") from e


def _unreadable(path: Path, err: str, want: str) -> InputError:
    """What ffprobe's complaint about ``path`` means for the user."""
    last = err.splitlines()[-1] if err else "ffprobe failed"
    if "moov atom not found" in err and _looks_like_mp4(path):
        return InputError(f"{path}: the file is truncated (its index, the 'moov atom', is missing) — the export or "
                          "download did not finish; export or copy it again")
    if "moov atom not found" in err:
        return InputError(f"{path}: is not a media file (not an MP4/MOV despite its name) — give {want}")
    if "Invalid data found" in err or "could not find codec" in err.lower() or "unknown format" in err.lower():
        return InputError(f"{path}: is not a media file ffmpeg can read ({last}) — give {want}")
    return InputError(f"{path}: ffprobe cannot read it ({last}) — check that it is a complete media file")


def _looks_like_mp4(path: Path) -> bool:
    """An ISO media file starts with a box header (size, then a four-letter type such as ``ftyp``)."""
    with open(path, "rb") as f:
        head = f.read(8)
    return head[4:8] in {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot", b"uuid"}


def decode_audio(path: str | Path, sample_rate: int | None = None, channels: int | None = None, *,
                 stream: int = 0) -> tuple[np.ndarray, int]:
    """Audio stream ``stream`` of any media file as float32 (channels, samples), and its rate.

    ``None`` keeps the file's own rate or channel count. A file read at its own format by soundfile
    (WAV/FLAC/OGG) gives its exact samples; anything else, or a conversion, goes through ffmpeg.
    """
    if sample_rate is None and channels is None and stream == 0:
        exact = _read_exact(Path(path))
        if exact is not None:
            return exact
    if sample_rate is None or channels is None:
        a = _audio_stream(Path(path), stream)
        sample_rate = sample_rate or int(a.get("sample_rate") or 48000)
        channels = channels or int(a.get("channels") or 2)
    return _ffmpeg_decode(path, sample_rate, channels, stream), sample_rate


def read_audio(path: str | Path, sample_rate: int = 48000, channels: int = 2, stream: int = 0) -> np.ndarray:
    """``decode_audio`` at a fixed rate and channel count, for callers that need only the samples."""
    return decode_audio(path, sample_rate, channels, stream=stream)[0]


def _read_exact(path: Path) -> tuple[np.ndarray, int] | None:
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError:
        return None  # not a soundfile format
    if data.shape[0] == 0:
        raise InputError(f"{path}: audio file has no samples")
    return data.T.copy(), int(sr)


def _audio_stream(path: Path, index: int) -> dict:
    streams = ffprobe(path, want="an audio or video file").get("streams") or []
    audio = [st for st in streams if st.get("codec_type") == "audio"]
    if len(audio) <= index:
        raise InputError(f"{path}: has no audio stream" + (f" {index}" if index else ""))
    return audio[index]


def _ffmpeg_decode(path: str | Path, sample_rate: int, channels: int, stream: int) -> np.ndarray:
    cmd = [
        require_tool("ffmpeg"), "-nostdin", "-v", "error", "-i", tool_path(path), "-map", f"0:a:{stream}",
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
