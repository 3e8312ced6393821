"""`leftqa eval`: ask the cases through the Assistant, score and aggregate them per group, report, gate on a baseline."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Sequence

from leftqa.config import MODES
from leftqa.errors import EvalError, LeftQAError
from leftqa.evals import metrics as m
from leftqa.evals.cases import (
    GROUPS,
    HITS,
    SHOWN_PASSAGES,
    STYLES,
    TEST,
    TUNING,
    Case,
    CaseResult,
    EvalRun,
    K,
    Retrieved,
    cases_digest,
    relevant_passages,
)
from leftqa.qa.assistant import Assistant
from leftqa.records import Answer

# ------------------------------------------------------------------------------------------- scoring


def score_case(case: Case, answer: Answer, relevant: frozenset[str], mode: str, history: tuple[str, ...], latency_ms: float) -> CaseResult:
    """Per-case outcome of one answer: relevant ranks (by evidence in passage text), answer match, citations."""
    hits = answer.passages[:K]
    ranks = m.relevant_ranks([h.text for h in hits], case.expected)
    answer_ok = None
    if case.answers:
        answer_ok = not answer.abstained and m.contains_answer(answer.answer, case.answers)
    cited = [c.passage_id in relevant for c in answer.citations]
    precision = m.share(cited) if cited else None
    problems: list[str] = []
    if case.answerable:
        if not ranks:
            problems.append(f"no relevant passage in the top {K}")
        elif ranks[0] > 1:
            problems.append(f"first relevant passage at rank {ranks[0]}")
        if answer.abstained:
            problems.append("abstained on an answerable question")
        elif answer_ok is False:
            problems.append("answer lacks " + " / ".join(repr(a) for a in case.answers))
        if precision is not None and precision < 1.0:
            problems.append(f"cited {cited.count(False)} irrelevant passage(s)")
    elif not answer.abstained:
        problems.append("answered instead of abstaining")
    shown = tuple(
        Retrieved(h.rank, h.passage_id, h.title, h.section, " ".join(h.text.split())[:240], h.rank in ranks)
        for h in hits[:SHOWN_PASSAGES]
    )
    return CaseResult(
        id=case.id, group=case.group, mode=mode, question=case.question, history=history, query=answer.query,
        ranks=ranks, n_relevant=len(relevant), abstained=answer.abstained, answer=answer.answer, answer_ok=answer_ok,
        citation_precision=precision, latency_ms=round(latency_ms, 3), problems=tuple(problems), retrieved=shown,
        expected=case.expected, answers=case.answers, source=case.source, split=case.split, style=case.style,
        sentences=0 if answer.abstained else sum(len(c.highlights) for c in answer.citations),
    )


def summarise(results: Sequence[CaseResult]) -> dict[str, dict[str, float]]:
    """Metrics per group (overall, single, followup, unanswerable); with more than one split, also per split
    ("test/single"), per split and style ("test/style:alias"), and the test − tuning gap ("gap/overall")."""
    out = _groups(results, "")
    splits = list(dict.fromkeys(sorted((r.split for r in results), key=lambda s: (s != TUNING, s != TEST, s))))
    if len(splits) > 1:
        for split in splits:
            rs = [r for r in results if r.split == split]
            out.update(_groups(rs, f"{split}/"))
            for style in STYLES:
                styled = [r for r in rs if r.style == style]
                if styled:
                    out[f"{split}/style:{style}"] = _groups(styled, "")["overall"]
        if TUNING in splits and TEST in splits:
            for group in GROUPS:
                a, b = out.get(f"{TUNING}/{group}"), out.get(f"{TEST}/{group}")
                if a and b:
                    out[f"gap/{group}"] = {k: round(b[k] - a[k], 6) for k in a if k in b and k != "n" and not k.startswith("latency")}
    return out


def _groups(results: Sequence[CaseResult], prefix: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for group in GROUPS:
        rs = [r for r in results if group == "overall" or r.group == group]
        if not rs:
            continue
        answerable = [r for r in rs if r.group != "unanswerable"]
        unanswerable = [r for r in rs if r.group == "unanswerable"]
        row: dict[str, float] = {"n": len(rs)}
        if answerable:
            for k in HITS:
                row[f"hit@{k}"] = m.mean([m.hit_at(r.ranks, k) for r in answerable])
            row["mrr@10"] = m.mean([m.reciprocal_rank(r.ranks, K) for r in answerable])
            row["ndcg@10"] = m.mean([m.ndcg(r.ranks, r.n_relevant, K) for r in answerable])
            with_answer = [r.answer_ok for r in answerable if r.answer_ok is not None]
            if with_answer:
                row["answer@1"] = m.share(with_answer)
            precisions = [r.citation_precision for r in answerable if r.citation_precision is not None]
            if precisions:
                row["citation_precision"] = m.mean(precisions)
            row["false_abstention"] = m.share([r.abstained for r in answerable])
            answered = [r.sentences for r in answerable if not r.abstained]
            if answered:
                row["sentences_per_answer"] = m.mean([float(n) for n in answered])
        if unanswerable:
            row["abstention_recall"] = m.share([r.abstained for r in unanswerable])
        latencies = [r.latency_ms for r in rs]
        row["latency_p50_ms"] = m.percentile(latencies, 50)
        row["latency_p95_ms"] = m.percentile(latencies, 95)
        out[prefix + group] = {k: round(v, 6) for k, v in row.items()}
    return out


def run_cases(assistant: Assistant, cases: Sequence[Case], relevant: dict[str, frozenset[str]], mode: str, use_history: bool = True) -> list[CaseResult]:
    """Ask every case in one mode (follow-ups without their history when use_history is False)."""
    results = []
    for case in cases:
        history = case.history if use_history else ()
        t0 = time.perf_counter()
        try:
            answer = assistant.ask(case.question, history, mode=mode)
        except LeftQAError as exc:
            raise EvalError(f"{case.source} (case {case.id}): {exc}") from None
        wall = (time.perf_counter() - t0) * 1000
        latency = answer.elapsed_ms or wall
        result = score_case(case, answer, relevant[case.id], mode, history, latency)
        # Where the case sits on the policy's trade-off curve, for refusal against false abstention per style.
        decision = {"decision_score": assistant.policy.score(answer.evidence), "forced": assistant.policy.forced(answer.evidence)}
        results.append(replace(result, **decision))
    return results


def evaluate(assistant: Assistant, cases: Sequence[Case], modes: Sequence[str], use_history: bool = True, meta: dict[str, Any] | None = None) -> EvalRun:
    """Validate the cases against the assistant's index, run them in each mode and aggregate."""
    for mode in modes:
        if mode not in MODES:
            raise EvalError(f"unknown mode {mode!r}; choose from {', '.join(MODES)} or all")
    relevant = relevant_passages(cases, assistant.index.passages)
    results = {mode: run_cases(assistant, cases, relevant, mode, use_history) for mode in modes}
    manifest = assistant.index.manifest
    info = {
        "model": manifest.model,
        "embedder": manifest.embedder,
        "passages": assistant.index.size,
        "corpus_fingerprint": manifest.corpus_fingerprint,
        "calibration": _calibration_source(assistant),
        "modes": list(modes),
        "history": use_history,
        "k": K,
        "n_cases": len(cases),
        "cases_digest": cases_digest(cases),
        **(meta or {}),
    }
    return EvalRun(info, {mode: summarise(rs) for mode, rs in results.items()}, results)


def _calibration_source(assistant: Assistant) -> str:
    """Where the assistant's abstention thresholds came from ("default", `leftqa calibrate` …), for the record."""
    return assistant.policy.source or "unknown"
