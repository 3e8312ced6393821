"""BM25 whose per-query cost follows the query's postings, and a streaming writer of bm25s's index files.

`SparseBm25` scores only the passages in the query terms' postings (bm25s's own float32 additions, in query
order, so every score is bit-identical to `Bm25Scorer.get_scores`), then takes the top k among those: no
array of one score per passage is zeroed, scanned or partitioned per query. `Bm25Writer` builds the same
files `bm25s.BM25.index(...).save(...)` writes (lucene scoring, the same float32 scores), from token lists
streamed in chunks: postings go to disk as they come and are ordered into CSC columns by a counting sort.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from leftqa.errors import IndexCorruptError

K1, B, DELTA = 1.5, 0.75, 0.5  # bm25s.BM25's defaults, which Index.build uses
PRUNE_MIN = 200_000  # postings per query below which plain accumulation is as fast as pruning


class SparseScores:
    """BM25 scores of the passages a query touches; every other passage scores 0 (lucene BM25 has no floor)."""

    def __init__(self, ids: np.ndarray, values: np.ndarray, num_docs: int, lookup: Any, exact_k: int | None = None) -> None:
        self.ids, self.values, self.num_docs = ids, values, num_docs
        self._lookup = lookup  # scores of given passages, straight from the postings
        self.exact_k = exact_k  # set when pruned: only the top `exact_k` (and max) are guaranteed, not every touched id

    def max(self) -> float:
        """The highest score (0.0 when nothing matched), as `scores.max()` of the full array gives it."""
        return float(self.values.max()) if len(self.values) else 0.0

    def top(self, k: int, fill: bool = False) -> np.ndarray:
        """Ids of the k best-scoring touched passages, best first, ties by lower id; `fill` pads with 0-score ids."""
        k = min(k, self.num_docs)
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        if self.exact_k is not None and k > self.exact_k:
            raise ValueError(f"scores were pruned for the top {self.exact_k}; {k} asked")
        vals, ids = self.values, self.ids
        if k < len(vals):
            # The k-th value decides membership exactly (argpartition alone picks arbitrarily among ties).
            kth = np.partition(-vals, k - 1)[k - 1]
            keep = -vals <= kth
            vals, ids = vals[keep], ids[keep]
        order = np.lexsort((ids, -vals))[:k]
        out = ids[order].astype(np.int64)
        if fill and len(out) < k:
            out = np.concatenate([out, _first_missing(np.sort(self.ids), k - len(out), self.num_docs)])
        return out

    def at(self, ids: np.ndarray) -> np.ndarray:
        """Float32 scores of the given passages (0 for those no query term occurs in)."""
        return self._lookup(np.asarray(ids, dtype=np.int64))


def _first_missing(sorted_ids: np.ndarray, count: int, n: int) -> np.ndarray:
    """The `count` lowest ids in [0, n) not in `sorted_ids`."""
    out: list[int] = []
    j = 0
    for i in range(n):
        while j < len(sorted_ids) and sorted_ids[j] < i:
            j += 1
        if j < len(sorted_ids) and sorted_ids[j] == i:
            continue
        out.append(i)
        if len(out) == count:
            break
    return np.asarray(out, dtype=np.int64)


class SparseBm25:
    """Top-k BM25 over a `Bm25Scorer`'s memory-mapped CSC postings, touching only the query terms' columns."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        self._local = threading.local()  # per-thread scratch: queries from server threads must not share it

    def _scratch(self) -> tuple[np.ndarray, np.ndarray]:
        s = getattr(self._local, "arrays", None)
        if s is None:
            n = self.scorer.num_docs
            # np.zeros/np.empty of this size are lazily mapped pages: a query only commits what its postings touch.
            s = (np.zeros(n, dtype=self.scorer.dtype), np.empty(n, dtype=np.int64))
            self._local.arrays = s
        return s

    def _columns(self, tokens: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        sc = self.scorer
        out = []
        for t in tokens:
            tid = sc.vocab_dict.get(t)
            if tid is None:
                continue
            lo, hi = int(sc.indptr[tid]), int(sc.indptr[tid + 1])
            out.append((sc.indices[lo:hi], sc.data[lo:hi]))
        return out

    def scores(self, tokens: list[str], context: list[str] | None = None, context_weight: float = 0.5) -> SparseScores:
        """Scores of `tokens` (+ `context_weight` x scores of `context`), equal bit for bit to the dense arrays."""
        if self.scorer.nonoccurrence_array is not None:
            raise IndexCorruptError("BM25 postings with a non-occurrence array (BM25L/BM25+) cannot be scored sparsely")
        main, ctx = self._columns(tokens), self._columns(context or [])
        acc, owner = self._scratch()
        touched = []
        for cols, weight in ((main, None), (ctx, context_weight)):
            if not cols:
                continue
            if weight is None:
                for idx, data in cols:
                    np.add.at(acc, idx, data)  # bm25s's own accumulation, in query order
                touched += [idx for idx, _ in cols]
            else:
                # The context's own sums need a clean array; then main + weight * context, as the dense arrays do.
                part = self._accumulate_apart(cols, acc, owner, touched)
                ids, vals = part
                acc[ids] = acc[ids] + np.asarray(weight, dtype=acc.dtype) * vals
                touched.append(ids)
        if not touched:
            ids = np.zeros(0, dtype=np.int64)
            vals = np.zeros(0, dtype=self.scorer.dtype)
        else:
            ids = _unique(np.concatenate(touched), owner)
            vals = acc[ids].copy()
            acc[ids] = 0  # the scratch is clean again for the next query of this thread
        lookup = (lambda want: self._lookup(want, main, ctx, context_weight))
        return SparseScores(ids, vals, self.scorer.num_docs, lookup)

    def top_scores(self, tokens: list[str], context: list[str] | None = None, context_weight: float = 0.5, k: int = 100) -> Any:
        """Like `scores`, but exact only for the top k (and max): MaxScore-style pruning of long postings.

        Postings are accumulated shortest first. The k-th best partial sum is a lower bound of the k-th best
        score; once it beats the sum of the upper bounds of the terms not yet read, no unread passage can enter
        the top k, nor can a read one whose partial sum plus that bound stays below it; the long postings of
        common terms are only probed (binary search) for the passages left.
        Exact scores are then summed in query order, so each equals the full array's bit for bit. When nothing
        can be pruned and the postings cover much of the corpus, one full score array is cheaper (DenseScores)."""
        main, ctx = self._columns(tokens), self._columns(context or [])
        cols = [(idx, data, 1.0 if g == 0 else context_weight) for g, group in ((0, main), (1, ctx)) for idx, data in group]
        total = sum(len(c[0]) for c in cols)
        if not cols or total <= PRUNE_MIN or self.scorer.nonoccurrence_array is not None:
            return self.scores(tokens, context, context_weight)
        ub = [self._upper(idx, data) * w for idx, data, w in cols]
        by_len = sorted(range(len(cols)), key=lambda c: len(cols[c][0]))
        rest_bound = [sum(ub[j] for j in by_len[i + 1 :]) for i in range(len(by_len))]
        acc, owner = self._scratch()
        read: list[np.ndarray] = []
        cand = None
        try:
            size = 0
            for i, c in enumerate(by_len[:-1]):  # the last (longest) column is never needed to bound the rest
                idx, data, w = cols[c]
                np.add.at(acc, idx, data if w == 1.0 else data * np.float32(w))
                read.append(idx)
                size += len(idx)
                if size < k:
                    continue
                ids = _unique(np.concatenate(read), owner)
                if len(ids) < k:
                    continue
                partial = acc[ids]
                floor = float(-np.partition(-partial, k - 1)[k - 1]) * (1 - 1e-5)  # margins: float32 vs real sums
                bound = rest_bound[i] * (1 + 1e-5)
                if bound < floor:
                    # A passage whose partial sum plus everything unread stays below the floor cannot make the top
                    # k either: only the rest are scored exactly.
                    cand = ids[partial.astype(np.float64) + bound >= floor]
                    break
        finally:
            for idx in read:
                acc[idx] = 0
        # Probing every column for many candidates costs more than one pass over a full array (measured at 1M).
        if cand is None or len(cand) * len(cols) > self.scorer.num_docs // 4:
            if total > self.scorer.num_docs // 8:
                return DenseScores(self.scorer, main, ctx, context_weight)
            return self.scores(tokens, context, context_weight)
        cand = np.sort(cand)  # ascending probes walk each column's pages in order
        vals = self._lookup(cand, main, ctx, context_weight)
        return SparseScores(cand, vals, self.scorer.num_docs, lambda want: self._lookup(want, main, ctx, context_weight), exact_k=k)

    def _upper(self, idx: np.ndarray, data: np.ndarray) -> float:
        """The largest score in one term's postings (cached per column: computing it reads the whole column)."""
        cache = self.__dict__.setdefault("_ub", {})
        key = (idx.__array_interface__["data"][0], len(idx))
        if key not in cache:
            cache[key] = float(data.max()) if len(data) else 0.0
        return cache[key]

    def _accumulate_apart(self, cols: list[tuple[np.ndarray, np.ndarray]], acc: np.ndarray, owner: np.ndarray, touched: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Sums of `cols` alone, computed in the scratch while the main sums are set aside."""
        saved_ids = _unique(np.concatenate(touched), owner) if touched else np.zeros(0, dtype=np.int64)
        saved = acc[saved_ids].copy()
        acc[saved_ids] = 0
        for idx, data in cols:
            np.add.at(acc, idx, data)
        ids = _unique(np.concatenate([idx for idx, _ in cols]), owner)
        vals = acc[ids].copy()
        acc[ids] = 0
        acc[saved_ids] = saved
        return ids, vals

    def _lookup(self, want: np.ndarray, main: list, ctx: list, weight: float) -> np.ndarray:
        dtype = self.scorer.dtype
        total = self._sum_at(want, main)
        if ctx:
            total = total + np.asarray(weight, dtype=dtype) * self._sum_at(want, ctx)
        return total

    def _sum_at(self, want: np.ndarray, cols: list) -> np.ndarray:
        out = np.zeros(len(want), dtype=self.scorer.dtype)
        acc = self._scratch()[0] if len(want) > 1000 else None
        for idx, data in cols:  # same additions in the same order as the accumulation: the same float32 result
            if acc is not None and len(idx) < 16 * len(want):
                acc[idx] = data  # scatter + gather beats a binary search per wanted passage here
                out = out + acc[want]
                acc[idx] = 0
            else:
                out = out + _probe(idx, data, want, out.dtype)
        return out


def drop_pages(array: Any) -> None:
    """Write back a memory-mapped array's dirty pages and drop them from this process's resident set.

    The pages stay in the OS page cache; without this, a build that scatters into (or reads through) multi-GB
    mapped files counts every page it touched in its RSS (6 GB of a 10M-passage BM25 build)."""
    import mmap

    buf = getattr(array, "_mmap", None)
    if buf is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if hasattr(array, "flush"):
        array.flush()
    buf.madvise(mmap.MADV_DONTNEED)


def _probe(idx: np.ndarray, data: np.ndarray, want: np.ndarray, dtype: Any) -> np.ndarray:
    """Each wanted passage's score in one term's postings (0 where absent), by binary search."""
    out = np.zeros(len(want), dtype=dtype)
    if len(idx):
        # `want` in the postings' own dtype: otherwise numpy casts the whole (long, memory-mapped) column per call.
        pos = np.minimum(np.searchsorted(idx, want.astype(idx.dtype, copy=False)), len(idx) - 1)
        hit = idx[pos] == want
        out[hit] = data[pos[hit]]
    return out


def _unique(idx: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Distinct values of `idx` in O(len) (no sort): the last position that wrote each value keeps it."""
    pos = np.arange(len(idx), dtype=np.int64)
    owner[idx] = pos
    return idx[owner[idx] == pos].astype(np.int64)


class Bm25Writer:
    """Writes bm25s's index files (lucene BM25, float32 scores identical to bm25s's) from streamed token lists."""

    def __init__(self, folder: Path, work: Path) -> None:
        self.folder, self.work = Path(folder), Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.vocab: dict[str, int] = {}
        self._df: list[int] = []
        self._lengths: list[np.ndarray] = []
        self._terms = (self.work / "bm25-terms.bin").open("wb")  # int32 term id of each posting, docs in order
        self._tfs = (self.work / "bm25-tf.bin").open("wb")  # uint16 term frequency of each posting
        self._counts: list[np.ndarray] = []  # postings per document
        self.num_docs = 0

    def add(self, token_lists: Iterable[list[str]]) -> None:
        """Append documents (each a list of terms; an empty one gets bm25s's "" placeholder)."""
        tids: list[int] = []
        tfs: list[int] = []
        counts: list[int] = []
        lengths: list[int] = []
        vocab, df = self.vocab, self._df
        for toks in token_lists:
            toks = toks or [""]
            c = Counter(toks)
            for t, f in c.items():
                tid = vocab.get(t)
                if tid is None:
                    tid = vocab[t] = len(vocab)
                    df.append(0)
                df[tid] += 1
                tids.append(tid)
                tfs.append(min(f, 65_535))
            counts.append(len(c))
            lengths.append(len(toks))
        self._terms.write(np.asarray(tids, dtype=np.int32).tobytes())
        self._tfs.write(np.asarray(tfs, dtype=np.uint16).tobytes())
        self._counts.append(np.asarray(counts, dtype=np.int64))
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self.num_docs += len(counts)

    def doc_freq(self) -> dict[str, int]:
        """Document frequency of every term (the "" placeholder left out), sorted by term."""
        return {t: self._df[i] for t, i in sorted(self.vocab.items()) if t}

    def finish(self, chunk: int = 4_000_000) -> None:
        """Compute the scores and write data/indices/indptr, vocab and params into `folder`; delete the work files."""
        self._terms.close()
        self._tfs.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        n = self.num_docs
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int64)
        counts = np.concatenate(self._counts) if self._counts else np.zeros(0, dtype=np.int64)
        avgdl = lengths.mean() if n else np.float64(0)  # bm25s: np.array([len(doc) ...]).mean()
        df = np.asarray(self._df, dtype=np.int64)
        idf = np.zeros(len(df), dtype=np.float32)
        for t, d in enumerate(self._df):  # math.log per term, as bm25s computes each idf
            idf[t] = math.log(1 + (n - d + 0.5) / (d + 0.5))
        # bm25s (numpy 2 promotion): tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf) in float64, times the float32
        # idf in float64, stored as float32.
        denom_base = K1 * ((1 - B) + (B * lengths.astype(np.float64)) / avgdl) if n else np.zeros(0)
        nnz = int(df.sum())
        indptr = np.zeros(len(df) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        data = np.lib.format.open_memmap(self.folder / "data.csc.index.npy", mode="w+", dtype=np.float32, shape=(nnz,))
        indices = np.lib.format.open_memmap(self.folder / "indices.csc.index.npy", mode="w+", dtype=np.int32, shape=(nnz,))
        heads = indptr[:-1].copy()
        doc_of_first = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=doc_of_first[1:])
        terms_all = np.memmap(self.work / "bm25-terms.bin", dtype=np.int32, mode="r") if nnz else np.zeros(0, np.int32)
        tfs_all = np.memmap(self.work / "bm25-tf.bin", dtype=np.uint16, mode="r") if nnz else np.zeros(0, np.uint16)
        for lo in range(0, nnz, chunk):
            hi = min(nnz, lo + chunk)
            tids = np.asarray(terms_all[lo:hi], dtype=np.int64)
            tf = np.asarray(tfs_all[lo:hi], dtype=np.float64)
            docs = np.searchsorted(doc_of_first, np.arange(lo, hi, dtype=np.int64), side="right") - 1
            scores = (idf[tids].astype(np.float64) * (tf / (denom_base[docs] + tf))).astype(np.float32)
            # Counting sort into columns: postings arrive in document order, so a stable sort by term keeps each
            # column's documents ascending, as CSC needs.
            order = np.argsort(tids, kind="stable")
            st = tids[order]
            first = np.searchsorted(st, st, side="left")
            rank = np.arange(len(st), dtype=np.int64) - first
            pos = heads[st] + rank
            data[pos] = scores[order]
            indices[pos] = docs[order].astype(np.int32)
            heads += np.bincount(st, minlength=len(heads))
            for m in (data, indices, terms_all, tfs_all):
                drop_pages(m)
        data.flush()
        indices.flush()
        del data, indices, terms_all, tfs_all
        np.save(self.folder / "indptr.csc.index.npy", indptr, allow_pickle=False)
        vocab = dict(self.vocab)
        if "" not in vocab:  # bm25s's create_empty_token: "" gets the next id (with no column of its own)
            vocab[""] = max(vocab.values(), default=-1) + 1
        (self.folder / "vocab.index.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        params = {"k1": K1, "b": B, "delta": DELTA, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
                  "int_dtype": "int32", "num_docs": n, "version": "leftqa-postings", "backend": "numpy"}  # fmt: skip
        (self.folder / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")
        for name in ("bm25-terms.bin", "bm25-tf.bin"):
            (self.work / name).unlink(missing_ok=True)


def lexical_bm25(index: Any, tokens: list[str], context: list[str], context_weight: float, k: int | None = None) -> SparseScores:
    """Sparse BM25 scores of a query (+ weighted context) over a loaded or freshly built index; exact top `k`."""
    known = [t for t in tokens if t in index.doc_freq]
    known_ctx = [t for t in context if t in index.doc_freq]
    bm25 = index.bm25
    if hasattr(bm25, "indptr") and bm25.nonoccurrence_array is None:  # a loaded index: memory-mapped postings
        sparse = getattr(bm25, "_leftqa_sparse", None)
        if sparse is None:
            sparse = bm25._leftqa_sparse = SparseBm25(bm25)
        if k is not None:
            return sparse.top_scores(known, known_ctx, context_weight, k)
        return sparse.scores(known, known_ctx, context_weight)
    # A freshly built bm25s object (or a BM25L/BM25+ index): full arrays, wrapped in the same interface.
    n = index.size
    full = np.asarray(bm25.get_scores(known), dtype=np.float32) if known and n else np.zeros(n, dtype=np.float32)
    if known_ctx and n:
        full = full + context_weight * np.asarray(bm25.get_scores(known_ctx), dtype=np.float32)
    ids = np.flatnonzero(full != 0).astype(np.int64)
    return SparseScores(ids, full[ids], n, lambda want: full[want])


class DenseScores:
    """The SparseScores interface over one full score array (for queries whose postings cover much of the corpus)."""

    def __init__(self, scorer: Any, main: list, ctx: list, context_weight: float) -> None:
        full = np.zeros(scorer.num_docs, dtype=scorer.dtype)
        for idx, data in main:
            np.add.at(full, idx, data)
        if ctx:
            part = np.zeros(scorer.num_docs, dtype=scorer.dtype)
            for idx, data in ctx:
                np.add.at(part, idx, data)
            full = full + np.asarray(context_weight, dtype=full.dtype) * part
        self.full, self.num_docs, self.exact_k = full, scorer.num_docs, None

    def max(self) -> float:
        """The highest score."""
        return float(self.full.max()) if self.num_docs else 0.0

    def top(self, k: int, fill: bool = False) -> np.ndarray:
        """Ids of the k best passages with a positive score (any score with `fill`), best first, ties by lower id."""
        k = min(k, self.num_docs)
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        kth = -np.partition(-self.full, k - 1)[k - 1]
        ids = np.flatnonzero(self.full >= kth) if kth > 0 else np.flatnonzero(self.full > 0)
        ids = ids[np.lexsort((ids, -self.full[ids]))][:k].astype(np.int64)
        if fill and len(ids) < k:
            ids = np.concatenate([ids, _first_missing(np.sort(ids), k - len(ids), self.num_docs)])
        return ids

    def at(self, ids: np.ndarray) -> np.ndarray:
        """Scores of the given passages."""
        return self.full[np.asarray(ids, dtype=np.int64)]
