"""The command line in-process on the tiny corpus with the fake embedder: JSON contract, batch mode, bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAKE_MODEL, HARBOUR_TXT, REPO_ROOT, TINY_CORPUS, TINY_PASSAGES, subprocess_env, write_files

from leftqa.app.cli import main

pytestmark = pytest.mark.usefixtures("clean_leftqa_env")

CITATION_FIELDS = {"n", "passage_id", "doc_id", "title", "section", "start", "end", "quote"}
PASSAGE_FIELDS = {"rank", "passage_id", "doc_id", "section", "text", "score"}
ANSWER_FIELDS = {"question", "query", "abstained", "answer", "citations", "passages"}
QUESTION = "Who led the Harbour Committee?"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one in-process `leftqa` run."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("leftqa: error: ")
    for f in fragments:
        assert f in err


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """`--corpus C --index I --model hash:64` for a tiny-corpus index built once for this module via the CLI."""
    root = tmp_path_factory.mktemp("cli")
    corpus = write_files(root / "corpus", TINY_CORPUS)
    args = ["--corpus", str(corpus), "--index", str(root / "index"), "--model", FAKE_MODEL]
    assert main(["index", "-q", *args]) == 0
    return args


def test_index_command_builds_and_reports(capsys: pytest.CaptureFixture[str], make_corpus, tmp_path: Path) -> None:  # noqa: ANN001
    corpus = make_corpus()
    code, out, err = run(capsys, "index", "-q", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--model", FAKE_MODEL)
    assert code == 0 and err == ""
    assert out.startswith("2 documents")
    assert f"{TINY_PASSAGES} passages" in out
    assert (tmp_path / "idx" / "manifest.json").is_file()
    code, out, _ = run(capsys, "index", "--if-stale", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--model", FAKE_MODEL)
    assert (code, out) == (0, f"index at {tmp_path / 'idx'} is up to date\n")


def test_index_warns_about_a_non_utf8_file_and_indexes_the_rest(capsys: pytest.CaptureFixture[str], make_corpus, tmp_path: Path) -> None:  # noqa: ANN001
    corpus = make_corpus({**TINY_CORPUS, "latin1.txt": "Caf\xe9 society in Fenwick.".encode("latin-1")})
    code, out, err = run(capsys, "index", "-q", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--model", FAKE_MODEL)
    assert code == 0
    assert out.startswith("2 documents")
    assert err.startswith("warning: latin1.txt: not valid UTF-8") and err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({}, "no readable documents in"),
        ({"bad.txt": b"\xff\xfe\xfa\xfb not text"}, "no readable documents in"),
        (None, "does not exist"),
    ],
    ids=["empty corpus", "only a non-UTF-8 file", "missing corpus folder"],
)
def test_index_on_unusable_corpus_fails_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, files, fragment: str) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    if files is not None:
        write_files(corpus, files)
    code, out, err = run(capsys, "index", "-q", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--model", FAKE_MODEL)
    assert code == 1
    assert not (tmp_path / "idx").exists()
    err_lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert_one_line_error("\n".join(err_lines) + "\n", fragment)


def test_search_json(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    code, out, err = run(capsys, "search", QUESTION, "--json", "-k", "4", "--mode", "bm25", *cli_index)
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["question"], data["mode"]) == (QUESTION, "bm25")
    assert [h["rank"] for h in data["hits"]] == [1, 2, 3, 4]
    assert all(PASSAGE_FIELDS <= set(h) for h in data["hits"])
    assert data["hits"][0]["text"].startswith("The Harbour Committee was led by Marta Quell.")


def test_search_text_output(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    code, out, _ = run(capsys, "search", QUESTION, "-k", "2", *cli_index)
    assert code == 0
    assert out.startswith(" 1. [") and "\n 2. [" in out
    assert "The Harbour of Fenwick › Early years (1820-1880)" in out


def check_answer(a: dict, question: str) -> None:
    """The `leftqa ask --json` contract, and that every citation is verbatim document text at its offsets."""
    assert ANSWER_FIELDS <= set(a)
    assert a["question"] == question and isinstance(a["query"], str) and isinstance(a["abstained"], bool)
    assert len(a["passages"]) == 10  # top_k = 10 and the index has 13 passages
    assert [p["rank"] for p in a["passages"]] == list(range(1, 11))
    assert all(PASSAGE_FIELDS <= set(p) for p in a["passages"])
    if a["abstained"]:
        assert a["citations"] == []
        return
    assert a["citations"] and [c["n"] for c in a["citations"]] == list(range(1, len(a["citations"]) + 1))
    for c in a["citations"]:
        assert CITATION_FIELDS <= set(c)
        assert f"[{c['n']}]" in a["answer"]
        source = TINY_CORPUS[c["doc_id"]]
        if " … " not in c["quote"]:
            assert source[c["start"] : c["end"]] == c["quote"]
        assert all(part in a["answer"] for part in c["quote"].split(" … "))


def test_ask_json_contract(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    code, out, err = run(capsys, "ask", QUESTION, "--json", *cli_index)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    a = json.loads(out)
    check_answer(a, QUESTION)
    assert not a["abstained"]
    assert a["query"] == QUESTION
    assert "Marta Quell" in a["answer"]
    first = a["citations"][0]
    assert (first["doc_id"], first["title"], first["section"]) == ("harbour-history.txt", "The Harbour of Fenwick", "Early years (1820-1880)")


def test_ask_text_output(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    code, out, _ = run(capsys, "ask", QUESTION, *cli_index)
    assert code == 0
    assert "Marta Quell" in out and "[1] The Harbour of Fenwick › Early years (1820-1880) (harbour-history.txt, chars " in out


def test_ask_cleans_control_characters_and_still_answers(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    code, out, err = run(capsys, "ask", "Who\x00 led the\x07 Harbour\tCommittee?\x1b", "--json", *cli_index)
    assert (code, err) == (0, "")
    a = json.loads(out)
    assert a["question"] == "Who led the Harbour Committee?"
    assert not a["abstained"] and "Marta Quell" in a["answer"]


@pytest.mark.parametrize(
    ("question", "fragment"),
    [
        ("", "the question is empty"),
        ("   \t\n  ", "the question is empty"),
        ("\x00\x01\x02", "the question is empty"),
        ("x" * 100_000, "the question is too long (100,000 characters; the limit is 2,000)"),
    ],
    ids=["empty", "whitespace", "only control characters", "100 KB"],
)
def test_ask_bad_question_one_line_exit_2(capsys: pytest.CaptureFixture[str], cli_index: list[str], question: str, fragment: str) -> None:
    code, out, err = run(capsys, "ask", question, "--json", *cli_index)
    assert code == 2 and out == ""
    assert_one_line_error(err, fragment)


def test_search_empty_question_is_exit_2(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    code, out, err = run(capsys, "search", "  ", *cli_index)
    assert code == 2 and out == ""
    assert_one_line_error(err, "the question is empty")


def test_ask_without_question_or_batch(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    code, _, err = run(capsys, "ask", *cli_index)
    assert code == 2
    assert_one_line_error(err, "give a question, or --batch FILE")


@pytest.mark.parametrize("command", [["ask", QUESTION], ["search", QUESTION], ["ask", "--batch", "-"]])
def test_missing_index_one_line_exit_1(capsys: pytest.CaptureFixture[str], make_corpus, tmp_path: Path, command: list[str]) -> None:  # noqa: ANN001
    missing = tmp_path / "no-index"
    code, out, err = run(capsys, *command, "--index", str(missing), "--corpus", str(make_corpus()), "--model", FAKE_MODEL)
    assert code == 1 and out == ""
    assert_one_line_error(err, f"no index at {missing}", "leftqa index")


def test_model_mismatch_one_line_exit_1(capsys: pytest.CaptureFixture[str], cli_index: list[str]) -> None:
    args = [a if a != FAKE_MODEL else "hash:32" for a in cli_index]
    code, out, err = run(capsys, "ask", QUESTION, *args)
    assert code == 1 and out == ""
    assert_one_line_error(err, "built with model 'hash:64' but 'hash:32' is configured", "leftqa index")


def test_corpus_changed_warns_once_and_answers_from_the_index(capsys: pytest.CaptureFixture[str], make_corpus, tmp_path: Path) -> None:  # noqa: ANN001
    corpus = make_corpus()
    args = ["--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--model", FAKE_MODEL]
    assert run(capsys, "index", "-q", *args)[0] == 0
    (corpus / "harbour-history.txt").write_text(HARBOUR_TXT.replace("Marta Quell", "Marta Quill"), encoding="utf-8")
    code, out, err = run(capsys, "ask", QUESTION, *args)
    assert code == 0 and "Marta Quell" in out  # the passages it holds are still valid quotes
    assert err == (
        f"warning: the corpus {corpus} changed since the index was built (0 files added, 1 changed, 0 removed); "
        f"answering from the index as built; run `leftqa index --corpus {corpus} --index {tmp_path / 'idx'}` to update it\n"
    )


# --- batch mode ----------------------------------------------------------------------------------------------------

BATCH = [
    json.dumps({"question": QUESTION}),
    "{not json",
    json.dumps({"question": "When was the lighthouse at Fenwick Point first lit?"}),
    json.dumps({"question": "What did she organise?", "history": [QUESTION]}),
    json.dumps({"question": "   "}),
    json.dumps(["not", "an", "object"]),
    json.dumps({"question": "Who led the strike?", "history": "not a list"}),
    json.dumps({"question": "Who led the strike in Aldmoor?"}),
]


def check_batch(lines: list[str]) -> None:
    out = [json.loads(line) for line in lines]
    assert len(out) == len(BATCH)
    check_answer(out[0], QUESTION)
    assert "Marta Quell" in out[0]["answer"]
    assert out[1]["line"] == 2 and out[1]["error"].startswith("invalid JSON")
    check_answer(out[2], "When was the lighthouse at Fenwick Point first lit?")
    assert "March 1887" in out[2]["answer"]
    check_answer(out[3], "What did she organise?")
    assert out[3]["query"] != out[3]["question"] and "Harbour Committee" in out[3]["query"]  # follow-up resolved
    assert out[4] == {"line": 5, "error": "the question is empty; type a question about the corpus"}
    assert out[5] == {"line": 6, "error": 'each line must be a JSON object with a "question" string'}
    assert out[6] == {"line": 7, "error": '"history" must be a list of earlier questions (strings)'}
    check_answer(out[7], "Who led the strike in Aldmoor?")
    assert "Hester Vane" in out[7]["answer"]


def test_batch_file(capsys: pytest.CaptureFixture[str], cli_index: list[str], tmp_path: Path) -> None:
    batch = tmp_path / "questions.jsonl"
    batch.write_text("\n".join(BATCH) + "\n\n", encoding="utf-8")  # a trailing blank line yields no output
    code, out, err = run(capsys, "ask", "--json", "--batch", str(batch), *cli_index)
    assert code == 1  # some lines failed; the others were still answered
    assert err == ""
    check_batch(out.splitlines())


def test_batch_stdin(capsys: pytest.CaptureFixture[str], cli_index: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(BATCH) + "\n"))
    code, out, err = run(capsys, "ask", "--json", "--batch", "-", *cli_index)
    assert (code, err) == (1, "")
    check_batch(out.splitlines())


def test_batch_all_good_exits_0(capsys: pytest.CaptureFixture[str], cli_index: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(BATCH[0] + "\n" + BATCH[2] + "\n"))
    code, out, _ = run(capsys, "ask", "--json", "--batch", "-", *cli_index)
    assert code == 0
    assert [json.loads(line)["question"] for line in out.splitlines()] == [QUESTION, "When was the lighthouse at Fenwick Point first lit?"]


def test_batch_deeply_nested_line_is_an_error_object(capsys: pytest.CaptureFixture[str], cli_index: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("[" * 100_000 + "\n" + BATCH[0] + "\n"))
    code, out, _ = run(capsys, "ask", "--json", "--batch", "-", *cli_index)
    first, second = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert first["line"] == 1 and first["error"].startswith("invalid JSON")
    assert second["question"] == QUESTION


@pytest.mark.parametrize("content", [None, b"\xff\xfe\x00q\x00"], ids=["missing file", "not UTF-8"])
def test_unreadable_batch_file_one_line_exit_1(capsys: pytest.CaptureFixture[str], cli_index: list[str], tmp_path: Path, content) -> None:  # noqa: ANN001
    batch = tmp_path / "batch.jsonl"
    if content is not None:
        batch.write_bytes(content)
    code, out, err = run(capsys, "ask", "--json", "--batch", str(batch), *cli_index)
    assert code == 1 and out == ""
    assert_one_line_error(err, f"cannot read batch file {batch}")


# --- help and light imports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["index"], ["search"], ["ask"], ["serve"], ["eval"], ["calibrate"]])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith("usage: leftqa")
    assert "--index" in out or not command


def test_importing_leftqa_stays_light() -> None:
    heavy = ("torch", "faiss", "gradio", "sentence_transformers", "transformers", "onnxruntime", "bm25s", "pysbd")
    code = (
        "import sys, leftqa, leftqa.app.cli, leftqa.qa.assistant; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
        "print(','.join(loaded))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_console_script_runs_as_a_subprocess(tmp_path: Path) -> None:
    """The installed `leftqa` entry point, fake model: index then ask, no traceback anywhere."""
    exe = Path(sys.executable).with_name("leftqa")
    corpus = write_files(tmp_path / "corpus", TINY_CORPUS)
    args = ["--corpus", str(corpus), "--index", str(tmp_path / "index"), "--model", FAKE_MODEL]
    env = subprocess_env()
    built = subprocess.run([str(exe), "index", "-q", *args], capture_output=True, text=True, env=env, timeout=300)
    assert built.returncode == 0, built.stderr
    asked = subprocess.run([str(exe), "ask", "", *args], capture_output=True, text=True, env=env, timeout=300)
    assert asked.returncode == 2
    assert asked.stderr == "leftqa: error: the question is empty; type a question about the corpus\n"
    asked = subprocess.run([str(exe), "ask", "--json", QUESTION, *args], capture_output=True, text=True, env=env, timeout=300)
    assert asked.returncode == 0 and "Traceback" not in asked.stderr
    check_answer(json.loads(asked.stdout), QUESTION)


@pytest.mark.parametrize("value", ["0", "1.5", "lots"])
def test_a_false_abstention_bound_outside_zero_and_one_is_a_usage_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, out, err = run(capsys, "calibrate", "--false-abstention-bound", value)
    assert code == 2 and out == "" and "Traceback" not in err
    assert "argument --false-abstention-bound" in err and ("not between 0 and 1" in err or "not a number" in err)
