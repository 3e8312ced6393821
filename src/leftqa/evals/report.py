"""Eval output: the metrics table, JSON + Markdown reports with failing cases, and the BEIR export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from leftqa.evals.cases import GROUPS, Case, CaseResult, EvalRun
from leftqa.files import write_json
from leftqa.records import Passage

# (metric key, column heading) in table order.
COLUMNS = (
    ("n", "n"),
    ("hit@1", "hit@1"),
    ("hit@3", "hit@3"),
    ("hit@5", "hit@5"),
    ("hit@10", "hit@10"),
    ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
    ("answer@1", "ans@1"),
    ("citation_precision", "citeP"),
    ("abstention_recall", "abstR"),
    ("false_abstention", "falseAbst"),
    ("sentences_per_answer", "sents"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p95_ms", "p95 ms"),
)
LEGEND = (
    "hit@k: a relevant passage in the top k; ans@1: the answer holds the expected text (abstaining counts as a miss); "
    "citeP: share of cited passages that are relevant; abstR: unanswerable cases abstained on; "
    "falseAbst: answerable cases abstained on (lower is better); sents: sentences quoted per answer given. tuning/: the cases rules and calibration may read; "
    "test/: the locked split nothing tunes on; gap/: test minus tuning."
)


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key == "n":
        return str(int(value))
    if key.startswith("latency"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def group_keys(run: EvalRun) -> list[str]:
    """The table's group rows in order: all cases, then each split, then the test − tuning gap (no style rows)."""
    seen: dict[str, None] = {}
    for groups in run.metrics.values():
        seen.update(dict.fromkeys(g for g in groups if "style:" not in g))
    def order(g: str) -> tuple[int, int]:
        prefix, _, group = g.rpartition("/")
        rank = 0 if not prefix else 3 if prefix == "gap" else 1 if prefix == "tuning" else 2
        return rank, GROUPS.index(group) if group in GROUPS else len(GROUPS)
    return sorted(seen, key=order)


def _rows(run: EvalRun) -> list[list[str]]:
    rows = []
    for group in group_keys(run):
        for mode, groups in run.metrics.items():
            if group in groups:
                cells = [_cell(k, groups[group].get(k)) for k, _ in COLUMNS]
                if group.startswith("gap/"):
                    cells = [_signed(k, groups[group].get(k)) for k, _ in COLUMNS]
                rows.append([group, mode] + cells)
    return rows


def _signed(key: str, value: float | None) -> str:
    if value is None or key == "n" or key.startswith("latency"):
        return "–"
    return f"{value:+.3f}"


STYLE_COLUMNS = (("n", "n"), ("hit@1", "hit@1"), ("answer@1", "ans@1"), ("false_abstention", "falseAbst"), ("abstention_recall", "abstR"))


def style_table(run: EvalRun, mode: str = "hybrid") -> str:
    """Per split and style (one mode): n, hit@1, ans@1, false abstention, abstention recall; "" without styles."""
    groups = run.metrics.get(mode) or next(iter(run.metrics.values()), {})
    keys = [g for g in groups if "/style:" in g]
    if not keys:
        return ""
    header = ["split", "style"] + [h for _, h in STYLE_COLUMNS]
    rows = [[*g.split("/style:"), *(_cell(k, groups[g].get(k)) for k, _ in STYLE_COLUMNS)] for g in keys]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"by style ({mode}):"]
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


CURVE = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)  # thresholds on P(answerable) the per-style trade-off is shown at


def curve_table(run: EvalRun, mode: str = "hybrid", thresholds: Sequence[float] = CURVE) -> str:
    """Per split and style, had the policy's threshold been t: false abstention (answerable styles) or share refused
    (unanswerable ones) at each t; "" without styles."""
    results = run.results.get(mode) or []
    keys = sorted({(r.split, r.style) for r in results if r.style}, key=lambda k: (k[0] != "tuning", k))
    if not keys:
        return ""
    header = ["split", "style", "kind"] + [f"t={t:g}" for t in thresholds]
    rows = []
    for split, style in keys:
        rs = [r for r in results if (r.split, r.style) == (split, style)]
        for kind, group in (("falseAbst", [r for r in rs if r.group != "unanswerable"]), ("refused", [r for r in rs if r.group == "unanswerable"])):
            if group:
                rows.append([split, style, kind, *(f"{sum(r.forced or r.decision_score < t for r in group) / len(group):.2f}" for t in thresholds)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"refusal against false abstention by style, had the threshold been t ({mode}):"]
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def _heading(run: EvalRun) -> str:
    meta = run.meta
    history = "follow-ups asked with their history" if meta.get("history", True) else "follow-ups asked WITHOUT history (--no-history)"
    return (
        f"model {meta.get('model')}, {meta.get('passages')} passages, {meta.get('n_cases')} cases, "
        f"top {meta.get('k')}, {history}"
    )


def format_table(run: EvalRun) -> str:
    """A plain-text table: one row per group and mode, one column per metric."""
    header = ["group", "mode"] + [h for _, h in COLUMNS]
    rows = _rows(run)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [_heading(run), ""]
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    styles = style_table(run)
    if styles:
        lines += ["", styles, "", curve_table(run)]
    lines += ["", LEGEND]
    return "\n".join(lines)


def markdown_table(run: EvalRun) -> str:
    """The metrics table in Markdown."""
    header = ["group", "mode"] + [h for _, h in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + ["---:"] * len(COLUMNS)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(run)]
    return "\n".join(lines)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _failure(r: CaseResult) -> list[str]:
    lines = [f"### {r.id} ({r.group}, {r.mode}) — {'; '.join(r.problems)}", ""]
    for h in r.history:
        lines.append(f"- earlier question: {_md_escape(h)}")
    lines.append(f"- question: {_md_escape(r.question)}")
    if r.query != r.question:
        lines.append(f"- searched for: {_md_escape(r.query)}")
    if r.expected:
        lines.append("- expected evidence: " + " / ".join(f"“{_md_escape(e)}”" for e in r.expected))
    if r.answers:
        lines.append("- expected answer: " + " / ".join(f"“{_md_escape(a)}”" for a in r.answers))
    where = f"rank {r.ranks[0]}" if r.ranks else "not in the top 10"
    if r.expected:
        lines.append(f"- first relevant passage: {where} ({r.n_relevant} relevant in the index)")
    lines.append(f"- answered: {'(abstained) ' if r.abstained else ''}{_md_escape(r.answer)}")
    lines.append(f"- retrieved (top {len(r.retrieved)}):")
    for p in r.retrieved:
        mark = "relevant" if p.relevant else "not relevant"
        lines.append(f"  {p.rank}. [{mark}] {_md_escape(p.title)} › {_md_escape(p.section)}: {_md_escape(p.snippet)}…")
    lines.append(f"- case: {r.source}")
    return lines + [""]


def markdown_report(run: EvalRun) -> str:
    """The Markdown report: table, then every failing case per mode with what was retrieved instead."""
    lines = ["# leftqa eval report", "", _heading(run) + ".", "", markdown_table(run), "", LEGEND, ""]
    for mode, results in run.results.items():
        failing = [r for r in results if r.problems]
        lines += [f"## Failing cases — {mode} ({len(failing)} of {len(results)})", ""]
        if not failing:
            lines += ["None.", ""]
        for r in failing:
            lines += _failure(r)
    return "\n".join(lines)


def write_report(run: EvalRun, folder: Path) -> list[Path]:
    """Write report.json (metrics and every case) and report.md into a folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "report.json", folder / "report.md"
    write_json(json_path, run.to_dict(cases=True))
    md_path.write_text(markdown_report(run), encoding="utf-8")
    return [json_path, md_path]


def export_beir(cases: Sequence[Case], passages: Sequence[Passage], relevant: dict[str, frozenset[str]], folder: Path) -> dict[str, int]:
    """Write corpus.jsonl, queries.jsonl and qrels/test.tsv (BEIR layout); unanswerable cases have no qrels, so no query."""
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for p in passages:
            meta: dict[str, Any] = {"doc_id": p.doc_id, "section": p.section, "start": p.start, "end": p.end}
            f.write(json.dumps({"_id": p.id, "title": p.title, "text": p.text, "metadata": meta}, ensure_ascii=False) + "\n")
    answerable = [c for c in cases if c.answerable]
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as f:
        for c in answerable:
            meta = {"group": c.group, "history": list(c.history)}
            f.write(json.dumps({"_id": c.id, "text": c.question, "metadata": meta}, ensure_ascii=False) + "\n")
    qrels = [(c.id, pid) for c in answerable for pid in sorted(relevant[c.id])]
    with (folder / "qrels" / "test.tsv").open("w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, pid in qrels:
            f.write(f"{qid}\t{pid}\t1\n")
    return {"corpus": len(passages), "queries": len(answerable), "qrels": len(qrels)}
