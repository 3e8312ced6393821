"""The answer-or-abstain decision, in one place: the calibration `leftqa calibrate` writes (a typed file that travels
with the answer scorer it calibrates) and the frozen policy read from it that decides, for every question, whether
the corpus answers it.

Two policies share one interface. With the learned answer scorer, P(answerable) from its answerability model is
compared with the calibrated threshold; without it (`LEFTQA_SCORER=none`), a linear confidence over the rule
evidence is. Both abstain, whatever the threshold, when the best sentence is nearly orthogonal to the question (the
calibrated cosine floor).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from leftqa.config import BUNDLED_MODEL
from leftqa.errors import ConfigError
from leftqa.files import write_json
from leftqa.qa.features import missing_names
from leftqa.qa.scorer import ANSWERABILITY_FEATURES, Linear, sigmoid

CALIBRATION_FILE = "calibration.json"  # beside the scorer's model, listed with its checksum in scorer.json
# The rules' calibration ships in the package, so `LEFTQA_SCORER=none` is calibrated from any folder too.
RULES_CALIBRATION = Path(__file__).resolve().parent / "rules_calibration.json"
RULES = "rules"  # the scorer id of the rule-based policy
# A descriptive request whose subject the quote is about ("Who was Bukharin?") is answered whatever the threshold:
# its score is put above any probability (the answer scorer, trained on factual questions, underrates them).
DESCRIBES_SCORE = 2.0
NOT_COVERED = "The corpus does not seem to cover this question, so I won't quote anything as an answer."


@dataclass(frozen=True)
class CurvePoint:
    """One threshold on the abstention trade-off curve."""

    threshold: float
    abstention_recall: float
    false_abstention: float


@dataclass(frozen=True)
class Calibration:
    """What `leftqa calibrate` chose and how (the contract of calibration.json)."""

    threshold: float
    sentence_floor: float = 0.0
    weights: Mapping[str, float] = field(default_factory=dict)  # the rules' confidence weights ({} when learned)
    answerability: Linear | None = None  # a refit of the scorer's answerability model (`--answerability refit|adapt`)
    scorer: str = RULES  # the scorer id it was made with (`scorer_id`)
    model: str = BUNDLED_MODEL
    source: str = "default"
    case_files: tuple[str, ...] = ()
    answerable: int = 0  # tuning cases it was fitted on
    unanswerable: int = 0
    max_false_abstention: float | None = None
    abstention_recall: float | None = None
    false_abstention: float | None = None
    created: str = ""
    curve: tuple[CurvePoint, ...] = ()
    answerability_fit: str = ""  # keep | adapt | refit (only with `answerability`)
    answerability_l2: float | None = None
    folds: int | None = None
    false_abstention_bound: float | None = None
    bound: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (keys in the order calibration.json has always had; unset optional fields left out)."""
        d: dict[str, Any] = {"weights": dict(self.weights), "threshold": self.threshold}
        if self.answerability is not None:
            d.update(answerability=self.answerability.to_dict(), answerability_fit=self.answerability_fit,
                     answerability_l2=self.answerability_l2, folds=self.folds)  # fmt: skip
        d.update(sentence_floor=self.sentence_floor, source=self.source, model=self.model)
        if self.scorer != RULES:
            d["scorer"] = self.scorer
        d.update(case_files=list(self.case_files), cases={"answerable": self.answerable, "unanswerable": self.unanswerable})
        optional = {"max_false_abstention": self.max_false_abstention, "false_abstention_bound": self.false_abstention_bound,
                    "bound": self.bound or None, "abstention_recall": self.abstention_recall,
                    "false_abstention": self.false_abstention}  # fmt: skip
        d.update({k: v for k, v in optional.items() if v is not None})
        d.update(created=self.created, curve=[p.__dict__ for p in self.curve])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Calibration":
        """Read one from its JSON form; ValueError (or KeyError, TypeError) when malformed."""
        if not isinstance(d.get("weights"), dict) or isinstance(d.get("threshold"), bool) or not isinstance(d.get("threshold"), (int, float)):
            raise ValueError("a calibration needs weights and a numeric threshold")
        raw = d.get("answerability")
        cases = d.get("cases") or {}
        opt = {k: (None if d.get(k) is None else float(d[k])) for k in
               ("max_false_abstention", "abstention_recall", "false_abstention", "answerability_l2", "false_abstention_bound")}  # fmt: skip
        return cls(
            threshold=float(d["threshold"]),
            sentence_floor=float(d.get("sentence_floor", 0.0)),
            weights={str(k): float(v) for k, v in d["weights"].items()},
            answerability=Linear.from_dict(raw) if raw is not None else None,
            scorer=str(d.get("scorer", RULES)),
            model=str(d.get("model", BUNDLED_MODEL)),
            source=str(d.get("source", "")),
            case_files=tuple(str(f) for f in d.get("case_files", ())),
            answerable=int(cases.get("answerable", 0)),
            unanswerable=int(cases.get("unanswerable", 0)),
            created=str(d.get("created", "")),
            curve=tuple(CurvePoint(float(p["threshold"]), float(p["abstention_recall"]), float(p["false_abstention"])) for p in d.get("curve", ())),
            answerability_fit=str(d.get("answerability_fit", "")),
            folds=None if d.get("folds") is None else int(d["folds"]),
            bound=str(d.get("bound", "")),
            **opt,
        )


def default_calibration(scorer: str = RULES) -> Calibration:
    """The uncalibrated defaults: the rules' weights, or an even-odds answerability threshold for a scorer."""
    if scorer == RULES:
        return Calibration(threshold=0.75, sentence_floor=0.25, weights={"sentence": 1.0, "passage_coverage": 0.6})
    return Calibration(threshold=0.5, scorer=scorer)


def read_calibration(path: Path) -> Calibration:
    """A calibration file, validated; ConfigError when it is missing or malformed."""
    try:
        return Calibration.from_dict(json.loads(Path(path).read_text("utf-8")))
    except OSError as exc:
        raise ConfigError(f"cannot read the calibration {path} ({exc.strerror or exc}); run `leftqa calibrate` to write one") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path} is not a valid leftqa calibration ({exc}); run `leftqa calibrate` to write it again") from None


def load_calibration(path: Path, model: str, scorer: str = RULES) -> Calibration:
    """The calibration at `path` when it is readable and was made for this embedding model and scorer, else the
    defaults."""
    try:
        cal = read_calibration(path)
    except ConfigError:
        return default_calibration(scorer)
    return default_calibration(scorer) if mismatch(cal, model, scorer) else cal


def mismatch(cal: Calibration, model: str, scorer: str) -> str:
    """Why a calibration cannot serve this embedding model and scorer (its thresholds mean nothing for another), or
    "" when it can."""
    if cal.model != model or cal.scorer != scorer:
        return f"it was made for scorer {cal.scorer} and model {cal.model}, not {scorer} and {model}"
    if cal.answerability is not None and (scorer == RULES or not set(cal.answerability.features) <= set(ANSWERABILITY_FEATURES)):
        return "its answerability refit reads evidence this scorer does not provide"
    return ""


def write_calibration(path: Path, calibration: Calibration) -> None:
    """Write a calibration file atomically."""
    write_json(Path(path), calibration.to_dict())


@dataclass(frozen=True)
class Decision:
    """Answer or abstain, with the confidence it rests on and, when abstaining, why in words."""

    abstain: bool
    confidence: float
    reason: str = ""


@dataclass(frozen=True)
class AbstentionPolicy:
    """Decides from a question's evidence whether the corpus answers it; built from a `Calibration`."""

    threshold: float
    sentence_floor: float = 0.0
    answerability: Linear | None = None  # the learned model; None: the rules' linear confidence
    weights: Mapping[str, float] = field(default_factory=dict)
    source: str = "default"

    @classmethod
    def from_calibration(cls, cal: Calibration, answerability: Linear | None) -> "AbstentionPolicy":
        """The policy of a calibration; `answerability` is the scorer's own model (None: the rules decide)."""
        if answerability is None:
            return cls(cal.threshold, cal.sentence_floor, None, dict(cal.weights), cal.source)
        return cls(cal.threshold, cal.sentence_floor, cal.answerability or answerability, {}, cal.source)

    @property
    def learned(self) -> bool:
        """Whether the learned answerability estimate decides (else the rules)."""
        return self.answerability is not None

    def never(self) -> "AbstentionPolicy":
        """The same estimate with no threshold and no floor: answers everything (for calibration and measuring)."""
        return replace(self, threshold=-math.inf, sentence_floor=0.0, source="never abstain")

    def confidence(self, ev: Mapping[str, float]) -> float:
        """P(answerable) from the learned model, or the rules' linear confidence."""
        if self.answerability is None:
            return sum(self.weights.get(k, 0.0) * v for k, v in ev.items())
        x = np.asarray([[float(ev.get(k, 0.0)) for k in self.answerability.features]], dtype=np.float64)
        return round(sigmoid(float(self.answerability.logit(x)[0])), 6)

    def score(self, ev: Mapping[str, float], confidence: float | None = None) -> float:
        """What the threshold is compared with (`decision_score`)."""
        return decision_score(ev, self.confidence(ev) if confidence is None else confidence, self.learned)

    def forced(self, ev: Mapping[str, float]) -> bool:
        """Abstain whatever the threshold (`forced`)."""
        return forced(ev, self.sentence_floor, self.learned)

    def decide(self, ev: Mapping[str, float], has_candidates: bool, question: str = "", closest: str = "",
               absent: Sequence[str] = ()) -> Decision:  # fmt: skip
        """Answer or abstain on one question's evidence; for the reason, `closest` is the best sentence's passage and
        `absent` the question's names the corpus never mentions."""
        conf = self.confidence(ev)
        abstain = not has_candidates or self.forced(ev) or self.score(ev, conf) < self.threshold
        if not abstain:
            return Decision(False, conf)
        if absent and ev.get("names_in_corpus", 1.0) < 1.0:
            return Decision(True, conf, "the corpus never mentions " + ", ".join(absent))
        if self.learned:
            return Decision(True, conf, learned_reason(ev, question, closest))
        return Decision(True, conf, forced_reason(ev) or "low evidence")


def decision_score(ev: Mapping[str, float], confidence: float, learned: bool) -> float:
    """What a threshold is compared with: the confidence, or (learned) above any probability for a described
    subject."""
    return DESCRIBES_SCORE if learned and ev.get("describes") else confidence


def forced(ev: Mapping[str, float], sentence_floor: float, learned: bool) -> bool:
    """Abstain whatever the threshold: the best sentence under the cosine floor, a name the corpus never mentions
    (or, as an option, the quote does not), or (rules) `forced_reason`."""
    # "verified": the answer verifier's probability reached its floor; the three before it: options, off by default
    gates = ("names_in_corpus", "names_in_quote", "type_gate", "subject_quoted", "verified")
    if ev.get("sentence", 0.0) < sentence_floor or min(ev.get(g, 1.0) for g in gates) < 1.0:
        return True
    return not learned and bool(forced_reason(ev))


def learned_reason(ev: Mapping[str, float], question: str, closest: str) -> str:
    """Why a learned-model abstention happened, in words: what the closest material lacks."""
    missing = missing_names(question, closest)
    if missing:
        return "the closest material does not mention " + ", ".join(missing)
    if ev.get("subject_quoted", 1.0) == 0.0:
        return "the closest sentence is about someone else"
    if ev.get("type_found", 1.0) == 0.0 or ev.get("type_gate", 1.0) == 0.0:
        return "no answer of the expected kind (a date, number or name) in the closest material"
    if ev.get("verified", 1.0) == 0.0:
        return "the closest sentences are on the subject but do not say what was asked"
    return "the closest material does not answer it"


def forced_reason(ev: Mapping[str, float]) -> str:
    """Why the evidence rules out an answer under the rules whatever the confidence, or "" when nothing does: a
    when / how-long / how-many / who / where question whose quote holds no date, number or name, or a quote whose
    passage misses a name the question asks about."""
    if ev.get("names_in_corpus", 1.0) < 1.0:
        return "the corpus never mentions a name the question asks about"
    if ev.get("type_found", 1.0) == 0.0:
        return "no answer of the expected kind (a date, number or name) in the closest material"
    if ev.get("names_found", 1.0) < 1.0:
        return "the closest material does not mention everything the question names"
    return ""


def calibration_path(explicit: Path | None, scorer_folder: Path | None) -> Path:
    """Where a calibration is read and written: the explicit `Settings.calibration_path`, else the file beside the
    scorer it calibrates (the package's rules calibration without one), so every folder finds the same one."""
    if explicit is not None:
        return Path(explicit)
    return RULES_CALIBRATION if scorer_folder is None else Path(scorer_folder) / CALIBRATION_FILE


def load_policy(explicit: Path | None, scorer_folder: Path | None, scorer: str, model: str, answerability: Linear | None) -> AbstentionPolicy:
    """The policy for a scorer (`scorer` its id, RULES without one): its own calibration, or the one named
    explicitly, which must then exist and have been made for this scorer and embedding model."""
    path = calibration_path(explicit, scorer_folder)
    if explicit is None:
        return AbstentionPolicy.from_calibration(load_calibration(path, model, scorer), answerability)
    cal = read_calibration(path)
    why = mismatch(cal, model, scorer)
    if why:
        raise ConfigError(f"the calibration {path} cannot be used: {why}; run `leftqa calibrate` for this setup")
    return AbstentionPolicy.from_calibration(cal, answerability)
