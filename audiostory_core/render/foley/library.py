"""Sound libraries from folders the user names: indexed by file name and tags, matched by sentence embeddings.

A file's text is its name split into words (numbers, take/format noise dropped, common abbreviations expanded),
the folders it sits in below the library root, its title/comment/genre/keywords tags and a same-named ``.txt`` or
``.json`` sidecar. Texts are embedded once; the index (file list keyed by path + size + mtime, texts, vectors) is
cached in the project's cache folder (:func:`audiostory_core.cache.cache_dir`) and rebuilt incrementally when
files change.

Debian's CC0 sonic-pi samples (:data:`SYSTEM_SAMPLES_DIR`) are a small extra library the renderer uses when they
are installed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ... import cache
from ...audio import fit_length, match_channels, resample
from ...errors import RenderError
from .bank import finish
from .dsp import fade, seconds

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SYSTEM_SAMPLES_DIR = Path("/usr/share/sonic-pi/samples")
TEXTURE_MIN_SECONDS = 6.0  # files at least this long are treated as beds (looped/cut), shorter ones as oneshots
INDEX_VERSION = 1

# Name fragments that say nothing about the sound (takes, formats, channels, versions).
_NOISE_WORDS = {
    "wav", "flac", "ogg", "mp3", "aif", "aiff", "mono", "stereo", "st", "ms", "lr", "l", "r", "take", "tk", "var",
    "version", "v", "alt", "final", "edit", "mix", "master", "copy", "new", "old", "bit", "khz", "hz", "k",
    "sfx", "fx", "sound", "sounds", "effect", "effects", "sample", "samples",
}
# Abbreviations common in sound-library file names.
_ABBREVIATIONS = {
    "amb": "ambience", "ambi": "ambient", "atmos": "atmosphere", "bg": "background", "bd": "bass drum kick",
    "sn": "snare drum", "perc": "percussion", "elec": "electronic", "guit": "guitar", "vox": "voice",
    "misc": "", "dr": "drum", "hh": "hi hat", "cym": "cymbal", "wd": "wood", "mtl": "metal", "imp": "impact",
    "wsh": "whoosh", "ftstp": "footsteps", "ftsteps": "footsteps", "veh": "vehicle", "int": "interior",
    "ext": "exterior", "rm": "room", "tn": "tone", "expl": "explosion", "gls": "glass", "wtr": "water",
}
_TEXTURE_WORDS = {"loop", "loops", "ambience", "ambient", "atmosphere", "bed", "background", "roomtone", "drone",
                  "hum", "tone"}
_JUNK_TAG = re.compile(r"processed by|sox|lavf|lavc|encoder|encoded|audacity|reaper|pro tools|www\.|http",
                       re.IGNORECASE)


def name_words(stem: str) -> list[str]:
    """``"DoorSlam_Heavy-03"`` → ``["door", "slam", "heavy"]``: split words, drop numbers and format noise."""
    stem = re.sub(r"([a-z])([A-Z])", r"\1 \2", stem)
    words = []
    for w in re.split(r"[^A-Za-z0-9]+", stem.lower()):
        if not w or any(ch.isdigit() for ch in w) or w in _NOISE_WORDS:
            continue
        w = _ABBREVIATIONS.get(w, w)
        words.extend(w.split())
    return words


@dataclass(frozen=True)
class LibrarySound:
    """One indexed file: ``path`` (absolute), the ``text`` that was embedded, its length and treatment."""

    path: str
    text: str
    duration: float
    kind: str  # "oneshot" | "texture"
    size: int
    mtime_ns: int


class SoundLibrary:
    """An index of audio files under ``dirs`` with one L2-normalised text vector per file.

    ``stats`` says what the last :meth:`index` did: how many files were embedded and how many came from the cache.
    """

    def __init__(self, dirs: Sequence[str | os.PathLike], embedder, *, cache_dir: str | os.PathLike | None = None,
                 label: str = "library") -> None:
        self.dirs = [Path(d).expanduser().resolve() for d in dirs]
        for d in self.dirs:
            if not d.is_dir():
                raise RenderError(f"sound library folder {d} does not exist or is not a folder; "
                                  "pass folders that hold wav/flac/ogg/mp3/aiff files")
        self.embedder = embedder
        self.cache_dir = cache.cache_dir("foley-library", root=cache_dir)
        self.label = label
        self.sounds: list[LibrarySound] = []
        self.vectors = np.zeros((0, getattr(embedder, "dim", 384)), np.float32)
        self.stats = {"files": 0, "embedded": 0, "cached": 0}
        self._decoded: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self.index()

    # --- index -------------------------------------------------------------------------------------------------

    def index(self) -> None:
        """(Re)build the index, embedding only files that are new or changed since the cached index."""
        sounds, vectors = [], []
        stats = {"files": 0, "embedded": 0, "cached": 0}
        for root in self.dirs:
            s, v, st = self._index_root(root)
            sounds += s
            vectors.append(v)
            for k in stats:
                stats[k] += st[k]
        self.sounds = sounds
        self.vectors = np.concatenate(vectors) if vectors else self.vectors[:0]
        self.stats = stats

    def _cache_file(self, root: Path) -> Path:
        model = getattr(self.embedder, "model_id", type(self.embedder).__name__)
        key = hashlib.sha1(f"{INDEX_VERSION}|{model}|{root}".encode()).hexdigest()[:16]
        return self.cache_dir / f"{key}.npz"

    def _index_root(self, root: Path):
        cache_file = self._cache_file(root)
        cached: dict[str, tuple[LibrarySound, np.ndarray]] = {}
        if cache_file.is_file():
            try:
                with np.load(cache_file, allow_pickle=False) as z:
                    meta = json.loads(str(z["meta"]))
                    vecs = z["vectors"]
                cached = {m["path"]: (LibrarySound(**m), vecs[i]) for i, m in enumerate(meta)}
            except (OSError, ValueError, KeyError, TypeError):
                cached = {}  # a broken cache is rebuilt
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        sounds: list[LibrarySound | None] = []
        vectors: list[np.ndarray | None] = []
        todo: list[tuple[int, LibrarySound]] = []
        for path in files:
            st = path.stat()
            hit = cached.get(str(path))
            if hit and hit[0].size == st.st_size and hit[0].mtime_ns == st.st_mtime_ns:
                sounds.append(hit[0])
                vectors.append(hit[1])
                continue
            described = _describe(path, root, st.st_size, st.st_mtime_ns)
            if described is None:
                continue  # unreadable: skipped, not fatal
            todo.append((len(sounds), described))
            sounds.append(described)
            vectors.append(None)
        if todo:
            new = self.embedder.encode([s.text for _, s in todo])
            for (i, _), v in zip(todo, new):
                vectors[i] = v
        dim = getattr(self.embedder, "dim", 384)
        vec = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
        changed = bool(todo) or len(sounds) != len(cached)
        if changed:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(cache_file.stem + f".{os.getpid()}.tmp.npz")
            np.savez(tmp, meta=np.array(json.dumps([asdict(s) for s in sounds])), vectors=vec)
            os.replace(tmp, cache_file)
        stats = {"files": len(sounds), "embedded": len(todo), "cached": len(sounds) - len(todo)}
        return sounds, vec, stats

    # --- audio -------------------------------------------------------------------------------------------------

    def load(self, sound: LibrarySound, sample_rate: int) -> np.ndarray:
        """Decode a file to float32 stereo at ``sample_rate`` (soundfile, else ffmpeg); recent files are kept."""
        key = (sound.path, int(sample_rate))
        if key in self._decoded:
            self._decoded.move_to_end(key)
            return self._decoded[key]
        audio = decode(sound.path, sample_rate)
        self._decoded[key] = audio
        while len(self._decoded) > 32:
            self._decoded.popitem(last=False)
        return audio

    def render(self, sound: LibrarySound, duration: float, sample_rate: int, seed: int) -> np.ndarray:
        """The file fitted to exactly ``round(duration * sample_rate)`` samples (see :func:`fit_to_length`)."""
        n = int(round(duration * sample_rate))
        return fit_to_length(self.load(sound, sample_rate), n, sample_rate, sound.kind,
                             np.random.default_rng(seed))


def _describe(path: Path, root: Path, size: int, mtime_ns: int) -> LibrarySound | None:
    """Read what a file says about itself: name words, folders, tags, sidecar; and its duration."""
    words = name_words(path.stem)
    folders = [w for part in path.relative_to(root).parent.parts for w in name_words(part)]
    tags, duration = _read_tags(path)
    if duration is None:
        return None
    sidecar = _read_sidecar(path)
    parts = [" ".join(words)]
    if folders:
        parts.append(" ".join(folders))
    parts += [t for t in tags if t]
    if sidecar:
        parts.append(sidecar)
    text = ". ".join(p for p in parts if p.strip())[:500] or path.stem
    flat = set(words + folders)
    kind = "texture" if duration >= TEXTURE_MIN_SECONDS or flat & _TEXTURE_WORDS else "oneshot"
    return LibrarySound(str(path), text, float(duration), kind, int(size), int(mtime_ns))


def _read_tags(path: Path) -> tuple[list[str], float | None]:
    """Title/comment/genre/keywords tags and the duration; soundfile first, ffprobe for what it cannot open."""
    import soundfile as sf

    tags: dict[str, str] = {}
    duration = None
    try:
        with sf.SoundFile(str(path)) as f:
            duration = f.frames / f.samplerate
            tags = {k.lower(): v for k, v in f.copy_metadata().items()}
    except (RuntimeError, sf.LibsndfileError, OSError):
        tags, duration = _ffprobe_tags(path)
    if path.suffix.lower() in (".mp3", ".ogg") and duration is not None and not tags:
        tags = _ffprobe_tags(path)[0]
    out = []
    for key in ("title", "keywords", "genre", "comment", "description", "subject"):
        val = str(tags.get(key, "")).strip()
        if val and not _JUNK_TAG.search(val):
            out.append(val)
    return out, duration


def _ffprobe_tags(path: Path) -> tuple[dict[str, str], float | None]:
    import subprocess

    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration:format_tags", "-of", "json",
             os.path.abspath(path)],
            capture_output=True, text=True, timeout=30, check=True).stdout
        fmt = json.loads(out).get("format", {})
        return {k.lower(): v for k, v in fmt.get("tags", {}).items()}, float(fmt["duration"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return {}, None


def _read_sidecar(path: Path) -> str:
    """Text of ``<name>.txt`` or the string values of ``<name>.json`` next to the file (editors' notes)."""
    txt, js = path.with_suffix(".txt"), path.with_suffix(".json")
    try:
        if txt.is_file():
            return " ".join(txt.read_text(errors="replace").split())[:400]
        if js.is_file():
            data = json.loads(js.read_text(errors="replace"))
            vals: list[str] = []

            def walk(v):
                if isinstance(v, str):
                    vals.append(v)
                elif isinstance(v, list):
                    for x in v:
                        walk(x)
                elif isinstance(v, dict):
                    for x in v.values():
                        walk(x)

            walk(data)
            return " ".join(vals)[:400]
    except (OSError, ValueError):
        return ""
    return ""


def decode(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode any supported file to float32 (2, n) at ``sample_rate``: soundfile, else ffmpeg."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = resample(np.ascontiguousarray(data.T), int(sr), int(sample_rate))
    except (RuntimeError, sf.LibsndfileError, OSError):
        import ffmpeg

        try:
            raw, _ = (ffmpeg.input(os.path.abspath(path)).output("pipe:", format="f32le", ac=2, ar=int(sample_rate))
                      .run(capture_stdout=True, capture_stderr=True, quiet=True))
        except ffmpeg.Error as exc:
            msg = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] if exc.stderr else []
            raise RenderError(f"cannot decode sound file {path}: {' '.join(msg) or exc}") from exc
        audio = np.frombuffer(raw, np.float32).reshape(-1, 2).T.copy()
    audio = match_channels(audio, 2)
    return np.nan_to_num(audio).astype(np.float32)


def fit_to_length(audio: np.ndarray, n: int, sr: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Fit decoded audio to exactly ``n`` samples and normalise it like the synthesis bank.

    Oneshots: leading silence removed so the onset is at sample 0; cut at the quietest point of the last quarter
    when too long; padded with silence when short. Textures: a seeded excerpt when long enough, else looped with
    equal-power crossfades.
    """
    if n <= 0:
        return np.zeros((2, 0), np.float32)
    x = np.asarray(audio, dtype=np.float64)
    if x.shape[-1] == 0:
        return np.zeros((2, n), np.float32)
    if kind == "oneshot":
        level = np.abs(x).max(axis=0)
        above = np.nonzero(level > level.max() * 0.01)[0]
        x = x[:, above[0]:] if len(above) else x
        if x.shape[-1] > n:
            x = fade(x[:, :_quiet_cut(x, n, sr)].copy(), 0, seconds(sr, 0.01))
        return finish(x, n, sr, "oneshot")
    if x.shape[-1] >= n:
        start = int(rng.integers(0, x.shape[-1] - n + 1))
        return finish(x[:, start:start + n], n, sr, "texture")
    return finish(_loop(x, n, sr), n, sr, "texture")


def _quiet_cut(x: np.ndarray, n: int, sr: int) -> int:
    """The end of the quietest 10 ms frame in the last quarter of the first ``n`` samples."""
    frame = seconds(sr, 0.01)
    lo = max(n * 3 // 4, frame)
    starts = np.arange(lo, n - frame + 1, frame)
    if len(starts) == 0:
        return n
    energy = [np.mean(x[:, s:s + frame] ** 2) for s in starts]
    return int(starts[int(np.argmin(energy))] + frame)


def _loop(x: np.ndarray, n: int, sr: int) -> np.ndarray:
    """Repeat ``x`` to ``n`` samples joining copies with equal-power crossfades (no seams)."""
    length = x.shape[-1]
    xf = min(seconds(sr, 0.5), length // 4)
    if xf < 2:
        return fit_length(np.tile(x, (1, n // max(length, 1) + 1)), n)
    step = length - xf
    out = np.zeros((2, n + length))
    ramp = np.linspace(0.0, 1.0, xf)
    fade_in, fade_out = np.sin(ramp * np.pi / 2), np.cos(ramp * np.pi / 2)
    pos = 0
    while pos < n:
        seg = x.copy()
        if pos > 0:
            seg[:, :xf] *= fade_in
        seg[:, -xf:] *= fade_out
        out[:, pos:pos + length] += seg
        pos += step
    return out[:, :n]
