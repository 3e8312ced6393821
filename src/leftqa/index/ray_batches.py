"""How a Ray build (`index/ray_build.py`) cuts its work into tasks: files shipped by size, texts by padded tokens."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

import numpy as np

from leftqa.index.embed import resolve_model_path
from leftqa.ingest.corpus import SIDECAR, sidecar_path
from leftqa.ingest.documents import MAX_FILE_BYTES, MAX_PACKAGE_BYTES

CPU_BATCH_TOKENS = 8192  # padded tokens per batch on a CPU worker (~1-3 s of one core for MiniLM)
GPU_BATCH_TOKENS = 65536
MAX_BATCH_TEXTS = 1024
READ_BATCH_BYTES = 8_000_000  # files shipped to a worker per read task (at least one file)
READ_BATCH_FILES = 64

Shipped = tuple[str, bytes, bytes | None]  # (doc_id, the file's bytes, its sidecar's bytes or None)


def token_batches(lengths: list[int], budget: int, max_texts: int = MAX_BATCH_TEXTS) -> list[np.ndarray]:
    """Row indices of each batch: longest texts first, each batch at most `budget` padded tokens (>= 1 text)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    lo = 0
    while lo < len(order):
        width = max(1, int(lengths[order[lo]]))
        n = max(1, min(max_texts, budget // width))
        batches.append(order[lo : lo + n])
        lo += n
    return batches


def token_counter(model: str) -> Callable[[list[str]], list[int]]:
    """Token counts by the model's own tokenizer when it is a local folder; else ~4/3 tokens a word."""
    try:
        path = Path(resolve_model_path(model))
        tokenizer_file = path / "tokenizer.json"
        if tokenizer_file.is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(tokenizer_file))
            tok.no_padding()
            tok.enable_truncation(max_length=512)
            def count(texts: list[str], chunk: int = 20_000) -> list[int]:
                out: list[int] = []
                for lo in range(0, len(texts), chunk):  # in chunks: an Encoding per text is heavy
                    out += [len(e.ids) for e in tok.encode_batch([str(t).strip() for t in texts[lo : lo + chunk]])]
                return out

            return count
    except Exception:  # noqa: BLE001 - any model name the driver cannot resolve falls back to the estimate
        pass
    return lambda texts: [len(t.split()) * 4 // 3 + 2 for t in texts]


def shippable(path: Path, doc_id: str) -> Shipped | None:
    """(doc_id, bytes, sidecar bytes) of a regular file a worker can read, or None to read it on the driver."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        limit = MAX_PACKAGE_BYTES if path.suffix.lower() in (".pdf", ".docx") else MAX_FILE_BYTES
        if st.st_size > limit:
            return None
        data = path.read_bytes()
        side_path = sidecar_path(path)
        side = side_path.read_bytes() if side_path.is_file() else None
    except OSError:
        return None
    assert SIDECAR in side_path.name
    return doc_id, data, side


def read_batches(items: list[Shipped]) -> list[list[Shipped]]:
    """The shipped files in read tasks of at most READ_BATCH_BYTES (or one file) and READ_BATCH_FILES files."""
    batches: list[list[Shipped]] = [[]]
    size = 0
    for item in items:
        n = len(item[1])
        if batches[-1] and (size + n > READ_BATCH_BYTES or len(batches[-1]) >= READ_BATCH_FILES):
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += n
    return batches
