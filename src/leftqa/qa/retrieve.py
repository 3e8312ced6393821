"""Hybrid retrieval in two stages: BM25 + dense candidates, then a sentence-evidence rerank of the best ones."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from leftqa.config import MODES
from leftqa.errors import ConfigError
from leftqa.index.embed import Embedder
from leftqa.index.postings import lexical_bm25
from leftqa.index.store import Index
from leftqa.qa.features import QueryTerms, Vocabulary, answer_type, mid_sentence_names, type_match
from leftqa.records import Hit
from leftqa.text import terms

# Stage 1 ranks candidates by [bm25 / max bm25, passage cosine, best-sentence cosine]. Stage 2 adds sentence
# evidence: the best sentence's (cosine + IDF-weighted term coverage) / 2 ("evidence"), the best share of the
# query's term bigrams in one sentence, and whether that sentence holds an answer of the expected type.
# Weights chosen by grid search on the public SQuAD 2.0 benchmark (two articles, 293 answerable questions;
# hybrid hit@1 0.84 with stage 1 alone, 0.894 with stage 2), then checked on our single-turn eval cases
# (hit@1 0.94); `benchmarks/tune.py` re-runs the search. Never chosen by looking at individual questions.
WEIGHTS = {"bm25": 0.35, "dense": 0.25, "sentence": 0.40}
RERANK_WEIGHTS = {"bm25": 0.10, "dense": 0.15, "sentence": 0.15, "evidence": 0.60, "bigram": 0.20, "type": 0.10}
CANDIDATES = 100  # passages taken from each of BM25 and dense before fusion
# A follow-up's own words count fully, the conversation's context terms at half weight (BM25 and coverage), and
# the context's embedding at 0.3 of the query vector: the new question is weighted highest.
CONTEXT_WEIGHT = 0.5
CONTEXT_DENSE = 0.3
RERANK = 30  # passages whose sentences are scored in stage 2


@dataclass(frozen=True)
class SentenceEvidence:
    """How well one sentence of a reranked passage matches the query."""

    rank: int  # rank of its passage in the final ordering (0-based)
    pos: int  # passage position in the index
    index_in_passage: int
    cosine: float
    coverage: float
    bigram: float
    type_ok: float
    matched: frozenset[str]

    @property
    def evidence(self) -> float:
        """The sentence's combined evidence (the stage-2 'evidence' feature)."""
        return 0.5 * self.cosine + 0.5 * self.coverage


@dataclass(frozen=True)
class Retrieval:
    """Ranked passage positions with every signal, kept for answer selection (internal to the pipeline)."""

    query: str
    mode: str
    positions: np.ndarray  # passage positions, best first
    scores: np.ndarray  # final score per ranked passage
    bm25: np.ndarray  # normalised BM25 per ranked passage
    dense: np.ndarray  # passage cosine per ranked passage
    sentence: np.ndarray  # best-sentence cosine per ranked passage
    qvec: np.ndarray
    qterms: QueryTerms
    answer_type: str
    sentences: tuple[SentenceEvidence, ...]  # every sentence of the first RERANK ranked passages


def fuse(bm25_norm: np.ndarray, dense: np.ndarray, sentence: np.ndarray, weights: dict[str, float] = WEIGHTS) -> np.ndarray:
    """Weighted sum of the three stage-1 signals."""
    return weights["bm25"] * bm25_norm + weights["dense"] * dense + weights["sentence"] * sentence


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first, ties broken by lower index (stable)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    order = np.lexsort((part, -scores[part]))
    return part[order]


class _DenseSearch:
    """One ANN search of the dense index, run in its own thread; `result` waits for its ids."""

    def __init__(self, dense: Any, qvec: np.ndarray, k: int) -> None:
        self._dense, self._qvec, self._k = dense, qvec.reshape(1, -1), k
        self._ids: np.ndarray | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="leftqa-dense-search", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            _, ids = self._dense.search(self._qvec, self._k)
            self._ids = ids[0][ids[0] >= 0].astype(np.int64)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by result()
            self._error = exc

    def result(self) -> np.ndarray:
        """The ids found, best first (re-raises the search's own error)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._ids is not None
        return self._ids


class Retriever:
    """Searches one loaded index; stateless per query, so safe to share between threads."""

    def __init__(self, index: Index, embedder: Embedder, weights: dict[str, float] | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.weights = dict(weights or WEIGHTS)
        self._sentence_terms: dict[int, list[list[str]]] = {}
        self._names: dict[int, frozenset[str]] = {}
        self.vocabulary = Vocabulary(index.doc_freq)

    def encode(self, text: str) -> np.ndarray:
        """The query's normalised vector."""
        return self.embedder.encode([text])[0]

    def bm25_scores(self, qterms: list[str]) -> np.ndarray:
        """BM25 score of every passage (zeros when no query term is in the vocabulary)."""
        n = self.index.size
        known = [t for t in qterms if t in self.index.doc_freq]
        if not known or n == 0:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self.index.bm25.get_scores(known), dtype=np.float32)

    def best_sentence(self, positions: np.ndarray, qvec: np.ndarray) -> np.ndarray:
        """Highest sentence cosine inside each given passage."""
        # One BLAS product per passage, exactly as before (a single gathered product rounds differently in the
        # last bit, which could reorder ties); plain ints and .max() only trim the per-passage Python overhead.
        starts = self.index.sentence_starts
        vectors = self.index.sentence_vectors
        out = np.zeros(len(positions), dtype=np.float32)
        bounds = np.stack([starts[positions], starts[np.asarray(positions) + 1]], axis=1).tolist() if len(positions) else []
        for i, (lo, hi) in enumerate(bounds):
            if hi > lo:
                out[i] = (vectors[lo:hi] @ qvec).max()
        return out

    def sentence_scores(self, pos: int, qvec: np.ndarray) -> np.ndarray:
        """Cosine of each sentence of one passage with the query."""
        starts = self.index.sentence_starts
        return np.asarray(self.index.sentence_vectors[int(starts[pos]) : int(starts[pos + 1])] @ qvec, dtype=np.float32)

    def sentence_terms(self, pos: int) -> list[list[str]]:
        """Content terms of each sentence of a passage (memoised: the index never changes under a Retriever)."""
        cached = self._sentence_terms.get(pos)
        if cached is None:
            cached = [terms(s.text) for s in self.index.passages[pos].sentences]
            if len(self._sentence_terms) < 200_000:
                self._sentence_terms[pos] = cached
        return cached

    def passage_names(self, pos: int) -> frozenset[str]:
        """Words a passage capitalises mid-sentence (memoised), telling a name from a capitalised first word."""
        cached = self._names.get(pos)
        if cached is None:
            cached = mid_sentence_names([s.text for s in self.index.passages[pos].sentences])
            if len(self._names) < 200_000:
                self._names[pos] = cached
        return cached

    def _evidence(self, pos: int, qvec: np.ndarray, qt: QueryTerms, kind: str, question: str) -> list[tuple[float, float, float, float, frozenset[str]]]:
        """(cosine, coverage, bigram, type, matched) for each sentence of one passage."""
        cos = self.sentence_scores(pos, qvec)
        names = self.passage_names(pos) if kind in ("person", "place") else frozenset()
        out = []
        for i, (s, s_terms) in enumerate(zip(self.index.passages[pos].sentences, self.sentence_terms(pos))):
            term_set = set(s_terms)
            kind_ok = type_match(kind, s.text, question, names)
            out.append((float(cos[i]), qt.coverage(term_set), qt.bigram_share(s_terms), kind_ok, qt.matched(term_set)))
        return out

    def query_vector(self, question: str, context: str = "") -> np.ndarray:
        """The question's vector, blended with the conversation context's vector for follow-ups."""
        if not context:
            return self.encode(question)
        q, c = self.embedder.encode([question, context])
        v = (1 - CONTEXT_DENSE) * q + CONTEXT_DENSE * c
        return (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)

    def retrieve(
        self,
        query: str,
        mode: str = "hybrid",
        k: int = 10,
        qvec: np.ndarray | None = None,
        question: str | None = None,
        context: str = "",
    ) -> Retrieval:
        """Rank passages for `query` (hybrid, bm25 or dense); a follow-up passes its `question` and `context` apart."""
        if mode not in MODES:
            raise ConfigError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        question = question or query
        n = self.index.size
        term_list = terms(question if context else query)
        context_list = [t for t in terms(context) if t not in set(term_list)] if context else []
        qt = QueryTerms.build(term_list, self.index.doc_freq, n, context_list, CONTEXT_WEIGHT)
        kind = answer_type(question)
        if qvec is None:
            qvec = self.query_vector(question, context) if context else self.encode(query)
        qvec = np.ascontiguousarray(qvec, dtype=np.float32)
        pool = max(k, CANDIDATES)
        # The ANN search runs on another core while BM25 scores: FAISS releases the GIL, and at millions of
        # passages each takes tens of milliseconds (docs/scaling.md).
        dense_search = _DenseSearch(self.index.dense, qvec, min(pool, n)) if n else None
        # Only the passages in the query terms' postings are scored (bit-identical to the full score arrays).
        lexical_scores = lexical_bm25(self.index, term_list, context_list, CONTEXT_WEIGHT, pool)
        top_bm25 = lexical_scores.max() if n else 0.0
        dense_ids = dense_search.result() if dense_search else np.zeros(0, dtype=np.int64)
        if mode == "bm25":
            cand = lexical_scores.top(pool, fill=True)
        elif mode == "dense":
            cand = dense_ids
        else:
            lexical = lexical_scores.top(pool)
            lexical = lexical[lexical_scores.at(lexical) > 0]
            cand = np.unique(np.concatenate([lexical, dense_ids]))
        dense = np.asarray(self.index.passage_vectors[cand] @ qvec, dtype=np.float32) if len(cand) else np.zeros(0, np.float32)
        sentence = self.best_sentence(cand, qvec)
        bm25_cand = lexical_scores.at(cand)
        bm25n = (bm25_cand / top_bm25 if top_bm25 > 0 else bm25_cand).astype(np.float32)
        if mode == "bm25":
            scores = bm25_cand.astype(np.float32)
        elif mode == "dense":
            scores = dense
        else:
            scores = fuse(bm25n, dense, sentence, self.weights).astype(np.float32)
        order = top_k(scores, len(scores))
        head = order[:RERANK]
        per_passage = {int(cand[i]): self._evidence(int(cand[i]), qvec, qt, kind, question) for i in head}
        if mode == "hybrid" and len(head):
            w = RERANK_WEIGHTS
            rerank = np.array(
                [
                    w["bm25"] * bm25n[i] + w["dense"] * dense[i] + w["sentence"] * sentence[i]
                    + _passage_evidence(per_passage[int(cand[i])], w)
                    for i in head
                ],
                dtype=np.float32,
            )
            head = head[top_k(rerank, len(rerank))]
            # Passages past the rerank window keep their stage-1 order, below every reranked one.
            floor = float(rerank.min()) if len(rerank) else 0.0
            tail = order[RERANK:]
            final_scores = np.concatenate([np.sort(rerank)[::-1], floor - 1e-3 - np.arange(len(tail)) * 1e-6]).astype(np.float32)
            order = np.concatenate([head, tail])
        else:
            final_scores = scores[order]
        order, final_scores = order[:k], final_scores[:k]
        rank_of = {int(cand[i]): r for r, i in enumerate(order)}
        evidence = tuple(
            SentenceEvidence(rank_of[pos], pos, j, *feats)
            for pos, rows in per_passage.items()
            if pos in rank_of
            for j, feats in enumerate(rows)
        )
        return Retrieval(
            query=query,
            mode=mode,
            positions=cand[order],
            scores=np.asarray(final_scores, dtype=np.float32),
            bm25=bm25n[order],
            dense=dense[order],
            sentence=sentence[order],
            qvec=qvec,
            qterms=qt,
            answer_type=kind,
            sentences=evidence,
        )

    def hits(self, r: Retrieval) -> list[Hit]:
        """Public Hit records for a retrieval."""
        out = []
        for i, pos in enumerate(r.positions):
            p = self.index.passages[int(pos)]
            out.append(
                Hit(
                    rank=i + 1,
                    passage_id=p.id,
                    doc_id=p.doc_id,
                    title=p.title,
                    section=p.section,
                    text=p.text,
                    score=round(float(r.scores[i]), 6),
                    start=p.start,
                    end=p.end,
                    page=p.page,
                    bm25=round(float(r.bm25[i]), 6),
                    dense=round(float(r.dense[i]), 6),
                    sentence=round(float(r.sentence[i]), 6),
                )
            )
        return out

    def search(self, query: str, mode: str = "hybrid", k: int = 10) -> list[Hit]:
        """Ranked hits for a query."""
        return self.hits(self.retrieve(query, mode, k))


def _passage_evidence(rows: list[tuple[float, float, float, float, frozenset[str]]], w: dict[str, float]) -> float:
    """Stage-2 passage score from its sentences: best evidence (+ type of that sentence) and best bigram share."""
    if not rows:
        return 0.0
    best = max(range(len(rows)), key=lambda j: (0.5 * rows[j][0] + 0.5 * rows[j][1], -j))
    cos, cov, _, type_ok, _ = rows[best]
    return w["evidence"] * (0.5 * cos + 0.5 * cov) + w["bigram"] * max(r[2] for r in rows) + w["type"] * type_ok
