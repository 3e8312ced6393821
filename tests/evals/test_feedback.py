"""Feedback records and their safe appending (threads and processes writing the same file at once)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from leftqa.errors import FeedbackError
from leftqa.evals.feedback import Feedback, append_feedback
from leftqa.records import Answer, Citation, Hit


def _answer() -> Answer:
    hit = Hit(rank=1, passage_id="p1", doc_id="d.txt", title="T", section="S", text="One. Two.", score=0.9, start=0, end=9)
    other = Hit(rank=2, passage_id="p2", doc_id="d.txt", title="T", section="S", text="Three.", score=0.1, start=10, end=16)
    cite = Citation(n=1, passage_id="p1", doc_id="d.txt", title="T", section="S", start=0, end=4, quote="One.", highlights=((0, 4),))
    return Answer(question="Who?", query="Who? (Antwerp)", abstained=False, answer="One. [1]", citations=(cite,), passages=(hit, other), mode="hybrid")


def test_build_keeps_what_an_eval_case_needs() -> None:
    when = datetime(2026, 1, 2, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    fb = Feedback.build(_answer(), ["Earlier?"], "wrong evidence", now=when)
    assert fb == Feedback(
        question="Who?",
        history=("Earlier?",),
        query="Who? (Antwerp)",
        mode="hybrid",
        answer="One. [1]",
        abstained=False,
        cited_passage_ids=("p1",),
        retrieved_passage_ids=("p1", "p2"),
        verdict="wrong evidence",
        time="2026-01-02T03:05:06+00:00",
        evidence=("One.",),
    )


def test_unknown_verdict_is_refused() -> None:
    with pytest.raises(FeedbackError, match="unknown verdict"):
        Feedback.build(_answer(), [], "meh")


def test_append_creates_the_folder_and_keeps_earlier_lines(tmp_path: Path) -> None:
    path = tmp_path / "evals" / "feedback.jsonl"
    append_feedback(path, Feedback.build(_answer(), [], "helpful"))
    append_feedback(path, Feedback.build(_answer(), ["Who?"], "wrong evidence"))
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [(r["verdict"], r["history"], r["cited_passage_ids"]) for r in rows] == [
        ("helpful", [], ["p1"]),
        ("wrong evidence", ["Who?"], ["p1"]),
    ]


def test_unwritable_path_is_a_feedback_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(FeedbackError, match="cannot open"):
        append_feedback(blocker / "feedback.jsonl", Feedback.build(_answer(), [], "helpful"))


# Each writer process appends from two threads at once; lines are far larger than PIPE_BUF (4 KiB), so a
# writer that split a line into several writes, or rewrote the file, would interleave or lose lines.
WRITER = r"""
import sys, threading
from pathlib import Path
from leftqa.evals.feedback import Feedback, append_feedback
from leftqa.records import Answer
path, worker, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def run(thread):
    for i in range(count):
        tag = f"{worker}-{thread}-{i}"
        a = Answer(question=tag, query=tag, abstained=True, answer=tag * 4000, citations=(), passages=(), mode="bm25")
        append_feedback(path, Feedback.build(a, [], "helpful"))
threads = [threading.Thread(target=run, args=(t,)) for t in range(2)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_concurrent_writers_never_interleave_or_lose_lines(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    workers, count = 4, 15
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), str(count)]) for w in range(workers)]
    assert [p.wait(timeout=120) for p in procs] == [0] * workers
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    tags = sorted(r["question"] for r in rows)
    assert tags == sorted(f"{w}-{t}-{i}" for w in range(workers) for t in range(2) for i in range(count))
    assert all(r["answer"] == r["question"] * 4000 for r in rows)
