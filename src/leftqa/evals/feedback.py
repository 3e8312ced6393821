"""User feedback on answers: one JSON line per verdict, appended safely by concurrent threads and processes,
and turned into candidate eval cases (`leftqa feedback --out FILE`)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from leftqa.errors import FeedbackError
from leftqa.files import atomic_write_bytes
from leftqa.records import Answer

VERDICTS = ("helpful", "wrong evidence")


@dataclass(frozen=True)
class Feedback:
    """A verdict on one answer, with what is needed to turn it into an eval case later."""

    question: str
    history: tuple[str, ...]
    query: str
    mode: str
    answer: str
    abstained: bool
    cited_passage_ids: tuple[str, ...]
    retrieved_passage_ids: tuple[str, ...]
    verdict: str
    time: str  # ISO 8601, UTC
    evidence: tuple[str, ...] = ()  # the quoted sentences, verbatim, in the order they were quoted

    @classmethod
    def build(cls, answer: Answer, history: Sequence[str], verdict: str, now: datetime | None = None) -> "Feedback":
        """The feedback record for `answer` (asked after `history`, oldest first)."""
        if verdict not in VERDICTS:
            raise FeedbackError(f"unknown verdict {verdict!r}; choose one of {', '.join(VERDICTS)}")
        when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        return cls(
            question=answer.question,
            history=tuple(history),
            query=answer.query,
            mode=answer.mode,
            answer=answer.answer,
            abstained=answer.abstained,
            cited_passage_ids=tuple(c.passage_id for c in answer.citations),
            retrieved_passage_ids=tuple(h.passage_id for h in answer.passages),
            verdict=verdict,
            time=when.isoformat(timespec="seconds"),
            evidence=_quoted_sentences(answer),
        )


def _quoted_sentences(answer: Answer) -> tuple[str, ...]:
    """Each quoted sentence verbatim (from its passage's highlights), falling back to a citation's whole quote."""
    texts = {h.passage_id: h.text for h in answer.passages}
    out: list[str] = []
    for c in answer.citations:
        text = texts.get(c.passage_id)
        spans = [text[s:e].strip() for s, e in c.highlights] if text else []
        out += [q for q in spans if q] or ([c.quote.strip()] if c.quote.strip() else [])
    return tuple(out)


def append_feedback(path: Path, item: Feedback) -> None:
    """Append one JSON line to `path` (created if missing); lines from concurrent writers never interleave."""
    line = (json.dumps(asdict(item), ensure_ascii=False) + "\n").encode("utf-8")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise FeedbackError(f"cannot open {path} for feedback: {exc.strerror or exc}") from None
    try:
        # O_APPEND puts every write at the current end; the exclusive lock also covers the rare short write,
        # whose remainder must follow its own beginning rather than another writer's line.
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise FeedbackError(f"cannot write feedback to {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)  # closing the descriptor releases the lock


REVIEW_NOTE = (
    "wrong evidence: put the sentence that really answers the question in 'expected' (or set 'answerable' to false "
    "when the corpus does not answer it), then delete this 'review' field"
)
_MARKERS = re.compile(r"\s*\[\d+\]\s*")


def read_feedback(path: Path) -> list[Feedback]:
    """Every feedback line of `path`, oldest first; FeedbackError naming the line for a malformed one."""
    path = Path(path)
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise FeedbackError(f"no feedback yet: {path} does not exist (the chat's Helpful / Wrong evidence buttons write it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedbackError(f"cannot read feedback file {path}: {exc}") from None
    known = {f.name for f in fields(Feedback)}
    items = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or data.get("verdict") not in VERDICTS or not isinstance(data.get("question"), str):
                raise ValueError("not a feedback record")
            values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
            for key in ("history", "cited_passage_ids", "retrieved_passage_ids", "evidence"):
                values[key] = tuple(str(v) for v in values.get(key) or ())
            items.append(Feedback(**values))
        except (ValueError, TypeError, RecursionError) as exc:
            raise FeedbackError(f"{path}:{lineno}: not a feedback line ({exc})") from None
    return items


def candidate_cases(items: Sequence[Feedback]) -> list[dict[str, Any]]:
    """Eval cases (the `evals/*.jsonl` format) from feedback, one per question and history (the latest verdict).

    "helpful" on an answer: its quoted sentences are the expected evidence; on "Not in the corpus": an
    unanswerable case. "wrong evidence": a case with no evidence and a `review` field, which `leftqa eval`
    refuses until someone has put the right evidence in and deleted the field."""
    latest: dict[tuple[str, tuple[str, ...]], Feedback] = {}
    for item in items:
        latest.pop((item.question, item.history), None)
        latest[(item.question, item.history)] = item
    cases = []
    for (question, history), item in latest.items():
        digest = hashlib.sha256(json.dumps([question, list(history)], ensure_ascii=False).encode("utf-8")).hexdigest()[:10]
        case: dict[str, Any] = {"id": f"feedback-{digest}", "question": question}
        if history:
            case["history"] = list(history)
        if item.verdict == "helpful" and item.abstained:
            case.update(expected=[], answerable=False)
        elif item.verdict == "helpful":
            evidence = list(item.evidence) or [q for q in _MARKERS.split(item.answer) if q.strip()]
            case["expected"] = evidence
        else:
            case["expected"] = []
            quoted = list(item.evidence) or [q for q in _MARKERS.split(item.answer) if q.strip()]
            case["review"] = REVIEW_NOTE + (f"; the answer quoted: {' | '.join(quoted)}" if quoted and not item.abstained else "")
        cases.append(case)
    return cases


def write_cases(path: Path, cases: Sequence[dict[str, Any]]) -> None:
    """Write cases as JSON Lines, atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases).encode("utf-8"))
    except OSError as exc:
        raise FeedbackError(f"cannot write candidate cases to {path}: {exc.strerror or exc}") from None
