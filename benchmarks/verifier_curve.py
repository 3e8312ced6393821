"""Does the answer verifier add to the shipped answerability estimate? With abstention off, every tuning case's
estimate (`answerable`, or the described-subject score) and verifier probability are collected, and for each way
of combining the two the most unanswerable cases refused at a false-abstention budget is printed (a threshold
chosen on the same cases, as `leftqa calibrate` does). Cases refused whatever the threshold (the cosine floor, a
name the corpus lacks) count as refused under every combination.

Usage: LEFTQA_SCORER=<scorer folder with verifier.onnx> python benchmarks/verifier_curve.py [--cases evals/tuning.jsonl]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

Row = tuple[bool, bool, float, float]  # answerable, forced, estimate, verifier


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


COMBINATIONS: dict[str, Callable[[float, float], float]] = {
    "shipped estimate alone": lambda a, v: a,
    "verifier alone": lambda a, v: v,
    "product of the two": lambda a, v: min(a, 1.0) * v,
    "the smaller of the two": lambda a, v: min(a, v),
    "sum of their logits": lambda a, v: _logit(a) + _logit(v),
}


def best_refusal(rows: list[Row], score: Callable[[float, float], float], budget: float) -> float:
    """The largest share of unanswerable rows refused by any threshold whose false abstention is within `budget`."""
    pos = [r for r in rows if r[0]]
    neg = [r for r in rows if not r[0]]
    best = 0.0
    for t in [-math.inf, *sorted({score(a, v) for _, _, a, v in rows}), math.inf]:
        fa = sum(f or score(a, v) < t for _, f, a, v in pos) / len(pos)
        if fa <= budget:
            best = max(best, sum(f or score(a, v) < t for _, f, a, v in neg) / len(neg))
    return best


def main(argv: list[str] | None = None) -> int:
    """Collect the evidence and print the table."""
    from leftqa.config import Settings
    from leftqa.evals.cases import load_cases
    from leftqa.qa.assistant import Assistant

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=str(REPO / "evals" / "tuning.jsonl"))
    p.add_argument("--budgets", default="0.02,0.03,0.04")
    args = p.parse_args(argv)
    assistant = Assistant.load(Settings.from_env())
    if assistant.scorer is None or not assistant.scorer.has_verifier:
        print("the answer scorer has no verifier: set LEFTQA_SCORER to a folder with verifier.onnx", file=sys.stderr)
        return 2
    never = assistant.with_policy(assistant.policy.never())
    rows: list[Row] = []
    for case in load_cases([Path(args.cases)]):
        ev = never.ask(case.question, case.history).evidence
        forced = assistant.policy.forced({k: v for k, v in ev.items() if k != "verified"})
        rows.append((case.answerable, forced, assistant.policy.score(ev), float(ev.get("verifier", 1.0))))
    budgets = [float(b) for b in args.budgets.split(",")]
    print(f"{len(rows)} cases; refusal at false abstention <= " + " / ".join(f"{b:g}" for b in budgets))
    for name, f in COMBINATIONS.items():
        print(f"{name:24s}", " / ".join(f"{best_refusal(rows, f, b):.3f}" for b in budgets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
