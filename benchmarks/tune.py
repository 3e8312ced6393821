"""Re-run the weight search that chose leftqa's fusion, rerank and answer weights, on public SQuAD data only.

Usage: .venv/bin/python benchmarks/tune.py [--workdir DIR] [--quick]

Each configuration runs the real pipeline (leftqa.qa.assistant.Assistant) over the 293 answerable SQuAD questions of
the two benchmark articles and prints hit@1 / MRR@10 / answer@1. Our own eval cases are never used here, so
`leftqa eval` on them stays an honest check of what this search picked.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import squad  # noqa: E402  (benchmarks/squad.py: corpus and cases from the SQuAD JSON)
from leftqa.evals.run import evaluate  # noqa: E402
from leftqa.qa import answer as ans  # noqa: E402
from leftqa.qa import retrieve  # noqa: E402


def measure(assistant: Any, cases: list[Any]) -> dict[str, float]:
    """Hybrid hit@1, MRR@10 and answer@1 of the current module-level weights."""
    run = evaluate(assistant.with_policy(assistant.policy.never()), cases, ["hybrid"])  # rank and answer only, never abstain
    metrics = run.metrics["hybrid"]["single"]
    return {k: round(metrics[k], 4) for k in ("hit@1", "mrr@10", "answer@1")}


def main() -> int:
    """Grid over the stage-2 rerank weights, then over the answer support margin."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(squad.DEFAULT_DATA))
    parser.add_argument("--workdir", help="reuse the SQuAD corpus and index here")
    parser.add_argument("--quick", action="store_true", help="a 3-point grid (for a smoke run)")
    args = parser.parse_args()
    data = squad.load_squad(Path(args.data))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="leftqa-tune-"))
    assistant = squad.prepare(data, workdir, "bundled:all-MiniLM-L6-v2", quiet=True)
    cases = [c for c in squad.make_cases(data) if c.answerable]
    saved = dict(retrieve.RERANK_WEIGHTS), ans.SUPPORT_MARGIN
    stage1_only = {k: (v if k in ("bm25", "dense", "sentence") else 0.0) for k, v in retrieve.RERANK_WEIGHTS.items()}
    retrieve.RERANK_WEIGHTS.update(stage1_only)
    print("stage-2 features off:", measure(assistant, cases))
    grid = {"evidence": (0.4, 0.6, 0.8), "bigram": (0.1, 0.2, 0.3), "type": (0.0, 0.1, 0.2)}
    if args.quick:
        grid = {"evidence": (0.6,), "bigram": (0.2,), "type": (0.0, 0.1, 0.2)}
    results = []
    for values in itertools.product(*grid.values()):
        retrieve.RERANK_WEIGHTS.update(saved[0])
        retrieve.RERANK_WEIGHTS.update(dict(zip(grid, values)))
        m = measure(assistant, cases)
        results.append((m["hit@1"], m["mrr@10"], values))
        print(dict(zip(grid, values)), m, flush=True)
    best = max(results)
    print("best rerank weights:", dict(zip(grid, best[2])), "hit@1", best[0], "MRR@10", best[1])
    retrieve.RERANK_WEIGHTS.update(saved[0])
    for margin in (0.03, 0.06, 0.08, 0.10):
        ans.SUPPORT_MARGIN = margin
        print(f"support margin {margin}:", measure(assistant, cases), flush=True)
    ans.SUPPORT_MARGIN = saved[1]
    print(f"in code now: rerank {retrieve.RERANK_WEIGHTS}, margin {ans.SUPPORT_MARGIN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
