"""The build streams passages from the corpus into the index files instead of holding the whole corpus in a list.

`list_build` below is the build as it was before it streamed (every passage read into one list, then
`Index.build` or `compact.write_compact` over that list, with the same vector cache): a streamed build must write
the same bytes, in both layouts, on either side of the threshold, and when it reuses a previous index; and it
must never hold more than the threshold's worth of passages at once, plus one chunk and one document.
"""

from __future__ import annotations

import json
import shutil
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from conftest import FAKE_MODEL, GUILD_MD, HARBOUR_TXT, write_files

from leftqa.config import Settings
from leftqa.index import builder, compact
from leftqa.index.builder import build_index, pipeline_key, read_source
from leftqa.index.vectorcache import VectorCache
from leftqa.index.embed import HashEmbedder
from leftqa.index.store import Chunking, DocumentEntry, Index, IndexManifest, SkippedEntry
from leftqa.ingest.corpus import fingerprint_of, source_digests
from leftqa.records import Passage


def note(i: int, paragraphs: int, word: str = "ferry") -> str:
    """A small document of `paragraphs` one-passage paragraphs whose texts differ from every other note's."""
    body = "\n".join(
        f"Paragraph {j} of note {i}: the {word} number {i * 7 + j} left the quay at dawn carrying wool, timber and "
        f"salted fish to the markets of the coast, and the harbour master wrote its cargo in ledger {i}-{j} before "
        f"the tide turned again in the evening of that long and windy day of the year {1800 + i + j}."
        for j in range(paragraphs)
    )
    return f"Note {i}\n\n{body}\n"


class BatchEmbedder(HashEmbedder):
    """The fake embedder with vectors that depend on the batch, as a real model's do through padding: a build that
    cut its chunks elsewhere, or embedded other texts together, would write other bytes."""

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        out = super().encode(texts, batch_size, progress)
        out[:, 0] += 0.01 * len(texts)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


NOTES = {f"notes/n{i:02d}.txt": note(i, 1 + i % 3) for i in range(14)}
CORPUS = {"harbour.txt": HARBOUR_TXT, "guild.md": GUILD_MD, "bad.pdf": b"not a pdf", "copy/guild.md": GUILD_MD, **NOTES}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    corpus = write_files(tmp_path / "corpus", CORPUS)
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL, scorer="none")


def read_all(settings: Settings) -> tuple[list[DocumentEntry], list[SkippedEntry], list[Passage], dict[str, str]]:
    """Every file of the corpus read and chunked, in corpus order, into one list (as the builder did before)."""
    corpus = Path(settings.corpus_dir)
    digests, _ = source_digests(corpus)
    docs, skipped, passages = [], [], []
    for doc_id, digest in digests.items():
        r = read_source(corpus / doc_id, doc_id, settings.min_words, settings.max_words)
        if r.error:
            skipped.append(SkippedEntry(doc_id, digest, r.error))
            continue
        docs.append(DocumentEntry(doc_id, r.title, r.fingerprint, digest, r.source, passages=len(r.passages)))
        passages.extend(r.passages)
    return docs, skipped, passages, digests


def list_build(settings: Settings, dest: Path, previous: Path | None = None) -> list[Passage]:
    """The pre-streaming build of `settings`'s corpus into `dest`, reusing vectors from the index at `previous`."""
    docs, skipped, passages, digests = read_all(settings)
    manifest = IndexManifest(
        model=settings.model, embedder=settings.model, chunking=Chunking.from_dict(settings.chunking()), pipeline=pipeline_key(),
        corpus_dir=str(Path(settings.corpus_dir).resolve()), corpus_fingerprint=fingerprint_of(digests),
        documents=tuple(docs), skipped=tuple(skipped),
    )  # fmt: skip
    old = Index.load(previous) if previous is not None else None
    cache = VectorCache(BatchEmbedder, settings, False, lambda _m: None)
    if old is not None:
        cache.seed(old)
    local = lambda m: replace(m, build={"engine": "local"})  # noqa: E731
    if len(passages) >= compact.COMPACT_THRESHOLD:
        compact.write_compact(dest, passages, cache, manifest, old, chunk=compact.CHUNK, late=local)
    else:
        index = Index.build(passages, cache, manifest)
        index.manifest = local(index.manifest)
        index.save(dest)
    return passages


def assert_same_files(a: Path, b: Path) -> None:
    names = sorted(f.relative_to(a).as_posix() for f in a.rglob("*") if f.is_file())
    assert names == sorted(f.relative_to(b).as_posix() for f in b.rglob("*") if f.is_file())
    for name in names:
        if name != "manifest.json":
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / "manifest.json").read_text("utf-8")) for d in (a, b))
    ma.pop("created"), mb.pop("created")
    assert ma == mb  # with every file's size and sha256


def expected_counts(passages: list[Passage], known: set[str]) -> tuple[int, int]:
    """(passages embedded, sentences embedded) as the report counts them: distinct texts not embedded before."""
    texts = {p.text for p in passages} - known
    everything = ({p.text for p in passages} | {s.text for p in passages for s in p.sentences}) - known
    return len(texts), len(everything) - len(texts)


def corpus_size(settings: Settings) -> int:
    return len(read_all(settings)[2])


@pytest.mark.parametrize("layout", ["exact", "compact", "compact, chunk over the threshold", "at the threshold", "one under"])
def test_streamed_build_writes_the_bytes_of_the_list_build(layout: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = corpus_size(settings)
    threshold, chunk = {
        "exact": (compact.COMPACT_THRESHOLD, compact.CHUNK), "compact": (7, 3), "compact, chunk over the threshold": (5, 11),
        "at the threshold": (n, 4), "one under": (n + 1, 4),
    }[layout]  # fmt: skip
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", threshold)
    monkeypatch.setattr(compact, "CHUNK", chunk)
    report = build_index(settings, BatchEmbedder())
    passages = list_build(settings, tmp_path / "listed")
    assert_same_files(Path(settings.index_dir), tmp_path / "listed")
    assert Index.load(settings.index_dir).manifest.layout == (None if n < threshold else "compact")
    assert report.passages == n and (report.embedded, report.embedded_sentences) == expected_counts(passages, set())
    assert (report.documents, report.added, len(report.warnings)) == (len(CORPUS) - 1, len(CORPUS) - 1, 1)  # bad.pdf


@pytest.mark.parametrize("threshold, chunk", [(50_000, 50_000), (6, 4)])
def test_incremental_streamed_build_writes_the_bytes_of_the_list_build(threshold: int, chunk: int, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", threshold)
    monkeypatch.setattr(compact, "CHUNK", chunk)
    build_index(settings, BatchEmbedder())
    before = tmp_path / "before"
    shutil.copytree(settings.index_dir, before)
    old = Index.load(before)
    known = {p.text for p in old.passages} | {s.text for p in old.passages for s in p.sentences}
    corpus = Path(settings.corpus_dir)
    (corpus / "notes/n04.txt").unlink()
    write_files(corpus, {
        "guild.md": GUILD_MD.replace("nine weeks", "eleven weeks"), "notes/n07.txt": note(7, 3, "barge"),
        "notes/n99.txt": note(99, 2), "notes/n05.txt": NOTES["notes/n05.txt"].encode("utf-8").replace(b"\n", b"\r\n"),
    })  # fmt: skip
    report = build_index(settings, BatchEmbedder())
    passages = list_build(settings, tmp_path / "listed", previous=before)
    assert_same_files(Path(settings.index_dir), tmp_path / "listed")
    assert (report.added, report.changed, report.removed) == (1, 3, 1)
    assert (report.embedded, report.embedded_sentences) == expected_counts(passages, known)


class ReversedBackend:
    """A build backend whose reads come back lazily in reverse order, one of them never (read locally instead)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def read(self, jobs: list[tuple[Path, str]], settings: Settings) -> Iterator[builder.ReadResult]:
        self.asked = [doc_id for _, doc_id in jobs]
        for path, doc_id in reversed(jobs[1:]):
            yield read_source(path, doc_id, settings.min_words, settings.max_words)

    def embedder(self, settings: Settings) -> HashEmbedder:
        return BatchEmbedder()

    def describe(self) -> dict[str, object]:
        return {"engine": "local"}


@pytest.mark.parametrize("threshold, chunk", [(50_000, 50_000), (6, 4)])
def test_a_backend_reading_out_of_order_gives_the_bytes_of_the_list_build(threshold: int, chunk: int, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", threshold)
    monkeypatch.setattr(compact, "CHUNK", chunk)
    backend = ReversedBackend()
    build_index(settings, backend=backend)
    list_build(settings, tmp_path / "listed")
    assert_same_files(Path(settings.index_dir), tmp_path / "listed")
    assert len(backend.asked) == len(CORPUS)
    (Path(settings.corpus_dir) / "notes/n03.txt").write_text(note(3, 2, "barge"), encoding="utf-8")
    build_index(settings, backend=backend)
    assert backend.asked == ["bad.pdf", "notes/n03.txt"]


def test_unchanged_documents_take_their_passages_from_the_previous_index(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(settings)
    (Path(settings.corpus_dir) / "notes/n03.txt").write_text(note(3, 2, "barge"), encoding="utf-8")
    read: list[str] = []
    real = builder.read_source
    monkeypatch.setattr(builder, "read_source", lambda path, doc_id, lo, hi: (read.append(doc_id), real(path, doc_id, lo, hi))[1])
    build_index(settings)
    assert read == ["bad.pdf", "notes/n03.txt"]  # the skipped file is tried again; the others are reused by position


def test_a_streamed_build_holds_at_most_a_threshold_a_chunk_and_a_document_of_passages(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    threshold, chunk = 6, 4
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", threshold)
    monkeypatch.setattr(compact, "CHUNK", chunk)
    alive, peak, made, largest = [0], [0], [0], [0]

    def gone() -> None:
        alive[0] -= 1

    real = builder.read_source

    def counted(path: Path, doc_id: str, lo: int, hi: int) -> builder.ReadResult:
        result = real(path, doc_id, lo, hi)
        for p in result.passages:  # every Passage of the build is made here (nothing is reused on a first build)
            weakref.finalize(p, gone)
        alive[0] += len(result.passages)
        made[0] += len(result.passages)
        largest[0] = max(largest[0], len(result.passages))
        peak[0] = max(peak[0], alive[0])
        return result

    monkeypatch.setattr(builder, "read_source", counted)
    report = build_index(settings)
    assert Index.load(settings.index_dir).manifest.layout == "compact"
    assert made[0] == report.passages > 2 * (threshold + chunk + largest[0])  # a list of the corpus would exceed the bound
    assert threshold <= peak[0] <= threshold + chunk + largest[0]
    assert alive[0] == 0  # nothing kept after the build


@pytest.mark.parametrize("threshold, chunk", [(50_000, 50_000), (6, 4)])
def test_a_read_failing_mid_stream_keeps_the_previous_index(threshold: int, chunk: int, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", threshold)
    monkeypatch.setattr(compact, "CHUNK", chunk)
    build_index(settings)
    index_dir = Path(settings.index_dir)
    before = {f.name: f.read_bytes() for f in index_dir.iterdir() if f.is_file()}
    for i in (2, 12):  # early, and after the compact writer has written chunks (n12 is the next to last file)
        (Path(settings.corpus_dir) / f"notes/n{i:02d}.txt").write_text(note(i, 2, "barge"), encoding="utf-8")
    real = builder.read_source

    def failing(path: Path, doc_id: str, lo: int, hi: int) -> builder.ReadResult:
        if doc_id == "notes/n12.txt":
            raise RuntimeError("the disk went away")
        return real(path, doc_id, lo, hi)

    monkeypatch.setattr(builder, "read_source", failing)
    with pytest.raises(RuntimeError, match="disk went away"):
        build_index(settings)
    assert {f.name: f.read_bytes() for f in index_dir.iterdir() if f.is_file()} == before
    Index.load(index_dir)
    assert {p.name for p in index_dir.parent.iterdir()} == {"corpus", index_dir.name, builder.lock_path(index_dir).name}  # no temp folder
