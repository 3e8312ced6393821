"""Sentence-level evidence features: expected answer type, IDF-weighted term coverage, bigram matches."""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from typing import Mapping

from leftqa.qa.followup import names
from leftqa.text import is_stopword, stems, words

_YEAR = r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b"
_MONTHS = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
# A month is a date only next to a day or year: "October Revolution" and the verb "may" are not.
_MONTH_DAY = rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\b|\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
_DATE = re.compile(rf"{_YEAR}|{_MONTH_DAY}|\b\d+(?:st|nd|rd|th) centur(?:y|ies)\b|\bcentur(?:y|ies)\b|\bdecades?\b", re.I)
# A year after a preposition ("founded in 1932", "from 1936") dates something; it does not count anything.
_YEAR_AFTER = re.compile(
    rf"\b(?:in|since|until|till|by|from|to|between|and|of|during|before|after|{_MONTHS})\s+{_YEAR}", re.I
)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundreds?|"
    r"thousands?|millions?|billions?|half|majority|percent)\b",
    re.I,
)
# A run of capitalised words, joined by lower-case particles only between two of them ("Rosa Luxemburg",
# "House of Lords"; "One of the" is just "One").
_CAP_SEQ = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:(?:de|von|van|der|of|the)\s+)*[A-Z][\w'’.-]*)*")
_DIGITS = re.compile(r"\b\d[\d,]*\b")
_TITLE = re.compile(r"[\"“][^\"”]{3,}[\"”]|\b[A-Z][a-z]+(?: [A-Za-z]+){0,5} (?:of|to|in) [A-Z][a-z]+")

TYPES = ("date", "duration", "number", "person", "place", "title", "other")


_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|how|why)\b")
_YES_NO = re.compile(r"(did|does|do|is|was|were|are|am|can|could|has|have|had|would|should|will|shall|may|might)\b")
_KINDS = (
    ("date", re.compile(r"(when|(what|which) (years?|dates?|decades?|century|centuries|period)|how long ago)\b")),
    ("duration", re.compile(r"how long\b")),
    ("number", re.compile(r"how (many|much|large|big|old)\b|what (number|percentage)\b")),
    ("person", re.compile(r"(who|whom|whose)\b|(which|what) (person|man|woman|historian|leader|writer|author|revolutionary|biographer)\b")),
    ("place", re.compile(r"where\b|(which|what) (country|city|place|region|town|nation|countries|cities)\b")),
    ("title", re.compile(r"(which|what) (book|essay|periodical|pamphlet|novel|title|work|article|newspaper|journal)\b")),
)


# Requests phrased as commands ("Tell me about the POUM", "Describe Titoism"): the answer scorer was trained on
# questions, so it reads them as the question they stand for.
_REQUEST = re.compile(
    r"^\s*(?:please\s+)?(?:(?:can|could|would) you\s+)?(?:tell me(?: more)?(?: something)? about|describe|explain|"
    r"give me (?:an? )?(?:overview|summary|information|info|background) (?:of|on|about)|what do you know about|"
    r"(?:i want|i'd like) to know about|talk about|summari[sz]e)\s+(.+?)[\s?.!]*$",
    re.I,
)


def as_question(text: str) -> str:
    """A request phrased as a command, as the question it asks ("Tell me about X" -> "What is X?"); else unchanged."""
    m = _REQUEST.match(text)
    return f"What is {m.group(1)}?" if m else text


# "Who was Bukharin?", "What is Titoism?", "What is meant by the Third Camp?": asking what something is, not a fact
# about it. The subject must be short and hold no relation word ("What was the aim of X?" asks a fact).
_WHAT_IS = re.compile(r"^\s*(?:who|what)\s+(?:is|was|are|were)\s+(?:meant by\s+)?(.+?)[\s?.!]*$", re.I)
_RELATION = re.compile(r"\b(?:of|for|to|in|on|by|with|from|about|between|after|before|during|that|which|who|when|"
                       r"whose|first|last|main|name|role|result|reason|cause|aim|goal|purpose)\b", re.I)


def descriptive_subject(question: str) -> str:
    """What a descriptive request asks to be told about ("Tell me about the POUM" -> "the POUM"), or ""."""
    m = _REQUEST.match(question) or _WHAT_IS.match(question)
    if not m:
        return ""
    subject = m.group(1).strip()
    if len(subject.split()) > 5 or (m.re is _WHAT_IS and _RELATION.search(subject)):
        return ""
    return subject


_DETERMINERS = frozenset("the a an".split())


def opens_with(subject: str, sentence: str) -> bool:
    """Whether a sentence is about `subject`: its first word (past a determiner) is one of the subject's words, as
    in "Rosa Luxemburg was …" but not "Like Rosa Luxemburg, Emma Goldman was …"."""
    wanted = set(stems([w for w in words(subject) if not is_stopword(w)]))
    first = next((w for w in words(sentence) if w not in _DETERMINERS), "")
    return bool(first) and stems([first])[0] in wanted


def answer_type(question: str) -> str:
    """The kind of answer a question expects (date, number, person, place, title or other), read from its first
    wh-word: in "Which revolt was the turning point when …" the focus is "which revolt", not "when"."""
    q = " ".join(question.lower().split())
    m = _WH.search(q)
    if m is None or _YES_NO.match(q):  # "Did she stay when …?" asks yes or no, not for a date
        return "other"
    return next((kind for kind, pattern in _KINDS if pattern.match(q, m.start())), "other")


def mid_sentence_names(sentences: list[str]) -> frozenset[str]:
    """Capitalised words seen after a sentence's first word: names, as opposed to capitalised sentence openers."""
    return frozenset(
        w for text in sentences for m in _CAP_SEQ.finditer(text) if m.start() > 0 for w in re.findall(r"\w+", m.group(0))
        if w[:1].isupper()
    )


def _novel_caps(sentence: str, question_words: set[str], known_names: frozenset[str] = frozenset()) -> bool:
    """The sentence names something capitalised that the question does not; a lone first word counts only when the
    passage also capitalises it mid-sentence ("Trotsky would …" names someone, "Support for …" does not)."""
    for m in _CAP_SEQ.finditer(sentence):
        if m.start() == 0 and " " not in m.group(0) and m.group(0) not in known_names:
            continue
        names = [w for w in re.findall(r"\w+", m.group(0)) if w[:1].isupper()]
        if any(w.lower() not in question_words for w in names):
            return True
    return False


def type_match(kind: str, sentence: str, question: str, known_names: frozenset[str] = frozenset()) -> float:
    """1.0 when the sentence holds a candidate answer of the expected kind that the question lacks."""
    if kind == "date":
        qdates = set(_DATE.findall(question))
        return 1.0 if any(d not in qdates for d in _DATE.findall(sentence)) else 0.0
    if kind == "number":
        qnums = {n.lower() for n in _NUMBER.findall(question)}
        years = {m.end() for m in _YEAR_AFTER.finditer(sentence)}
        return 1.0 if any(m.group(0).lower() not in qnums and m.end() not in years for m in _NUMBER.finditer(sentence)) else 0.0
    if kind == "duration":  # "how long did it last?": a span of time or a count of units
        return max(type_match("date", sentence, question), type_match("number", sentence, question))
    if kind in ("person", "place"):
        return 1.0 if _novel_caps(sentence, {w.lower() for w in re.findall(r"\w+", question)}, known_names) else 0.0
    if kind == "title":
        return 1.0 if _TITLE.search(sentence) else 0.0
    return 0.0


def name_coverage(question: str, text: str) -> float:
    """Share of what a question names (capitalised words past its first, and written numbers such as years) that a
    text mentions.

    A name counts as mentioned when one of its words is in the text, as the same stem or as a prefix either way
    ("Normans" ~ "Norman", "Tito" ~ "Titoism"); a number when the text has the same digits. An answer quoted from
    a passage that never names what the question asks about ("How many were killed at Kronstadt?" answered from
    a passage on another event) is about something else."""
    asked = [n for n in names(question) if n != "I"]  # the pronoun, not a name
    total = len(asked) + len(dict.fromkeys(n.replace(",", "") for n in _DIGITS.findall(question)))
    return 1.0 if not total else 1.0 - len(missing_names(question, text)) / total


def missing_names(question: str, text: str) -> list[str]:
    """The names and numbers a question asks about that a text never mentions (see `name_coverage`)."""
    asked = [n for n in names(question) if n != "I"]  # the pronoun, not a name
    numbers = list(dict.fromkeys(n.replace(",", "") for n in _DIGITS.findall(question)))
    if not asked and not numbers:
        return []
    seen = set(words(text))
    seen_stems = set(stems(sorted(seen)))
    plain = text.replace(",", "")

    def mentioned(w: str) -> bool:
        return (
            w in seen
            or stems([w])[0] in seen_stems
            or (len(w) >= 4 and any(x.startswith(w) or (len(x) >= 4 and w.startswith(x)) for x in seen))
        )

    out = [n for n in asked if not any(mentioned(w) for w in words(n))]
    out += [n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", plain)]
    return out


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


class Vocabulary:
    """The corpus's stemmed terms (the BM25 vocabulary), asked whether a name occurs anywhere in the corpus."""

    _LETTERS = "abcdefghijklmnopqrstuvwxyz"

    def __init__(self, terms: Mapping[str, int]) -> None:
        self._terms = terms
        self._sorted: list[str] | None = None  # built on first use: a large corpus's vocabulary takes a moment

    def _has_prefix(self, stem: str) -> bool:
        if self._sorted is None:
            self._sorted = sorted(self._terms)
        i = bisect.bisect_left(self._sorted, stem)
        return i < len(self._sorted) and self._sorted[i].startswith(stem)

    def mentions(self, word: str) -> bool:
        """A word occurs in the corpus: the same stem, a prefix either way ("Tito" ~ "Titoism"), or (in a word of
        five letters or more) one typo ("Luxemborg")."""
        stem = stems([word])[0]
        if stem in self._terms or word in self._terms:
            return True
        if len(stem) >= 4 and (self._has_prefix(stem) or any(stem[:n] in self._terms for n in range(4, len(stem)))):
            return True
        return len(stem) >= 5 and any(v in self._terms for v in _one_edit(stem, self._LETTERS))

    def absent_names(self, question: str) -> list[str]:
        """The names a question asks about of which no word occurs anywhere in the corpus: asked about someone or
        something the corpus never mentions, any sentence quoted would be about something else."""
        out = []
        for name in names(question):
            content = [w for w in words(name) if not is_stopword(w) and not w.isdigit()]
            # Two words or more: a full name ("Karl Kautsky"). A lone word is as often an alias the corpus spells
            # out ("USSR" for the Soviet Union, "Moscow" for its government), which no vocabulary resolves.
            if len(content) >= 2 and not any(self.mentions(w) for w in content):
                out.append(name)
        return out


def _one_edit(word: str, letters: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away from `word`."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in letters}
    out |= {a + c + b for a, b in splits for c in letters}
    return out
