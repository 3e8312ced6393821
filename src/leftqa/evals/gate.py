"""The eval regression gate: a baseline of headline metrics per mode and group, and the check against it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from leftqa.errors import EvalError
from leftqa.evals.cases import EvalRun

# The metrics `--check` gates on; latency is machine-dependent and never gated.
HEADLINE = ("hit@1", "hit@5", "mrr@10", "answer@1", "abstention_recall", "false_abstention")
LOWER_IS_BETTER = frozenset({"false_abstention"})
TOLERANCE = 0.02  # absolute drop allowed before `--check` fails
BASELINE_FORMAT = "leftqa-eval-baseline"
BASELINE_VERSION = 1


def make_baseline(run: EvalRun, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """The baseline document for a run: its headline metrics per mode and group, and what made them."""
    keep = {k: run.meta.get(k) for k in ("model", "embedder", "history", "k", "n_cases", "cases_digest", "case_files", "corpus_fingerprint")}
    return {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **keep,
        "tolerance": tolerance,
        "headline": list(HEADLINE),
        "lower_is_better": sorted(LOWER_IS_BETTER),
        "metrics": {
            mode: {g: {k: v for k, v in row.items() if k in HEADLINE or k == "n"} for g, row in groups.items() if not g.startswith("gap/")}
            for mode, groups in run.metrics.items()
        },
    }


def read_baseline(path: Path) -> dict[str, Any]:
    """A baseline file, validated; EvalError when missing or malformed."""
    path = Path(path)
    if not path.exists():
        raise EvalError(f"no baseline at {path}; write one with `leftqa eval --mode all --write-baseline`")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"baseline {path} is unreadable ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT or not isinstance(data.get("metrics"), dict):
        raise EvalError(f"{path} is not a leftqa eval baseline; rewrite it with --write-baseline")
    return data


def compare(baseline: dict[str, dict[str, float]], current: dict[str, dict[str, float]], tolerance: float) -> list[str]:
    """One line per headline metric that got worse than the baseline by more than the tolerance."""
    out = []
    for group, row in baseline.items():
        for name, old in row.items():
            if name not in HEADLINE:
                continue
            new = current.get(group, {}).get(name)
            if new is None:
                out.append(f"{group} {name}: {old:.3f} in the baseline, missing now")
                continue
            worse = new - old if name in LOWER_IS_BETTER else old - new
            if worse > tolerance + 1e-9:
                out.append(f"{group} {name}: {old:.3f} -> {new:.3f} ({'+' if new > old else ''}{new - old:.3f})")
    return out


def check_run(baseline: dict[str, Any], run: EvalRun) -> list[str]:
    """Regressions of a run against the baseline's metrics for the same modes (another model is compared too)."""
    if baseline.get("history", True) != run.meta.get("history", True):
        raise EvalError("the baseline and this run differ in --no-history; compare like with like")
    tolerance = float(baseline.get("tolerance", TOLERANCE))
    out = []
    for mode, groups in run.metrics.items():
        if mode not in baseline["metrics"]:
            raise EvalError(f"the baseline has no metrics for mode {mode}; refresh it with `leftqa eval --mode all --write-baseline`")
        out += [f"{mode} {line}" for line in compare(baseline["metrics"][mode], groups, tolerance)]
    return out
