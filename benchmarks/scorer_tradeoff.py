"""Quality against latency for the answer scorer: how many candidate sentences it reads per question.

For each setting (0 = the rules alone, no scorer) it runs the eval cases (both splits) and, when the SQuAD dev
data is there, a seeded sample of SQuAD dev questions, and times warm `ask` calls on the bundled corpus.
Settings are chosen on the tuning split and SQuAD dev; the test split is reported, never chosen on.

    .venv/bin/python benchmarks/scorer_tradeoff.py [--candidates 0 4 8 12 16] [--squad-sample 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def _with_candidates(assistant, n: int):  # noqa: ANN001, ANN202
    """The same assistant reading `n` candidates (0: no scorer, so the rules answer and abstain)."""
    from leftqa.qa.assistant import Assistant

    if n == 0:  # the rules with their own calibration (fitted on the 121 original cases, all in the tuning split)
        return Assistant(assistant.settings.with_(scorer="none"), assistant.index, assistant.embedder)
    return Assistant(assistant.settings, assistant.index, assistant.embedder, assistant.policy, assistant.scorer.reading(n))


def latency(assistant, questions: list[str], repeats: int) -> tuple[float, float]:  # noqa: ANN001
    """p50 and p95 of warm ask() wall time in ms over `repeats` passes of the questions."""
    for q in questions[:5]:
        assistant.ask(q)
    times = []
    for _ in range(repeats):
        for q in questions:
            t0 = time.perf_counter()
            assistant.ask(q)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main(argv: list[str] | None = None) -> int:
    """Run the trade-off table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, nargs="+", default=[0, 4, 8, 12, 16])
    p.add_argument("--squad-sample", type=int, default=300, help="SQuAD dev answerable + impossible questions (0: skip)")
    p.add_argument("--squad-workdir", default="/tmp/leftqa-squad-dev", help="SQuAD dev corpus and index (reused)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="also write the rows as JSON here")
    args = p.parse_args(argv)

    import squad
    from leftqa.config import Settings
    from leftqa.evals.cases import default_case_files, load_cases
    from leftqa.evals.run import evaluate, relevant_passages
    from leftqa.qa.assistant import Assistant

    base = Assistant.load(Settings.from_env())
    cases = load_cases(default_case_files())
    questions = [c.question for c in cases if not c.history]
    squad_base = squad_cases = None
    if args.squad_sample and squad.DEV_DATA.is_file():
        data = squad.load_squad(squad.DEV_DATA)
        squad_base = squad.prepare(data, Path(args.squad_workdir), base.settings.model, quiet=True)
        squad_base = Assistant(squad_base.settings, squad_base.index, squad_base.embedder, base.policy, base.scorer)
        squad_cases = []
        for c in squad.make_cases(data, sample=args.squad_sample):
            try:
                relevant_passages([c], squad_base.index.passages)
                squad_cases.append(c)
            except Exception:  # noqa: BLE001 - evidence split across passages: dropped, as benchmarks/squad.py does
                continue
    rows = []
    for n in args.candidates:
        a = _with_candidates(base, n)
        m = evaluate(a, cases, ["hybrid"]).metrics["hybrid"]
        row = {"candidates": n}
        for split in ("tuning", "test"):
            single = m.get(f"{split}/single", {})
            row[f"{split}_single_answer@1"] = single.get("answer@1")
            row[f"{split}_followup_answer@1"] = m.get(f"{split}/followup", {}).get("answer@1")
            row[f"{split}_false_abstention"] = m.get(f"{split}/overall", {}).get("false_abstention")
            row[f"{split}_abstention_recall"] = m.get(f"{split}/unanswerable", {}).get("abstention_recall")
        if squad_cases is not None:
            s = _with_candidates(squad_base, n)
            sm = evaluate(s, squad_cases, ["hybrid"]).metrics["hybrid"]
            row.update({"squad_dev_hit@1": sm["single"]["hit@1"], "squad_dev_answer@1": sm["single"]["answer@1"],
                        "squad_dev_false_abstention": sm["single"]["false_abstention"],
                        "squad_dev_abstention_recall": sm["unanswerable"]["abstention_recall"]})  # fmt: skip
        row["ask_p50_ms"], row["ask_p95_ms"] = (round(v, 1) for v in latency(a, questions, args.repeats))
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join("–" if r.get(k) is None else f"{r[k]:.3f}" if isinstance(r[k], float) and k not in ("ask_p50_ms", "ask_p95_ms") else str(r[k]) for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
