"""Eval cases and results: the case file format, its loader and checks, and the records a run produces."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from leftqa.errors import EvalError
from leftqa.records import Passage
from leftqa.text import normalise

EVALS_DIR = Path("evals")
K = 10  # retrieval metrics look at the top 10 passages
HITS = (1, 3, 5, 10)
GROUPS = ("overall", "single", "followup", "unanswerable")
CASE_KEYS = ("id", "question", "expected", "answer", "history", "answerable", "style")
# Cases are split by file: evals/tuning.jsonl is what rules, grid searches and `leftqa calibrate` may read;
# evals/test.jsonl is locked (only the report reads it). Any other case file is a split named after it.
TUNING, TEST = "tuning", "test"
# How a case is asked (its "style"); the report gives false abstention and refusal per style. The first row is the
# original set's; the second the styles people type (2026-12-07): keyword queries, sloppy typing, pronoun and
# ellipsis follow-ups, and the unanswerable kinds a near-miss answer hides in (a false premise, a person the
# corpus never mentions asked like one it does).
STYLES = ("paraphrase", "alias", "descriptive", "why-how", "yes-no", "list", "followup", "near-topic", "off-topic",
          "keyword", "sloppy", "followup-pronoun", "followup-ellipsis", "false-premise", "wrong-subject")  # fmt: skip
SHOWN_PASSAGES = 3  # retrieved passages kept per case for the failure report


@dataclass(frozen=True)
class Case:
    """One eval question with the evidence that answers it (or none, when it must be abstained on)."""

    id: str
    question: str
    expected: tuple[str, ...]
    answers: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    answerable: bool = True
    source: str = ""  # file:line, for messages
    style: str = ""  # how it is asked (STYLES), for the per-style breakdown
    split: str = ""  # the case file's name: tuning, test, or another file's stem

    @property
    def group(self) -> str:
        """single, followup or unanswerable."""
        if not self.answerable:
            return "unanswerable"
        return "followup" if self.history else "single"


@dataclass(frozen=True)
class Retrieved:
    """A retrieved passage as shown in failure reports."""

    rank: int
    passage_id: str
    title: str
    section: str
    snippet: str
    relevant: bool


@dataclass(frozen=True)
class CaseResult:
    """How one case went in one mode: ranks of relevant passages, answer and abstention outcome, problems."""

    id: str
    group: str
    mode: str
    question: str
    history: tuple[str, ...]
    query: str
    ranks: tuple[int, ...]  # 1-based ranks of relevant passages in the top K
    n_relevant: int  # relevant passages in the whole index
    abstained: bool
    answer: str
    answer_ok: bool | None  # None when the case names no answer
    citation_precision: float | None  # None when nothing was cited
    latency_ms: float
    problems: tuple[str, ...]
    retrieved: tuple[Retrieved, ...]
    expected: tuple[str, ...]
    answers: tuple[str, ...]
    source: str
    split: str = ""
    style: str = ""
    sentences: int = 0  # sentences quoted (0 when it abstained): how long the answer is
    decision_score: float = 0.0  # what the abstention policy compared with its threshold (`AbstentionPolicy.score`)
    forced: bool = False  # abstained whatever the threshold (`AbstentionPolicy.forced`)


@dataclass(frozen=True)
class EvalRun:
    """Metrics per mode and group, every case result, and what the run was made with."""

    meta: dict[str, Any]
    metrics: dict[str, dict[str, dict[str, float]]]
    results: dict[str, list[CaseResult]] = field(default_factory=dict)

    def to_dict(self, cases: bool = True) -> dict[str, Any]:
        """JSON-ready dict; `cases=False` leaves out the per-case results."""
        out: dict[str, Any] = {"meta": self.meta, "metrics": self.metrics}
        if cases:
            out["cases"] = {mode: [asdict(r) for r in rs] for mode, rs in self.results.items()}
        return out


# ---------------------------------------------------------------------------------------------- cases


def _strings(value: object, name: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise EvalError(f"{where}: {name!r} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def parse_case(obj: object, where: str, split: str = "") -> Case:
    """A Case from one decoded JSON line; EvalError naming `where` (file:line and id) when malformed."""
    if not isinstance(obj, dict):
        raise EvalError(f"{where}: each line must be a JSON object")
    cid = obj.get("id")
    if not isinstance(cid, str) or not cid.strip():
        raise EvalError(f"{where}: 'id' must be a non-empty string")
    source, where = where, f"{where} (case {cid})"
    unknown = sorted(set(obj) - set(CASE_KEYS))
    if unknown:
        raise EvalError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(CASE_KEYS)}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalError(f"{where}: 'question' must be a non-empty string")
    answerable = obj.get("answerable", True)
    if not isinstance(answerable, bool):
        raise EvalError(f"{where}: 'answerable' must be true or false")
    expected = _strings(obj.get("expected", []), "expected", where)
    if answerable and not expected:
        raise EvalError(f"{where}: an answerable case needs at least one 'expected' evidence snippet")
    if not answerable and expected:
        raise EvalError(f"{where}: an unanswerable case must have an empty 'expected'")
    answers = _strings(obj["answer"], "answer", where) if obj.get("answer") is not None else ()
    if answers and not answerable:
        raise EvalError(f"{where}: an unanswerable case cannot have an 'answer'")
    history = _strings(obj.get("history", []), "history", where)
    style = obj.get("style", "")
    if style and style not in STYLES:
        raise EvalError(f"{where}: unknown style {style!r}; allowed: {', '.join(STYLES)}")
    return Case(cid.strip(), question.strip(), expected, answers, history, answerable, source, style, split)


def load_cases(paths: Sequence[Path]) -> list[Case]:
    """Cases from JSON Lines files, in file order; EvalError for unreadable files, bad lines or duplicate ids."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            lines = Path(path).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise EvalError(f"cannot read case file {path}: {exc}") from None
        before = len(cases)
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise EvalError(f"{where}: invalid JSON ({exc})") from None
            case = parse_case(obj, where, split=Path(path).stem)
            if case.id in seen:
                raise EvalError(f"{where}: duplicate case id {case.id!r} (first at {seen[case.id]})")
            seen[case.id] = where
            cases.append(case)
        if len(cases) == before:
            raise EvalError(f"case file {path} holds no cases")
    return cases


def default_case_files(evals_dir: Path = EVALS_DIR, exclude: Iterable[Path] = (), tuning_only: bool = False) -> list[Path]:
    """Every *.jsonl in the evals folder except excluded files (the UI's feedback log); with `tuning_only`, not
    the locked test split either (what calibration and tuning may read)."""
    skip = {Path(p).resolve() for p in exclude}
    files = [p for p in sorted(Path(evals_dir).glob("*.jsonl")) if p.resolve() not in skip]
    if tuning_only:
        files = [p for p in files if p.stem != TEST]
    if not files:
        raise EvalError(f"no case files (*.jsonl) in {evals_dir}; pass --cases FILE")
    return files


def relevant_passages(cases: Sequence[Case], passages: Sequence[Passage]) -> dict[str, frozenset[str]]:
    """Case id -> ids of the passages holding its evidence; EvalError for evidence found in no passage."""
    texts = [(p.id, normalise(p.text)) for p in passages]
    out: dict[str, frozenset[str]] = {}
    for case in cases:
        ids: set[str] = set()
        for snippet in case.expected:
            needle = normalise(snippet)
            found = {pid for pid, text in texts if needle in text}
            if not found:
                raise EvalError(
                    f"{case.source} (case {case.id}): evidence {snippet[:80]!r} occurs in no passage of the index; "
                    "fix the case or rebuild the index"
                )
            ids |= found
        out[case.id] = frozenset(ids)
    return out


def cases_digest(cases: Sequence[Case]) -> str:
    """Content hash of the cases (tells a baseline whether it was made on the same cases)."""
    blob = json.dumps([[c.id, c.question, c.expected, c.answers, c.history, c.answerable] for c in cases])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
