"""Choose `support_logit` (how close to the best sentence's logit a further sentence must score to be quoted) on
public data: the SQuAD 2.0 train articles the shipped scorer's cross-encoder never saw (listed in its scorer.json).

For each value it runs the real pipeline over a seeded sample of their answerable questions (never abstaining, so
only the sentence choice is measured) and prints answer@1 and sentences per answer. The rule, fixed before any run:
the largest value whose answers average at most --budget sentences (default 1.5: mostly one sentence, a second when
it scores close). SQuAD dev and our own eval cases are never read here, so they stay honest checks of the choice.

    .venv/bin/python benchmarks/support_logit.py [--sample 1000] [--budget 1.5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import squad  # noqa: E402  (benchmarks/squad.py: corpus and cases from SQuAD JSON)
from leftqa.evals.run import evaluate  # noqa: E402

TRAIN = REPO.parent / "shared" / "data" / "squad2" / "squad2-train.json.gz"
GRID = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


def held_out_articles(scorer_json: Path, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The train articles the scorer's training record names as held out from the cross-encoder."""
    names = set(json.loads(scorer_json.read_text("utf-8"))["training"]["held_out_articles"])
    return [a for a in data if a.get("title") in names]


def measure(assistant: Any, cases: list[Any], delta: float) -> dict[str, float]:
    """answer@1 and sentences per answer of the single answerable cases at one support_logit, never abstaining."""
    assistant.settings = assistant.settings.with_(support_logit=delta)
    never = assistant.with_policy(assistant.policy.never())  # no threshold, no cosine floor
    row = evaluate(never, cases, ["hybrid"]).metrics["hybrid"]["single"]
    return {"support_logit": delta, "answer@1": round(row["answer@1"], 4), "sentences": round(row["sentences_per_answer"], 3)}


def choose(rows: list[dict[str, float]], budget: float) -> float:
    """The largest value within the sentence budget (the smallest value when none is)."""
    within = [r["support_logit"] for r in rows if r["sentences"] <= budget]
    return max(within) if within else min(r["support_logit"] for r in rows)


def main() -> int:
    """Measure the grid and print the choice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(TRAIN))
    parser.add_argument("--scorer", default=str(REPO / "src" / "leftqa" / "qa" / "scorer_model" / "scorer.json"))
    parser.add_argument("--sample", type=int, default=1000, help="answerable questions (seeded sample; default 1000)")
    parser.add_argument("--budget", type=float, default=1.5, help="mean sentences per answer allowed (default 1.5)")
    parser.add_argument("--workdir", help="reuse the corpus and index here")
    parser.add_argument("--grid", type=float, nargs="+", default=list(GRID))
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"SQuAD train data not found at {args.data}; nothing to measure", file=sys.stderr)
        return 0
    data = held_out_articles(Path(args.scorer), squad.load_squad(Path(args.data)))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="leftqa-support-"))
    assistant = squad.prepare(data, workdir, "bundled:all-MiniLM-L6-v2", quiet=True)
    cases, _ = squad.findable([c for c in squad.make_cases(data, sample=args.sample) if c.answerable], assistant.index.passages)
    print(f"{len(data)} held-out articles, {len(cases)} answerable questions; budget {args.budget} sentences per answer")
    rows = []
    for delta in sorted(args.grid):
        rows.append(measure(assistant, cases, delta))
        print(json.dumps(rows[-1]), flush=True)
    print(f"chosen support_logit: {choose(rows, args.budget)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
