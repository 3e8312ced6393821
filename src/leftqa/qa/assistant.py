"""The Assistant: one object that answers questions (with conversation history) for the CLI, UI and evals."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Sequence

from leftqa.config import BUNDLED_MODEL, Settings
from leftqa.errors import QuestionError
from leftqa.index.embed import Embedder, load_embedder, split_backend
from leftqa.index.store import Index
from leftqa.qa import answer as ans
from leftqa.qa.features import as_question
from leftqa.qa.followup import Subject, build_query, context_terms, needs_context, rewrite, subject_of
from leftqa.qa.policy import NOT_COVERED, RULES, AbstentionPolicy, load_policy
from leftqa.qa.retrieve import Retrieval, Retriever
from leftqa.qa.scorer import BUNDLED_SCORER, AnswerScorer, read_info
from leftqa.records import Answer, Hit

SUBJECT_PASSAGES = 3  # retrieved passages whose names a question's subject is matched against
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_question(text: object, limit: int) -> str:
    """The question with control characters removed and whitespace collapsed; QuestionError if unusable."""
    if not isinstance(text, str):
        raise QuestionError("the question must be text")
    cleaned = " ".join(_CONTROL.sub(" ", text).split())
    if not cleaned:
        raise QuestionError("the question is empty; type a question about the corpus")
    if len(cleaned) > limit:
        raise QuestionError(f"the question is too long ({len(cleaned):,} characters; the limit is {limit:,})")
    return cleaned


@dataclass(frozen=True)
class Turn:
    """A resolved conversation turn: the effective query and the sentences that answered it."""

    query: str
    sentences: tuple[str, ...]
    quoted: frozenset[tuple[str, int]]  # (passage id, sentence index) of each quoted sentence
    subject: Subject | None = None  # what the user asked about, by the corpus's name (Settings.followup_subject)


@dataclass(frozen=True)
class Resolved:
    """How a question is searched: the shown query, the conversation context apart, and what was just quoted."""

    query: str
    context: str
    seen: frozenset[tuple[str, int]]
    reader: str = ""  # what the answer scorer reads as the question, when not `query` (Settings.followup_reader)
    asked: str = ""  # the question judged (names, answer type), when not the one typed: a follow-up rewritten whole
    subject: Subject | None = None  # the conversation's subject it was rewritten with


class Assistant:
    """Answers questions from one loaded index; thread-safe (the index is read-only)."""

    def __init__(
        self, settings: Settings, index: Index, embedder: Embedder, policy: AbstentionPolicy | None = None,
        scorer: AnswerScorer | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.scorer = scorer
        self.retriever = Retriever(index, embedder)
        self.policy = policy or load_policy_for(settings, scorer)
        self._turns: OrderedDict[tuple[str, ...], Turn] = OrderedDict()
        self._lock = Lock()

    @classmethod
    def load(cls, settings: Settings) -> "Assistant":
        """Load the index and model named by settings, refusing an index built for another model or chunking.

        A corpus changed since the build is no reason to refuse: the passages are still valid quotes (the CLI and UI
        warn with `index.builder.stale_warning`)."""
        from concurrent.futures import ThreadPoolExecutor

        # The models load in a second thread while the index loads: at 10M passages FAISS spends about a second
        # checking the graphs it reads (outside the GIL), and the embedder and scorer take ~0.4 s of a cold start.
        pool = ThreadPoolExecutor(1, thread_name_prefix="leftqa-models")
        try:
            models = pool.submit(_load_models, settings)
            index = _load_index(settings)
            embedder, scorer = models.result()
        finally:
            pool.shutdown(wait=False)  # an index error is reported without waiting for the models
        if settings.threads > 0:
            import faiss

            faiss.omp_set_num_threads(settings.threads)
        return cls(settings, index, embedder, load_policy_for(settings, scorer), scorer)

    def with_policy(self, policy: AbstentionPolicy) -> "Assistant":
        """The same index, models and settings deciding with another policy (calibration and measurements)."""
        return Assistant(self.settings, self.index, self.embedder, policy, self.scorer)

    def reload(self) -> str:
        """Load the index again from disk (after a rebuild), keeping the loaded models and policy; requests in flight
        finish on the old index."""
        index = _load_index(self.settings)
        retriever = Retriever(index, self.embedder)
        with self._lock:
            self.index, self.retriever = index, retriever
            self._turns.clear()
        return f"{self.index.size} passages from {len(self.index.manifest.documents)} documents"

    def search(self, question: str, mode: str | None = None, k: int | None = None) -> list[Hit]:
        """Ranked passages for a question."""
        q = clean_question(question, self.settings.max_question_chars)
        return self.retriever.search(q, mode or self.settings.mode, k or self.settings.top_k)

    def _resolve(self, question: str, history: tuple[str, ...], mode: str) -> "Resolved":
        """The effective query for `question` after `history` (earlier user questions, oldest first)."""
        if not history:
            return Resolved(question, "", frozenset())
        prev = self._turn(history, mode)
        if not needs_context(question):
            return Resolved(question, "", prev.quoted)
        if self.settings.followup_subject and prev.subject is not None:
            # One question that stands alone, about what the user asked before ("When did Rosa Luxemburg die?"):
            # searched, shown, read by the scorer and judged as such.
            previous = as_question(prev.query)
            standalone = rewrite(question, prev.subject, previous)
            # Searched with the previous question's own terms as context (not its answer's), read after it.
            context = ", ".join(context_terms(prev.query, []))
            reader = standalone if standalone.startswith(previous) else f"{previous} {standalone}"
            return Resolved(standalone, context, prev.quoted, reader, standalone, prev.subject)
        context = context_terms(prev.query, list(prev.sentences), questions_only=not self.settings.context_from_answers)
        # Each turn as the question it asks: a request left as typed ("Tell me about X") would take the follow-up into
        # its subject when the scorer turns it into a question.
        reader = ""
        if self.settings.followup_reader == "questions":
            reader = f"{as_question(clean_question(history[-1], self.settings.max_question_chars))} {as_question(question)}"
        return Resolved(build_query(question, context), ", ".join(context), prev.quoted, reader)

    def _turn(self, history: tuple[str, ...], mode: str) -> Turn:
        """The last history turn resolved and answered (cached: a conversation re-asks its past each turn)."""
        key = (mode, *history)
        with self._lock:
            cached = self._turns.get(key)
        if cached is not None:
            return cached
        last = clean_question(history[-1], self.settings.max_question_chars)
        resolved = self._resolve(last, history[:-1], mode)
        retriever = self.retriever
        r = retriever.retrieve(resolved.query, mode, self.settings.top_k, question=resolved.asked or last, context=resolved.context)
        _, chosen = self._choose(retriever, r, resolved)
        passages = retriever.index.passages
        subject = None
        if self.settings.followup_subject:  # the user's words matched to the names of what they retrieved
            found = subject_of(resolved.asked or last, [passages[int(p)].text for p in r.positions[:SUBJECT_PASSAGES]])
            subject = found or resolved.subject
        turn = Turn(
            resolved.query,
            tuple(passages[c.pos].sentences[c.index_in_passage].text for c in chosen),
            frozenset((passages[c.pos].id, c.index_in_passage) for c in chosen),
            subject,
        )
        with self._lock:
            self._turns[key] = turn
            while len(self._turns) > 512:
                self._turns.popitem(last=False)
        return turn

    def _choose(self, retriever: Retriever, r: Retrieval, resolved: "Resolved") -> tuple[list[ans.Candidate], tuple[ans.Candidate, ...]]:
        """Every scored candidate sentence (best first) and the ones to quote."""
        candidates = ans.score_sentences(retriever.index, r, seen=resolved.seen)
        if self.scorer is None:
            return candidates, ans.select(candidates, self.settings.max_answer_sentences, retriever.index)
        candidates = ans.rerank(retriever.index, candidates, resolved.reader or resolved.query, self.scorer, self.settings.subject_logit)
        return candidates, ans.select(candidates, self.settings.max_answer_sentences, retriever.index, self.settings.support_logit)

    def _subject_quoted(self, retriever: Retriever, r: Retrieval, chosen: tuple[ans.Candidate, ...], asked: str, history: tuple[str, ...]) -> float:
        """`answer.quotes_subject` for the name the question asks about, or for a follow-up the latest earlier question
        that names one (the user's words, matched against the names of the passages retrieved)."""
        texts = [retriever.index.passages[int(p)].text for p in r.positions[:SUBJECT_PASSAGES]]
        for text in (asked, *reversed(history)):
            found = subject_of(text, texts)
            if found is not None:
                return ans.quotes_subject(retriever.index, chosen, found.name)
        return 1.0

    def ask(self, question: str, history: Sequence[str] = (), mode: str | None = None) -> Answer:
        """Answer a question extractively, with citations, or abstain when the corpus does not cover it."""
        t0 = time.perf_counter()
        mode = mode or self.settings.mode
        q = clean_question(question, self.settings.max_question_chars)
        hist = tuple(h for h in (" ".join(_CONTROL.sub(" ", str(h)).split()) for h in history) if h)
        resolved = self._resolve(q, hist, mode)
        retriever, policy = self.retriever, self.policy  # one consistent snapshot across a reload
        k = max(self.settings.top_k, ans.PASSAGES_FOR_ANSWER)
        asked = resolved.asked or q
        r = retriever.retrieve(resolved.query, mode, k, question=asked, context=resolved.context)
        candidates, chosen = self._choose(retriever, r, resolved)
        index = retriever.index
        # Only a scorer whose answerability reads it pays for the window's name check on every ask.
        reads_window = self.scorer is not None and self.scorer.info.answerability is not None and "window_names" in self.scorer.info.answerability.features
        window_names = ans.window_name_coverage(index, chosen, asked) if reads_window else 1.0
        evidence = ans.evidence(candidates, r, chosen, ans.quoted_name_coverage(index, chosen, asked), window_names)
        if self.settings.quote_names:
            evidence["names_in_quote"] = ans.names_in_quote(retriever.index, chosen, asked)
        if self.settings.type_gate:
            evidence["type_gate"] = ans.type_gate(r, chosen)
        scorer = self.scorer
        verifier = scorer.info.verifier if scorer is not None and scorer.has_verifier else None
        if self.settings.verifier and scorer is not None and verifier is not None and chosen:
            p = scorer.verified(resolved.reader or resolved.query, ans.window(retriever.index, chosen[0]))
            evidence["verifier"] = round(p, 6)
            evidence["verified"] = float(p >= verifier.floor)
        if self.settings.subject_gate:
            evidence["subject_quoted"] = self._subject_quoted(retriever, r, chosen, asked, hist if needs_context(q) else ())
        absent = retriever.vocabulary.absent_names(asked) if self.settings.refuse_absent_names else []
        if self.settings.refuse_absent_names:
            evidence["names_in_corpus"] = ans.share_present(asked, absent)
        hits = tuple(retriever.hits(r)[: self.settings.top_k])
        if policy.learned:
            evidence = {**evidence, "answerable": policy.confidence(evidence), "describes": ans.describes(retriever.index, chosen, asked)}
        closest = ans.passage_context(retriever.index, chosen[0].pos) if chosen and policy.learned else ""
        decision = policy.decide(evidence, bool(candidates), asked, closest, absent)
        if decision.abstain:
            text, citations = NOT_COVERED, ()
        else:
            text, citations = ans.cite(retriever.index, chosen, r)
            if self.scorer is not None:
                hits = ans.cited_first(hits, citations)
        return Answer(
            question=q,
            query=resolved.query,
            abstained=decision.abstain,
            answer=text,
            citations=citations,
            passages=hits,
            mode=mode,
            reason=decision.reason,
            confidence=round(decision.confidence, 6),
            evidence=evidence,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
        )


def _load_models(settings: Settings) -> tuple[Embedder, AnswerScorer | None]:
    """The embedder and answer scorer the settings name."""
    return load_embedder(settings.model, settings.threads), load_scorer(settings)


def _load_index(settings: Settings) -> Index:
    """The index named by settings, checked against the configured model and chunking (a stale corpus is fine)."""
    index = Index.load(Path(settings.index_dir))
    index.check_compatible(settings.model, settings.chunking(), None)
    return index


def load_scorer(settings: Settings) -> AnswerScorer | None:
    """The answer scorer the settings name ("bundled", a folder, or "none"); None also when it was fitted on
    another embedding model's features (its weights read cosines of that model), so the rules answer."""
    if settings.scorer == "none":
        return None
    folder = BUNDLED_SCORER if settings.scorer == "bundled" else Path(settings.scorer)
    fitted_on = read_info(folder).extra.get("embedding_model", BUNDLED_MODEL)
    if split_backend(fitted_on)[1] != split_backend(settings.model)[1]:
        return None
    return AnswerScorer.load(folder, threads=settings.scorer_threads)


def scorer_id(scorer: AnswerScorer | None) -> str:
    """What a calibration was made with: the scorer's version and model checksum, or "rules"."""
    return RULES if scorer is None else scorer.info.id


def load_policy_for(settings: Settings, scorer: AnswerScorer | None) -> AbstentionPolicy:
    """The abstention policy for these settings and scorer: the calibration beside the scorer (or the one
    `Settings.calibration_path` names), the same from whatever folder leftqa runs in."""
    answerability = scorer.info.answerability if scorer is not None else None
    return load_policy(settings.calibration_path, scorer.folder if scorer is not None else None, scorer_id(scorer), settings.model, answerability)
