"""The compact index layout for large corpora, written in bounded memory and read memory-mapped.

What differs from the exact layout (`store.py`), and why (measurements in docs/scaling.md):
- each passage vector is stored once, as the 8-bit scalar-quantised codes inside the FAISS index (HNSW or IVF
  over SQ8 codes); queries that need a candidate's vector decode it from there;
- sentence vectors are int8 with one float32 scale per vector (absmax / 127): a quarter of float32, and
  decoding then re-encoding gives the same codes, so incremental builds that reuse vectors do not drift;
- passages are JSONL without the sentence texts (each is a slice of the passage text, kept as offsets);
- BM25 postings come from `postings.Bm25Writer` (bm25s's files and scores, written from streamed chunks).

`CompactWriter` takes passages with their vectors in chunks and keeps only per-passage counters in memory
(offsets, lengths); vectors and postings go to files as they come. Everything is written into a temporary
folder with a manifest of sha256 checksums, then swapped in as `Index.save` does.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from leftqa import __version__
from leftqa.errors import IndexCorruptError
from leftqa.index.embed import split_backend
from leftqa.index.mapped import Bm25Scorer, PassageStore, mapped_array
from leftqa.index.postings import Bm25Writer
from leftqa.records import Passage, Sentence
from leftqa.text import terms

LAYOUT = "compact"
SENTENCE_CODES = "sentence_codes.npy"
SENTENCE_SCALES = "sentence_scales.npy"
HEADER = 128  # bytes reserved for a streamed .npy header (rewritten with the final shape at the end)
CHUNK = 50_000  # passages embedded and written per step of a streamed build
# Recall@10 against exact search, single-thread ms per query and build time of the candidates on the synthetic
# benchmark vectors (benchmarks/ann_choice.py, docs/scaling.md) decided these parameters: HNSW32 over SQ8 codes
# reached 0.968 at 200K (efSearch 1024, 7 ms) and 0.9635 at 1M (2048, 23 ms); IVF-SQ8 stayed at 0.86 scanning
# 15% of the lists, HNSW16 at 0.88. 4096 above 3M is an extrapolation (0.9765 at 1M), not measured at 10M.
COMPACT_THRESHOLD = 50_000  # below this many passages the exact layout (float32, flat search) is kept
HNSW_M, EF_CONSTRUCTION = 32, 40
EF_SEARCH = ((300_000, 1024), (3_000_000, 2048), (10**12, 4096))


def compact_spec(n: int) -> dict[str, Any]:
    """The dense index of a compact layout of `n` passages."""
    ef = next(e for limit, e in EF_SEARCH if n < limit)
    return {"type": f"hnsw{HNSW_M}-sq8-ip", "M": HNSW_M, "efConstruction": EF_CONSTRUCTION, "efSearch": ef, "quantizer": "sq8"}


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
    """Passage vectors decoded from the FAISS index's own codes (they are stored nowhere else)."""

    def __init__(self, dense: Any) -> None:
        self.dense = dense
        self.shape = (int(dense.ntotal), int(dense.d))
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            lo, hi, step = key.indices(self.shape[0])
            if step == 1:
                return self.dense.reconstruct_n(lo, max(0, hi - lo)) if hi > lo else np.zeros((0, self.shape[1]), np.float32)
            key = np.arange(lo, hi, step)
        if np.isscalar(key):
            i = int(key) + self.shape[0] if int(key) < 0 else int(key)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"row {key} out of range ({self.shape[0]} rows)")
            return self.dense.reconstruct(i)
        ids = np.asarray(key, dtype=np.int64).reshape(-1)
        if not len(ids):
            return np.zeros((0, self.shape[1]), np.float32)
        return self.dense.reconstruct_batch(ids)


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


class _StreamedNpy:
    """A 2-D .npy written row block by row block; its header gets the final row count at `close`."""

    def __init__(self, path: Path, dtype: Any, width: int | None) -> None:
        self.path, self.dtype, self.width, self.rows = path, np.dtype(dtype), width, 0
        self._f = path.open("wb")
        self._f.write(b"\0" * HEADER)

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        self._f.write(block.tobytes())
        self.rows += len(block)

    def close(self) -> None:
        shape = (self.rows, self.width) if self.width else (self.rows,)
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape})
        header = buf.getvalue()
        if len(header) != HEADER:
            raise IndexCorruptError(f"cannot write the header of {self.path.name} ({len(header)} bytes)")
        self._f.seek(0)
        self._f.write(header)
        self._f.close()


class CompactWriter:
    """Streams passages and their vectors into a compact index folder; `finish` builds FAISS/BM25 and swaps it in."""

    def __init__(self, path: Path, dim: int, sq_trained: np.ndarray | None = None, log: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.parent / f".{self.path.name}.tmp-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        self.work = self.tmp / ".work"  # scratch files, deleted before the manifest lists the folder
        self.work.mkdir()
        self.dim = dim
        self.sq_trained = sq_trained
        self.say = log or (lambda _m: None)
        self._passages = (self.tmp / "passages.jsonl").open("wb")
        self._offsets: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self._counts: list[np.ndarray] = []
        self._end = 0
        self._codes = _StreamedNpy(self.tmp / SENTENCE_CODES, np.int8, dim)
        self._scales = _StreamedNpy(self.tmp / SENTENCE_SCALES, np.float32, None)
        self._pvecs = (self.work / "passage_vectors.f32").open("wb")  # float32, only until FAISS is built
        self.bm25 = Bm25Writer(self.tmp / "bm25", self.work)
        self.passages = self.sentences = 0
        self.timings: dict[str, float] = {}

    def add(self, passages: Sequence[Passage], passage_vectors: np.ndarray, sentence_vectors: np.ndarray, token_lists: Iterable[list[str]] | None = None) -> None:
        """Append passages with their vectors (one row each) and their sentences' vectors (in passage order)."""
        t0 = time.perf_counter()
        lines = [(json.dumps(passage_to_compact(p), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8") for p in passages]
        lengths = np.fromiter((len(b) for b in lines), dtype=np.int64, count=len(lines))
        self._passages.write(b"".join(lines))
        self._offsets.append(self._end + np.cumsum(lengths))
        self._end += int(lengths.sum())
        counts = np.fromiter((len(p.sentences) for p in passages), dtype=np.int64, count=len(passages))
        if len(passage_vectors) != len(passages) or len(sentence_vectors) != int(counts.sum()):
            raise IndexCorruptError("vectors do not match the passages they were given with")
        self._counts.append(counts)
        codes, scales = quantise(sentence_vectors)
        self._codes.write(codes)
        self._scales.write(scales)
        self._pvecs.write(np.ascontiguousarray(passage_vectors, dtype=np.float32).tobytes())
        t1 = time.perf_counter()
        self.bm25.add(token_lists if token_lists is not None else (terms(p.text) for p in passages))
        self.passages += len(passages)
        self.sentences += int(counts.sum())
        self.timings["write_s"] = self.timings.get("write_s", 0.0) + (t1 - t0)
        self.timings["terms_s"] = self.timings.get("terms_s", 0.0) + (time.perf_counter() - t1)

    def seal(self) -> None:
        """Close the streamed files and write the offsets, sentence starts, BM25 postings and terms (no FAISS yet)."""
        from leftqa.index.store import PASSAGE_OFFSETS, SENTENCE_STARTS, TERMS

        self._passages.close()
        self._codes.close()
        self._scales.close()
        self._pvecs.close()
        np.save(self.tmp / PASSAGE_OFFSETS, np.concatenate(self._offsets), allow_pickle=False)
        starts = np.zeros(self.passages + 1, dtype=np.int64)
        if self._counts:
            np.cumsum(np.concatenate(self._counts), out=starts[1:])
        np.save(self.tmp / SENTENCE_STARTS, starts, allow_pickle=False)
        t = time.perf_counter()
        self.say(f"building BM25 postings of {self.passages} passages")
        doc_freq = self.bm25.doc_freq()
        self.bm25.finish()
        (self.tmp / TERMS).write_text(json.dumps({"doc_freq": doc_freq}, ensure_ascii=False), encoding="utf-8")
        self.timings["bm25_s"] = time.perf_counter() - t

    def finish(self, manifest: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build the dense index and BM25, write the manifest with checksums and swap the folder in."""
        import faiss

        from leftqa.index.store import DENSE, FORMAT, FORMAT_VERSION, MANIFEST, _file_entry, _fsync_tree, swap_in

        try:
            self.seal()
            t = time.perf_counter()
            spec = spec or compact_spec(self.passages)
            vectors = np.memmap(self.work / "passage_vectors.f32", dtype=np.float32, mode="r", shape=(self.passages, self.dim)) if self.passages else np.zeros((0, self.dim), np.float32)
            self.say(f"building the {spec['type']} dense index")
            dense, trained_again = build_compact_dense(vectors, spec, self.sq_trained)
            del vectors
            faiss.write_index(dense, str(self.tmp / DENSE))
            self.timings["dense_s"] = time.perf_counter() - t
            shutil.rmtree(self.work)
            t = time.perf_counter()
            files = sorted(p for p in self.tmp.rglob("*") if p.is_file())
            manifest = {
                **manifest,
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "layout": LAYOUT,
                "leftqa_version": __version__,
                "backend": split_backend(str(manifest.get("model", "")))[0],
                "dimension": self.dim,
                "passages": self.passages,
                "sentences": self.sentences,
                "dense_index": spec["type"],
                "dense_params": {**{k: v for k, v in spec.items() if k != "type"}, "sq_reused": not trained_again},
                "sentence_vectors": "int8, one float32 scale per vector (absmax/127)",
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": {f.relative_to(self.tmp).as_posix(): _file_entry(f) for f in files},
            }
            (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            _fsync_tree(self.tmp)
            swap_in(self.tmp, self.path)
            self.timings["files_s"] = time.perf_counter() - t
            return manifest
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Delete the temporary folder (the index in place stays as it was)."""
        for f in (self._passages, self._pvecs, self._codes._f, self._scales._f):
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def build_compact_dense(vectors: np.ndarray, spec: dict[str, Any], sq_trained: np.ndarray | None = None) -> tuple[Any, bool]:
    """(FAISS index over SQ8 codes, whether the quantiser was trained here); `sq_trained` reuses a previous one."""
    import faiss

    n, dim = vectors.shape
    index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, int(spec["M"]), faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = int(spec["efConstruction"])
    index.hnsw.efSearch = int(spec["efSearch"])
    storage = faiss.downcast_index(index.storage)
    trained_here = sq_trained is None or len(sq_trained) != 2 * dim or not _within(vectors, np.asarray(sq_trained, dtype=np.float32))
    if trained_here:
        # SQ8 ranges per dimension from a sample of at most 200K rows (taken by stride, so no copy of the whole set).
        step = max(1, n // 200_000)
        index.train(np.ascontiguousarray(vectors[::step], dtype=np.float32) if n else np.zeros((1, dim), np.float32))
    else:
        # The previous index's ranges: reused vectors decode to bucket centres and re-encode to the same codes.
        faiss.copy_array_to_vector(np.asarray(sq_trained, dtype=np.float32), storage.sq.trained)
        storage.is_trained = True
        index.is_trained = True
    for lo in range(0, n, 100_000):
        index.add(np.ascontiguousarray(vectors[lo : lo + 100_000], dtype=np.float32))
    return index, trained_here


def _within(vectors: np.ndarray, trained: np.ndarray) -> bool:
    """Whether every vector lies inside the per-dimension SQ8 ranges (vmin, vdiff): new texts outside them would
    be clipped (by up to 0.07 on a small corpus's ranges), so then the quantiser is trained afresh instead."""
    dim = vectors.shape[1]
    # FAISS decodes code c to vmin + (c + 0.5) / 255 * vdiff: the top bucket lies half a step above vmax, and
    # re-encodes to the same code, so a step of slack keeps reused vectors reusable.
    step = trained[dim:] / 255
    vmin, vmax = trained[:dim] - step, trained[:dim] + trained[dim:] + step
    for lo in range(0, len(vectors), 200_000):
        block = np.asarray(vectors[lo : lo + 200_000], dtype=np.float32)
        if (block.min(axis=0) < vmin).any() or (block.max(axis=0) > vmax).any():
            return False
    return True


def sq_ranges(dense: Any) -> np.ndarray | None:
    """The trained SQ8 ranges of a compact index's FAISS index (None for other index types)."""
    import faiss

    try:
        storage = faiss.downcast_index(faiss.downcast_index(dense).storage)
        return faiss.vector_to_array(storage.sq.trained).astype(np.float32)
    except (AttributeError, RuntimeError):
        return None


def load_compact(path: Path, manifest: dict[str, Any], offsets: np.ndarray, starts: np.ndarray) -> tuple[Any, Any, Any, Any, Any]:
    """(passages, passage vectors, sentence vectors, dense index, BM25) of a compact index folder."""
    import faiss

    from leftqa.index.store import BM25_DIR, DENSE, PASSAGES, ef_search

    passages = CompactPassageStore(path / PASSAGES, offsets)
    sentence_vectors = Int8Rows(mapped_array(path / SENTENCE_CODES), mapped_array(path / SENTENCE_SCALES))
    dense = faiss.read_index(str(path / DENSE), faiss.IO_FLAG_MMAP_IFC)
    if hasattr(dense, "hnsw"):
        dense.hnsw.efSearch = int(manifest.get("dense_params", {}).get("efSearch") or ef_search(dense.ntotal))
    bm25 = Bm25Scorer.load(path / BM25_DIR)
    return passages, DenseRows(dense), sentence_vectors, dense, bm25


def write_compact(
    path: Path,
    passages: Sequence[Passage],
    embed: Callable[[list[str]], np.ndarray],
    manifest: dict[str, Any],
    previous: Any = None,
    log: Callable[[str], None] | None = None,
    chunk: int = CHUNK,
) -> dict[str, Any]:
    """Embed and write `passages` chunk by chunk as a compact index at `path`; returns the final manifest."""
    writer: CompactWriter | None = None
    try:
        for lo in range(0, len(passages), chunk):
            part = passages[lo : lo + chunk]
            pvecs = embed([p.text for p in part])
            svecs = embed([s.text for p in part for s in p.sentences])
            if writer is None:
                sq = sq_ranges(previous.dense) if previous is not None else None
                writer = CompactWriter(path, int(pvecs.shape[1]), sq, log)
            writer.add(part, pvecs, svecs)
            release = getattr(embed, "release", None)  # the builder's vector cache drops what is now on disk
            if release is not None:
                release()
        if writer is None:
            raise IndexCorruptError("a compact index needs at least one passage")
        return writer.finish(manifest)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
