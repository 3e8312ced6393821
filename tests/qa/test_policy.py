"""The answer-or-abstain policy and the calibration file it is read from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from leftqa.errors import ConfigError
from leftqa.qa.policy import (
    CALIBRATION_FILE,
    RULES,
    RULES_CALIBRATION,
    AbstentionPolicy,
    Calibration,
    calibration_path,
    load_policy,
    read_calibration,
)
from leftqa.qa.scorer import BUNDLED_SCORER, Linear


def _learned(feature: str = "ce_best") -> Linear:
    return Linear((feature,), (1.0,), 0.0, (0.0,), (1.0,))


@pytest.mark.parametrize(
    ("type_found", "names_found", "reason"),
    [
        (1.0, 1.0, ""),
        (0.0, 1.0, "no answer of the expected kind (a date, number or name) in the closest material"),
        (1.0, 0.5, "the closest material does not mention everything the question names"),
    ],
)
def test_the_rules_abstain_on_a_forced_reason_whatever_the_confidence(type_found: float, names_found: float, reason: str) -> None:
    policy = AbstentionPolicy(0.5, weights={"score": 1.0})
    ev = {"sentence": 0.9, "type_found": type_found, "names_found": names_found}
    high = policy.decide({**ev, "score": 5.0}, True)
    assert (high.abstain, high.reason, high.confidence) == (bool(reason), reason, 5.0)
    low = policy.decide({**ev, "score": 0.1}, True)
    assert low.abstain and low.reason == (reason or "low evidence")


@pytest.mark.parametrize(("sentence", "abstains"), [(0.29, True), (0.31, False)])
def test_both_policies_abstain_under_the_sentence_floor(sentence: float, abstains: bool) -> None:
    ev = {"sentence": sentence, "type_found": 1.0, "names_found": 1.0, "score": 9.0, "ce_best": 9.0}
    assert AbstentionPolicy(0.5, 0.3, weights={"score": 1.0}).decide(ev, True).abstain is abstains
    assert AbstentionPolicy(0.5, 0.3, _learned()).decide(ev, True).abstain is abstains


def test_the_learned_policy_compares_p_answerable_with_the_threshold_and_answers_a_described_subject() -> None:
    policy = AbstentionPolicy(0.5, 0.0, _learned())
    assert policy.learned and policy.confidence({"ce_best": 0.0}) == 0.5
    assert not policy.decide({"ce_best": 1.0}, True).abstain
    below = policy.decide({"ce_best": -1.0, "type_found": 0.0}, True, "When did she go?", "She went.")
    assert below.abstain and below.confidence == pytest.approx(0.268941) and below.reason.startswith("no answer of the expected kind")
    assert not policy.decide({"ce_best": -1.0, "describes": 1.0}, True).abstain
    assert policy.decide({"ce_best": 9.0}, False).abstain  # nothing to quote


def test_never_answers_everything_with_the_same_estimate() -> None:
    policy = AbstentionPolicy(0.9, 0.5, _learned(), source="leftqa calibrate").never()
    assert (policy.threshold, policy.sentence_floor, policy.learned) == (-math.inf, 0.0, True)
    assert not policy.decide({"ce_best": -30.0, "sentence": 0.0}, True).abstain


def test_the_committed_calibration_round_trips_through_its_type() -> None:
    path = BUNDLED_SCORER / CALIBRATION_FILE
    data = json.loads(path.read_text("utf-8"))
    cal = read_calibration(path)
    assert cal.to_dict() == data
    assert cal.threshold == data["threshold"] and cal.curve[0].threshold == data["curve"][0]["threshold"]


def test_the_calibration_is_found_beside_its_scorer_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert calibration_path(None, BUNDLED_SCORER) == BUNDLED_SCORER / CALIBRATION_FILE
    assert calibration_path(None, None) == RULES_CALIBRATION
    assert calibration_path(Path("mine.json"), BUNDLED_SCORER) == Path("mine.json")
    rules = load_policy(None, None, RULES, "bundled:all-MiniLM-L6-v2", None)
    assert rules.source == "leftqa calibrate" and rules.threshold == read_calibration(RULES_CALIBRATION).threshold


def test_an_explicit_calibration_must_exist_and_match_its_scorer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the calibration"):
        load_policy(tmp_path / "missing.json", None, RULES, "m1", None)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(Calibration(0.3, scorer="other:1", model="m1").to_dict()), encoding="utf-8")
    with pytest.raises(ConfigError, match="made for scorer other:1"):
        load_policy(path, None, "mine:2", "m1", _learned())
    assert load_policy(path, None, "other:1", "m1", _learned()).threshold == 0.3
    path.write_text('{"threshold": "high"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid leftqa calibration"):
        read_calibration(path)


def test_a_refusal_for_a_name_the_corpus_lacks_names_only_that_name() -> None:
    policy = AbstentionPolicy(0.5, 0.0, _learned())
    ev = {"ce_best": 9.0, "names_in_corpus": 0.5}
    decision = policy.decide(ev, True, "What did Karl Kautsky tell Rosa Luxemburg?", "Emma Goldman wrote.", ["Karl Kautsky"])
    assert decision.abstain and decision.reason == "the corpus never mentions Karl Kautsky"
