"""DiT renderer, sampling and checkpoint loading on tiny random models (CPU, seconds)."""
from __future__ import annotations

import json
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from audiostory_core.errors import CheckpointError, RenderError
from audiostory_core.models import published
from audiostory_core.models.dit import DiTConfig, T5TextEncoder, TangoFluxDiT
from audiostory_core.models.published import load_tangoflux_folder
from audiostory_core.plan.types import Plan, SubEvent
from audiostory_core.render.base import Renderer
from audiostory_core.render.dit_renderer import DiTRenderer, group_by_length

warnings.filterwarnings("ignore", message=".*weight_norm.*")
STEPS = 3
WIDTH = DiTConfig.tiny().joint_attention_dim


def make_dit(seed: int = 0) -> TangoFluxDiT:
    torch.manual_seed(seed)
    dit = TangoFluxDiT(DiTConfig.tiny()).eval()
    dit.set_null_tokens(torch.randn(dit.config.null_tokens, WIDTH) * 0.1, source="test")
    return dit


@pytest.fixture(scope="module")
def dit() -> TangoFluxDiT:
    return make_dit()


def renderer(dit: TangoFluxDiT, **kw) -> DiTRenderer:
    kw.setdefault("steps", STEPS)
    return DiTRenderer(dit, device="cpu", **kw)


def story(*durations: float, tail: float = 0.0) -> Plan:
    events = []
    t = 0.0
    for i, d in enumerate(durations):
        events.append(SubEvent(caption=f"sound {i} rain door", start=t, duration=d,
                               tail=tail if i < len(durations) - 1 else 0.0))
        t += d
    return Plan(reasoning="", events=events, duration=t)


def queries(n: int, tokens: int = 6, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(tokens, WIDTH, generator=g) for _ in range(n)]


# ---- lengths, determinism ------------------------------------------------------------------------------------
def test_clips_have_exact_lengths_at_the_vae_rate(dit):
    plan = story(0.37, 1.0, 2.013, tail=0.25)
    r = renderer(dit)
    assert isinstance(r, Renderer) and r.sample_rate == 8000
    clips = r.render(plan, queries(3), seed=0)
    assert len(clips) == 3
    for clip, event in zip(clips, plan.events):
        assert clip.event is event and clip.sample_rate == 8000 and clip.source == "dit"
        assert clip.audio.dtype == np.float32
        assert clip.audio.shape == (2, round(event.render_duration * 8000))
        assert np.isfinite(clip.audio).all() and np.abs(clip.audio).max() > 0


def test_same_seed_same_audio_other_seed_other_audio(dit):
    plan, cond = story(0.5, 0.8), queries(2)
    r = renderer(dit)
    a = r.render(plan, cond, seed=7)
    b = r.render(plan, cond, seed=7)
    c = r.render(plan, cond, seed=8)
    for x, y in zip(a, b):
        assert np.array_equal(x.audio, y.audio)
    assert not np.allclose(a[0].audio, c[0].audio)


def test_conditioning_changes_the_audio(dit):
    plan = story(0.6)
    r = renderer(dit)
    a = r.render(plan, queries(1, seed=1))[0].audio
    b = r.render(plan, queries(1, seed=2))[0].audio
    assert not np.allclose(a, b)


def test_save_load_round_trip_gives_identical_audio(dit, tmp_path):
    plan, cond = story(0.5, 0.9), queries(2)
    before = renderer(dit).render(plan, cond, seed=3)
    dit.save_pretrained(tmp_path / "dit")
    assert sorted(p.name for p in (tmp_path / "dit").iterdir()) == ["config.json", "model.safetensors"]
    loaded = TangoFluxDiT.from_pretrained(tmp_path / "dit")
    assert loaded.null_source == "test" and torch.equal(loaded.null_tokens, dit.null_tokens)
    after = renderer(loaded).render(plan, cond, seed=3)
    for x, y in zip(before, after):
        assert np.array_equal(x.audio, y.audio)


# ---- batching and latent lengths -----------------------------------------------------------------------------
def test_batched_rendering_equals_one_by_one(dit):
    # 1.0 / 0.9 / 0.8 s → 32 / 29 / 25 latent frames: one padded batch; different token counts too.
    plan = story(1.0, 0.9, 0.8)
    g = torch.Generator().manual_seed(5)
    cond = [torch.randn(n, WIDTH, generator=g) for n in (6, 3, 9)]
    batched = renderer(dit, batch_size=8)
    single = renderer(dit, batch_size=1)
    a = batched.render(plan, cond, seed=11)
    b = single.render(plan, cond, seed=11)
    assert batched.forward_calls == 1 and single.forward_calls == 3
    for x, y in zip(a, b):
        assert x.audio.shape == y.audio.shape
        np.testing.assert_allclose(x.audio, y.audio, atol=1e-4, rtol=0)


def test_each_event_is_denoised_at_the_length_it_needs(dit):
    plan = story(0.3, 1.0, 2.0, tail=0.5)
    seen: list[tuple[int, int]] = []
    hook = dit.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(tuple(kw["hidden_states"].shape[:2])), with_kwargs=True
    )
    try:
        renderer(dit, batch_size=1).render(plan, queries(3))
    finally:
        hook.remove()
    need = [dit.frames_for(e.render_duration) for e in plan.events]
    assert need == [-(-round(d * 8000) // 256) for d in (0.8, 1.5, 2.0)] == [25, 47, 63]
    # one forward per step per event, conditional + unconditional rows together, longest first
    assert seen == [(2, f) for f in sorted(need, reverse=True) for _ in range(STEPS)]


def test_grouping_bounds_padding():
    assert group_by_length([32, 29, 25], 8) == [[0, 1, 2]]
    assert group_by_length([10, 100, 95, 40], 8) == [[1, 2], [3], [0]]
    assert group_by_length([20] * 5, 2) == [[0, 1], [2, 3], [4]]


def test_guidance_one_runs_only_conditional_rows(dit):
    seen = []
    hook = dit.transformer.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        renderer(dit, guidance=1.0).render(story(0.4, 0.4), queries(2))
    finally:
        hook.remove()
    assert seen == [2] * STEPS


# ---- text conditioning with a tiny T5 ------------------------------------------------------------------------
WORDS = "sound 0 1 2 rain door thunder dog barks wind".split()


def make_t5_folder(path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>") \
        .save_pretrained(str(path))
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(vocab), d_model=WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    T5EncoderModel(cfg).save_pretrained(str(path))


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("flan-t5-tiny")
    make_t5_folder(path)
    return path


def test_text_conditioned_rendering_with_tiny_t5(dit, t5_dir):
    t5 = T5TextEncoder.from_pretrained(t5_dir)
    assert t5.empty_length == 1
    # the empty-prompt embedding does not depend on how far it is padded, so one stored copy serves all lengths
    torch.testing.assert_close(t5.null(4), t5.null(16)[:4])
    enc = t5.encode(["dog barks", "rain"])
    assert [e.shape for e in enc] == [(3, WIDTH), (2, WIDTH)]
    torch.testing.assert_close(enc[1], t5.encode(["rain"])[0])  # batching captions changes nothing

    r = DiTRenderer(dit, text_encoder=t5_dir, steps=STEPS, device="cpu")
    plan = Plan(reasoning="", duration=1.2, events=[
        SubEvent("dog barks", 0.0, 0.6), SubEvent("thunder", 0.6, 0.6)])
    clips = r.render(plan, None, seed=0)
    assert [c.audio.shape for c in clips] == [(2, 4800), (2, 4800)]
    other = r.render(Plan(reasoning="", duration=1.2, events=[
        SubEvent("wind", 0.0, 0.6), SubEvent("thunder", 0.6, 0.6)]), None, seed=0)
    assert not np.allclose(clips[0].audio, other[0].audio)
    np.testing.assert_allclose(clips[1].audio, other[1].audio, atol=1e-5)  # same caption, same slot seed
    # mixed: the first event conditioned by query tokens, the second by its caption
    mixed = r.render(plan, [queries(1)[0], None], seed=0)
    np.testing.assert_allclose(mixed[1].audio, clips[1].audio, atol=1e-5)


# ---- published folder ----------------------------------------------------------------------------------------
TINY_VAE = DiTConfig.tiny().vae


def published_state(dit: TangoFluxDiT) -> tuple[dict, dict]:
    """The tiny model's weights under the published TangoFlux names: (DiT part, VAE part)."""
    renames = published.TANGOFLUX_RENAMES
    sd = dit.state_dict()
    dit_part = {renames.get(k, k): v.clone() for k, v in sd.items() if not k.startswith("vae.") and k != "null_tokens"}
    vae_part = {k[len("vae."):]: v.clone() for k, v in sd.items() if k.startswith("vae.")}
    assert set(dit_part) >= {"fc.0.weight", "duration_emebdder.time_positional_embedding.0.weights",
                             "duration_emebdder.time_positional_embedding.1.bias", "transformer.x_embedder.weight"}
    assert "encoder.conv1.weight_v" in vae_part
    return dit_part, vae_part


def write_published_folder(path, dit: TangoFluxDiT, *, include_dit: bool = True) -> None:
    c = dit.config
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({
        "num_layers": c.num_layers, "num_single_layers": c.num_single_layers, "in_channels": c.in_channels,
        "attention_head_dim": c.attention_head_dim, "joint_attention_dim": c.joint_attention_dim,
        "num_attention_heads": c.num_attention_heads, "audio_seq_len": 645, "max_duration": 30,
        "uncondition": False, "text_encoder_name": "google/flan-t5-large",
    }))
    dit_part, vae_part = published_state(dit)
    state = dict(vae_part)
    if include_dit:
        state.update(dit_part)
        state["text_encoder.encoder.block.0.layer.0.SelfAttention.q.weight"] = torch.zeros(4, 4)  # ignored
    save_file({k: v.contiguous() for k, v in state.items()}, str(path / "model.safetensors"))


def test_published_folder_loads_and_renders_like_the_source(dit, tmp_path):
    write_published_folder(tmp_path / "dit", dit)
    loaded = load_tangoflux_folder(tmp_path / "dit", vae_config=TINY_VAE)
    ours = {k: v for k, v in dit.state_dict().items() if k != "null_tokens"}
    for k, v in ours.items():
        assert torch.equal(loaded.state_dict()[k], v), k
    loaded.set_null_tokens(dit.null_tokens.clone())
    plan, cond = story(0.5, 0.7), queries(2)
    for x, y in zip(renderer(dit).render(plan, cond, seed=2), renderer(loaded).render(plan, cond, seed=2)):
        assert np.array_equal(x.audio, y.audio)
    # from_pretrained recognises the published layout too
    assert isinstance(TangoFluxDiT.from_pretrained(tmp_path / "dit", vae_config=TINY_VAE), TangoFluxDiT)


def test_audiostory_layout_vae_in_folder_dit_in_whole_model_state(dit, tmp_path):
    write_published_folder(tmp_path / "dit", dit, include_dit=False)
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        load_tangoflux_folder(tmp_path / "dit", vae_config=TINY_VAE)
    dit_part, _ = published_state(dit)
    whole = {"tangoflux." + k: v for k, v in dit_part.items()}
    loaded = load_tangoflux_folder(tmp_path / "dit", dit_state=whole, vae_config=TINY_VAE)
    assert torch.equal(loaded.pooled_proj.weight, dit.pooled_proj.weight)
    assert torch.equal(loaded.vae.decoder.conv1.weight_v, dit.vae.decoder.conv1.weight_v)


def test_tangoflux_release_layout(dit, tmp_path):
    write_published_folder(tmp_path / "tf", dit, include_dit=False)
    dit_part, vae_part = published_state(dit)
    (tmp_path / "tf" / "model.safetensors").rename(tmp_path / "tf" / "vae.safetensors")
    save_file({k: v.contiguous() for k, v in dit_part.items()}, str(tmp_path / "tf" / "tangoflux.safetensors"))
    loaded = load_tangoflux_folder(tmp_path / "tf", vae_config=TINY_VAE)
    assert torch.equal(loaded.duration_embedder.freqs, dit.duration_embedder.freqs)


def test_wrong_folders_raise_checkpoint_errors_that_name_the_problem(dit, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        TangoFluxDiT.from_pretrained(tmp_path / "nowhere")
    write_published_folder(tmp_path / "a", dit)
    (tmp_path / "a" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_tangoflux_folder(tmp_path / "a", vae_config=TINY_VAE)

    # config says wider heads than the weights have → shape mismatches, named with expected shapes
    write_published_folder(tmp_path / "b", dit)
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    cfg["num_attention_heads"] = 4
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"shape mismatch.*expected \(") as err:
        load_tangoflux_folder(tmp_path / "b", vae_config=TINY_VAE)
    assert "model.safetensors" in str(err.value)

    # a truncated checkpoint (keys missing) and a foreign key
    dit_part, vae_part = published_state(dit)
    write_published_folder(tmp_path / "c", dit)
    state = {**dit_part, **vae_part}
    del state["transformer.proj_out.weight"], state["fc.0.bias"]
    state["lm_head.weight"] = torch.zeros(2, 2)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "c" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="lm_head.weight"):
        load_tangoflux_folder(tmp_path / "c", vae_config=TINY_VAE)
    del state["lm_head.weight"]
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "c" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"2 missing key\(s\): pooled_proj.bias, transformer.proj_out.weight"):
        load_tangoflux_folder(tmp_path / "c", vae_config=TINY_VAE)

    # a corrupt weights file and a config that is neither format
    (tmp_path / "c" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_tangoflux_folder(tmp_path / "c", vae_config=TINY_VAE)
    (tmp_path / "c" / "config.json").write_text(json.dumps({"hidden_size": 3}))
    with pytest.raises(CheckpointError, match="neither a dubkit DiT config nor a TangoFlux config"):
        TangoFluxDiT.from_pretrained(tmp_path / "c")


def test_renderer_rejects_bad_conditioning(dit):
    r = renderer(dit)
    with pytest.raises(RenderError, match="2 conditioning entries for 3 events"):
        r.render(story(0.3, 0.3, 0.3), queries(2))
    with pytest.raises(RenderError, match=r"expected \(tokens, 32\)"):
        r.render(story(0.3), [torch.zeros(4, 16)])
    with pytest.raises(RenderError, match="no text encoder"):
        r.render(story(0.3), None)
    with pytest.raises(RenderError, match="non-positive duration"):
        r.render(Plan(reasoning="", events=[SubEvent("x", 0.0, 0.0)], duration=0.0), queries(1))
    assert r.render(Plan(reasoning="", events=[], duration=0.0), None) == []


def test_flow_matching_loss_trains_the_dit():
    dit = make_dit(seed=3).train()
    g = torch.Generator().manual_seed(0)
    latents, tokens, seconds = torch.randn(2, 16, 8, generator=g), torch.randn(2, 5, WIDTH, generator=g), torch.tensor([1.0, 2.5])
    opt = torch.optim.Adam([p for n, p in dit.named_parameters() if not n.startswith("vae.")], lr=3e-3)
    losses = []
    for _ in range(8):
        loss = dit.flow_matching_loss(latents, tokens, seconds, generator=torch.Generator().manual_seed(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert dit.pooled_proj.weight.grad is not None and dit.duration_embedder.freqs.grad is not None
    assert losses[-1] < 0.8 * losses[0]
