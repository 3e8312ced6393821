"""Sparse BM25 (postings-only top-k) and the streaming BM25 writer against bm25s itself, on hand-made corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leftqa.index.mapped import Bm25Scorer
from leftqa.index.postings import Bm25Writer, SparseBm25
from leftqa.index.store import build_bm25

WORDS = "strike union harbour guild weaver council congress paper editor exile lighthouse keeper quay wool loom".split()


def _corpus(n: int, seed: int = 3) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    docs = [[WORDS[i] for i in rng.choice(len(WORDS), size=int(rng.integers(0, 25)), p=p)] for _ in range(n)]
    docs[5] = []  # an empty passage gets bm25s's "" placeholder
    return docs


def _queries() -> list[list[str]]:
    return [["strike"], ["loom", "wool"], ["union", "union", "quay"], ["exile", "nothere", "harbour"], ["nothere"], []]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[list[str]]]:
    docs = _corpus(400)
    root = tmp_path_factory.mktemp("bm25")
    build_bm25(docs).save(str(root / "ref"), show_progress=False)
    writer = Bm25Writer(root / "ours", root / "work")
    for lo in range(0, len(docs), 37):  # odd chunks: streaming must not depend on where chunks end
        writer.add(docs[lo : lo + 37])
    writer.finish(chunk=101)
    return root / "ref", root / "ours", docs


def test_writer_scores_identical_to_bm25s(saved: tuple[Path, Path, list[list[str]]]) -> None:
    ref, ours, docs = saved
    a, b = Bm25Scorer.load(ref), Bm25Scorer.load(ours)
    assert a.num_docs == b.num_docs == len(docs)
    for q in _queries() + [[w] for w in WORDS] + [WORDS]:
        assert np.array_equal(a.get_scores(q), b.get_scores(q)), q
    assert not list((saved[1].parent / "work").glob("*.bin"))


def test_writer_files_load_in_bm25s(saved: tuple[Path, Path, list[list[str]]]) -> None:
    import bm25s

    ref, ours, _ = saved
    theirs = bm25s.BM25.load(str(ours))
    mine = Bm25Scorer.load(ref)
    for q in _queries():
        if [t for t in q if t in theirs.vocab_dict]:
            assert np.array_equal(theirs.get_scores(q), mine.get_scores(q))


@pytest.mark.parametrize("which", ["ref", "ours"])
def test_sparse_top_k_equals_dense_scores(saved: tuple[Path, Path, list[list[str]]], which: str) -> None:
    ref, ours, docs = saved
    scorer = Bm25Scorer.load(ref if which == "ref" else ours)
    sparse = SparseBm25(scorer)
    for q in _queries():
        for ctx in ([], ["wool", "council"], ["strike"]):
            full = scorer.get_scores(q) if q else np.zeros(len(docs), np.float32)
            if ctx:
                full = full + 0.5 * scorer.get_scores(ctx)
            s = sparse.scores(q, ctx, 0.5)
            assert s.max() == float(full.max())
            everything = np.arange(len(docs))
            assert np.array_equal(s.at(everything), full), (q, ctx)  # bit-identical, not just to 1e-6
            for k in (1, 10, 100):
                top = s.top(k)
                positive = np.sort(full[full > 0])[::-1][:k]
                assert np.array_equal(full[top], positive)  # same scores, best first
                assert np.all(np.diff(full[top]) <= 0)
                ties_ok = full[top][-1] if len(top) else 0
                assert set(np.flatnonzero(full > ties_ok)) <= set(top.tolist())
                padded = s.top(k, fill=True)
                assert len(padded) == min(k, len(docs)) and len(set(padded.tolist())) == len(padded)
    assert np.count_nonzero(sparse._scratch()[0]) == 0  # the per-thread scratch is left clean


def test_sparse_matches_bm25s_top_k_on_tie_free_scores(saved: tuple[Path, Path, list[list[str]]]) -> None:
    import bm25s

    ref, _, docs = saved
    theirs = bm25s.BM25.load(str(ref))
    sparse = SparseBm25(Bm25Scorer.load(ref))
    q = ["loom", "wool", "exile"]
    full = theirs.get_scores(q)
    top = sparse.scores(q).top(10)
    assert np.allclose(sparse.scores(q).at(top), np.sort(full)[::-1][:10], atol=1e-6, rtol=0)


def test_pruned_top_k_equals_full_accumulation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from leftqa.index import postings

    monkeypatch.setattr(postings, "PRUNE_MIN", 0)
    rng = np.random.default_rng(5)
    vocab = [f"w{i}" for i in range(300)]
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    p /= p.sum()
    docs = [[vocab[i] for i in rng.choice(len(vocab), size=int(rng.integers(3, 30)), p=p)] for _ in range(3000)]
    writer = Bm25Writer(tmp_path / "bm25", tmp_path / "work")
    writer.add(docs)
    writer.finish()
    scorer = Bm25Scorer.load(tmp_path / "bm25")
    sparse = SparseBm25(scorer)
    pruned = dense = 0
    for i in range(60):
        q = [vocab[j] for j in rng.choice(len(vocab), size=int(rng.integers(2, 7)), p=p)] + [vocab[int(rng.integers(0, 300))]]
        ctx = [vocab[0], vocab[7]] if i % 3 == 0 else []
        for k in (1, 10, 50):
            full = sparse.scores(q, ctx)
            top = sparse.top_scores(q, ctx, 0.5, k)
            pruned += top.exact_k is not None
            dense += isinstance(top, postings.DenseScores)
            assert top.max() == full.max()
            assert np.array_equal(top.top(k), full.top(k))
            want = np.arange(len(docs))
            assert np.array_equal(top.at(want), full.at(want))
            assert np.array_equal(top.at(top.top(k)), full.at(full.top(k)))
    assert pruned > 20  # the long postings of common terms were skipped, not just accumulated
    assert dense > 0  # and queries that could not be pruned took one full array
    assert np.count_nonzero(sparse._scratch()[0]) == 0
