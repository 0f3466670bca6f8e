"""Training AudioStory: data build and manifest validation, the three stages on a tiny synthetic data set (foley
bank clips with their descriptions, combined into stories), resume, accumulation and two processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from audiostory_core.train.build import build_dataset
from audiostory_core.train.cli import main as train_main
from audiostory_core.train.config import load_config, parse_config
from audiostory_core.train.errors import ConfigError, DataError
from audiostory_core.train.manifest import read_manifest
from audiostory_core.train.metrics import read_metrics
from tests.train_data import make_story_folder, make_tiny_t5

warnings.filterwarnings("ignore", message=".*weight_norm.*")
pytestmark = pytest.mark.usefixtures("torch_one_thread")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    folder = make_story_folder(root / "stories", stories=4, events=3)
    report = build_dataset(folder)
    return {"root": root, "folder": folder, "manifest": report.manifest, "t5": make_tiny_t5(root / "t5"),
            "cache": root / "cache"}


def config(data, out: Path, stage: int, *, init: str = "tiny", steps: int = 20, overrides=None, **train):
    """A run config on the tiny data set; the latent cache is shared by every run (same tiny VAE)."""
    model = {"init": init, "t5": str(data["t5"])}
    if overrides is not None:
        model["overrides"] = overrides
    return {"stage": stage, "output": str(out), "model": model,
            "data": {"manifest": str(data["manifest"]), "cache": str(data["cache"])},
            "train": {"steps": steps, "batch_size": 4, "lr": 3e-3, "max_grad_norm": 10.0, **train}}


def run(cfg: dict):
    from audiostory_core.train.loop import train

    return train(parse_config(cfg), log=lambda _m: None, progress_bar=False)


def assert_falls(result, by=0.05):
    """Evaluation losses (fixed noise, no dropout: they move only with what was learned) before and after: every
    loss lower, the total by at least ``by``; the training curve's last quarter below its first too."""
    before, after = result.eval_rows[0], result.eval_rows[-1]
    assert (before["step"], after["step"]) == (result.rows[0]["step"] - 1, result.rows[-1]["step"])
    for key in ("lm", "rec", "flow"):
        assert after[key] < before[key], f"{key} did not fall: {before[key]:.4f} → {after[key]:.4f}"
    assert after["loss"] < before["loss"] * (1 - by), f"loss fell too little: {before['loss']:.4f} → {after['loss']:.4f}"
    q = max(1, len(result.rows) // 4)
    first, last = (sum(r["loss"] for r in rows) / q for rows in (result.rows[:q], result.rows[-q:]))
    assert last < first, (first, last)


# ----------------------------------------------------------------------------------------------- data


def test_data_build_writes_the_captioned_events_of_each_file(data):
    manifest = read_manifest(data["manifest"])
    assert [ex.id for ex in manifest.examples] == ["story00", "story01", "story02", "story03"]
    ex = manifest.examples[0]
    labels = [line.split("\t") for line in (data["folder"] / "story00.txt").read_text().splitlines()]
    assert [(e.start, e.end, e.caption) for e in ex.events] == [(float(a), float(b), c) for a, b, c in labels]
    assert manifest.resolve(ex.audio) == data["folder"] / "story00.wav"
    import soundfile as sf

    assert ex.duration == pytest.approx(sf.info(str(data["folder"] / "story00.wav")).duration, abs=1e-6)
    assert ex.instruction.startswith(ex.events[0].caption)  # no instruction given: the captions in order


def test_data_build_sidecar_scenes_become_the_instruction(tmp_path):
    folder = make_story_folder(tmp_path / "s", stories=1, events=2)
    scenes = {"scenes": [{"start": 0.0, "end": 1.0, "description": "a man closes a door"}]}
    (folder / "story00.json").write_text(json.dumps(scenes))
    ex = read_manifest(build_dataset(folder).manifest).examples[0]
    assert ex.instruction is None and "Scene 1 from 0.00s to 1.00s: a man closes a door." in ex.prompt_text()


@pytest.mark.parametrize("labels, message", [
    ("0.0\t0.5\ta door\n0.9\t0.4\ta bell\n", "story00.txt line 2: the event ends at 0.4 s, not after its start 0.9 s"),
    ("0.0\t0.5\ta door\n0.5\t99\ta bell\n", "story00.txt line 2: the event ends at 99.0 s but the audio lasts"),
    ("0.0\tabc\ta door\n", "story00.txt line 1: the end time 'abc' is not a number of seconds"),
    ("0.0\t0.5\t\n", "story00.txt line 1: the caption is empty"),
    ("0.0 0.5\n", "story00.txt line 1: expected 'start<TAB>end<TAB>caption'"),
])
def test_bad_caption_files_name_the_line(tmp_path, labels, message):
    folder = make_story_folder(tmp_path / "s", stories=1, events=2)
    (folder / "story00.txt").write_text(labels)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_dataset(folder)
    assert not (folder / "manifest.jsonl").exists()  # nothing half-written


def test_audio_without_captions_is_an_error(tmp_path):
    folder = make_story_folder(tmp_path / "s", stories=2, events=2)
    (folder / "story01.txt").unlink()
    with pytest.raises(DataError, match=r"story01.wav has no caption file"):
        build_dataset(folder)


GOOD = {"id": "a", "instruction": "x", "duration": 2.0, "audio": "story00.wav",
        "events": [{"caption": "a door", "start": 0.0, "end": 1.0}]}


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: not valid JSON"),
    (json.dumps({**GOOD, "id": "b", "events": []}), "line 2: events: List should have at least 1 item"),
    (json.dumps({**GOOD, "id": "b", "events": [{"caption": "x", "start": 1.5, "end": 2.5}]}),
     "line 2: event 0 ends at 2.5 s, after the story's 2.0 s"),
    (json.dumps({**GOOD, "id": "b", "events": [{"caption": "x", "start": 1.0}]}), "line 2: events.0: give the event's"),
    (json.dumps(GOOD), "line 2: id 'a' is already used on line 1"),
    (json.dumps({**GOOD, "id": "b", "instrction": "y"}), "line 2: instrction: Extra inputs are not permitted"),
    (json.dumps({**GOOD, "id": "b", "audio": "missing.wav"}), "line 2: audio file .*missing.wav does not exist"),
    (json.dumps({**GOOD, "id": "b", "events": [{"caption": "a <t5> b", "start": 0, "end": 1}]}),
     "line 2: events.0.caption: .*markup tag"),
])
def test_bad_manifest_lines_give_one_error_naming_the_line(data, tmp_path, line, message):
    path = data["folder"] / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    try:
        with pytest.raises(DataError, match=message) as err:
            read_manifest(path)
        assert str(err.value).count("\n") == 0 and str(path) in str(err.value)
    finally:
        path.unlink()


def test_config_errors_name_the_key(tmp_path, data):
    good = config(data, tmp_path / "o", 1)
    bad = {**good, "train": {**good["train"], "stpes": 3}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=r"c.yaml: train.stpes: unknown key \(did you mean 'steps'\?\)"):
        load_config(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"stage: Input should be 1, 2 or 3"):
        parse_config({**good, "stage": 4})
    with pytest.raises(ConfigError, match=r"train.lr: Input should be greater than 0"):
        parse_config({**good, "train": {**good["train"], "lr": -1}})
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(good))
    cfg = load_config(tmp_path / "g.yaml", max_steps=7, seed=3)
    assert (cfg.train.steps, cfg.train.seed) == (7, 3)


def test_cli_prints_one_line_and_exits_1(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("stage: 1\noutput: o\n")
    with pytest.raises(SystemExit) as exit_info:
        train_main([str(tmp_path / "c.yaml")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "data: required key missing" in err
    with pytest.raises(SystemExit) as exit_info:
        train_main(["data", "build", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 1 and "is not a folder" in capsys.readouterr().err


def test_the_cache_encodes_once_and_then_only_what_changed(tmp_path):
    import soundfile as sf

    from audiostory_core.train.cache import build_cache
    from audiostory_core.train.start import tiny_model

    folder = make_story_folder(tmp_path / "s", stories=2, events=2)
    manifest = read_manifest(build_dataset(folder).manifest)
    dit = tiny_model(0).dit
    said: list[str] = []
    cache = build_cache(manifest, tmp_path / "c", dit, progress=said.append)
    assert said[-1].startswith("encoded 4 event(s)")
    ev = manifest.examples[0].events[1]
    from audiostory_core.train.cache import audio_spans

    mean, std = cache.latents(audio_spans(manifest)[0][1].key)
    assert mean.shape == std.shape == (dit.frames_for(ev.duration), dit.config.in_channels)
    said.clear()
    build_cache(manifest, tmp_path / "c", dit, progress=said.append)
    assert said == []  # nothing to encode
    audio, sr = sf.read(folder / "story01.wav")
    sf.write(folder / "story01.wav", audio * 0.5, sr, subtype="FLOAT")  # one file edited
    build_cache(manifest, tmp_path / "c", dit, progress=said.append)
    assert said == ["encoded 2 event(s) to latents (story01.wav)"]


def test_an_events_flow_loss_does_not_depend_on_what_it_is_batched_with():
    from audiostory_core.train.losses import flow_matching_loss
    from audiostory_core.train.start import tiny_model

    dit = tiny_model(0).dit
    torch.manual_seed(0)
    c = dit.config
    short, long_ = torch.randn(5, c.in_channels), torch.randn(9, c.in_channels)
    cond = torch.randn(2, 4, c.joint_attention_dim)
    noise = [torch.randn_like(short), torch.randn_like(long_)]
    lat, nz = torch.zeros(2, 9, c.in_channels), torch.zeros(2, 9, c.in_channels)
    lat[0, :5], lat[1], nz[0, :5], nz[1] = short, long_, noise[0], noise[1]
    mask = torch.tensor([[True] * 5 + [False] * 4, [True] * 9])
    sigma, seconds = torch.tensor([0.3, 0.7]), torch.tensor([0.16, 0.29])
    with torch.no_grad():
        both = flow_matching_loss(dit, cond, lat, nz, sigma, seconds, mask)
        alone = flow_matching_loss(dit, cond[:1], short[None], noise[0][None], sigma[:1], seconds[:1],
                                   torch.ones(1, 5, dtype=torch.bool))
    assert torch.allclose(both[0], alone[0], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- stages


@pytest.fixture(scope="module")
def stage1(data):
    return run(config(data, data["root"] / "s1", 1, steps=30, save_every=15))


def test_stage1_losses_fall_and_the_model_is_saved_in_our_format(stage1, data):
    assert_falls(stage1)
    from audiostory_core.models.audiostory import AudioStoryModel

    model = AudioStoryModel.from_pretrained(stage1.final)
    assert model.dit is not None and model.config.lora_r > 0
    rows = read_metrics(stage1.metrics)
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert rows[-1]["loss"] == pytest.approx(stage1.rows[-1]["loss"], rel=1e-6)
    assert all(r["tokens_per_s"] > 0 and r["frames_per_s"] > 0 for r in rows)
    assert (stage1.output / "checkpoint-000015" / "state" / "optimizer.bin").is_file()


@pytest.mark.slow
def test_stage2_from_stage1_then_stage3_from_a_stage2_checkpoint(stage1, data):
    s2 = run(config(data, data["root"] / "s2", 2, init=str(stage1.final), steps=20, save_every=20))
    assert_falls(s2)
    assert s2.rows[0]["lm"] < stage1.rows[0]["lm"] * 0.8  # it started from the trained stage-1 model
    checkpoint = s2.output / "checkpoint-000020"
    s3 = run(config(data, data["root"] / "s3", 3, init=str(checkpoint), steps=20, batch_size=2))
    assert_falls(s3)
    fresh = run(config(data, data["root"] / "s3-fresh", 3, steps=1, batch_size=2))
    assert s3.rows[0]["lm"] < fresh.rows[0]["lm"] * 0.8  # stage 3 builds on stage 2
    from audiostory_core.models.audiostory import AudioStoryModel
    from audiostory_core.plan.llm_planner import AudioStoryPlanner
    from audiostory_core.request import StoryRequest

    model = AudioStoryModel.from_pretrained(s3.final)  # what `--model runs/stage3/final` loads
    plan = AudioStoryPlanner(model).plan(StoryRequest.from_text("rain, then a door slams", 3.0))
    assert plan.events and plan.conditioning[0].shape == (model.config.n_semantic, model.config.cond_width)


def test_frozen_dit_stays_unchanged(stage1, data):
    from safetensors.torch import load_file

    out = run(config(data, data["root"] / "frozen", 2, init=str(stage1.final), steps=2, freeze_dit=True))
    before, after = load_file(stage1.final / "dit" / "model.safetensors"), load_file(out.final / "dit" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_stage1_from_base_qwen_and_dit_folders_with_gradient_checkpointing(data, tmp_path):
    """The from-scratch path (a base Qwen folder without AudioStory's tokens + a DiT folder); activation
    checkpointing changes memory, not results."""
    from transformers import Qwen2ForCausalLM

    from audiostory_core.models import tokens as T
    from audiostory_core.models.audiostory import AudioStoryModel
    from audiostory_core.models.dit import TangoFluxDiT
    from audiostory_core.models.llm import qwen2_config
    from audiostory_core.train.start import tiny_model

    tiny = tiny_model(0)
    base_tok = T.build_tiny_tokenizer(with_audiostory_tokens=False)
    torch.manual_seed(1)
    Qwen2ForCausalLM(qwen2_config(tiny.config, len(base_tok))).save_pretrained(tmp_path / "qwen")
    base_tok.save_pretrained(tmp_path / "qwen")
    TangoFluxDiT(tiny.dit.config).save_pretrained(tmp_path / "dit")
    losses = []
    for checkpointing in (False, True):
        cfg = config(data, tmp_path / f"gc{checkpointing}", 1, steps=2, gradient_checkpointing=checkpointing,
                     overrides={"n_semantic": 4, "n_residual": 2, "lora_r": 4, "lora_dropout": 0.0, "fusion_heads": 4})
        cfg["model"].update(init="tiny", qwen=str(tmp_path / "qwen"), dit=str(tmp_path / "dit"))
        cfg["data"]["cache"] = str(tmp_path / "cache")
        losses.append([r["loss"] for r in run(cfg).rows])
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    trained = AudioStoryModel.from_pretrained(tmp_path / "gcTrue" / "final")
    assert len(trained.tokenizer) == len(base_tok) + len(T.added_tokens())
    assert trained.config.lora_r == 4 and trained.config.n_semantic == 4


# ----------------------------------------------------------------------------------------------- running


@pytest.mark.slow
def test_resume_from_a_mid_run_checkpoint_gives_the_same_curve(data):
    """LoRA dropout stays on (0.05): the RNG state must come back with the checkpoint too."""
    whole = run(config(data, data["root"] / "whole", 1, steps=10, save_every=5, scheduler="cosine", warmup_steps=2))
    cfg = config(data, data["root"] / "resumed", 1, steps=10, scheduler="cosine", warmup_steps=2)
    resumed = run({**cfg, "resume": str(whole.output / "checkpoint-000005")})
    assert [r["step"] for r in resumed.rows] == list(range(6, 11))
    for a, b in zip(whole.rows[5:], resumed.rows):
        for key in ("loss", "lm", "rec", "flow", "lr"):
            assert b[key] == a[key], (a["step"], key)  # bit for bit
    from safetensors.torch import load_file

    x, y = load_file(whole.final / "bridge.safetensors"), load_file(resumed.final / "bridge.safetensors")
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_a_second_run_into_the_same_output_must_say_resume(stage1, data):
    with pytest.raises(ConfigError, match=r"already holds a run; continue it with --resume latest"):
        run(config(data, stage1.output, 1, steps=30))


@pytest.mark.slow
def test_gradient_accumulation_equals_the_doubled_batch(data):
    no_dropout = {"lora_dropout": 0.0}
    big = run(config(data, data["root"] / "b4", 1, steps=6, overrides=no_dropout))
    accum_cfg = config(data, data["root"] / "b2x2", 1, steps=6, batch_size=2, grad_accum=2, overrides=no_dropout)
    accum_cfg["data"]["num_workers"] = 1  # loading in a worker process changes nothing either
    accum = run(accum_cfg)
    for a, b in zip(big.rows, accum.rows):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)


@pytest.mark.slow
def test_two_processes_equal_one_with_the_doubled_batch(data, tmp_path):
    no_dropout = {"lora_dropout": 0.0}
    one = run(config(data, tmp_path / "one", 1, steps=6, overrides=no_dropout))
    two_cfg = config(data, tmp_path / "two", 1, steps=6, batch_size=2, overrides=no_dropout, save_every=3)
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(two_cfg))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "audiostory_core.train", str(tmp_path / "two.yaml")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout + proc.stderr
    assert (tmp_path / "two" / "checkpoint-000003" / "state" / "random_states_1.pkl").is_file()  # every rank's RNG
    two = read_metrics(tmp_path / "two" / "metrics.csv")
    assert len(two) == 6
    for a, b in zip(one.rows, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
    from safetensors.torch import load_file

    x, y = load_file(one.final / "bridge.safetensors"), load_file(tmp_path / "two" / "final" / "bridge.safetensors")
    assert all(torch.allclose(x[k], y[k], rtol=1e-4, atol=1e-6) for k in x)
