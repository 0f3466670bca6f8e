"""The AudioStory LLM planner: reasoning, timed captions and per-event DiT conditions from one generation.

The LLM writes ``<|think|>`` reasoning ``<|/think|>`` and then, per event,
``<|gen|>`` caption ``<timestamp>``seconds``</timestamp>`` ``<t5>`` N semantic queries ``</t5>``
``<aud>`` M residual queries ``</aud>``. Greedy decoding is constrained by a small grammar (``EventGrammar``) so
that whatever the weights, the output always parses: query runs are forced in order once opened, timestamps are
numbers, reasoning and captions are capped, and the budget always leaves room to close the last event. The
hidden states at the query positions (one extra forward pass over the whole sequence) become the conditions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import Enum, auto
from typing import TYPE_CHECKING, Any, Sequence

import torch

from ..errors import PlanError
from ..models import tokens as T
from ..request import Scene, StoryRequest
from .base import Planner
from .reconcile import CONTINUED, fit_to_scenes, reconcile_sequence, span
from .types import Plan, SubEvent

if TYPE_CHECKING:
    from ..models.audiostory import AudioStoryModel

DEFAULT_DESCRIPTION = "the sounds that naturally continue this audio"
_TS_PATTERN = re.compile(r"\d{1,3}(\.\d{0,2})?")  # prefixes allowed inside <timestamp>
_TS_MAX_CHARS = 6


class State(Enum):
    REASONING = auto()
    BETWEEN = auto()  # after <|/think|> or <|/gen|>: another event or the end
    CAPTION = auto()
    TIMESTAMP = auto()
    OPEN_SEMANTIC = auto()
    SEMANTIC = auto()
    OPEN_RESIDUAL = auto()
    RESIDUAL = auto()
    AFTER_EVENT = auto()  # after </aud>: <|/gen|>, another event or the end
    DONE = auto()


@dataclass
class EventTrace:
    """Where one event's parts sit in the generated sequence (indices into the generated tokens)."""

    caption_ids: list[int] = field(default_factory=list)
    timestamp: str = ""
    semantic_positions: list[int] = field(default_factory=list)
    residual_positions: list[int] = field(default_factory=list)


@dataclass
class Trace:
    """The grammar's reading of a generated sequence."""

    reasoning_ids: list[int] = field(default_factory=list)
    events: list[EventTrace] = field(default_factory=list)
    state: State = State.REASONING
    run_index: int = 0  # next query slot inside a <t5>/<aud> run
    caption_visible: bool = False
    length: int = 0  # generated tokens read so far


class EventGrammar:
    """The interleaved output format as a token-level state machine; also a ``transformers`` logits processor.

    ``feed`` advances a ``Trace`` by one generated token; ``allowed`` says which tokens may come next given the
    trace and the remaining budget. As a logits processor it masks everything else to -inf.
    """

    def __init__(
        self,
        tokenizer,
        ids: T.TokenIds,
        vocab_size: int,
        *,
        max_new_tokens: int,
        max_events: int,
        max_reasoning_tokens: int,
        max_caption_tokens: int,
    ) -> None:
        self.ids = ids
        self.n_semantic, self.n_residual = len(ids.semantic), len(ids.residual)
        self.max_new_tokens = int(max_new_tokens)
        self.max_events = max(1, int(max_events))
        self.max_caption = max(1, int(max_caption_tokens))
        # Worst-case cost of one event: <|gen|> caption <timestamp> digits </timestamp> <t5> N </t5> <aud> M </aud>
        # <|/gen|>, plus the final end-of-turn token.
        self.event_cost = self.max_caption + _TS_MAX_CHARS + self.n_semantic + self.n_residual + 9
        self.max_reasoning = min(int(max_reasoning_tokens), self.max_new_tokens - self.event_cost - 2)
        if self.max_reasoning < 0:
            raise PlanError(
                f"max_new_tokens={max_new_tokens} is too small for even one event "
                f"(needs at least {self.event_cost + 2}); raise it"
            )
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        special = set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)
        self.vocab_size = int(vocab_size)
        self.free = torch.zeros(self.vocab_size, dtype=torch.bool)  # ordinary text tokens
        self.visible = torch.zeros(self.vocab_size, dtype=torch.bool)  # ... with a non-space character
        self.text: dict[int, str] = {}
        self.number_tokens: list[tuple[int, str]] = []  # tokens made only of digits and '.'
        for i, s in enumerate(texts[: self.vocab_size]):
            if i in special or not s or "\ufffd" in s or "<" in s or ">" in s:
                continue
            self.free[i] = True
            self.visible[i] = bool(s.strip())
            self.text[i] = s
            if all(c.isdigit() or c == "." for c in s):
                self.number_tokens.append((i, s))
        if not self.visible.any() or not any(s.isdigit() for _, s in self.number_tokens):
            raise PlanError("the tokenizer has no plain text or digit tokens; it cannot write a plan")
        # Fixed masks, built once (moved to the logits' device on first use).
        self.reasoning_mask = self.free.clone()
        self.reasoning_mask[ids.think_close] = True
        self.caption_mask = self.free.clone()
        self.caption_mask[ids.ts_open] = True
        self._on_device: dict[tuple[int, torch.device], torch.Tensor] = {}
        self._traces: list[Trace] = []
        self._offset = 0

    # ----------------------------------------------------------------------------------------- state machine

    def feed(self, trace: Trace, token: int) -> None:
        """Advance ``trace`` by one generated token (tokens the grammar would not allow are read leniently)."""
        ids, pos = self.ids, trace.length
        trace.length += 1
        st = trace.state
        if st is State.REASONING:
            if token == ids.think_close:
                trace.state = State.BETWEEN
            elif token == ids.gen_open:  # reasoning left unclosed: read the event anyway
                self._open_event(trace)
            else:
                trace.reasoning_ids.append(token)
        elif st is State.BETWEEN:
            if token == ids.gen_open:
                self._open_event(trace)
            elif token == ids.eos:
                trace.state = State.DONE
        elif st is State.CAPTION:
            if token == ids.ts_open:
                trace.state = State.TIMESTAMP
            elif token == ids.sem_open:
                trace.state, trace.run_index = State.SEMANTIC, 0
            else:
                trace.events[-1].caption_ids.append(token)
                trace.caption_visible |= bool(self.text.get(token, "").strip())
        elif st is State.TIMESTAMP:
            if token == ids.ts_close:
                trace.state = State.OPEN_SEMANTIC
            else:
                trace.events[-1].timestamp += self.text.get(token, "")
        elif st is State.OPEN_SEMANTIC:
            if token == ids.sem_open:
                trace.state, trace.run_index = State.SEMANTIC, 0
        elif st is State.SEMANTIC:
            if trace.run_index < self.n_semantic and token == ids.semantic[trace.run_index]:
                trace.events[-1].semantic_positions.append(pos)
                trace.run_index += 1
            elif token == ids.sem_close:
                trace.state = State.OPEN_RESIDUAL
        elif st is State.OPEN_RESIDUAL:
            if token == ids.res_open:
                trace.state, trace.run_index = State.RESIDUAL, 0
        elif st is State.RESIDUAL:
            if trace.run_index < self.n_residual and token == ids.residual[trace.run_index]:
                trace.events[-1].residual_positions.append(pos)
                trace.run_index += 1
            elif token == ids.res_close:
                trace.state = State.AFTER_EVENT
        elif st is State.AFTER_EVENT:
            if token == ids.gen_open:
                self._open_event(trace)
            elif token == ids.gen_close:
                trace.state = State.BETWEEN
        if token == ids.eos:
            trace.state = State.DONE

    def _open_event(self, trace: Trace) -> None:
        trace.events.append(EventTrace())
        trace.state, trace.caption_visible = State.CAPTION, False

    def allowed(self, trace: Trace) -> torch.Tensor | list[int]:
        """Token ids allowed next: a boolean mask over the vocabulary, or a short list of ids."""
        ids, st = self.ids, trace.state
        remaining = self.max_new_tokens - trace.length
        if st is State.REASONING:
            if len(trace.reasoning_ids) >= self.max_reasoning:
                return [ids.think_close]
            return self.reasoning_mask
        if st in (State.BETWEEN, State.AFTER_EVENT):
            room = remaining >= self.event_cost + 1
            if not any(self.complete(e) for e in trace.events) and room:
                return [ids.gen_open]
            if len(trace.events) >= self.max_events or not room:
                return [ids.eos]
            return [ids.gen_open, ids.eos] + ([ids.gen_close] if st is State.AFTER_EVENT else [])
        if st is State.CAPTION:
            n = len(trace.events[-1].caption_ids)
            if not trace.caption_visible:
                return self.visible
            if n >= self.max_caption:
                return [ids.ts_open]
            return self.caption_mask
        if st is State.TIMESTAMP:
            so_far = trace.events[-1].timestamp
            nxt = [i for i, s in self.number_tokens if _TS_PATTERN.fullmatch(so_far + s)] if len(so_far) < 6 else []
            if so_far and _positive(so_far):
                nxt.append(ids.ts_close)
            return nxt or [ids.ts_close]
        if st is State.OPEN_SEMANTIC:
            return [ids.sem_open]
        if st is State.SEMANTIC:
            return [ids.semantic[trace.run_index]] if trace.run_index < self.n_semantic else [ids.sem_close]
        if st is State.OPEN_RESIDUAL:
            return [ids.res_open]
        if st is State.RESIDUAL:
            return [ids.residual[trace.run_index]] if trace.run_index < self.n_residual else [ids.res_close]
        return [ids.eos]

    def complete(self, e: EventTrace) -> bool:
        """Whether the event carries both full query runs."""
        return len(e.semantic_positions) == self.n_semantic and len(e.residual_positions) == self.n_residual

    def read(self, generated: Sequence[int]) -> Trace:
        """The trace of a whole generated sequence."""
        trace = Trace()
        for tok in generated:
            self.feed(trace, int(tok))
        return trace

    # ----------------------------------------------------------------------------------- logits processor

    def reset(self, batch: int, prompt_length: int) -> None:
        self._traces = [Trace() for _ in range(batch)]
        self._offset = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = torch.full_like(scores, float("-inf"))
        for row, trace in enumerate(self._traces):
            for tok in input_ids[row, self._offset + trace.length :].tolist():
                self.feed(trace, tok)
            allow = self.allowed(trace)
            if isinstance(allow, torch.Tensor):
                key = (id(allow), scores.device)
                if key not in self._on_device:
                    self._on_device[key] = allow.to(scores.device)
                keep = self._on_device[key]
                out[row] = torch.where(keep, scores[row], out[row])
            else:
                out[row, allow] = scores[row, allow]
                if len(allow) == 1:  # forced: make it win even if the model gives it -inf
                    out[row, allow[0]] = 0.0
            if not torch.isfinite(out[row]).any():  # the model scores every allowed token -inf/NaN (overflow)
                out[row] = torch.where(torch.isnan(out[row]), float("-inf"), out[row])
                allowed_ids = allow.nonzero().flatten() if isinstance(allow, torch.Tensor) else torch.tensor(allow)
                out[row, allowed_ids.to(out.device)] = 0.0
        return out


def _positive(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


class AudioStoryPlanner(Planner):
    """``Planner`` backed by an ``AudioStoryModel``: plans text, video (timed scenes) and continuation requests.

    Decoding limits default to the model config's (``max_new_tokens``, ``max_events``, ``max_reasoning_tokens``,
    ``max_caption_tokens``). Greedy and therefore deterministic. Returns a ``Plan`` whose ``conditioning[i]`` is a
    float32 CPU tensor (n_semantic, cond_width) for ``events[i]``; events split to respect ``max_event`` or scene
    cuts share their condition.
    """

    name = "audiostory-llm"

    def __init__(
        self,
        model: "AudioStoryModel",
        *,
        max_new_tokens: int | None = None,
        device: str | torch.device | None = None,
        lead_in: int | None = None,
        max_events: int | None = None,
        max_reasoning_tokens: int | None = None,
        max_caption_tokens: int | None = None,
    ) -> None:
        self.model = model
        cfg = model.config
        self.max_new_tokens = int(max_new_tokens or cfg.max_new_tokens)
        self.device = torch.device(device) if device is not None else model.device
        if self.device != model.device:
            model.to(self.device)
        self.lead_in = lead_in
        self.grammar = EventGrammar(
            model.tokenizer,
            model.token_ids,
            model.vocab_size,
            max_new_tokens=self.max_new_tokens,
            max_events=max_events or cfg.max_events,
            max_reasoning_tokens=max_reasoning_tokens or cfg.max_reasoning_tokens,
            max_caption_tokens=max_caption_tokens or cfg.max_caption_tokens,
        )
        self.last_output: str = ""  # the raw generated text for the last request planned (debugging, reports)

    def prompt_for(self, request: StoryRequest) -> tuple[str, int]:
        """The prompt text and the number of audio placeholder tokens it carries."""
        description = request.to_instruction() or DEFAULT_DESCRIPTION
        n_audio = self.model.audio_queries if request.audio_prompt is not None else 0
        prefix = T.VIDEO_PAD * n_audio
        return T.build_prompt(description, request.duration, lead_in=self.lead_in, prefix=prefix), n_audio

    def plan(self, request: StoryRequest) -> Plan:
        return self.plan_many([request])[0]

    @torch.no_grad()
    def plan_many(self, requests: Sequence[StoryRequest]) -> list[Plan]:
        """Plan several requests in one batched generation (left-padded) and one batched hidden-state pass."""
        m, pad = self.model, self._pad_id()
        for r in requests:
            if r.audio_prompt is not None and m.audio_encoder is None:
                raise PlanError("this AudioStory model has no audio encoder, so it cannot plan a continuation request")
        if not requests:
            return []
        prompts = [m.tokenizer.encode(self.prompt_for(r)[0], add_special_tokens=False) for r in requests]
        audios = [m.encode_audio(r.audio_prompt, r.audio_prompt_rate) for r in requests if r.audio_prompt is not None]
        audio = torch.cat(audios) if audios else None
        input_ids, mask = _left_pad(prompts, pad, self.device)
        outputs = self._generate(input_ids, mask, audio)
        self.last_output = m.tokenizer.decode(outputs[-1], skip_special_tokens=False)

        traces = [self.grammar.read(out) for out in outputs]
        events = [[e for e in t.events if self.grammar.complete(e)] for t in traces]
        if not all(events):
            raise PlanError("the AudioStory LLM produced no complete event; raise max_new_tokens")

        # One forward pass over every prompt + output; query states → conditions, batched over all events.
        seq_ids, seq_mask = _left_pad([p + o for p, o in zip(prompts, outputs)], pad, self.device)
        hidden = m.hidden_states(seq_ids, audio, seq_mask)
        sem, res = [], []
        for row, evs in enumerate(events):
            offset = seq_ids.shape[1] - len(outputs[row])  # where this row's output starts (after padding + prompt)
            for e in evs:
                sem.append(hidden[row, [offset + p for p in e.semantic_positions]])
                res.append(hidden[row, [offset + p for p in e.residual_positions]])
        conditions = [c.float().cpu() for c in m.bridge(torch.stack(sem), torch.stack(res))]

        plans, k = [], 0
        for request, trace, evs in zip(requests, traces, events):
            items = [(T.clean_text(m.tokenizer.decode(e.caption_ids)), T.parse_duration(e.timestamp)) for e in evs]
            reasoning = T.clean_text(m.tokenizer.decode(trace.reasoning_ids))
            plans.append(assemble_plan(reasoning, items, conditions[k : k + len(evs)], request, m.config.max_event))
            k += len(evs)
        return plans

    def _pad_id(self) -> int:
        pad = self.model.tokenizer.pad_token_id
        return int(pad) if pad is not None else self.model.token_ids.eos

    def _generate(self, input_ids: torch.Tensor, mask: torch.Tensor, audio: torch.Tensor | None) -> list[list[int]]:
        """Greedy constrained generation; each row's output up to and including its end-of-turn token."""
        from transformers import GenerationConfig, LogitsProcessorList

        m, eos = self.model, self.model.token_ids.eos
        gen_cfg = GenerationConfig(
            max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1, eos_token_id=eos,
            pad_token_id=self._pad_id(),
        )
        self.grammar.reset(batch=input_ids.shape[0], prompt_length=input_ids.shape[1])
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
        if audio is not None:
            kwargs["inputs_embeds"] = m.input_embeddings(input_ids, audio)
        out = m.llm.generate(**kwargs, generation_config=gen_cfg, logits_processor=LogitsProcessorList([self.grammar]))
        rows = []
        for row in out[:, input_ids.shape[1] :].tolist():
            rows.append(row[: row.index(eos) + 1] if eos in row else row)
        return rows


def _left_pad(rows: Sequence[list[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask (generation continues every row from its last real token)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def plan_from_output(text: str, request: StoryRequest, *, max_event: float = 30.0) -> Plan:
    """A valid plan (no conditioning) from model output text, however malformed (missing tags, bad numbers).

    Used for output produced elsewhere (another runtime, a log, a hand-written plan); events without a caption
    get a generic one, unusable durations share the remaining time.
    """
    parsed = T.parse_output(text)
    items = [(e.caption, e.duration) for e in parsed.events]
    if not items:  # nothing usable: one event described by the request itself
        items = [(" ".join(request.to_instruction().split()[:24]) or DEFAULT_DESCRIPTION, None)]
    return assemble_plan(parsed.reasoning, items, None, request, max_event)


def assemble_plan(
    reasoning: str,
    items: list[tuple[str, float | None]],
    conditions: list[torch.Tensor] | None,
    request: StoryRequest,
    max_event: float,
) -> Plan:
    """Reconcile proposed (caption, duration) pairs into events that tile the request (and sit inside its
    scenes), carrying each proposal's condition onto every event made from it."""
    sources: list[int | None] = []
    events = reconcile_sequence(items, request.duration, max_event=max_event, sources=sources)
    conds: list[Any] | None = None if conditions is None else [conditions[i] if i is not None else None for i in sources]
    if request.scenes:
        placed = split_at_scenes(events, conds or [None] * len(events), request.scenes)
        events = [e for e, _ in placed]
        conds = None if conds is None else [c for _, c in placed]
    return Plan(reasoning, events, float(request.duration), planner=AudioStoryPlanner.name, conditioning=conds)


def split_at_scenes(
    events: list[SubEvent], conds: list[Any], scenes: Sequence[Scene], min_piece: float = 0.1
) -> list[tuple[SubEvent, Any]]:
    """Cut events at scene boundaries so each lies inside one scene and the timeline stays covered.

    An event that crosses a cut becomes one piece per scene ("… (continued)" after the first), all with the
    event's condition. A piece shorter than ``min_piece`` is absorbed by the abutting piece of the same scene
    (so a cut a few frames off the LLM's boundary does not leave a sliver event). Parts outside every scene are
    moved into the nearest one (``fit_to_scenes``).
    """
    valid = sorted(((i, s) for i, s in enumerate(scenes) if s.end > s.start), key=lambda t: t[1].start)
    pieces: list[list[Any]] = []  # [start, end, scene index, event, condition, first piece of its event]
    for ev, cond in zip(events, conds):
        parts = [(max(ev.start, s.start), min(ev.end, s.end), i) for i, s in valid]
        parts = [p for p in parts if p[1] > p[0]]
        if not parts:
            pieces += [[f.start, f.end, f.scene_index, f, cond, True] for f in fit_to_scenes([ev], scenes)]
            continue
        pieces += [[a, b, i, ev, cond, k == 0] for k, (a, b, i) in enumerate(parts)]
    pieces.sort(key=lambda p: p[0])
    k = 0
    while k < len(pieces):
        a, b, idx = pieces[k][:3]
        if b - a < min_piece:
            prev = pieces[k - 1] if k > 0 else None
            nxt = pieces[k + 1] if k + 1 < len(pieces) else None
            if prev is not None and prev[2] == idx and prev[1] == a:
                prev[1] = b
                del pieces[k]
                continue
            if nxt is not None and nxt[2] == idx and nxt[0] == b:
                nxt[0] = a
                del pieces[k]
                continue
        k += 1
    out = []
    for a, b, idx, ev, cond, first in pieces:
        caption = ev.caption if first or ev.caption.endswith(CONTINUED) else ev.caption + CONTINUED
        out.append((replace(ev, caption=caption, start=a, duration=span(a, b), scene_index=idx), cond))
    return out
