"""The eval suite: load and check cases, ask them through the Assistant, aggregate per group, gate on a baseline."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import metrics as m
from .config import MODES, Settings
from .errors import EvalError, LeftQAError
from .records import Answer, Passage
from .text import normalise

EVALS_DIR = Path("evals")
K = 10  # retrieval metrics look at the top 10 passages
HITS = (1, 3, 5, 10)
GROUPS = ("overall", "single", "followup", "unanswerable")
CASE_KEYS = ("id", "question", "expected", "answer", "history", "answerable")
SHOWN_PASSAGES = 3  # retrieved passages kept per case for the failure report


@dataclass(frozen=True)
class Case:
    """One eval question with the evidence that answers it (or none, when it must be abstained on)."""

    id: str
    question: str
    expected: tuple[str, ...]
    answers: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    answerable: bool = True
    source: str = ""  # file:line, for messages

    @property
    def group(self) -> str:
        """single, followup or unanswerable."""
        if not self.answerable:
            return "unanswerable"
        return "followup" if self.history else "single"


@dataclass(frozen=True)
class Retrieved:
    """A retrieved passage as shown in failure reports."""

    rank: int
    passage_id: str
    title: str
    section: str
    snippet: str
    relevant: bool


@dataclass(frozen=True)
class CaseResult:
    """How one case went in one mode: ranks of relevant passages, answer and abstention outcome, problems."""

    id: str
    group: str
    mode: str
    question: str
    history: tuple[str, ...]
    query: str
    ranks: tuple[int, ...]  # 1-based ranks of relevant passages in the top K
    n_relevant: int  # relevant passages in the whole index
    abstained: bool
    answer: str
    answer_ok: bool | None  # None when the case names no answer
    citation_precision: float | None  # None when nothing was cited
    latency_ms: float
    problems: tuple[str, ...]
    retrieved: tuple[Retrieved, ...]
    expected: tuple[str, ...]
    answers: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class EvalRun:
    """Metrics per mode and group, every case result, and what the run was made with."""

    meta: dict[str, Any]
    metrics: dict[str, dict[str, dict[str, float]]]
    results: dict[str, list[CaseResult]] = field(default_factory=dict)

    def to_dict(self, cases: bool = True) -> dict[str, Any]:
        """JSON-ready dict; `cases=False` leaves out the per-case results."""
        out: dict[str, Any] = {"meta": self.meta, "metrics": self.metrics}
        if cases:
            out["cases"] = {mode: [asdict(r) for r in rs] for mode, rs in self.results.items()}
        return out


# ---------------------------------------------------------------------------------------------- cases


def _strings(value: object, name: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise EvalError(f"{where}: {name!r} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def parse_case(obj: object, where: str) -> Case:
    """A Case from one decoded JSON line; EvalError naming `where` (file:line and id) when malformed."""
    if not isinstance(obj, dict):
        raise EvalError(f"{where}: each line must be a JSON object")
    cid = obj.get("id")
    if not isinstance(cid, str) or not cid.strip():
        raise EvalError(f"{where}: 'id' must be a non-empty string")
    source, where = where, f"{where} (case {cid})"
    unknown = sorted(set(obj) - set(CASE_KEYS))
    if unknown:
        raise EvalError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(CASE_KEYS)}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalError(f"{where}: 'question' must be a non-empty string")
    answerable = obj.get("answerable", True)
    if not isinstance(answerable, bool):
        raise EvalError(f"{where}: 'answerable' must be true or false")
    expected = _strings(obj.get("expected", []), "expected", where)
    if answerable and not expected:
        raise EvalError(f"{where}: an answerable case needs at least one 'expected' evidence snippet")
    if not answerable and expected:
        raise EvalError(f"{where}: an unanswerable case must have an empty 'expected'")
    answers = _strings(obj["answer"], "answer", where) if obj.get("answer") is not None else ()
    if answers and not answerable:
        raise EvalError(f"{where}: an unanswerable case cannot have an 'answer'")
    history = _strings(obj.get("history", []), "history", where)
    return Case(cid.strip(), question.strip(), expected, answers, history, answerable, source)


def load_cases(paths: Sequence[Path]) -> list[Case]:
    """Cases from JSON Lines files, in file order; EvalError for unreadable files, bad lines or duplicate ids."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            lines = Path(path).read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise EvalError(f"cannot read case file {path}: {exc}") from None
        before = len(cases)
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise EvalError(f"{where}: invalid JSON ({exc})") from None
            case = parse_case(obj, where)
            if case.id in seen:
                raise EvalError(f"{where}: duplicate case id {case.id!r} (first at {seen[case.id]})")
            seen[case.id] = where
            cases.append(case)
        if len(cases) == before:
            raise EvalError(f"case file {path} holds no cases")
    return cases


def default_case_files(evals_dir: Path = EVALS_DIR, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every *.jsonl in the evals folder except excluded files (the UI's feedback log)."""
    skip = {Path(p).resolve() for p in exclude}
    files = [p for p in sorted(Path(evals_dir).glob("*.jsonl")) if p.resolve() not in skip]
    if not files:
        raise EvalError(f"no case files (*.jsonl) in {evals_dir}; pass --cases FILE")
    return files


def relevant_passages(cases: Sequence[Case], passages: Sequence[Passage]) -> dict[str, frozenset[str]]:
    """Case id -> ids of the passages holding its evidence; EvalError for evidence found in no passage."""
    texts = [(p.id, normalise(p.text)) for p in passages]
    out: dict[str, frozenset[str]] = {}
    for case in cases:
        ids: set[str] = set()
        for snippet in case.expected:
            needle = normalise(snippet)
            found = {pid for pid, text in texts if needle in text}
            if not found:
                raise EvalError(
                    f"{case.source} (case {case.id}): evidence {snippet[:80]!r} occurs in no passage of the index; "
                    "fix the case or rebuild the index"
                )
            ids |= found
        out[case.id] = frozenset(ids)
    return out


def cases_digest(cases: Sequence[Case]) -> str:
    """Content hash of the cases (tells a baseline whether it was made on the same cases)."""
    blob = json.dumps([[c.id, c.question, c.expected, c.answers, c.history, c.answerable] for c in cases])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


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
        expected=case.expected, answers=case.answers, source=case.source,
    )


def summarise(results: Sequence[CaseResult]) -> dict[str, dict[str, float]]:
    """Metrics per group (overall, single, followup, unanswerable); a metric appears only where it applies."""
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
        if unanswerable:
            row["abstention_recall"] = m.share([r.abstained for r in unanswerable])
        latencies = [r.latency_ms for r in rs]
        row["latency_p50_ms"] = m.percentile(latencies, 50)
        row["latency_p95_ms"] = m.percentile(latencies, 95)
        out[group] = {k: round(v, 6) for k, v in row.items()}
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
        "model": manifest.get("model"),
        "embedder": manifest.get("embedder"),
        "passages": assistant.index.size,
        "corpus_fingerprint": manifest.get("corpus_fingerprint"),
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


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -------------------------------------------------------------------------------------------- command


def _resolve_case_files(args: Any, settings: Settings) -> list[Path]:
    if getattr(args, "cases", None):
        return [Path(p) for p in args.cases]
    return default_case_files(EVALS_DIR, exclude=[settings.feedback_path])


def run_eval_command(args: Any, settings: Settings) -> int:
    """`leftqa eval`: run the cases, print or write metrics, export BEIR, write or check the baseline."""
    from .evalgate import TOLERANCE, check_run, make_baseline, read_baseline
    from .evalreport import export_beir, format_table, write_report

    if args.check and args.write_baseline:
        raise EvalError("use either --check or --write-baseline, not both")
    files = _resolve_case_files(args, settings)
    cases = load_cases(files)
    settings = settings.with_(top_k=max(settings.top_k, K))
    if getattr(args, "export_beir", None):
        from .index import Index

        index = Index.load(Path(settings.index_dir))
        counts = export_beir(cases, index.passages, relevant_passages(cases, index.passages), Path(args.export_beir))
        print(f"wrote BEIR layout to {args.export_beir}: {counts['corpus']} passages, {counts['queries']} queries, {counts['qrels']} qrels")
        return 0
    from .chat import Assistant

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
