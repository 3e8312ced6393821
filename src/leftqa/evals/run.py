"""`leftqa eval`: ask the cases through the Assistant, score and aggregate them per group, report, gate on a baseline."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from leftqa.config import MODES, Settings
from leftqa.errors import EvalError, LeftQAError
from leftqa.evals import metrics as m
from leftqa.evals.cases import (
    EVALS_DIR,
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
    default_case_files,
    load_cases,
    relevant_passages,
)
from leftqa.evals.gate import TOLERANCE, check_run, make_baseline, read_baseline
from leftqa.evals.report import export_beir, format_table, write_report
from leftqa.files import write_json
from leftqa.index.store import Index
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


def run_cases(assistant: Any, cases: Sequence[Case], relevant: dict[str, frozenset[str]], mode: str, use_history: bool = True) -> list[CaseResult]:
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
        results.append(score_case(case, answer, relevant[case.id], mode, history, latency))
    return results


def evaluate(assistant: Any, cases: Sequence[Case], modes: Sequence[str], use_history: bool = True, meta: dict[str, Any] | None = None) -> EvalRun:
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


def _calibration_source(assistant: Any) -> str:
    """Where the assistant's abstention thresholds came from ("default", a file...), for the record."""
    calibration = getattr(assistant, "calibration", None)
    source = calibration.get("source") if isinstance(calibration, dict) else getattr(calibration, "source", None)
    return str(source or "unknown")


# -------------------------------------------------------------------------------------------- command


def _resolve_case_files(args: Any, settings: Settings) -> list[Path]:
    if getattr(args, "cases", None):
        return [Path(p) for p in args.cases]
    return default_case_files(EVALS_DIR, exclude=[settings.feedback_path])


def run_eval_command(args: Any, settings: Settings) -> int:
    """`leftqa eval`: run the cases, print or write metrics, export BEIR, write or check the baseline."""
    if args.check and args.write_baseline:
        raise EvalError("use either --check or --write-baseline, not both")
    files = _resolve_case_files(args, settings)
    cases = load_cases(files)
    settings = settings.with_(top_k=max(settings.top_k, K))
    if getattr(args, "export_beir", None):
        index = Index.load(Path(settings.index_dir))
        counts = export_beir(cases, index.passages, relevant_passages(cases, index.passages), Path(args.export_beir))
        print(f"wrote BEIR layout to {args.export_beir}: {counts['corpus']} passages, {counts['queries']} queries, {counts['qrels']} qrels")
        return 0
    modes = list(MODES) if args.mode == "all" else [args.mode or settings.mode]
    assistant = Assistant.load(settings)
    run = evaluate(assistant, cases, modes, use_history=not args.no_history, meta={"case_files": [str(p) for p in files]})
    if args.json:
        sys.stdout.write(json.dumps(run.to_dict(cases=False), ensure_ascii=False) + "\n")
    else:
        print(format_table(run))
    if args.report:
        paths = write_report(run, Path(args.report))
        print("report: " + ", ".join(str(p) for p in paths), file=sys.stderr)
    if args.write_baseline:
        write_json(Path(args.baseline), make_baseline(run))
        print(f"baseline written to {args.baseline} ({', '.join(modes)}; model {run.meta['model']})", file=sys.stderr)
    if args.check:
        baseline = read_baseline(Path(args.baseline))
        if baseline.get("model") != run.meta["model"]:
            print(f"note: {args.baseline} was made with model {baseline.get('model')}, this run uses {run.meta['model']}", file=sys.stderr)
        if baseline.get("cases_digest") != run.meta["cases_digest"]:
            print(f"note: the cases changed since {args.baseline} was written; refresh it with --write-baseline if intended", file=sys.stderr)
        regressions = check_run(baseline, run)
        tolerance = float(baseline.get("tolerance", TOLERANCE))
        if regressions:
            print(f"eval check FAILED: {len(regressions)} headline metric(s) dropped by more than {tolerance} against {args.baseline}:", file=sys.stderr)
            for line in regressions:
                print("  " + line, file=sys.stderr)
            return 1
        print(f"eval check passed: headline metrics within {tolerance} of {args.baseline}", file=sys.stderr)
    return 0
