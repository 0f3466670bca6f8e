"""The AudioStory LLM planner on a tiny random model: whatever the weights, the output parses into a valid plan."""
from __future__ import annotations

import math
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from audiostory_core.errors import PlanError
from audiostory_core.models import tokens as T
from audiostory_core.models.audiostory import AudioStoryModel
from audiostory_core.plan.base import Planner
from audiostory_core.plan.llm_planner import (
    AudioStoryPlanner,
    EventGrammar,
    State,
    Trace,
    plan_from_output,
    split_at_scenes,
)
from audiostory_core.plan.types import SubEvent
from audiostory_core.request import Cue, Scene, StoryRequest


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def model() -> AudioStoryModel:
    return AudioStoryModel.tiny(seed=0, with_dit=False)


@pytest.fixture(scope="module")
def planner(model) -> AudioStoryPlanner:
    return AudioStoryPlanner(model)


def assert_tiles(plan, total: float, max_event: float = 30.0) -> None:
    """Events back to back from 0 to exactly ``total``, none longer than ``max_event``, captions non-empty."""
    assert plan.events, "a plan needs at least one event"
    assert plan.events[0].start == 0.0
    for a, b in zip(plan.events, plan.events[1:]):
        assert a.end == b.start
    assert plan.events[-1].end == total
    assert math.isclose(math.fsum(e.duration for e in plan.events), total, rel_tol=0, abs_tol=1e-9)
    for e in plan.events:
        assert 0 < e.duration <= max_event + 1e-9
        assert e.caption.strip()


# ----------------------------------------------------------------------------------------------- tokens / prompt


def test_added_tokens_follow_the_published_order():
    toks = T.added_tokens()
    assert len(toks) == 612 and len(set(toks)) == 612
    assert toks[:5] == ["</t5>", "<video_padding>", "<timestamp>", "</timestamp>", "<t5>"]
    assert toks[5] == "<t5_00000>" and toks[104] == "<t5_00099>"
    assert toks[105:108] == ["<aud>", "</aud>", "<aud_00000>"] and toks[607] == "<aud_00500>"
    assert toks[-4:] == ["<|gen|>", "<|/gen|>", "<|think|>", "<|/think|>"]
    assert len(T.LEAD_INS) == 20


def test_tiny_tokenizer_keeps_tokens_whole_and_ids_in_order():
    tok = T.build_tiny_tokenizer()
    base = T.build_tiny_tokenizer(with_audiostory_tokens=False)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in T.added_tokens()] == list(range(len(base), len(base) + 612))
    ids = tok.encode("rain<t5><t5_00000></t5> 12.5", add_special_tokens=False)
    assert vocab["<t5>"] in ids and vocab["<t5_00000>"] in ids and vocab["</t5>"] in ids
    assert tok.decode(ids) == "rain<t5><t5_00000></t5> 12.5"


def test_prompt_is_the_qwen_chat_turns_opened_with_think():
    prompt = T.build_prompt("a storm over the sea", 42, lead_in=19)
    assert prompt == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nDevelop a comprehensive audio that fully represents a storm over the sea "
        "The total duration is 42.0 seconds.<|im_end|>\n"
        "<|im_start|>assistant\n<|think|>"
    )
    tok = T.build_tiny_tokenizer()
    user = T.user_message("a storm over the sea", 42, lead_in=19)
    templ = tok.apply_chat_template(
        [{"role": "system", "content": T.SYSTEM_PROMPT}, {"role": "user", "content": user}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert templ + T.THINK_OPEN == prompt
    # The lead-in depends on the seed only (as published), never on the process: same seed, same prompt in
    # another process with another string-hash salt; other seeds reach other phrases.
    import subprocess
    import sys

    code = "from audiostory_core.models import tokens as T; print(T.build_prompt('a dog barks twice', 5, seed=3))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    assert other == T.build_prompt("a dog barks twice", 5, seed=3) + "\n"
    assert len({T.pick_lead_in(seed) for seed in range(40)}) > 5


# ----------------------------------------------------------------------------------------------- parsing garbage


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no tags at all, just words",
        "<|think|>two events<|/think|>",
        "<|/think|><|gen|><timestamp>5</timestamp>",
        "<|gen|>rain on a roof<timestamp>abc</timestamp><t5><t5_00000>",
        "<|gen|>door slam<timestamp>-3</timestamp><|gen|>wind<timestamp>1e999</timestamp>",
        "<|gen|>birds<timestamp>12.5<t5><t5_00000><t5_00002></t5>",
        "<|gen|>   <timestamp>4</timestamp><|gen|>car passes<timestamp>200</timestamp><aud><aud_00000>",
        "think<|/think|><|gen|>thunder<timestamp>7.5</timestamp><|gen|>rain",
    ],
)
def test_parser_and_reconcile_turn_garbage_into_a_valid_plan(text):
    parsed = T.parse_output(text)
    for e in parsed.events:
        assert e.duration is None or (e.duration > 0 and math.isfinite(e.duration))
    plan = plan_from_output(text, StoryRequest.from_text("a stormy night", 73.0))
    assert_tiles(plan, 73.0)


def test_parser_reads_a_well_formed_output():
    text = (
        "<|think|>Two events: rain then thunder.<|/think|>"
        + T.render_event("steady rain", 12.5, 4, 2)
        + T.GEN_CLOSE
        + T.render_event("thunder roll", 7, 4, 2)
    )
    parsed = T.parse_output(text)
    assert parsed.reasoning == "Two events: rain then thunder."
    assert [(e.caption, e.duration) for e in parsed.events] == [("steady rain", 12.5), ("thunder roll", 7.0)]
    assert all(e.complete(4, 2) for e in parsed.events)
    truncated = T.parse_output(text[:-20])
    assert not truncated.events[-1].complete(4, 2)


# ----------------------------------------------------------------------------------------------- the grammar


def test_grammar_forces_query_runs_and_terminates_under_hostile_logits(model):
    """Drive the grammar with adversarial random scores (no LLM at all): every run closes, parses and ends in
    budget, whatever the scores prefer."""
    ids = model.token_ids
    grammar = EventGrammar(
        model.tokenizer, ids, model.vocab_size, max_new_tokens=120, max_events=5,
        max_reasoning_tokens=30, max_caption_tokens=6,
    )
    hostile = [ids.sem_open, ids.res_open, ids.eos, ids.ts_open, ids.gen_open, ids.semantic[2], ids.think_close]
    for seed in range(25):
        g = torch.Generator().manual_seed(seed)
        grammar.reset(batch=1, prompt_length=0)
        seq: list[int] = []
        for _ in range(grammar.max_new_tokens):
            scores = torch.randn(1, model.vocab_size, generator=g)
            scores[0, hostile[seed % len(hostile)]] += 50.0  # one token the "model" always wants
            tok = int(grammar(torch.tensor([seq], dtype=torch.long), scores).argmax())
            seq.append(tok)
            if tok == ids.eos:
                break
        assert seq[-1] == ids.eos, f"seed {seed}: did not terminate within the budget"
        trace = grammar.read(seq)
        assert trace.state is State.DONE
        assert trace.events and all(grammar.complete(e) for e in trace.events)
        for e in trace.events:
            assert [seq[p] for p in e.semantic_positions] == list(ids.semantic)
            assert [seq[p] for p in e.residual_positions] == list(ids.residual)
            assert T.parse_duration(e.timestamp) is not None
            assert any(model.tokenizer.decode([t]).strip() for t in e.caption_ids)
        text = model.tokenizer.decode(seq)
        assert all(ev.complete(4, 2) for ev in T.parse_output(text).events)


def test_grammar_allows_only_numbers_inside_timestamp(model):
    ids = model.token_ids
    grammar = EventGrammar(
        model.tokenizer, ids, model.vocab_size, max_new_tokens=120, max_events=5,
        max_reasoning_tokens=30, max_caption_tokens=6,
    )
    trace = Trace()
    for tok in [ids.think_close, ids.gen_open, *model.tokenizer.encode("rain", add_special_tokens=False), ids.ts_open]:
        grammar.feed(trace, tok)
    assert trace.state is State.TIMESTAMP
    allowed = grammar.allowed(trace)
    texts = {model.tokenizer.decode([t]) for t in allowed}
    assert texts and all(s.isdigit() for s in texts)  # first char: a digit ('.' not yet, no close on empty)
    grammar.feed(trace, model.tokenizer.convert_tokens_to_ids("1"))
    assert ids.ts_close in grammar.allowed(trace)


def test_too_small_a_budget_is_a_clear_error(model):
    with pytest.raises(PlanError, match="max_new_tokens"):
        AudioStoryPlanner(model, max_new_tokens=10)


# ----------------------------------------------------------------------------------------------- planning


@pytest.mark.parametrize("total", [1.0, 17.3, 95.0])
def test_random_model_plans_are_valid(planner, model, total):
    plan = planner.plan(StoryRequest.from_text("a dog barks in the rain, then thunder rolls", total))
    assert isinstance(planner, Planner) and plan.planner == "audiostory-llm"
    assert_tiles(plan, total)
    assert plan.duration == total
    assert len(plan.conditioning) == len(plan.events)
    for c in plan.conditioning:
        assert c.shape == (model.config.n_semantic, model.config.cond_width)
        assert c.dtype == torch.float32 and torch.isfinite(c).all()
    if total > 30:
        assert len(plan.events) >= 4  # 95 s cannot be covered by fewer than four ≤30 s events
    # Split events reuse the condition of the event they came from.
    for e, c in zip(plan.events, plan.conditioning):
        if e.caption.endswith("(continued)"):
            src = next(i for i, x in enumerate(plan.events) if x.caption == e.caption.removesuffix(" (continued)"))
            assert torch.equal(c, plan.conditioning[src])


def test_planning_is_deterministic(planner):
    req = StoryRequest.from_text("waves crash on rocks while gulls cry", 40.0)
    a, b = planner.plan(req), planner.plan(req)
    assert a.to_dict() == b.to_dict()
    assert all(torch.equal(x, y) for x, y in zip(a.conditioning, b.conditioning))


def test_conditions_come_from_the_query_hidden_states(planner, model):
    """The condition is the bridge applied to the hidden states at the query positions, nothing else."""
    req = StoryRequest.from_text("a kettle whistles", 8.0)
    plan = planner.plan(req)
    prompt, _ = planner.prompt_for(req)
    prompt_ids = model.tokenizer.encode(prompt, add_special_tokens=False)
    out_ids = model.tokenizer.encode(planner.last_output, add_special_tokens=False)
    seq = torch.tensor([prompt_ids + out_ids])
    with torch.no_grad():
        hidden = model.hidden_states(seq)[0]
        sem_pos = [i for i, t in enumerate(seq[0].tolist()) if t in model.token_ids.semantic]
        res_pos = [i for i, t in enumerate(seq[0].tolist()) if t in model.token_ids.residual]
        n, m = model.config.n_semantic, model.config.n_residual
        first = model.bridge(hidden[sem_pos[:n]][None], hidden[res_pos[:m]][None])[0]
    assert torch.allclose(plan.conditioning[0], first, atol=1e-5)


def test_scene_requests_give_events_inside_scenes(planner):
    scenes = [
        Scene(0.0, 4.2, "a cat walks across a kitchen"),
        Scene(4.2, 9.0, "a glass falls and shatters", cues=[Cue(5.1, "impact", 1.0, "glass hits the floor")]),
        Scene(9.0, 41.5, "rain outside a window"),
    ]
    req = StoryRequest.from_scenes(scenes, 41.5)
    plan = planner.plan(req)
    assert "Scene 2 from 4.20s to 9.00s" in planner.prompt_for(req)[0]  # scenes reach the LLM as timed text
    assert len(plan.conditioning) == len(plan.events)
    assert_tiles(plan, 41.5)  # scenes cover the video, so the events still tile it
    for e in plan.events:
        s = scenes[e.scene_index]
        assert s.start - 1e-9 <= e.start and e.end <= s.end + 1e-9
        assert e.duration <= 30.0 + 1e-9
    assert [e.start for e in plan.events] == sorted(e.start for e in plan.events)


def test_continuation_needs_an_audio_encoder(planner):
    req = StoryRequest.from_audio(torch.zeros(1, 1600).numpy(), 16000, 10.0)
    with pytest.raises(PlanError, match="audio encoder"):
        planner.plan(req)


def test_events_are_cut_at_scene_boundaries_without_slivers():
    scenes = [Scene(0.0, 4.0, "a"), Scene(4.0, 9.95, "b"), Scene(9.95, 12.0, "c")]
    events = [SubEvent("wind", 0.0, 8.0), SubEvent("rain", 8.0, 2.0), SubEvent("door", 10.0, 2.0)]
    conds = ["c-wind", "c-rain", "c-door"]
    out = split_at_scenes(events, conds, scenes)
    got = [(e.caption, e.start, e.end, e.scene_index, c) for e, c in out]
    assert got == [
        ("wind", 0.0, 4.0, 0, "c-wind"),
        ("wind (continued)", 4.0, 8.0, 1, "c-wind"),
        ("rain", 8.0, 9.95, 1, "c-rain"),  # its 0.05 s tail past the cut went to the next scene's event
        ("door", 9.95, 12.0, 2, "c-door"),
    ]


def test_continuation_splices_the_audio_prompt_into_the_llm_input():
    m = AudioStoryModel.tiny(seed=2, with_dit=False, with_audio_encoder=True)
    planner = AudioStoryPlanner(m)
    t = torch.arange(16000) / 16000
    rain = (torch.randn(2, 16000, generator=torch.Generator().manual_seed(0)) * 0.1).numpy()
    tone = torch.sin(2 * math.pi * 440 * t)[None].numpy()
    req = StoryRequest.from_audio(rain, 16000, 12.0)
    prompt, n_audio = planner.prompt_for(req)
    assert n_audio == m.audio_encoder.n_queries and prompt.count(T.VIDEO_PAD) == n_audio
    a = planner.plan(req)
    assert "<|im_start|>" not in planner.last_output  # the output is the answer only, not the prompt
    assert_tiles(a, 12.0)
    b = planner.plan(StoryRequest.from_audio(tone, 16000, 12.0))
    assert not all(torch.equal(x, y) for x, y in zip(a.conditioning, b.conditioning))  # the audio is heard
    assert all(torch.equal(x, y) for x, y in zip(a.conditioning, planner.plan(req).conditioning))
    # In a batch with a text request, the audio still lands in its own row.
    text_req = StoryRequest.from_text("a kettle whistles", 6.0)
    mixed = planner.plan_many([text_req, req])
    for got, alone in zip(mixed, [planner.plan(text_req), a]):
        assert got.to_dict() == alone.to_dict()
        assert all(torch.allclose(x, y, atol=1e-4, rtol=0) for x, y in zip(got.conditioning, alone.conditioning))


def test_grammar_survives_a_model_that_scores_everything_minus_infinity(model):
    ids = model.token_ids
    grammar = EventGrammar(
        model.tokenizer, ids, model.vocab_size, max_new_tokens=80, max_events=2,
        max_reasoning_tokens=5, max_caption_tokens=3,
    )
    grammar.reset(batch=1, prompt_length=0)
    seq: list[int] = []
    for _ in range(80):
        tok = int(grammar(torch.tensor([seq], dtype=torch.long), torch.full((1, model.vocab_size), float("-inf"))).argmax())
        seq.append(tok)
        if tok == ids.eos:
            break
    trace = grammar.read(seq)
    assert trace.state is State.DONE and trace.events and all(grammar.complete(e) for e in trace.events)


def test_batched_planning_matches_one_by_one(planner):
    requests = [
        StoryRequest.from_text("a dog barks in the rain, then thunder rolls", 17.3),
        StoryRequest.from_text("waves", 64.0),
        StoryRequest.from_scenes([Scene(0.0, 3.0, "a door opens"), Scene(3.0, 7.5, "footsteps in a hall")], 7.5),
    ]
    batched = planner.plan_many(requests)
    for req, got in zip(requests, batched):
        alone = planner.plan(req)
        assert got.to_dict() == alone.to_dict()
        for x, y in zip(got.conditioning, alone.conditioning):
            assert torch.allclose(x, y, atol=1e-4, rtol=0)


def test_each_event_keeps_the_condition_of_the_proposal_it_came_from():
    """Captions are not identities: an LLM may itself write "rain (continued)"; long events are split. Every
    event must carry its own proposal's query states, never a neighbour's."""
    from audiostory_core.plan.llm_planner import assemble_plan
    from audiostory_core.request import StoryRequest

    conds = [torch.full((2, 4), float(i)) for i in range(4)]
    items = [("rain", 5.0), ("rain (continued)", 5.0), ("", 5.0), ("thunder", 45.0)]
    plan = assemble_plan("", items, conds, StoryRequest.from_text("x", 60.0), 30.0)
    got = [(e.caption, float(c[0, 0])) for e, c in zip(plan.events, plan.conditioning)]
    assert got[:3] == [("rain", 0.0), ("rain (continued)", 1.0), (got[2][0], 2.0)]
    assert [v for cap, v in got[3:]] == [3.0, 3.0] and got[4][0].startswith("thunder")
