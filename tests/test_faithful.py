"""The faithful preset against the authors' own code and rules, on tiny random models (CPU).

- DiT side: the published TangoFlux 0.1.0 package (installed ``--no-deps`` by scripts/setup.sh) runs its own
  inference loop on a tiny random model saved in TangoFlux's release layout; dubkit loads that folder and must
  give the same denoised latents (same noise, steps, guidance) to 1e-4, for caption conditioning (TangoFlux) and
  for query-token conditioning with the empty-prompt unconditional branch (AudioStory's full-token loop).
- LLM side: the published generation rules, written down as data in ``fixtures/audiostory_published.json``
  (read from the TencentARC/AudioStory repository): prompt text, token ids, the forced query runs, how the output
  is cut into events, the duration/crossfade arithmetic and the checkpoint's key layout.
"""
from __future__ import annotations

import json
import random
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audiostory_core.models import tokens as T
from audiostory_core.models.audiostory import AudioStoryModel
from audiostory_core.models.dit import T5TextEncoder, TangoFluxDiT
from audiostory_core.models.published import load_published, to_published_state
from audiostory_core.plan.llm_planner import (
    AudioStoryPlanner, PublishedQueryRun, published_plan, published_render_seconds, published_runs,
)
from audiostory_core.plan.types import Plan, SubEvent
from audiostory_core.models.presets import FAITHFUL, FAST, get_preset
from audiostory_core.render.dit_renderer import DiTRenderer
from audiostory_core.request import StoryRequest

from .test_audiostory_model import TINY_VAE, published_compatible_config, write_published

warnings.filterwarnings("ignore", message=".*weight_norm.*")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "audiostory_published.json").read_text())
STEPS = 4
WIDTH = 32  # T5 d_model = the DiT's joint_attention_dim (TangoFlux requires them equal)
WORDS = "dog barks rain thunder wind door a the in on of distant rolls steady heavy".split()
# A VAE at the published rate and hop (44.1 kHz, 2048 samples per latent frame) with 64 latent channels
# (TangoFlux's loop draws 64-channel noise), tiny everywhere else.
VAE_44K = dict(encoder_hidden_size=4, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
               decoder_channels=4, decoder_input_channels=64, audio_channels=2, sampling_rate=44100)


# ============================================================================== TangoFlux 0.1.0 as the oracle


def import_tangoflux():
    """``tangoflux.model``: TangoFlux's module imports ``datasets`` (for training) at the top; inference never
    uses it, so where it is not installed a placeholder module stands in while the module loads."""
    try:
        import datasets  # noqa: F401
    except ImportError:
        stub = types.ModuleType("datasets")
        stub.load_dataset = stub.Audio = None
        sys.modules["datasets"] = stub
        try:
            import tangoflux.model as tm
        finally:
            del sys.modules["datasets"]
        return tm
    import tangoflux.model as tm

    return tm


def make_t5_folder(path: Path) -> Path:
    """A tiny flan-t5 stand-in (T5 tokenizer with pad 0 / end 1 and model_max_length 512, gated-GELU encoder)."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [("▁" + w, -1.0 - 0.01 * i) for i, w in enumerate(WORDS)]
    T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512).save_pretrained(str(path))
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(vocab), d_model=WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", decoder_start_token_id=0)
    T5EncoderModel(cfg).save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    return make_t5_folder(tmp_path_factory.mktemp("tiny-flan-t5"))


@pytest.fixture(scope="module")
def tangoflux(t5_dir):
    """TangoFlux's own model class, tiny and random, with its T5 from ``t5_dir``."""
    tm = import_tangoflux()
    config = {"num_layers": 1, "num_single_layers": 1, "in_channels": 64, "attention_head_dim": 128,
              "joint_attention_dim": WIDTH, "num_attention_heads": 1, "audio_seq_len": 645, "max_duration": 30,
              "uncondition": False, "text_encoder_name": str(t5_dir)}
    torch.manual_seed(1)
    model = tm.TangoFlux(config).eval()
    with torch.no_grad():  # random everywhere (diffusers zero-initialises some output layers)
        for name, p in model.named_parameters():
            if not name.startswith("text_encoder."):
                p.copy_(torch.randn_like(p) * 0.05)
    return model, config


@pytest.fixture(scope="module")
def release_dir(tangoflux, tmp_path_factory) -> Path:
    """The tiny TangoFlux in its release layout: config.json + tangoflux.safetensors + vae.safetensors."""
    from diffusers import AutoencoderOobleck

    model, config = tangoflux
    folder = tmp_path_factory.mktemp("tangoflux-release")
    (folder / "config.json").write_text(json.dumps(config))
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "text_encoder.encoder.embed_tokens.weight"}
    save_file(state, str(folder / "tangoflux.safetensors"))  # like the release: T5 copy included, tied copy not
    torch.manual_seed(2)
    save_file({k: v.contiguous() for k, v in AutoencoderOobleck(**VAE_44K).state_dict().items()},
              str(folder / "vae.safetensors"))
    return folder


@pytest.fixture(scope="module")
def dit(release_dir) -> TangoFluxDiT:
    return TangoFluxDiT.from_pretrained(release_dir, vae_config=VAE_44K)


def one_plan(*durations: float) -> Plan:
    events, t = [], 0.0
    for i, d in enumerate(durations):
        events.append(SubEvent(caption=["dog barks in the rain", "distant thunder rolls"][i % 2], start=t, duration=d))
        t += d
    return Plan(reasoning="", events=events, duration=t)


def test_tangoflux_release_loads_faithful_with_the_authors_defaults(dit, t5_dir):
    assert dit.default_preset == "faithful" and dit.max_frames == 645
    assert dit.frames_for(30.0) == 645  # not ceil(1,323,000 / 2048) = 646: the model was trained on 645
    assert dit.frames_for(10.0) == 216 and dit.frames_for(45.0) == 645
    r = DiTRenderer(dit, text_encoder=t5_dir, device="cpu")
    assert (r.steps, r.guidance, r.preset) == (25, 4.5, FAITHFUL)  # TangoFlux's shipped defaults
    assert r.text_encoder.max_length == 512 == FIXTURE["tangoflux"]["max_caption_tokens"]
    q = DiTRenderer(dit, device="cpu")
    assert (q.steps, q.guidance) == (50, 4.0) == (FIXTURE["dit"]["num_inference_steps"], FIXTURE["dit"]["guidance_scale"])
    assert DiTRenderer(dit, device="cpu", preset="fast").preset == FAST
    # A 30 s event: 645 frames decode 1,320,960 samples; the clip is still exactly 30 s (the rest is silence).
    clip = DiTRenderer(dit, text_encoder=t5_dir, device="cpu", steps=1).render(one_plan(30.0))[0]
    assert clip.audio.shape == (2, 1_323_000)
    assert np.abs(clip.audio[:, 645 * 2048:]).max() == 0 and np.abs(clip.audio[:, :645 * 2048]).max() > 0


def test_caption_path_equals_tangoflux_inference_flow(tangoflux, dit, t5_dir):
    """TangoFlux's own loop (seeded the same way) vs dubkit's faithful preset: 10 s and 35 s (clamped) events."""
    model, _ = tangoflux
    plan = one_plan(10.0, 35.0)
    renderer = DiTRenderer(dit, text_encoder=t5_dir, device="cpu", steps=STEPS)
    ours = renderer.denoise(plan, None, seed=7)
    for event, got in zip(plan.events, ours):
        torch.manual_seed(7)  # faithful: every event from the call's seed
        ref = model.inference_flow(event.caption, num_inference_steps=STEPS, guidance_scale=4.5,
                                   duration=event.duration, disable_progress=True)[0]
        noise = torch.randn(645, 64, generator=torch.Generator().manual_seed(7))
        assert got.shape == ref.shape == (645, 64)
        assert (ref - noise).abs().max() > 0.1  # the tiny DiT does move the latents
        assert (got - ref).abs().max() <= 1e-4, float((got - ref).abs().max())


def test_query_path_equals_the_published_full_token_loop(tangoflux, dit, t5_dir):
    """AudioStory's DiT loop differs from TangoFlux's only in its condition: the LLM's query tokens, with T5 of ''
    padded to their count as the unconditional row and every position pooled. TangoFlux's loop given exactly
    that (its text encoding replaced) is the reference for the query path."""
    model, _ = tangoflux
    n = 6
    queries = torch.randn(n, WIDTH, generator=torch.Generator().manual_seed(3))
    t5 = T5TextEncoder.from_pretrained(t5_dir)
    neg = t5.null(n)

    def published_encoding(prompt, num_samples_per_prompt=1):
        rows = torch.stack([neg, queries])  # the published batch order: unconditional first
        return rows, torch.ones(rows.shape[:2], dtype=torch.bool)

    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model, "encode_text_classifier_free", published_encoding)
        ref = model.inference_flow("", num_inference_steps=STEPS, guidance_scale=4.0, duration=15.5,
                                   disable_progress=True)[0]
    dit.set_null_tokens(t5.null(dit.config.null_tokens), source="t5")
    plan = Plan(reasoning="", duration=12.5, events=[SubEvent("x", 0.0, 12.5, tail=3.0)])  # rendered 15.5 s
    got = DiTRenderer(dit, device="cpu", steps=STEPS, guidance=4.0).denoise(plan, [queries], seed=0)[0]
    assert (got - ref).abs().max() <= 1e-4, float((got - ref).abs().max())


def test_batching_is_float_close_not_bit_exact_so_faithful_renders_one_event_per_call(dit):
    """Events at the same 645 frames batched vs one at a time: equal to float error only (matrix kernels depend
    on the batch size), so the faithful preset renders one event per DiT call, as published; fast batches."""
    plan = one_plan(4.0, 9.5, 20.0)
    g = torch.Generator().manual_seed(4)
    cond = [torch.randn(6, WIDTH, generator=g) for _ in plan.events]
    faithful = DiTRenderer(dit, device="cpu", steps=2)
    batched = DiTRenderer(dit, device="cpu", steps=2, batch_size=8)
    assert faithful.batch_size == 1 and DiTRenderer(dit, device="cpu", preset="fast").batch_size == 8
    a, b = batched.denoise(plan, cond, seed=5), faithful.denoise(plan, cond, seed=5)
    assert batched.forward_calls == 1 and faithful.forward_calls == 3
    assert all((x - y).abs().max() <= 1e-4 for x, y in zip(a, b))


def test_fast_preset_changes_only_what_it_names(dit):
    plan = one_plan(4.0, 9.5)
    cond = [torch.randn(6, WIDTH, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    faithful, fast = DiTRenderer(dit, device="cpu", steps=2), DiTRenderer(dit, device="cpu", steps=2, preset="fast")
    assert [faithful.frames_for(e) for e in plan.events] == [645, 645]
    assert [fast.frames_for(e) for e in plan.events] == [dit.frames_for(4.0), dit.frames_for(9.5)] == [87, 205]
    assert [faithful.seed_for(9, i) for i in range(2)] == [9, 9]
    assert len({fast.seed_for(9, i) for i in range(2)}) == 2
    a, b = faithful.denoise(plan, cond, seed=9), fast.denoise(plan, cond, seed=9)
    assert [z.shape[0] for z in a] == [645, 645] and [z.shape[0] for z in b] == [87, 205]
    assert FAITHFUL.device_dtype("cuda")[1] == torch.float16 and FAST.device_dtype("cpu")[1] == torch.float32


# ============================================================================== the checkpoint's own T5 copy


def test_empty_prompt_embedding_without_a_tokenizer_is_t5s(t5_dir):
    """From weights alone (a checkpoint's tangoflux.text_encoder.*), "" is T5's end token padded: the same
    embedding the flan-t5 tokenizer gives, bit for bit; and it does not depend on how far it is padded."""
    with_tok = T5TextEncoder.from_pretrained(t5_dir)
    state = {k: v for k, v in with_tok.model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    bare = T5TextEncoder.from_state(state)
    assert bare.tokenizer is None and bare.model.config.d_model == WIDTH
    assert bare.model.config.feed_forward_proj == "gated-gelu" and bare.model.config.num_layers == 2
    assert torch.equal(bare.null(64), with_tok.null(64))
    torch.testing.assert_close(bare.null(128)[:64], bare.null(64))


def t5_state_for(dir_: Path) -> dict[str, torch.Tensor]:
    m = T5TextEncoder.from_pretrained(dir_).model
    return {"tangoflux.text_encoder." + k: v.clone() for k, v in m.state_dict().items()}


@pytest.fixture(scope="module")
def model() -> AudioStoryModel:
    return AudioStoryModel.tiny(seed=3, config=published_compatible_config())


def test_published_checkpoint_gives_the_null_from_its_own_t5(model, t5_dir, tmp_path):
    extra = t5_state_for(t5_dir)
    model_dir, dit_dir, qwen_dir = write_published(tmp_path, model, state_edit=lambda s: s.update(extra))
    loaded = load_published(model_dir, dit_dir, qwen_dir, vae_config=TINY_VAE)  # no flan-t5 folder
    assert loaded.dit.null_source == "checkpoint-t5"
    assert any("T5 weights from" in n for n in loaded.load_report.notes)
    expected = T5TextEncoder.from_pretrained(t5_dir).null(loaded.dit.config.null_tokens)
    torch.testing.assert_close(loaded.dit.null_tokens, expected, rtol=0, atol=1e-6)
    # the checkpoint's copy wins over a given flan-t5 folder's weights (the folder gives the tokenizer)
    other = make_t5_folder(tmp_path / "other-t5")
    with torch.no_grad():
        t5 = T5TextEncoder.from_pretrained(other)
        t5.model.encoder.final_layer_norm.weight.mul_(3.0)
        t5.model.save_pretrained(str(other))
    again = load_published(model_dir, dit_dir, qwen_dir, t5_dir=other, vae_config=TINY_VAE)
    torch.testing.assert_close(again.dit.null_tokens, expected, rtol=0, atol=1e-6)
    assert loaded.config.default_preset == "faithful"


def test_config_yaml_interpolations_are_resolved(model, tmp_path):
    def interpolate(conf):
        conf["model_sizes"] = {"semantic": model.config.n_semantic, "residual": model.config.n_residual}
        pipe = conf["train_dataset"]["datapipes"][0]
        pipe["num_t5_out_tokens"] = "${model_sizes.semantic}"
        pipe["num_aud_out_tokens"] = "${model_sizes.residual}"
        conf["agent_model"]["unused_path"] = "${hydra:runtime.cwd}/ckpt"  # Hydra-only, never read: harmless

    model_dir, dit_dir, qwen_dir = write_published(tmp_path / "a", model, yaml_edit=interpolate)
    loaded = load_published(model_dir, dit_dir, qwen_dir, vae_config=TINY_VAE)
    assert (loaded.config.n_semantic, loaded.config.n_residual) == (model.config.n_semantic, model.config.n_residual)

    def broken(conf):
        conf["train_dataset"]["datapipes"][0]["num_t5_out_tokens"] = "${nowhere.semantic}"

    from audiostory_core.errors import CheckpointError

    model_dir, dit_dir, qwen_dir = write_published(tmp_path / "b", model, yaml_edit=broken)
    with pytest.raises(CheckpointError, match="num_t5_out_tokens"):
        load_published(model_dir, dit_dir, qwen_dir, vae_config=TINY_VAE)


def test_checkpoint_key_layout_matches_the_published_module_tree(model, t5_dir):
    layout = FIXTURE["checkpoint_keys"]
    patterns = {name: re.compile(p) for name, p in layout["patterns"].items()}
    state = {**to_published_state(model), **t5_state_for(t5_dir)}
    families: dict[str, int] = {}
    for key in state:
        hits = [name for name, p in patterns.items() if p.search(key)]
        assert len(hits) == 1, f"{key} matches {hits}"
        families[hits[0]] = families.get(hits[0], 0) + 1
    assert set(layout["must_load"]) <= set(families), set(layout["must_load"]) - set(families)


# ============================================================================== the LLM side vs the fixture


def test_prompt_text_is_the_published_one():
    p = FIXTURE["prompt"]
    assert list(T.LEAD_INS) == p["lead_ins"]
    for ex in p["examples"]:
        assert T.user_message(ex["caption"], ex["total_duration"], seed=ex["seed"]) == ex["instruction"]
        assert T.build_prompt(ex["caption"], ex["total_duration"], seed=ex["seed"]) == (
            p["system"] + p["user"].format(instruction=ex["instruction"]) + p["assistant"])
    state = random.getstate()
    try:
        for seed in range(60):  # the published rule, on Python's own global generator
            random.seed(seed)
            assert T.pick_lead_in(seed) == random.choice(p["lead_ins"])
    finally:
        random.setstate(state)


def test_planner_prompt_uses_the_seed(model):
    ex = FIXTURE["prompt"]["examples"][3]
    planner = AudioStoryPlanner(model, preset="faithful", seed=ex["seed"])
    prompt, _ = planner.prompt_for(StoryRequest.from_text(ex["caption"], ex["total_duration"]))
    assert ex["instruction"] in prompt
    assert AudioStoryPlanner(model, preset="faithful").seed == FIXTURE["prompt"]["default_seed"]


def test_token_ids_follow_the_published_rule():
    tok, base = T.build_tiny_tokenizer(), len(T.build_tiny_tokenizer(with_audiostory_tokens=False))
    t = FIXTURE["tokens"]
    assert len(tok) - base == t["vocab_size"] - t["base_vocab"] == 612
    vocab = tok.get_vocab()
    for token, published_id in t["ids"].items():
        assert vocab[token] - base == published_id - t["base_vocab"], token
    # the processors' runs are the ids the published code gets by encoding the joined strings
    ids = T.TokenIds.from_tokenizer(tok, 64, 8)
    sem, res = published_runs(ids)
    assert sem == tok.encode("<t5>" + "".join(T.semantic_token(i) for i in range(64)) + "</t5>", add_special_tokens=False)
    assert res == tok.encode("<aud>" + "".join(T.residual_token(i) for i in range(8)) + "</aud>", add_special_tokens=False)


def test_processors_follow_the_published_rules(model):
    rules = FIXTURE["processor"]
    ids = model.token_ids
    sem, _ = published_runs(ids)
    proc = PublishedQueryRun(sem)
    text = model.tokenizer.encode("rain", add_special_tokens=False)[0]
    name_to_id = {"open": sem[0], "slot 0": sem[1], "slot 1": sem[2], "slot n-1": sem[-2], "close": sem[-1], "text": text}
    g = torch.Generator().manual_seed(0)
    for case in rules["cases"]:
        scores = torch.randn(1, model.vocab_size, generator=g)
        before = scores.clone()
        out = proc(torch.tensor([[text, name_to_id[case["last"]]]]), scores)
        changed = (out != before).nonzero()[:, 1].tolist()
        if case["forced"] is None:
            assert torch.all(out[0, sem[1:]] == rules["held_value"])
            assert set(changed) <= set(sem[1:]) and out[0, sem[0]] == before[0, sem[0]]  # <t5> is left to the model
        else:
            target = name_to_id[case["forced"]]
            assert changed == [target] and out[0, target] == before.max() + rules["forced_boost"]
            assert int(out.argmax()) == target
    # "held" is 0.0, not forbidden: a model whose every score is negative writes a query slot there
    scores = torch.full((1, model.vocab_size), -5.0)
    assert int(proc(torch.tensor([[text]]), scores).argmax()) in sem[1:]


class Script:
    """Makes the tiny LLM write a given token sequence: adds +100 to the scripted token's logit at each
    generation step (a hook on the LM head). The published processors still act on top of it."""

    def __init__(self, model: AudioStoryModel, script: list[int]) -> None:
        self.script, self.step = script, 0
        self.handle = model.llm.get_output_embeddings().register_forward_hook(self)

    def __call__(self, _module, _inputs, logits):
        if self.step < len(self.script):
            logits = logits.clone()
            logits[:, -1, self.script[self.step]] += 100.0
        self.step += 1
        return logits


def scripted(model: AudioStoryModel, pieces: list[str], garbage: int) -> list[int]:
    """Token ids for the fixture's symbolic pieces; the query slots are scripted as ``garbage`` (a text token),
    so only the published processors can put the slots there."""
    ids, out = model.token_ids, []
    specials = {t: model.tokenizer.convert_tokens_to_ids(t) for t in T.added_tokens() + [T.IM_END]}
    for piece in pieces:
        if piece == "SEM":
            out += [garbage] * len(ids.semantic)
        elif piece == "RES":
            out += [garbage] * len(ids.residual)
        elif piece in specials:
            out.append(specials[piece])
        else:
            out += model.tokenizer.encode(piece, add_special_tokens=False)
    return out


def test_faithful_plan_reads_the_output_as_published(model):
    ex = FIXTURE["parsing"]["examples"][0]
    assert (FIXTURE["parsing"]["n"], FIXTURE["parsing"]["m"]) == (model.config.n_semantic, model.config.n_residual)
    garbage = model.tokenizer.encode("rain", add_special_tokens=False)[0]
    script = scripted(model, ex["pieces"], garbage)
    planner = AudioStoryPlanner(model, preset="faithful", crossfade=FIXTURE["durations"]["crossfade_sec"])
    request = StoryRequest.from_text("rain, then thunder", 20.0)
    hook = Script(model, script)
    try:
        plan = planner.plan(request)
    finally:
        hook.handle.remove()
    assert plan.reasoning == ex["reasoning"]
    assert [(e.caption, e.duration) for e in plan.events] == [(e["caption"], e["duration"]) for e in ex["events"]]
    assert [e.start for e in plan.events] == [0.0, 12.5] and [e.tail for e in plan.events] == [3.0, 0.0]
    assert planner.assigns_tails
    # the processors replaced the scripted garbage by the full query runs
    out = model.tokenizer.encode(planner.last_output, add_special_tokens=False)
    assert out.count(model.token_ids.semantic[-1]) == 2 and out.count(model.token_ids.residual[-1]) == 2
    # conditions: the bridge on the last layer's states at the slots (here from one full forward pass)
    prompt = model.tokenizer.encode(planner.prompt_for(request)[0], add_special_tokens=False)
    seq = torch.tensor([prompt + out])
    with torch.no_grad():
        hidden = model.hidden_states(seq)[0]
        sem = [i for i, t in enumerate(seq[0].tolist()) if t in model.token_ids.semantic]
        res = [i for i, t in enumerate(seq[0].tolist()) if t in model.token_ids.residual]
        n, m = model.config.n_semantic, model.config.n_residual
        for k, cond in enumerate(plan.conditioning):
            want = model.bridge(hidden[sem[k * n:(k + 1) * n]][None], hidden[res[k * m:(k + 1) * m]][None])[0]
            torch.testing.assert_close(cond, want, rtol=0, atol=1e-5)


def test_faithful_decoding_uses_the_models_own_generation_config(model):
    """Greedy decoding with the LLM's generation config (here a repetition penalty, as Qwen2.5-Instruct ships one; a large one so it shows on a random model)
    and the published processors after it, checked against a plain step-by-step loop."""
    from transformers import RepetitionPenaltyLogitsProcessor

    planner = AudioStoryPlanner(model, preset="faithful", max_new_tokens=24)
    prompt = model.tokenizer.encode(planner.prompt_for(StoryRequest.from_text("rain", 5.0))[0], add_special_tokens=False)
    sem, res = published_runs(model.token_ids)
    old = model.llm.generation_config.repetition_penalty
    try:
        model.llm.generation_config.repetition_penalty = 30.0
        with torch.no_grad():
            generated, hidden = planner._generate_published(torch.tensor([prompt]), None)
            seq = list(prompt)
            procs = [RepetitionPenaltyLogitsProcessor(30.0), PublishedQueryRun(sem), PublishedQueryRun(res)]
            for _ in range(len(generated)):
                x = torch.tensor([seq])
                scores = model.llm(input_ids=x).logits[:, -1].float()
                for p in procs:
                    scores = p(x, scores)
                seq.append(int(scores.argmax()))
                if seq[-1] == model.token_ids.eos:
                    break
            full = model.hidden_states(torch.tensor([seq]))[0, len(prompt):]
        assert generated == seq[len(prompt):]
        torch.testing.assert_close(hidden, full[: hidden.shape[0]], rtol=0, atol=1e-5)
        model.llm.generation_config.repetition_penalty = 1.0
        with torch.no_grad():
            plain, _ = planner._generate_published(torch.tensor([prompt]), None)
        assert plain != generated  # the penalty is really applied
    finally:
        model.llm.generation_config.repetition_penalty = old


def test_duration_and_crossfade_arithmetic(dit):
    d = FIXTURE["durations"]
    request = StoryRequest.from_text("x", 60.0)
    renderer = DiTRenderer(dit, device="cpu")
    for ex in d["examples"]:
        assert published_render_seconds(ex["durations"], d["crossfade_sec"]) == ex["rendered"]
        items = [(f"event {i}", s) for i, s in enumerate(ex["durations"])]
        plan = published_plan("", items, [torch.zeros(2, 2)] * len(items), request, d["crossfade_sec"])
        assert [e.start for e in plan.events] == ex["starts"]
        assert [e.render_duration for e in plan.events] == ex["rendered"]  # exactly, as floats
        for a, b in zip(plan.events, plan.events[1:]):
            assert a.start + a.duration == b.start
        # every event at the full 645 frames from seed 0; the duration embedding clamps 31 s to 30 s itself
        assert all(renderer.frames_for(e) == FIXTURE["dit"]["audio_seq_len"] for e in plan.events)
        assert all(renderer.seed_for(0, i) == FIXTURE["dit"]["seed_each_event"] for i in range(len(plan.events)))
    emb = dit.duration_embedder
    assert torch.equal(emb(torch.tensor([31.0])), emb(torch.tensor([30.0])))


def test_unknown_preset_is_one_clear_error():
    from audiostory_core.errors import DubkitError

    with pytest.raises(DubkitError, match="unknown preset 'turbo'; choose one of faithful, fast"):
        get_preset("turbo")
    assert get_preset(None, "faithful") is FAITHFUL and get_preset("FAST") is FAST


def test_faithful_plans_continuation_and_scene_requests(model):
    """The published script has text only; the faithful preset still plans the other two modes: the audio
    prompt reaches the LLM through its input embeddings, and events are cut at scene boundaries (with tails
    where their layer continues) while keeping the durations the LLM wrote."""
    from audiostory_core.request import Scene

    ex = FIXTURE["parsing"]["examples"][0]
    garbage = model.tokenizer.encode("rain", add_special_tokens=False)[0]
    script = scripted(model, ex["pieces"], garbage)

    m = AudioStoryModel.tiny(seed=2, with_dit=False, with_audio_encoder=True)
    plans = []
    for audio in (np.sin(np.arange(16000, dtype=np.float32) / 7.0)[None], np.zeros((1, 16000), np.float32)):
        hook = Script(m, scripted(m, ex["pieces"], m.tokenizer.encode("rain", add_special_tokens=False)[0]))
        try:
            plans.append(AudioStoryPlanner(m, preset="faithful").plan(StoryRequest.from_audio(audio, 16000, 19.5)))
        finally:
            hook.handle.remove()
    assert [(e.caption, e.duration) for e in plans[0].events] == [("steady rain", 12.5), ("thunder", 7.0)]
    assert not torch.allclose(plans[0].conditioning[0], plans[1].conditioning[0])  # the audio is heard

    scenes = [Scene(0.0, 10.0, "rain on a window"), Scene(10.0, 19.5, "a storm")]
    hook = Script(model, script)
    try:
        plan = AudioStoryPlanner(model, preset="faithful").plan(StoryRequest.from_scenes(scenes, 19.5))
    finally:
        hook.handle.remove()
    got = [(e.caption, e.start, e.end, e.scene_index) for e in plan.events]
    assert got == [("steady rain", 0.0, 10.0, 0), ("steady rain (continued)", 10.0, 12.5, 1),
                   ("thunder", 12.5, 19.5, 1)]
    assert len(plan.conditioning) == 3 and torch.equal(plan.conditioning[0], plan.conditioning[1])
    assert [e.tail for e in plan.events] == [0.0, 3.0, 0.0]  # no crossfade into a piece shorter than 3 s
