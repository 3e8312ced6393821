"""The benchmark script runs end to end (tiny sizes, fake embedder), so it cannot rot. Not a timed test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, subprocess_env


def test_benchmark_smoke_run_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--smoke", "--out", str(out), "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600, env=subprocess_env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("size | passages | build p/s | encode p/s | build/raw | ask p50 | ask p95 | ask cpu p50 | plain p50")
    assert lines[1].startswith("real corpus | ") and lines[2].startswith("2,000 | 2,000 | ")

    result = json.loads(out.read_text())
    assert result["smoke"] is True and result["model"] == "hash:64"
    real, synthetic = result["results"]
    assert real["synthetic"] is False and synthetic["synthetic"] is True
    assert real["build"]["passages"] > 0 and real["build"]["build_vs_raw"] > 0
    assert real["build_generated_text"]["passages"] >= 30
    copies = real["build_real_text_copies"]
    assert copies["copies"] == 1 and copies["passages"] > real["build"]["passages"]
    for build in (real["build"], real["build_generated_text"], copies):
        assert build["texts_embedded"] <= build["passages"] + build["sentences"] and len(build["runs"]) == build["repeats"]
        assert 0 < build["build_vs_raw_net"] <= 1 and build["build_overhead_s"] > 0
    for row in (real, synthetic):
        assert row["warm_ask"]["ms"]["n"] == 20 and 0 < row["warm_ask"]["ms"]["p50"] <= row["warm_ask"]["ms"]["p95"]
        assert row["warm_ask"]["cpu_ms"]["n"] == 20 and row["warm_ask"]["cpu_ms"]["p50"] > 0
        assert row["cold_start"]["wall_s"] > 0 and row["cold_start"]["peak_rss_mb"] > 0
        assert row["index_mb"] > 0
        assert row["plain_script"]["ms"]["n"] == 20 and row["plain_script"]["ms"]["p50"] > 0
    # The smoke size sits above its ANN threshold, so the HNSW path and its recall measurement both run.
    assert synthetic["warm_ask"]["dense_index"] == "hnsw32-ip"
    assert synthetic["ann"]["recall_at_10"] >= 0.9 and synthetic["ann"]["queries"] == 20
    assert synthetic["bm25"]["identical_scores"] is True
    assert synthetic["build_index_part"]["dense_index"] == "hnsw32-ip"
