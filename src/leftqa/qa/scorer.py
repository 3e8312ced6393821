"""The learned answer scorer: a MiniLM cross-encoder trained on SQuAD 2.0 (ONNX, int8), scoring question–sentence
pairs for "this sentence answers the question", and the learned weights that combine its score with the rule
features into the sentence ranking and the answerability estimate.

The model folder holds `model.onnx`, `tokenizer.json`, `scorer.json` (format, version, sha256 of every file,
max length, the combination weights) and `MODEL_CARD.md`; `leftqa train-scorer` writes it. Loading needs
onnxruntime and tokenizers only, never torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from leftqa.errors import ModelError, TrainingError
from leftqa.files import atomic_write_bytes, file_sha256

FORMAT = "leftqa-answer-scorer"
FORMAT_VERSION = 1
MANIFEST = "scorer.json"
BUNDLED_SCORER = Path(__file__).resolve().parent / "scorer_model"
# Sentence features the learned ranker reads, in order (built by qa/answer.py `sentence_features`).
SENTENCE_FEATURES = ("ce", "ce_rank", "rule", "rule_rank", "passage", "passage_rank", "cosine", "coverage", "type_ok", "bigram")
# Question-level features of the answerability estimate (keys of qa/answer.py `evidence`; read by qa/policy.py).
ANSWERABILITY_FEATURES = ("ce_best", "ce_margin", "combined_best", "sentence", "coverage", "passage", "passage_coverage", "names_found", "type_found")


@dataclass(frozen=True)
class Linear:
    """A logistic model: weights per named feature (inputs standardised by mean and scale), and a bias."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Linear":
        """Read one from its JSON form, checking the lengths agree."""
        feats = tuple(d["features"])
        parts = [tuple(float(x) for x in d[k]) for k in ("weights", "mean", "scale")]
        if any(len(p) != len(feats) for p in parts):
            raise ValueError("feature, weight, mean and scale lists differ in length")
        return cls(feats, parts[0], float(d["bias"]), parts[1], parts[2])

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Decision values for rows of features in `self.features` order."""
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.weights) + self.bias

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"features": list(self.features), "weights": list(self.weights), "bias": self.bias, "mean": list(self.mean), "scale": list(self.scale)}


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 for a constant column), as `Linear` stores them."""
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return x.mean(axis=0), scale


def fit_logistic(x: np.ndarray, y: np.ndarray, features: Sequence[str], l2: float, iters: int = 50) -> Linear:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    if len(set(y.tolist())) < 2:
        raise TrainingError("the fit needs both positive and negative examples")
    mean, scale = standardisation(x)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return Linear(tuple(features), tuple(float(v) for v in w[:-1]), float(w[-1]), tuple(float(v) for v in mean), tuple(float(v) for v in scale))


@dataclass(frozen=True)
class VerifierInfo:
    """The answer verifier a scorer folder may carry (scorer.json "verifier"): a second cross-encoder reading the
    question against the first quoted sentence with its neighbours, and the probability under which it refuses."""

    file: str
    max_length: int
    floor: float  # P(the window answers) under which the answer is refused; chosen on public data (model card)
    version: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VerifierInfo":
        """Read one from its JSON form."""
        floor = float(d["floor"])
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"verifier floor {floor} is not a probability below 1")
        return cls(str(d["file"]), int(d.get("max_length", 128)), floor, str(d.get("version", "")))


@dataclass(frozen=True)
class ScorerInfo:
    """What `scorer.json` says of a model folder."""

    version: str
    max_length: int
    candidates: int  # sentences scored per question (the best by the rules); the latency lever
    ranker: Linear | None
    answerability: Linear | None
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    extra: dict[str, Any] = field(default_factory=dict)
    # The model reads a sentence that points back with the sentence before it (manifest "sentence_context":
    # "previous"; `text.with_context`); older scorers read the sentence alone.
    context: bool = False
    verifier: VerifierInfo | None = None

    @property
    def id(self) -> str:
        """What a calibration is made with: the version and the model's checksum prefix."""
        return f"{self.version}:{self.files.get('model.onnx', '')[:16]}"


def read_info(folder: Path) -> ScorerInfo:
    """Parse and check a scorer folder's manifest (not the checksums: see `verify`)."""
    path = Path(folder) / MANIFEST
    try:
        d = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"no readable answer scorer at {folder} ({exc}); retrain it with `leftqa train-scorer`") from None
    if d.get("format") != FORMAT or int(d.get("format_version", 0)) != FORMAT_VERSION:
        raise ModelError(f"{path} is not a version-{FORMAT_VERSION} leftqa answer scorer")
    try:
        ranker = Linear.from_dict(d["ranker"]) if d.get("ranker") else None
        answerability = Linear.from_dict(d["answerability"]) if d.get("answerability") else None
        verifier = VerifierInfo.from_dict(d["verifier"]) if d.get("verifier") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: malformed combination weights ({exc})") from None
    context = d.get("sentence_context", "")
    if context not in ("", "previous"):
        raise ModelError(f"{path}: unknown sentence_context {context!r} (this leftqa reads \"previous\" or none)")
    keep = {k: v for k, v in d.items() if k not in ("format", "format_version", "version", "max_length", "candidates", "ranker", "answerability", "files", "sentence_context", "verifier")}
    return ScorerInfo(str(d.get("version", "")), int(d.get("max_length", 96)), int(d.get("candidates", 16)), ranker, answerability,
                      dict(d.get("files", {})), keep, context == "previous", verifier)  # fmt: skip


def record_file(folder: Path, name: str) -> None:
    """List a file of the scorer folder in its manifest with its sha256 (after `leftqa calibrate` rewrites it)."""
    path = Path(folder) / MANIFEST
    data = json.loads(path.read_text("utf-8"))
    data["files"] = {**data.get("files", {}), name: file_sha256(Path(folder) / name)}
    atomic_write_bytes(path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def verify(folder: Path, info: ScorerInfo) -> None:
    """Every file the manifest lists exists with its sha256; ModelError otherwise."""
    for name, digest in info.files.items():
        f = Path(folder) / name
        if not f.is_file():
            raise ModelError(f"answer scorer file {f} is missing; retrain with `leftqa train-scorer` or restore it from git")
        if file_sha256(f) != digest:
            raise ModelError(f"answer scorer file {f} does not match its checksum in {MANIFEST}; restore it from git")


class AnswerScorer:
    """Cross-encoder logits for (question, sentence) pairs, from the ONNX model of a scorer folder."""

    def __init__(self, folder: Path, info: ScorerInfo, session: Any, tokenizer: Any, verifier: tuple[Any, Any, frozenset[str]] | None = None) -> None:
        self.folder = folder
        self.info = info
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = input_names(session)
        self._verifier = verifier  # (session, tokenizer, input names) of the answer verifier, when the folder has one

    @classmethod
    def load(cls, folder: Path | str = BUNDLED_SCORER, threads: int = 1, check: bool = True) -> "AnswerScorer":
        """Load a scorer folder (the bundled one by default), checking its files against the manifest."""
        folder = Path(folder)
        info = read_info(folder)
        if check:
            verify(folder, info)
        try:
            from tokenizers import Tokenizer

            from leftqa.onnxrt import onnx_session

            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            session = onnx_session(folder / "model.onnx", threads)
            verifier = None
            if info.verifier is not None:
                # Its own tokenizer object: truncation is a setting of the object, and the verifier reads more tokens.
                vtok = Tokenizer.from_file(str(folder / "tokenizer.json"))
                vtok.no_padding()
                vtok.enable_truncation(max_length=info.verifier.max_length, strategy="only_second")
                vsession = onnx_session(folder / info.verifier.file, threads)
                verifier = (vsession, vtok, input_names(vsession))
        except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear message
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load the answer scorer at {folder}: {first[:300]}") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=info.max_length, strategy="only_second")
        return cls(folder, info, session, tokenizer, verifier)

    def reading(self, candidates: int) -> "AnswerScorer":
        """The same model reading `candidates` sentences per question (for trade-off measurements)."""
        return AnswerScorer(self.folder, replace(self.info, candidates=candidates), self._session, self._tokenizer, self._verifier)

    @property
    def has_verifier(self) -> bool:
        """Whether this scorer folder carries an answer verifier."""
        return self._verifier is not None

    def verified(self, question: str, window: str) -> float:
        """P(`window`, a quoted sentence with its neighbours, answers `question`) from the answer verifier."""
        if self._verifier is None:
            raise ModelError(f"the answer scorer at {self.folder} has no verifier")
        session, tok, inputs = self._verifier
        return sigmoid(float(cross_encoder_logits(session, tok, [(question, window)], inputs)[0]))

    def logits(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """One logit per sentence: higher means more likely to hold the answer to `question`."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        return cross_encoder_logits(self._session, self._tokenizer, [(question, s) for s in sentences], self._inputs)


def input_names(session: Any) -> frozenset[str]:
    """The input names an ONNX session takes (an exported model may lack token_type_ids)."""
    return frozenset(i.name for i in session.get_inputs())


def cross_encoder_logits(session: Any, tokenizer: Any, pairs: list[tuple[str, str]], inputs: frozenset[str] | None = None) -> np.ndarray:
    """The first logit of an ONNX cross-encoder for each (question, text) pair, padded into one batch (`inputs`: the
    session's `input_names`, read from it when not given)."""
    encodings = tokenizer.encode_batch(pairs)
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for r, e in enumerate(encodings):
        n = len(e.ids)
        ids[r, :n] = e.ids
        mask[r, :n] = 1
        types[r, :n] = e.type_ids
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    inputs = input_names(session) if inputs is None else inputs
    out = session.run(None, {k: v for k, v in feed.items() if k in inputs})[0]
    return np.asarray(out, dtype=np.float32).reshape(len(pairs), -1)[:, 0]


def sigmoid(x: float) -> float:
    """The logistic function, safe for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
