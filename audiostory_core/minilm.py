"""The MiniLM sentence encoder (a 6-layer BERT) in numpy, read from its safetensors file, tokenised by the
``tokenizers`` library.

Why not transformers + torch: the foley renderer embeds a dozen new captions per dub; importing torch and
transformers and building the model cost more than the dub's whole render (measured: 5.0 s and +0.75 GB RSS for
one cold-caption 60 s dub on this 2-core machine). This encoder reads the same weights and computes the same
function (BERT's post-LayerNorm encoder, exact-erf GELU), matching the torch model to a cosine of 0.99999
(``tests/test_foley.py``), in float32 with a few matrix products per layer.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import erf


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = np.square(x - mu).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class NumpyBert:
    """``hidden(ids, mask) -> (batch, tokens, hidden)`` last hidden states of a BERT checkpoint folder
    (config.json + model.safetensors), as ``transformers.BertModel`` computes them in eval mode."""

    def __init__(self, folder: str | Path) -> None:
        from safetensors.numpy import load_file

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        if cfg.get("model_type") != "bert" or cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{folder}: not a BERT encoder with GELU ({cfg.get('model_type')}, {cfg.get('hidden_act')})")
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        files = sorted(folder.glob("*.safetensors"))
        w: dict[str, np.ndarray] = {}
        for f in files:
            w.update(load_file(str(f)))
        w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in w.items()}
        self.w = w
        self.layers = int(cfg["num_hidden_layers"])

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _attention(self, x: np.ndarray, bias: np.ndarray, p: str) -> np.ndarray:
        b, t, d = x.shape
        h = self.heads

        def split(name: str) -> np.ndarray:
            return self._linear(x, f"{p}.attention.self.{name}").reshape(b, t, h, d // h).transpose(0, 2, 1, 3)

        q, k, v = split("query"), split("key"), split("value")
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // h) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = (scores / scores.sum(-1, keepdims=True)) @ v
        return ctx.transpose(0, 2, 1, 3).reshape(b, t, d)

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # One BLAS thread: a dozen captions make matrices so small that threads only wait on each other (measured
        # on this 2-core machine under load: 6 s with two threads, 0.5 s with one, for 13 captions).
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return self._hidden(ids, mask)

    def _hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, t = self.w, ids.shape[1]
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            x = self._norm(x + self._linear(self._attention(x, bias, p), f"{p}.attention.output.dense"),
                           f"{p}.attention.output.LayerNorm")
            inner = self._linear(x, f"{p}.intermediate.dense")
            inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
            x = self._norm(x + self._linear(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        return x.astype(np.float32)


def load_tokenizer(folder: str | Path, max_length: int):
    """The folder's fast tokenizer (tokenizer.json), padding each batch to its longest text, truncating at
    ``max_length`` tokens."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0, pad_token="[PAD]")
    return tok
