"""Frozen result records shared by every layer, serialised with `dataclasses.asdict`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sentence:
    """One sentence of a passage: document offsets and offsets inside the passage text."""

    text: str
    start: int  # offset into the document's source text
    end: int
    local_start: int  # offset into Passage.text
    local_end: int


@dataclass(frozen=True)
class Passage:
    """A retrieval unit: consecutive sentences of one section of one document."""

    id: str
    doc_id: str
    title: str
    section: str
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...]
    page: int | None = None
    source: str = ""  # where the document came from (a URL for downloaded pages)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Passage":
        """Inverse of `to_dict`."""
        sentences = tuple(Sentence(**s) for s in data["sentences"])
        return cls(**{**data, "sentences": sentences})


@dataclass(frozen=True)
class Hit:
    """A ranked passage for one query, with the signals that ranked it."""

    rank: int
    passage_id: str
    doc_id: str
    title: str
    section: str
    text: str
    score: float
    start: int
    end: int
    page: int | None = None
    bm25: float = 0.0
    dense: float = 0.0
    sentence: float = 0.0


@dataclass(frozen=True)
class Citation:
    """A numbered source of quoted sentences: where they are in the document and in the passage."""

    n: int
    passage_id: str
    doc_id: str
    title: str
    section: str
    start: int  # document offset of the first quoted sentence
    end: int  # document offset just past the last quoted sentence
    quote: str
    highlights: tuple[tuple[int, int], ...] = ()  # (start, end) of each quoted sentence in the passage text
    page: int | None = None
    score: float = 0.0
    source: str = ""  # where the document came from (a URL for downloaded pages)


@dataclass(frozen=True)
class Answer:
    """What the assistant says to one question, with its evidence."""

    question: str
    query: str
    abstained: bool
    answer: str
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...]
    mode: str
    reason: str = ""
    confidence: float = 0.0
    evidence: dict[str, float] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the `leftqa ask --json` contract)."""
        return asdict(self)
