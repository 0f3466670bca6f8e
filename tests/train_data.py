"""A tiny synthetic training set for the training tests and benchmark: stories made of our foley bank's clips
(each with its own description as caption) written as long WAV files + Audacity label files, the input
``data build`` expects; and a tiny random flan-t5 stand-in folder for the reconstruction targets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audiostory_core.render.foley.bank import BANK, synthesize

SOUNDS = ("door_slam", "rain", "knock", "birds", "glass_break", "wind", "bell", "crickets")


def make_story_folder(folder: Path, *, stories: int = 4, events: int = 3, sample_rate: int = 8000,
                      seed: int = 0, gap: float = 0.0) -> Path:
    """``stories`` WAV files of ``events`` bank sounds each (0.6–1.2 s, ``gap`` s of silence between them),
    with ``NAME.txt`` label tracks (start, end, the sound's description)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(stories):
        names = rng.choice(SOUNDS, size=events, replace=False)
        pieces, labels, t = [], [], 0.0
        for j, name in enumerate(names):
            seconds = round(float(rng.uniform(0.6, 1.2)), 2)
            pieces.append(synthesize(str(name), seconds, sample_rate, seed=seed * 1000 + k * 10 + j))
            labels.append(f"{t:.6f}\t{t + seconds:.6f}\t{BANK[str(name)].description}")
            t += seconds
            if gap and j < events - 1:
                pieces.append(np.zeros((2, round(gap * sample_rate)), np.float32))
                t += gap
        audio = np.concatenate(pieces, axis=1)
        sf.write(folder / f"story{k:02d}.wav", audio.T, sample_rate, subtype="FLOAT")
        (folder / f"story{k:02d}.txt").write_text("\n".join(labels) + "\n")
    return folder


def make_tiny_t5(folder: Path, width: int = 32, seed: int = 0) -> Path:
    """A random 1-layer T5 encoder (``width``-d, our offline tokenizer) saved like a flan-t5 folder."""
    import torch
    from transformers import T5Config, T5EncoderModel

    from audiostory_core.models import tokens as T

    tok = T.build_tiny_tokenizer(with_audiostory_tokens=False)
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=len(tok), d_model=width, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    T5EncoderModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
