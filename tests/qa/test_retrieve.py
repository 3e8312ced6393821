"""Retrieval: fusion arithmetic, top-k ordering, and the three modes on the tiny corpus with the fake embedder."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FAKE_MODEL, TINY_PASSAGES

from leftqa.config import Settings
from leftqa.errors import ConfigError
from leftqa.index.embed import load_embedder
from leftqa.index.store import Index
from leftqa.qa.retrieve import Retriever, fuse, top_k


def test_fuse_is_the_weighted_sum_hand_computed() -> None:
    bm25 = np.array([1.0, 0.5, 0.0], dtype=np.float32)
    dense = np.array([0.2, 0.4, 0.9], dtype=np.float32)
    sentence = np.array([0.3, 0.9, 0.1], dtype=np.float32)
    weights = {"bm25": 0.35, "dense": 0.25, "sentence": 0.40}
    # 0.35*1.0 + 0.25*0.2 + 0.40*0.3 = 0.52;  0.35*0.5 + 0.25*0.4 + 0.40*0.9 = 0.635;  0.25*0.9 + 0.40*0.1 = 0.265
    np.testing.assert_allclose(fuse(bm25, dense, sentence, weights), [0.52, 0.635, 0.265], rtol=1e-6)
    np.testing.assert_allclose(fuse(bm25, dense, sentence, {"bm25": 1.0, "dense": 0.0, "sentence": 0.0}), bm25)


@pytest.mark.parametrize(
    ("scores", "k", "expected"),
    [
        ([0.1, 0.9, 0.5, 0.7], 2, [1, 3]),
        ([0.1, 0.9, 0.5, 0.7], 4, [1, 3, 2, 0]),
        ([0.1, 0.9, 0.5, 0.7], 10, [1, 3, 2, 0]),  # k beyond the length: everything, sorted
        ([0.5, 0.5, 0.9, 0.5], 3, [2, 0, 1]),  # ties: lower index first
        ([0.5, 0.5, 0.5, 0.5, 0.5], 2, [0, 1]),
        ([0.3], 0, []),
        ([], 3, []),
    ],
)
def test_top_k_orders_best_first_with_stable_ties(scores: list[float], k: int, expected: list[int]) -> None:
    assert top_k(np.asarray(scores, dtype=np.float32), k).tolist() == expected


@pytest.fixture
def retriever(fake_index: Settings) -> Retriever:
    """A Retriever over the tiny corpus index built with the hash:64 fake embedder."""
    return Retriever(Index.load(fake_index.index_dir), load_embedder(FAKE_MODEL))


def test_bm25_mode_ranks_the_passage_with_the_rare_terms_first(retriever: Retriever) -> None:
    hits = retriever.search("Who led the Harbour Committee?", mode="bm25", k=3)
    assert hits[0].text.startswith("The Harbour Committee was led by Marta Quell.")
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score > hits[1].score >= hits[2].score


def test_dense_mode_finds_a_passage_from_its_own_text(retriever: Retriever) -> None:
    target = retriever.index.passages[8]
    hits = retriever.search(target.text, mode="dense", k=5)
    assert hits[0].passage_id == target.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_ranks_the_caption_passage_first_with_normalised_signals(retriever: Retriever) -> None:
    hits = retriever.search("When was the lighthouse at Fenwick Point first lit?", mode="hybrid", k=10)
    assert len(hits) == 10
    assert "The lighthouse at Fenwick Point was first lit in March 1887." in hits[0].text
    assert max(h.bm25 for h in hits) == pytest.approx(1.0)  # BM25 is normalised by the best passage
    assert all(0.0 <= h.bm25 <= 1.0 and -1.0 <= h.dense <= 1.0 and -1.0 <= h.sentence <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hit_records_carry_passage_fields(retriever: Retriever) -> None:
    by_id = {p.id: p for p in retriever.index.passages}
    for h in retriever.search("strike of the journeymen", k=TINY_PASSAGES):
        p = by_id[h.passage_id]
        assert (h.doc_id, h.title, h.section, h.text, h.start, h.end) == (p.doc_id, p.title, p.section, p.text, p.start, p.end)


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_k_is_capped_by_the_index_size(retriever: Retriever, mode: str) -> None:
    hits = retriever.search("weavers guild apprentices", mode=mode, k=50)
    assert len(hits) == TINY_PASSAGES
    assert len({h.passage_id for h in hits}) == TINY_PASSAGES


def test_query_without_known_terms_has_zero_bm25(retriever: Retriever) -> None:
    assert retriever.bm25_scores(["zzzunknown"]).tolist() == [0.0] * TINY_PASSAGES
    hits = retriever.search("zzzunknown qqqnothing", mode="hybrid", k=10)
    assert all(h.bm25 == 0.0 for h in hits)


def test_best_sentence_signal_is_the_max_sentence_cosine(retriever: Retriever) -> None:
    qvec = retriever.encode("Hester Vane led the strike")
    r = retriever.retrieve("Hester Vane led the strike", "hybrid", 3)
    for pos, best in zip(r.positions, r.sentence):
        assert best == pytest.approx(float(retriever.sentence_scores(int(pos), qvec).max()), abs=1e-6)


def test_unknown_mode_is_a_config_error(retriever: Retriever) -> None:
    with pytest.raises(ConfigError, match="unknown retrieval mode 'fuzzy'"):
        retriever.search("anything", mode="fuzzy")


def test_fake_assistant_answers_from_the_tiny_corpus(fake_assistant) -> None:  # noqa: ANN001
    a = fake_assistant.ask("Who led the strike of the journeymen in Aldmoor?")
    assert not a.abstained
    assert "Hester Vane" in a.answer
    assert [h.passage_id for h in a.passages] == [h.passage_id for h in fake_assistant.search(a.query)]


def test_a_failing_dense_search_raises_in_the_callers_thread(retriever: Retriever, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def search(self, q: np.ndarray, k: int) -> None:
            raise RuntimeError("dense index unreadable")

    monkeypatch.setattr(retriever.index, "dense", Broken())
    with pytest.raises(RuntimeError, match="dense index unreadable"):
        retriever.retrieve("harbour", mode="hybrid")
