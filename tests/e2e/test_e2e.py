"""End-to-end on the real bundled model and the real corpus: through the Assistant and the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REAL_CORPUS, subprocess_env

from leftqa.config import Settings
from leftqa.index.store import read_manifest

pytestmark = pytest.mark.e2e

ANTWERP = "Who led the Antwerp Group?"
TROTSKY = "When was Trotsky exiled?"
CAPTION = "Bolshevik revolutionary Leon Trotsky was exiled by Stalin in February 1929."


def corpus_text(doc_id: str) -> str:
    return (REAL_CORPUS / doc_id).read_text("utf-8")


def check_citations_are_verbatim(answer: dict) -> None:
    """Every citation quotes the document exactly at its offsets, and its quote is in the answer text."""
    for c in answer["citations"]:
        if " … " not in c["quote"]:
            assert corpus_text(c["doc_id"])[c["start"] : c["end"]] == c["quote"]
        for part in c["quote"].split(" … "):
            assert part in answer["answer"]
            assert part in corpus_text(c["doc_id"])


def check_antwerp(a: dict) -> None:
    assert not a["abstained"]
    cited = [c for c in a["citations"] if "Hermann Knüfken" in c["quote"]]
    assert cited, a["answer"]
    assert f"[{cited[0]['n']}]" in a["answer"]
    by_id = {p["passage_id"]: p for p in a["passages"]}
    assert "Hermann Knüfken" in by_id[cited[0]["passage_id"]]["text"]
    check_citations_are_verbatim(a)


def check_trotsky(a: dict) -> None:
    assert not a["abstained"]
    quotes = [c["quote"] for c in a["citations"]]
    assert any(CAPTION in q for q in quotes), a["answer"]
    assert CAPTION in a["answer"]
    check_citations_are_verbatim(a)


def test_real_index_manifest(real_index_settings: Settings) -> None:
    m = read_manifest(real_index_settings.index_dir)
    assert (m.model, m.dimension) == ("bundled:all-MiniLM-L6-v2", 384)
    assert m.passages >= 10


def test_antwerp_group_cites_knufken(real_assistant) -> None:  # noqa: ANN001
    a = real_assistant.ask(ANTWERP)
    check_antwerp(a.to_dict())
    assert a.question == a.query == ANTWERP
    assert len(a.passages) == 10


def test_trotsky_exile_quotes_the_caption(real_assistant) -> None:  # noqa: ANN001
    check_trotsky(real_assistant.ask(TROTSKY).to_dict())


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_every_mode_retrieves_the_knufken_passage(real_assistant, mode: str) -> None:  # noqa: ANN001
    hits = real_assistant.search(ANTWERP, mode=mode, k=3)
    assert any("Hermann Knüfken" in h.text for h in hits)


def test_off_topic_question_abstains(real_assistant) -> None:  # noqa: ANN001
    a = real_assistant.ask("What is the boiling point of water at sea level in kelvin?")
    assert a.abstained and a.citations == ()
    assert len(a.passages) == 10  # the closest material is still listed


def test_cli_batch_subprocess(real_index_settings: Settings) -> None:
    """`leftqa ask --json --batch -` on the real index in a fresh process: contract, order, error lines."""
    lines = [
        json.dumps({"question": ANTWERP}),
        "{broken",
        json.dumps({"question": TROTSKY, "history": [ANTWERP]}),
        json.dumps({"question": "  "}),
    ]
    exe = Path(sys.executable).with_name("leftqa")
    args = ["--index", str(real_index_settings.index_dir), "--corpus", str(real_index_settings.corpus_dir)]
    result = subprocess.run(
        [str(exe), "ask", "--json", "--batch", "-", *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=600,
        env=subprocess_env(),
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1  # two lines failed; the others were answered
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 4
    for a, question in ((out[0], ANTWERP), (out[2], TROTSKY)):
        assert {"question", "query", "abstained", "answer", "citations", "passages"} <= set(a)
        assert a["question"] == question
        assert len(a["passages"]) >= 10
        assert [p["rank"] for p in a["passages"]] == list(range(1, len(a["passages"]) + 1))
        for p in a["passages"]:
            assert {"rank", "passage_id", "doc_id", "section", "text", "score"} <= set(p)
        for c in a["citations"]:
            assert {"n", "passage_id", "doc_id", "title", "section", "start", "end", "quote"} <= set(c)
    check_antwerp(out[0])
    assert out[1]["line"] == 2 and out[1]["error"].startswith("invalid JSON")
    check_trotsky(out[2])  # a complete question after history still answers itself
    assert out[3] == {"line": 4, "error": "the question is empty; type a question about the corpus"}


@pytest.mark.e2e
def test_asking_with_the_learned_scorer_never_imports_torch(real_index_settings) -> None:  # noqa: ANN001
    """The query path (index, embedder, answer scorer) runs on ONNX Runtime alone."""
    code = (
        "import sys; from leftqa.config import Settings; from leftqa.qa.assistant import Assistant; "
        f"a = Assistant.load(Settings(corpus_dir={str(real_index_settings.corpus_dir)!r}, index_dir={str(real_index_settings.index_dir)!r})); "
        "ans = a.ask('Who led the Antwerp Group?'); "
        "print(a.scorer is not None, 'ce_best' in ans.evidence, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "True", "False", "False"]


def test_ask_gives_the_same_answer_from_any_folder(real_index_settings: Settings, tmp_path: Path) -> None:
    """The calibration travels with the scorer: from another folder the same index answers the same, including a
    question whose P(answerable) lies between the calibrated threshold and the uncalibrated 0.5."""
    question = "What happened to Ryutin after his manifesto?"
    env = {**subprocess_env(), "LEFTQA_CORPUS_DIR": str(real_index_settings.corpus_dir)}
    env.pop("LEFTQA_CALIBRATION_PATH", None)
    cmd = [sys.executable, "-m", "leftqa", "ask", "--json", "--index", str(real_index_settings.index_dir), question]
    answers = []
    for cwd in (Path(__file__).resolve().parents[2], tmp_path):
        out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        a = json.loads(out.stdout)
        a.pop("elapsed_ms")
        answers.append(a)
    assert answers[0] == answers[1]
    assert not answers[0]["abstained"] and answers[0]["confidence"] < 0.5, answers[0]["confidence"]
