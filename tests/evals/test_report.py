"""Eval output: the table, JSON, the failure report and the BEIR export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaltiny import eval_args, tiny  # noqa: F401 - tiny is a fixture

from leftqa.app.cli import main

# ------------------------------------------------------------------------------------ output formats


def test_table_json_and_report(tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(eval_args(tiny, "hash:64", "--mode", "all")) == 0
    table = capsys.readouterr().out
    rows = [line.split()[:3] for line in table.splitlines() if line.split()[:1] in (["overall"], ["single"], ["followup"], ["unanswerable"])]
    assert rows == [[g, m, n] for g, n in (("overall", "6"), ("single", "4"), ("followup", "1"), ("unanswerable", "1")) for m in ("hybrid", "bm25", "dense")]

    report = tmp_path / "report"
    assert main(eval_args(tiny, "hash:1", "--json", "--report", str(report))) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["meta"]["model"] == "hash:1" and list(data["metrics"]) == ["hybrid"]
    assert set(data["metrics"]["hybrid"]) == {"overall", "single", "followup", "unanswerable"}
    full = json.loads((report / "report.json").read_text("utf-8"))
    failing = {c["id"] for c in full["cases"]["hybrid"] if c["problems"]}
    assert failing and "u1" in failing  # the poor model answers the off-topic question
    md = (report / "report.md").read_text("utf-8")
    assert f"## Failing cases — hybrid ({len(failing)} of 6)" in md
    assert "### u1 (unanswerable, hybrid) — answered instead of abstaining" in md
    assert md.count("- retrieved (top 3):") == len(failing)


def test_export_beir(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "beir"
    assert main(eval_args(tiny, "hash:64", "--export-beir", str(out))) == 0
    corpus = [json.loads(line) for line in (out / "corpus.jsonl").read_text("utf-8").splitlines()]
    queries = [json.loads(line) for line in (out / "queries.jsonl").read_text("utf-8").splitlines()]
    qrels = (out / "qrels" / "test.tsv").read_text("utf-8").splitlines()
    assert [c["text"][:9] for c in corpus] == ["Honey bee", "The Bell ", "Mount Tam", "The knigh"]
    assert {"_id", "title", "text"} <= set(corpus[0]) and corpus[0]["title"] == "Field notes"
    assert [q["_id"] for q in queries] == ["s1", "s2", "s3", "s4", "f1"]  # u1 has no relevant passage
    assert queries[4]["metadata"] == {"group": "followup", "history": ["Where does the Bell Rock Lighthouse stand?"]}
    ids = [c["_id"] for c in corpus]
    assert qrels == ["query-id\tcorpus-id\tscore"] + [f"{q}\t{ids[i]}\t1" for q, i in (("s1", 0), ("s2", 1), ("s3", 2), ("s4", 3), ("f1", 1))]


def test_the_curve_shows_refusal_and_false_abstention_per_style_at_each_threshold() -> None:
    from leftqa.evals.cases import CaseResult, EvalRun
    from leftqa.evals.report import curve_table

    def case(i: str, group: str, style: str, score: float, forced: bool = False) -> CaseResult:
        return CaseResult(id=i, group=group, mode="hybrid", question="q?", history=(), query="q?", ranks=(), n_relevant=1,
                          abstained=False, answer="", answer_ok=None, citation_precision=None, latency_ms=1.0, problems=(),
                          retrieved=(), expected=(), answers=(), source="", split="tuning", style=style,
                          decision_score=score, forced=forced)  # fmt: skip

    results = [case("a", "single", "keyword", 0.4), case("b", "single", "keyword", 0.15),
               case("c", "unanswerable", "near-topic", 0.3), case("d", "unanswerable", "near-topic", 0.9, forced=True)]  # fmt: skip
    table = curve_table(EvalRun({}, {}, {"hybrid": results}), thresholds=(0.1, 0.2, 0.5))
    rows = [line.split() for line in table.splitlines()[2:]]
    assert rows == [["tuning", "keyword", "falseAbst", "0.00", "0.50", "1.00"], ["tuning", "near-topic", "refused", "0.50", "0.50", "1.00"]]
