"""Warm `ask` cost on the bundled index: CPU time (robust to a busy machine) and wall time, p50 over tuning questions.

Usage: python benchmarks/ask_cpu.py [--questions 80]   (LEFTQA_* settings apply, e.g. LEFTQA_SUBJECT_LOGIT=0)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    """Print CPU and wall p50 of warm asks (single tuning questions, after ten warm-up asks)."""
    from benchlib import time_asks

    from leftqa.config import Settings
    from leftqa.qa.assistant import Assistant

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--questions", type=int, default=80)
    args = p.parse_args(argv)
    assistant = Assistant.load(Settings.from_env())
    lines = (REPO / "evals" / "tuning.jsonl").read_text("utf-8").splitlines()
    questions = [c["question"] for c in map(json.loads, filter(None, lines)) if not c.get("history")][: args.questions]
    wall, cpu = time_asks(assistant, questions, warmup=10)
    print(f"{len(questions)} asks: CPU p50 {statistics.median(cpu):.1f} ms, wall p50 {statistics.median(wall):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
