"""Build the index from the corpus folder: read, chunk, embed, save atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .chunking import chunk_documents
from .config import Settings
from .corpus import corpus_fingerprint, read_corpus
from .embed import Embedder
from .errors import CorpusError
from .index import Index


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    documents: int
    passages: int
    sentences: int
    embedded: int
    seconds: float
    warnings: tuple[str, ...]
    path: str

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"{self.documents} documents, {self.passages} passages, {self.sentences} sentences; "
            f"{self.embedded} texts embedded in {self.seconds:.1f}s -> {self.path}"
        )


def build_index(settings: Settings, embedder: Embedder, progress: bool = False, full: bool = False) -> BuildReport:
    """Read `settings.corpus_dir`, chunk, embed and write `settings.index_dir`; the old index survives a failure."""
    t0 = time.perf_counter()
    corpus_dir = Path(settings.corpus_dir)
    fingerprint = corpus_fingerprint(corpus_dir)
    docs, warnings = read_corpus(corpus_dir)
    if not docs:
        detail = f" ({len(warnings)} files skipped)" if warnings else ""
        raise CorpusError(f"no readable documents in {corpus_dir}{detail}; add .txt or .md files and run again")
    passages = chunk_documents(docs, settings.min_words, settings.max_words)
    embedded = 0

    def embed(texts: list[str]):  # noqa: ANN202
        nonlocal embedded
        embedded += len(texts)
        return embedder.encode(texts, batch_size=settings.batch_size, progress=progress)

    manifest = {
        "model": settings.model,
        "embedder": embedder.name,
        "chunking": settings.chunking(),
        "corpus_dir": str(corpus_dir),
        "corpus_fingerprint": fingerprint,
        "documents": [{"doc_id": d.doc_id, "title": d.title, "fingerprint": d.fingerprint} for d in docs],
    }
    index = Index.build(passages, embed, manifest)
    index.save(Path(settings.index_dir))
    return BuildReport(
        documents=len(docs),
        passages=len(passages),
        sentences=index.manifest["sentences"],
        embedded=embedded,
        seconds=time.perf_counter() - t0,
        warnings=tuple(warnings),
        path=str(settings.index_dir),
    )


def stale_reason(settings: Settings) -> str:
    """Why the index needs a (re)build, or "" when it matches the corpus and settings (no model is loaded)."""
    from .errors import LeftQAError
    from .index import read_manifest

    try:
        manifest = read_manifest(Path(settings.index_dir))
    except LeftQAError as exc:
        return str(exc)
    if manifest.get("model") != settings.model:
        return "model changed"
    if manifest.get("chunking") != settings.chunking():
        return "chunking settings changed"
    if manifest.get("corpus_fingerprint") != corpus_fingerprint(Path(settings.corpus_dir)):
        return "corpus changed"
    return ""
