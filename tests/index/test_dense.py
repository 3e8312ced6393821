"""Index choice by size, lazy loading, quick checksums, BM25 without bm25s, and embedding backends."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FAKE_MODEL

import leftqa.index.store as index_module
from leftqa.errors import IndexCorruptError, IndexMismatchError
from leftqa.index.embed import load_embedder, split_backend
from leftqa.index.store import (
    HNSW,
    MANIFEST,
    PASSAGE_OFFSETS,
    PASSAGES,
    SENTENCE_STARTS,
    Bm25Scorer,
    Chunking,
    Index,
    IndexManifest,
    dense_spec,
    ef_search,
    line_offsets,
    read_manifest,
    verify_files,
)
from leftqa.records import Passage, Sentence

WORDS = "harbour lighthouse keeper storm ice coal timber wool railway quay customs fever diary committee merchant".split()


def make_passages(n: int, seed: int = 0) -> list[Passage]:
    """Passages of 1-3 generated sentences each, with offsets like the chunker's."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sents, pos = [], 0
        for _ in range(int(rng.integers(1, 4))):
            text = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), size=6)).capitalize() + "."
            sents.append(Sentence(text, 1000 * i + pos, 1000 * i + pos + len(text), pos, pos + len(text)))
            pos += len(text) + 1
        text = " ".join(s.text for s in sents)
        out.append(Passage(f"p{i:05d}", f"doc{i // 10}.txt", "Doc", "Section", 1000 * i, 1000 * i + len(text), text, tuple(sents)))
    return out


def clustered_vectors(texts: list[str], dim: int = 32, clusters: int = 20) -> np.ndarray:
    """Normalised vectors around a few centres (like sentence embeddings), deterministic per text count."""
    rng = np.random.default_rng(len(texts))
    centres = rng.standard_normal((clusters, dim))
    v = centres[rng.integers(0, clusters, size=len(texts))] + 0.6 * rng.standard_normal((len(texts), dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def build(passages: list[Passage], ann_threshold: int, model: str = FAKE_MODEL) -> Index:
    manifest = IndexManifest(model=model, embedder=model, chunking=Chunking(min_words=40, max_words=150))
    return Index.build(passages, clustered_vectors, manifest, ann_threshold=ann_threshold)


@pytest.mark.parametrize(("n", "threshold", "kind"), [(10, 200_000, "flat-ip"), (199_999, 200_000, "flat-ip"), (200_000, 200_000, "hnsw32-ip"), (5, 5, "hnsw32-ip")])
def test_dense_spec_switches_to_hnsw_at_the_threshold(n: int, threshold: int, kind: str) -> None:
    spec = dense_spec(n, threshold)
    assert spec["type"] == kind
    if kind.startswith("hnsw"):
        assert spec == {"type": kind, **HNSW, "efSearch": ef_search(n)}


@pytest.mark.parametrize(("threshold", "kind", "params"), [(10_000, "flat-ip", {}), (100, "hnsw32-ip", {**HNSW, "efSearch": 512})])
def test_manifest_records_the_dense_index_and_load_applies_it(tmp_path: Path, threshold: int, kind: str, params: dict) -> None:
    build(make_passages(300), threshold).save(tmp_path / "index")
    loaded = Index.load(tmp_path / "index")
    assert loaded.manifest.dense_index == kind
    assert loaded.manifest.dense_params == params
    assert loaded.dense.ntotal == 300
    if params:
        assert loaded.dense.hnsw.efSearch == 512


@pytest.mark.parametrize(("n", "ef"), [(1, 512), (299_999, 512), (300_000, 2048), (5_000_000, 2048)])
def test_ef_search_grows_with_the_index(n: int, ef: int) -> None:
    assert ef_search(n) == ef


def test_hnsw_recall_at_10_against_exact_search_is_at_least_095(tmp_path: Path) -> None:
    index = build(make_passages(3000, seed=1), ann_threshold=1000)
    exact = build(index.passages, ann_threshold=10**9)  # type: ignore[arg-type]
    queries = clustered_vectors(["q"] * 97)
    _, a = index.dense.search(queries, 10)
    _, e = exact.dense.search(queries, 10)
    recall = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a.tolist(), e.tolist())])
    assert index.manifest.dense_index == "hnsw32-ip" and exact.manifest.dense_index == "flat-ip"
    assert recall >= 0.95


def test_bm25_scorer_matches_bm25s_bit_for_bit(tmp_path: Path) -> None:
    import bm25s

    index = build(make_passages(200, seed=2), 10_000)
    index.save(tmp_path / "index")
    ours = Bm25Scorer.load(tmp_path / "index" / "bm25")
    theirs = bm25s.BM25.load(str(tmp_path / "index" / "bm25"))
    for query in (["harbour"], ["storm", "storm", "ice"], ["coal", "unknownterm", "quay"], [w for w in index.doc_freq][:7]):
        assert np.array_equal(ours.get_scores(query), theirs.get_scores(query))
    assert ours.get_scores(["harbour"]).dtype == np.float32
    assert np.count_nonzero(ours.get_scores(["unknownterm"])) == 0


def test_loaded_passages_are_decoded_lazily_but_equal_the_built_ones(tmp_path: Path) -> None:
    passages = make_passages(50, seed=3)
    build(passages, 10_000).save(tmp_path / "index")
    loaded = Index.load(tmp_path / "index")
    assert type(loaded.passages).__name__ == "PassageStore"
    assert loaded.passages == passages
    assert loaded.passages[-1] == passages[-1] and loaded.passages[3:6] == passages[3:6]
    assert [p.id for p in loaded.passages] == [p.id for p in passages]
    assert loaded.sentence_starts.tolist() == np.cumsum([0] + [len(p.sentences) for p in passages]).tolist()
    with pytest.raises(IndexError):
        loaded.passages[50]


def test_an_index_saved_without_offset_tables_still_loads(tmp_path: Path) -> None:
    """Indexes written before passage_offsets.npy / sentence_starts.npy existed are read by scanning the JSONL."""
    passages = make_passages(40, seed=4)
    path = tmp_path / "index"
    build(passages, 10_000).save(path)
    expected = np.load(path / PASSAGE_OFFSETS)
    assert line_offsets(path / PASSAGES).tolist() == expected.tolist()
    manifest = json.loads((path / MANIFEST).read_text())
    for name in (PASSAGE_OFFSETS, SENTENCE_STARTS):
        (path / name).unlink()
        del manifest["files"][name]
    (path / MANIFEST).write_text(json.dumps(manifest))
    loaded = Index.load(path)
    assert loaded.passages == passages
    assert loaded.sentence_starts.tolist() == np.cumsum([0] + [len(p.sentences) for p in passages]).tolist()


def test_large_files_are_checked_by_their_edges_at_load_and_fully_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "FULL_HASH_LIMIT", 4096)
    monkeypatch.setattr(index_module, "EDGE", 1024)
    path = tmp_path / "index"
    build(make_passages(400, seed=5), 10_000).save(path)
    manifest = read_manifest(path)
    vectors = path / "sentence_vectors.npy"
    assert manifest.files is not None and manifest.files["sentence_vectors.npy"].edge_sha256 is not None
    data = bytearray(vectors.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    vectors.write_bytes(bytes(data))
    verify_files(path, manifest)  # the quick check does not read the middle of large files
    with pytest.raises(IndexCorruptError, match="sentence_vectors.npy"):
        verify_files(path, manifest, full=True)
    data[middle] ^= 0xFF
    data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum"):
        Index.load(path)


def test_a_corrupt_passage_line_is_a_typed_error_when_read(tmp_path: Path) -> None:
    path = tmp_path / "index"
    build(make_passages(5, seed=6), 10_000).save(path)
    raw = (path / PASSAGES).read_bytes()
    (path / PASSAGES).write_bytes(raw.replace(b'"text"', b'"txet"', 1))  # same size: only a full read notices
    loaded = Index.load(path, verify=False)
    with pytest.raises(IndexCorruptError, match="passage 0"):
        loaded.passages[0]


@pytest.mark.parametrize(
    ("model", "backend", "base"),
    [
        ("bundled:all-MiniLM-L6-v2", "onnx", "bundled:all-MiniLM-L6-v2"),
        ("onnx-int8:bundled:all-MiniLM-L6-v2", "onnx-int8", "bundled:all-MiniLM-L6-v2"),
        ("torch:/models/x", "torch", "/models/x"),
        ("hash:64", "hash", "hash:64"),
        ("sentence-transformers/all-MiniLM-L6-v2", "onnx", "sentence-transformers/all-MiniLM-L6-v2"),
    ],
)
def test_split_backend(model: str, backend: str, base: str) -> None:
    assert split_backend(model) == (backend, base)


@pytest.mark.parametrize(
    ("built", "configured", "message"),
    [
        ("onnx-int8:bundled:all-MiniLM-L6-v2", "bundled:all-MiniLM-L6-v2", "'onnx-int8' embedding backend but 'onnx'"),
        ("bundled:all-MiniLM-L6-v2", "torch:bundled:all-MiniLM-L6-v2", "'onnx' embedding backend but 'torch'"),
        ("bundled:all-MiniLM-L6-v2", "hash:64", "built with model"),
    ],
)
def test_an_index_built_with_another_backend_is_refused(built: str, configured: str, message: str) -> None:
    manifest = IndexManifest(model=built, embedder=built, chunking=Chunking(40, 150), backend=split_backend(built)[0])
    index = Index(manifest, [], np.zeros((0, 4)), np.zeros((0, 4)), np.zeros(1), {}, None, None)
    with pytest.raises(IndexMismatchError, match=message):
        index.check_compatible(configured, manifest.chunking.to_dict(), None)
    index.check_compatible(built, manifest.chunking.to_dict(), None)


def test_build_records_the_backend_in_the_manifest(tmp_path: Path) -> None:
    index = build(make_passages(5), 10_000, model="onnx-int8:bundled:all-MiniLM-L6-v2")
    assert index.manifest.backend == "onnx-int8"
    assert build(make_passages(5), 10_000).manifest.backend == "hash"


@pytest.mark.e2e
def test_onnx_vectors_match_sentence_transformers_fp32(bundled_embedder) -> None:  # noqa: ANN001
    """The default ONNX backend reproduces the PyTorch model's vectors (so `leftqa eval` cannot change)."""
    from conftest import REAL_CORPUS

    from leftqa.ingest.chunking import chunk_documents
    from leftqa.ingest.corpus import read_corpus

    assert getattr(bundled_embedder, "backend", None) == "onnx"
    docs, _ = read_corpus(REAL_CORPUS)
    passages = chunk_documents(docs)
    texts = [p.text for p in passages] + [s.text for p in passages for s in p.sentences] + ["When was Trotsky exiled?", "x", " ".join(p.text for p in passages)]
    torch_vectors = load_embedder("torch:bundled:all-MiniLM-L6-v2").encode(texts)
    onnx_batched = bundled_embedder.encode(texts)
    onnx_single = np.vstack([bundled_embedder.encode([t]) for t in texts[-5:]])
    assert np.abs(onnx_batched - torch_vectors).max() < 1e-5
    assert np.abs(onnx_single - torch_vectors[-5:]).max() < 1e-5
