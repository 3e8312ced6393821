"""benchmarks/verifier_curve.py: the best refusal at a false-abstention budget, forced refusals included."""

from __future__ import annotations

import importlib.util
import sys

from conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location("verifier_curve", REPO_ROOT / "benchmarks" / "verifier_curve.py")
assert _spec is not None and _spec.loader is not None
curve = importlib.util.module_from_spec(_spec)
sys.modules["verifier_curve"] = curve
_spec.loader.exec_module(curve)


def test_best_refusal_takes_the_threshold_with_most_refusals_within_the_budget() -> None:
    # answerable, forced, estimate, verifier
    rows = [(True, False, 0.9, 0.9), (True, False, 0.3, 0.8), (True, False, 0.6, 0.1),
            (False, False, 0.2, 0.9), (False, False, 0.5, 0.05), (False, True, 0.95, 0.95)]  # fmt: skip
    alone = curve.COMBINATIONS["shipped estimate alone"]
    smaller = curve.COMBINATIONS["the smaller of the two"]
    # no false abstention allowed: below 0.3 refuses the 0.2 case, plus the forced one
    assert curve.best_refusal(rows, alone, 0.0) == 2 / 3
    # one answerable of three may be refused: below 0.6 also refuses the 0.5 case
    assert curve.best_refusal(rows, alone, 0.34) == 1.0
    # the smaller of the two scores 0.2 / 0.05 / forced for the unanswerable, 0.9 / 0.3 / 0.1 for the answerable
    assert curve.best_refusal(rows, smaller, 0.0) == 2 / 3
    assert curve.best_refusal(rows, smaller, 0.34) == 1.0
