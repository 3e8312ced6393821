"""Smoke test of benchmarks/squad.py on a hand-made two-paragraph SQuAD file with the hash:64 fake model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CTX1 = (
    "The Bell Rock Lighthouse stands on a reef off the coast of Angus in Scotland. "
    "Robert Stevenson completed it in 1810 after four years of work by masons who could only build at low tide."
)
CTX2 = (
    "Mount Tambora on the island of Sumbawa erupted violently in April 1815. "
    "The following year became known as the year without a summer."
)
SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Bell_Rock",
            "paragraphs": [
                {
                    "context": CTX1,
                    "qas": [
                        {"id": "q1", "question": "Who completed the Bell Rock Lighthouse?", "is_impossible": False,
                         "answers": [{"text": "Robert Stevenson", "answer_start": CTX1.index("Robert")}, {"text": "Stevenson", "answer_start": CTX1.index("Stevenson")}]},
                        {"id": "q2", "question": "Who designed the Eddystone Lighthouse?", "is_impossible": True, "answers": []},
                    ],
                }
            ],
        },
        {
            "title": "Tambora",
            "paragraphs": [
                {
                    "context": CTX2,
                    "qas": [
                        {"id": "q3", "question": "When did Mount Tambora erupt?", "is_impossible": False,
                         "answers": [{"text": "April 1815", "answer_start": CTX2.index("April")}]},
                        {"id": "q4", "question": "What was the year without a summer?", "is_impossible": False,
                         "answers": [{"text": "The following year", "answer_start": CTX2.index("The following")}]},
                    ],
                }
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def squad():  # noqa: ANN201 - the benchmark module
    spec = importlib.util.spec_from_file_location("squad_bench", ROOT / "benchmarks" / "squad.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_cases_use_the_sentence_holding_the_answer(squad) -> None:  # noqa: ANN001
    cases = squad.make_cases(SQUAD["data"])
    assert [(c.id, c.group, c.expected, c.answers) for c in cases] == [
        ("q1", "single", ("Robert Stevenson completed it in 1810 after four years of work by masons who could only build at low tide.",), ("Robert Stevenson", "Stevenson")),
        ("q3", "single", ("Mount Tambora on the island of Sumbawa erupted violently in April 1815.",), ("April 1815",)),
        ("q4", "single", ("The following year became known as the year without a summer.",), ("The following year",)),
        ("q2", "unanswerable", (), ()),
    ]
    assert [c.id for c in squad.make_cases(SQUAD["data"], limit=1)] == ["q1", "q2"]


def test_benchmark_runs_all_modes_and_reuses_its_workdir(squad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    data = tmp_path / "squad.json"
    data.write_text(json.dumps(SQUAD), encoding="utf-8")
    work = tmp_path / "work"
    args = [str(data), "--model", "hash:64", "--workdir", str(work), "--json"]
    assert squad.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["meta"]["answerable"], out["meta"]["impossible"], out["meta"]["dropped"]) == (3, 1, [])
    assert list(out["metrics"]) == ["hybrid", "bm25", "dense"]
    assert out["metrics"]["bm25"]["single"]["hit@1"] == 1.0
    assert sorted(p.name for p in (work / "corpus").iterdir()) == ["bell-rock-001.txt", "tambora-001.txt"]
    assert (work / "corpus" / "bell-rock-001.txt").read_text("utf-8") == f"Bell Rock, paragraph 1\n\n{CTX1}\n"
    built = (work / "index" / "manifest.json").stat().st_mtime_ns

    assert squad.main([str(data), "--model", "hash:64", "--workdir", str(work), "--mode", "bm25"]) == 0
    table = capsys.readouterr().out
    assert "3 answerable questions, 1 impossible" in table and "single        bm25" in table
    assert (work / "index" / "manifest.json").stat().st_mtime_ns == built  # the cached index was reused


def test_missing_data_is_skipped_with_a_message(squad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert squad.main([str(tmp_path / "absent.json")]) == 0
    assert "SQuAD data not found" in capsys.readouterr().err


def test_benchmark_settings_come_from_the_environment(squad, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """LEFTQA_* variables choose what is measured (another scorer, calibration or answer length), as for `leftqa eval`."""
    monkeypatch.setenv("LEFTQA_MAX_ANSWER_SENTENCES", "1")
    from leftqa.qa.policy import Calibration, write_calibration

    write_calibration(tmp_path / "cal.json", Calibration(0.4, model="hash:64", source="mine"))
    monkeypatch.setenv("LEFTQA_CALIBRATION_PATH", str(tmp_path / "cal.json"))
    assistant = squad.prepare(SQUAD["data"], tmp_path / "work", "hash:64", quiet=True)
    assert assistant.settings.max_answer_sentences == 1
    assert assistant.settings.calibration_path == tmp_path / "cal.json"
    assert (assistant.policy.threshold, assistant.policy.source) == (0.4, "mine")
    assert assistant.settings.index_dir == tmp_path / "work" / "index" and assistant.settings.top_k == 10
