"""The on-disk index: passages (JSONL), vectors (.npy), FAISS and BM25 files, and a manifest; written atomically.

Loading is cheap at any size: vectors, BM25 postings and the FAISS codes are memory-mapped, and passages are
decoded from the JSONL only when a query touches them (through a line-offset table), so a 1M-passage index
opens in seconds and keeps only what queries read in memory. The dense index is exact (flat inner product)
below ANN_THRESHOLD passages and HNSW above it; the manifest records which, with its parameters. From
`compact.COMPACT_THRESHOLD` passages on, `build_index` writes the compact layout instead (quantised vectors:
index/compact.py writes it, index/codes.py reads it for `Index.load`); the manifest's `layout` says which.
The manifest's typed records are in index/manifest.py (imported from here too).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from leftqa import __version__
from leftqa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from leftqa.files import file_sha256
from leftqa.index.codes import LAYOUT, load_compact
from leftqa.index.embed import split_backend
from leftqa.index.manifest import FORMAT, FORMAT_VERSION, Chunking, DocumentEntry, FileEntry, IndexManifest, SkippedEntry  # noqa: F401 (re-exported)
from leftqa.index.mapped import Bm25Scorer, PassageStore, line_offsets, mapped_array
from leftqa.records import Passage
from leftqa.text import terms

MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
PASSAGE_OFFSETS = "passage_offsets.npy"  # byte offset of each JSONL line (+ end); optional for older indexes
SENTENCE_STARTS = "sentence_starts.npy"  # first sentence row of each passage (+ end); optional likewise
PASSAGE_VECTORS = "passage_vectors.npy"
SENTENCE_VECTORS = "sentence_vectors.npy"
DENSE = "dense.faiss"
TERMS = "terms.json"
BM25_DIR = "bm25"
REBUILD_HINT = "run `leftqa index` to rebuild it"

# Exact search reads every vector: 14-17 ms of CPU per query at 100K passages here (6 ms on an idle machine of
# this kind) and linear in size (docs/scaling.md); from this many passages on, an HNSW graph answers in about a
# millisecond at recall@10 >= 0.95 against exact search (measured by benchmarks/run.py).
ANN_THRESHOLD = 50_000
HNSW = {"M": 32, "efConstruction": 40}
# efSearch is a query-time knob, applied at load by index size whatever the index was built with. Recall@10
# against exact search on synthetic passages (docs/scaling.md): at 100K 0.90 with 128, 0.95 with 256, 0.98 with
# 512 (4 ms CPU per query); at 1M 0.93 with 512, 0.96 with 1024, 0.98 with 2048 (21 ms).
EF_SEARCH = ((300_000, 512), (10**12, 2048))


def ef_search(n: int) -> int:
    """HNSW efSearch for an index of `n` passages: recall@10 >= 0.95 with a margin, at a few ms to ~20 ms."""
    return next(ef for limit, ef in EF_SEARCH if n < limit)
# Files above this size are checked at load by size and a hash of their first and last MiB (hashing a 6 GB
# vector file would take longer than everything else a load does); smaller files by their full sha256.
FULL_HASH_LIMIT = 64 << 20
EDGE = 1 << 20


def edge_sha256(path: Path) -> str:
    """Hex sha256 of a file's size, first MiB and last MiB: the quick load-time check of large files."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(EDGE))
        f.seek(max(0, size - EDGE))
        h.update(f.read(EDGE))
    return h.hexdigest()


def dense_spec(n: int, ann_threshold: int = ANN_THRESHOLD) -> dict[str, Any]:
    """Which dense index `n` passages get: exact flat inner product, or HNSW with its parameters."""
    if n < ann_threshold:
        return {"type": "flat-ip"}
    return {"type": f"hnsw{HNSW['M']}-ip", **HNSW, "efSearch": ef_search(n)}


def build_dense(vectors: np.ndarray, spec: dict[str, Any] | None = None) -> Any:
    """FAISS inner-product index over normalised vectors (cosine similarity): flat, or HNSW per `spec`."""
    import faiss

    spec = spec or {"type": "flat-ip"}
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    if spec["type"] == "flat-ip":
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, int(spec["M"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(spec["efConstruction"])
        index.hnsw.efSearch = int(spec["efSearch"])
    step = 100_000  # adding in slices keeps the float32 copy of a memory-mapped array small
    for lo in range(0, len(vectors), step):
        index.add(np.ascontiguousarray(vectors[lo : lo + step], dtype=np.float32))
    return index


def build_bm25(token_lists: list[list[str]]) -> Any:
    """A bm25s index over pre-tokenised passages."""
    import bm25s

    retriever = bm25s.BM25()
    # bm25s needs at least one token per document to build its matrix; an empty passage gets a placeholder.
    retriever.index([toks or [""] for toks in token_lists], show_progress=False)
    return retriever


def _sentence_starts(passages: Sequence) -> np.ndarray:
    starts = np.zeros(len(passages) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([len(p.sentences) for p in passages])
    return starts


@dataclass
class Index:
    """A loaded (or freshly built) index; read-only once built, so it can serve concurrent queries."""

    manifest: IndexManifest
    passages: Sequence  # list[Passage] when built, PassageStore when loaded
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    sentence_starts: np.ndarray  # row in sentence_vectors of each passage's first sentence; len = passages + 1
    doc_freq: dict[str, int]
    dense: Any
    bm25: Any

    @property
    def size(self) -> int:
        """Number of passages."""
        return len(self.passages)

    @classmethod
    def build(
        cls,
        passages: list[Passage],
        embed: Callable[[list[str]], np.ndarray],
        manifest: IndexManifest,
        ann_threshold: int = ANN_THRESHOLD,
    ) -> "Index":
        """Embed passages and their sentences and build the dense and BM25 indexes in memory.

        `manifest` describes the passages (model, chunking, documents...); the index's adds format, sizes and dense index."""
        passage_vectors = embed([p.text for p in passages])
        sentence_texts = [s.text for p in passages for s in p.sentences]
        sentence_vectors = embed(sentence_texts)
        del sentence_texts
        token_lists = [terms(p.text) for p in passages]
        doc_freq = Counter(t for toks in token_lists for t in set(toks))
        dim = int(passage_vectors.shape[1]) if passage_vectors.ndim == 2 else 0
        spec = dense_spec(len(passages), ann_threshold)
        starts = _sentence_starts(passages)
        return cls(
            manifest=with_contents(manifest, dim, len(passages), int(starts[-1]), spec),
            passages=passages,
            passage_vectors=passage_vectors,
            sentence_vectors=sentence_vectors,
            sentence_starts=starts,
            doc_freq=dict(sorted(doc_freq.items())),
            dense=build_dense(passage_vectors, spec),
            bm25=build_bm25(token_lists),
        )

    def save(self, path: Path) -> None:
        """Write all files into a temporary folder beside `path`, then swap it in (a crash keeps the old index)."""
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            offsets = np.zeros(len(self.passages) + 1, dtype=np.int64)
            with (tmp / PASSAGES).open("wb") as f:
                for i, p in enumerate(self.passages):
                    line = (json.dumps(p.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
                    f.write(line)
                    offsets[i + 1] = offsets[i] + len(line)
            np.save(tmp / PASSAGE_OFFSETS, offsets, allow_pickle=False)
            np.save(tmp / SENTENCE_STARTS, np.asarray(self.sentence_starts, dtype=np.int64), allow_pickle=False)
            np.save(tmp / PASSAGE_VECTORS, self.passage_vectors, allow_pickle=False)
            np.save(tmp / SENTENCE_VECTORS, self.sentence_vectors, allow_pickle=False)
            faiss.write_index(self.dense, str(tmp / DENSE))
            (tmp / TERMS).write_text(json.dumps({"doc_freq": self.doc_freq}, ensure_ascii=False), encoding="utf-8")
            self.bm25.save(str(tmp / BM25_DIR), show_progress=False)
            self.manifest = publish(tmp, path, self.manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: Path, verify: bool = True) -> "Index":
        """Load an index folder, checking format and file checksums; raises typed errors, never a traceback."""
        import faiss

        path = Path(path)
        recover(path)
        manifest = read_manifest(path)
        if manifest.layout not in (None, LAYOUT):
            raise IndexMismatchError(f"index layout {manifest.layout!r} is not one this version reads; {REBUILD_HINT}")
        if verify:
            verify_files(path, manifest)
        try:
            offsets_file = path / PASSAGE_OFFSETS
            offsets = np.load(offsets_file, mmap_mode="r", allow_pickle=False) if offsets_file.exists() else line_offsets(path / PASSAGES)
            doc_freq = json.loads((path / TERMS).read_text("utf-8"))["doc_freq"]
            if manifest.layout == LAYOUT:  # quantised vectors, written by leftqa.index.compact
                starts = np.load(path / SENTENCE_STARTS, mmap_mode="r", allow_pickle=False)
                passages, passage_vectors, sentence_vectors, dense, bm25 = load_compact(path, manifest, offsets, PASSAGES, DENSE, BM25_DIR)
                return cls._checked(path, manifest, passages, passage_vectors, sentence_vectors, starts, doc_freq, dense, bm25)
            passages = PassageStore(path / PASSAGES, offsets)
            starts_file = path / SENTENCE_STARTS
            starts = np.load(starts_file, allow_pickle=False) if starts_file.exists() else _sentence_starts(passages)
            passage_vectors = mapped_array(path / PASSAGE_VECTORS)
            sentence_vectors = mapped_array(path / SENTENCE_VECTORS)
            # Memory-mapped codes: the OS pages vectors in as searches touch them, and shares them between processes.
            dense = faiss.read_index(str(path / DENSE), faiss.IO_FLAG_MMAP_IFC)
            if hasattr(dense, "hnsw"):
                dense.hnsw.efSearch = ef_search(dense.ntotal)
                manifest = replace(manifest, dense_params={**(manifest.dense_params or {}), "efSearch": dense.hnsw.efSearch})
            bm25 = Bm25Scorer.load(path / BM25_DIR)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexCorruptError(f"index at {path} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); {REBUILD_HINT}") from None
        return cls._checked(path, manifest, passages, passage_vectors, sentence_vectors, starts, doc_freq, dense, bm25)

    @classmethod
    def _checked(cls, path: Path, manifest: IndexManifest, passages: Sequence, passage_vectors: Any, sentence_vectors: Any,
                 starts: np.ndarray, doc_freq: dict[str, int], dense: Any, bm25: Any) -> "Index":  # fmt: skip
        n = len(passages)
        if (
            len(starts) != n + 1
            or len(passage_vectors) != n
            or len(sentence_vectors) != int(starts[-1])
            or dense.ntotal != n
            or bm25.num_docs != n
        ):
            raise IndexCorruptError(f"index at {path} is inconsistent (row counts differ); {REBUILD_HINT}")
        return cls(manifest, passages, passage_vectors, sentence_vectors, starts, doc_freq, dense, bm25)

    def check_compatible(self, model: str, chunking: dict[str, int], corpus_fingerprint: str | None) -> None:
        """Raise IndexMismatchError when the index was built for another model, backend, chunking or corpus."""
        m = self.manifest
        built = m.backend or split_backend(m.model)[0]
        wanted, base = split_backend(model)
        if built != wanted and split_backend(m.model)[1] == base:
            raise IndexMismatchError(
                f"the index was built with the {built!r} embedding backend but {wanted!r} is configured "
                f"(their vectors are not interchangeable); rebuild with `leftqa index --model {model}` or use "
                f"--model {m.model}"
            )
        if m.model != model:
            raise IndexMismatchError(
                f"the index was built with model {m.model!r} but {model!r} is configured; {REBUILD_HINT}"
            )
        if m.chunking.to_dict() != chunking:
            raise IndexMismatchError(f"the index was built with chunking {m.chunking.to_dict()} but {chunking} is configured; {REBUILD_HINT}")
        if corpus_fingerprint is not None and m.corpus_fingerprint != corpus_fingerprint:
            raise IndexMismatchError(f"the corpus changed since the index was built; {REBUILD_HINT}")


def with_contents(manifest: IndexManifest, dim: int, passages: int, sentences: int, spec: dict[str, Any]) -> IndexManifest:
    """`manifest` (what the passages came from) with what an index of them holds: format, sizes and dense index."""
    return replace(
        manifest, format=FORMAT, format_version=FORMAT_VERSION, leftqa_version=__version__,
        backend=split_backend(manifest.model)[0], dimension=dim, passages=passages, sentences=sentences,
        dense_index=spec["type"], dense_params={k: v for k, v in spec.items() if k != "type"},
    )  # fmt: skip


def publish(tmp: Path, path: Path, manifest: IndexManifest) -> IndexManifest:
    """Write `manifest`, with the time and every file of the folder `tmp` (size, sha256), into `tmp`, then swap
    `tmp` in at `path`; returns the manifest as written."""
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest = replace(
        manifest,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        files={f.relative_to(tmp).as_posix(): _file_entry(f) for f in files},
    )
    (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _fsync_tree(tmp)
    swap_in(tmp, path)
    return manifest


def _file_entry(f: Path) -> FileEntry:
    size = f.stat().st_size
    return FileEntry(size, file_sha256(f), edge_sha256(f) if size > FULL_HASH_LIMIT else None)


def read_manifest(path: Path) -> IndexManifest:
    """The manifest of an index folder, checked for format and version, then field by field."""
    mpath = Path(path) / MANIFEST
    if not mpath.exists():
        raise IndexMissingError(f"no index at {path}; run `leftqa index` to build it")
    try:
        manifest = json.loads(mpath.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"index manifest {mpath} is unreadable ({exc}); {REBUILD_HINT}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexCorruptError(f"{mpath} is not a leftqa index manifest; {REBUILD_HINT}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format version {manifest.get('format_version')} is not the supported {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    try:
        return IndexManifest.from_dict(manifest)
    except IndexCorruptError as exc:
        raise IndexCorruptError(f"index manifest {mpath} is malformed: {exc}; {REBUILD_HINT}") from None


def verify_files(path: Path, manifest: IndexManifest, full: bool = False) -> None:
    """Check every index file's size and checksum against the manifest (large files by their edges unless `full`)."""
    if not manifest.files:
        raise IndexCorruptError(f"index manifest at {path} lists no files; {REBUILD_HINT}")
    for name, meta in manifest.files.items():
        fpath = Path(path) / name
        if not fpath.is_file():
            raise IndexCorruptError(f"index file {name} is missing from {path}; {REBUILD_HINT}")
        size = fpath.stat().st_size
        if size != meta.bytes:
            ok = False
        elif not full and meta.edge_sha256 is not None:
            ok = edge_sha256(fpath) == meta.edge_sha256
        else:
            ok = file_sha256(fpath) == meta.sha256
        if not ok:
            raise IndexCorruptError(f"index file {name} in {path} is truncated or altered (checksum mismatch); {REBUILD_HINT}")


def _fsync_tree(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two folders (Linux renameat2 with RENAME_EXCHANGE); False where that is unavailable."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


def swap_in(tmp: Path, path: Path) -> None:
    """Replace `path` by `tmp`, then delete the old index.

    Where the kernel can exchange two folders in one step, no reader ever sees `path` missing; elsewhere the old
    index is renamed aside first (and `recover` puts it back after a crash between the two renames)."""
    if path.exists() and _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous index
        return
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def recover(path: Path) -> None:
    """After a crash between the two renames of `swap_in`, put the previous index back."""
    if path.exists():
        return
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in olds:
        if (old / MANIFEST).exists():
            os.rename(old, path)
            return
