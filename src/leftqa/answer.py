"""Extractive answers: score the sentences of the top passages, pick the best 1-3, cite them, or abstain."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .index import Index
from .records import Citation, Passage
from .retrieve import Retrieval, Retriever
from .text import terms

# Sentence score = weighted sum of these features. Weights chosen on the public SQuAD 2.0 benchmark
# (benchmarks/squad.py --answer-grid), not on our own eval cases.
SENTENCE_WEIGHTS = {"cosine": 0.45, "lexical": 0.40, "passage": 0.25, "type": 0.12, "dangling": 0.25}
PASSAGES_FOR_ANSWER = 5
SUPPORT_MARGIN = 0.06

_YEAR = r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b"
_MONTH = r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December)\b"
_DATE = re.compile(rf"{_YEAR}|{_MONTH}|\b\d+(?:st|nd|rd|th) centur(?:y|ies)\b|\bcentur(?:y|ies)\b|\bdecades?\b", re.I)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundreds?|"
    r"thousands?|millions?|billions?|half|majority|percent)\b",
    re.I,
)
_CAP_SEQ = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|von|van|der|of|the))*")
_QUOTED = re.compile(r"[\"“][^\"”]{3,}[\"”]|\b[A-Z][a-z]+(?: [A-Za-z]+){0,5} (?:of|to|in) [A-Z][a-z]+")

TYPES = ("date", "number", "person", "place", "title", "other")


def answer_type(question: str) -> str:
    """The kind of answer a question expects: date, number, person, place, title or other."""
    q = question.lower().strip()
    if re.search(r"\b(when|what year|which year|what date|what decade|what century|how long ago|since when)\b", q):
        return "date"
    if re.search(r"\b(how many|how much|what number|what percentage|how large|how big|how old)\b", q):
        return "number"
    if re.search(r"\b(who|whom|whose)\b|\b(which|what) (person|man|woman|historian|leader|writer|author|revolutionary|biographer)\b", q):
        return "person"
    if re.search(r"\bwhere\b|\b(which|what) (country|city|place|region|town|nation|countries|cities)\b", q):
        return "place"
    if re.search(r"\b(which|what) (book|essay|periodical|pamphlet|novel|title|work|article|newspaper|journal)\b", q):
        return "title"
    return "other"


def _novel_caps(sentence: str, question: str) -> bool:
    """The sentence names something capitalised (beyond its first word) that the question does not."""
    qwords = {w.lower() for w in re.findall(r"\w+", question)}
    for m in _CAP_SEQ.finditer(sentence):
        if m.start() == 0 and " " not in m.group(0):
            continue
        names = [w for w in re.findall(r"\w+", m.group(0)) if w[:1].isupper()]
        if any(w.lower() not in qwords for w in names):
            return True
    return False


def type_match(kind: str, sentence: str, question: str) -> float:
    """1.0 when the sentence holds a candidate answer of the expected kind that the question lacks."""
    if kind == "date":
        qdates = set(_DATE.findall(question))
        return 1.0 if any(d not in qdates for d in _DATE.findall(sentence)) else 0.0
    if kind == "number":
        qnums = {n.lower() for n in _NUMBER.findall(question)}
        return 1.0 if any(n.lower() not in qnums for n in _NUMBER.findall(sentence)) else 0.0
    if kind in ("person", "place"):
        return 1.0 if _novel_caps(sentence, question) else 0.0
    if kind == "title":
        return 1.0 if _QUOTED.search(sentence) else 0.0
    return 0.0


def idf(index: Index, term: str) -> float:
    """Inverse document frequency; terms absent from the corpus get the highest weight."""
    n = max(index.size, 1)
    return math.log((n + 1) / (index.doc_freq.get(term, 0) + 0.5))


def coverage(qterms: list[str] | tuple[str, ...], text_terms: set[str], weights: dict[str, float]) -> float:
    """IDF-weighted share of the question's content terms found in a text."""
    total = sum(weights[t] for t in set(qterms))
    if total <= 0:
        return 0.0
    return sum(weights[t] for t in set(qterms) if t in text_terms) / total


@dataclass(frozen=True)
class Candidate:
    """One scored sentence of a retrieved passage."""

    rank: int  # rank of its passage in the retrieval (0-based)
    pos: int  # passage position in the index
    index_in_passage: int
    score: float
    cosine: float
    lexical: float
    type_ok: float
    new_terms: frozenset[str]


@dataclass(frozen=True)
class Selection:
    """Chosen sentences (best first) and the evidence used to judge confidence."""

    chosen: tuple[Candidate, ...]
    evidence: dict[str, float]


def score_sentences(
    retriever: Retriever, r: Retrieval, question: str, query: str | None = None, n_passages: int = PASSAGES_FOR_ANSWER
) -> list[Candidate]:
    """Score every sentence of the top passages for how well it answers the question (terms from the query)."""
    index = retriever.index
    qterms = list(dict.fromkeys(terms(query or question))) or list(r.qterms)
    weights = {t: idf(index, t) for t in qterms}
    kind = answer_type(question)
    top = float(r.scores[0]) if len(r.scores) else 1.0
    out: list[Candidate] = []
    for rank, pos in enumerate(r.positions[:n_passages]):
        passage = index.passages[int(pos)]
        cos = retriever.sentence_scores(int(pos), r.qvec)
        rel = float(r.scores[rank]) / top if top > 0 else 0.0
        for i, s in enumerate(passage.sentences):
            s_terms = set(terms(s.text))
            lex = coverage(qterms, s_terms, weights)
            t_ok = type_match(kind, s.text, question)
            dangling = 1.0 if s.text.rstrip().endswith(":") else 0.0
            w = SENTENCE_WEIGHTS
            score = w["cosine"] * float(cos[i]) + w["lexical"] * lex + w["passage"] * rel + w["type"] * t_ok - w["dangling"] * dangling
            out.append(Candidate(rank, int(pos), i, score, float(cos[i]), lex, t_ok, frozenset(t for t in qterms if t in s_terms)))
    out.sort(key=lambda c: (-c.score, c.rank, c.index_in_passage))
    return out


def select(candidates: list[Candidate], max_sentences: int = 3) -> tuple[Candidate, ...]:
    """The best sentence, then up to two more within a small margin that add question terms or the answer type."""
    if not candidates:
        return ()
    best = candidates[0]
    chosen = [best]
    covered = set(best.new_terms)
    for c in candidates[1:]:
        if len(chosen) >= max_sentences or c.score < best.score - SUPPORT_MARGIN:
            break
        adds = bool(c.new_terms - covered) or (c.type_ok and not best.type_ok)
        if adds:
            chosen.append(c)
            covered |= c.new_terms
    head, rest = chosen[0], sorted(chosen[1:], key=lambda c: (c.rank, c.index_in_passage))
    return (head, *rest)


def cite(index: Index, chosen: tuple[Candidate, ...], scores: dict[int, float]) -> tuple[str, tuple[Citation, ...]]:
    """Answer text with [n] markers and one citation per passage, numbered in order of first use."""
    numbers: dict[int, int] = {}
    by_passage: dict[int, list[int]] = {}
    parts: list[str] = []
    for c in chosen:
        n = numbers.setdefault(c.pos, len(numbers) + 1)
        by_passage.setdefault(c.pos, []).append(c.index_in_passage)
        parts.append(f"{index.passages[c.pos].sentences[c.index_in_passage].text} [{n}]")
    citations = []
    for pos, n in numbers.items():
        p: Passage = index.passages[pos]
        idx = sorted(set(by_passage[pos]))
        sents = [p.sentences[i] for i in idx]
        quote = " … ".join(_runs(p, idx))
        citations.append(
            Citation(
                n=n,
                passage_id=p.id,
                doc_id=p.doc_id,
                title=p.title,
                section=p.section,
                start=sents[0].start,
                end=sents[-1].end,
                quote=quote,
                highlights=tuple((s.local_start, s.local_end) for s in sents),
                page=p.page,
                score=round(scores.get(pos, 0.0), 6),
            )
        )
    return " ".join(parts), tuple(citations)


def _runs(p: Passage, idx: list[int]) -> list[str]:
    """Quoted text per run of adjacent sentences (verbatim from the passage)."""
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return [p.text[p.sentences[r[0]].local_start : p.sentences[r[-1]].local_end] for r in runs]


def evidence(candidates: list[Candidate], r: Retrieval, index: Index, question: str) -> dict[str, float]:
    """Scores the abstention decision reads: best sentence cosine and coverage, top passage signals."""
    if not candidates:
        return {"sentence": 0.0, "coverage": 0.0, "passage": 0.0, "passage_coverage": 0.0, "score": 0.0}
    qterms = list(dict.fromkeys(terms(question))) or list(r.qterms)
    weights = {t: idf(index, t) for t in qterms}
    top_terms: set[str] = set()
    for pos in r.positions[:3]:
        top_terms |= set(terms(index.passages[int(pos)].text))
    return {
        "sentence": round(max(c.cosine for c in candidates), 6),
        "coverage": round(candidates[0].lexical, 6),
        "passage": round(float(r.dense[0]) if len(r.dense) else 0.0, 6),
        "passage_coverage": round(coverage(qterms, top_terms, weights), 6),
        "score": round(candidates[0].score, 6),
    }


def confidence(ev: dict[str, float], weights: dict[str, float]) -> float:
    """Linear confidence from evidence (weights from calibration)."""
    return sum(weights.get(k, 0.0) * v for k, v in ev.items())


def selection_scores(r: Retrieval) -> dict[int, float]:
    """Passage position -> retrieval score, for citations."""
    return {int(p): float(s) for p, s in zip(r.positions, r.scores)}
