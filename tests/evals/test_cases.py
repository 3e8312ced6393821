"""Eval case files: the format, its checks, the split a file names, and the evidence a case points to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaltiny import CASES, write_cases

from leftqa.errors import EvalError
from leftqa.evals import cases as ec
from leftqa.records import Passage, Sentence



def test_load_cases_reads_every_field(tmp_path: Path) -> None:
    path = write_cases(tmp_path / "c.jsonl", CASES)
    cases = ec.load_cases([path])
    assert [c.id for c in cases] == ["s1", "s2", "s3", "s4", "f1", "u1"]
    assert [c.group for c in cases] == ["single"] * 4 + ["followup", "unanswerable"]
    assert cases[4] == ec.Case(
        "f1", "Who built it?", ("Robert Stevenson completed it in 1810",), ("Robert Stevenson",),
        ("Where does the Bell Rock Lighthouse stand?",), True, f"{path}:5", split="c",
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"question": "q?", "expected": ["x"]}', "'id' must be a non-empty string"),
        ('{"id": "x1", "expected": ["x"]}', "(case x1): 'question' must be a non-empty string"),
        ('{"id": "x1", "question": "q?"}', "(case x1): an answerable case needs at least one 'expected'"),
        ('{"id": "x1", "question": "q?", "expected": ["a"], "answerable": false}', "(case x1): an unanswerable case must have an empty 'expected'"),
        ('{"id": "x1", "question": "q?", "expected": [], "answerable": "no"}', "(case x1): 'answerable' must be true or false"),
        ('{"id": "x1", "question": "q?", "expected": "a", "anwser": "b"}', "(case x1): unknown field(s) anwser"),
        ('{"id": "x1", "question": "q?", "expected": ["a", 3]}', "(case x1): 'expected' must be a list of non-empty strings"),
        ('{"id": "x1", "question": "q?", "expected": ["a"], "history": [""]}', "(case x1): 'history' must be a list of non-empty strings"),
        ('{"id": "x1", "question": "q?", "expected": [], "answerable": false, "answer": "b"}', "(case x1): an unanswerable case cannot have an 'answer'"),
    ],
)
def test_malformed_lines_are_refused_with_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(CASES[0]) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(EvalError) as err:
        ec.load_cases([path])
    assert f"{path}:3" in str(err.value)
    assert message in str(err.value)


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    a = write_cases(tmp_path / "a.jsonl", CASES[:2])
    b = write_cases(tmp_path / "b.jsonl", [CASES[1]])
    with pytest.raises(EvalError, match=rf"{b}:1: duplicate case id 's2' \(first at {a}:2\)"):
        ec.load_cases([a, b])


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_a_file_without_cases_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalError, match="holds no cases"):
        ec.load_cases([path])


def test_default_case_files_skip_the_feedback_log(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl", "feedback.jsonl", "baseline.json"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert ec.default_case_files(tmp_path, exclude=[tmp_path / "feedback.jsonl"]) == [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with pytest.raises(EvalError, match="no case files"):
        ec.default_case_files(tmp_path / "missing")


def passage(pid: str, text: str) -> Passage:
    return Passage(pid, "d.txt", "Doc", "Intro", 0, len(text), text, (Sentence(text, 0, len(text), 0, len(text)),))


def test_relevant_passages_match_normalised_evidence_and_refuse_missing_evidence() -> None:
    passages = [passage("p1", "The party’s  Left\nOpposition grew."), passage("p2", "Nothing."), passage("p3", "the party's left opposition")]
    case = ec.Case("c1", "q?", ("the PARTY'S left opposition",), source="x.jsonl:7")
    assert ec.relevant_passages([case], passages) == {"c1": frozenset({"p1", "p3"})}
    missing = ec.Case("c2", "q?", ("the party's left opposition", "Kronstadt"), source="x.jsonl:9")
    with pytest.raises(EvalError, match=r"x.jsonl:9 \(case c2\): evidence 'Kronstadt' occurs in no passage"):
        ec.relevant_passages([case, missing], passages)


def test_the_case_file_names_the_split_and_styles_are_checked(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text('{"id": "a", "question": "q?", "expected": ["x"], "style": "alias"}\n')
    (tmp_path / "tuning.jsonl").write_text('{"id": "b", "question": "q?", "expected": ["x"]}\n')
    a, b = ec.load_cases([tmp_path / "test.jsonl", tmp_path / "tuning.jsonl"])
    assert (a.split, a.style, b.split, b.style) == ("test", "alias", "tuning", "")
    assert ec.default_case_files(tmp_path, tuning_only=True) == [tmp_path / "tuning.jsonl"]
    (tmp_path / "bad.jsonl").write_text('{"id": "c", "question": "q?", "expected": ["x"], "style": "clever"}\n')
    with pytest.raises(EvalError, match="unknown style 'clever'"):
        ec.load_cases([tmp_path / "bad.jsonl"])
