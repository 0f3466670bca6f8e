"""Benchmark: training throughput of the three stages — LLM tokens/s and DiT latent frames/s (forward + backward
+ optimizer step, every process counted), on the synthetic foley story set.

Runs stage 1 from a random model, stage 2 from stage 1's result, stage 3 from stage 2's, each for ``--steps``
steps, and prints the median per-step throughput (the first step, with its warm-up, left out) and the evaluation
loss before and after. ``--size small`` uses wider models (hidden 256, 4 LLM layers, a 2+4-block DiT at 256
wide) whose numbers say more about real runs than the tiny test models; ``--device cuda --precision bf16`` is
the GPU check. Run: ``.venv/bin/python tests/bench/bench_train.py [--steps 12] [--size tiny|small]``
(not collected by pytest).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import torch  # noqa: E402

from audiostory_core.train.build import build_dataset  # noqa: E402
from audiostory_core.train.config import parse_config  # noqa: E402
from audiostory_core.train.loop import train  # noqa: E402
from tests.train_data import make_story_folder, make_tiny_t5  # noqa: E402

SMALL = {
    "llm": {"model_type": "qwen2", "vocab_size": 0, "hidden_size": 256, "intermediate_size": 704,
            "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "tie_word_embeddings": True},
    "n_semantic": 16, "n_residual": 4, "lora_r": 8, "lora_alpha": 8, "cond_width": 256, "fusion_heads": 8,
    "dit": {"in_channels": 16, "num_layers": 2, "num_single_layers": 4, "num_attention_heads": 4,
            "attention_head_dim": 64, "joint_attention_dim": 256, "axes_dims_rope": [8, 28, 28],
            "vae": {"encoder_hidden_size": 32, "downsampling_ratios": [4, 8, 8], "channel_multiples": [1, 1, 1],
                    "decoder_channels": 8, "decoder_input_channels": 16, "audio_channels": 2,
                    "sampling_rate": 8000}},
}


def run_stage(root: Path, stage: int, init: str, args, manifest: Path, t5: Path) -> tuple[dict, Path]:
    model = {"init": init, "t5": str(t5)}
    if stage == 1 and args.size == "small":
        model["overrides"] = SMALL
    cfg = parse_config({
        "stage": stage, "output": str(root / f"stage{stage}"), "model": model,
        "data": {"manifest": str(manifest), "cache": str(root / f"cache-{args.size}")},
        "train": {"steps": args.steps, "batch_size": args.batch, "lr": 1e-3, "cpu": args.device == "cpu",
                  "mixed_precision": args.precision},
    })
    t0 = time.perf_counter()
    result = train(cfg, log=lambda _m: None, progress_bar=False)
    wall = time.perf_counter() - t0
    rows = result.rows[1:] or result.rows
    return {
        "stage": stage, "steps": result.steps, "wall_s": wall,
        "step_s": statistics.median(r["elapsed_s"] for r in rows),
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rows),
        "frames_per_s": statistics.median(r["frames_per_s"] for r in rows),
        "eval_before": result.eval_rows[0]["loss"], "eval_after": result.eval_rows[-1]["loss"],
    }, result.final


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--stories", type=int, default=8)
    p.add_argument("--size", choices=("tiny", "small"), default="tiny")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("no", "bf16", "fp16"), default="no")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = build_dataset(make_story_folder(root / "stories", stories=args.stories, events=3)).manifest
        width = SMALL["cond_width"] if args.size == "small" else 32
        t5 = make_tiny_t5(root / "t5", width=width)
        print(f"training throughput, {args.size} model, {args.stories} stories x 3 events, batch {args.batch}, "
              f"{args.device} {args.precision}, {torch.get_num_threads()} thread(s)")
        print(f"{'stage':>5} {'steps':>5} {'s/step':>7} {'tokens/s':>9} {'frames/s':>9} {'eval loss':>19} {'wall s':>7}")
        init = "tiny"
        for stage in (1, 2, 3):
            r, final = run_stage(root, stage, init, args, manifest, t5)
            init = str(final)
            print(f"{r['stage']:>5} {r['steps']:>5} {r['step_s']:>7.3f} {r['tokens_per_s']:>9.0f} "
                  f"{r['frames_per_s']:>9.0f} {r['eval_before']:>8.3f} → {r['eval_after']:<8.3f} {r['wall_s']:>7.1f}")


if __name__ == "__main__":
    main()
