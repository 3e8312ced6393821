"""Build the index from the corpus folder: incremental (unchanged files and texts are reused), locked, crash-safe."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import chain, islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from leftqa.config import Settings
from leftqa.errors import CorpusError, IndexLockedError, IndexMissingError, IndexWriteError, LeftQAError, SourceError
from leftqa.files import atomic_write_bytes
from leftqa.index import compact
from leftqa.index.embed import Embedder, load_embedder
from leftqa.index.vectorcache import Digests, VectorCache, text_key
from leftqa.index.store import MANIFEST, Chunking, DocumentEntry, Index, IndexManifest, SkippedEntry, read_manifest, recover, verify_files
from leftqa.ingest.chunking import chunk_document
from leftqa.ingest.corpus import corpus_fingerprint, fingerprint_of, read_document, source_digests
from leftqa.records import Passage

# What turns a file into passages: when any of these modules or libraries changes, every file is read again.
_PIPELINE_MODULES = ("documents.py", "corpus.py", "formats.py", "chunking.py")  # in leftqa/ingest/
_PIPELINE_PACKAGES = ("pysbd", "beautifulsoup4", "pypdf", "python-docx")


@dataclass(frozen=True)
class BuildReport:
    """What a build did; `embedded` counts passages embedded, `embedded_sentences` the sentences besides them."""

    documents: int
    passages: int
    sentences: int
    embedded: int
    seconds: float
    warnings: tuple[str, ...]
    path: str
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded_sentences: int = 0
    rebuilt: bool = True  # False when nothing changed and the index on disk was kept as it was
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """The one-line result: "N documents: A added, C changed, R removed, U unchanged; E passages embedded"."""
        return (
            f"{self.documents} documents: {self.added} added, {self.changed} changed, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.embedded} passages embedded"
        )

    def details(self) -> str:
        """A second line: sizes, sentences embedded, time and where the index is."""
        if not self.rebuilt:
            return f"index at {self.path} is up to date ({self.passages} passages); nothing rewritten in {self.seconds:.1f}s"
        return (
            f"{self.passages} passages, {self.sentences} sentences ({self.embedded_sentences} sentences embedded) "
            f"in {self.seconds:.1f}s -> {self.path}"
        )


@dataclass(frozen=True)
class ReadResult:
    """One source file read and chunked: its manifest fields and passages, or the reason it is skipped."""

    doc_id: str
    title: str = ""
    fingerprint: str = ""
    source: str = ""
    passages: tuple[Passage, ...] = ()
    error: str = ""  # a SourceError message: the file is skipped with this warning


def read_source(path: Path, doc_id: str, min_words: int, max_words: int) -> ReadResult:
    """Read and chunk one source file (the work a build backend may run elsewhere)."""
    try:
        doc = read_document(path, doc_id)
    except SourceError as exc:
        return ReadResult(doc_id=doc_id, error=str(exc))
    passages = tuple(chunk_document(doc, min_words, max_words))
    return ReadResult(doc_id=doc_id, title=doc.title, fingerprint=doc.fingerprint, source=doc.source, passages=passages)


class BuildBackend(Protocol):
    """Where a build's expensive, stateless work runs: reading + chunking changed files, and embedding new texts.

    Everything else (reuse, the index files, the lock, the swap, the report) stays in `build_index`.
    """

    def read(self, jobs: list[tuple[Path, str]], settings: Settings) -> Iterable[ReadResult]:
        """A ReadResult for each (path, doc_id) job, in any order (the build takes them as it reaches their files)."""
        ...

    def embedder(self, settings: Settings) -> Embedder:
        """The embedder for new texts; called only when something needs embedding."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the manifest records about where the build ran (its "build" entry)."""
        ...


def lock_path(index_dir: Path) -> Path:
    """The lock file of an index folder: beside it, because the folder itself is swapped on every build."""
    index_dir = Path(index_dir)
    return index_dir.parent / f".leftqa-{index_dir.name}.lock"


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the exclusive build lock of `index_dir`; IndexLockedError at once if another build holds it."""
    path = lock_path(index_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise IndexLockedError(
                f"another build of {index_dir} is running (pid {holder}); wait for it to finish, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        # The lock file stays: deleting it would let a third build lock a fresh inode while the second holds the old.
        os.close(fd)


def clean_leftovers(index_dir: Path) -> list[str]:
    """Restore an index lost between the two renames of a swap, then delete temp folders of killed builds."""

    index_dir = Path(index_dir)
    if not index_dir.parent.is_dir():
        return []
    recover(index_dir)
    notes = []
    leftovers = sorted(index_dir.parent.glob(f".{index_dir.name}.tmp-*"))
    if index_dir.exists():
        leftovers += sorted(index_dir.parent.glob(f".{index_dir.name}.old-*"))
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)
        notes.append(f"removed {folder.name}, left by an interrupted build")
    return notes


def _previous(index_dir: Path, settings: Settings, embedder_name: str, full: bool) -> tuple[Index | None, IndexManifest | None, str]:
    """(usable previous index or None, its manifest or None, a note on why it cannot be used or "")."""

    try:
        manifest = read_manifest(index_dir)
    except IndexMissingError:
        return None, None, ""
    except LeftQAError as exc:
        return None, None, f"previous index unusable, building from scratch: {exc}"
    if full:
        return None, manifest, ""
    try:
        previous = Index.load(index_dir)
    except LeftQAError as exc:
        return None, manifest, f"previous index unusable, building from scratch: {exc}"
    if manifest.embedder != embedder_name or manifest.model != settings.model:
        return None, manifest, f"model changed from {manifest.embedder!r}: embedding everything again"
    return previous, manifest, ""


def pipeline_key() -> str:
    """Hash of the reader and chunking code and parser versions: passages are reused only when it is unchanged."""
    from importlib import metadata

    h = hashlib.sha256()
    here = Path(__file__).parent.parent / "ingest"
    for name in _PIPELINE_MODULES:
        h.update(name.encode() + b"\x00" + (here / name).read_bytes())
    for package in _PIPELINE_PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{package}={version}\x00".encode())
    return h.hexdigest()[:16]


def _fully_verified(previous: Index, index_dir: Path, manifest: IndexManifest) -> tuple[Index | None, str]:
    """The previous index if every file matches its full sha256 (loading checks large files only at their edges)."""

    try:
        verify_files(index_dir, manifest, full=True)
    except LeftQAError as exc:
        return None, f"previous index unusable, building from scratch: {exc}"
    return previous, ""


def _same_pipeline(manifest: IndexManifest, settings: Settings, key: str) -> bool:
    return manifest.pipeline == key and manifest.chunking.to_dict() == settings.chunking()


def build_index(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: bool = False,
    full: bool = False,
    log: Callable[[str], None] | None = None,
    backend: BuildBackend | None = None,
) -> BuildReport:
    """Bring `settings.index_dir` up to date with `settings.corpus_dir`, embedding only texts not embedded before.

    The model is loaded only when something needs embedding (embedder=None loads `settings.model` lazily);
    `full` ignores the previous index. The old index stays in place until the new one is complete. Passages stream
    from the corpus to the index files, at most `compact.COMPACT_THRESHOLD` of them buffered: a smaller corpus is
    built in memory (exact layout), a larger one written chunk by chunk as it is read (compact layout). A `backend`
    (e.g. `leftqa.index.ray_build.RayBackend`) reads changed files and embeds new texts elsewhere; its
    embedder must produce the vectors of `settings.model`.
    """

    t0 = time.perf_counter()
    say = log or (lambda _msg: None)
    index_dir, corpus_dir = Path(settings.index_dir), Path(settings.corpus_dir)
    embedder_name = embedder.name if embedder is not None else settings.model
    with build_lock(index_dir):
        notes = clean_leftovers(index_dir)
        digests, warnings = source_digests(corpus_dir)
        previous, old, why = _previous(index_dir, settings, embedder_name, full)
        if why:
            notes.append(why)
        old_docs = {d.doc_id: d for d in old.documents} if old is not None else {}
        pipeline = pipeline_key()
        reuse_passages = previous is not None and old is not None and _same_pipeline(old, settings, pipeline)
        if reuse_passages and old.digests() == digests:
            warnings += [s.reason for s in old.skipped or ()]
            return BuildReport(
                documents=len(old_docs), passages=len(previous.passages), sentences=previous.manifest.sentences,
                embedded=0, seconds=time.perf_counter() - t0, warnings=tuple(warnings), path=str(index_dir),
                unchanged=len(old_docs), rebuilt=False, notes=tuple(notes),
            )  # fmt: skip
        if previous is not None:
            previous, why = _fully_verified(previous, index_dir, old)
            notes += [why] if why else []
            reuse_passages = reuse_passages and previous is not None
        read = (lambda jobs: backend.read(jobs, settings)) if backend is not None else None
        corpus = _CorpusPass(settings, digests, old_docs, previous if reuse_passages else None, read)
        if backend is not None:
            factory: Callable[[], Embedder] = lambda: backend.embedder(settings)  # noqa: E731
        else:
            factory = lambda: embedder or load_embedder(settings.model, settings.threads)  # noqa: E731
        cache = VectorCache(factory, settings, progress, say)
        if previous is not None:
            cache.seed(previous)
        manifest = IndexManifest(
            model=settings.model,
            embedder=embedder_name,
            chunking=Chunking.from_dict(settings.chunking()),
            pipeline=pipeline,
            corpus_dir=str(corpus_dir.resolve()),  # readers given only --index find the corpus here
            corpus_fingerprint=fingerprint_of(digests),
        )

        def complete(m: IndexManifest) -> IndexManifest:  # after reading and embedding: the documents, and where it ran
            where = backend.describe() if backend is not None else {"engine": "local"}  # a Ray backend: its workers, batches
            return replace(m, documents=tuple(corpus.docs), skipped=tuple(corpus.skipped), build=where)

        extras = _extra_files(index_dir, old)
        try:
            # The layout is decided while streaming: a corpus that ends before the threshold is built in memory.
            stream = iter(corpus)
            head = list(islice(stream, compact.COMPACT_THRESHOLD))
            if len(head) < compact.COMPACT_THRESHOLD:
                if not corpus.docs:
                    detail = f" ({len(corpus.skipped)} files skipped)" if corpus.skipped else ""
                    raise CorpusError(f"no readable documents in {corpus_dir}{detail}; add .txt, .md, .html, .pdf, .docx or .jsonl files and run again")
                index = Index.build(head, cache, manifest)
                index.manifest = complete(index.manifest)
                say(f"writing index to {index_dir}")
                index.save(index_dir)
                written = index.manifest
            else:  # large: quantised layout, embedded and written in chunks as the corpus is read
                say(f"building a compact index at {index_dir}")
                rest = chain(_drained(head), stream)  # each buffered passage is dropped once its chunk is written
                written = compact.write_compact(index_dir, rest, cache, manifest, previous, say, chunk=compact.CHUNK, late=complete)
        except OSError as exc:
            raise IndexWriteError(f"cannot write the index to {index_dir} ({exc.strerror or exc}); the previous index is unchanged") from None
        warnings += [s.reason for s in corpus.skipped]
        for name, data in extras.items():
            _write_extra(index_dir / name, data)
    docs = corpus.docs
    embedded = len(np.intersect1d(cache.missed.distinct(), corpus.texts.distinct(), assume_unique=True))
    added, changed, unchanged = _diff(docs, old_docs)
    return BuildReport(
        documents=len(docs), passages=corpus.passages, sentences=written.sentences, embedded=embedded,
        seconds=time.perf_counter() - t0, warnings=tuple(warnings), path=str(index_dir), added=added, changed=changed,
        removed=len(set(old_docs) - {d.doc_id for d in docs}), unchanged=unchanged,
        embedded_sentences=len(cache.missed.distinct()) - embedded, notes=tuple(notes),
    )  # fmt: skip


def _extra_files(index_dir: Path, manifest: IndexManifest | None) -> dict[str, bytes]:
    """Small top-level files the index did not write itself (calibration.json from `leftqa calibrate`), to keep."""

    extras: dict[str, bytes] = {}
    if manifest is None or not index_dir.is_dir():
        return extras
    listed = set(manifest.files or {}) | {MANIFEST}
    for f in index_dir.iterdir():
        if f.is_file() and not f.is_symlink() and f.name not in listed and not f.name.startswith(".") and f.stat().st_size < 1_000_000:
            extras[f.name] = f.read_bytes()
    return extras


def _write_extra(dest: Path, data: bytes) -> None:
    if not dest.exists():
        atomic_write_bytes(dest, data)


class _CorpusPass:
    """The corpus's passages in corpus order, yielded document by document; `docs`, `skipped` and the counts are
    complete once it has been iterated (once).

    Unchanged files take their passages from the previous index by position: its manifest lists the documents in
    passage order with their counts, so no table of every previous passage is built. Changed files are read by
    `read` (a backend's; results that come before their turn wait) or here, one by one; the result is the same.
    """

    def __init__(
        self,
        settings: Settings,
        digests: dict[str, str],
        old_docs: dict[str, DocumentEntry],
        previous: Index | None,
        read: Callable[[list[tuple[Path, str]]], Iterable[ReadResult]] | None = None,
    ) -> None:
        self.docs: list[DocumentEntry] = []
        self.skipped: list[SkippedEntry] = []
        self.passages = 0
        self.texts = Digests()  # of every passage's text, for the report's count of passages embedded
        self._settings, self._digests, self._old_docs, self._read = settings, digests, old_docs, read
        self._spans = _spans(previous) if previous is not None else {}
        self._previous_passages: Sequence[Passage] = previous.passages if previous is not None else ()

    def __iter__(self) -> Iterator[Passage]:
        corpus_dir = Path(self._settings.corpus_dir)
        reused = {doc_id for doc_id, digest in self._digests.items() if self._unchanged(doc_id, digest)}
        jobs = [(corpus_dir / doc_id, doc_id) for doc_id in self._digests if doc_id not in reused]
        results = iter(self._read(jobs)) if self._read is not None and jobs else iter(())
        sent, pending = {doc_id for _, doc_id in jobs} if self._read is not None else set(), {}
        for doc_id, digest in self._digests.items():
            doc_passages = self._reuse(doc_id) if doc_id in reused else None
            if doc_passages is not None:
                entry = self._old_docs[doc_id]
            else:
                result = _take(doc_id, results, pending) if doc_id in sent else None
                result = result or read_source(corpus_dir / doc_id, doc_id, self._settings.min_words, self._settings.max_words)
                if result.error:
                    self.skipped.append(SkippedEntry(doc_id, digest, result.error))
                    continue
                doc_passages = list(result.passages)
                entry = DocumentEntry(doc_id, result.title, result.fingerprint, digest, result.source)
            self.docs.append(replace(entry, passages=len(doc_passages)))
            self.passages += len(doc_passages)
            for p in doc_passages:
                self.texts.add(text_key(p.text))
            yield from doc_passages

    def _unchanged(self, doc_id: str, digest: str) -> bool:
        prior = self._old_docs.get(doc_id)
        span = self._spans.get(doc_id)
        return prior is not None and prior.sha256 == digest and span is not None and span[1] > span[0]

    def _reuse(self, doc_id: str) -> list[Passage] | None:
        """The previous index's passages of `doc_id`, or None when they are not all its (then the file is read)."""
        lo, hi = self._spans[doc_id]
        passages = list(self._previous_passages[lo:hi])
        return passages if all(p.doc_id == doc_id for p in passages) else None


def _spans(previous: Index) -> dict[str, tuple[int, int]]:
    """{doc_id: (first, end) passage row} in `previous`; {} when its manifest's counts do not add up to its size."""
    spans: dict[str, tuple[int, int]] = {}
    row = 0
    for d in previous.manifest.documents:
        spans[d.doc_id] = (row, row + d.passages)
        row += d.passages
    return spans if row == len(previous.passages) else {}


def _drained(items: list[Passage]) -> Iterator[Passage]:
    """Yield the items of a list, dropping each from it, so the list holds none its consumer is done with."""
    items.reverse()
    while items:
        yield items.pop()


def _take(doc_id: str, results: Iterator[ReadResult], pending: dict[str, ReadResult]) -> ReadResult | None:
    """The backend's result for `doc_id` (None if it gave none), keeping those that came first in `pending`."""
    while doc_id not in pending:
        result = next(results, None)
        if result is None:
            return None
        pending[result.doc_id] = result
    return pending.pop(doc_id)


def _diff(docs: list[DocumentEntry], old_docs: dict[str, DocumentEntry]) -> tuple[int, int, int]:
    """(added, changed, unchanged): changed means the extracted text, title or source differs."""
    added = changed = 0
    for d in docs:
        prior = old_docs.get(d.doc_id)
        if prior is None:
            added += 1
        elif (prior.fingerprint, prior.title, prior.source) != (d.fingerprint, d.title, d.source):
            changed += 1
    return added, changed, len(docs) - added - changed


def stale_reason(settings: Settings) -> str:
    """Why the index needs a (re)build, or "" when it matches the corpus and settings (no model is loaded)."""

    try:
        manifest = read_manifest(Path(settings.index_dir))
    except LeftQAError as exc:
        return str(exc)
    if manifest.model != settings.model:
        return "model changed"
    if manifest.chunking.to_dict() != settings.chunking():
        return "chunking settings changed"
    if manifest.corpus_fingerprint != corpus_fingerprint(Path(settings.corpus_dir)):
        return "corpus changed"
    return ""


def corpus_changes(manifest: IndexManifest, digests: dict[str, str]) -> tuple[int, int, int]:
    """(added, changed, removed) source files of a corpus (`source_digests`) against an index manifest."""
    known = manifest.digests()
    added = sum(1 for doc_id in digests if doc_id not in known)
    changed = sum(1 for doc_id, digest in digests.items() if doc_id in known and known[doc_id] != digest)
    removed = sum(1 for doc_id in known if doc_id not in digests)
    return added, changed, removed


def stale_warning(settings: Settings) -> str:
    """One line saying how the corpus changed since the index was built and how to update it, or "" when it has
    not (or there is no corpus folder to compare with). Readers still answer from the index as built."""
    try:
        manifest = read_manifest(Path(settings.index_dir))
    except LeftQAError:
        return ""
    corpus = Path(settings.corpus_dir)
    if not corpus.is_dir():
        return ""
    try:
        digests, _ = source_digests(corpus)
    except LeftQAError:
        return ""
    if manifest.corpus_fingerprint == fingerprint_of(digests):
        return ""
    added, changed, removed = corpus_changes(manifest, digests)
    command = "leftqa index"
    if corpus != Path("corpus"):
        command += f" --corpus {corpus}"
    if Path(settings.index_dir) != Path("index"):
        command += f" --index {settings.index_dir}"
    return (
        f"the corpus {corpus} changed since the index was built ({added} files added, {changed} changed, "
        f"{removed} removed); answering from the index as built; run `{command}` to update it"
    )


def recorded_corpus(index_dir: Path) -> Path | None:
    """The corpus folder an index was built from, as its manifest records it, when that folder still exists."""
    try:
        manifest = read_manifest(Path(index_dir))
    except LeftQAError:
        return None
    recorded = manifest.corpus_dir
    if not recorded or recorded.startswith("("):
        return None
    path = Path(recorded)
    if not path.is_absolute():  # indexes built before the path was recorded absolute: relative to the index's folder
        path = Path(index_dir).parent / path
    return path if path.is_dir() else None
