"""Sound libraries: the installed free sources and the user's folders, indexed once and matched by meaning.

A library root is either an installed source (``sources.py`` extracted it with a ``dubkit-library.json`` manifest
that gives every clip's description, categories, licence and attribution) or a folder of the user's own files,
described by what they say about themselves: the name split into words (numbers, take/format noise dropped,
common abbreviations expanded), the folders below the root, title/comment/genre/keywords tags and a same-named
``.txt`` or ``.json`` sidecar (which may also carry ``licence``/``attribution``).

Every clip is analysed once — duration, loudness (BS.1770 LUFS), peak, onset, how steady it is and how seamlessly
it loops — and its text embedded once. The index (keyed by path + size + mtime) is cached under
the project's cache folder (:func:`audiostory_core.cache.cache_dir`) and updated incrementally; a deleted
or corrupt cache is rebuilt, and the library says so (``notes`` and a logged warning).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
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
from .formats import OWN, allowed_classes, licence_class, normalise_licence
from .sources import MANIFEST, read_manifest

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SYSTEM_SAMPLES_DIR = Path("/usr/share/sonic-pi/samples")
TEXTURE_MIN_SECONDS = 6.0  # files at least this long are treated as beds (looped/cut), shorter ones as oneshots
INDEX_VERSION = 2
ONSET_THRESHOLD_DB = -30.0  # a clip starts where its 5 ms envelope first comes within 30 dB of its loudest frame
LOOP_CROSSFADE_SECONDS = 0.5
_LOG = logging.getLogger("audiostory_core.foley.library")

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
_LOOP_WORDS = {"loop", "loops"}
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
    """One indexed clip: where it is, the ``text`` that was embedded, what the analysis measured, whose it is.

    ``kind`` is "oneshot" (a spot: trimmed to its onset) or "texture" (a bed: excerpted or looped);
    ``loop`` is "exact" for files made to repeat end-to-start (musical loops: tiled without a crossfade),
    "crossfade" otherwise. ``steady`` (0..1) says how even its level is, ``seam`` (0..1) how alike its two ends
    sound — together how well it serves as a bed. A short clip that holds its level (water running, a rotor)
    is a texture too (:func:`texture_like`). ``licence_class`` is cc0 | by | sa | other | own.
    """

    path: str
    text: str
    duration: float
    kind: str
    size: int
    mtime_ns: int
    title: str = ""
    categories: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # shorter texts also embedded (a clip's title alone): matched like bank phrases
    source: str = ""
    licence: str = ""
    licence_class: str = OWN
    attribution: str = ""
    url: str = ""
    sample_rate: int = 0
    loudness: float = -70.0
    peak_db: float = -120.0
    onset: float = 0.0
    steady: float = 0.0
    seam: float = 0.0
    decay: float = 0.0  # dB from the loudest 100 ms to the level of the last fifth: a hit decays, a texture holds
    loop: str = "crossfade"
    lofi: bool = False  # 8-bit or low-rate game audio: loses ties against cleaner recordings

    @property
    def loopable(self) -> float:
        """How good a bed the clip makes when repeated (0..1)."""
        return float(self.steady * self.seam) if self.kind == "texture" else 0.0

    def credit(self) -> dict:
        """What the deliverables' credits need about this clip."""
        return {"clip": self.title or Path(self.path).name, "path": self.path, "source": self.source,
                "licence": self.licence or ("your own sound" if self.licence_class == OWN else "unknown"),
                "licence_class": self.licence_class, "attribution": self.attribution, "url": self.url}


class SoundLibrary:
    """An index of the audio clips under ``dirs`` with one L2-normalised text vector per clip.

    ``alias_vectors`` holds one row per alias, ``alias_owner`` the index of the sound each belongs to.
    ``stats`` says what the last :meth:`index` did (clips, how many were embedded, how many came from the cache);
    ``notes`` says what a user should know (a cache that was rebuilt, a manifest that could not be read, files
    that went missing).
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
        self.alias_vectors = self.vectors.copy()
        self.alias_owner = np.zeros(0, int)
        self.stats = {"files": 0, "embedded": 0, "cached": 0}
        self.notes: list[str] = []
        self._decoded: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._decoded_lock = threading.Lock()  # the renderer's threads share the recently decoded files
        self.index()

    # --- index -------------------------------------------------------------------------------------------------

    def index(self) -> None:
        """(Re)build the index, analysing and embedding only clips that are new or changed since the cache."""
        sounds, vectors, aliases, owners = [], [], [], []
        stats = {"files": 0, "embedded": 0, "cached": 0}
        self.notes = []
        for root in self.dirs:
            s, v, a, st = self._index_root(root)
            owners += [len(sounds) + i for i, snd in enumerate(s) for _ in snd.aliases]
            sounds += s
            vectors.append(v)
            aliases.append(a)
            for k in stats:
                stats[k] += st[k]
        self.sounds = sounds
        self.vectors = np.concatenate(vectors) if vectors else self.vectors[:0]
        self.alias_vectors = np.concatenate(aliases) if aliases else self.alias_vectors[:0]
        self.alias_owner = np.asarray(owners, int)
        self.stats = stats

    def allowed(self, licence_filter: str) -> np.ndarray:
        """Boolean mask of the clips a licence filter (cc0 | by | any) admits."""
        ok = allowed_classes(licence_filter)
        return np.array([s.licence_class in ok for s in self.sounds], bool)

    def _note(self, message: str, *, warn: bool = True) -> None:
        self.notes.append(message)
        (_LOG.warning if warn else _LOG.info)(message)

    def _cache_file(self, root: Path) -> Path:
        model = getattr(self.embedder, "model_id", type(self.embedder).__name__)
        key = hashlib.sha1(f"{INDEX_VERSION}|{model}|{root}".encode()).hexdigest()[:16]
        return self.cache_dir / f"{key}.npz"

    def _load_cache(self, root: Path, cache_file: Path) -> dict[str, tuple[LibrarySound, np.ndarray, np.ndarray]]:
        if not cache_file.is_file():
            return {}
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                vecs, alias_vecs = z["vectors"], z["alias_vectors"]
            sounds = [_sound_from_dict(m) for m in meta]
            if len(sounds) != len(vecs) or sum(len(s.aliases) for s in sounds) != len(alias_vecs):
                raise ValueError("clip and vector counts differ")
            out, k = {}, 0
            for s, v in zip(sounds, vecs):
                out[s.path] = (s, v, alias_vecs[k:k + len(s.aliases)])
                k += len(s.aliases)
            return out
        except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
            self._note(f"the sound index cache for {root} was unreadable ({type(exc).__name__}: {exc}); "
                       "rebuilding it")
            return {}

    def _entries(self, root: Path) -> list[tuple[Path, dict | None]]:
        """(file, manifest entry or None) for every clip under ``root``."""
        if (root / MANIFEST).is_file():
            try:
                manifest = read_manifest(root)
            except RenderError as exc:
                self._note(str(exc))
                return []
            out = []
            missing = 0
            for clip in manifest["clips"]:
                path = (root / str(clip.get("file", ""))).resolve()
                if path.is_file():
                    out.append((path, {**clip, "source": manifest.get("source", root.name)}))
                else:
                    missing += 1
            if missing:
                self._note(f"{missing} clip(s) listed in {root / MANIFEST} are missing; reinstall with "
                           f"`dubkit library add {manifest.get('source', root.name)}`")
            return out
        # Hidden folders are work in progress (a source being extracted) or not the user's sounds.
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        return [(p, None) for p in files]

    def _index_root(self, root: Path):
        cache_file = self._cache_file(root)
        cached = self._load_cache(root, cache_file)
        dim = getattr(self.embedder, "dim", 384)
        sounds: list[LibrarySound] = []
        vectors: list[np.ndarray | None] = []
        alias_rows: list[np.ndarray | None] = []
        todo: list[int] = []
        for path, entry in self._entries(root):
            st = path.stat()
            hit = cached.get(str(path))
            if hit and hit[0].size == st.st_size and hit[0].mtime_ns == st.st_mtime_ns:
                sounds.append(hit[0])
                vectors.append(hit[1])
                alias_rows.append(hit[2])
                continue
            described = _describe(path, root, st.st_size, st.st_mtime_ns, entry, self.label)
            if described is None:
                self._note(f"cannot read {path}; skipped", warn=False)
                continue  # unreadable: skipped, not fatal
            todo.append(len(sounds))
            sounds.append(described)
            vectors.append(None)
            alias_rows.append(None)
        if todo:
            if len(todo) > 1:
                self._note(f"indexing {len(todo)} new or changed clip(s) in {root}", warn=False)
            texts = [t for i in todo for t in (sounds[i].text, *sounds[i].aliases)]
            new = iter(np.asarray(self.embedder.encode(texts), np.float32))
            for i in todo:
                vectors[i] = next(new)
                alias_rows[i] = np.stack([next(new) for _ in sounds[i].aliases]) if sounds[i].aliases else \
                    np.zeros((0, dim), np.float32)
        vec = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
        alias_vec = (np.concatenate(alias_rows).astype(np.float32) if alias_rows
                     else np.zeros((0, dim), np.float32))
        changed = bool(todo) or len(sounds) != len(cached)
        if changed:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_name(cache_file.stem + f".{os.getpid()}-{threading.get_ident()}.tmp.npz")
                np.savez(tmp, meta=np.array(json.dumps([asdict(s) for s in sounds])), vectors=vec,
                         alias_vectors=alias_vec)
                os.replace(tmp, cache_file)
            except OSError as exc:
                self._note(f"the sound index cache {cache_file} could not be written ({exc}); "
                           "it will be rebuilt next time")
        stats = {"files": len(sounds), "embedded": len(todo), "cached": len(sounds) - len(todo)}
        return sounds, vec, alias_vec, stats

    # --- audio -------------------------------------------------------------------------------------------------

    def load(self, sound: LibrarySound, sample_rate: int) -> np.ndarray:
        """Decode a file to float32 stereo at ``sample_rate`` (soundfile, else ffmpeg); recent files are kept."""
        key = (sound.path, int(sample_rate))
        with self._decoded_lock:
            if key in self._decoded:
                self._decoded.move_to_end(key)
                return self._decoded[key]
        audio = decode(sound.path, sample_rate)  # outside the lock: another thread's file need not wait for it
        with self._decoded_lock:
            self._decoded[key] = audio
            while len(self._decoded) > 32:
                self._decoded.popitem(last=False)
        return audio

    def render(self, sound: LibrarySound, duration: float, sample_rate: int, seed: int, *,
               from_start: bool = False) -> np.ndarray:
        """The clip fitted to exactly ``round(duration * sample_rate)`` samples (see :func:`fit_to_length`);
        ``from_start``: a texture plays from its onset (an event), not from a seeded point (a bed)."""
        n = int(round(duration * sample_rate))
        return fit_to_length(self.load(sound, sample_rate), n, sample_rate, sound.kind,
                             np.random.default_rng(seed), onset=sound.onset, loop=sound.loop,
                             loudness=sound.loudness, from_start=from_start)


def _sound_from_dict(m: dict) -> LibrarySound:
    m = dict(m)
    m["categories"] = tuple(m.get("categories", ()))
    m["aliases"] = tuple(m.get("aliases", ()))
    return LibrarySound(**m)


def _describe(path: Path, root: Path, size: int, mtime_ns: int, entry: dict | None = None,
              label: str = "library") -> LibrarySound | None:
    """What a clip says about itself (manifest entry, else name words, folders, tags, sidecar) and its analysis."""
    info = analyse(path)
    if info is None:
        return None
    if entry is not None:
        words = name_words(path.stem) if not entry.get("description") else []
        cats = tuple(str(c) for c in entry.get("categories", ()) if c)
        description = str(entry.get("description") or " ".join(words) or path.stem)
        text = ". ".join([description] + ([", ".join(cats)] if cats else []))[:500]
        flat = set(re.findall(r"[a-z]+", description.lower()))
        kind = entry.get("kind") or ("texture" if texture_like(info) or flat & _TEXTURE_WORDS else "oneshot")
        licence = normalise_licence(str(entry.get("licence", "")))
        title = str(entry.get("title", ""))
        return LibrarySound(
            str(path), text, info["duration"], kind, int(size), int(mtime_ns), title=title,
            categories=cats, aliases=_aliases(text, [*entry.get("aliases", ()), description]), source=str(entry.get("source", root.name)), licence=licence,
            licence_class=str(entry.get("licence_class") or licence_class(licence)),
            attribution=str(entry.get("attribution", "")), url=str(entry.get("url", "")),
            sample_rate=info["sample_rate"], loudness=info["loudness"], peak_db=info["peak_db"],
            onset=info["onset"], steady=info["steady"], seam=info["seam"], decay=info["decay"],
            loop="exact" if flat & _LOOP_WORDS else "crossfade", lofi=bool(entry.get("lofi", False)))
    words = name_words(path.stem)
    folders = [w for part in path.relative_to(root).parent.parts for w in name_words(part)]
    tags = _read_tags(path)[0]
    sidecar, side_meta = _read_sidecar(path)
    parts = [" ".join(words)]
    if folders:
        parts.append(" ".join(folders))
    parts += [t for t in tags if t]
    if sidecar:
        parts.append(sidecar)
    text = ". ".join(p for p in parts if p.strip())[:500] or path.stem
    flat = set(words + folders)
    kind = "texture" if texture_like(info) or flat & _TEXTURE_WORDS else "oneshot"
    licence = normalise_licence(side_meta.get("licence", "")) if side_meta.get("licence") else ""
    return LibrarySound(
        str(path), text, info["duration"], kind, int(size), int(mtime_ns), title=path.name,
        categories=tuple(folders), aliases=_aliases(text, [" ".join(words)] + [t for t in tags if t][:1]), source=f"{label}:{root.name}", licence=licence,
        licence_class=licence_class(licence) if licence else OWN, attribution=side_meta.get("attribution", ""),
        url=side_meta.get("url", ""), sample_rate=info["sample_rate"], loudness=info["loudness"],
        peak_db=info["peak_db"], onset=info["onset"], steady=info["steady"], seam=info["seam"],
        decay=info["decay"], loop="exact" if flat & _LOOP_WORDS else "crossfade")


def _aliases(text: str, candidates: Sequence[str]) -> tuple[str, ...]:
    """Distinct non-empty short texts that differ from the full ``text``."""
    out: list[str] = []
    for c in candidates:
        c = " ".join(str(c).split())
        if c and c.lower() != text.lower() and c.lower() not in (o.lower() for o in out):
            out.append(c)
    return tuple(out)


# --- analysis ------------------------------------------------------------------------------------------------------

def analyse(path: str | os.PathLike) -> dict | None:
    """Duration, native rate, loudness (LUFS), peak (dBFS), onset (s), steadiness and seam similarity of a file;
    None when it cannot be decoded."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = np.ascontiguousarray(data.T)
    except (RuntimeError, sf.LibsndfileError, OSError):
        sr = 48000
        try:
            audio = decode(path, sr)
        except RenderError:
            return None
    return analyse_audio(audio, int(sr))


def analyse_audio(audio: np.ndarray, sr: int) -> dict:
    """:func:`analyse` for decoded (channels, samples) audio."""
    x = np.nan_to_num(np.asarray(audio, np.float64))
    if x.ndim == 1:
        x = x[None]
    n = x.shape[-1]
    duration = n / sr
    peak = float(np.abs(x).max()) if n else 0.0
    info = {"duration": float(duration), "sample_rate": int(sr), "peak_db": _db(peak), "loudness": -70.0,
            "onset": 0.0, "steady": 0.0, "seam": 0.0, "decay": 0.0}
    if n == 0 or peak <= 0:
        return info
    frame = max(1, int(round(0.005 * sr)))
    env = _frame_rms(x.mean(axis=0), frame)
    above = np.nonzero(env >= env.max() * 10 ** (ONSET_THRESHOLD_DB / 20))[0]
    info["onset"] = float(above[0] * frame / sr) if len(above) else 0.0
    info["loudness"] = loudness_lufs(x, sr)
    # steadiness: spread of 100 ms levels (in dB) over the clip's active part
    win = _frame_rms(x.mean(axis=0), max(1, int(0.1 * sr)))
    active = win[win > win.max() * 10 ** (-40 / 20)]
    if len(active) >= 4:
        spread = float(np.std(20 * np.log10(active + 1e-9)))
        info["steady"] = float(np.exp(-spread / 6.0))
    if len(win) >= 2:
        levels = 20 * np.log10(win + 1e-9)
        info["decay"] = float(levels.max() - np.median(levels[-max(1, len(levels) // 5):]))
    info["seam"] = _seam_similarity(x, sr)
    return info


def texture_like(info: dict) -> bool:
    """Long files, and shorter ones that hold their level to the end (a texture, not a hit that decays)."""
    if info["duration"] >= TEXTURE_MIN_SECONDS:
        return True
    spread = -6.0 * np.log(max(info["steady"], 1e-9))  # back to the dB spread of 100 ms levels
    if info["duration"] >= 1.0 and spread <= 4.0 and info["decay"] <= 9.0:
        return True
    return info["duration"] >= 0.5 and spread <= 2.0 and info["decay"] <= 4.0


def loudness_lufs(x: np.ndarray, sr: int) -> float:
    """Integrated BS.1770 loudness of (channels, samples) audio; short clips (under 0.4 s) are measured over a
    looped copy so the gating blocks fill. -70 for silence."""
    import pyloudnorm

    x = np.asarray(x, np.float64)
    if not np.any(x):
        return -70.0
    need = int(0.5 * sr)
    if x.shape[-1] < need:
        x = np.tile(x, (1, need // max(x.shape[-1], 1) + 1))
    try:
        value = float(pyloudnorm.Meter(sr).integrated_loudness(x.T))
    except ValueError:
        value = 10 * np.log10(np.mean(x ** 2) + 1e-12) - 0.691
    return value if np.isfinite(value) else -70.0


def _frame_rms(mono: np.ndarray, frame: int) -> np.ndarray:
    k = max(1, len(mono) // frame)
    if len(mono) < frame:
        return np.array([np.sqrt(np.mean(mono ** 2))]) if len(mono) else np.zeros(1)
    return np.sqrt(np.mean(mono[:k * frame].reshape(k, frame) ** 2, axis=1))


def _seam_similarity(x: np.ndarray, sr: int) -> float:
    """How alike the first and last 250 ms sound (cosine of their log spectra, level-matched): 1 joins unheard."""
    seg = int(0.25 * sr)
    if x.shape[-1] < 4 * seg:
        return 0.0
    mono = x.mean(axis=0)

    def spectrum(s: np.ndarray) -> np.ndarray:
        mag = np.abs(np.fft.rfft(s * np.hanning(len(s))))
        bands = np.array_split(mag, 32)
        return np.log10(np.array([b.mean() for b in bands]) + 1e-9)

    a, b = spectrum(mono[:seg]), spectrum(mono[-seg:])
    a, b = a - a.mean(), b - b.mean()
    shape = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
    level = abs(_db(np.sqrt(np.mean(mono[:seg] ** 2))) - _db(np.sqrt(np.mean(mono[-seg:] ** 2))))
    return float(max(0.0, shape) * np.exp(-level / 6.0))


def _db(v: float) -> float:
    return float(20 * np.log10(max(float(v), 1e-6)))


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


_SIDECAR_META = {"licence": "licence", "license": "licence", "attribution": "attribution", "author": "attribution",
                 "url": "url", "source": "url"}


def _read_sidecar(path: Path) -> tuple[str, dict[str, str]]:
    """Text of ``<name>.txt`` or the string values of ``<name>.json`` next to the file (editors' notes), and the
    JSON's licence/attribution/url fields."""
    txt, js = path.with_suffix(".txt"), path.with_suffix(".json")
    try:
        if txt.is_file():
            return " ".join(txt.read_text(errors="replace").split())[:400], {}
        if js.is_file():
            data = json.loads(js.read_text(errors="replace"))
            meta: dict[str, str] = {}
            if isinstance(data, dict):
                for k, v in data.items():
                    if str(k).lower() in _SIDECAR_META and isinstance(v, str):
                        meta[_SIDECAR_META[str(k).lower()]] = v
                data = {k: v for k, v in data.items() if str(k).lower() not in _SIDECAR_META}
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
            return " ".join(vals)[:400], meta
    except (OSError, ValueError):
        return "", {}
    return "", {}


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


def fit_to_length(audio: np.ndarray, n: int, sr: int, kind: str, rng: np.random.Generator, *,
                  onset: float | None = None, loop: str = "crossfade", loudness: float | None = None,
                  from_start: bool = False) -> np.ndarray:
    """Fit decoded audio to exactly ``n`` samples and normalise it like the synthesis bank.

    Oneshots (spots): everything before the ``onset`` (seconds; measured here when not given) is cut so the sound
    starts at sample 0, the cue; cut at the quietest point of the last quarter when too long; padded with silence
    when short; peak-normalised. Textures: an excerpt when long enough — seeded for beds, from the onset when
    ``from_start`` (an event: recordings begin with what they are of) — else looped — exact loops
    end-to-start, others with equal-power crossfades — then brought to the bank's bed level from the clip's own
    measured ``loudness`` (so a quiet stretch of a recording stays quiet instead of being pumped up).
    """
    if n <= 0:
        return np.zeros((2, 0), np.float32)
    x = np.asarray(audio, dtype=np.float64)
    if x.shape[-1] == 0:
        return np.zeros((2, n), np.float32)
    if kind == "oneshot":
        start = to_onset(x, sr) if onset is None else min(int(round(onset * sr)), x.shape[-1] - 1)
        x = x[:, start:]
        if x.shape[-1] > n:
            x = fade(x[:, :_quiet_cut(x, n, sr)].copy(), 0, seconds(sr, 0.01))
        return finish(x, n, sr, "oneshot")
    if from_start:
        x = x[:, (to_onset(x, sr) if onset is None else min(int(round(onset * sr)), x.shape[-1] - 1)):]
    if x.shape[-1] >= n:
        begin = 0 if from_start else int(rng.integers(0, x.shape[-1] - n + 1))
        y = x[:, begin:begin + n]
    else:
        y = loop_to(x, n, sr, exact=(loop == "exact"))
    if loudness is None or loudness <= -69:
        return finish(y, n, sr, "texture")
    return finish_bed(y, n, sr, loudness)


def to_onset(x: np.ndarray, sr: int) -> int:
    """Index of the first 5 ms frame within :data:`ONSET_THRESHOLD_DB` of the loudest one."""
    frame = max(1, int(round(0.005 * sr)))
    env = _frame_rms(np.asarray(x, np.float64).mean(axis=0), frame)
    if not env.any():
        return 0
    above = np.nonzero(env >= env.max() * 10 ** (ONSET_THRESHOLD_DB / 20))[0]
    return int(above[0] * frame) if len(above) else 0


def finish_bed(x: np.ndarray, n: int, sr: int, loudness: float) -> np.ndarray:
    """A bed at the bank's level, gained from the whole clip's loudness (LUFS ≈ RMS dBFS + 3 for broadband
    sound), peaks capped, faded in and out over 20 ms."""
    from .bank import TEXTURE_PEAK_CEILING_DBFS, TEXTURE_RMS_DBFS

    y = finish(x, n, sr, "texture")  # exact length, DC-free, faded; normalised by its own RMS ...
    rms = float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) if np.size(x) else 0.0
    if rms <= 0:
        return y
    # ... undo that and apply the clip's measured loudness instead
    own = 10 ** (TEXTURE_RMS_DBFS / 20) / rms
    wanted = 10 ** ((TEXTURE_RMS_DBFS + 3.0 - loudness) / 20)
    y = y * (wanted / own)
    peak = float(np.abs(y).max())
    ceiling = 10 ** (TEXTURE_PEAK_CEILING_DBFS / 20)
    if peak > ceiling:
        y *= ceiling / peak
    return y.astype(np.float32)


def _quiet_cut(x: np.ndarray, n: int, sr: int) -> int:
    """The end of the quietest 10 ms frame in the last quarter of the first ``n`` samples."""
    frame = seconds(sr, 0.01)
    lo = max(n * 3 // 4, frame)
    starts = np.arange(lo, n - frame + 1, frame)
    if len(starts) == 0:
        return n
    energy = [np.mean(x[:, s:s + frame] ** 2) for s in starts]
    return int(starts[int(np.argmin(energy))] + frame)


def loop_to(x: np.ndarray, n: int, sr: int, *, exact: bool = False) -> np.ndarray:
    """Repeat ``x`` to ``n`` samples. ``exact`` loops (made to repeat: a drum loop) are tiled end to start, so
    their period and rhythm are kept; others are joined with :data:`LOOP_CROSSFADE_SECONDS` equal-power
    crossfades (no seams)."""
    length = x.shape[-1]
    xf = min(seconds(sr, LOOP_CROSSFADE_SECONDS), length // 4)
    if exact or xf < 2:
        return fit_length(np.tile(x, (1, n // max(length, 1) + 1)), n)
    step = length - xf
    out = np.zeros((x.shape[0], n + length))
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


_loop = loop_to  # the name earlier code used
