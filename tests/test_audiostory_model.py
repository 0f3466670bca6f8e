"""AudioStoryModel: our save/load round trip, the published AudioStory-3B layout, and text → audio end to end."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore", message=".*weight_norm.*")

from audiostory_core.errors import CheckpointError
from audiostory_core.models import tokens as T
from audiostory_core.models.audiostory import AudioStoryModel, _unwrapped_base_state
from audiostory_core.models.published import detect_layout, load_model, load_published, to_published_state
from audiostory_core.models.config import AudioStoryConfig
from audiostory_core.models.dit import DiTConfig
from audiostory_core.pipeline import AudioStoryPipeline
from audiostory_core.plan.llm_planner import AudioStoryPlanner
from audiostory_core.render.dit_renderer import DiTRenderer
from audiostory_core.request import StoryRequest

TINY_VAE = DiTConfig.tiny().vae
REQUEST = StoryRequest.from_text("footsteps on gravel, then a door slams and a dog barks", 41.0)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def published_compatible_config() -> AudioStoryConfig:
    """Tiny, with a DiT whose sizes the published TangoFlux config.json can express (Fourier width 256 and the
    RoPE split the published loader derives from the head width) and the published 8 fusion heads."""
    cfg = AudioStoryConfig.tiny()
    cfg.dit.update(duration_fourier_dim=256, axes_dims_rope=[2, 6, 8])
    cfg.fusion_heads = 8  # hard-coded in the published model
    return cfg


@pytest.fixture(scope="module")
def model() -> AudioStoryModel:
    return AudioStoryModel.tiny(seed=3, config=published_compatible_config())


@pytest.fixture(scope="module")
def reference(model):
    return AudioStoryPlanner(model).plan(REQUEST)


def planner_like(loaded: AudioStoryModel, source: AudioStoryModel) -> AudioStoryPlanner:
    """A planner for ``loaded`` with ``source``'s decoding limits (limits are not part of a checkpoint)."""
    c = source.config
    return AudioStoryPlanner(loaded, max_new_tokens=c.max_new_tokens, max_events=c.max_events,
                             max_reasoning_tokens=c.max_reasoning_tokens, max_caption_tokens=c.max_caption_tokens)


def same_plan(a, b, atol: float = 0.0) -> None:
    assert a.to_dict() == b.to_dict()
    assert len(a.conditioning) == len(b.conditioning)
    for x, y in zip(a.conditioning, b.conditioning):
        assert torch.allclose(x, y, atol=atol, rtol=0), (x - y).abs().max()


# ----------------------------------------------------------------------------------------------- our format


def test_save_load_round_trip_gives_the_same_plan(model, reference, tmp_path):
    out = model.save_pretrained(tmp_path / "m")
    for name in ("audiostory.json", "tokenizer/tokenizer.json", "llm/config.json", "llm/model.safetensors",
                 "llm/adapter/adapter_config.json", "llm/adapter/adapter_model.safetensors", "bridge.safetensors",
                 "dit/config.json", "dit/model.safetensors"):
        assert (out / name).is_file(), name
    loaded = AudioStoryModel.from_pretrained(out)
    same_plan(AudioStoryPlanner(loaded).plan(REQUEST), reference)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert isinstance(load_model(out), AudioStoryModel)  # the CLI's entry point detects our layout


def test_saved_llm_folder_is_plain_hugging_face(model, tmp_path):
    from transformers import Qwen2ForCausalLM

    model.save_pretrained(tmp_path / "m")
    base = Qwen2ForCausalLM.from_pretrained(str(tmp_path / "m" / "llm"), local_files_only=True)
    assert base.get_input_embeddings().weight.shape[0] == len(model.tokenizer)
    assert json.loads((tmp_path / "m" / "llm" / "adapter" / "adapter_config.json").read_text())["r"] == 4


def test_incomplete_folder_is_a_checkpoint_error(model, tmp_path):
    out = model.save_pretrained(tmp_path / "m")
    (out / "bridge.safetensors").unlink()
    with pytest.raises(CheckpointError, match="bridge.safetensors"):
        AudioStoryModel.from_pretrained(out)
    with pytest.raises(CheckpointError, match="neither"):
        load_model(tmp_path)


# ----------------------------------------------------------------------------------------------- published layout


def write_published(root: Path, model: AudioStoryModel, *, state_edit=None, yaml_edit=None) -> tuple[Path, Path, Path]:
    """The published layout from ``model``'s weights: ckpt/audiostory_3b (config.yaml + pytorch_model.bin),
    ckpt/Flux_detokenizer (TangoFlux config.json + VAE safetensors), ckpt/Qwen2.5-3B-Instruct (base LLM and
    tokenizer without AudioStory's tokens)."""
    model_dir, dit_dir, qwen_dir = root / "audiostory_3b", root / "Flux_detokenizer", root / "Qwen2.5-3B-Instruct"
    for d in (model_dir, dit_dir, qwen_dir):
        d.mkdir(parents=True)

    # Qwen: the base model before AudioStory resized it.
    from transformers import Qwen2ForCausalLM

    base_tok = T.build_tiny_tokenizer(with_audiostory_tokens=False)
    base_tok.save_pretrained(str(qwen_dir))
    n0 = len(base_tok)
    base_state = _unwrapped_base_state(model.llm.state_dict())
    base_state = {k: (v[:n0] if "embed_tokens" in k or "lm_head" in k else v) for k, v in base_state.items()}
    cfg = model.llm.get_base_model().config.to_dict()
    cfg["vocab_size"] = n0
    base = Qwen2ForCausalLM(type(model.llm.get_base_model().config).from_dict(cfg))
    base.load_state_dict(base_state, strict=False)
    base.save_pretrained(str(qwen_dir))

    # The DiT folder: TangoFlux config + the VAE under plain Oobleck names.
    c = model.dit.config
    (dit_dir / "config.json").write_text(json.dumps({
        "num_layers": c.num_layers, "num_single_layers": c.num_single_layers, "in_channels": c.in_channels,
        "attention_head_dim": c.attention_head_dim, "joint_attention_dim": c.joint_attention_dim,
        "num_attention_heads": c.num_attention_heads, "audio_seq_len": 645, "max_duration": 30,
    }))
    vae = {k[len("vae."):]: v.contiguous() for k, v in model.dit.state_dict().items() if k.startswith("vae.")}
    save_file(vae, str(dit_dir / "model.safetensors"))

    # The whole-model state dict under the published names, plus a SEED-X resampler the text path never uses.
    state = to_published_state(model)
    state["seedx.input_resampler.proj.weight"] = torch.zeros(3, 3)
    if state_edit:
        state_edit(state)
    torch.save(state, model_dir / "pytorch_model.bin")
    conf = {
        "tokenizer": {"_target_": "src.models.tokenizer.init_qwen_tokenizer.init_tokenizer",
                      "pretrained_model_path": "ckpt/Qwen2.5-3B-Instruct"},
        "llm_model": {
            "_target_": "src.models.mllm.peft_models.get_peft_model_with_resize_embedding",
            "model": {"_target_": "transformers.AutoModelForCausalLM.from_pretrained",
                      "pretrained_model_name_or_path": "ckpt/Qwen2.5-3B-Instruct"},
            "peft_config": {"_target_": "peft.LoraConfig", "r": 4, "lora_alpha": 4, "lora_dropout": 0.05,
                            "target_modules": list(model.config.lora_targets),
                            "modules_to_save": list(model.config.lora_full_trained), "task_type": "CAUSAL_LM"},
            "vocab_size": len(model.tokenizer),
        },
        "agent_model": {"_target_": "src.models.mllm.modeling_audiostory_llm.AudioStory_llm.from_pretrained",
                        "t5_feature_scale": 10.0, "model_dims": model.config.hidden_size},
        "seedx_dit_model_cfg": {"_target_": "src.models.mllm.modeling_audiostory_unified.AudioStory_unified"},
        "train_dataset": {"datapipes": [{"num_t5_out_tokens": model.config.n_semantic,
                                         "num_aud_out_tokens": model.config.n_residual}]},
    }
    if yaml_edit:
        yaml_edit(conf)
    (model_dir / "config.yaml").write_text(yaml.safe_dump(conf))
    return model_dir, dit_dir, qwen_dir


def test_published_key_names_are_the_published_module_tree(model):
    state = to_published_state(model)
    lm = "seedx.llm.base_model.model.model.layers.0."
    for key in (
        lm + "self_attn.q_proj.weight",  # peft 0.4: the wrapped layer keeps its own name
        lm + "self_attn.q_proj.bias",
        lm + "self_attn.q_proj.lora_A.default.weight",
        lm + "mlp.down_proj.lora_B.default.weight",
        lm + "input_layernorm.modules_to_save.default.weight",
        lm + "post_attention_layernorm.original_module.weight",
        "seedx.llm.base_model.model.model.norm.modules_to_save.default.weight",
        "seedx.llm.base_model.model.model.embed_tokens.weight",
        "seedx.projector.0.weight", "seedx.projector.2.bias",
        "seedx.audio_projector.0.weight", "seedx.audio_projector.2.weight",
        "multihead_attention.in_proj_weight", "multihead_attention.out_proj.weight",
        "tangoflux.fc.0.weight", "tangoflux.transformer.x_embedder.weight",
    ):
        assert key in state, key
    assert not any(".base_layer." in k for k in state)


def test_published_layout_loads_and_plans_like_the_source(model, reference, tmp_path):
    model_dir, dit_dir, qwen_dir = write_published(tmp_path, model)
    loaded = load_published(model_dir, dit_dir, qwen_dir, vae_config=TINY_VAE)
    report = loaded.load_report
    assert report.unmatched == [] and "seedx.input_resampler.proj.weight" in report.ignored
    assert loaded.config.n_semantic == 4 and loaded.config.n_residual == 2 and loaded.config.cond_width == 32
    same_plan(planner_like(loaded, model).plan(REQUEST), reference, atol=1e-5)
    for k, v in model.dit.state_dict().items():
        if k != "null_tokens":
            assert torch.equal(loaded.dit.state_dict()[k], v), k
    # load_model detects the layout and finds the sibling folders by their published names.
    again = load_model(model_dir, vae_config=TINY_VAE)
    same_plan(planner_like(again, model).plan(REQUEST), reference, atol=1e-5)


def test_one_layout_detector_names_every_model_folder(model, tmp_path):
    from dubkit.backends import is_audiostory_folder

    ours = model.save_pretrained(tmp_path / "ours")
    model_dir, dit_dir, _ = write_published(tmp_path / "pub", model)
    assert detect_layout(ours) == "dubkit-audiostory"
    assert detect_layout(model_dir) == "published-audiostory"
    assert detect_layout(dit_dir) == "dit" and detect_layout(ours / "dit") == "dit"
    assert detect_layout(tmp_path) is None
    assert [is_audiostory_folder(p) for p in (ours, model_dir, dit_dir, tmp_path)] == [True, True, False, False]


def _drop(key):
    return lambda s: s.pop(key)


LORA_B = "seedx.llm.base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight"


@pytest.mark.parametrize(
    "state_edit, yaml_edit, match",
    [
        (_drop(LORA_B), None, "missing.*lora_B"),
        (_drop("seedx.projector.0.weight"), None, "semantic_proj.0.weight"),
        (lambda s: s.__setitem__("seedx.audio_projector.2.weight", torch.zeros(7, 7)), None,
         "shape mismatch.*residual_proj.2.weight"),
        (lambda s: s.__setitem__("seedx.mystery.weight", torch.zeros(1)), None, "seedx.mystery.weight"),
        (_drop("tangoflux.fc.0.weight"), None, "missing.*(pooled_proj|fc.0).weight"),
        (None, lambda c: c["train_dataset"]["datapipes"][0].pop("num_t5_out_tokens"), "num_t5_out_tokens"),
        (None, lambda c: c["train_dataset"]["datapipes"][0].__setitem__("num_t5_out_tokens", 200), "t5_00100"),
    ],
    ids=["missing-lora", "missing-projector", "wrong-shape", "unknown-key", "missing-dit", "no-query-count",
         "more-queries-than-slots"],
)
def test_wrong_published_checkpoints_fail_clearly(model, tmp_path, state_edit, yaml_edit, match):
    model_dir, dit_dir, qwen_dir = write_published(tmp_path, model, state_edit=state_edit, yaml_edit=yaml_edit)
    with pytest.raises(CheckpointError, match=match):
        load_published(model_dir, dit_dir, qwen_dir, vae_config=TINY_VAE)


def test_missing_published_files_are_named(model, tmp_path):
    model_dir, dit_dir, qwen_dir = write_published(tmp_path, model)
    (model_dir / "pytorch_model.bin").rename(model_dir / "other.bin")
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        load_published(model_dir, dit_dir, qwen_dir, vae_config=TINY_VAE)
    (model_dir / "other.bin").rename(model_dir / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="Flux_detokenizer.*config.json|config.json"):
        load_published(model_dir, tmp_path / "nowhere", qwen_dir, vae_config=TINY_VAE)


def test_published_files_are_read_as_data_only(model, tmp_path):
    model_dir, dit_dir, qwen_dir = write_published(tmp_path, model)
    marker = tmp_path / "executed"
    (model_dir / "config.yaml").write_text(f"tokenizer: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(CheckpointError, match="config.yaml"):
        load_published(model_dir, dit_dir, qwen_dir, vae_config=TINY_VAE)
    assert not marker.exists()

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    model_dir2, dit_dir2, qwen_dir2 = write_published(tmp_path / "b", model)
    torch.save({"x": Evil()}, model_dir2 / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights only"):
        load_published(model_dir2, dit_dir2, qwen_dir2, vae_config=TINY_VAE)
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------- end to end


def test_text_to_audio_end_to_end_exact_length_and_seeded(model):
    planner = AudioStoryPlanner(model)
    renderer = DiTRenderer(model.dit, steps=2, device="cpu")
    pipe = AudioStoryPipeline(planner, renderer, crossfade=0.5)
    req = StoryRequest.from_text("rain on a tin roof, then distant thunder", 3.3)
    a = pipe.generate(req, seed=7)
    b = pipe.generate(req, seed=7)
    c = pipe.generate(req, seed=8)
    sr = renderer.sample_rate
    assert a.sample_rate == sr and a.audio.shape == (2, round(3.3 * sr))
    assert np.isfinite(a.audio).all() and np.abs(a.audio).max() > 0
    assert np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)
    assert a.plan.planner == "audiostory-llm" and len(a.clips) == len(a.plan.events)


def test_round_trip_with_an_audio_encoder(tmp_path):
    m = AudioStoryModel.tiny(seed=5, with_dit=False, with_audio_encoder=True)
    req = StoryRequest.from_audio(np.sin(np.arange(8000, dtype=np.float32) / 9.0)[None], 8000, 9.0)
    before = AudioStoryPlanner(m).plan(req)
    out = m.save_pretrained(tmp_path / "m")
    assert (out / "audio_encoder" / "config.json").is_file() and not (out / "dit").exists()
    loaded = load_model(out)
    same_plan(AudioStoryPlanner(loaded).plan(req), before)


def test_key_mapping_table(model):
    from audiostory_core.models.published import map_published_key

    ours = model.state_dict()
    q = "model.layers.0.self_attn.q_proj"
    assert map_published_key(f"seedx.llm.base_model.model.{q}.weight", ours) == f"llm.base_model.model.{q}.base_layer.weight"
    assert map_published_key("seedx.llm.model.layers.0.self_attn.q_proj.bias", ours) == (
        f"llm.base_model.model.{q}.base_layer.bias"
    )  # the un-wrapped names the published loader renames
    assert map_published_key("multihead_attention.out_proj.bias", ours) == "bridge.fusion.out_proj.bias"
    assert map_published_key("seedx.audio_projector.0.weight", ours) == "bridge.residual_proj.0.weight"
    assert map_published_key("seedx.projector.1.weight", ours) is None  # GELU has no weights
    assert map_published_key("tangoflux.fc.0.weight", ours) is None  # the DiT loader's business


def test_dit_width_must_match_the_bridge():
    cfg = AudioStoryConfig.tiny()
    cfg.cond_width = 48
    with pytest.raises(CheckpointError, match="32-d condition tokens"):
        AudioStoryModel.tiny(config=cfg)


def test_round_trip_without_an_adapter(tmp_path):
    cfg = AudioStoryConfig.tiny(with_dit=False)
    cfg.lora_r = 0  # a plain (e.g. merged) LLM
    m = AudioStoryModel.tiny(seed=6, config=cfg)
    before = AudioStoryPlanner(m).plan(REQUEST)
    out = m.save_pretrained(tmp_path / "m")
    assert not (out / "llm" / "adapter").exists()
    same_plan(AudioStoryPlanner(AudioStoryModel.from_pretrained(out)).plan(REQUEST), before)


@pytest.mark.parametrize("part", ["llm/model.safetensors", "llm/adapter/adapter_model.safetensors"])
def test_a_damaged_llm_or_adapter_file_fails_instead_of_loading_random_weights(model, tmp_path, part):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "m"
    model.save_pretrained(folder)
    state = load_file(str(folder / part))
    dropped = [k for k in state if "layers.1." in k or "lora_B" in k][:3]
    assert dropped
    save_file({k: v for k, v in state.items() if k not in dropped}, str(folder / part), metadata={"format": "pt"})
    with pytest.raises(CheckpointError):
        AudioStoryModel.from_pretrained(folder)
