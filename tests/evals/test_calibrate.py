"""Abstention calibration: the trade-off sweep, the chosen threshold, and decisions at that threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leftqa.app.cli import main
from leftqa.errors import EvalError
from leftqa.evals.calibrate import Point, best_point, fit, sweep
from leftqa.qa.policy import AbstentionPolicy, default_calibration, load_calibration


def test_sweep_counts_recall_and_false_abstention() -> None:
    points = sweep([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    assert points[0] == Point(0.099999, 0.0, 0.0)
    assert Point(0.5, 1.0, 0.0) in points  # between 0.2 and 0.8 every unanswerable is abstained on, no answerable
    assert points[-1] == Point(0.900001, 1.0, 1.0)


def test_best_point_respects_the_false_abstention_budget() -> None:
    points = [Point(0.1, 0.5, 0.0), Point(0.2, 0.8, 0.04), Point(0.3, 1.0, 0.2)]
    assert best_point(points, 0.05) == Point(0.2, 0.8, 0.04)
    assert best_point(points, 0.25) == Point(0.3, 1.0, 0.2)


def test_fit_separates_answerable_from_unanswerable() -> None:
    evidence = [
        {"sentence": 0.7, "coverage": 0.6, "passage_coverage": 0.8},
        {"sentence": 0.6, "coverage": 0.5, "passage_coverage": 0.9},
        {"sentence": 0.1, "coverage": 0.0, "passage_coverage": 0.0},
        {"sentence": 0.5, "coverage": 0.0, "passage_coverage": 0.1},
    ]
    labels = [True, True, False, False]
    result = fit(evidence, labels)
    assert result.abstention_recall == 1.0
    assert result.false_abstention == 0.0
    scores = [sum(result.weights[k] * ev[k] for k in result.weights) for ev in evidence]
    assert [s < result.threshold for s in scores] == [False, False, True, True]


def test_fit_sets_the_sentence_floor_below_the_weakest_answerable_case() -> None:
    evidence = [{"sentence": 0.4, "coverage": 0.9}, {"sentence": 0.8, "coverage": 0.9}, {"sentence": 0.1, "coverage": 0.9}]
    result = fit(evidence, [True, True, False])
    assert result.sentence_floor == pytest.approx(0.75 * 0.4)
    assert result.abstention_recall == 1.0  # the high-coverage, low-cosine case is under the floor
    assert result.false_abstention == 0.0


def test_fit_needs_both_kinds_of_case() -> None:
    with pytest.raises(EvalError):
        fit([{"sentence": 0.5}], [True])


def test_calibration_file_is_used_only_for_its_model(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"weights": {"sentence": 1.0}, "threshold": 0.4, "model": "m1"}), encoding="utf-8")
    assert load_calibration(path, "m1").threshold == 0.4
    assert load_calibration(path, "m2") == default_calibration()
    assert load_calibration(tmp_path / "missing.json", "m1") == default_calibration()
    path.write_text("not json", encoding="utf-8")
    assert load_calibration(path, "m1") == default_calibration()


@pytest.mark.parametrize(("threshold", "abstains"), [(-1.0, False), (99.0, True)])
def test_ask_abstains_below_the_threshold(fake_assistant, threshold: float, abstains: bool) -> None:  # noqa: ANN001
    answer = fake_assistant.with_policy(AbstentionPolicy(threshold, weights={"sentence": 1.0})).ask("Who led the Harbour Committee?")
    assert answer.abstained is abstains
    assert bool(answer.citations) is not abstains
    assert len(answer.passages) > 0  # an abstaining answer still lists the closest passages
    expected = answer.evidence["sentence"]
    assert answer.confidence == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("Who led the Harbour Committee?", ""),
        ("Who led the Harbour Committee of Lisbon?", "the closest material does not mention everything the question names"),
    ],
)
def test_a_name_the_quoted_passage_never_mentions_forces_abstention(fake_assistant, question: str, reason: str) -> None:  # noqa: ANN001
    never = AbstentionPolicy(-1.0, weights={"sentence": 1.0})  # confidence alone never abstains
    answer = fake_assistant.with_policy(never).ask(question)
    assert answer.abstained is bool(reason)
    assert answer.reason == reason
    assert answer.evidence["names_found"] == (0.5 if reason else 1.0)


@pytest.mark.parametrize("name", ["scorer_model/calibration.json", "rules_calibration.json"])
def test_committed_calibrations_meet_their_budget(name: str) -> None:
    from leftqa.qa.policy import RULES_CALIBRATION, read_calibration

    cal = read_calibration(RULES_CALIBRATION.parent / name)
    assert cal.false_abstention is not None and cal.max_false_abstention is not None
    assert cal.false_abstention <= cal.max_false_abstention
    assert set(cal.weights) <= {"sentence", "coverage", "passage", "passage_coverage", "score"}


def _evidence(n_pos: int, n_neg: int) -> tuple[list[dict[str, float]], list[bool]]:
    # type_found separates the kinds; ce_best is noise drawn the same way for both
    import random

    rng = random.Random(7)
    ev = [{"type_found": 1.0, "ce_best": rng.gauss(0, 1)} for _ in range(n_pos)]
    ev += [{"type_found": 0.0 if i % 4 else 1.0, "ce_best": rng.gauss(0, 1)} for i in range(n_neg)]
    return ev, [True] * n_pos + [False] * n_neg


def test_answerability_refit_learns_the_separating_evidence_with_out_of_fold_scores() -> None:
    from leftqa.evals.calibrate import fit_threshold, refit_answerability

    ev, labels = _evidence(40, 20)
    model, oof = refit_answerability(ev, labels)
    weights = dict(zip(model.features, model.weights))
    assert weights["type_found"] > 0.5 and abs(weights["ce_best"]) < weights["type_found"] / 3
    assert len(oof) == 60 and refit_answerability(ev, labels)[1] == oof  # seeded folds: reproducible
    result = fit_threshold(ev, labels, max_false=0.0, scores=oof)
    # three in four unanswerable cases lack the type; the fourth looks answerable and is answered
    assert result.false_abstention == 0.0 and result.abstention_recall == pytest.approx(0.75)
    with pytest.raises(EvalError):
        refit_answerability(ev[:40], labels[:40])


def test_calibration_with_a_refit_is_read_only_when_well_formed(tmp_path: Path) -> None:
    from leftqa.qa.scorer import ANSWERABILITY_FEATURES, Linear

    n = len(ANSWERABILITY_FEATURES)
    refit = Linear(ANSWERABILITY_FEATURES, (1.0,) * n, 0.5, (0.0,) * n, (1.0,) * n)
    scorer = "v1:" + "ab" * 8
    record = {"weights": {}, "threshold": 0.4, "model": "m1", "scorer": scorer, "answerability": refit.to_dict()}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    loaded = load_calibration(path, "m1", scorer)
    assert loaded.threshold == 0.4 and loaded.answerability == refit
    # a refit reading evidence the scorer does not give, or malformed, voids the threshold chosen with it
    for bad in ({**refit.to_dict(), "features": ["no_such_feature"] * n}, {"weights": [1.0]}):
        path.write_text(json.dumps({**record, "answerability": bad}), encoding="utf-8")
        assert load_calibration(path, "m1", scorer) == default_calibration(scorer)


def test_the_adaptation_keeps_the_prior_and_folds_into_one_model_over_its_features() -> None:
    import numpy as np

    from leftqa.evals.calibrate import refit_answerability
    from leftqa.qa.scorer import ANSWERABILITY_FEATURES, Linear
    from leftqa.qa.scorer import fit_logistic

    n = len(ANSWERABILITY_FEATURES)
    ce = ANSWERABILITY_FEATURES.index("ce_best")
    # the prior reads ce_best only, with its own standardisation
    prior = Linear(ANSWERABILITY_FEATURES, tuple(1.0 if i == ce else 0.0 for i in range(n)), -0.5, (0.5,) * n, (2.0,) * n)
    ev, labels = _evidence(40, 20)
    folded, oof = refit_answerability(ev, labels, prior=prior)
    assert folded.mean == prior.mean and folded.scale == prior.scale and len(oof) == 60
    x = np.asarray([[float(e.get(k, 0.0)) for k in ANSWERABILITY_FEATURES] for e in ev])
    cols = [ANSWERABILITY_FEATURES.index("type_found"), ANSWERABILITY_FEATURES.index("names_found")]
    two_step = fit_logistic(np.hstack([prior.logit(x)[:, None], x[:, cols]]), np.asarray(labels, float), ("prior", "type_found", "names_found"), 10.0)
    expected = two_step.logit(np.hstack([prior.logit(x)[:, None], x[:, cols]]))
    assert np.allclose(folded.logit(x), expected, atol=1e-9)
    weights = dict(zip(folded.features, folded.weights))
    assert weights["type_found"] > 0.3  # learned here: the prior gave it nothing
    assert all(w == 0.0 for f, w in weights.items() if f not in ("ce_best", "type_found", "names_found"))


def test_the_adaptation_reads_the_priors_own_features_in_their_order() -> None:
    from leftqa.evals.calibrate import refit_answerability
    from leftqa.qa.scorer import Linear

    # a scorer fitted on another feature list (its order, one feature today's list lacks)
    feats = ("names_found", "window_names", "ce_best", "type_found")
    prior = Linear(feats, (0.0, 0.0, 1.0, 0.0), -0.5, (0.0,) * 4, (1.0,) * 4)
    ev, labels = _evidence(40, 20)
    ev = [{**e, "window_names": 1.0} for e in ev]
    folded, _ = refit_answerability(ev, labels, prior=prior)
    assert folded.features == feats and folded.weights[1] == 0.0  # window_names is not among the adapted ones
    assert folded.weights[feats.index("type_found")] != 0.0 and folded.weights[feats.index("ce_best")] > 0


def test_wilson_upper_bound_of_a_rate() -> None:
    from leftqa.evals.calibrate import wilson_upper

    # 2 of 198 (1.0%) could be as high as 3.6% at 95% confidence; 3 of 198 as high as 4.4%
    assert [round(wilson_upper(k, 198), 4) for k in (0, 2, 3)] == [0.019, 0.0361, 0.0436]
    assert wilson_upper(0, 0) == 1.0 and wilson_upper(100, 100) == pytest.approx(1.0)


def test_a_false_abstention_bound_allows_only_as_many_misses_as_its_confidence_interval() -> None:
    from leftqa.evals.calibrate import fit_threshold

    # answerable cases at 0.01 … 1.00, unanswerable ones at 0.005 … 0.1: a higher threshold catches more of both
    ev = [{"answerable": i / 100, "sentence": 1.0} for i in range(1, 101)]
    ev += [{"answerable": 0.005 * i, "sentence": 1.0} for i in range(1, 21)]
    labels = [True] * 100 + [False] * 20
    point = fit_threshold(ev, labels)  # the rate itself <= 0.03: three of the hundred
    assert (point.false_abstention, point.abstention_recall, point.threshold) == (0.03, 0.35, 0.0375)
    bounded = fit_threshold(ev, labels, bound=0.1)  # 4 of 100 has an upper bound of 0.098, 5 of 100 0.112
    assert (bounded.false_abstention, bounded.abstention_recall, bounded.threshold) == (0.04, 0.45, 0.0475)
    assert bounded.false_abstention_bound == 0.1 and bounded.bound == "wilson-1.96"
    assert fit_threshold(ev, labels, bound=0.03).false_abstention == 0.0  # even 0 of 100 is bounded by 0.037


def test_calibration_never_reads_the_locked_test_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "test.jsonl").write_text('{"id": "a", "question": "q?", "expected": ["x"]}\n')
    assert main(["calibrate", "--cases", str(tmp_path / "test.jsonl"), "--index", str(tmp_path / "none")]) == 1
    assert "the locked test split is never read by calibration" in capsys.readouterr().err
