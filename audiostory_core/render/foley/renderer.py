"""The offline foley renderer: each event's caption is matched (sentence embeddings, cosine) against the
procedural bank and the user's sound libraries, and the best match is rendered to the event's exact length.

No neural audio weights are needed, only the small MiniLM text encoder. The event's ``kind`` and ``layer`` act
as a prior, not a rule: impacts/slams/flashes/whooshes lean towards oneshots, ambience beds (strongly) and long
kind-less events towards textures.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ... import cache
from ...audio import fit_length
from ...errors import RenderError
from ...plan.types import Plan, SubEvent
from ...plan.types import ONSET_KINDS
from ..base import Clip, Renderer, event_samples, event_seed
from .bank import BANK, synthesize
from .library import SYSTEM_SAMPLES_DIR, LibrarySound, SoundLibrary

LONG_EVENT_SECONDS = 4.0  # kind-less events at least this long lean towards beds
KIND_PRIOR = 0.06  # cosine bonus for a candidate of the preferred kind (and malus for the other)
BED_PRIOR = 0.15  # ambience beds lean harder: a oneshot bed leaves the scene silent after its first second
BED_FALLBACK_SCORE = 0.55  # a bed whose best match scores below this (prior included) gets room tone
USER_LIBRARY_BONUS = 0.02  # the user's own recordings win ties against synthesis
SYSTEM_LIBRARY_MALUS = 0.1  # sonic-pi samples are mostly musical: only clear matches should win


@dataclass(frozen=True)
class Candidate:
    """Something the renderer can play: a bank sound or a library file."""

    source: str  # "synth:<name>" or "library:<path>"
    kind: str  # "oneshot" | "texture"
    bias: float
    sound: LibrarySound | None = None
    library: SoundLibrary | None = None


class FoleyRenderer(Renderer):
    """Renderer seam implementation: ``render(plan, conditioning=None, *, seed=0) -> list[Clip]``.

    ``library_dirs``: folders of the user's sound files (indexed and cached, see ``library.py``).
    ``use_system_samples``: also use the CC0 sonic-pi samples when installed. ``conditioning`` is ignored: this
    renderer conditions on captions, except that an event whose ``sound`` names a bank sound or library file
    (the planner's choice) plays exactly that.
    """

    name = "foley"
    max_duration = None  # synthesis and libraries render any length

    def __init__(self, library_dirs: Sequence[str | os.PathLike] = (), *, sample_rate: int = 48000,
                 use_system_samples: bool = True, embedder: Any = None,
                 cache_dir: str | os.PathLike | None = None) -> None:
        if int(sample_rate) < 8000:
            raise RenderError(f"foley sample rate {sample_rate} is too low; use 8000 Hz or more (48000 default)")
        self.sample_rate = int(sample_rate)
        if embedder is None:
            from ...embeddings import TextEmbedder

            embedder = TextEmbedder()
        self.embedder = embedder
        self.cache_dir = cache.cache_dir(root=cache_dir)
        self.libraries: list[SoundLibrary] = []
        if library_dirs:
            self.libraries.append(SoundLibrary(library_dirs, embedder, cache_dir=cache_dir, label="library"))
        if use_system_samples and SYSTEM_SAMPLES_DIR.is_dir():
            self.libraries.append(SoundLibrary([SYSTEM_SAMPLES_DIR], embedder, cache_dir=cache_dir, label="system"))
        self._build_candidates()

    # --- matching ----------------------------------------------------------------------------------------------

    def _build_candidates(self) -> None:
        cands: list[Candidate] = []
        owner: list[int] = []  # which candidate each vector row belongs to
        rows: list[np.ndarray] = []
        bank_vecs = self._bank_vectors()
        phrase_owner = [i for i, s in enumerate(BANK.values()) for _ in s.phrases]
        cands += [Candidate(f"synth:{s.name}", s.kind, 0.0) for s in BANK.values()]
        owner += phrase_owner
        rows.append(bank_vecs)
        for lib in self.libraries:
            bias = SYSTEM_LIBRARY_MALUS * -1 if lib.label == "system" else USER_LIBRARY_BONUS
            base = len(cands)
            cands += [Candidate(f"library:{s.path}", s.kind, bias, s, lib) for s in lib.sounds]
            owner += [base + i for i in range(len(lib.sounds))]
            rows.append(lib.vectors)
        self._candidates = cands
        self._by_sound: dict[str, Candidate] = {}  # bank name or library path → candidate, for SubEvent.sound
        for c in cands:
            self._by_sound.setdefault(c.source.split(":", 1)[1], c)
        self._room_tone = next((c for c in cands if c.source == "synth:room_tone"), None)
        self._vectors = np.concatenate(rows).astype(np.float32)
        self._owner = np.asarray(owner, dtype=int)
        self._bias = np.array([c.bias for c in cands], np.float32)
        self._is_oneshot = np.array([c.kind == "oneshot" for c in cands])

    def _bank_vectors(self) -> np.ndarray:
        """Vectors of every bank phrase, cached on disk per model and phrase set (embedding them takes seconds)."""
        phrases = [p for s in BANK.values() for p in s.phrases]
        model = getattr(self.embedder, "model_id", None)
        path = None
        if model:
            key = hashlib.sha1("\n".join([model, *phrases]).encode()).hexdigest()[:16]
            path = self.cache_dir / "foley-bank" / f"{key}.npy"
            if path.is_file():
                try:
                    vecs = np.load(path, allow_pickle=False)
                    if vecs.shape[0] == len(phrases):
                        return vecs
                except (OSError, ValueError):
                    pass
        vecs = np.asarray(self.embedder.encode(phrases), np.float32)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
                np.save(tmp, vecs)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only cache only costs time
        return vecs

    def _embed(self, captions: Sequence[str]) -> np.ndarray:
        return np.asarray(self.embedder.encode([matching_text(c) for c in captions]), np.float32)

    def _pick(self, scores: np.ndarray, ev: SubEvent) -> Candidate:
        """Best candidate; a bed nothing matches well gets neutral room tone rather than a confident-sounding guess."""
        j = int(np.argmax(scores))
        if _is_bed(ev) and scores[j] < BED_FALLBACK_SCORE and self._room_tone is not None:
            return self._room_tone
        return self._candidates[j]

    def _scores(self, caption_vecs: np.ndarray, events: Sequence[SubEvent]) -> np.ndarray:
        """(events, candidates): best cosine over each candidate's phrases + library bias + kind prior."""
        sims = caption_vecs @ self._vectors.T  # (E, rows)
        best = np.full((len(events), len(self._candidates)), -np.inf, np.float32)
        np.maximum.at(best.T, self._owner, sims.T)
        best += self._bias
        for i, ev in enumerate(events):
            pref = _preferred_kind(ev)
            if pref is not None:
                match = self._is_oneshot if pref == "oneshot" else ~self._is_oneshot
                prior = BED_PRIOR if _is_bed(ev) else KIND_PRIOR
                best[i] += np.where(match, prior, -prior)
        return best

    def choose(self, caption: str, *, layer: str = "fx", kind: str = "", duration: float = 1.0,
               top: int = 5) -> list[tuple[str, float]]:
        """The ``top`` candidates for a caption, best first, as (source, score): for inspection and debugging."""
        ev = SubEvent(caption=caption, start=0.0, duration=duration, layer=layer, kind=kind)
        scores = self._scores(self._embed([caption]), [ev])[0]
        order = np.argsort(-scores, kind="stable")[:top]
        return [(self._candidates[j].source, float(scores[j])) for j in order]

    # --- rendering ---------------------------------------------------------------------------------------------

    def render(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> list[Clip]:
        return list(self.render_iter(plan, conditioning, seed=seed))

    def render_iter(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> Iterator[Clip]:
        """The clips of ``render``, one at a time (a long plan's audio then never sits in memory all at once)."""
        events = list(plan.events)
        if not events:
            return
        for ev in events:
            if not np.isfinite(ev.render_duration) or ev.render_duration < 0:
                raise RenderError(f"event {ev.caption!r} has an invalid duration {ev.render_duration!r}; "
                                  "durations must be finite seconds >= 0")
        for i, (ev, cand) in enumerate(zip(events, self._choose_all(events))):
            n = event_samples(ev, self.sample_rate)
            audio = self._render_candidate(cand, n / self.sample_rate, event_seed(seed, i))
            audio = fit_length(audio, n).astype(np.float32, copy=False)
            yield Clip(audio=audio, sample_rate=self.sample_rate, event=ev, source=cand.source)

    def _choose_all(self, events: Sequence[SubEvent]) -> list[Candidate]:
        """The planner's ``sound`` where an event names one, else the best match for its caption."""
        free = [i for i, ev in enumerate(events) if ev.sound is None]
        scores = self._scores(self._embed([events[i].caption for i in free]), [events[i] for i in free]) if free else []
        picked = {i: self._pick(row, events[i]) for i, row in zip(free, scores)}
        return [picked[i] if i in picked else self._named(ev) for i, ev in enumerate(events)]

    def _named(self, ev: SubEvent) -> Candidate:
        sound = str(ev.sound)
        cand = self._by_sound.get(sound) or self._by_sound.get(str(Path(sound).expanduser().resolve()))
        if cand is None:
            raise RenderError(f"event {ev.caption!r} asks for sound {ev.sound!r}, which is neither a foley bank sound "
                              "nor a file in the sound libraries; name one of those, or leave the sound unset")
        return cand

    def _render_candidate(self, cand: Candidate, duration: float, seed: int) -> np.ndarray:
        if cand.sound is None:
            return synthesize(cand.source.split(":", 1)[1], duration, self.sample_rate, seed)
        return cand.library.render(cand.sound, duration, self.sample_rate, seed)


_LABEL_PREFIX = re.compile(r"^\s*(ambience|bed|fx|narrative)\s*:\s*", re.IGNORECASE)


def matching_text(caption: str) -> str:
    """The part of a caption that says what sounds: a leading layer label ("ambience: ...") names the layer, which
    the kind prior already weighs, and would otherwise pull every bed towards sounds described as "ambience"."""
    text = _LABEL_PREFIX.sub("", caption)
    return text.replace("(continued)", "").strip() or caption


def _is_bed(ev: SubEvent) -> bool:
    return ev.layer == "ambience" or ev.kind == "bed"


def _preferred_kind(ev: SubEvent) -> str | None:
    if ev.kind in ONSET_KINDS:
        return "oneshot"
    if _is_bed(ev) or (not ev.kind and ev.duration >= LONG_EVENT_SECONDS):
        return "texture"
    return None
