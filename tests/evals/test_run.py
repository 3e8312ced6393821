"""`leftqa eval`: per-case scoring, aggregation per group, split and style, and the eval command's options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaltiny import eval_args, tiny  # noqa: F401 - tiny is a fixture

from leftqa.app.cli import main
from leftqa.evals import run as ev
from leftqa.records import Answer, Citation, Hit

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


def test_no_history_asks_followups_alone(tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(eval_args(tiny, "hash:64", "--no-history", "--report", str(tmp_path))) == 0
    cases = json.loads((tmp_path / "report.json").read_text("utf-8"))["cases"]["hybrid"]
    f1 = next(c for c in cases if c["id"] == "f1")
    assert (f1["history"], f1["query"]) == ([], "Who built it?")
    assert "follow-ups asked WITHOUT history" in capsys.readouterr().out
