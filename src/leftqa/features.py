"""Sentence-level evidence features: expected answer type, IDF-weighted term coverage, bigram matches."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_YEAR = r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b"
_MONTH = r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December)\b"
_DATE = re.compile(rf"{_YEAR}|{_MONTH}|\b\d+(?:st|nd|rd|th) centur(?:y|ies)\b|\bcentur(?:y|ies)\b|\bdecades?\b", re.I)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundreds?|"
    r"thousands?|millions?|billions?|half|majority|percent)\b",
    re.I,
)
_CAP_SEQ = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:[A-Z][\w'’.-]*|de|von|van|der|of|the))*")
_TITLE = re.compile(r"[\"“][^\"”]{3,}[\"”]|\b[A-Z][a-z]+(?: [A-Za-z]+){0,5} (?:of|to|in) [A-Z][a-z]+")

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


def _novel_caps(sentence: str, question_words: set[str]) -> bool:
    """The sentence names something capitalised (beyond its first word) that the question does not."""
    for m in _CAP_SEQ.finditer(sentence):
        if m.start() == 0 and " " not in m.group(0):
            continue
        names = [w for w in re.findall(r"\w+", m.group(0)) if w[:1].isupper()]
        if any(w.lower() not in question_words for w in names):
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
        return 1.0 if _novel_caps(sentence, {w.lower() for w in re.findall(r"\w+", question)}) else 0.0
    if kind == "title":
        return 1.0 if _TITLE.search(sentence) else 0.0
    return 0.0


def idf(doc_freq: dict[str, int], n_docs: int, term: str) -> float:
    """Inverse document frequency; terms absent from the corpus get the highest weight."""
    return math.log((max(n_docs, 1) + 1) / (doc_freq.get(term, 0) + 0.5))


@dataclass(frozen=True)
class QueryTerms:
    """A query's content terms with IDF weights and adjacent-term bigrams."""

    terms: tuple[str, ...]
    weights: dict[str, float]
    bigrams: frozenset[tuple[str, str]]

    @classmethod
    def build(
        cls, term_list: list[str], doc_freq: dict[str, int], n_docs: int, context: list[str] = (), context_weight: float = 0.5
    ) -> "QueryTerms":
        """IDF weights for the unique terms (conversation context terms scaled down); bigrams of the question only."""
        unique = tuple(dict.fromkeys(term_list))
        weights = {t: idf(doc_freq, n_docs, t) for t in unique}
        for t in dict.fromkeys(context):
            if t not in weights:
                weights[t] = context_weight * idf(doc_freq, n_docs, t)
        return cls(tuple(weights), weights, frozenset(zip(term_list, term_list[1:])))

    @property
    def total(self) -> float:
        """Sum of the term weights."""
        return sum(self.weights.values())

    def coverage(self, text_terms: set[str] | frozenset[str]) -> float:
        """IDF-weighted share of the query terms found in a text's terms."""
        total = self.total
        if total <= 0:
            return 0.0
        return sum(w for t, w in self.weights.items() if t in text_terms) / total

    def bigram_share(self, term_list: list[str]) -> float:
        """Share of the query's term bigrams that occur in a text."""
        if not self.bigrams:
            return 0.0
        return len(self.bigrams & set(zip(term_list, term_list[1:]))) / len(self.bigrams)

    def matched(self, text_terms: set[str] | frozenset[str]) -> frozenset[str]:
        """The query terms a text contains."""
        return frozenset(t for t in self.terms if t in text_terms)
