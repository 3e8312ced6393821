"""`leftqa eval` and `leftqa calibrate`: the measuring commands, their printing and the files they write."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from leftqa.config import MODES, Settings
from leftqa.errors import EvalError


@dataclass(frozen=True)
class EvalRequest:
    """What `leftqa eval` was asked to do."""

    cases: tuple[Path, ...] = ()  # empty: every evals/*.jsonl
    mode: str | None = None  # a mode, "all", or None for the settings' mode
    json: bool = False
    report: Path | None = None
    check: bool = False
    write_baseline: bool = False
    baseline: Path | None = None  # None: the settings' baseline
    export_beir: Path | None = None
    history: bool = True


def case_files(settings: Settings, given: Sequence[Path] = (), tuning_only: bool = False) -> list[Path]:
    """The case files named, or every case file of the settings' evals folder (feedback excluded)."""
    from leftqa.evals.cases import default_case_files

    if given:
        return [Path(p) for p in given]
    return default_case_files(settings.evals_dir, exclude=[settings.feedback_path], tuning_only=tuning_only)


def eval_command(request: EvalRequest, settings: Settings) -> int:
    """Run the cases, print or write metrics, export BEIR, write or check the baseline; the exit status."""
    from leftqa.evals.cases import K, load_cases, relevant_passages
    from leftqa.evals.gate import TOLERANCE, check_run, make_baseline, read_baseline
    from leftqa.evals.report import export_beir, format_table, write_report
    from leftqa.evals.run import evaluate
    from leftqa.files import write_json
    from leftqa.index.store import Index
    from leftqa.qa.assistant import Assistant

    if request.check and request.write_baseline:
        raise EvalError("use either --check or --write-baseline, not both")
    files = case_files(settings, request.cases)
    cases = load_cases(files)
    settings = settings.with_(top_k=max(settings.top_k, K))
    if request.export_beir is not None:
        index = Index.load(Path(settings.index_dir))
        counts = export_beir(cases, index.passages, relevant_passages(cases, index.passages), request.export_beir)
        print(f"wrote BEIR layout to {request.export_beir}: {counts['corpus']} passages, {counts['queries']} queries, {counts['qrels']} qrels")
        return 0
    modes = list(MODES) if request.mode == "all" else [request.mode or settings.mode]
    assistant = Assistant.load(settings)
    run = evaluate(assistant, cases, modes, use_history=request.history, meta={"case_files": [str(p) for p in files]})
    if request.json:
        sys.stdout.write(json.dumps(run.to_dict(cases=False), ensure_ascii=False) + "\n")
    else:
        print(format_table(run))
    if request.report is not None:
        paths = write_report(run, request.report)
        print("report: " + ", ".join(str(p) for p in paths), file=sys.stderr)
    baseline_path = request.baseline or settings.baseline_path
    if request.write_baseline:
        write_json(baseline_path, make_baseline(run))
        print(f"baseline written to {baseline_path} ({', '.join(modes)}; model {run.meta['model']})", file=sys.stderr)
    if request.check:
        baseline = read_baseline(baseline_path)
        if baseline.get("model") != run.meta["model"]:
            print(f"note: {baseline_path} was made with model {baseline.get('model')}, this run uses {run.meta['model']}", file=sys.stderr)
        if baseline.get("cases_digest") != run.meta["cases_digest"]:
            print(f"note: the cases changed since {baseline_path} was written; refresh it with --write-baseline if intended", file=sys.stderr)
        regressions = check_run(baseline, run)
        tolerance = float(baseline.get("tolerance", TOLERANCE))
        if regressions:
            print(f"eval check FAILED: {len(regressions)} headline metric(s) dropped by more than {tolerance} against {baseline_path}:", file=sys.stderr)
            for line in regressions:
                print("  " + line, file=sys.stderr)
            return 1
        print(f"eval check passed: headline metrics within {tolerance} of {baseline_path}", file=sys.stderr)
    return 0


def calibrate_command(settings: Settings, cases: Sequence[Path] = (), how: str = "keep", bound: float | None = None) -> int:
    """Fit abstention on the tuning cases, write the calibration beside the scorer (or where the settings say) and
    print the trade-off curve."""
    from leftqa.evals.calibrate import calibrate
    from leftqa.evals.cases import TEST, load_cases
    from leftqa.qa.assistant import Assistant
    from leftqa.qa.policy import CALIBRATION_FILE, calibration_path, write_calibration
    from leftqa.qa.scorer import record_file

    files = case_files(settings, cases, tuning_only=True)
    locked = [str(p) for p in files if p.stem == TEST]
    if locked:
        raise EvalError(f"{', '.join(locked)}: the locked test split is never read by calibration; calibrate on the tuning cases")
    assistant = Assistant.load(settings)
    result = calibrate(assistant, load_cases(files), [str(p) for p in files], how, bound)
    folder = assistant.scorer.folder if assistant.scorer is not None else None
    path = calibration_path(settings.calibration_path, folder)
    write_calibration(path, result)
    if folder is not None and settings.calibration_path is None:
        record_file(folder, CALIBRATION_FILE)  # the scorer's manifest checksums the calibration that travels with it
    if result.weights:
        print(f"weights {dict(result.weights)}, threshold {result.threshold:.4f}, sentence floor {result.sentence_floor:.4f}")
    else:
        print(f"answer scorer {result.scorer}: abstain when P(answerable) < {result.threshold:.4f}")
    print(f"abstention recall {result.abstention_recall:.3f}, false abstention {result.false_abstention:.3f} "
          f"({result.answerable} answerable, {result.unanswerable} unanswerable cases)")  # fmt: skip
    print("trade-off (threshold: abstention recall / false abstention):")
    step = max(1, len(result.curve) // 12)
    for p in result.curve[::step]:
        print(f"  {p.threshold:.4f}: {p.abstention_recall:.3f} / {p.false_abstention:.3f}")
    print(f"wrote {path}")
    return 0
