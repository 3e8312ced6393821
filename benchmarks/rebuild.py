"""Time `leftqa index`: a full build, a no-change rebuild and a one-file change, on corpus/ and on a corpus N times larger.

Usage: .venv/bin/python benchmarks/rebuild.py [--copies 100] [--workdir /tmp/leftqa-rebuild] [--model NAME]
The larger corpus is corpus/ plus N copies whose every sentence carries its copy number, so no text repeats
and the larger build really embeds N times as much.
Each command runs as a fresh `leftqa index` process (model loading included), as a user would run it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_corpus(dest: Path, copies: int) -> Path:
    """corpus/ and `copies` varied copies of each of its documents under dest."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(REPO / "corpus", dest)
    for src in sorted((REPO / "corpus").rglob("*.txt")):
        text = src.read_text("utf-8")
        for i in range(copies):
            varied = re.sub(r"([.!?])(\s|$)", rf" (copy {i})\1\2", text, flags=re.MULTILINE)
            (dest / f"{src.stem}-copy-{i:03d}.txt").write_text(varied, encoding="utf-8")
    return dest


def timed(cmd: list[str]) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEFTQA_")}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return time.perf_counter() - t0, out.splitlines()[0]


def run(corpus: Path, index: Path, model: str | None) -> list[tuple[str, float, str]]:
    base = [str(REPO / ".venv/bin/leftqa"), "index", "--corpus", str(corpus), "--index", str(index), "-q"]
    if model:
        base += ["--model", model]
    if index.exists():
        shutil.rmtree(index)
    rows = [("full build", *timed(base + ["--full"])), ("no-change rebuild", *timed(base))]
    first = sorted(corpus.glob("*.txt"))[0]
    first.write_text(first.read_text("utf-8").replace(".", ". Edited.", 1), encoding="utf-8")
    rows.append(("one file changed", *timed(base)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/leftqa-rebuild"))
    parser.add_argument("--model", default=None, help="model (default: the configured/bundled one)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("| corpus | step | seconds | report |\n|---|---|---|---|")
    for label, copies in (("corpus/", 0), (f"corpus/ + {args.copies} copies", args.copies)):
        corpus = make_corpus(args.workdir / f"corpus-{copies}", copies)
        for step, seconds, report in run(corpus, args.workdir / f"index-{copies}", args.model):
            print(f"| {label} | {step} | {seconds:.1f} | {report} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
