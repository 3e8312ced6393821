"""A small run (4 x 10) of benchmarks/load.py against the real server: concurrent conversations, no failed request, and a
new visitor still served meanwhile. The full 20 x 25 run is `python benchmarks/load.py` (figures, not a test)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import UIServer

pytestmark = pytest.mark.e2e

LOAD_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"


def load_module() -> ModuleType:
    """benchmarks/load.py, imported once (benchmarks/ is a folder of scripts, not a package)."""
    if "leftqa_bench_load" not in sys.modules:
        spec = importlib.util.spec_from_file_location("leftqa_bench_load", LOAD_PY)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["leftqa_bench_load"]


def test_concurrent_conversations_all_succeed_and_a_newcomer_is_served(ui_server: UIServer) -> None:
    load = load_module()
    questions = load.eval_questions()
    assert len(questions) >= 20
    report = load.run_load(ui_server.url, conversations=4, questions=10, pool=questions)
    print(report.summary())
    assert report.errors == () and report.failures == 0
    assert (report.requests, report.conversations, report.questions) == (40, 4, 10)
    assert report.visitor_ok and report.visitor_during_load
    assert 0 < report.p50_ms <= report.p95_ms <= report.max_ms


@pytest.mark.parametrize(("values", "q", "expected"), [([5, 1, 3, 2, 4], 50, 3), ([5, 1, 3, 2, 4], 95, 5), ([7], 95, 7), (list(range(1, 101)), 95, 95)])
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert load_module().percentile(values, q) == expected
