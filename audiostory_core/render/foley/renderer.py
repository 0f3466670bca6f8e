"""The offline foley renderer: each event's caption is matched by meaning (sentence embeddings, cosine) against
real recordings — the installed free sound sources and the user's folders — and the procedural bank, and the
chosen sound is rendered to the event's exact length.

Recordings win wherever one fits (:data:`RECORDING_BONUS`); the bank is the fallback where none does (a caption
no clip matches well, or one the licence filter rules out). The event's role shapes both choice and treatment:

- a *bed* (ambience layer, kind "bed") prefers steady textures that loop well, and is excerpted or looped with
  crossfades; one nothing matches well gets neutral room tone;
- a *spot* (impact/slam/flash/whoosh/hit) prefers oneshots, trimmed to their onset so the sound starts on the
  event's cue frame;
- a long event of a repeated action ("a dog barking", "footsteps") repeats its oneshot with seeded gaps.

A seed picks among equally good recordings, and an event does not repeat the clip the previous event on its layer
used when another fits as well. Each clip carries the credits (source, licence, attribution) of every recording in
it. Only the small MiniLM text encoder is needed, and only for texts not seen before: index vectors and caption
vectors are cached on disk, so a run whose captions are all known never loads it.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ...cache import cache_dir as cache_folder
from ...audio import fit_length
from ...errors import RenderError
from ...plan.types import Plan, SubEvent
from ...plan.types import ONSET_KINDS
from ..base import Clip, Renderer, event_samples, event_seed
from .bank import BANK, synthesize
from .formats import allowed_classes
from .library import LibrarySound, SoundLibrary
from . import sources as _sources

T = TypeVar("T")
# Threads rendering events side by side (each event has its own seed: the same clips, in the same order); two at
# most: the score renders beside them, and the mix's consumer places their clips.
WORKERS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
LONG_EVENT_SECONDS = 4.0  # kind-less events at least this long lean towards beds
KIND_PRIOR = 0.06  # cosine bonus for a candidate of the preferred kind (and malus for the other)
BED_PRIOR = 0.15  # ambience beds lean harder: a oneshot bed leaves the scene silent after its first second
BED_LOOP_WEIGHT = 0.06  # beds also prefer recordings that are steady and loop seamlessly
BED_FALLBACK_SCORE = 0.55  # a bed whose best match scores below this (prior included) gets room tone
RECORDING_BONUS = 0.15  # a real recording beats a synthesised sound it matches about as well
MIN_RECORDING_SCORE = 0.45  # below this cosine a recording is not "about" the caption, whatever the bonus
USER_LIBRARY_BONUS = 0.02  # the user's own recordings win ties against installed ones
LOFI_MALUS = 0.08  # recordings under 16 kHz (8-bit game sounds) lose ties
CARTOON_MALUS = 0.08  # cartoon sounds (OpenSFX's "Toyland") only where the caption asks for something comic
_COMIC = re.compile(r"\b(cartoon\w*|comic\w*|comedy|funny|toy\w*|silly|goofy|slapstick|playful)\b", re.IGNORECASE)
SHORT_LOOP_MALUS = 0.15  # a texture much shorter than its event repeats audibly: at most this much, when 8x shorter
VARIATION_MARGIN = 0.03  # recordings within this of the best are equally good: the seed picks among them
REPEAT_GAP = (0.25, 0.9)  # seconds of silence between repeats of a oneshot in a long event (seeded)
REGULAR_PERIOD = 0.5  # seconds between the strokes of a clock (tick, tock)
# Sounds made of repeated strokes: a caption with one of these in the plural or progressive ("barking", "knocks",
# "footsteps") repeats its oneshot over a long event; "a gunshot" or "a door slams" plays once.
_ITERATIVE = re.compile(
    r"\b(?:bark|knock|tick|honk|clap|drip|chirp|tweet|hammer|ring|typ|beep|quack|meow|mew|moo|oink|bleat|cluck|"
    r"caw|hoot|croak|neigh|whinn|crow|tap|bang|chop|bounc|peck|snap|click|clink|clank|gunshot|shot|ding|buzz|"
    r"splash|foot ?step|step|stomp|thud|woof|growl|squeak|creak|rattl|whistl|blip)(?:s|es|ed|ing|ping|ming)\b",
    re.IGNORECASE)
HEAD_WORD_WEIGHT = 0.1  # bonus for a recording whose description uses the caption's own words ("slams" → "slamming")
FILL_SHARE = 0.9  # a oneshot shorter than this share of a long event without a cue is repeated to fill it
_STOP = frozenset("a an the of on in at to into onto over from with and or by for its it is are someone something "
                  "some very loud soft quiet distant close far away up down out off".split())
_ONGOING = re.compile(r"\b[a-z]{3,}ing\b", re.IGNORECASE)  # "wind blowing": a state that lasts, not one event
_REGULAR = re.compile(r"\b(?:tick|tock|metronome|clock)", re.IGNORECASE)  # strokes that keep time


@dataclass(frozen=True)
class Candidate:
    """Something the renderer can play: a bank sound or a library clip."""

    source: str  # "synth:<name>" or "library:<path>"
    kind: str  # "oneshot" | "texture"
    bias: float
    sound: LibrarySound | None = None
    library: SoundLibrary | None = None


class FoleyRenderer(Renderer):
    """Renderer seam implementation: ``render(plan, conditioning=None, *, seed=0) -> list[Clip]``.

    ``library_dirs``: folders of the user's sound files (indexed and cached, see ``library.py``).
    ``use_system_samples``: also use the installed sound library (``<cache>/library``: the sources set-up or
    ``dubkit library add`` extracted, and folders added with ``dubkit library add DIR``); default sources whose
    Debian package is installed on this machine are extracted into it on first use. ``licence``: ``cc0`` | ``by``
    (default: CC0 and attribution-only) | ``any`` (copyleft too: the result then inherits e.g. CC-BY-SA).
    ``conditioning`` is ignored: this renderer conditions on captions, except that an event whose ``sound``
    names a bank sound or library file (the planner's choice) plays exactly that. ``workers``: threads that
    render events side by side (1: one after another; the clips are the same either way).
    """

    name = "foley"
    max_duration = None  # synthesis and libraries render any length

    def __init__(self, library_dirs: Sequence[str | os.PathLike] = (), *, sample_rate: int = 48000,
                 use_system_samples: bool = True, embedder: Any = None,
                 cache_dir: str | os.PathLike | None = None, licence: str = "by", workers: int = WORKERS) -> None:
        if int(sample_rate) < 8000:
            raise RenderError(f"foley sample rate {sample_rate} is too low; use 8000 Hz or more (48000 default)")
        self.sample_rate = int(sample_rate)
        self.workers = max(1, int(workers))
        self.licence = str(licence).strip().lower()
        self._allowed = allowed_classes(self.licence)
        if embedder is None:
            from ...embeddings import LazyTextEmbedder

            embedder = LazyTextEmbedder()
        self.embedder = embedder
        self.cache_dir = cache_folder(root=cache_dir)
        self.libraries: list[SoundLibrary] = []
        self.notes: list[str] = []
        user = [os.fspath(d) for d in library_dirs]
        if use_system_samples:
            self.notes += _extract_system_sources(self.cache_dir)
            config = _sources.read_config(self.cache_dir)
            user += [f for f in config["folders"] if os.path.isdir(f) and f not in user]
        if user:
            self.libraries.append(SoundLibrary(user, embedder, cache_dir=cache_dir, label="library"))
        if use_system_samples:
            installed = _sources.installed_dirs(self.cache_dir)
            if installed:
                self.libraries.append(SoundLibrary(installed, embedder, cache_dir=cache_dir, label="installed"))
        for lib in self.libraries:
            self.notes += lib.notes
        self._captions = _CaptionCache(self.cache_dir, embedder)
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
            base = len(cands)
            for s in lib.sounds:
                bias = RECORDING_BONUS + (USER_LIBRARY_BONUS if lib.label == "library" else 0.0)
                if s.lofi or 0 < s.sample_rate < 16000:
                    bias -= LOFI_MALUS
                cands.append(Candidate(f"library:{s.path}", s.kind, bias, s, lib))
            owner += [base + i for i in range(len(lib.sounds))]
            rows.append(lib.vectors)
            owner += [base + int(i) for i in lib.alias_owner]
            rows.append(lib.alias_vectors)
        self._candidates = cands
        self._by_sound: dict[str, int] = {}  # bank name or library path → candidate index, for SubEvent.sound
        for k, c in enumerate(cands):
            self._by_sound.setdefault(c.source.split(":", 1)[1], k)
        self._room_tone = next((k for k, c in enumerate(cands) if c.source == "synth:room_tone"), None)
        self._vectors = np.ascontiguousarray(np.concatenate(rows).astype(np.float32))
        self._owner = np.asarray(owner, dtype=int)
        self._bias = np.array([c.bias for c in cands], np.float32)
        self._is_oneshot = np.array([c.kind == "oneshot" for c in cands])
        self._is_recording = np.array([c.sound is not None for c in cands])
        self._usable = np.array([c.sound is None or c.sound.licence_class in self._allowed for c in cands])
        self._loopable = np.array([c.sound.loopable if c.sound is not None else 0.0 for c in cands], np.float32)
        self._cartoon = np.array([c.sound is not None and "cartoon" in c.sound.categories for c in cands])
        self._stems = [_stems(c.sound.text) if c.sound is not None
                       else _stems(" ".join(BANK[c.source.split(":", 1)[1]].phrases)) for c in cands]
        self._texture_seconds = np.array([c.sound.duration - c.sound.onset if c.sound is not None
                                          and c.kind == "texture" and c.sound.loop != "exact" else np.inf
                                          for c in cands])

    def _word_overlap(self, caption: str) -> np.ndarray:
        """Per candidate, the share of the caption's content words (by stem) that its description uses: embeddings
        blur "door close" and "door slamming shut"; the caption's own words tell them apart."""
        words = _stems(matching_text(caption))
        if not words:
            return np.zeros(len(self._candidates), np.float32)
        return np.array([len(words & stems) / len(words) for stems in self._stems], np.float32)

    @property
    def recordings(self) -> list[LibrarySound]:
        """Every indexed recording the licence filter admits."""
        return [c.sound for c, ok in zip(self._candidates, self._usable) if c.sound is not None and ok]

    @property
    def playable(self) -> list[tuple[LibrarySound, SoundLibrary]]:
        """Every recording the licence filter admits, with the library that plays it (for other planners)."""
        return [(c.sound, c.library) for c, ok in zip(self._candidates, self._usable)
                if ok and c.sound is not None and c.library is not None]

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
                tmp = path.with_name(path.stem + f".{os.getpid()}-{threading.get_ident()}.tmp.npy")
                np.save(tmp, vecs)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only cache only costs time
        return vecs

    def _embed(self, captions: Sequence[str]) -> np.ndarray:
        return self._captions.encode([matching_text(c) for c in captions])

    def _pick(self, scores: np.ndarray, ev: SubEvent) -> int:
        """Index of the best candidate; a bed nothing matches well gets neutral room tone rather than a
        confident-sounding guess."""
        j = int(np.argmax(scores))
        if _is_bed(ev) and scores[j] < BED_FALLBACK_SCORE and self._room_tone is not None:
            return self._room_tone
        return j

    def _scores(self, caption_vecs: np.ndarray, events: Sequence[SubEvent]) -> np.ndarray:
        """(events, candidates): best cosine over each candidate's rows + source bias + role priors; candidates the
        licence filter excludes, and recordings that are not about the caption, score -inf."""
        sims = caption_vecs @ self._vectors.T  # (E, rows)
        best = np.full((len(events), len(self._candidates)), -np.inf, np.float32)
        np.maximum.at(best.T, self._owner, sims.T)
        weak = self._is_recording & (best < MIN_RECORDING_SCORE)
        best += self._bias
        for i, ev in enumerate(events):
            pref = _preferred_kind(ev)
            if pref is not None:
                match = self._is_oneshot if pref == "oneshot" else ~self._is_oneshot
                prior = BED_PRIOR if _is_bed(ev) else KIND_PRIOR
                best[i] += np.where(match, prior, -prior)
            if _is_bed(ev):
                best[i] += BED_LOOP_WEIGHT * self._loopable
            if not _COMIC.search(ev.caption):
                best[i] -= CARTOON_MALUS * self._cartoon
            ratio = np.maximum(ev.render_duration / np.maximum(self._texture_seconds, 1e-3), 1.0)
            best[i] -= SHORT_LOOP_MALUS * np.minimum(np.log2(ratio) / 3.0, 1.0)
        for i, ev in enumerate(events):
            best[i] += HEAD_WORD_WEIGHT * self._word_overlap(ev.caption)
        best[weak] = -np.inf
        best[:, ~self._usable] = -np.inf
        return best

    def choose(self, caption: str, *, layer: str = "fx", kind: str = "", duration: float = 1.0,
               top: int = 5) -> list[tuple[str, float]]:
        """The ``top`` candidates for a caption, best first, as (source, score): for inspection and debugging."""
        ev = SubEvent(caption=caption, start=0.0, duration=duration, layer=layer, kind=kind)
        scores = self._scores(self._embed([caption]), [ev])[0]
        order = [j for j in np.argsort(-scores, kind="stable") if np.isfinite(scores[j])][:top]
        return [(self._candidates[j].source, float(scores[j])) for j in order]

    def search(self, query: str, *, top: int = 10, layer: str = "fx", kind: str = "",
               duration: float = 1.0) -> list[tuple[LibrarySound, float]]:
        """The recordings that best fit ``query`` (licence filter applied), best first: what an editor auditions
        to swap a clip."""
        ev = SubEvent(caption=query, start=0.0, duration=duration, layer=layer, kind=kind)
        scores = self._scores(self._embed([query]), [ev])[0]
        scores = np.where(self._is_recording, scores, -np.inf)
        order = [j for j in np.argsort(-scores, kind="stable") if np.isfinite(scores[j])][:top]
        return [(self._candidates[j].sound, float(scores[j])) for j in order]

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
        chosen = self._choose_all(events, seed)
        jobs = (functools.partial(self._render_event, ev, *chosen[i], event_seed(seed, i))
                for i, ev in enumerate(events))
        yield from in_order(jobs, self.workers)

    def _render_event(self, ev: SubEvent, cand: Candidate, pool: list[int], seed: int) -> Clip:
        """One event's clip: a pure function of its arguments (its own seed), so events can render side by side."""
        n = event_samples(ev, self.sample_rate)
        used: list[Candidate] = [cand]
        if cand.sound is not None and cand.kind == "oneshot" and (_continuing(ev, cand.sound)
                                                                  or _fills(ev, cand.sound)):
            audio, used = self._repeat(cand, pool, n, seed, ev.caption)
        else:
            audio = self._render_candidate(cand, n / self.sample_rate, seed, from_start=not _is_bed(ev))
        audio = fit_length(audio, n).astype(np.float32, copy=False)
        credits = []
        for c in used:
            if c.sound is not None and c.sound.credit() not in credits:
                credits.append(c.sound.credit())
        return Clip(audio=audio, sample_rate=self.sample_rate, event=ev, source=cand.source, credits=credits)

    def _choose_all(self, events: Sequence[SubEvent], seed: int) -> dict[int, tuple[Candidate, list[int]]]:
        """Per event, the planner's ``sound`` where it names one, else a seeded pick among the best matches for
        its caption that avoids repeating the previous clip of its layer; with the pool of equal alternatives."""
        free = [i for i, ev in enumerate(events) if ev.sound is None]
        rows = self._scores(self._embed([events[i].caption for i in free]), [events[i] for i in free]) if free else []
        scores = dict(zip(free, rows))
        previous: dict[str, int] = {}  # layer -> candidate index of the previous event (in time order)
        chosen: dict[int, tuple[Candidate, list[int]]] = {}
        for i in sorted(range(len(events)), key=lambda k: (events[k].layer, events[k].start)):
            ev = events[i]
            if i not in scores:
                j = self._named(ev)
                pool = [j]
            else:
                best = self._pick(scores[i], ev)
                pool = [best] if self._candidates[best].sound is None else self._pool(scores[i], best)
                j = _vary(pool, previous.get(ev.layer), np.random.default_rng(event_seed(seed, i)))
            previous[ev.layer] = j
            chosen[i] = (self._candidates[j], pool)
        return chosen

    def _named(self, ev: SubEvent) -> int:
        sound = str(ev.sound)
        k = self._by_sound.get(sound)
        if k is None:
            k = self._by_sound.get(str(Path(sound).expanduser().resolve()))
        if k is None:
            raise RenderError(f"event {ev.caption!r} asks for sound {ev.sound!r}, which is neither a foley bank sound "
                              "nor a file in the sound libraries; name one of those, or leave the sound unset")
        return k

    def _pool(self, scores: np.ndarray, best: int) -> list[int]:
        """Recordings of the same kind scoring within :data:`VARIATION_MARGIN` of candidate ``best``, best first."""
        top = float(scores[best])
        idx = np.nonzero(self._is_recording & (scores >= top - VARIATION_MARGIN) & np.isfinite(scores))[0]
        idx = [int(k) for k in idx if self._candidates[k].kind == self._candidates[best].kind]
        return sorted(idx, key=lambda k: -scores[k]) or [best]

    def _repeat(self, cand: Candidate, pool: list[int], n: int, seed: int, caption: str = ""
                ) -> tuple[np.ndarray, list[Candidate]]:
        """A repeated action: the oneshot (and its equally good alternatives, in turn) placed again and again with
        seeded gaps — a clock keeps a steady beat — the first on the event's start."""
        sr = self.sample_rate
        rng = np.random.default_rng(seed)
        out = np.zeros((2, n), np.float64)
        order = [cand] + [self._candidates[k] for k in pool if self._candidates[k] is not cand]
        used: list[Candidate] = []
        regular = bool(_REGULAR.search(caption)) and _active_seconds(cand.sound) < REGULAR_PERIOD
        pos, turn = 0, 0
        while pos < n:
            c = order[turn % len(order)]
            active = _active_seconds(c.sound)
            hit = c.library.render(c.sound, min(active, (n - pos) / sr), sr, seed + turn, from_start=True)
            hit *= 10 ** (rng.uniform(-2.0, 0.0) / 20) if turn else 1.0  # a little level variation, first at full
            out[:, pos:pos + hit.shape[-1]] += hit[:, :n - pos]
            if c not in used:
                used.append(c)
            if regular:
                pos += int(round(REGULAR_PERIOD * sr))
            else:
                pos += hit.shape[-1] + int(rng.uniform(*REPEAT_GAP) * sr)
            turn += 1
        return out.astype(np.float32), used

    def _render_candidate(self, cand: Candidate, duration: float, seed: int, *, from_start: bool = False
                          ) -> np.ndarray:
        if cand.sound is None:
            return synthesize(cand.source.split(":", 1)[1], duration, self.sample_rate, seed)
        return cand.library.render(cand.sound, duration, self.sample_rate, seed, from_start=from_start)


class _CaptionCache:
    """Caption → vector, kept on disk per model (``<cache>/foley-captions``), so repeated captions need no model."""

    MAX = 50_000

    def __init__(self, cache: os.PathLike, embedder) -> None:
        self.embedder = embedder
        model = getattr(embedder, "model_id", None)
        self.path = (None if not model else
                     cache_folder(root=cache) / "foley-captions" / f"{hashlib.sha1(model.encode()).hexdigest()[:16]}.npz")
        self._vecs: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._vecs is None:
            self._vecs = {}
            if self.path is not None and self.path.is_file():
                try:
                    with np.load(self.path, allow_pickle=False) as z:
                        self._vecs = dict(zip((str(t) for t in z["texts"]), z["vectors"]))
                except (OSError, ValueError, KeyError, EOFError):
                    self._vecs = {}  # a broken cache only costs time
        return self._vecs

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vecs = self._load()
        new = sorted({t for t in texts if t not in vecs})
        if new:
            for t, v in zip(new, np.asarray(self.embedder.encode(new), np.float32)):
                vecs[t] = v
            self._save()
        if not texts:
            return np.zeros((0, getattr(self.embedder, "dim", 384)), np.float32)
        return np.stack([vecs[t] for t in texts]).astype(np.float32)

    def _save(self) -> None:
        if self.path is None or not self._vecs:
            return
        items = list(self._vecs.items())[-self.MAX:]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.stem + f".{os.getpid()}.tmp.npz")
            np.savez(tmp, texts=np.array([t for t, _ in items]), vectors=np.stack([v for _, v in items]))
            os.replace(tmp, self.path)
        except OSError:
            pass


def _extract_system_sources(cache) -> list[str]:
    """Extract default sources whose packages are installed on this machine but not yet in the library (no
    download); returns what it did or why it could not."""
    notes = []
    config = _sources.read_config(cache)
    for src in _sources.SOURCES.values():
        if (not src.default or src.kind != "deb" or src.name in config["removed"]
                or (_sources.sources_dir(cache) / src.name / _sources.MANIFEST).is_file()
                or not _sources._installed_deb(src)):
            continue
        status = _sources.install(src, cache, fetch=False)
        notes.append(status.message)
    return notes


def in_order(jobs: Iterable[Callable[[], T]], workers: int = WORKERS, ahead: int = 1) -> Iterator[T]:
    """Each job's result, in the jobs' order, the jobs run on ``workers`` threads (numpy, scipy's filters and
    FFTs let go of the GIL while they work). At most ``workers + ahead`` jobs are running or done and not yet
    taken, so memory stays bounded; an error is raised here, in its job's place; when the consumer stops
    early, jobs not started are dropped and running ones waited for, so no thread outlives the generator."""
    if workers <= 1:
        for job in jobs:
            yield job()
        return
    pending: collections.deque[Future] = collections.deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="foley")
    try:
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) >= workers + ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


def _vary(pool: list[int], previous: int | None, rng: np.random.Generator) -> int:
    """A seeded pick among equally good candidates, avoiding the previous event's clip when there is a choice."""
    options = [k for k in pool if k != previous] or pool
    return int(options[int(rng.integers(len(options)))])


def _active_seconds(sound: LibrarySound) -> float:
    return max(0.05, sound.duration - sound.onset)


def _continuing(ev: SubEvent, sound: LibrarySound) -> bool:
    """An action that goes on ("barking", "footsteps") in an event at least 1.5 times as long as the clip."""
    if ev.kind in ONSET_KINDS or _is_bed(ev) or not _ITERATIVE.search(ev.caption):
        return False
    return ev.render_duration >= 1.5 * _active_seconds(sound)


def _fills(ev: SubEvent, sound: LibrarySound) -> bool:
    """A long event with no cue that says something goes on ("wind blowing" for 5 s) that a short oneshot recording would leave mostly silent:
    the recording repeats to fill it. A cued spot (a slam, an impact) still plays once, on its frame."""
    if ev.kind in ONSET_KINDS or _is_bed(ev) or _preferred_kind(ev) != "texture" or not _ONGOING.search(ev.caption):
        return False
    return _active_seconds(sound) < FILL_SHARE * ev.render_duration


def _stems(text: str) -> frozenset[str]:
    """Content words cut to a crude stem ("slams", "slamming" → "slam"), for :data:`HEAD_WORD_WEIGHT`."""
    out = set()
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in _STOP or len(w) < 3:
            continue
        w = re.sub(r"(?:ing|ed|es|s)$", "", w) if len(w) > 4 else w
        w = re.sub(r"(.)\1$", r"\1", w)  # slamm → slam
        out.add(w)
    return frozenset(out)


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
