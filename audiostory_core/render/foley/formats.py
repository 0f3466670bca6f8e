"""Readers for the containers free sound packages ship their audio in, and for the licences that come with them.

- OpenTTD's ``.cat`` sound sets (OpenSFX): a table of (offset, size) pairs; each entry is a length-prefixed title
  that names the sound, its author and its licence, followed by a RIFF/WAVE file.
- Doom WADs (Freedoom): a lump directory; ``DS*`` lumps are "Doom sound format" (format 3, rate, sample count,
  16 padding bytes, 8-bit unsigned PCM, 16 padding bytes).
- Qt resource files (``.rcc``, GCompris): a tree of directory/file nodes, UTF-16 names, zlib/zstd-compressed data.
- Debian machine-readable copyright files (DEP-5), through python-debian's RFC 822 parser.

Licences are reduced to an SPDX-like id and one of four classes (:func:`licence_class`): ``cc0`` (no conditions),
``by`` (attribution only: CC-BY, BSD, MIT), ``sa`` (copyleft: CC-BY-SA, GPL, GFDL, Free Art) and ``other``
(non-commercial or unknown terms: never used).
"""
from __future__ import annotations

import fnmatch
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import RenderError

LICENCE_CLASSES = ("cc0", "by", "sa", "other")
OWN = "own"  # the user's own folders: their licence is the user's business, every filter admits them


# --- OpenTTD .cat -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CatSample:
    """One sample of a .cat sound set: its position, the title text stored with it, and the WAVE file bytes."""

    index: int
    title: str
    wav: bytes


def read_opensfx_cat(path: str | Path) -> list[CatSample]:
    """Every sample of an OpenTTD ``.cat`` file, in table order (empty placeholders included)."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise RenderError(f"{path} is not an OpenTTD sound catalogue (too short)")
    first = struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF  # the new format sets the top bit of each offset
    if first % 8 or first > len(data):
        raise RenderError(f"{path} is not an OpenTTD sound catalogue (bad offset table)")
    out = []
    for i in range(first // 8):
        off, size = struct.unpack_from("<II", data, 8 * i)
        off &= 0x7FFFFFFF
        if off >= len(data):
            raise RenderError(f"{path}: entry {i} points past the end of the file")
        name_len = data[off]
        title = data[off + 1:off + 1 + name_len].split(b"\0", 1)[0].decode("utf-8", "replace")
        wav = data[off + 1 + name_len:off + 1 + name_len + size]
        if len(wav) != size or (size and wav[:4] != b"RIFF"):
            raise RenderError(f"{path}: entry {i} ({title!r}) holds no WAVE data")
        out.append(CatSample(i, title, wav))
    return out


# --- Doom WAD sound lumps -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DoomSound:
    """A ``DS*`` lump decoded to float32 mono in [-1, 1] at its own sample ``rate``."""

    name: str
    rate: int
    samples: np.ndarray


def read_wad_sounds(path: str | Path) -> list[DoomSound]:
    """The sound effects of a Doom IWAD/PWAD (lumps named ``DS*`` in Doom sound format; others are skipped)."""
    data = Path(path).read_bytes()
    if data[:4] not in (b"IWAD", b"PWAD") or len(data) < 12:
        raise RenderError(f"{path} is not a Doom WAD file")
    count, table = struct.unpack_from("<ii", data, 4)
    if table < 0 or table + 16 * count > len(data):
        raise RenderError(f"{path}: the lump directory lies outside the file")
    sounds = []
    for i in range(count):
        pos, size, raw = struct.unpack_from("<ii8s", data, table + 16 * i)
        name = raw.split(b"\0", 1)[0].decode("ascii", "replace").upper()
        if not name.startswith("DS") or size < 8 + 32 or pos + size > len(data):
            continue
        fmt, rate, n = struct.unpack_from("<HHI", data, pos)
        if fmt != 3 or rate < 4000 or n < 32 or 8 + n > size:
            continue  # not Doom sound format (e.g. a placeholder lump)
        pcm = np.frombuffer(data, np.uint8, n - 32, pos + 8 + 16)  # the format pads 16 bytes at both ends
        sounds.append(DoomSound(name, int(rate), (pcm.astype(np.float32) - 128.0) / 128.0))
    return sounds


# --- Qt resource files --------------------------------------------------------------------------------------------

_RCC_COMPRESSED, _RCC_DIRECTORY, _RCC_ZSTD = 0x01, 0x02, 0x04


def read_rcc(path: str | Path, want=None) -> dict[str, bytes]:
    """Files inside a Qt ``.rcc`` resource file as {path: bytes}; ``want(path) -> bool`` skips the rest unread."""
    d = Path(path).read_bytes()
    if d[:4] != b"qres" or len(d) < 20:
        raise RenderError(f"{path} is not a Qt resource file")
    version, tree, data, names = struct.unpack_from(">iiii", d, 4)
    node = 14 if version == 1 else 22  # version 2 added a 64-bit modification time per node

    def name_at(offset: int) -> str:
        length = struct.unpack_from(">H", d, names + offset)[0]
        start = names + offset + 6  # length (2) + hash (4)
        return d[start:start + 2 * length].decode("utf-16-be")

    out: dict[str, bytes] = {}
    stack = [(0, "")]
    seen = 0
    while stack:
        index, prefix = stack.pop()
        seen += 1
        if seen > 1_000_000:
            raise RenderError(f"{path}: the resource tree does not end")
        base = tree + index * node
        name_offset, flags = struct.unpack_from(">iH", d, base)
        name = name_at(name_offset) if index else ""
        full = f"{prefix}/{name}" if prefix else name
        if flags & _RCC_DIRECTORY:
            children, first = struct.unpack_from(">ii", d, base + 6)
            stack.extend((c, full) for c in range(first, first + children))
            continue
        if want is not None and not want(full):
            continue
        offset = struct.unpack_from(">i", d, base + 10)[0]
        size = struct.unpack_from(">I", d, data + offset)[0]
        blob = d[data + offset + 4:data + offset + 4 + size]
        if flags & _RCC_COMPRESSED:
            blob = zlib.decompress(blob[4:])  # qCompress: 4-byte big-endian length, then a zlib stream
        elif flags & _RCC_ZSTD:
            raise RenderError(f"{path}: {full} is zstd-compressed, which this reader does not handle")
        out[full] = blob
    return out


# --- SoundFont 2 -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sf2Sample:
    """One sample of a SoundFont: its name, rate and (channels, samples) float32 audio (stereo pairs joined)."""

    name: str
    rate: int
    audio: np.ndarray


def _riff_chunks(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def _sf2_mate(heads: list, k: int, base: str) -> int | None:
    """The other half of a stereo sample: its header link, else (files that leave links at 0) the neighbouring
    header of the other side with the same name."""
    kind, link = heads[k][5], heads[k][4]
    other = 2 if kind == 4 else 4
    if 0 <= link < len(heads) and link != k and heads[link][5] == other and heads[link][4] == k:
        return link
    for j in (k + 1, k - 1):
        if 0 <= j < len(heads) and heads[j][5] == other and re.sub(r"\s*\(?[LR]\)?$", "", heads[j][0]) == base:
            return j
    return None


def read_sf2_samples(path: str | Path, want=None) -> list[Sf2Sample]:
    """The samples of a SoundFont 2 file whose name ``want(name)`` accepts (all when None); a left/right pair
    (linked sample headers) becomes one stereo sample named without its "(L)"/"(R)" suffix."""
    d = Path(path).read_bytes()
    if d[:4] != b"RIFF" or d[8:12] != b"sfbk":
        raise RenderError(f"{path} is not a SoundFont 2 file")
    smpl = shdr = None
    for cid, off, size in _riff_chunks(d, 12, len(d)):
        if cid != b"LIST":
            continue
        kind = d[off:off + 4]
        for sub, soff, ssize in _riff_chunks(d, off + 4, off + size):
            if kind == b"sdta" and sub == b"smpl":
                smpl = (soff, ssize)
            elif kind == b"pdta" and sub == b"shdr":
                shdr = (soff, ssize)
    if smpl is None or shdr is None:
        raise RenderError(f"{path}: no sample data or sample headers")
    pcm = np.frombuffer(d, "<i2", smpl[1] // 2, smpl[0])
    heads = []
    for k in range(shdr[1] // 46 - 1):  # the last header is the terminal "EOS" record
        rec = d[shdr[0] + 46 * k:shdr[0] + 46 * (k + 1)]
        name = rec[:20].split(b"\0", 1)[0].decode("latin-1").strip()
        start, end, _ls, _le, rate = struct.unpack_from("<IIIII", rec, 20)
        _pitch, _corr, link, kind = struct.unpack_from("<BbHH", rec, 40)
        heads.append((name, start, end, rate, link, kind))
    out, done = [], set()
    for k, (name, start, end, rate, link, kind) in enumerate(heads):
        base = re.sub(r"\s*\(?[LR]\)?$", "", name) if kind in (2, 4) else name
        if k in done or kind & 0x8000 or end <= start or end > len(pcm) or rate < 4000:
            continue  # ROM samples, empty or broken headers
        if want is not None and not want(base):
            continue
        chans = [(kind, pcm[start:end])]
        mate = _sf2_mate(heads, k, base) if kind in (2, 4) else None
        if mate is not None:
            o = heads[mate]
            chans.append((o[5], pcm[o[1]:o[2]]))
            done.add(mate)
        chans.sort(key=lambda c: 0 if c[0] == 4 else 1)  # left first
        n = min(len(c[1]) for c in chans)
        audio = np.stack([c[1][:n] for c in chans]).astype(np.float32) / 32768.0
        out.append(Sf2Sample(base, int(rate), audio))
        done.add(k)
    return out


# --- Debian copyright files ---------------------------------------------------------------------------------------

def read_dep5(path: str | Path) -> list[dict[str, str]]:
    """The paragraphs of a machine-readable ``debian/copyright`` file, as plain dicts."""
    from debian.deb822 import Deb822

    with open(path, encoding="utf-8", errors="replace") as fh:
        return [dict(p) for p in Deb822.iter_paragraphs(fh)]


def dep5_files_paragraph(paragraphs: list[dict[str, str]], relpath: str, *, loose: bool = False) -> dict | None:
    """The ``Files:`` paragraph that governs ``relpath`` (DEP-5: the last matching pattern wins).

    ``loose`` treats ``-`` and ``_`` as the same character: GCompris renames activity folders when packing them.
    """
    def norm(s: str) -> str:
        return s.replace("-", "_") if loose else s

    found = None
    for p in paragraphs:
        for pattern in p.get("Files", "").split():
            if fnmatch.fnmatchcase(norm(relpath), norm(pattern)):
                found = p
    return found


def dep5_licence_text(paragraphs: list[dict[str, str]], name: str) -> str:
    """The full text of a stand-alone ``License: name`` paragraph (empty when the file has none)."""
    for p in paragraphs:
        if "Files" not in p and p.get("License", "").split("\n", 1)[0].strip() == name:
            return p["License"]
    return ""


# --- licences -----------------------------------------------------------------------------------------------------

_CC_VERSIONED = re.compile(r"creative\s+commons\s+(?P<what>[a-z][a-z\s\-]*?)\s+(?P<ver>\d\.\d)", re.IGNORECASE)
_CC_WORDS = re.compile(r"creative\s+commons\s+(?P<what>[a-z][a-z\-]*(?:\s+[a-z][a-z\-]*){0,3})", re.IGNORECASE)


def normalise_licence(text: str, licence_text: str = "") -> str:
    """A licence name as written in a package ("Creative Commons Attribution 3.0 Unported", "CC0", "BSD-3-clause",
    a local name plus its full ``licence_text``) → an SPDX-like id ("CC-BY-3.0", "CC0-1.0", "BSD-3-Clause")."""
    t = " ".join(str(text).split())
    low = t.lower()
    m = _CC_VERSIONED.search(t) or _CC_WORDS.search(t)
    if m:
        what, ver = m.group("what").lower(), (m.groupdict().get("ver") or "")
        if "zero" in what or what.strip() in ("0", "cc0"):
            return "CC0-1.0"
        parts = ["BY"] if "attribution" in what else []
        if "noncommercial" in what.replace("-", "").replace(" ", "") or "non commercial" in what:
            parts.append("NC")
        if "noderiv" in what.replace("-", "").replace(" ", ""):
            parts.append("ND")
        if "sharealike" in what.replace("-", "").replace(" ", ""):
            parts.append("SA")
        return "CC-" + "-".join(parts or ["unknown"]) + (f"-{ver}" if ver else "")
    if re.fullmatch(r"cc0(-1\.0)?", low):
        return "CC0-1.0"
    if re.fullmatch(r"cc-by(-nc)?(-nd)?(-sa)?(-\d\.\d)?", low):
        return t.upper().replace("CC-BY", "CC-BY")
    if low in ("public-domain", "public domain", "pd"):
        return "public-domain"
    if licence_text:
        body = licence_text.lower()
        if "redistribution and use in source and binary forms" in body:
            return "BSD-3-Clause" if "neither the name" in body else "BSD-2-Clause"
        if "permission is hereby granted, free of charge" in body:
            return "MIT"
    return t


def licence_class(licence: str) -> str:
    """``cc0`` | ``by`` | ``sa`` | ``other`` for an id from :func:`normalise_licence`; compound expressions take
    the strictest part of an "and" and the most permissive alternative of an "or"."""
    text = str(licence).strip()
    if not text:
        return "other"
    if re.search(r"\bor\b", text, re.IGNORECASE):
        alts = [licence_class(a) for a in re.split(r"\bor\b", text, flags=re.IGNORECASE)]
        return min(alts, key=LICENCE_CLASSES.index)
    if re.search(r"\band\b|&", text, re.IGNORECASE):
        parts = [licence_class(a) for a in re.split(r"\band\b|&", text, flags=re.IGNORECASE)]
        return max(parts, key=LICENCE_CLASSES.index)
    up = text.upper()
    if up.startswith("CC0") or up in ("PUBLIC-DOMAIN", "PUBLIC DOMAIN"):
        return "cc0"
    if up.startswith("CC-BY"):
        if "-NC" in up or "-ND" in up:
            return "other"
        return "sa" if "-SA" in up else "by"
    if re.match(r"(BSD|MIT|EXPAT|ISC|ZLIB|APACHE)", up):
        return "by"
    if re.match(r"(GPL|LGPL|AGPL|GFDL|FREE-ART|FAL|CC-BY-SA|OFL)", up):
        return "sa"
    return "other"


def allowed_classes(licence_filter: str) -> frozenset[str]:
    """The licence classes a filter admits: ``cc0`` → CC0 only; ``by`` → CC0 and attribution-only; ``any`` → also
    copyleft (the result inherits it). Never ``other``; always the user's own sounds."""
    f = str(licence_filter).strip().lower()
    table = {"cc0": {"cc0"}, "by": {"cc0", "by"}, "any": {"cc0", "by", "sa"}}
    if f not in table:
        raise RenderError(f"unknown licence filter {licence_filter!r}: use cc0, by or any")
    return frozenset(table[f] | {OWN})
