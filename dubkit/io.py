"""Files in and out: the input and output checks, the one ffprobe wrapper, the one audio decoder (whole, or
streamed into a track), 24-bit WAV writing (whole, or block by block: ``WavTrack``), atomic outputs, and the one
message for a full disk or quota.

Every output dubkit writes goes to a temporary name in the destination folder and is renamed into place only when
complete, so a crash or Ctrl-C never leaves a half-written file under the real name. Paths reach ffmpeg and
ffprobe absolute (``tool_path``): a file called ``-take.mp4`` is never read as an option.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import ffmpeg
import numpy as np
import soundfile as sf

from audiostory_core.audio import HOLD_SAMPLES, fit_length  # noqa: F401 - one rule for the whole project (used by api)
from audiostory_core.tracks import BLOCK, Track, blocks

from .errors import DiskFullError, InputError, MediaToolError, OutputError

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


# --- disk space ------------------------------------------------------------------------------------------------

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def _mb(nbytes: float) -> str:
    return f"{max(nbytes, 0) / 1e6:,.0f}" if nbytes >= 1e6 else f"{max(nbytes, 0) / 1e6:.1f}"


def is_no_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk or an exceeded quota."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def space_error(folder: str | Path, what: str, needed: int | None = None,
                exc: BaseException | None = None) -> DiskFullError:
    """The one message for a full disk (or quota): where, for what, how much was needed and is free, what to do."""
    folder = Path(folder)
    quota = any(isinstance(e, OSError) and e.errno == errno.EDQUOT for e in _chain(exc))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    have = f", {_mb(free)} MB free" if free is not None else ""
    need = f": {_mb(needed)} MB needed{have}" if needed else (f" ({have[2:]})" if have else "")
    where = f"disk quota exceeded on {folder}" if quota else f"no space left on {folder}"
    return DiskFullError(f"{where} for {what}{need} — free some space or write the output to another disk")


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def check_space(folder: str | Path, needed: int, what: str) -> None:
    """Refuse, before writing, an output of predictable size that the folder's disk cannot hold."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the write itself will say
    if free < needed:
        raise space_error(folder, what, needed)


def write_failure(path: str | Path, exc: BaseException | None, what: str, *, detail: str | None = None,
                  needed: int | None = None) -> OutputError:
    """The error for a failed write of ``what`` to ``path``: a full disk or quota named as such — also behind
    libsndfile's bare "System error." (it drops errno), recognised by the folder having (almost) no space left."""
    folder = Path(path).parent
    if is_no_space(exc) or _nearly_full(folder):
        return space_error(folder, what, needed, exc)
    reason = detail or (getattr(exc, "strerror", None) or str(exc) if exc is not None else "unknown error")
    return OutputError(f"cannot write {what} ({path}): {reason}")


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 4 * BLOCK * 8  # less than a few blocks of 24-bit stereo
    except OSError:
        return False


@contextlib.contextmanager
def no_space_named(folder: str | Path, what: str) -> Iterator[None]:
    """Turn a full disk or quota met anywhere inside (an ``OSError``, or an error raised from one) into the one
    ``space_error`` line; a message that already names it passes unchanged."""
    try:
        yield
    except (OSError, OutputError) as e:
        if not is_no_space(e) or str(e).startswith(("no space left on", "disk quota exceeded on")):
            raise
        cause = next((c for c in _chain(e) if isinstance(c, OSError)), e)
        raise space_error(getattr(cause, "folder", None) or folder, what, getattr(cause, "needed", None), e) from e


# --- long audio in and out -------------------------------------------------------------------------------------


class WavTrack:
    """A WAV file as a track: written block by block in order (the mastered soundtrack, as it is computed), then
    read back for the report and the stems. Its length is checked when writing ends. ``copy_to``, when set,
    receives every block as it is written (the mux encoding it meanwhile)."""

    copy_to: Callable[[np.ndarray], None] | None = None

    def __init__(self, path: str | Path, channels: int, samples: int, sample_rate: int, subtype: str = "PCM_24"):
        self.path, self.channels, self.samples = Path(path), int(channels), int(samples)
        self.sample_rate = int(sample_rate)
        width = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4}.get(subtype, 4)
        self.needed = self.samples * self.channels * width + 64
        check_space(self.path.parent, self.needed, "the mixed soundtrack (a 24-bit WAV, removed after the mux)")
        self._writer: sf.SoundFile | None = sf.SoundFile(str(self.path), "w", self.sample_rate, self.channels,
                                                         subtype=subtype, format="WAV")
        self._reader: sf.SoundFile | None = None
        self._written = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.samples

    def write(self, start: int, block: np.ndarray) -> None:
        if self._writer is None or start != self._written:
            raise ValueError("a WavTrack is written once, in order")
        try:
            self._writer.write(np.ascontiguousarray(np.asarray(block, np.float32).T))
        except (OSError, RuntimeError) as e:
            raise write_failure(self.path, e, "the mixed soundtrack", needed=self.needed) from e
        self._written += block.shape[-1]
        if self.copy_to is not None:
            self.copy_to(block)

    def finish(self) -> None:
        """Close the writer and check that every frame is in the file."""
        if self._writer is None:
            return
        try:
            self._writer.close()
            frames = sf.info(str(self.path)).frames
        except (OSError, RuntimeError) as e:
            raise write_failure(self.path, e, "the mixed soundtrack", needed=self.needed) from e
        finally:
            self._writer = None
        if frames != self.samples:
            raise write_failure(self.path, None, "the mixed soundtrack", needed=self.needed,
                                detail=f"{frames} of {self.samples} frames in the file")

    def read(self, start: int, stop: int) -> np.ndarray:
        self.finish()
        if self._reader is None:
            self._reader = sf.SoundFile(str(self.path))
        out = np.zeros((self.channels, max(stop - start, 0)), np.float32)
        lo, hi = min(max(start, 0), self.samples), min(max(stop, 0), self.samples)
        if hi > lo:
            self._reader.seek(lo)
            data = self._reader.read(hi - lo, dtype="float32", always_2d=True)
            out[:, lo - start : lo - start + data.shape[0]] = data.T
        return out

    def close(self) -> None:
        for f in (self._writer, self._reader):
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
        self._writer = self._reader = None


def decode_audio_into(track: Track, path: str | Path, sample_rate: int, *, shift: int = 0, stream: int = 0) -> Track:
    """Decode audio stream ``stream`` of ``path`` straight into ``track`` (its channel count, at ``sample_rate``),
    ``shift`` samples later (earlier when negative): the original audio placed on the video's clock while it
    decodes, block by block, never whole in memory. Like ``fit_length``, a track at most ``HOLD_SAMPLES``
    short holds its last value to the end."""
    ch = track.channels
    cmd = [require_tool("ffmpeg"), "-nostdin", "-v", "error", "-i", tool_path(path), "-map", f"0:a:{stream}",
           "-ac", str(ch), "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    # stderr goes to a file: a pipe nobody reads while the samples stream could fill up and stall ffmpeg.
    with tempfile.TemporaryFile() as log, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log) as proc:
        assert proc.stdout is not None
        pos, last = shift, np.zeros((ch, 0), np.float32)
        while raw := proc.stdout.read(BLOCK * 4 * ch):
            frames = len(raw) // (4 * ch)
            block = np.frombuffer(raw[: frames * 4 * ch], np.float32).reshape(-1, ch).T
            track.write(pos, block)
            pos, last = pos + frames, block[:, -1:] if frames else last
        proc.wait()
        log.seek(0)
        err = log.read()
    if proc.returncode != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        raise InputError(f"{path}: cannot decode audio ({msg[-1] if msg else 'ffmpeg failed'})")
    if last.size and 0 < track.samples - pos <= HOLD_SAMPLES:
        track.write(pos, np.repeat(last, track.samples - pos, axis=1))
    return track
