"""SQuAD 2.0 → (question, sentence, label) pairs for the answer scorer: the sentence holding the answer is the
positive; the other sentences of its paragraph, the best word-overlap sentence of another paragraph, and the
plausible-answer sentence of an unanswerable question are the negatives."""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from leftqa.errors import TrainingError
from leftqa.ingest.chunking import split_sentences
from leftqa.text import with_context

_WORD = re.compile(r"\w+")
# Function words do not make two sentences about the same thing; hard negatives are chosen by content overlap.
_STOP = frozenset(
    "the a an of in on at to for and or is was were are be by with as from that this which who what when where "
    "why how did do does its it his her their".split()
)


@dataclass(frozen=True)
class Pair:
    """One training example: does `sentence` answer `question`?"""

    question: str
    sentence: str
    label: float
    # Which question it belongs to (numbered in `make_pairs` order): the listwise loss compares one question's
    # sentences with each other. Not part of equality: the same pair is the same example whatever its number.
    group: int = field(default=-1, compare=False)


def load_squad(path: Path) -> list[dict[str, Any]]:
    """The articles of a SQuAD-format JSON file (gzip or plain)."""
    try:
        raw = Path(path).read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)["data"]
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise TrainingError(f"cannot read SQuAD data {path}: {exc}") from None
    if not isinstance(data, list) or not data:
        raise TrainingError(f"{path}: no articles in 'data'")
    return data


def split_articles(articles: list[dict[str, Any]], holdout: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training articles, held-out articles): a seeded choice of `holdout` articles kept for fitting the combination."""
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(0, min(holdout, len(articles) - 1))])
    return [a for i, a in enumerate(articles) if i not in held], [a for i, a in enumerate(articles) if i in held]


def _content(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _paragraphs(article: dict[str, Any], context: bool = False) -> list[tuple[list[str], list[tuple[int, int]], list[set[str]]]]:
    """(what the scorer reads of each sentence, sentence spans, content words of each sentence) for each paragraph
    of an article; with `context`, a sentence that points back carries the one before it (`text.with_context`)."""
    out = []
    for p in article["paragraphs"]:
        ctx = p["context"]
        spans = split_sentences(ctx)
        sents = [ctx[s:e] for s, e in spans]
        texts = [with_context(t, sents[i - 1] if i else "") for i, t in enumerate(sents)] if context else sents
        out.append((texts, spans, [_content(t) for t in sents]))
    return out


def answer_sentence(spans: list[tuple[int, int]], start: int) -> int | None:
    """Index of the sentence span that holds character `start`, or None."""
    return next((i for i, (s, e) in enumerate(spans) if s <= start < e), None) if start >= 0 else None


def make_pairs(
    articles: list[dict[str, Any]], seed: int, in_paragraph: int = 2, cross_paragraph: int = 1, context: bool = False
) -> Iterator[Pair]:
    """Pairs of every question of the articles, in article order (shuffle them for training); with `context`, a
    sentence that points back carries the sentence before it (the same questions and labels either way)."""
    rng = random.Random(seed)
    group = -1
    for article in articles:
        paras = _paragraphs(article, context)
        for pi, p in enumerate(article["paragraphs"]):
            sents, spans, toks = paras[pi]
            if len(spans) < 2:
                continue
            for q in p["qas"]:
                question = str(q.get("question", "")).strip()
                if not question:
                    continue
                impossible = bool(q.get("is_impossible"))
                answers = q.get("plausible_answers" if impossible else "answers") or []
                gold = answer_sentence(spans, int(answers[0].get("answer_start", -1))) if answers else None
                if not impossible and gold is None:
                    continue
                qt = _content(question)
                group += 1
                others = sorted((i for i in range(len(sents)) if i != gold), key=lambda i: -len(qt & toks[i]))
                if impossible:
                    if gold is not None:
                        yield Pair(question, sents[gold], 0.0, group)  # written to look answerable by this sentence
                    chosen = others[:1]
                else:
                    yield Pair(question, sents[gold], 1.0, group)
                    chosen = others[: max(1, in_paragraph - 1)]
                    rest = others[len(chosen) :]
                    if rest and in_paragraph > 1:
                        chosen.append(rng.choice(rest))
                yield from (Pair(question, sents[i], 0.0, group) for i in chosen)
                if cross_paragraph:
                    best, overlap = None, 0
                    for pj, (_, _, t2) in enumerate(paras):
                        if pj == pi:
                            continue
                        for k, tk in enumerate(t2):
                            if len(qt & tk) > overlap:
                                best, overlap = (pj, k), len(qt & tk)
                    if best is not None:
                        yield Pair(question, paras[best[0]][0][best[1]], 0.0, group)


def missing_pairs(
    articles: list[dict[str, Any]], questions: set[str], share: float, seed: int, first_group: int, per_question: int = 3,
    context: bool = False,
) -> Iterator[Pair]:
    """Near-topic "missing" questions for the listwise loss: a `share` of the answerable `questions`, each asked
    again of the best word-overlap sentences of the *other* paragraphs of its article (none holding an answer
    text), all negative, so that the no-answer option must win. What a reader asks that the corpus is on the
    subject of but does not answer; SQuAD's own unanswerable questions are the adversarial kind only."""
    rng = random.Random(seed)
    group = first_group
    for article in articles:
        paras = [(texts, toks) for texts, _, toks in _paragraphs(article, context)]
        for pi, p in enumerate(article["paragraphs"]):
            for q in p["qas"]:
                question = str(q.get("question", "")).strip()
                if q.get("is_impossible") or question not in questions or rng.random() >= share:
                    continue
                texts = [str(a.get("text", "")).lower() for a in q.get("answers") or [] if str(a.get("text", "")).strip()]
                if not texts:
                    continue
                qt = _content(question)
                scored = [(len(qt & tk), sent) for pj, (sents, toks) in enumerate(paras) if pj != pi
                          for sent, tk in zip(sents, toks) if qt & tk and not any(t in sent.lower() for t in texts)]  # fmt: skip
                scored.sort(key=lambda x: -x[0])
                if scored:
                    yield from (Pair(question, sent, 0.0, group) for _, sent in scored[:per_question])
                    group += 1


def grouped(pairs: Sequence[Pair]) -> list[list[Pair]]:
    """Pairs gathered by question (`Pair.group`), groups in order of first appearance."""
    out: dict[int, list[Pair]] = {}
    for p in pairs:
        out.setdefault(p.group, []).append(p)
    return list(out.values())
