"""Cluster build benchmark: `build_index` on a local Ray cluster (1 and 2 workers) against the local build.

Usage (as root): .venv/bin/python benchmarks/ray_build.py [--copies 10] [--workdir /tmp/leftqa-ray-bench] [--json FILE]

The corpus is corpus/ plus N varied copies (as benchmarks/rebuild.py makes them: no text repeats). Every build is
a full build of the same corpus with the bundled model: locally (one process, ONNX Runtime on every core), then
on a Ray cluster of two nodes of 1 CPU each (a head and a worker, started with `ray start`) with 1 worker and
with 2 workers (1 CPU and one ONNX thread each). Ray advertises the machine's interface address, and nothing may
listen beyond loopback here, so the script re-runs itself inside a network namespace with only loopback
(`unshare -n`, plus PID and mount namespaces so every Ray process ends with it).

Reported per build: wall time, passages/s, the time inside embedding (the encode calls: for Ray the driver's wall
time from the first batch sent to the last vector back, model loading on the workers included) and the driver's
time outside it (connecting, starting the workers, the read phase, building and writing the index), and the
largest difference of any vector from the local build's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PORT = 6390


class _TimedEmbedder:
    """Wraps an embedder and adds up the wall time of its encode calls."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name, self.dim, self.seconds = inner.name, inner.dim, 0.0

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self._inner.encode(texts, batch_size=batch_size, progress=False)
        finally:
            self.seconds += time.perf_counter() - t0


def _max_diff(a: Path, b: Path) -> float:
    return max(float(np.abs(np.load(a / n) - np.load(b / n)).max()) for n in ("passage_vectors.npy", "sentence_vectors.npy"))


def _start_cluster(work: Path) -> str:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}  # no token auth from a stray ~/.ray/auth_token
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    subprocess.run([str(BIN / "ray"), "start", "--head", f"--port={PORT}", "--include-dashboard=false", f"--temp-dir={work / 'ray'}", *common],
                   check=True, capture_output=True, env=env)  # fmt: skip
    subprocess.run([str(BIN / "ray"), "start", f"--address=127.0.0.1:{PORT}", *common], check=True, capture_output=True, env=env)
    return f"127.0.0.1:{PORT}"


def inside(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from leftqa.config import Settings
    from leftqa.index.builder import build_index
    from leftqa.index.embed import load_embedder
    from leftqa.index.ray_build import RayBackend, RayOptions
    from rebuild import make_corpus

    work = Path(args.workdir)
    corpus = make_corpus(work / "corpus", args.copies)
    load = [os.getloadavg()[0]]
    rows: list[dict[str, Any]] = []

    settings = Settings(corpus_dir=corpus, index_dir=work / "local")
    embedder = _TimedEmbedder(load_embedder(settings.model, settings.threads))  # model loading not timed
    t0 = time.perf_counter()
    report = build_index(settings, embedder=embedder, full=True)
    wall = time.perf_counter() - t0
    rows.append({"build": "local, 1 process (2 ONNX threads)", "wall_s": wall, "passages": report.passages, "texts": report.embedded + report.embedded_sentences,
                 "embed_s": embedder.seconds, "outside_embed_s": wall - embedder.seconds, "max_vector_diff": 0.0})  # fmt: skip
    load.append(os.getloadavg()[0])

    address = _start_cluster(work)
    for workers in (1, 2):
        target = settings.with_(index_dir=work / f"ray-{workers}")
        t0 = time.perf_counter()
        with RayBackend(RayOptions(address=address, workers=workers)) as backend:
            report = build_index(target, backend=backend, full=True)
            stats = backend.stats
        wall = time.perf_counter() - t0
        rows.append({
            "build": f"Ray, {workers} worker{'s' if workers > 1 else ''} (1 CPU each)", "wall_s": wall, "passages": report.passages,
            "texts": stats.texts_embedded, "embed_s": stats.embed_seconds, "outside_embed_s": wall - stats.embed_seconds,
            "connect_s": stats.connect_seconds, "read_s": stats.read_seconds, "max_vector_diff": _max_diff(work / "local", target.index_dir),
            "stats": asdict(stats),
        })  # fmt: skip
        load.append(os.getloadavg()[0])
    subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True)  # only this namespace's processes

    for r in rows:
        r["passages_per_s"] = r["passages"] / r["wall_s"]
        r["texts_per_embed_s"] = r["texts"] / r["embed_s"] if r["embed_s"] else 0.0
    result = {"copies": args.copies, "cpus": os.cpu_count(), "load_1min": load, "rows": rows}
    print(f"corpus/ + {args.copies} copies: {rows[0]['passages']} passages, {rows[0]['texts']} texts embedded; load average (1 min) {', '.join(f'{x:.1f}' for x in load)}")
    print(f"{'build':<38} {'wall s':>7} {'passages/s':>10} {'embed s':>8} {'texts/s':>8} {'outside s':>9} {'max diff':>9}")
    for r in rows:
        print(f"{r['build']:<38} {r['wall_s']:>7.1f} {r['passages_per_s']:>10.2f} {r['embed_s']:>8.1f} {r['texts_per_embed_s']:>8.1f} "
              f"{r['outside_embed_s']:>9.1f} {r['max_vector_diff']:>9.1e}")  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--workdir", default="/tmp/leftqa-ray-bench")
    parser.add_argument("--json", default=str(REPO / "reports" / "ray_build.json"))
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        return inside(args)
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("needs root and unshare: the cluster runs in a network namespace with only loopback", file=sys.stderr)
        return 2
    work = Path(args.workdir)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--inside", "--copies", str(args.copies), "--workdir", str(work), "--json", args.json]
    return subprocess.run(["unshare", "-n", "-p", "-f", "-m", "--mount-proc", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]).returncode


if __name__ == "__main__":
    sys.exit(main())
