"""Stories → training sequences, deterministic batches and collation.

A sequence is exactly what the planner reads and writes at inference: the prompt (``tokens.build_prompt``, the
same lead-in choice), then the storyline reasoning, ``<|/think|>`` and one ``tokens.render_event`` block per
event, closed by ``<|im_end|>``. Stages 1 and 2 train on single events (each event of each story is its own
one-event sequence: its caption is the instruction, its length the duration); stage 3 on whole stories, every
event after the previous ones in one causal sequence.

LM labels cover the answer except the query slot tokens themselves (at inference the grammar forces those).
Batches are a pure function of (seed, step): a permutation per epoch, the global batch cut into equal slices,
one per process, and every event's noise drawn from its own generator seeded by (seed, epoch, sample, event) —
so two processes see exactly what one process with twice the batch sees, and a resumed run the same as an
uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..models import tokens as T
from .cache import LatentCache, audio_spans, caption_key
from .errors import DataError
from .manifest import EventSpec, Example, Manifest, storyline

IGNORE = -100


@dataclass
class EventItem:
    latent_key: str
    target_key: str | None
    seconds: float


@dataclass
class Sample:
    """One training sequence: token ids, LM labels, and per event the positions of its query tokens."""

    name: str
    input_ids: list[int]
    labels: list[int]
    semantic: list[list[int]]
    residual: list[list[int]]
    events: list[EventItem] = field(default_factory=list)


def sequence_text(description: str, duration: float, reasoning: str, events: Sequence[EventSpec],
                  n_semantic: int, n_residual: int) -> tuple[str, str]:
    """(prompt, answer) strings of one training sequence."""
    prompt = T.build_prompt(description, duration)
    blocks = "".join(T.render_event(e.caption, float(e.duration), n_semantic, n_residual) for e in events)
    return prompt, f"{reasoning}{T.THINK_CLOSE}{blocks}{T.IM_END}"


def _positions(ids: list[int], slots: Sequence[int], n_events: int, name: str) -> list[list[int]]:
    wanted = set(slots)
    found = [i for i, t in enumerate(ids) if t in wanted]
    if len(found) != n_events * len(slots):
        raise DataError(f"{name}: the tokenizer did not keep the {len(slots)} query tokens of each event intact "
                        f"({len(found)} found for {n_events} events); the caption may contain query token text")
    return [found[k * len(slots) : (k + 1) * len(slots)] for k in range(n_events)]


def tokenize(tokenizer: Any, ids: T.TokenIds, name: str, prompt: str, answer: str, n_events: int) -> Sample:
    """A ``Sample`` (events filled in by the caller) from prompt and answer text."""
    p = tokenizer.encode(prompt, add_special_tokens=False)
    a = tokenizer.encode(answer, add_special_tokens=False)
    queries = set(ids.semantic) | set(ids.residual)
    labels = [IGNORE] * len(p) + [IGNORE if t in queries else t for t in a]
    seq = p + a
    return Sample(name, seq, labels, _positions(seq, ids.semantic, n_events, name),
                  _positions(seq, ids.residual, n_events, name))


def _single(e: EventSpec) -> EventSpec:
    return EventSpec(caption=e.caption, start=0.0, end=float(e.duration))


def build_samples(
    manifest: Manifest, tokenizer: Any, ids: T.TokenIds, *, long_form: bool, max_tokens: int, max_event: float,
    with_targets: bool,
) -> list[Sample]:
    """Every training sequence of a stage: one per story (``long_form``) or one per event."""
    n_sem, n_res = len(ids.semantic), len(ids.residual)
    out = []
    for i, (ex, spans) in enumerate(zip(manifest.examples, audio_spans(manifest))):
        for j, e in enumerate(ex.events):
            if e.duration > max_event + 1e-3:
                raise DataError(f"{manifest.where(i)}: event {j} lasts {e.duration:.2f} s; the DiT renders at most "
                                f"{max_event:g} s per event: split it")
        items = [EventItem(s.key, caption_key(e.caption, n_sem) if with_targets else None, float(e.duration))
                 for e, s in zip(ex.events, spans)]
        for name, text, item_list in _sequences(ex, manifest.where(i), items, long_form, n_sem, n_res):
            sample = tokenize(tokenizer, ids, name, *text, n_events=len(item_list))
            if len(sample.input_ids) > max_tokens:
                raise DataError(f"{name}: {len(sample.input_ids)} tokens, over data.max_tokens {max_tokens}; split "
                                "the story or raise max_tokens")
            sample.events = item_list
            out.append(sample)
    return out


def _sequences(ex: Example, where: str, items: list[EventItem], long_form: bool, n_sem: int, n_res: int):
    if long_form:
        yield where, sequence_text(ex.prompt_text(), ex.duration, ex.storyline(), ex.events, n_sem, n_res), items
        return
    for j, (e, item) in enumerate(zip(ex.events, items)):
        one = _single(e)
        yield f"{where} event {j}", sequence_text(e.caption, one.duration, storyline([one]), [one], n_sem, n_res), [item]


# ----------------------------------------------------------------------------------------------- batches


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


class StepBatches:
    """The micro-batches of steps ``start``…``steps - 1`` for one process: lists of (epoch, sample) keys."""

    def __init__(self, n_samples: int, *, batch_size: int, processes: int, rank: int, grad_accum: int,
                 steps: int, seed: int, start: int = 0) -> None:
        self.n, self.batch, self.world, self.rank = n_samples, batch_size, processes, rank
        self.accum, self.steps, self.seed, self.start = grad_accum, steps, seed, start
        self.per_epoch = n_samples // (batch_size * processes)
        if self.per_epoch == 0:
            raise DataError(f"the data set has {n_samples} training sequences but one micro-batch takes "
                            f"{batch_size * processes} (batch_size {batch_size} × {processes} processes); "
                            "lower train.batch_size")

    def __len__(self) -> int:
        return max(0, self.steps - self.start) * self.accum

    def order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(_seed(self.seed, epoch)))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        orders: dict[int, torch.Tensor] = {}
        width = self.batch * self.world
        for q in range(self.start * self.accum, self.steps * self.accum):
            epoch, b = divmod(q, self.per_epoch)
            if epoch not in orders:
                orders = {epoch: self.order(epoch)}
            chunk = orders[epoch][b * width : (b + 1) * width][self.rank * self.batch : (self.rank + 1) * self.batch]
            yield [(epoch, int(i)) for i in chunk]


class StoryDataset(torch.utils.data.Dataset):
    """(epoch, index) → one sample with its events' latents, noise, noise level and T5 targets."""

    def __init__(self, samples: list[Sample], cache: LatentCache, *, seed: int, sample_latents: bool) -> None:
        self.samples, self.cache, self.seed, self.sample_latents = samples, cache, seed, sample_latents

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, i = key
        s = self.samples[i]
        events = []
        for j, e in enumerate(s.events):
            g = torch.Generator().manual_seed(_seed(self.seed, epoch, i, j, 1))
            mean, std = self.cache.latents(e.latent_key)
            eps = torch.randn(mean.shape, generator=g)
            latents = mean + std * eps if self.sample_latents else mean
            noise = torch.randn(mean.shape, generator=g)
            sigma = torch.sigmoid(torch.randn((), generator=g))  # logit-normal noise level, as TangoFlux trains
            target = self.cache.target(e.target_key) if e.target_key else None
            events.append({"latents": latents, "noise": noise, "sigma": sigma, "seconds": e.seconds, "target": target})
        return {"sample": s, "events": events}


def collate(items: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded token batch + all events of the batch, padded to the longest latent, with masks."""
    width = max(len(it["sample"].input_ids) for it in items)
    b = len(items)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)
    labels = torch.full((b, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    sem, res, owner, events = [], [], [], []
    for row, it in enumerate(items):
        s = it["sample"]
        n = len(s.input_ids)
        input_ids[row, :n], labels[row, :n], mask[row, :n] = torch.tensor(s.input_ids), torch.tensor(s.labels), 1
        sem += [[row * width + p for p in pos] for pos in s.semantic]
        res += [[row * width + p for p in pos] for pos in s.residual]
        owner += [row] * len(s.events)
        events += it["events"]
    frames = max(e["latents"].shape[0] for e in events)
    channels = events[0]["latents"].shape[1]
    latents, noise = torch.zeros(len(events), frames, channels), torch.zeros(len(events), frames, channels)
    frame_mask = torch.zeros(len(events), frames, dtype=torch.bool)
    for k, e in enumerate(events):
        n = e["latents"].shape[0]
        latents[k, :n], noise[k, :n], frame_mask[k, :n] = e["latents"], e["noise"], True
    batch = {
        "input_ids": input_ids, "attention_mask": mask, "labels": labels,
        "semantic_index": torch.tensor(sem, dtype=torch.long), "residual_index": torch.tensor(res, dtype=torch.long),
        "event_sample": torch.tensor(owner, dtype=torch.long), "latents": latents, "noise": noise,
        "frame_mask": frame_mask, "sigma": torch.stack([e["sigma"] for e in events]),
        "seconds": torch.tensor([e["seconds"] for e in events], dtype=torch.float32),
    }
    if all(e["target"] is not None for e in events):
        batch["targets"] = torch.stack([e["target"] for e in events])
    return batch
