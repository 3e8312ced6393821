"""User feedback on answers: one JSON line per verdict, appended safely by concurrent threads and processes."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from leftqa.errors import FeedbackError
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
        )


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
