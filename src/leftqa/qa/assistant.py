"""The Assistant: one object that answers questions (with conversation history) for the CLI, UI and evals."""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any, Sequence

from leftqa.config import BUNDLED_MODEL, Settings
from leftqa.errors import QuestionError
from leftqa.index.embed import Embedder, load_embedder, split_backend
from leftqa.index.store import Index
from leftqa.qa import answer as ans
from leftqa.qa.features import as_question
from leftqa.qa.followup import build_query, context_terms, needs_context
from leftqa.qa.retrieve import Retriever
from leftqa.qa.scorer import ANSWERABILITY_FEATURES, BUNDLED_SCORER, AnswerScorer, Linear, read_info
from leftqa.records import Answer, Hit

# Used when no calibration file exists (see `leftqa calibrate`).
DEFAULT_CALIBRATION: dict[str, Any] = {
    "weights": {"sentence": 1.0, "passage_coverage": 0.6},
    "threshold": 0.75,
    "sentence_floor": 0.25,
    "source": "default",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
NOT_COVERED = "The corpus does not seem to cover this question, so I won't quote anything as an answer."


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


@dataclass(frozen=True)
class Resolved:
    """How a question is searched: the shown query, the conversation context apart, and what was just quoted."""

    query: str
    context: str
    seen: frozenset[tuple[str, int]]
    reader: str = ""  # what the answer scorer reads as the question, when not `query` (Settings.followup_reader)


class Assistant:
    """Answers questions from one loaded index; thread-safe (the index is read-only)."""

    def __init__(
        self, settings: Settings, index: Index, embedder: Embedder, calibration: dict[str, Any] | None = None,
        scorer: AnswerScorer | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.scorer = scorer
        self.retriever = Retriever(index, embedder)
        self.calibration = dict(calibration or default_calibration(scorer))
        self._turns: OrderedDict[tuple[str, ...], Turn] = OrderedDict()
        self._lock = Lock()

    @classmethod
    def load(cls, settings: Settings, check_corpus: bool = True) -> "Assistant":
        """Load the index and model named by settings, refusing an index built for another model or chunking.

        A corpus changed since the build is no reason to refuse: the passages are still valid quotes (the CLI and UI
        warn with `index.builder.stale_warning`). `check_corpus` is kept for callers; it no longer refuses."""
        index = _load_index(settings, check_corpus)
        embedder = load_embedder(settings.model, settings.threads)
        if settings.threads > 0:
            import faiss

            faiss.omp_set_num_threads(settings.threads)
        scorer = load_scorer(settings)
        return cls(settings, index, embedder, load_calibration(Path(settings.calibration_path), settings.model, scorer), scorer)

    def reload(self) -> str:
        """Load the index again from disk (after a rebuild), keeping the loaded model; requests in flight finish
        on the old index."""
        index = _load_index(self.settings, check_corpus=True)
        retriever = Retriever(index, self.embedder)
        calibration = load_calibration(Path(self.settings.calibration_path), self.settings.model, self.scorer)
        with self._lock:
            self.index, self.retriever, self.calibration = index, retriever, calibration
            self._turns.clear()
        return f"{self.index.size} passages from {len(self.index.manifest.get('documents', []))} documents"

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
        context = context_terms(prev.query, list(prev.sentences))
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
        r = retriever.retrieve(resolved.query, mode, self.settings.top_k, question=last, context=resolved.context)
        _, chosen = self._choose(retriever, r, resolved)
        passages = retriever.index.passages
        turn = Turn(
            resolved.query,
            tuple(passages[c.pos].sentences[c.index_in_passage].text for c in chosen),
            frozenset((passages[c.pos].id, c.index_in_passage) for c in chosen),
        )
        with self._lock:
            self._turns[key] = turn
            while len(self._turns) > 512:
                self._turns.popitem(last=False)
        return turn

    def _choose(self, retriever: Retriever, r: Any, resolved: "Resolved") -> tuple[list[ans.Candidate], tuple[ans.Candidate, ...]]:
        """Every scored candidate sentence (best first) and the ones to quote."""
        candidates = ans.score_sentences(retriever.index, r, seen=resolved.seen)
        if self.scorer is None:
            return candidates, ans.select(candidates, self.settings.max_answer_sentences, retriever.index)
        candidates = ans.rerank(retriever.index, candidates, resolved.reader or resolved.query, self.scorer)
        return candidates, ans.select(candidates, self.settings.max_answer_sentences, retriever.index, self.settings.support_logit)

    def ask(self, question: str, history: Sequence[str] = (), mode: str | None = None) -> Answer:
        """Answer a question extractively, with citations, or abstain when the corpus does not cover it."""
        t0 = time.perf_counter()
        mode = mode or self.settings.mode
        q = clean_question(question, self.settings.max_question_chars)
        hist = tuple(h for h in (" ".join(_CONTROL.sub(" ", str(h)).split()) for h in history) if h)
        resolved = self._resolve(q, hist, mode)
        retriever, calibration = self.retriever, self.calibration  # one consistent snapshot across a reload
        k = max(self.settings.top_k, ans.PASSAGES_FOR_ANSWER)
        r = retriever.retrieve(resolved.query, mode, k, question=q, context=resolved.context)
        candidates, chosen = self._choose(retriever, r, resolved)
        evidence = ans.evidence(candidates, r, chosen, ans.quoted_name_coverage(retriever.index, chosen, q))
        hits = tuple(retriever.hits(r)[: self.settings.top_k])
        if self.scorer is not None and self.scorer.info.answerability is not None:
            conf = ans.answerability(evidence, calibration.get("answerability_model") or self.scorer.info.answerability)
            evidence = {**evidence, "answerable": conf, "describes": ans.describes(retriever.index, chosen, q)}
            unrelated = evidence.get("sentence", 0.0) < float(calibration.get("sentence_floor", 0.0))
            abstain = not candidates or unrelated or (conf < float(calibration["threshold"]) and not evidence["describes"])
            closest = ans.passage_context(retriever.index, chosen[0].pos) if chosen else ""
            reason = ans.learned_reason(evidence, q, closest) if abstain else ""
        else:
            conf = ans.confidence(evidence, calibration["weights"])
            abstain = not candidates or ans.abstains(
                evidence, conf, float(calibration["threshold"]), float(calibration.get("sentence_floor", 0.0))
            )
            reason = (ans.forced_reason(evidence) or "low evidence") if abstain else ""
        if abstain:
            text, citations = NOT_COVERED, ()
        else:
            text, citations = ans.cite(retriever.index, chosen, r)
            if self.scorer is not None:
                hits = ans.cited_first(hits, citations)
        return Answer(
            question=q,
            query=resolved.query,
            abstained=abstain,
            answer=text,
            citations=citations,
            passages=hits,
            mode=mode,
            reason=reason,
            confidence=round(conf, 6),
            evidence=evidence,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
        )


def _load_index(settings: Settings, check_corpus: bool) -> Index:
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
    if scorer is None:
        return "rules"
    return f"{scorer.info.version}:{scorer.info.files.get('model.onnx', '')[:16]}"


def default_calibration(scorer: AnswerScorer | None) -> dict[str, Any]:
    """The uncalibrated defaults: the rules' weights, or an even-odds answerability threshold."""
    if scorer is None:
        return dict(DEFAULT_CALIBRATION)
    return {"weights": {}, "threshold": 0.5, "source": "default", "scorer": scorer_id(scorer)}


def load_calibration(path: Path, model: str, scorer: AnswerScorer | None = None) -> dict[str, Any]:
    """The abstention threshold (and rule weights) saved by `leftqa calibrate` for this model and scorer, else
    the defaults."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return default_calibration(scorer)
    if (
        isinstance(data, dict)
        and isinstance(data.get("weights"), dict)
        and isinstance(data.get("threshold"), (int, float))
        and data.get("model", model) == model  # thresholds of one model mean nothing for another
        and data.get("scorer", "rules") == scorer_id(scorer)  # nor those of one scorer for another
    ):
        refit = _refit_answerability(data.get("answerability"), scorer)
        if data.get("answerability") is not None and refit is None:
            return default_calibration(scorer)  # its threshold was chosen for a model we cannot read
        return {**data, "answerability_model": refit} if refit is not None else data
    return default_calibration(scorer)


def _refit_answerability(raw: Any, scorer: AnswerScorer | None) -> Linear | None:
    """The answerability model `leftqa calibrate` refitted on the tuning split, when it is well formed and reads
    only evidence the scorer provides; else None."""
    if raw is None or scorer is None or scorer.info.answerability is None:
        return None
    try:
        model = Linear.from_dict(raw)
    except (KeyError, TypeError, ValueError):
        return None
    return model if set(model.features) <= set(ANSWERABILITY_FEATURES) else None
