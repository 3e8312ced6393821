"""One frozen Settings object, passed explicitly; `Settings.from_env` is the only reader of the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

from leftqa.errors import ConfigError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
MODES = ("hybrid", "bm25", "dense")
FOLLOWUP_READERS = ("query", "questions")


@dataclass(frozen=True)
class Settings:
    """Everything that configures leftqa; build with `from_env` or `Settings(...)` in tests."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str = BUNDLED_MODEL
    # Passages of roughly 40-150 words: one paragraph each where possible (see chunking.py).
    min_words: int = 40
    max_words: int = 150
    mode: str = "hybrid"
    top_k: int = 10
    max_answer_sentences: int = 3
    max_question_chars: int = 2000
    batch_size: int = 32
    # Threads for the embedder and faiss on the query path; 0 leaves the libraries' defaults. One thread:
    # a single query is too small to split, and on 2 shared cores a second thread mostly waits (FAISS single
    # queries measured 2.5-7x slower with 2 OpenMP threads; see docs/scaling.md). Builds still use every core.
    threads: int = 1
    # Eval case files (tuning and the locked test split) and the regression baseline of `leftqa eval --check`.
    evals_dir: Path = Path("evals")
    # SQuAD 2.0 (train file and dev articles) for `leftqa train-scorer` and the SQuAD benchmarks: beside the repo.
    squad_dir: Path = Path("../shared/data/squad2")
    feedback_path: Path = Path("evals/feedback.jsonl")
    # The abstention calibration `leftqa calibrate` writes: None means the one beside the answer scorer it calibrates
    # (`qa/policy.py`), found the same way from any folder; a path here is read instead, and must match the scorer.
    calibration_path: Path | None = None
    # The learned answer scorer: "bundled" (shipped in the package), a scorer folder, or "none" (rules only).
    scorer: str = "bundled"
    # ONNX Runtime threads of the answer scorer: unlike a single FAISS or embedder query, its batch of candidate
    # sentences is large enough to split across two cores (warm ask p50 57 -> 37 ms, benchmarks/scorer_tradeoff.py).
    scorer_threads: int = 2
    # With the learned scorer, a further sentence is quoted only when its logit is within this much of the best
    # one's: larger quotes more context (and more often the answer) at the cost of longer answers. 3.0 is the
    # largest value averaging <= 1.5 sentences per answer on held-out SQuAD train articles
    # (benchmarks/support_logit.py; 1.0 before: answer@1 0.816 at 1.20 sentences, 3.0: 0.850 at 1.43).
    support_logit: float = 3.0
    # What the answer scorer reads as a follow-up's question (one that leans on the conversation): "questions", the
    # previous question followed by this one, closer to the questions it was trained on, or "query", the question
    # with the conversation's context terms in brackets, as retrieval searches it (before 2026-12-07). Fresh
    # follow-ups answered 16 -> 19 of 22 (README, Evaluation).
    followup_reader: str = "questions"
    # Refuse a question that names someone by a full name (two words or more) no word of which occurs anywhere in
    # the corpus (matched loosely: stem, prefix, one typo): a quote would be about someone else (`qa/features.py`
    # Vocabulary). Tuning split: 4 more of 79 unanswerable refused, 1 of 174 answerable; SQuAD dev unchanged.
    refuse_absent_names: bool = True
    # Rewrite a follow-up as one question about what the user asked before ("Who was Rosa Luxemburg?" + "When did
    # she die?" -> "When did Rosa Luxemburg die?"), the subject matched against the corpus's names (`qa/followup.py`),
    # instead of adding context terms from the conversation, answers included.
    followup_subject: bool = False
    # Refuse when the quoted sentences (with the sentence before one that points back, and the passage's title) do
    # not mention everyone the question names: a sentence about someone else does not answer it.
    quote_names: bool = False
    # Refuse a when / how-many / how-long question whose answer sentence (the quote's first) holds no date or number
    # the question lacks. Off: on the tuning split it refused 11 more of 102 unanswerable but 2 more of 259
    # answerable, over its rule's 1 (docs/experiments.md, E).
    type_gate: bool = False
    # Refuse when the question (or, for a follow-up, the user's earlier question) asks about a corpus name of two
    # words or more and the answer sentence opens with another such name and never mentions the asked one ("When
    # did she die?" after "Who was Rosa Luxemburg?" answered with "Emma Goldman remained critical … until her
    # death"). Off: it met its rule on the tuning split (2 more of 102 unanswerable refused, 1 more of 259
    # answerable) and SQuAD dev (answer@1 0.877 -> 0.875), but not on questions nobody tuned for: the locked test
    # split lost 2 answers for 1 refusal, the blind set one answer (docs/experiments.md, F).
    subject_gate: bool = False
    # With an answer scorer that carries a verifier (scorer.json "verifier"): refuse when the verifier, reading the
    # question against the first quoted sentence with its neighbours, gives P(it answers) under its floor.
    verifier: bool = True
    # A follow-up is searched with context terms from the previous query and two names from its answer; off, from
    # the user's questions only, without pronouns or repeats ("(Rosa Luxemburg, criticize)", not "(Rosa Luxemburg,
    # Bolsheviks, October Revolution, she, criticize, Luxemburg)").
    context_from_answers: bool = True
    # Added to the learned ranking of a sentence whose subject is what a descriptive request asks about ("Who was
    # X?": "X was …", not "Like X, Y was …"); it orders, it adds no confidence; 0 turns it off. Tuning descriptive
    # answer@1 15 -> 16 of 17 at 0.5, 1.0 and 2.0 (2.0 refused one unanswerable fewer); SQuAD dev 0.877 -> 0.876.
    subject_logit: float = 1.0
    # USER:PASSWORD the chat server asks for (`leftqa serve --auth`, LEFTQA_AUTH); required beyond 127.0.0.1.
    auth: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown retrieval mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if not 1 <= self.min_words <= self.max_words:
            raise ConfigError(f"chunk sizes must satisfy 1 <= min_words <= max_words (got {self.min_words}, {self.max_words})")
        if not 1 <= self.top_k <= 1000:
            raise ConfigError(f"top_k must be between 1 and 1000 (got {self.top_k})")
        if not 1 <= self.max_answer_sentences <= 10:
            raise ConfigError("max_answer_sentences must be between 1 and 10")
        # Unchecked, these failed deep inside the embedder or rejected every question.
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1 (got {self.batch_size})")
        if self.max_question_chars < 1:
            raise ConfigError(f"max_question_chars must be at least 1 (got {self.max_question_chars})")
        if self.threads < 0:
            raise ConfigError(f"threads must be 0 (library default) or more (got {self.threads})")
        if self.scorer_threads < 0:
            raise ConfigError(f"scorer_threads must be 0 (library default) or more (got {self.scorer_threads})")
        if self.followup_reader not in FOLLOWUP_READERS:
            raise ConfigError(f"unknown followup_reader {self.followup_reader!r}; choose one of {', '.join(FOLLOWUP_READERS)}")
        if not 0.0 <= self.subject_logit <= 20.0:
            raise ConfigError(f"subject_logit must be between 0 and 20 (got {self.subject_logit})")
        if not 0.0 <= self.support_logit <= 20.0:
            raise ConfigError(f"support_logit must be between 0 and 20 (got {self.support_logit})")
        if self.auth and self.credentials() is None:
            raise ConfigError("auth must be USER:PASSWORD, both non-empty (from --auth or LEFTQA_AUTH)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Settings from LEFTQA_* environment variables, then explicit overrides (None values are ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get("LEFTQA_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("corpus_dir", "index_dir", "evals_dir", "squad_dir", "feedback_path", "calibration_path"):
            if key in values:
                values[key] = Path(values[key])  # type: ignore[arg-type]
        try:
            return cls(**values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    def with_(self, **changes: object) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) from `auth`, or None when it is empty or malformed."""
        user, sep, password = self.auth.partition(":")
        return (user, password) if sep and user and password else None

    @property
    def baseline_path(self) -> Path:
        """The regression baseline `leftqa eval --check` compares with."""
        return self.evals_dir / "baseline.json"

    def chunking(self) -> dict[str, int]:
        """The settings that shape passages, as recorded in the index manifest."""
        return {"min_words": self.min_words, "max_words": self.max_words}


def _coerce(name: str, raw: str, type_name: object) -> object:
    text = str(type_name)
    if "bool" in text:
        if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ConfigError(f"LEFTQA_{name.upper()} must be true or false, got {raw!r}")
        return raw.lower() in ("1", "true", "yes", "on")
    if "float" in text:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"LEFTQA_{name.upper()} must be a number, got {raw!r}") from None
    if "int" in text:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"LEFTQA_{name.upper()} must be a whole number, got {raw!r}") from None
    if "Path" in text:
        return Path(raw)
    return raw
