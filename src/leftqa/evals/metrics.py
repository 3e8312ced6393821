"""Pure eval metrics: relevance by evidence snippets, hit@k, MRR, nDCG, answer match, rates and percentiles."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from leftqa.text import normalise


def is_relevant(text: str, evidence: Iterable[str]) -> bool:
    """True when the normalised text contains any normalised evidence snippet."""
    body = normalise(text)
    return any(snippet and normalise(snippet) in body for snippet in evidence)


def relevant_ranks(texts: Sequence[str], evidence: Sequence[str]) -> tuple[int, ...]:
    """1-based ranks of the texts (a ranked list) that are relevant to the evidence."""
    return tuple(rank for rank, text in enumerate(texts, start=1) if is_relevant(text, evidence))


def hit_at(ranks: Sequence[int], k: int) -> float:
    """1.0 when a relevant item is ranked within the top k, else 0.0."""
    return 1.0 if any(r <= k for r in ranks) else 0.0


def reciprocal_rank(ranks: Sequence[int], k: int = 10) -> float:
    """1 / rank of the first relevant item within the top k (0.0 when none)."""
    first = min((r for r in ranks if r <= k), default=0)
    return 1.0 / first if first else 0.0


def ndcg(ranks: Sequence[int], n_relevant: int, k: int = 10) -> float:
    """Binary-relevance nDCG@k; the ideal ranking puts min(n_relevant, k) relevant items first."""
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(n_relevant, k) + 1))
    if ideal == 0:
        return 0.0
    gain = sum(1.0 / math.log2(r + 1) for r in set(ranks) if r <= k)
    return gain / ideal


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when the normalised text contains any of the normalised answers."""
    body = normalise(text)
    return any(a and normalise(a) in body for a in answers)


def share(flags: Sequence[bool]) -> float:
    """Fraction of true flags (0.0 for an empty list)."""
    return sum(1 for f in flags if f) / len(flags) if flags else 0.0


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0.0 for an empty list)."""
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks (0.0 for an empty list)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
