"""The on-disk index: passages (JSONL), vectors (.npy), FAISS and BM25 files, and a manifest; written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from .errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from .records import Passage
from .text import terms

FORMAT = "leftqa-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
PASSAGE_VECTORS = "passage_vectors.npy"
SENTENCE_VECTORS = "sentence_vectors.npy"
DENSE = "dense.faiss"
TERMS = "terms.json"
BM25_DIR = "bm25"
REBUILD_HINT = "run `leftqa index` to rebuild it"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_dense(vectors: np.ndarray) -> Any:
    """Exact inner-product FAISS index over normalised vectors (cosine similarity)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_bm25(token_lists: list[list[str]]) -> Any:
    """A bm25s index over pre-tokenised passages."""
    import bm25s

    retriever = bm25s.BM25()
    # bm25s needs at least one token per document to build its matrix; an empty passage gets a placeholder.
    retriever.index([toks or [""] for toks in token_lists], show_progress=False)
    return retriever


@dataclass
class Index:
    """A loaded (or freshly built) index; read-only once built, so it can serve concurrent queries."""

    manifest: dict[str, Any]
    passages: list[Passage]
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
        manifest: dict[str, Any],
    ) -> "Index":
        """Embed passages and their sentences and build the dense and BM25 indexes in memory."""
        passage_vectors = embed([p.text for p in passages])
        sentence_texts = [s.text for p in passages for s in p.sentences]
        sentence_vectors = embed(sentence_texts)
        starts = np.zeros(len(passages) + 1, dtype=np.int64)
        starts[1:] = np.cumsum([len(p.sentences) for p in passages])
        token_lists = [terms(p.text) for p in passages]
        doc_freq = Counter(t for toks in token_lists for t in set(toks))
        dim = int(passage_vectors.shape[1]) if passage_vectors.ndim == 2 else 0
        manifest = {
            **manifest,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "leftqa_version": __version__,
            "dimension": dim,
            "passages": len(passages),
            "sentences": len(sentence_texts),
            "dense_index": "flat-ip",
        }
        return cls(
            manifest=manifest,
            passages=passages,
            passage_vectors=passage_vectors,
            sentence_vectors=sentence_vectors,
            sentence_starts=starts,
            doc_freq=dict(sorted(doc_freq.items())),
            dense=build_dense(passage_vectors),
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
            with (tmp / PASSAGES).open("w", encoding="utf-8") as f:
                for p in self.passages:
                    f.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
            np.save(tmp / PASSAGE_VECTORS, self.passage_vectors, allow_pickle=False)
            np.save(tmp / SENTENCE_VECTORS, self.sentence_vectors, allow_pickle=False)
            faiss.write_index(self.dense, str(tmp / DENSE))
            (tmp / TERMS).write_text(json.dumps({"doc_freq": self.doc_freq}, ensure_ascii=False), encoding="utf-8")
            self.bm25.save(str(tmp / BM25_DIR), show_progress=False)
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            manifest = {
                **self.manifest,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": {
                    f.relative_to(tmp).as_posix(): {"bytes": f.stat().st_size, "sha256": file_sha256(f)} for f in files
                },
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            _fsync_tree(tmp)
            self.manifest = manifest
            swap_in(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: Path, verify: bool = True) -> "Index":
        """Load an index folder, checking format and file checksums; raises typed errors, never a traceback."""
        path = Path(path)
        recover(path)
        manifest = read_manifest(path)
        if verify:
            verify_files(path, manifest)
        try:
            passages = [Passage.from_dict(json.loads(line)) for line in (path / PASSAGES).read_text("utf-8").splitlines() if line]
            passage_vectors = np.load(path / PASSAGE_VECTORS, mmap_mode="r", allow_pickle=False)
            sentence_vectors = np.load(path / SENTENCE_VECTORS, mmap_mode="r", allow_pickle=False)
            doc_freq = json.loads((path / TERMS).read_text("utf-8"))["doc_freq"]
            import bm25s
            import faiss

            dense = faiss.read_index(str(path / DENSE))
            bm25 = bm25s.BM25.load(str(path / BM25_DIR), mmap=False, show_progress=False)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexCorruptError(f"index at {path} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); {REBUILD_HINT}") from None
        starts = np.zeros(len(passages) + 1, dtype=np.int64)
        starts[1:] = np.cumsum([len(p.sentences) for p in passages])
        if len(passage_vectors) != len(passages) or len(sentence_vectors) != int(starts[-1]) or dense.ntotal != len(passages):
            raise IndexCorruptError(f"index at {path} is inconsistent (row counts differ); {REBUILD_HINT}")
        return cls(manifest, passages, passage_vectors, sentence_vectors, starts, doc_freq, dense, bm25)

    def check_compatible(self, model: str, chunking: dict[str, int], corpus_fingerprint: str | None) -> None:
        """Raise IndexMismatchError when the index was built for another model, chunking or corpus."""
        m = self.manifest
        if m.get("model") != model:
            raise IndexMismatchError(
                f"the index was built with model {m.get('model')!r} but {model!r} is configured; {REBUILD_HINT}"
            )
        if m.get("chunking") != chunking:
            raise IndexMismatchError(f"the index was built with chunking {m.get('chunking')} but {chunking} is configured; {REBUILD_HINT}")
        if corpus_fingerprint is not None and m.get("corpus_fingerprint") != corpus_fingerprint:
            raise IndexMismatchError(f"the corpus changed since the index was built; {REBUILD_HINT}")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of an index folder, validated for format and version."""
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
    return manifest


def verify_files(path: Path, manifest: dict[str, Any]) -> None:
    """Check every index file's size and sha256 against the manifest."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise IndexCorruptError(f"index manifest at {path} lists no files; {REBUILD_HINT}")
    for name, meta in files.items():
        fpath = Path(path) / name
        if not fpath.is_file():
            raise IndexCorruptError(f"index file {name} is missing from {path}; {REBUILD_HINT}")
        if fpath.stat().st_size != meta.get("bytes") or file_sha256(fpath) != meta.get("sha256"):
            raise IndexCorruptError(f"index file {name} in {path} is truncated or altered (checksum mismatch); {REBUILD_HINT}")


def _fsync_tree(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())


def swap_in(tmp: Path, path: Path) -> None:
    """Replace `path` by `tmp`: rename the old index aside, rename the new one in, then delete the old."""
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
