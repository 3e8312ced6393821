"""Run by tests/index/test_ray_build.py inside its cluster's network namespace (not a test module itself).

A full Ray build of CORPUS into INDEX that SIGKILLs a process group (a whole Ray node: a worker, or the head) as soon
as the first embedded batch is back, waits until that group is gone, and lets the build go on. Prints one JSON
object: the build report and the backend's stats, or the one-line error the CLI would print.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from leftqa.config import Settings
from leftqa.errors import LeftQAError
from leftqa.index.builder import build_index
from leftqa.index.ray_build import Progress, RayBackend, RayOptions


def _processes() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, process group)} of every process in this PID namespace."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(stat.parent.name)] = (int(fields[1]), int(fields[2]))
    return out


def kill_node(pgid: int) -> None:
    """SIGKILL a Ray node: its process group and every descendant (the actors the node's raylet started)."""
    procs = _processes()
    doomed = {pid for pid, (_, group) in procs.items() if group == pgid}
    grown = True
    while grown:
        more = {pid for pid, (parent, _) in procs.items() if parent in doomed} - doomed
        grown = bool(more)
        doomed |= more
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while doomed & set(_processes()) and time.monotonic() < deadline:  # the namespace's init reaps them
        time.sleep(0.05)


class KillingProgress(Progress):
    """Progress that kills the Ray node of process group `pgid` at the first embedded batch."""

    def __init__(self, pgid: int) -> None:
        super().__init__(stream=sys.stderr, every=1e9)
        self.pgid = pgid
        self.killed_at = -1

    def advance(self, n: int) -> None:
        super().advance(n)
        if self.killed_at < 0 and self.phase == "embed":
            kill_node(self.pgid)
            self.killed_at = n


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--kill-pgid", type=int, required=True)
    parser.add_argument("--batch-tokens", type=int, default=256)
    args = parser.parse_args()
    settings = Settings(corpus_dir=Path(args.corpus), index_dir=Path(args.index))
    progress = KillingProgress(args.kill_pgid)
    options = RayOptions(address=args.address, batch_tokens=args.batch_tokens, start_timeout=20)
    try:
        with RayBackend(options, progress=progress, log=lambda msg: print(msg, file=sys.stderr, flush=True)) as backend:
            report = build_index(settings, backend=backend, full=True)
            stats = backend.stats
    except LeftQAError as exc:
        print(json.dumps({"error": str(exc), "killed_after": progress.killed_at}), flush=True)  # Ray may end the process at exit
        return 1
    print(json.dumps({"report": asdict(report), "stats": asdict(stats), "killed_after": progress.killed_at}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
