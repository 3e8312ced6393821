"""Memory-mapped readers of index files: .npy arrays, the passages JSONL, and bm25s's saved postings.

Queries touch a few hundred rows of files that reach gigabytes at 1M passages, so nothing here reads a file
whole: arrays are mapped, passages are decoded one line at a time through an offset table.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, overload

import numpy as np

from leftqa.errors import IndexCorruptError
from leftqa.records import Passage


def mapped_array(path: Path) -> np.ndarray:
    """A read-only memory-mapped .npy as a plain ndarray view, read with random-access readahead."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    buf = getattr(array, "_mmap", None)
    if buf is not None and hasattr(mmap, "MADV_RANDOM"):
        # Queries read a few hundred scattered rows; the kernel's default readahead pulled in ~1 MB around each,
        # so one query at 100K passages paged in 400 MB of vectors it never used.
        buf.madvise(mmap.MADV_RANDOM)
    return np.asarray(array)  # np.memmap's per-slice bookkeeping costs ~30 µs; queries take hundreds of slices


class Bm25Scorer:
    """Query-time BM25 over the files bm25s saved, memory-mapped; bm25s's own arithmetic, without importing it.

    Importing bm25s pulls in scipy (~0.5-1 s of a cold start) and its loader reads the postings into memory.
    The scoring is bm25s's numpy backend verbatim (np.add.at per query term, in query order), so scores are
    bit-identical; with numpy 2.x np.add.at is no longer the bottleneck it was (about 1 ms per query at
    100K passages here, faster than fancy-index addition), so numba is not needed.
    """

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, vocab: dict[str, int], params: dict[str, Any], nonoccurrence: np.ndarray | None) -> None:
        self.data, self.indices, self.indptr = data, indices, indptr
        self.vocab_dict = vocab
        self.params = params
        self.num_docs = int(params["num_docs"])
        self.dtype = np.dtype(params.get("dtype", "float32"))
        self.nonoccurrence_array = nonoccurrence

    @classmethod
    def load(cls, folder: Path) -> "Bm25Scorer":
        """Open a folder written by `bm25s.BM25.save`."""
        params = json.loads((folder / "params.index.json").read_text("utf-8"))
        vocab = json.loads((folder / "vocab.index.json").read_text("utf-8"))
        arrays = [mapped_array(folder / f"{name}.csc.index.npy") for name in ("data", "indices", "indptr")]
        nnoc = folder / "nonoccurrence_array.index.npy"
        nonoccurrence = np.load(nnoc, allow_pickle=False) if nnoc.exists() else None
        return cls(*arrays, vocab, params, nonoccurrence)

    def get_scores(self, query_tokens: list[str] | list[int]) -> np.ndarray:
        """BM25 score of every document for a tokenised query (unknown tokens ignored), as bm25s computes it."""
        if query_tokens and isinstance(query_tokens[0], str):
            ids = [self.vocab_dict[t] for t in query_tokens if t in self.vocab_dict]
        else:
            ids = [int(t) for t in query_tokens]
        scores = np.zeros(self.num_docs, dtype=self.dtype)
        for t in ids:
            lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
            np.add.at(scores, self.indices[lo:hi], self.data[lo:hi])
        if self.nonoccurrence_array is not None:
            scores += self.nonoccurrence_array[np.asarray(ids, dtype=np.int64)].sum()
        return scores


class PassageStore(Sequence):
    """The passages of a saved index, decoded from the memory-mapped JSONL on first access (then cached)."""

    def __init__(self, path: Path, offsets: np.ndarray, cache_size: int = 65_536) -> None:
        self._path = path
        self._offsets = offsets
        size = int(offsets[-1]) if len(offsets) else 0
        with path.open("rb") as f:
            self._buf: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._decode = lru_cache(maxsize=cache_size)(self._decode_uncached)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> Passage: ...
    @overload
    def __getitem__(self, i: slice) -> list[Passage]: ...
    def __getitem__(self, i: int | slice) -> Passage | list[Passage]:
        if isinstance(i, slice):
            return [self._decode(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        j = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"passage {i} out of range ({n} passages)")
        return self._decode(j)

    def __iter__(self) -> Iterator[Passage]:
        for j in range(len(self)):
            yield self._decode(j)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def _decode_uncached(self, j: int) -> Passage:
        raw = self._buf[int(self._offsets[j]) : int(self._offsets[j + 1])]
        try:
            return Passage.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"passage {j} in {self._path} cannot be read ({type(exc).__name__}); run `leftqa index` to rebuild it") from None


def line_offsets(path: Path) -> np.ndarray:
    """Byte offset of the start of every line of a file, plus its size (for indexes saved without the table)."""
    size = path.stat().st_size
    if size == 0:
        return np.zeros(1, dtype=np.int64)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        ends = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10) + 1
    ends = ends if len(ends) and ends[-1] == size else np.append(ends, size)
    return np.concatenate([[0], ends]).astype(np.int64)
