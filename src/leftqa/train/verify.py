"""Training pairs for the answer verifier (issue 29): SQuAD 2.0 questions read against the answer sentence *with
its neighbours* ("window"), labelled 1 when the window answers and 0 when it is on the subject but does not: the
plausible-answer window of an unanswerable question, the best word-overlap window of the paragraph that does not
hold the answer (near-topic), the answer window of the question asked about another name of the article (wrong
subject) or with another year (false premise). Pronoun follow-ups and sloppy or keyword versions of answerable
questions keep label 1, so that the way people type is not taken for a missing answer."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from leftqa.train.pairs import Pair, _content, answer_sentence
from leftqa.train.variants import (
    _YEAR,
    _own_names,
    article_names,
    as_followup,
    keywords,
    sloppy,
    swap_subject,
    swap_year,
)

KINDS = ("answer", "style", "followup", "squad-impossible", "near-topic", "wrong-subject", "false-premise")


def window(sentences: Sequence[str], i: int) -> str:
    """Sentence `i` with the one before and the one after it (what the verifier reads)."""
    return " ".join(sentences[max(0, i - 1) : i + 2])


def verifier_rows(
    articles: list[dict[str, Any]], seed: int = 13, near_share: float = 0.5, variant_share: float = 0.5
) -> list[tuple[str, str, float, str]]:
    """(question, window, label, kind) for the articles' questions, in article order."""
    from leftqa.ingest.chunking import split_sentences
    from leftqa.qa.features import as_question
    from leftqa.text import words

    rng = random.Random(seed)
    out: list[tuple[str, str, float, str]] = []
    for art in articles:
        ctxs = [p["context"] for p in art["paragraphs"]]
        names = None
        years = list(dict.fromkeys(y for c in ctxs for y in _YEAR.findall(c)))
        for p in art["paragraphs"]:
            ctx = p["context"]
            spans = split_sentences(ctx)
            sents = [ctx[s:e] for s, e in spans]
            if len(sents) < 2:
                continue
            toks = [_content(s) for s in sents]
            for q in p["qas"]:
                question = " ".join(str(q.get("question", "")).split())
                if not question:
                    continue
                imp = bool(q.get("is_impossible"))
                answers = q.get("plausible_answers" if imp else "answers") or []
                start = (
                    int(answers[0].get("answer_start", ctx.find(str(answers[0].get("text", "")) or "\0")))
                    if answers
                    else -1
                )
                gold = answer_sentence(spans, start) if answers else None
                if gold is None:
                    continue
                if imp:
                    out.append((question, window(sents, gold), 0.0, "squad-impossible"))
                    continue
                out.append((question, window(sents, gold), 1.0, "answer"))
                texts = [str(a.get("text", "")).lower() for a in answers if str(a.get("text", "")).strip()]
                qt = _content(question)
                if rng.random() < near_share:
                    far = [
                        j
                        for j in range(len(sents))
                        if abs(j - gold) >= 2 and not any(t in window(sents, j).lower() for t in texts)
                    ]
                    far.sort(key=lambda j: -len(qt & toks[j]))
                    if far and qt & toks[far[0]]:
                        out.append((question, window(sents, far[0]), 0.0, "near-topic"))
                if rng.random() >= variant_share:
                    continue
                kinds = ["wrong-subject", "false-premise", "followup", "style"]
                rng.shuffle(kinds)
                for kind in kinds:
                    made = None
                    if kind == "wrong-subject":
                        if names is None:
                            names = article_names(ctxs)
                        s = swap_subject(question, ctx, names, rng)
                        made = (s[0], 0.0) if s else None
                    elif kind == "false-premise":
                        y = swap_year(question, sents[gold], ctx, years, rng)
                        made = (y, 0.0) if y else None
                    elif kind == "followup":
                        own = [n for n in _own_names(question, set(words(ctx))) if len(n) >= 3]
                        asked = [
                            " ".join(str(o.get("question", "")).split()) for o in p["qas"] if not o.get("is_impossible")
                        ]
                        earlier = [a for a in asked if own and own[0] in a and a != question]
                        turn = as_followup(question, own[0], ctx) if own else None
                        if turn:
                            before = rng.choice(earlier) if earlier else f"Tell me about {own[0]}"
                            made = (f"{as_question(before)} {as_question(turn)}", 1.0)
                    else:
                        made = (sloppy(question, rng) if rng.random() < 0.6 else keywords(question), 1.0)
                    if made and made[0].strip():
                        out.append((made[0], window(sents, gold), made[1], kind))
                        break
    return out


def sample(rows: Sequence[tuple[str, str, float, str]], counts: dict[str, int], seed: int) -> list[Pair]:
    """A seeded draw of `counts[kind]` rows of each kind (all of a kind when it has fewer), shuffled, as pairs."""
    rng = random.Random(seed)
    by: dict[str, list[tuple[str, str, float, str]]] = {}
    for r in rows:
        by.setdefault(r[3], []).append(r)
    chosen = [r for kind, n in counts.items() for r in rng.sample(by.get(kind, []), min(n, len(by.get(kind, []))))]
    rng.shuffle(chosen)
    return [Pair(q, s, y, i) for i, (q, s, y, _) in enumerate(chosen)]


def kind_counts(rows: Sequence[tuple[str, str, float, str]]) -> dict[str, int]:
    """How many rows of each kind."""
    return dict(Counter(r[3] for r in rows))
