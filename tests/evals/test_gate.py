"""The regression gate: baselines, the comparison against them and `leftqa eval --check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaltiny import CASES, eval_args, tiny, write_cases  # noqa: F401 - tiny is a fixture

from leftqa.app.cli import main
from leftqa.evals import gate as evalgate
from leftqa.evals import run as ev

def test_the_gate_baseline_leaves_out_the_gap() -> None:
    run = ev.EvalRun(meta={}, metrics={"hybrid": {"overall": {"n": 2, "hit@1": 1.0}, "gap/overall": {"hit@1": -0.1}}})
    assert evalgate.make_baseline(run)["metrics"] == {"hybrid": {"overall": {"n": 2, "hit@1": 1.0}}}


# ------------------------------------------------------------------------------------------ the gate


BASE = {"overall": {"n": 10, "hit@1": 0.9, "hit@5": 1.0, "false_abstention": 0.05, "latency_p50_ms": 10.0}, "unanswerable": {"abstention_recall": 0.8}}


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ({"overall": {"hit@1": 0.88, "hit@5": 1.0, "false_abstention": 0.07, "latency_p50_ms": 99.0}, "unanswerable": {"abstention_recall": 0.8}}, []),
        ({"overall": {"hit@1": 0.95, "hit@5": 1.0, "false_abstention": 0.0}, "unanswerable": {"abstention_recall": 1.0}}, []),
        ({"overall": {"hit@1": 0.87, "hit@5": 1.0, "false_abstention": 0.05}, "unanswerable": {"abstention_recall": 0.8}}, ["overall hit@1: 0.900 -> 0.870 (-0.030)"]),
        ({"overall": {"hit@1": 0.9, "hit@5": 1.0, "false_abstention": 0.1}, "unanswerable": {"abstention_recall": 0.8}}, ["overall false_abstention: 0.050 -> 0.100 (+0.050)"]),
        ({"overall": {"hit@1": 0.9, "hit@5": 1.0, "false_abstention": 0.05}}, ["unanswerable abstention_recall: 0.800 in the baseline, missing now"]),
    ],
)
def test_compare_flags_only_drops_beyond_tolerance(current: dict, expected: list[str]) -> None:
    assert evalgate.compare(BASE, current, 0.02) == expected


def test_gate_passes_on_the_same_configuration_and_fails_on_a_worse_one(tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tiny["root"] / "baseline.json"
    assert main(eval_args(tiny, "hash:64", "--mode", "all", "--write-baseline", "--baseline", str(baseline))) == 0
    written = json.loads(baseline.read_text("utf-8"))
    assert (written["model"], written["tolerance"], sorted(written["metrics"])) == ("hash:64", 0.02, ["bm25", "dense", "hybrid"])
    assert written["metrics"]["hybrid"]["overall"]["hit@1"] == 1.0
    capsys.readouterr()

    assert main(eval_args(tiny, "hash:64", "--mode", "all", "--check", "--baseline", str(baseline))) == 0
    assert "eval check passed" in capsys.readouterr().err

    # A one-dimensional hashing "model" makes dense similarity meaningless: a deliberately worse configuration.
    assert main(eval_args(tiny, "hash:1", "--mode", "all", "--check", "--baseline", str(baseline))) == 1
    err = capsys.readouterr().err
    assert "eval check FAILED" in err and "was made with model hash:64, this run uses hash:1" in err
    assert "  hybrid overall hit@1: 1.000 -> " in err and "  dense overall hit@1: " in err


def test_check_refuses_a_mode_missing_from_the_baseline(tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tiny["root"] / "bm25-only.json"
    assert main(eval_args(tiny, "hash:64", "--mode", "bm25", "--write-baseline", "--baseline", str(baseline))) == 0
    assert main(eval_args(tiny, "hash:64", "--mode", "dense", "--check", "--baseline", str(baseline))) == 1
    assert "the baseline has no metrics for mode dense" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--check", "--write-baseline"], "either --check or --write-baseline"),
        (["--check", "--baseline", "/nonexistent/baseline.json"], "no baseline at /nonexistent/baseline.json"),
    ],
)
def test_gate_usage_errors_are_messages(tiny: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    assert main(eval_args(tiny, "hash:64", *extra)) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_evidence_stops_the_run_naming_the_case(tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_cases(tmp_path / "bad.jsonl", [CASES[0], {"id": "s9", "question": "q?", "expected": ["no such sentence"]}])
    assert main(["eval", "--cases", str(bad), "--corpus", str(tiny["corpus"]), "--index", str(tiny["root"] / "hash64"), "--model", "hash:64"]) == 1
    assert f"{bad}:2 (case s9): evidence 'no such sentence' occurs in no passage" in capsys.readouterr().err
