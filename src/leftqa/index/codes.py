"""Reading the compact index layout: int8 sentence vectors, passage vectors decoded from FAISS's SQ8 codes, and
passages whose sentences are offsets into the passage text. Written by `leftqa.index.compact`; opened by
`Index.load` (this module depends on neither, so the two do not import each other).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from leftqa.errors import IndexCorruptError
from leftqa.index.manifest import IndexManifest
from leftqa.index.mapped import Bm25Scorer, PassageStore, mapped_array
from leftqa.records import Passage, Sentence

LAYOUT = "compact"
SENTENCE_CODES = "sentence_codes.npy"
SENTENCE_SCALES = "sentence_scales.npy"


def shard_file(k: int) -> str:
    """The FAISS file of graph `k` of a sharded compact index (dense_params["shards"] graphs in all)."""
    return f"dense-{k:03d}.faiss"


def shard_bounds(n: int, shards: int) -> np.ndarray:
    """Where each of `shards` graphs over `n` rows starts (and the last ends): consecutive ranges of equal size +-1."""
    return np.linspace(0, n, shards + 1, dtype=np.int64)


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 codes, float32 scales) with one scale per row: row ~= codes * scale."""
    v = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(v).max(axis=1) / 127 if len(v) else np.zeros(0, np.float32)
    safe = np.where(scale > 0, scale, 1).astype(np.float32)
    codes = np.clip(np.rint(v / safe[:, None]), -127, 127).astype(np.int8)
    return codes, scale.astype(np.float32)


class Int8Rows:
    """Rows of int8 codes times their scales, read like a float32 array (slices and integer arrays)."""

    def __init__(self, codes: np.ndarray, scales: np.ndarray) -> None:
        self.codes, self.scales = codes, scales
        self.shape = codes.shape
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.codes)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        codes = self.codes[key]
        scales = self.scales[key]
        if codes.ndim == 1:
            return codes.astype(np.float32) * np.float32(scales)
        return codes.astype(np.float32) * scales[:, None]


class DenseRows:
    """Passage vectors decoded from the FAISS index's own codes (they are stored nowhere else); `parts` are the
    graphs of a sharded index, each holding the next consecutive rows."""

    def __init__(self, dense: Any, parts: Sequence[Any] | None = None) -> None:
        self.dense = dense
        self.parts = list(parts) if parts else [dense]
        self.bounds = np.cumsum([0] + [int(p.ntotal) for p in self.parts])
        self.shape = (int(dense.ntotal), int(dense.d))
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            lo, hi, step = key.indices(self.shape[0])
            if step == 1 and len(self.parts) == 1:
                return self.dense.reconstruct_n(lo, max(0, hi - lo)) if hi > lo else np.zeros((0, self.shape[1]), np.float32)
            key = np.arange(lo, hi, step)
        if np.isscalar(key):
            i = int(key) + self.shape[0] if int(key) < 0 else int(key)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"row {key} out of range ({self.shape[0]} rows)")
            return self[np.array([i])][0]
        ids = np.asarray(key, dtype=np.int64).reshape(-1)
        if not len(ids):
            return np.zeros((0, self.shape[1]), np.float32)
        if len(self.parts) == 1:
            return self.dense.reconstruct_batch(ids)
        if ids.min() < 0 or ids.max() >= self.shape[0]:
            raise IndexError(f"rows out of range ({self.shape[0]} rows)")
        out = np.empty((len(ids), self.shape[1]), np.float32)
        shard = np.searchsorted(self.bounds, ids, side="right") - 1
        for s in np.unique(shard):
            at = np.flatnonzero(shard == s)
            out[at] = self.parts[s].reconstruct_batch(ids[at] - self.bounds[s])
        return out


class CompactPassageStore(PassageStore):
    """Passages of a compact layout: sentence texts are cut from the passage text by their offsets."""

    def _decode_uncached(self, j: int) -> Passage:
        raw = self._buf[int(self._offsets[j]) : int(self._offsets[j + 1])]
        try:
            return passage_from_compact(json.loads(raw))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise IndexCorruptError(f"passage {j} in {self._path} cannot be read ({type(exc).__name__}); run `leftqa index` to rebuild it") from None


def passage_to_compact(p: Passage) -> dict[str, Any]:
    """A passage as one compact JSON object: sentence texts that are slices of the passage text become offsets."""
    sents = []
    for s in p.sentences:
        row: list[Any] = [s.start, s.end, s.local_start, s.local_end]
        if p.text[s.local_start : s.local_end] != s.text:
            row.append(s.text)  # kept verbatim when it is not a plain slice
        sents.append(row)
    out: dict[str, Any] = {"id": p.id, "doc_id": p.doc_id, "title": p.title, "section": p.section, "start": p.start, "end": p.end, "text": p.text, "s": sents}
    if p.page is not None:
        out["page"] = p.page
    if p.source:
        out["source"] = p.source
    return out


def passage_from_compact(d: dict[str, Any]) -> Passage:
    """Inverse of `passage_to_compact`."""
    text = d["text"]
    sentences = tuple(Sentence(r[4] if len(r) > 4 else text[r[2] : r[3]], r[0], r[1], r[2], r[3]) for r in d["s"])
    return Passage(d["id"], d["doc_id"], d["title"], d["section"], d["start"], d["end"], text, sentences, d.get("page"), d.get("source", ""))


def read_mapped_index(path: Path) -> Any:
    """A FAISS index whose graph and codes are views into a shared read-only mapping of its file."""
    import mmap

    import faiss

    # One shared mapping read through faiss's zero-copy reader rather than IO_FLAG_MMAP_IFC: at 10M passages the
    # first searches of a fresh process took 1.4 / 0.7 / 0.7 s through faiss's own mapping and 0.5 / 0.2 / 0.2 s
    # through this one (docs/scaling.md). The pages stay in the page cache, shared with other processes.
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    buffer = np.frombuffer(mapping, dtype=np.uint8)
    index = faiss.read_index(faiss.ZeroCopyIOReader(faiss.swig_ptr(buffer), buffer.size))
    index.referenced_objects = [buffer]  # faiss's own way to keep what an index reads alive as long as the index
    return index


def load_compact(path: Path, manifest: IndexManifest, offsets: np.ndarray, passages_file: str, dense_file: str, bm25_dir: str) -> tuple[Any, Any, Any, Any, Any]:
    """(passages, passage vectors, sentence vectors, dense index, BM25) of a compact index folder."""
    passages = CompactPassageStore(path / passages_file, offsets)
    sentence_vectors = Int8Rows(mapped_array(path / SENTENCE_CODES), mapped_array(path / SENTENCE_SCALES))
    params = manifest.dense_params or {}
    shards = int(params.get("shards", 0))
    if shards:
        dense, parts = read_shards([path / shard_file(k) for k in range(shards)])
    else:
        dense = read_mapped_index(path / dense_file)
        parts = [dense]
    if "efSearch" in params:  # set by index size when it was built (compact.compact_spec)
        for part in parts:
            if hasattr(part, "hnsw"):
                part.hnsw.efSearch = params["efSearch"]
    bm25 = Bm25Scorer.load(path / bm25_dir)
    return passages, DenseRows(dense, parts), sentence_vectors, dense, bm25


def read_shards(files: Sequence[Path]) -> tuple[Any, list[Any]]:
    """(one index searching every graph in its own thread and merging by score, the graphs) of a sharded index."""
    from concurrent.futures import ThreadPoolExecutor

    import faiss

    # FAISS checks every neighbour id of a graph as it reads it (2 s for one 10M graph): the reads release the GIL,
    # so the graphs are read side by side, one per core.
    with ThreadPoolExecutor(max(1, min(len(files), os.cpu_count() or 1))) as pool:
        parts = list(pool.map(read_mapped_index, files))
    if not parts:
        raise IndexCorruptError("a sharded dense index needs at least one graph")
    dense = faiss.IndexShards(int(parts[0].d), True, True)  # threaded, successive ids: shard k holds the next rows
    for part in parts:
        dense.add_shard(part)
    dense.referenced_objects = list(parts)  # the graphs live as long as the index that searches them
    return dense, parts
