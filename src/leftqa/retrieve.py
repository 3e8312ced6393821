"""Hybrid retrieval: BM25 and dense passage scores plus best-sentence similarity, fused into one ranking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MODES
from .embed import Embedder
from .errors import ConfigError
from .index import Index
from .records import Hit
from .text import terms

# Fusion weights over [bm25 / max bm25, passage cosine, best-sentence cosine], chosen by a grid search on the
# public SQuAD 2.0 benchmark (benchmarks/squad.py --grid), never on our own eval cases; see README "Retrieval".
WEIGHTS = {"bm25": 0.35, "dense": 0.25, "sentence": 0.40}
CANDIDATES = 100  # passages taken from each of BM25 and dense before fusion


@dataclass(frozen=True)
class Retrieval:
    """Ranked passage positions with every signal, kept for answer selection (internal to the pipeline)."""

    query: str
    mode: str
    positions: np.ndarray  # passage positions, best first
    scores: np.ndarray  # fused (or single-mode) score per ranked passage
    bm25: np.ndarray  # normalised BM25 per ranked passage
    dense: np.ndarray  # passage cosine per ranked passage
    sentence: np.ndarray  # best-sentence cosine per ranked passage
    qvec: np.ndarray
    qterms: tuple[str, ...]


def fuse(bm25_norm: np.ndarray, dense: np.ndarray, sentence: np.ndarray, weights: dict[str, float] = WEIGHTS) -> np.ndarray:
    """Weighted sum of the three normalised signals."""
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


class Retriever:
    """Searches one loaded index; stateless per query, so safe to share between threads."""

    def __init__(self, index: Index, embedder: Embedder, weights: dict[str, float] | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.weights = dict(weights or WEIGHTS)

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
        starts = self.index.sentence_starts
        out = np.zeros(len(positions), dtype=np.float32)
        for i, pos in enumerate(positions):
            lo, hi = int(starts[pos]), int(starts[pos + 1])
            if hi > lo:
                out[i] = float(np.max(self.index.sentence_vectors[lo:hi] @ qvec))
        return out

    def sentence_scores(self, pos: int, qvec: np.ndarray) -> np.ndarray:
        """Cosine of each sentence of one passage with the query."""
        starts = self.index.sentence_starts
        return np.asarray(self.index.sentence_vectors[int(starts[pos]) : int(starts[pos + 1])] @ qvec, dtype=np.float32)

    def retrieve(self, query: str, mode: str = "hybrid", k: int = 10, qvec: np.ndarray | None = None) -> Retrieval:
        """Rank passages for `query` with one of the modes hybrid, bm25, dense."""
        if mode not in MODES:
            raise ConfigError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        n = self.index.size
        qterms = terms(query)
        if qvec is None:
            qvec = self.encode(query)
        qvec = np.ascontiguousarray(qvec, dtype=np.float32)
        bm25_all = self.bm25_scores(qterms)
        top_bm25 = float(bm25_all.max()) if n else 0.0
        bm25_norm_all = bm25_all / top_bm25 if top_bm25 > 0 else bm25_all
        pool = max(k, CANDIDATES)
        dense_scores, dense_ids = self.index.dense.search(qvec.reshape(1, -1), min(pool, n)) if n else (np.zeros((1, 0)), np.zeros((1, 0), dtype=np.int64))
        dense_ids = dense_ids[0][dense_ids[0] >= 0]
        if mode == "bm25":
            cand = top_k(bm25_all, k)
        elif mode == "dense":
            cand = dense_ids[:k]
        else:
            lexical = top_k(bm25_all, pool)
            lexical = lexical[bm25_all[lexical] > 0]
            cand = np.unique(np.concatenate([lexical, dense_ids]).astype(np.int64))
        dense = np.asarray(self.index.passage_vectors[cand] @ qvec, dtype=np.float32) if len(cand) else np.zeros(0, np.float32)
        sentence = self.best_sentence(cand, qvec)
        bm25n = bm25_norm_all[cand].astype(np.float32)
        if mode == "bm25":
            scores = bm25_all[cand]
        elif mode == "dense":
            scores = dense
        else:
            scores = fuse(bm25n, dense, sentence, self.weights)
        order = top_k(np.asarray(scores, dtype=np.float32), k)
        return Retrieval(
            query=query,
            mode=mode,
            positions=cand[order],
            scores=np.asarray(scores, dtype=np.float32)[order],
            bm25=bm25n[order],
            dense=dense[order],
            sentence=sentence[order],
            qvec=qvec,
            qterms=tuple(qterms),
        )

    def hits(self, r: Retrieval) -> list[Hit]:
        """Public Hit records for a retrieval."""
        out = []
        for rank, (pos, score) in enumerate(zip(r.positions, r.scores), start=1):
            p = self.index.passages[int(pos)]
            i = rank - 1
            out.append(
                Hit(
                    rank=rank,
                    passage_id=p.id,
                    doc_id=p.doc_id,
                    title=p.title,
                    section=p.section,
                    text=p.text,
                    score=round(float(score), 6),
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
