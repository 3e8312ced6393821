"""The compact layout (quantised vectors, streamed writer) against the exact layout of the same corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FAKE_MODEL, GUILD_MD, HARBOUR_TXT

from leftqa.config import Settings
from leftqa.errors import IndexCorruptError, IndexMismatchError
from leftqa.index import compact
from leftqa.index.builder import build_index
from leftqa.index.codes import Int8Rows, passage_from_compact, passage_to_compact, quantise
from leftqa.index.store import Index, read_manifest, verify_files
from leftqa.qa.assistant import Assistant

QUERIES = ["Who led the Harbour Committee?", "When did the journeymen strike?", "stone breakwater", "apprentice masterpiece"]
MORE = "The Quay Bell\n\n" + " ".join(["The quay bell rang at dawn to call the dock workers to the southern quay."] * 5) + "\n"


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Settings]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "harbour.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    (corpus / "guild.md").write_text(GUILD_MD, encoding="utf-8")
    exact = Settings(corpus_dir=corpus, index_dir=tmp_path / "exact", model=FAKE_MODEL, scorer="none")
    small = exact.with_(index_dir=tmp_path / "compact")
    build_index(exact)
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", 1)
    monkeypatch.setattr(compact, "CHUNK", 4)  # several chunks even on a tiny corpus
    build_index(small)
    return exact, small


def test_quantise_round_trip_is_close_and_idempotent() -> None:
    v = np.random.default_rng(1).normal(size=(50, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    codes, scales = quantise(v)
    back = Int8Rows(codes, scales)[:]
    assert np.abs(back - v).max() < 0.5 * scales.max() + 1e-7
    again, scales2 = quantise(back)
    assert np.array_equal(again, codes) and np.allclose(scales2, scales, rtol=1e-6, atol=0)


def test_compact_passage_json_round_trip(pair: tuple[Settings, Settings]) -> None:
    exact = Index.load(Path(pair[0].index_dir))
    for p in exact.passages:
        assert passage_from_compact(json.loads(json.dumps(passage_to_compact(p)))) == p


def test_compact_index_matches_the_exact_one(pair: tuple[Settings, Settings]) -> None:
    exact, small = (Index.load(Path(s.index_dir)) for s in pair)
    m = small.manifest
    assert m.layout == "compact" and m.dense_index is not None and m.dense_index.startswith("hnsw48-sq8")
    assert m.build == {"engine": "local"} and m.sentences == int(exact.sentence_starts[-1])
    assert m.files is not None and "passage_vectors.npy" not in m.files and "sentence_vectors.npy" not in m.files
    verify_files(Path(pair[1].index_dir), m, full=True)
    assert list(small.passages) == list(exact.passages)
    assert np.array_equal(small.sentence_starts, exact.sentence_starts) and small.doc_freq == exact.doc_freq
    assert np.abs(small.sentence_vectors[:] - exact.sentence_vectors[:]).max() < 0.01
    assert np.abs(small.passage_vectors[np.arange(small.size)] - exact.passage_vectors[:]).max() < 0.02
    rows = np.array([3, 0, 7])
    assert np.array_equal(small.passage_vectors[rows], small.passage_vectors[:][rows])


def test_compact_manifest_round_trips_to_the_same_json(pair: tuple[Settings, Settings]) -> None:
    folder = Path(pair[1].index_dir)
    text = (folder / "manifest.json").read_text("utf-8")
    m = read_manifest(folder)
    assert json.dumps(m.to_dict(), indent=2, ensure_ascii=False) + "\n" == text  # what CompactWriter.finish wrote
    assert m.extra["quantisation"]["sentence_vectors"].startswith("int8")
    assert dict(m.dense_params or {}) == {k: v for k, v in compact.compact_spec(m.passages).items() if k != "type"}
    exact = read_manifest(Path(pair[0].index_dir))
    assert exact.layout is None and "layout" not in exact.to_dict() and "quantisation" not in exact.extra


def test_unknown_layout_is_refused(pair: tuple[Settings, Settings]) -> None:
    folder = Path(pair[1].index_dir)
    data = json.loads((folder / "manifest.json").read_text("utf-8"))
    (folder / "manifest.json").write_text(json.dumps({**data, "layout": "sharded"}), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="layout 'sharded'"):
        Index.load(folder)


def test_bm25_is_identical_and_answers_come_back(pair: tuple[Settings, Settings]) -> None:
    a, b = (Assistant.load(s) for s in pair)
    for q in QUERIES:
        ra, rb = a.retriever.retrieve(q, "bm25"), b.retriever.retrieve(q, "bm25")
        assert [int(x) for x in ra.positions] == [int(x) for x in rb.positions]
        assert np.array_equal(ra.scores, rb.scores)
        assert b.ask(q).passages  # the whole pipeline runs on the compact layout


def test_incremental_compact_build_reuses_vectors_and_quantiser(pair: tuple[Settings, Settings]) -> None:
    small = pair[1]
    before = Index.load(Path(small.index_dir))
    (Path(small.corpus_dir) / "bell.txt").write_text(MORE, encoding="utf-8")
    report = build_index(small)
    after = Index.load(Path(small.index_dir))
    assert report.added == 1 and report.embedded == 1 and after.size == before.size + 1
    # The new passage's vector lies outside the tiny corpus's SQ8 ranges: it would be clipped, so they are retrained.
    assert after.manifest.extra["quantisation"]["sq_reused"] is False
    # Unchanged passages keep their sentence codes exactly (decode -> encode is the identity).
    n = int(before.sentence_starts[-1])
    same = [i for i, p in enumerate(after.passages) if p.doc_id != "bell.txt"]
    old_rows = np.concatenate([np.arange(before.sentence_starts[i], before.sentence_starts[i + 1]) for i in range(before.size)])
    new_rows = np.concatenate([np.arange(after.sentence_starts[i], after.sentence_starts[i + 1]) for i in same])
    assert len(old_rows) == n
    assert np.array_equal(np.asarray(after.sentence_vectors.codes[new_rows]), np.asarray(before.sentence_vectors.codes[old_rows]))


def test_truncated_compact_file_is_refused(pair: tuple[Settings, Settings]) -> None:
    folder = Path(pair[1].index_dir)
    codes = folder / "sentence_codes.npy"
    codes.write_bytes(codes.read_bytes()[:-10])
    with pytest.raises(IndexCorruptError):
        Index.load(folder)


def test_sq8_ranges_are_reused_when_every_vector_fits(pair: tuple[Settings, Settings]) -> None:
    from leftqa.index.compact import build_compact_dense, compact_spec, sq_ranges

    small = Index.load(Path(pair[1].index_dir))
    decoded = np.asarray(small.passage_vectors)
    again, trained_here = build_compact_dense(decoded, compact_spec(len(decoded)), sq_ranges(small.dense))
    assert not trained_here
    assert np.array_equal(again.reconstruct_n(0, len(decoded)), decoded)  # decode -> encode -> decode is exact
    outside = decoded.copy()
    outside[0, 0] = 5.0
    assert build_compact_dense(outside, compact_spec(len(decoded)), sq_ranges(small.dense))[1]


@pytest.mark.parametrize("n, step, span", [(1, 1, 100_000), (1000, 1, 64), (1003, 7, 50), (1003, 7, 3), (20, 50, 100)])
def test_strided_rows_equal_a_strided_slice(tmp_path: Path, n: int, step: int, span: int) -> None:
    from leftqa.index.compact import strided_rows

    rng = np.random.default_rng(n + step)
    plain = rng.standard_normal((n, 6)).astype(np.float32)
    plain.tofile(tmp_path / "v.f32")
    mapped = np.memmap(tmp_path / "v.f32", dtype=np.float32, mode="r", shape=(n, 6))
    for vectors in (plain, mapped):
        got = strided_rows(vectors, step, span)
        assert got.dtype == np.float32 and np.array_equal(got, plain[::step])


def test_mapped_faiss_index_keeps_its_mapping_alive(pair: tuple[Settings, Settings]) -> None:
    import gc

    import faiss

    from leftqa.index.codes import read_mapped_index

    path = Path(pair[1].index_dir) / "dense.faiss"
    owned = faiss.read_index(str(path))
    mapped = read_mapped_index(path)
    gc.collect()  # only the index refers to the mapping now; freeing it would make the searches read freed memory
    q = owned.reconstruct_n(0, owned.ntotal)
    d1, i1 = owned.search(q, 5)
    d2, i2 = mapped.search(q, 5)
    assert mapped.ntotal == owned.ntotal > 0 and np.array_equal(i1, i2) and np.array_equal(d1, d2)
    assert np.array_equal(mapped.reconstruct_n(0, mapped.ntotal), q)


@pytest.fixture
def sharded(pair: tuple[Settings, Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(compact, "SHARD_ROWS", 3)  # a handful of graphs of at most 3 passages each
    settings = pair[1].with_(index_dir=tmp_path / "sharded")
    build_index(settings)
    return settings


def test_a_sharded_index_holds_the_vectors_and_finds_what_one_graph_finds(pair: tuple[Settings, Settings], sharded: Settings) -> None:
    one, many = Index.load(Path(pair[1].index_dir)), Index.load(Path(sharded.index_dir))
    n = one.size
    shards = -(-n // 3)
    assert n > 6 and many.manifest.dense_params is not None and many.manifest.dense_params["shards"] == shards
    assert many.manifest.files is not None and "dense.faiss" not in many.manifest.files
    assert sorted(f for f in many.manifest.files if f.startswith("dense-")) == [f"dense-{k:03d}.faiss" for k in range(shards)]
    verify_files(Path(sharded.index_dir), many.manifest, full=True)
    # One set of SQ8 ranges, trained on the same rows: the decoded vectors are those of the one-graph index.
    assert np.array_equal(compact.sq_ranges(many.dense), compact.sq_ranges(one.dense))
    assert np.array_equal(many.passage_vectors[:], one.passage_vectors[:])
    rows = np.array([n - 1, 0, 4, 3, 2, 5])
    assert np.array_equal(many.passage_vectors[rows], one.passage_vectors[rows])
    assert np.array_equal(many.passage_vectors[n - 1], one.passage_vectors[n - 1]) and np.array_equal(many.passage_vectors[-2], one.passage_vectors[-2])
    assert np.array_equal(many.passage_vectors[1:n:2], one.passage_vectors[1:n:2])
    with pytest.raises(IndexError):
        many.passage_vectors[np.array([n])]
    # efSearch exceeds these tiny graphs: every search is exhaustive, so both return every row with equal scores.
    q = np.ascontiguousarray(one.passage_vectors[[0, n // 2]])
    (d1, i1), (d2, i2) = one.dense.search(q, n), many.dense.search(q, n)
    for a in range(len(q)):
        assert sorted(zip(i1[a].tolist(), d1[a].tolist())) == sorted(zip(i2[a].tolist(), d2[a].tolist()))
    a, b = Assistant.load(pair[1]), Assistant.load(sharded)
    for question in QUERIES:
        ra, rb = a.ask(question), b.ask(question)
        assert [(h.passage_id, h.score) for h in ra.passages] == [(h.passage_id, h.score) for h in rb.passages] and ra.passages


def test_an_incremental_build_of_a_sharded_index_reuses_its_vectors(sharded: Settings) -> None:
    before = Index.load(Path(sharded.index_dir))
    (Path(sharded.corpus_dir) / "bell.txt").write_text(MORE, encoding="utf-8")
    report = build_index(sharded)
    after = Index.load(Path(sharded.index_dir))
    assert report.added == 1 and report.embedded == 1 and after.size == before.size + 1
    assert after.manifest.dense_params is not None and after.manifest.dense_params["shards"] == -(-after.size // 3)
