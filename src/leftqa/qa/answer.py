"""Extractive answers: pick the best 1-3 sentences from the retrieval's sentence evidence and cite them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from leftqa.index.store import Index
from leftqa.qa.features import as_question, descriptive_subject, missing_names, name_coverage, opens_with
from leftqa.qa.followup import names
from leftqa.qa.retrieve import Retrieval, SentenceEvidence
from leftqa.qa.scorer import SENTENCE_FEATURES, AnswerScorer
from leftqa.records import Citation, Hit, Passage
from leftqa.text import is_stopword, stems, with_context, words

# Sentence score = evidence ((cosine + coverage) / 2) + these weighted features. Chosen by grid search for
# answer@1 on the public SQuAD 2.0 benchmark (benchmarks/tune.py re-runs it), never on our own eval cases.
SENTENCE_WEIGHTS = {"bigram": 0.20, "type": 0.15, "passage": 0.20, "repeat": 0.30}
PASSAGES_FOR_ANSWER = 5
# Answer types a quoted answer must hold: a when / how-long / how-many / who / where question answered by sentences
# with no date / number / name is answered with something else. Titles are detected too loosely to require.
STRICT_TYPES = ("date", "duration", "number", "person", "place")
SUPPORT_MARGIN = 0.08
# A sentence quoted in the previous turn is pushed down this much in the learned ranking: a follow-up asks for
# something new (the ranker was trained on single questions, so the rule score's repeat penalty is not enough).
REPEAT_LOGIT = 2.0
# A next sentence opening with one of these continues the best sentence's subject ("Their style was …").
_CONTINUES = re.compile(r"^(It|Its|They|Their|Them|This|These|That|Those|He|His|She|Her|Such)\b")


@dataclass(frozen=True)
class Candidate:
    """One scored sentence of a retrieved passage."""

    rank: int  # rank of its passage in the retrieval (0-based)
    pos: int  # passage position in the index
    index_in_passage: int
    score: float
    cosine: float
    coverage: float
    type_ok: float
    matched: frozenset[str]
    bigram: float = 0.0
    passage: float = 0.0  # its passage's retrieval score, scaled to 0-1 across the passages answered from
    rule: float = 0.0  # the rule-based score (before any learned rerank)
    repeat: bool = False  # quoted in the previous turn
    ce: float = math.nan  # the cross-encoder's logit, when it scored this sentence


def score_sentences(
    index: Index, r: Retrieval, n_passages: int = PASSAGES_FOR_ANSWER, seen: frozenset[tuple[str, int]] = frozenset()
) -> list[Candidate]:
    """Score every sentence of the top passages for how well it answers the question, best first.

    `seen` holds (passage id, sentence index) pairs quoted in the previous turn: a follow-up asks for something new.
    """
    top = float(r.scores[0]) if len(r.scores) else 0.0
    bottom = float(r.scores[min(len(r.scores), n_passages) - 1]) if len(r.scores) else 0.0
    spread = top - bottom
    w = SENTENCE_WEIGHTS
    out: list[Candidate] = []
    for s in r.sentences:
        if s.rank >= n_passages:
            continue
        rel = (float(r.scores[s.rank]) - bottom) / spread if spread > 0 else 1.0
        text = index.passages[s.pos].sentences[s.index_in_passage].text
        if text.rstrip().endswith(":"):
            continue  # introduces a quotation lost from the source ("… she explains:"): it answers nothing
        repeat = 1.0 if (index.passages[s.pos].id, s.index_in_passage) in seen else 0.0
        score = s.evidence + w["bigram"] * s.bigram + w["type"] * s.type_ok + w["passage"] * rel - w["repeat"] * repeat
        out.append(Candidate(s.rank, s.pos, s.index_in_passage, score, s.cosine, s.coverage, s.type_ok, s.matched,
                             s.bigram, rel, score, bool(repeat)))  # fmt: skip
    out.sort(key=lambda c: (-c.score, c.rank, c.index_in_passage))
    return out


def sentence_features(head: list[Candidate], ce: np.ndarray) -> np.ndarray:
    """Rows of SENTENCE_FEATURES for the candidates the cross-encoder scored (`ce`, in the same order)."""
    ce_rank = np.empty(len(head))
    ce_rank[np.argsort(-ce, kind="stable")] = np.arange(len(head))
    rows = [
        [float(ce[i]), ce_rank[i], c.rule, float(i), c.passage, float(c.rank), c.cosine, c.coverage, c.type_ok, c.bigram]
        for i, c in enumerate(head)
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(head), len(SENTENCE_FEATURES))


def scored_text(index: Index, c: Candidate, context: bool = False) -> str:
    """What the cross-encoder reads for a candidate: its sentence, and with `context` the sentence before it in its
    passage when it points back (`text.with_context`)."""
    sentences = index.passages[c.pos].sentences
    text = sentences[c.index_in_passage].text
    return with_context(text, sentences[c.index_in_passage - 1].text if c.index_in_passage > 0 else "") if context else text


def rerank(index: Index, candidates: list[Candidate], question: str, scorer: AnswerScorer | None, subject_logit: float = 0.0) -> list[Candidate]:
    """The rules' best `scorer.info.candidates` sentences re-scored by the learned ranker (cross-encoder logit
    combined with the rule features; for a descriptive request, `subject_logit` more for a sentence about its
    subject); the others follow, in rule order. Without a scorer, unchanged."""
    if scorer is None or scorer.info.ranker is None or not candidates:
        return candidates
    head, tail = candidates[: scorer.info.candidates], candidates[scorer.info.candidates :]
    ce = scorer.logits(as_question(question), [scored_text(index, c, scorer.info.context) for c in head])
    z = scorer.info.ranker.logit(sentence_features(head, ce))
    scored = [replace(c, score=float(zi) - (REPEAT_LOGIT if c.repeat else 0.0), ce=float(ci)) for c, zi, ci in zip(head, z, ce)]
    # The bonus orders, it does not add confidence: the answerability reads the ranker's own score of the best.
    subject = descriptive_subject(question) if subject_logit else ""
    bonus = {id(c): subject_logit for c in scored if _about_subject(index, c, subject)} if subject else {}
    scored.sort(key=lambda c: (-(c.score + bonus.get(id(c), 0.0)), c.rank, c.index_in_passage))
    floor = scored[-1].score - 1.0
    return scored + [replace(c, score=floor - i * 1e-3) for i, c in enumerate(tail)]


def _about_subject(index: Index, c: Candidate, subject: str) -> bool:
    """Whether a descriptive request's subject is what the sentence is about: the sentence opens with it and its
    passage holds every word of it ("Who was Rosa Luxemburg?": "Rosa Luxemburg was …")."""
    wanted = _subject_stems(subject)
    return opens_with(subject, scored_text(index, c)) and bool(wanted) and wanted <= _passage_stems(index, c.pos)


def _subject_stems(subject: str) -> set[str]:
    """Stems of the content words of a descriptive request's subject."""
    return set(stems([w for w in words(subject) if not is_stopword(w)]))


def _passage_stems(index: Index, pos: int) -> set[str]:
    """Stems of a passage's words, with its title and section."""
    return set(stems(words(passage_context(index, pos))))


def select(candidates: list[Candidate], max_sentences: int = 3, index: Index | None = None, margin: float = SUPPORT_MARGIN) -> tuple[Candidate, ...]:
    """The best sentence, then up to two more: close in score and adding question terms or the answer type,
    or (given the index) the next sentence when it continues the best one's subject."""
    if not candidates:
        return ()
    best = candidates[0]
    chosen = [best]
    covered = set(best.matched)
    for c in candidates[1:]:
        if len(chosen) >= max_sentences or c.score < best.score - margin:
            break
        if (c.matched - covered) or (c.type_ok and not best.type_ok):
            chosen.append(c)
            covered |= c.matched
    if index is not None and len(chosen) < max_sentences:
        sentences = index.passages[best.pos].sentences
        nxt = best.index_in_passage + 1
        follow = next((c for c in candidates if c.pos == best.pos and c.index_in_passage == nxt), None)
        if follow is not None and follow not in chosen and _CONTINUES.match(sentences[nxt].text):
            chosen.append(follow)
    head, rest = chosen[0], sorted(chosen[1:], key=lambda c: (c.rank, c.index_in_passage))
    return (head, *rest)


def cite(index: Index, chosen: tuple[Candidate, ...], r: Retrieval) -> tuple[str, tuple[Citation, ...]]:
    """Answer text and citations: passages in order of first use (the best sentence's first), each passage's
    quoted sentences in reading order, adjacent ones quoted as one run, every run followed by its [n]."""
    scores = {int(p): float(s) for p, s in zip(r.positions, r.scores)}
    order = list(dict.fromkeys(c.pos for c in chosen))
    parts: list[str] = []
    citations = []
    for n, pos in enumerate(order, start=1):
        p: Passage = index.passages[pos]
        idx = sorted({c.index_in_passage for c in chosen if c.pos == pos})
        runs = _runs(p, idx)
        parts.extend(f"{text} [{n}]" for text in runs)
        sents = [p.sentences[i] for i in idx]
        citations.append(
            Citation(
                n=n,
                passage_id=p.id,
                doc_id=p.doc_id,
                title=p.title,
                section=p.section,
                start=sents[0].start,
                end=sents[-1].end,
                quote=" … ".join(runs),
                highlights=tuple((s.local_start, s.local_end) for s in sents),
                page=p.page,
                score=round(scores.get(pos, 0.0), 6),
                source=p.source,
            )
        )
    return " ".join(parts), tuple(citations)


def cited_first(hits: tuple[Hit, ...], citations: tuple[Citation, ...]) -> tuple[Hit, ...]:
    """The passages with the cited ones first, in citation order, ranks renumbered: the learned ranker may quote
    from a passage retrieval ranked lower, and the sources list should lead with what the answer quotes."""
    order = {c.passage_id: c.n for c in citations}
    ranked = sorted(hits, key=lambda h: (order.get(h.passage_id, len(order) + 1), h.rank))
    return tuple(replace(h, rank=i) for i, h in enumerate(ranked, start=1))


def _runs(p: Passage, idx: list[int]) -> list[str]:
    """Quoted text per run of adjacent sentences of one paragraph (verbatim from the passage)."""
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][-1] + 1 and p.text[p.sentences[i - 1].local_end : p.sentences[i].local_start] == " ":
            runs[-1].append(i)
        else:
            runs.append([i])
    return [p.text[p.sentences[run[0]].local_start : p.sentences[run[-1]].local_end] for run in runs]


def evidence(
    candidates: list[Candidate], r: Retrieval, chosen: tuple[Candidate, ...] = (), names_found: float = 1.0,
    window_names: float = 1.0,
) -> dict[str, float]:  # fmt: skip
    """Scores the abstention decision reads: best sentence cosine and coverage, top passage signals, whether the
    sentences that would be quoted (`chosen`) hold an answer of a strictly expected type, `names_found` (from
    `quoted_name_coverage`) and `window_names` (from `window_name_coverage`)."""
    if not candidates:
        return {"sentence": 0.0, "coverage": 0.0, "passage": 0.0, "passage_coverage": 0.0, "score": 0.0,
                "type_found": 0.0, "names_found": 0.0, "window_names": 0.0}
    top_matched: set[str] = set()
    for s in r.sentences:
        if s.rank < 3:
            top_matched |= s.matched
    return {
        "sentence": round(max(c.cosine for c in candidates), 6),
        "coverage": round(max(c.coverage for c in candidates), 6),
        "passage": round(float(r.dense[0]) if len(r.dense) else 0.0, 6),
        "passage_coverage": round(r.qterms.coverage(top_matched), 6),
        "score": round(candidates[0].score, 6),
        # Only what would be quoted counts: a date in some other top sentence does not answer "when".
        "type_found": 1.0 if r.answer_type not in STRICT_TYPES or any(c.type_ok for c in chosen or candidates[:1]) else 0.0,
        "names_found": round(names_found, 6),
        "window_names": round(window_names, 6),
        **_learned_evidence(candidates),
    }


def _learned_evidence(candidates: list[Candidate]) -> dict[str, float]:
    """The cross-encoder's best logit, its margin over the second, and the best combined score (when scored)."""
    ce = sorted((c.ce for c in candidates if not math.isnan(c.ce)), reverse=True)
    if not ce:
        return {}
    return {
        "ce_best": round(ce[0], 6),
        "ce_margin": round(ce[0] - ce[1], 6) if len(ce) > 1 else 0.0,
        "combined_best": round(candidates[0].score, 6),
    }


DATE_OR_NUMBER = ("date", "duration", "number")
# A capitalised run of two words or more opening a sentence (past an article): who or what the sentence is about.
_OPENING_NAME = re.compile(r"^(?:The\s+|A\s+|An\s+)?([A-Z][\w'’-]+(?:\s+(?:of\s+|de\s+|von\s+)?[A-Z][\w'’-]+)+)")


def type_gate(r: Retrieval, chosen: tuple[Candidate, ...]) -> float:
    """0.0 when a when / how-many / how-long question's answer (the quote's first sentence) holds no date or number
    the question lacks, else 1.0: a date in a support sentence is another fact's ("… until her death in 1940")."""
    if r.answer_type not in DATE_OR_NUMBER or not chosen:
        return 1.0
    return 1.0 if chosen[0].type_ok else 0.0


def quotes_subject(index: Index, chosen: tuple[Candidate, ...], subject: str) -> float:
    """0.0 when `subject` is a name of two content words or more and the quote's first sentence opens with another
    such name and (read with the one before when it points back) mentions no word of `subject`; else 1.0."""
    wanted = _subject_stems(subject)
    if len(wanted) < 2 or not chosen:
        return 1.0
    m = _OPENING_NAME.match(scored_text(index, chosen[0]))
    if m is None or wanted & _subject_stems(m.group(1)):
        return 1.0
    # The first sentence is the answer; later ones are support and may name the subject in passing.
    return 0.0 if not wanted & set(stems(words(scored_text(index, chosen[0], context=True)))) else 1.0


def describes(index: Index, chosen: tuple[Candidate, ...], question: str) -> float:
    """1.0 when the question asks what something is ("Who was Bukharin?", "Tell me about the POUM") and the quoted
    sentences are about it: every content word of the subject is in their passage and one is in the quote.
    Whatever the corpus says about a subject it names answers such a request; the answer scorer, trained on
    factual questions, underrates them."""
    subject = descriptive_subject(question)
    if not subject or not chosen:
        return 0.0
    wanted = _subject_stems(subject)
    quoted = set(stems(words(" ".join(scored_text(index, c) for c in chosen))))
    return 1.0 if wanted and wanted <= _passage_stems(index, chosen[0].pos) and wanted & quoted else 0.0


def window(index: Index, c: Candidate) -> str:
    """A candidate sentence with the sentence before and after it in its passage (what the answer verifier reads)."""
    sentences = index.passages[c.pos].sentences
    i = c.index_in_passage
    return " ".join(s.text for s in sentences[max(0, i - 1) : i + 2])


def passage_context(index: Index, pos: int) -> str:
    """A passage's text with its title and section: what "the passage mentions" is checked against."""
    p = index.passages[pos]
    return f"{p.title} {p.section} {p.text}"


def share_present(question: str, absent: list[str]) -> float:
    """Share of the question's names that are not in `absent` (1.0 when it names nothing)."""
    asked = [n for n in names(question) if n != "I"]
    return round(1.0 - len(absent) / len(asked), 6) if asked else 1.0


def names_in_quote(index: Index, chosen: tuple[Candidate, ...], question: str) -> float:
    """Share of the question's names that the quoted sentences mention, each read with the sentence before it when
    it points back ("She …"), and with its passage's title and section (1.0 when the question names nothing)."""
    asked = [n for n in names(question) if n != "I"]
    if not asked or not chosen:
        return 1.0 if not asked else 0.0
    p = index.passages[chosen[0].pos]
    text = " ".join([p.title, p.section, *(scored_text(index, c, context=True) for c in chosen)])
    missing = set(missing_names(question, text))
    return round(1.0 - sum(n in missing for n in asked) / len(asked), 6)


def quoted_name_coverage(index: Index, chosen: tuple[Candidate, ...], question: str) -> float:
    """Share of the question's names that the best quoted sentence's passage (with its title and section) mentions."""
    if not chosen:
        return 0.0
    return name_coverage(question, passage_context(index, chosen[0].pos))


def window_name_coverage(index: Index, chosen: tuple[Candidate, ...], question: str) -> float:
    """Share of the question's names that the best quoted sentence, the sentences beside it and its document's title
    mention: a passage may name Luxemburg while the quote beside it is about Goldman."""
    if not chosen:
        return 0.0
    return name_coverage(question, f"{index.passages[chosen[0].pos].title} {window(index, chosen[0])}")


__all__ = ["Candidate", "SentenceEvidence", "cite", "evidence", "rerank", "score_sentences", "select"]
