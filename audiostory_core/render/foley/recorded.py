"""The sounds a continuation can choose from: the procedural bank and the licensed recordings, as one bank.

The continuation planner (``plan.continuation_planner``) listens to every candidate and keeps the one whose
measured character is closest to the input's; it needs only a mapping of names to sounds (``description``,
``kind``) and a ``synthesize(name, duration, sample_rate, seed)`` function. :class:`RecordingBank` gives it both
over the foley bank and the recordings a :class:`~.renderer.FoleyRenderer` admits under its licence filter, so a
choir can continue as recorded voices and vinyl hiss as recorded hiss. A recording is named by its file path —
the name the foley renderer also plays — and carries its credits into the clip it renders.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from ...errors import RenderError
from .bank import BANK, synthesize as synthesize_bank
from .library import LibrarySound, SoundLibrary

MAX_RECORDING_SECONDS = 120.0  # longer files are whole albums of ambience: skipped, their previews cost too much


@dataclass(frozen=True)
class RecordedSound:
    """A library recording as a bank entry: what the planner reads (description, kind) and the credits."""

    name: str  # the file path
    description: str
    kind: str
    keywords: tuple[str, ...] = ()
    credits: tuple[dict, ...] = field(default=(), repr=False)
    sound: LibrarySound | None = field(default=None, repr=False)
    library: SoundLibrary | None = field(default=None, repr=False)


class RecordingBank(Mapping[str, object]):
    """The foley bank plus ``recordings`` (``(LibrarySound, SoundLibrary)`` pairs) under one name space.

    ``kinds`` limits which recordings join ("texture" by default: a continuation's bed is where a recording's
    character matters most; its one-shots for rhythm come from the input's own hits or the bank).
    """

    def __init__(self, recordings: Sequence[tuple[LibrarySound, SoundLibrary]], *,
                 kinds: Sequence[str] = ("texture",)) -> None:
        self._sounds: dict[str, object] = dict(BANK)
        for sound, lib in recordings:
            if sound.kind not in kinds or not 0.2 <= sound.duration <= MAX_RECORDING_SECONDS:
                continue
            self._sounds[sound.path] = RecordedSound(
                sound.path, sound.text.split(". ")[0] or sound.title, sound.kind, tuple(sound.aliases),
                (sound.credit(),), sound, lib)

    @classmethod
    def from_renderer(cls, renderer, **kw) -> "RecordingBank":
        """Every recording ``renderer`` (a ``FoleyRenderer``) may play under its licence filter."""
        return cls(renderer.playable, **kw)

    def __getitem__(self, name: str) -> object:
        return self._sounds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sounds)

    def __len__(self) -> int:
        return len(self._sounds)

    def preview_key(self, name: str) -> str | None:
        """What a render of ``name`` depends on — the file (path, size, time) or the synthesis code — so the
        planner can keep its analysis on disk; ``None`` for an unknown name."""
        entry = self._sounds.get(name)
        if isinstance(entry, RecordedSound):
            return f"recording|{entry.sound.path}|{entry.sound.size}|{entry.sound.mtime_ns}|{_code_stamp()}"
        return f"bank|{name}|{_code_stamp()}" if name in BANK else None

    def credits(self, name: str) -> list[dict]:
        """The credits of sound ``name``: empty for the procedural bank."""
        return list(getattr(self._sounds.get(name), "credits", ()))

    def synthesize(self, name: str, duration: float, sample_rate: int, seed: int = 0) -> np.ndarray:
        """Render ``name`` for ``duration`` s: a bank sound synthesised, a recording excerpted or looped."""
        entry = self._sounds.get(name)
        if isinstance(entry, RecordedSound):
            return entry.library.render(entry.sound, duration, sample_rate, seed)
        if name in BANK:
            return synthesize_bank(name, duration, sample_rate, seed)
        raise RenderError(f"unknown sound {name!r}: neither a foley bank sound nor a library recording")


@lru_cache(maxsize=1)
def _code_stamp() -> str:
    """A digest of the code that renders bank sounds and recordings: previews stored before a change are not
    reused after it."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha1()
    for name in ("bank.py", "dsp.py", "library.py", "recorded.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:12]


__all__ = ["RecordedSound", "RecordingBank"]
