"""The compact index layout for large corpora, written in bounded memory and read memory-mapped.

What differs from the exact layout (`store.py`), and why (measurements in docs/scaling.md):
- each passage vector is stored once, as the 8-bit scalar-quantised codes inside the FAISS index (HNSW over
  SQ8 codes); queries that need a candidate's vector decode it from there (`codes.py` reads the layout);
- sentence vectors are int8 with one float32 scale per vector (absmax / 127): a quarter of float32, and
  decoding then re-encoding gives the same codes, so incremental builds that reuse vectors do not drift;
- passages are JSONL without the sentence texts (each is a slice of the passage text, kept as offsets);
- BM25 postings come from `postings.Bm25Writer` (bm25s's files and scores, written from streamed chunks).

`CompactWriter` takes passages with their vectors in chunks and keeps only per-passage counters in memory
(offsets, lengths); vectors and postings go to files as they come. `write_compact` feeds it from a stream of
passages (the builder's, as it reads the corpus), one chunk at a time. Everything is written into a temporary
folder with a manifest of sha256 checksums, then swapped in as `Index.save` does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, fields, replace
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from leftqa.errors import IndexCorruptError, IndexWriteError
from leftqa.index.codes import (
    LAYOUT,
    SENTENCE_CODES,
    SENTENCE_SCALES,
    passage_to_compact,
    quantise,
    shard_bounds,
    shard_file,
)
from leftqa.index.manifest import IndexManifest
from leftqa.index.postings import Bm25Writer, drop_pages
from leftqa.records import Passage
from leftqa.text import terms

HEADER = 128  # bytes reserved for a streamed .npy header (rewritten with the final shape at the end)
CHUNK = 50_000  # passages embedded and written per step of a streamed build
# Recall@10 against exact search, single-thread ms per query and build time of the candidates on the synthetic
# benchmark vectors (benchmarks/ann_choice.py, docs/scaling.md) decided these parameters. HNSW over SQ8 codes:
# IVF-SQ8 stayed at 0.86 scanning 15% of the lists, HNSW16 at 0.88. M 32 reached 0.968 at 200K (efSearch 1024,
# 7 ms) and 0.9635 at 1M (2048, 23 ms), but only 0.9305 at 10M (4096). M 48 at 1M reaches 0.968 at efSearch 1024
# (15.9 ms), 0.976 at 2048 (28.3 ms) and 0.9825 at 4096 (52.9 ms), for 128 more bytes a vector (784) and 1.3 times
# the build (bench-results.json compact_runs.ann_m48_1m); efConstruction 80 changed nothing at 1M. The efSearch
# steps were chosen with M 32; at 10M one M 48 graph reached only 0.948 at 4096 (200 ms), hence shards (below).
COMPACT_THRESHOLD = 50_000  # below this many passages the exact layout (float32, flat search) is kept
HNSW_M, EF_CONSTRUCTION = 48, 40
EF_SEARCH = ((300_000, 1024), (3_000_000, 2048), (10**12, 4096))
# Above SHARD_ROWS passages the dense index is several graphs of at most SHARD_ROWS consecutive rows, searched
# side by side and merged by score: over the 10M benchmark vectors, ten 1M graphs reached recall@10 0.961 at
# efSearch 512 (48 ms, 0.972 at 1024 in 83 ms) where one 10M graph needed 4096 for 0.948 (200 ms), and they were
# built in 4,748 s against 8,285 s (compact_runs.ann_shards_10m). Ten 100K graphs did not beat one 1M graph by
# the margin set beforehand (ann_shards_1m), so indexes up to SHARD_ROWS keep one graph. SHARDED_EF gives the
# efSearch of each graph by the number of graphs: with fewer graphs each must find more of the top 10, so fewer
# than 8 keep 1024. The first 2 and 5 of the ten graphs, as indexes of their 2M and 5M rows, reached 0.9655 and
# 0.9665 at 1024, and only 0.9515 and 0.954 at 512 (compact_runs.ann_shards_first_2_5).
SHARD_ROWS = 1_000_000
SHARDED_EF = ((8, 1024), (10**12, 512))
# HNSW insertion at 10M takes hours (6,187 s with M 32 on 2 cores, more with M 48): with a checkpoint folder the
# partial index is saved every DENSE_CHECKPOINT_ROWS rows, so a killed build resumes instead of starting over.
DENSE_CHECKPOINT_ROWS = 1_000_000
ADD_ROWS = 100_000  # rows read from the float32 scratch file and inserted per step
FINGERPRINT_ROWS = 4096  # rows sampled (evenly spaced) to tell one input's vectors from another's
PARTIAL, PARTIAL_TMP, STATE, STATE_TMP = "dense.partial", "dense.partial.tmp", "state.json", "state.json.tmp"


def compact_spec(n: int) -> dict[str, Any]:
    """The dense index of a compact layout of `n` passages: its type (which names the SQ8 quantiser) and integer
    parameters (with `shards`, the number of graphs, above SHARD_ROWS), the manifest's `dense_index` and `dense_params`."""
    spec: dict[str, Any] = {"type": f"hnsw{HNSW_M}-sq8-ip", "M": HNSW_M, "efConstruction": EF_CONSTRUCTION}
    if n > SHARD_ROWS:
        shards = -(-n // SHARD_ROWS)
        return {**spec, "efSearch": next(e for limit, e in SHARDED_EF if shards < limit), "shards": shards}
    return {**spec, "efSearch": next(e for limit, e in EF_SEARCH if n < limit)}


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
    """Streams passages and their vectors into a compact index folder; `finish` builds FAISS/BM25 and swaps it in.

    `checkpoint`: a folder (outside `path` and the temporary folder, both replaced or deleted) where `finish` saves
    the HNSW insertion's progress, so a build killed then and run again on the same vectors resumes it."""

    def __init__(self, path: Path, dim: int, sq_trained: np.ndarray | None = None, log: Callable[[str], None] | None = None, checkpoint: Path | None = None) -> None:
        self.path = Path(path)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
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

    def finish(self, manifest: IndexManifest, spec: dict[str, Any] | None = None) -> IndexManifest:
        """Build the dense index and BM25, write the manifest with checksums and swap the folder in.

        `manifest` describes the passages (model, chunking, documents...); the returned one, as written, adds
        format to dense_params, `layout` and extra["quantisation"] (how vectors are stored), created and files."""
        import faiss

        from leftqa.index.store import DENSE, publish, with_contents

        try:
            self.seal()
            t = time.perf_counter()
            spec = spec or compact_spec(self.passages)
            vectors = np.memmap(self.work / "passage_vectors.f32", dtype=np.float32, mode="r", shape=(self.passages, self.dim)) if self.passages else np.zeros((0, self.dim), np.float32)
            if spec.get("shards"):
                self.say(f"building the {spec['type']} dense index as {spec['shards']} graphs")
                trained_again = build_sharded_dense(vectors, spec, self.tmp, self.sq_trained, self.checkpoint, self.say, self._dense_progress)
            else:
                self.say(f"building the {spec['type']} dense index")
                dense, trained_again = build_compact_dense(vectors, spec, self.sq_trained, self.checkpoint, DENSE_CHECKPOINT_ROWS, self.say, self._dense_progress)
                faiss.write_index(dense, str(self.tmp / DENSE))
                del dense
            del vectors
            self.timings["dense_s"] = time.perf_counter() - t
            shutil.rmtree(self.work)
            t = time.perf_counter()
            quantisation = {
                "passage_vectors": "sq8 codes inside the dense index (decoded on read)",
                "sq_reused": not trained_again,  # the previous index's SQ8 ranges (every vector fitted them)
                "sentence_vectors": "int8, one float32 scale per vector (absmax/127)",
            }
            manifest = with_contents(manifest, self.dim, self.passages, self.sentences, spec)
            manifest = publish(self.tmp, self.path, replace(manifest, layout=LAYOUT, extra={**manifest.extra, "quantisation": quantisation}))
            if self.checkpoint is not None:  # only once the index is in place: a build killed while saving it resumes
                clear_checkpoint(self.checkpoint)
            self.timings["files_s"] = time.perf_counter() - t
            return manifest
        except BaseException:
            self.abort()
            raise

    def _dense_progress(self, event: str, rows: int) -> None:
        if event == "resumed":  # then dense_s times only the rows inserted by this process
            self.timings["dense_resumed_at_rows"] = float(rows)

    def abort(self) -> None:
        """Delete the temporary folder (the index in place stays as it was)."""
        for f in (self._passages, self._pvecs, self._codes._f, self._scales._f):
            f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass(frozen=True)
class DenseCheckpoint:
    """The state.json of a dense checkpoint folder: how many rows dense.partial holds, and of which build."""

    rows: int  # rows of the input inserted (in order) into dense.partial
    total: int  # rows of the input
    dim: int
    spec: dict[str, Any]  # type, M, efConstruction, efSearch (and shards, for a sharded index)
    fingerprint: str  # vectors_fingerprint of the input
    sq_given: str | None  # sha256 of the SQ8 ranges offered for reuse (None: none offered)
    trained_here: bool
    faiss: str  # the FAISS version: another one may build another graph from the same rows

    def same_build(self, other: DenseCheckpoint) -> bool:
        """Whether both describe the same input, spec and FAISS, whatever their progress."""
        return replace(self, rows=0) == replace(other, rows=0)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as state.json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DenseCheckpoint:
        """The state read back; TypeError when it is not a JSON object, ValueError when a field is missing or malformed."""
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        kinds = {"rows": int, "total": int, "dim": int, "spec": dict, "fingerprint": str, "sq_given": (str, type(None)), "trained_here": bool, "faiss": str}
        for f in fields(cls):
            if not isinstance(data.get(f.name), kinds[f.name]) or (kinds[f.name] is int and isinstance(data[f.name], bool)):
                raise ValueError(f"field {f.name!r} is missing or malformed")
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def build_compact_dense(
    vectors: np.ndarray,
    spec: dict[str, Any],
    sq_trained: np.ndarray | None = None,
    checkpoint: Path | None = None,
    every: int = DENSE_CHECKPOINT_ROWS,
    log: Callable[[str], None] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> tuple[Any, bool]:
    """(FAISS index over SQ8 codes, whether the quantiser was trained here); `sq_trained` reuses a previous one.

    `checkpoint`: a folder where the partial index and its state are saved once the quantiser is trained and then
    every `every` rows, and resumed from when they are of the same build (same vectors, spec, offered ranges and
    FAISS); any other content is deleted. The folder is left in place: the caller removes it (`clear_checkpoint`)
    once the index is saved. `on_progress(event, rows)` is called with "resumed" and the rows found in the checkpoint,
    and with "saved" after each checkpoint (tests interrupt the build there)."""
    import faiss

    say = log or (lambda _m: None)
    n, dim = vectors.shape
    trained_here = _needs_training(vectors, sq_trained)
    state = None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        state = _checkpoint_state_of(vectors, spec, sq_trained, trained_here)
    index = _resume(checkpoint, state, say) if checkpoint is not None and state is not None else None
    if index is not None:
        start = int(index.ntotal)
        if on_progress is not None:
            on_progress("resumed", start)
        # HNSW draws each new vertex's level from a generator that read_index resets to its seed: drawing the levels
        # of the rows already inserted puts it where an uninterrupted build's would be (the same levels, one thread:
        # the same graph).
        for _ in range(start):
            index.hnsw.random_level()
    else:
        start = 0
        if trained_here:
            # SQ8 ranges per dimension from a sample of at most 200K rows.
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, int(spec["M"]), faiss.METRIC_INNER_PRODUCT)
            step = max(1, n // 200_000)
            index.train(strided_rows(vectors, step) if n else np.zeros((1, dim), np.float32))
        else:
            # The previous index's ranges: reused vectors decode to bucket centres and re-encode to the same codes.
            index = _empty_graph(dim, spec, np.asarray(sq_trained, dtype=np.float32))
        if checkpoint is not None and state is not None and n:
            save_checkpoint(checkpoint, index, state)
    index.hnsw.efConstruction = int(spec["efConstruction"])
    index.hnsw.efSearch = int(spec["efSearch"])
    # Blocks of the same rows whether resumed or not (HNSW inserts a block's vertices highest level first, so the
    # graph depends on where blocks start); checkpoints fall on block ends, which are multiples of `block`.
    block = max(1, min(ADD_ROWS, every))
    t0, hi = time.perf_counter(), start
    for rows in windows(vectors, block, start=start):  # the float32 scratch file (15 GB at 10M) must not stay resident next to the graph
        index.add(rows)
        lo, hi = hi, hi + len(rows)
        if hi // every > lo // every and hi < n:
            rate = (hi - start) / max(time.perf_counter() - t0, 1e-9)
            say(f"dense index: {hi:,} of {n:,} rows inserted ({rate:,.0f} rows/s)")
            if checkpoint is not None and state is not None:
                save_checkpoint(checkpoint, index, replace(state, rows=hi))
                if on_progress is not None:
                    on_progress("saved", hi)
    return index, trained_here


def _needs_training(vectors: np.ndarray, sq_trained: np.ndarray | None) -> bool:
    """Whether the SQ8 ranges offered for reuse are missing, of another width, or too narrow for `vectors`."""
    return sq_trained is None or len(sq_trained) != 2 * vectors.shape[1] or not _within(vectors, np.asarray(sq_trained, dtype=np.float32))


def _checkpoint_state_of(vectors: np.ndarray, spec: dict[str, Any], sq_trained: np.ndarray | None, trained_here: bool) -> DenseCheckpoint:
    """The checkpoint state (no rows yet) of a dense build of `vectors` with `spec` and the offered ranges."""
    import faiss

    n, dim = vectors.shape
    sq_given = hashlib.sha256(np.asarray(sq_trained, dtype=np.float32).tobytes()).hexdigest() if sq_trained is not None else None
    return DenseCheckpoint(0, n, dim, _checkpoint_key(spec), vectors_fingerprint(vectors), sq_given, trained_here, faiss.__version__)


def _checkpoint_key(spec: dict[str, Any]) -> dict[str, Any]:
    """What of a dense spec a checkpoint must share with the build that resumes it."""
    return {k: spec[k] for k in ("type", "M", "efConstruction", "efSearch", "shards") if k in spec}


def _empty_graph(dim: int, spec: dict[str, Any], ranges: np.ndarray) -> Any:
    """An empty HNSW graph over SQ8 codes with the given per-dimension ranges (shared by the graphs of an index)."""
    import faiss

    index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, int(spec["M"]), faiss.METRIC_INNER_PRODUCT)
    storage = faiss.downcast_index(index.storage)
    faiss.copy_array_to_vector(np.asarray(ranges, dtype=np.float32), storage.sq.trained)
    storage.is_trained = True
    index.is_trained = True
    index.hnsw.efConstruction = int(spec["efConstruction"])
    index.hnsw.efSearch = int(spec["efSearch"])
    return index


def build_sharded_dense(
    vectors: np.ndarray,
    spec: dict[str, Any],
    out: Path,
    sq_trained: np.ndarray | None = None,
    checkpoint: Path | None = None,
    log: Callable[[str], None] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> bool:
    """Write spec["shards"] HNSW graphs over SQ8 codes, one per consecutive row range of `vectors`, into `out`
    (codes.shard_file names); returns whether the quantiser was trained here (`sq_trained` reuses a previous one).

    Only one graph is in memory at a time. With a `checkpoint` folder each finished graph is saved there with the
    state, and a build of the same vectors, spec, offered ranges and FAISS resumes at the first unfinished graph;
    the graphs are linked into `out` at the end, and the caller clears the folder once the index is in place."""
    import faiss

    say = log or (lambda _m: None)
    n, dim = vectors.shape
    shards = int(spec["shards"])
    bounds = shard_bounds(n, shards).tolist()
    trained_here = _needs_training(vectors, sq_trained)
    if trained_here:
        trainer = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        trainer.train(strided_rows(vectors, max(1, n // 200_000)))  # the same sample as one graph's (200K rows at most)
        ranges = faiss.vector_to_array(trainer.sq.trained).astype(np.float32)
    else:
        ranges = np.asarray(sq_trained, dtype=np.float32)
    folder, state, done = out, None, 0
    if checkpoint is not None:
        folder = Path(checkpoint)
        state = _checkpoint_state_of(vectors, spec, sq_trained, trained_here)
        done = _resume_shards(folder, state, bounds, ranges, say)
        if done and on_progress is not None:
            on_progress("resumed", bounds[done])
        if not done:
            save_checkpoint_state(folder, state)
    t0 = time.perf_counter()
    for k in range(done, shards):
        lo, hi = bounds[k], bounds[k + 1]
        graph = _empty_graph(dim, spec, ranges)
        for rows in windows(vectors[lo:hi], ADD_ROWS):  # the float32 scratch file must not stay resident
            graph.add(rows)
        _write_index_synced(graph, folder / shard_file(k))
        del graph
        rate = (hi - bounds[done]) / max(time.perf_counter() - t0, 1e-9)
        say(f"dense index: graph {k + 1} of {shards} written, {hi:,} of {n:,} rows inserted ({rate:,.0f} rows/s)")
        if state is not None:
            save_checkpoint_state(folder, replace(state, rows=hi))
            if on_progress is not None:
                on_progress("saved", hi)
    if folder != out:
        for k in range(shards):
            try:  # the checkpoint's files become the index's: a link, or a copy across file systems
                os.link(folder / shard_file(k), out / shard_file(k))
            except OSError:
                shutil.copyfile(folder / shard_file(k), out / shard_file(k))
    return trained_here


def _write_index_synced(index: Any, path: Path) -> None:
    """Write a FAISS index atomically (temporary name, fsync, rename), its pages then dropped from the page cache."""
    import faiss

    tmp = path.with_name(path.name + ".tmp")
    try:
        faiss.write_index(index, str(tmp))
        _sync(tmp, drop=True)
        os.replace(tmp, path)
        _sync_dir(path.parent)
    except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as RuntimeError
        raise IndexWriteError(f"cannot write the dense index graph {path}: {exc}") from exc


def save_checkpoint_state(folder: Path, state: DenseCheckpoint) -> None:
    """Write a sharded build's checkpoint state atomically (its finished graphs are already in `folder`)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_synced(folder / STATE_TMP, (json.dumps(state.to_dict(), indent=2) + "\n").encode("utf-8"))
        os.replace(folder / STATE_TMP, folder / STATE)
        _sync_dir(folder)
    except OSError as exc:
        raise IndexWriteError(f"cannot write the dense index checkpoint in {folder}: {exc}") from exc


def _resume_shards(folder: Path, want: DenseCheckpoint, bounds: list[int], ranges: np.ndarray, say: Callable[[str], None]) -> int:
    """How many graphs of the build `want` describes are finished in `folder` (0, and the folder cleared, when
    none can be used)."""
    import faiss

    found = _checkpoint_state(folder, want, say)
    if found is None:
        return 0
    if found.rows not in bounds:
        say(f"dense checkpoint {folder}: {found.rows:,} rows is not the end of a graph: starting the dense index afresh")
        clear_checkpoint(folder)
        return 0
    done = bounds.index(found.rows)
    for k in range(done):
        try:
            graph = faiss.read_index(str(folder / shard_file(k)), faiss.IO_FLAG_MMAP)
            ok = graph.ntotal == bounds[k + 1] - bounds[k] and np.array_equal(sq_ranges(graph), ranges)
            del graph
        except (RuntimeError, AttributeError, OSError) as exc:
            ok = False
            say(f"dense checkpoint {folder}: {exc}")
        if not ok:
            say(f"dense checkpoint {folder}: graph {k} is missing or not of this build: starting the dense index afresh")
            clear_checkpoint(folder)
            return 0
    if done:
        say(f"resuming the dense index from its checkpoint: {done} of {len(bounds) - 1} graphs ({found.rows:,} rows) done ({folder})")
    return done


def _checkpoint_state(folder: Path, want: DenseCheckpoint, say: Callable[[str], None]) -> DenseCheckpoint | None:
    """The state saved in `folder` when it is of the build `want` describes, else None (and the folder cleared)."""
    if not (folder / STATE).is_file():
        if folder.exists():
            say(f"dense checkpoint {folder} has no state: starting the dense index afresh")
            clear_checkpoint(folder)
        return None
    try:
        found = DenseCheckpoint.from_dict(json.loads((folder / STATE).read_text("utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        say(f"dense checkpoint {folder} is unreadable ({exc}): starting the dense index afresh")
        clear_checkpoint(folder)
        return None
    if not found.same_build(want):
        differ = [f.name for f in fields(DenseCheckpoint) if f.name != "rows" and getattr(found, f.name) != getattr(want, f.name)]
        say(f"dense checkpoint {folder} is of another build ({', '.join(differ)} differ): starting the dense index afresh")
        clear_checkpoint(folder)
        return None
    return found


def vectors_fingerprint(vectors: np.ndarray) -> str:
    """sha256 of the row count, width and FINGERPRINT_ROWS evenly spaced rows plus the last (read window by window)."""
    n, dim = vectors.shape
    h = hashlib.sha256(f"{n}x{dim}".encode())
    if n:
        # A sample, not every row: hashing the whole 15 GB scratch file at 10M would read it all once more.
        h.update(strided_rows(vectors, max(1, n // FINGERPRINT_ROWS)).tobytes())
        h.update(np.ascontiguousarray(vectors[n - 1], dtype=np.float32).tobytes())
        drop_pages(vectors)
    return h.hexdigest()


def save_checkpoint(folder: Path, index: Any, state: DenseCheckpoint) -> None:
    """Write the partial index and its state into `folder`, each atomically (temporary name, fsync, rename)."""
    import faiss

    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The state goes to its temporary name first so that the two renames follow each other: a kill between
        # them leaves an index whose row count differs from the state's, which _resume then refuses.
        _write_synced(folder / STATE_TMP, (json.dumps(state.to_dict(), indent=2) + "\n").encode("utf-8"))
        faiss.write_index(index, str(folder / PARTIAL_TMP))
        _sync(folder / PARTIAL_TMP, drop=True)
        os.replace(folder / PARTIAL_TMP, folder / PARTIAL)
        os.replace(folder / STATE_TMP, folder / STATE)
        _sync_dir(folder)
    except (OSError, RuntimeError) as exc:  # FAISS reports a failed write as RuntimeError
        raise IndexWriteError(f"cannot write the dense index checkpoint in {folder}: {exc}") from exc


def clear_checkpoint(folder: Path) -> None:
    """Delete a dense checkpoint folder (or whatever is at that path)."""
    folder = Path(folder)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    elif folder.exists() or folder.is_symlink():
        folder.unlink()


def _resume(folder: Path, want: DenseCheckpoint, say: Callable[[str], None]) -> Any:
    """The partial index saved in `folder` by the build `want` describes, or None (and the folder cleared)."""
    import faiss

    found = _checkpoint_state(folder, want, say)
    if found is None:
        return None
    try:
        index = faiss.read_index(str(folder / PARTIAL))
        ok = index.ntotal == found.rows and index.d == want.dim and index.hnsw.nb_neighbors(0) == 2 * int(want.spec["M"])
    except (RuntimeError, AttributeError) as exc:
        index, ok = None, False
        say(f"dense checkpoint {folder}: {exc}")
    if not ok:
        say(f"dense checkpoint {folder} does not hold the {found.rows:,} rows its state names: starting the dense index afresh")
        clear_checkpoint(folder)
        return None
    say(f"resuming the dense index from its checkpoint at {found.rows:,} of {found.total:,} rows ({folder})")
    return index


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync(path: Path, drop: bool = False) -> None:
    """fsync a file; `drop` then evicts its pages from the page cache (a multi-GB checkpoint would otherwise push
    out the pages of the scratch file being read and of everything else on this shared machine)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if drop and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _sync_dir(folder: Path) -> None:
    """fsync a folder, so the renames in it survive a machine crash as well as a killed process."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def windows(vectors: np.ndarray, rows: int = 100_000, step: int = 1, start: int = 0) -> Iterable[np.ndarray]:
    """Float32 copies of `vectors[lo : lo + rows : step]` for lo from `start` in turn, each window's mapped pages
    dropped once copied."""
    # Reading a memory-mapped file maps more than the rows read: the kernel maps the cached pages around each fault
    # (fault-around), so even rows 50 apart touch most pages. At 10M passages one strided pass put 13 GB of the
    # 15 GB float32 scratch file in the build's RSS (peak 14.5 GB, measured).
    for lo in range(start, len(vectors), rows):
        block = np.ascontiguousarray(vectors[lo : lo + rows : step], dtype=np.float32)
        drop_pages(vectors)
        yield block


def strided_rows(vectors: np.ndarray, step: int, span: int = 100_000) -> np.ndarray:
    """`vectors[::step]` as a float32 copy, read a window of about `span` rows at a time (`windows`)."""
    out = np.empty(((len(vectors) + step - 1) // step, vectors.shape[1]), dtype=np.float32)
    at = 0
    # A window of a multiple of `step` rows, so the windows' rows are exactly vectors[::step].
    for block in windows(vectors, step * max(1, span // step), step):
        out[at : at + len(block)] = block
        at += len(block)
    return out


def _within(vectors: np.ndarray, trained: np.ndarray) -> bool:
    """Whether every vector lies inside the per-dimension SQ8 ranges (vmin, vdiff): new texts outside them would
    be clipped (by up to 0.07 on a small corpus's ranges), so then the quantiser is trained afresh instead."""
    dim = vectors.shape[1]
    # FAISS decodes code c to vmin + (c + 0.5) / 255 * vdiff: the top bucket lies half a step above vmax, and
    # re-encodes to the same code, so a step of slack keeps reused vectors reusable.
    step = trained[dim:] / 255
    vmin, vmax = trained[:dim] - step, trained[:dim] + trained[dim:] + step
    return not any((block.min(axis=0) < vmin).any() or (block.max(axis=0) > vmax).any() for block in windows(vectors, 200_000))


def sq_ranges(dense: Any) -> np.ndarray | None:
    """The trained SQ8 ranges of a compact index's FAISS index (None for other index types)."""
    import faiss

    try:
        dense = faiss.downcast_index(dense)
        if isinstance(dense, faiss.IndexShards):  # one set of ranges for every graph
            dense = faiss.downcast_index(dense.at(0))
        storage = faiss.downcast_index(dense.storage)
        return faiss.vector_to_array(storage.sq.trained).astype(np.float32)
    except (AttributeError, RuntimeError):
        return None


def write_compact(
    path: Path,
    passages: Iterable[Passage],
    embed: Callable[[list[str]], np.ndarray],
    manifest: IndexManifest,
    previous: Any = None,
    log: Callable[[str], None] | None = None,
    chunk: int | None = None,
    late: Callable[[IndexManifest], IndexManifest] | None = None,
) -> IndexManifest:
    """Embed and write `passages` chunk by chunk (`chunk`, default CHUNK) as a compact index at `path`; returns the
    final manifest. `passages` may be a stream: only one chunk of it is held at a time.

    `late` completes the manifest with what is known only once everything is read and embedded (the documents,
    where the build ran)."""
    writer: CompactWriter | None = None
    stream = iter(passages)
    size = chunk or CHUNK
    try:
        while part := list(islice(stream, size)):
            pvecs = embed([p.text for p in part])
            svecs = embed([s.text for p in part for s in p.sentences])
            if writer is None:
                sq = sq_ranges(previous.dense) if previous is not None else None
                writer = CompactWriter(path, int(pvecs.shape[1]), sq, log)
            writer.add(part, pvecs, svecs)
            release = getattr(embed, "release", None)  # the builder's vector cache drops what is now on disk
            if release is not None:
                release()
            del part, pvecs, svecs  # else this chunk stays alive while the next one is read
        if writer is None:
            raise IndexCorruptError("a compact index needs at least one passage")
        return writer.finish(late(manifest) if late is not None else manifest)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
