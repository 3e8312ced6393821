"""The eval suite: case validation, per-case scoring, aggregation, reports, BEIR export and the baseline gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leftqa.app.cli import main
from leftqa.errors import EvalError
from leftqa.evals import gate as evalgate
from leftqa.evals import run as ev
from leftqa.records import Answer, Citation, Hit, Passage, Sentence

CORPUS = """Field notes

Bees

Honey bees live in colonies ruled by a single queen who lays every egg of the hive. Worker bees gather nectar from clover and lavender, store it in wax combs, and fan it with their wings until it thickens into honey. A strong colony holds about forty thousand workers in summer.

Lighthouses

The Bell Rock Lighthouse stands on a reef off the coast of Angus in Scotland. Robert Stevenson completed it in 1810 after four years of work by masons who could only build at low tide. Its lamp was first lit on a winter night, and it remains the oldest sea-washed lighthouse still in service.

Volcanoes

Mount Tambora on the island of Sumbawa erupted violently in April 1815. Ash from the eruption darkened skies around the world, and the following year became known in Europe and North America as the year without a summer, when frosts in June ruined harvests across New England.

Chess

The knight is the only chess piece that can jump over other pieces. It moves in an L shape, two squares in one direction and then one square at a right angle. Beginners often underestimate the knight, but in closed positions full of pawns it can be stronger than a bishop.
"""

CASES = [
    {"id": "s1", "question": "Who lays the eggs in a honey bee colony?", "expected": ["ruled by a single queen who lays every egg of the hive"], "answer": "queen"},
    {"id": "s2", "question": "When was the Bell Rock Lighthouse completed?", "expected": ["Robert Stevenson completed it in 1810"], "answer": "1810"},
    {"id": "s3", "question": "When did Mount Tambora erupt?", "expected": ["erupted violently in April 1815"], "answer": "1815"},
    {"id": "s4", "question": "Which chess piece can jump over other pieces?", "expected": ["The knight is the only chess piece that can jump over other pieces"], "answer": "knight"},
    {"id": "f1", "question": "Who built it?", "history": ["Where does the Bell Rock Lighthouse stand?"], "expected": ["Robert Stevenson completed it in 1810"], "answer": "Robert Stevenson"},
    {"id": "u1", "question": "What is the boiling point of mercury?", "expected": [], "answerable": False},
]


def write_cases(path: Path, cases: list[dict]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A four-topic corpus indexed with the hash:64 fake and with the deliberately poor hash:1 fake."""
    from leftqa.config import Settings
    from leftqa.index.builder import build_index
    from leftqa.index.embed import load_embedder

    root = tmp_path_factory.mktemp("eval")
    (root / "corpus").mkdir()
    (root / "corpus" / "notes.txt").write_text(CORPUS, encoding="utf-8")
    for model in ("hash:64", "hash:1"):
        settings = Settings(corpus_dir=root / "corpus", index_dir=root / model.replace(":", ""), model=model)
        build_index(settings, load_embedder(model))
    return {"root": root, "corpus": root / "corpus", "cases": write_cases(root / "cases.jsonl", CASES)}


def eval_args(tiny: dict[str, Path], model: str = "hash:64", *extra: str) -> list[str]:
    index = tiny["root"] / model.replace(":", "")
    return ["eval", "--cases", str(tiny["cases"]), "--corpus", str(tiny["corpus"]), "--index", str(index), "--model", model, *extra]


# ---------------------------------------------------------------------------------------- case files


def test_load_cases_reads_every_field(tmp_path: Path) -> None:
    path = write_cases(tmp_path / "c.jsonl", CASES)
    cases = ev.load_cases([path])
    assert [c.id for c in cases] == ["s1", "s2", "s3", "s4", "f1", "u1"]
    assert [c.group for c in cases] == ["single"] * 4 + ["followup", "unanswerable"]
    assert cases[4] == ev.Case(
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
        ev.load_cases([path])
    assert f"{path}:3" in str(err.value)
    assert message in str(err.value)


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    a = write_cases(tmp_path / "a.jsonl", CASES[:2])
    b = write_cases(tmp_path / "b.jsonl", [CASES[1]])
    with pytest.raises(EvalError, match=rf"{b}:1: duplicate case id 's2' \(first at {a}:2\)"):
        ev.load_cases([a, b])


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_a_file_without_cases_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalError, match="holds no cases"):
        ev.load_cases([path])


def test_default_case_files_skip_the_feedback_log(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl", "feedback.jsonl", "baseline.json"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert ev.default_case_files(tmp_path, exclude=[tmp_path / "feedback.jsonl"]) == [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with pytest.raises(EvalError, match="no case files"):
        ev.default_case_files(tmp_path / "missing")


def passage(pid: str, text: str) -> Passage:
    return Passage(pid, "d.txt", "Doc", "Intro", 0, len(text), text, (Sentence(text, 0, len(text), 0, len(text)),))


def test_relevant_passages_match_normalised_evidence_and_refuse_missing_evidence() -> None:
    passages = [passage("p1", "The party’s  Left\nOpposition grew."), passage("p2", "Nothing."), passage("p3", "the party's left opposition")]
    case = ev.Case("c1", "q?", ("the PARTY'S left opposition",), source="x.jsonl:7")
    assert ev.relevant_passages([case], passages) == {"c1": frozenset({"p1", "p3"})}
    missing = ev.Case("c2", "q?", ("the party's left opposition", "Kronstadt"), source="x.jsonl:9")
    with pytest.raises(EvalError, match=r"x.jsonl:9 \(case c2\): evidence 'Kronstadt' occurs in no passage"):
        ev.relevant_passages([case, missing], passages)


# ------------------------------------------------------------------------------------------- scoring


def hit(rank: int, pid: str, text: str) -> Hit:
    return Hit(rank, pid, "d.txt", "Doc", "Intro", text, 1.0 / rank, 0, len(text))


def citation(n: int, pid: str) -> Citation:
    return Citation(n, pid, "d.txt", "Doc", "Intro", 0, 1, "quote")


def make_answer(hits: list[Hit], text: str, cited: list[str], abstained: bool = False) -> Answer:
    citations = tuple(citation(i, pid) for i, pid in enumerate(cited, start=1))
    return Answer("q?", "q?", abstained, text, citations, tuple(hits), "hybrid", elapsed_ms=12.5)


HITS3 = [hit(1, "p1", "Nothing relevant."), hit(2, "p2", "She died in 1940 in Toronto."), hit(3, "p3", "Also: she died in 1940.")]


def test_score_case_ranks_answer_and_citations() -> None:
    case = ev.Case("c1", "When did she die?", ("died in 1940",), ("1940",))
    r = ev.score_case(case, make_answer(HITS3, "She died in 1940 in Toronto. [1]", ["p2", "p1"]), frozenset({"p2", "p3"}), "hybrid", (), 12.5)
    assert (r.ranks, r.n_relevant, r.answer_ok, r.citation_precision, r.abstained) == ((2, 3), 2, True, 0.5, False)
    assert r.problems == ("first relevant passage at rank 2", "cited 1 irrelevant passage(s)")
    assert [(p.rank, p.relevant) for p in r.retrieved] == [(1, False), (2, True), (3, True)]


def test_an_abstention_misses_the_answer_even_if_the_text_holds_it() -> None:
    case = ev.Case("c1", "When did she die?", ("died in 1940",), ("1940",))
    r = ev.score_case(case, make_answer(HITS3, "1940", [], abstained=True), frozenset({"p2", "p3"}), "hybrid", (), 3.0)
    assert (r.answer_ok, r.citation_precision) == (False, None)
    assert r.problems == ("first relevant passage at rank 2", "abstained on an answerable question")


@pytest.mark.parametrize(("abstained", "problems"), [(True, ()), (False, ("answered instead of abstaining",))])
def test_unanswerable_cases_must_abstain(abstained: bool, problems: tuple[str, ...]) -> None:
    case = ev.Case("u1", "Boiling point of mercury?", (), answerable=False)
    r = ev.score_case(case, make_answer(HITS3, "x", [] if abstained else ["p1"], abstained), frozenset(), "bm25", (), 1.0)
    assert (r.group, r.ranks, r.answer_ok, r.problems) == ("unanswerable", (), None, problems)


def result(group: str, ranks: tuple[int, ...] = (), ok: bool | None = None, abstained: bool = False, precision: float | None = None, ms: float = 10.0, n_rel: int = 1, sentences: int = 1) -> ev.CaseResult:
    return ev.CaseResult("x", group, "hybrid", "q", (), "q", ranks, n_rel, abstained, "", ok, precision, ms, (), (), (), (), "", sentences=sentences)


def test_summarise_per_group_and_overall() -> None:
    results = [
        result("single", (1,), True, precision=1.0, ms=10),
        result("single", (4,), False, precision=0.5, ms=20, sentences=2),
        result("single", (), None, abstained=True, ms=30, sentences=0),
        result("followup", (2, 3), True, precision=1.0, ms=40, n_rel=2),
        result("unanswerable", abstained=True, ms=50),
        result("unanswerable", abstained=False, ms=60),
    ]
    s = ev.summarise(results)
    assert s["single"] == {
        "n": 3.0, "hit@1": round(1 / 3, 6), "hit@3": round(1 / 3, 6), "hit@5": round(2 / 3, 6), "hit@10": round(2 / 3, 6),
        "mrr@10": round((1 + 0.25) / 3, 6), "ndcg@10": round((1 + 1 / 2.321928094887362) / 3, 6), "answer@1": 0.5,
        "citation_precision": 0.75, "false_abstention": round(1 / 3, 6), "sentences_per_answer": 1.5,
        "latency_p50_ms": 20.0, "latency_p95_ms": 29.0,
    }
    assert s["followup"]["hit@1"] == 0.0 and s["followup"]["mrr@10"] == 0.5
    assert s["unanswerable"] == {"n": 2.0, "abstention_recall": 0.5, "latency_p50_ms": 55.0, "latency_p95_ms": 59.5}
    overall = s["overall"]
    assert (overall["n"], overall["hit@1"], overall["answer@1"], overall["false_abstention"], overall["abstention_recall"]) == (6.0, 0.25, round(2 / 3, 6), 0.25, 0.5)
    assert ev.summarise([result("unanswerable", abstained=True)]).keys() == {"overall", "unanswerable"}


def test_summarise_reports_each_split_its_styles_and_the_gap() -> None:
    def r(split: str, group: str, ok: bool, style: str = "", abstained: bool = False) -> ev.CaseResult:
        base = result(group, (1,) if group != "unanswerable" else (), ok if group != "unanswerable" else None, abstained)
        return ev.CaseResult(**{**base.__dict__, "split": split, "style": style})

    results = [
        r("tuning", "single", True, "alias"), r("tuning", "single", True, "alias"),
        r("test", "single", True, "alias"), r("test", "single", False, "descriptive", abstained=True),
        r("test", "unanswerable", False, "near-topic", abstained=True),
    ]  # fmt: skip
    s = ev.summarise(results)
    assert s["overall"]["n"] == 5 and s["tuning/single"]["answer@1"] == 1.0 and s["test/single"]["answer@1"] == 0.5
    assert s["gap/single"]["answer@1"] == -0.5 and s["gap/single"]["false_abstention"] == 0.5
    assert "n" not in s["gap/single"] and "gap/unanswerable" not in s  # no tuning unanswerable case to compare
    assert s["test/style:descriptive"]["false_abstention"] == 1.0 and s["test/style:near-topic"]["abstention_recall"] == 1.0
    assert s["tuning/style:alias"]["n"] == 2
    # one split: the plain groups only
    assert set(ev.summarise(results[:2])) == {"overall", "single"}


def test_the_case_file_names_the_split_and_styles_are_checked(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text('{"id": "a", "question": "q?", "expected": ["x"], "style": "alias"}\n')
    (tmp_path / "tuning.jsonl").write_text('{"id": "b", "question": "q?", "expected": ["x"]}\n')
    a, b = ev.load_cases([tmp_path / "test.jsonl", tmp_path / "tuning.jsonl"])
    assert (a.split, a.style, b.split, b.style) == ("test", "alias", "tuning", "")
    assert ev.default_case_files(tmp_path, tuning_only=True) == [tmp_path / "tuning.jsonl"]
    (tmp_path / "bad.jsonl").write_text('{"id": "c", "question": "q?", "expected": ["x"], "style": "clever"}\n')
    with pytest.raises(EvalError, match="unknown style 'clever'"):
        ev.load_cases([tmp_path / "bad.jsonl"])


def test_calibration_never_reads_the_locked_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "test.jsonl").write_text('{"id": "a", "question": "q?", "expected": ["x"]}\n')
    assert main(["calibrate", "--cases", str(tmp_path / "test.jsonl"), "--index", str(tmp_path / "none")]) == 1
    assert "the locked test split is never read by calibration" in capsys.readouterr().err


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


def test_no_history_asks_followups_alone(tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(eval_args(tiny, "hash:64", "--no-history", "--report", str(tmp_path))) == 0
    cases = json.loads((tmp_path / "report.json").read_text("utf-8"))["cases"]["hybrid"]
    f1 = next(c for c in cases if c["id"] == "f1")
    assert (f1["history"], f1["query"]) == ([], "Who built it?")
    assert "follow-ups asked WITHOUT history" in capsys.readouterr().out


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
