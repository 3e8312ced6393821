"""Training the answer scorer: SQuAD pairs, the logistic fits, and a smoke run of `leftqa train-scorer` end to end."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, subprocess_env
from leftqa.errors import TrainingError
from leftqa.train import combiner
from leftqa.train.combiner import auc, false_abstention_for, fit_logistic, fit_softmax, refused_at
from leftqa.train.pairs import Pair, load_squad, make_pairs, split_articles

PARA = (
    "The Harbour Committee was led by Marta Quell. She organised the first public meeting in the town hall. "
    "The breakwater was finished in 1840."
)
OTHER = "The lighthouse keepers lived on the point near the harbour. Edwin Tallow kept the light for thirty years."


def _squad(articles: list[dict]) -> dict:
    return {"version": "v2.0", "data": articles}


def _article(title: str, paragraphs: list[tuple[str, list[dict]]]) -> dict:
    return {"title": title, "paragraphs": [{"context": c, "qas": q} for c, q in paragraphs]}


def _q(qid: str, question: str, answer: str, context: str, impossible: bool = False) -> dict:
    span = {"text": answer, "answer_start": context.index(answer)}
    if impossible:
        return {"id": qid, "question": question, "is_impossible": True, "answers": [], "plausible_answers": [span]}
    return {"id": qid, "question": question, "is_impossible": False, "answers": [span]}


def _fenwick() -> dict:
    """Two paragraphs: an answerable and an unanswerable question on the first, one answerable on the second."""
    return _article("Fenwick", [
        (PARA, [_q("a", "Who led the Harbour Committee?", "Marta Quell", PARA),
                _q("b", "Who led the lighthouse committee?", "Marta Quell", PARA, impossible=True)]),
        (OTHER, [_q("c", "Who kept the light?", "Edwin Tallow", OTHER)]),
    ])  # fmt: skip


def test_pairs_mark_the_answer_sentence_and_choose_hard_negatives() -> None:
    art = _fenwick()
    pairs = list(make_pairs([art], seed=1))
    s0, s1, s2 = "The Harbour Committee was led by Marta Quell.", "She organised the first public meeting in the town hall.", "The breakwater was finished in 1840."
    o0, o1 = "The lighthouse keepers lived on the point near the harbour.", "Edwin Tallow kept the light for thirty years."
    q = "Who led the Harbour Committee?"
    # positive, best-overlap negative, one random other, the best-overlap sentence of another paragraph
    assert pairs[0] == Pair(q, s0, 1.0) and pairs[1].label == 0.0 and pairs[2].label == 0.0
    assert {pairs[1].sentence, pairs[2].sentence} == {s1, s2}
    assert pairs[3] == Pair(q, o0, 0.0)  # shares "harbour"; a paragraph with no shared word gives no negative
    # the unanswerable question: its plausible-answer sentence is a negative
    q2 = "Who led the lighthouse committee?"
    assert Pair(q2, s0, 0.0) in pairs and not any(p.label for p in pairs if p.question == q2)
    assert Pair("Who kept the light?", o1, 1.0) in pairs
    assert pairs == list(make_pairs([art], seed=1))  # seeded


def test_with_context_a_sentence_that_points_back_carries_the_one_before_it() -> None:
    art = _fenwick()
    plain, context = list(make_pairs([art], seed=1)), list(make_pairs([art], seed=1, context=True))
    # the same questions, labels and groups: only what is read of a sentence changes
    assert [(p.question, p.label, p.group) for p in plain] == [(p.question, p.label, p.group) for p in context]
    s0, s1 = "The Harbour Committee was led by Marta Quell.", "She organised the first public meeting in the town hall."
    changed = {(a.sentence, b.sentence) for a, b in zip(plain, context) if a != b}
    assert changed == {(s1, f"{s1} [SEP] {s0}")}
    assert Pair("Who led the Harbour Committee?", s0, 1.0) in context  # a first sentence never carries anything


def test_held_out_articles_are_a_seeded_choice() -> None:
    arts = [{"title": str(i), "paragraphs": []} for i in range(10)]
    train, held = split_articles(arts, 3, seed=13)
    assert len(train) == 7 and len(held) == 3 and {a["title"] for a in train} | {a["title"] for a in held} == {str(i) for i in range(10)}
    assert split_articles(arts, 3, seed=13) == (train, held)
    assert split_articles(arts, 50, seed=13)[0]  # never holds out everything


def test_squad_files_are_read_plain_or_gzipped_and_bad_ones_refused(tmp_path: Path) -> None:
    doc = _squad([_article("A", [(PARA, [])])])
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
    assert load_squad(tmp_path / "a.json") == load_squad(tmp_path / "a.json.gz") == doc["data"]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(TrainingError, match="cannot read SQuAD data"):
        load_squad(tmp_path / "bad.json")


def test_logistic_fit_separates_and_reports_standardisation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2)) * [1.0, 10.0] + [0.0, 5.0]
    y = (x[:, 0] > 0).astype(float)  # only the first feature matters
    model = fit_logistic(x, y, ("useful", "noise"), l2=1.0)
    assert model.weights[0] > 3.0 and abs(model.weights[1]) < 0.5
    assert model.mean[1] == pytest.approx(x[:, 1].mean()) and model.scale[1] == pytest.approx(x[:, 1].std())
    accuracy = ((model.logit(x) > 0) == (y > 0)).mean()
    assert accuracy > 0.97
    with pytest.raises(TrainingError):
        fit_logistic(x, np.ones(len(x)), ("a", "b"), 1.0)


def _groups(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Questions of 6 candidates: the labelled one has the highest "useful" value, "shift" is one random value
    per question (it says nothing about which candidate answers), "noise" is noise."""
    out = []
    for _ in range(n):
        useful = rng.normal(size=6)
        y = np.zeros(6)
        y[int(np.argmax(useful + rng.normal(scale=0.3, size=6)))] = 1.0
        x = np.column_stack([useful, np.full(6, rng.normal(scale=5.0)), rng.normal(size=6)])
        out.append((x, y))
    return out


def test_softmax_fit_learns_the_within_question_choice() -> None:
    groups = _groups(np.random.default_rng(1), 300)
    model = fit_softmax(groups, ("useful", "shift", "noise"), l2=1.0)
    # A value shared by all of a question's candidates cannot move the softmax: its weight stays at the prior, 0.
    assert model.weights[0] > 3.0 and model.weights[1] == pytest.approx(0.0, abs=1e-6) and abs(model.weights[2]) < 0.3
    top1 = np.mean([y[int(np.argmax(model.logit(x)))] for x, y in groups])
    assert top1 > 0.8
    # The bias puts the logits on the pointwise scale: on average they predict one labelled row in six.
    probs = 1.0 / (1.0 + np.exp(-np.concatenate([model.logit(x) for x, _ in groups])))
    assert probs.mean() == pytest.approx(1 / 6, abs=1e-6)
    with pytest.raises(TrainingError):
        fit_softmax([(x, np.zeros(len(x))) for x, _ in groups], ("a", "b", "c"), 1.0)


def test_auc_counts_ordered_pairs() -> None:
    assert auc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auc([0.1, 0.9], [True, False]) == 0.0
    assert auc([0.5, 0.5, 0.7, 0.2], [True, False, True, False]) == pytest.approx(0.875)


def test_operating_points_trade_refusal_against_false_abstention() -> None:
    # answerable 1..10; unanswerable 0.5, 1.5, 2.5, 3.5, 9.5
    scores = [float(v) for v in range(1, 11)] + [0.5, 1.5, 2.5, 3.5, 9.5]
    labels = [True] * 10 + [False] * 5
    assert refused_at(scores, labels, 0.0) == 0.2  # threshold 1: only 0.5 is below it
    assert refused_at(scores, labels, 0.1) == 0.4  # one answerable (1) may go: threshold 2
    assert refused_at(scores, labels, 0.29) == 0.6  # 2.9 answerable cases round down to 2: threshold 3
    assert refused_at(scores, labels, 0.3) == 0.8  # threshold 4: 0.5, 1.5, 2.5, 3.5
    assert refused_at(scores, labels, 1.0) == 1.0
    assert false_abstention_for(scores, labels, 0.8) == 0.3  # refusing 3.5 abstains on 1, 2, 3
    assert false_abstention_for(scores, labels, 0.81) == 0.9  # the fifth, 9.5, takes nine answerable with it
    assert false_abstention_for(scores, labels, 0.0) == 0.0
    assert math.isnan(false_abstention_for(scores, [True] * 15, 0.8)) and math.isnan(refused_at(scores, [False] * 15, 0.04))


@pytest.mark.e2e
def test_train_scorer_smoke_run_writes_a_loadable_scorer(tmp_path: Path) -> None:
    """A tiny but real run of the one command: train, export to ONNX int8, fit, write, load, score."""
    from leftqa.app.cli import main
    from leftqa.qa.scorer import AnswerScorer

    facts = [
        ("Harbour", "The Harbour Committee was led by Marta Quell. It met in the town hall every month. The breakwater was finished in 1840.",
         [("Who led the Harbour Committee?", "Marta Quell"), ("When was the breakwater finished?", "1840"), ("Where did the committee meet?", "the town hall")]),
        ("Lighthouse", "Edwin Tallow kept the light for thirty years. The lamp burned whale oil until 1880. Ice closed the harbour in 1895.",
         [("Who kept the light?", "Edwin Tallow"), ("What did the lamp burn?", "whale oil"), ("When did ice close the harbour?", "1895")]),
        ("Guild", "The Weavers Guild was founded by twelve masters. Apprentices stayed for seven years. Hester Vane led the strike of 1902.",
         [("Who founded the Weavers Guild?", "twelve masters"), ("How long did apprentices stay?", "seven years"), ("Who led the strike?", "Hester Vane")]),
        ("Mill", "The mill was built on the river in 1790. Its wheel drove four pairs of stones. Flour went to the city by barge.",
         [("When was the mill built?", "1790"), ("What did the wheel drive?", "four pairs of stones"), ("How did flour reach the city?", "by barge")]),
    ]  # fmt: skip
    articles = []
    for t, (title, context, qs) in enumerate(facts):
        qas = [_q(f"{t}-{i}", q, a, context) for i, (q, a) in enumerate(qs)]
        qas.append(_q(f"{t}-x", f"Who painted the {title.lower()}?", context.split()[0], context, impossible=True))
        articles.append(_article(title, [(context, qas), (OTHER, [_q(f"{t}-o", "Who kept the light for thirty years?", "Edwin Tallow", OTHER)])]))
    squad = tmp_path / "squad2-train.json.gz"
    squad.write_bytes(gzip.compress(json.dumps(_squad(articles)).encode()))
    out = tmp_path / "scorer"
    rc = main(["train-scorer", "--squad", str(tmp_path), "--out", str(out), "--pairs", "30", "--layers", "1",
               "--holdout", "1", "--combiner-sample", "2", "--combiner-missing", "2", "--freeze-embeddings", "--candidates", "4", "--serve-candidates", "3", "--workdir", str(tmp_path / "work"),
               "--ranker-loss", "softmax"])  # fmt: skip
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "model.onnx", "scorer.json", "tokenizer.json"]
    info = json.loads((out / "scorer.json").read_text())
    assert info["training"]["pairs_used"] == 30 and info["training"]["config"]["layers"] == 1
    assert len(info["training"]["held_out_articles"]) == 1 and (info["candidates"], info["fit_candidates"]) == (3, 4)
    # 2 answerable, 1 of SQuAD's unanswerable and 2 answerable ones asked without their paragraph
    assert (info["metrics"]["questions"], info["metrics"]["answerable"], info["metrics"]["missing_questions"]) == (5, 2, 2)
    assert info["training"]["config"]["freeze_embeddings"] is True and info["metrics"]["ranker_loss"] == "softmax"
    card = (out / "MODEL_CARD.md").read_text()
    assert "CC BY-SA 4.0" in card and "--pairs 30 --layers 1 --freeze-embeddings --combiner-missing 2 --ranker-loss softmax" in card
    assert set(info["metrics"]["cv_refused_missing"]) == {"0.02", "0.04", "0.1"}
    assert "| missing (own paragraph taken out) refused at false abstention 0.04 |" in card
    assert "| false abstention needed to refuse 80% of SQuAD's unanswerable |" in card
    scorer = AnswerScorer.load(out)
    assert scorer.info.ranker is not None and scorer.info.answerability is not None
    assert scorer.logits("Who kept the light?", ["Edwin Tallow kept the light.", "The guild met."]).shape == (2,)
    progress = json.loads((tmp_path / "work" / "checkpoint" / "progress.json").read_text())
    assert progress["pairs"] == 30 and progress["config"]["layers"] == 1

    # The answer verifier starts from that checkpoint and goes into a copy of the scorer folder, checksummed.
    import shutil

    verified = tmp_path / "verified"
    shutil.copytree(out, verified)
    rc = main(["train-verifier", "--squad", str(tmp_path), "--init", str(tmp_path / "work" / "checkpoint"), "--out", str(verified),
               "--max-steps", "2", "--workdir", str(tmp_path / "vwork")])  # fmt: skip
    assert rc == 0
    vinfo = json.loads((verified / "scorer.json").read_text())["verifier"]
    assert vinfo["file"] == "verifier.onnx" and vinfo["max_length"] == 128 and 0.0 <= vinfo["floor"] < 1.0
    assert vinfo["training"]["progress"]["step"] == vinfo["training"]["progress"]["steps"] == 1 and vinfo["training"]["init"]["pairs"] == 30
    assert vinfo["version"].startswith("minilm-verifier-1l-") and "auc_near-topic" in vinfo["metrics"]
    loaded = AnswerScorer.load(verified)
    assert loaded.has_verifier and 0.0 < loaded.verified("Who kept the light?", "Edwin Tallow kept the light.") < 1.0
    assert loaded.info.id == scorer.info.id  # the scorer's calibration still applies

    # The answerability curve reruns the fit protocol on the held-out questions the run cached.
    curve = tmp_path / "curve.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "answerability_curve.py"), "--squad", str(tmp_path), "--scorer", str(out),
                           "--workdir", str(tmp_path / "work"), "--json", str(curve)], capture_output=True, text=True, timeout=600, env=subprocess_env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(curve.read_text())
    assert result["scorer"] == info["version"] and result["questions"] == 5
    assert set(result["base"]) == {"impossible", "missing", "all"} and set(result["base"]["all"]["refused_at"]) == {"0.02", "0.03", "0.04", "0.1", "0.2"}
    assert "refused at false abstention 0.02" in proc.stdout
    # ... and writes a scorer refitted with the window_names feature, which loads under its new version.
    refit = tmp_path / "refit"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "answerability_curve.py"), "--squad", str(tmp_path), "--scorer", str(out),
                           "--workdir", str(tmp_path / "work"), "--window-names", "--write-scorer", str(refit), "--version", "refit-1"],
                          capture_output=True, text=True, timeout=600, env=subprocess_env(), check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    refitted = AnswerScorer.load(refit)
    assert refitted.info.version == "refit-1" and refitted.info.answerability.features[-1] == "window_names"
    assert "calibration.json" not in refitted.info.files and refitted.info.id != scorer.info.id

    # A second stage continues from the first one's checkpoint on the pairs after its 30, at another rate.
    stage2 = tmp_path / "scorer2"
    rc = main(["train-scorer", "--squad", str(tmp_path), "--out", str(stage2), "--pairs", "0", "--layers", "1",
               "--holdout", "1", "--combiner-sample", "2", "--combiner-missing", "2", "--freeze-embeddings", "--candidates", "4", "--serve-candidates", "3", "--workdir", str(tmp_path / "work2"),
               "--ranker-loss", "softmax", "--init", str(tmp_path / "work" / "checkpoint"), "--skip-pairs", "30", "--lr", "2e-5",
               "--loss", "listwise", "--missing-share", "1", "--context", "previous"])  # fmt: skip
    assert rc == 0
    info2 = json.loads((stage2 / "scorer.json").read_text())
    assert info2["training"]["pairs_used"] == 17 and info2["training"]["config"]["skip_pairs"] == 30
    assert info2["training"]["missing_pairs_used"] > 0 and info2["training"]["config"]["missing_share"] == 1
    assert info2["training"]["run"]["init"]["pairs"] == 30 and info2["training"]["run"]["init"]["config"]["lr"] == 4e-5
    card2 = (stage2 / "MODEL_CARD.md").read_text()
    assert "--pairs 30 --layers 1 --freeze-embeddings --combiner-missing 2 --ranker-loss softmax --workdir build/scorer-stage1" in card2
    stage2_cmd = (f"--pairs {info2['training']['pairs_used']} --layers 1 --lr 2e-05 --freeze-embeddings --missing-share 1 --context previous --loss listwise"
                  " --combiner-missing 2 --ranker-loss softmax --init build/scorer-stage1/checkpoint --skip-pairs 30")  # fmt: skip
    assert stage2_cmd in card2 and "\"missing\" pairs" in card2
    assert info2["version"] != info["version"]  # trained further, so another model file
    # The second stage reads a sentence that points back ("It met in the town hall …") with the one before it.
    assert info2["sentence_context"] == "previous" and info2["training"]["config"]["context"] is True
    assert "sentence_context" not in info and AnswerScorer.load(stage2).info.context and not scorer.info.context


def test_missing_questions_are_asked_of_the_other_paragraphs_without_their_answer() -> None:
    from leftqa.train.pairs import missing_pairs

    third = "Marta Quell kept the harbour accounts. The committee of Marta Quell bought a lamp for the light."
    art = _fenwick()
    art["paragraphs"].append({"context": third, "qas": []})
    pairs = list(missing_pairs([art], {"Who led the Harbour Committee?", "Who kept the light?"}, 1.0, seed=0, first_group=7))
    by_q = {}
    for p in pairs:
        by_q.setdefault(p.question, []).append(p)
    # Sentences of other paragraphs sharing a content word, never one holding the answer ("Marta Quell"), all negative.
    assert [p.sentence for p in by_q["Who led the Harbour Committee?"]] == [
        "The lighthouse keepers lived on the point near the harbour."]
    assert [p.sentence for p in by_q["Who kept the light?"]] == [
        "Marta Quell kept the harbour accounts.", "The committee of Marta Quell bought a lamp for the light."]
    assert all(p.label == 0.0 for p in pairs) and sorted({p.group for p in pairs}) == [7, 8]
    # The unanswerable question is never one; a share of 0 asks none.
    assert "Who led the lighthouse committee?" not in by_q
    assert list(missing_pairs([art], {"Who kept the light?"}, 0.0, seed=0, first_group=0)) == []


def test_a_second_stage_takes_the_questions_after_the_first() -> None:
    from leftqa.train.run import take_groups

    groups = [["a1", "a2"], ["b1"], ["c1", "c2", "c3"], ["d1"]]
    first, after = take_groups(groups, 0, 3)
    assert (first, after) == (["a1", "a2", "b1"], 2)
    assert take_groups(groups, after, 3) == (["c1", "c2", "c3"], 3)
    assert take_groups(groups, after, 2) == ([], 2)  # never half a question
    assert take_groups(groups, after, 0) == (["c1", "c2", "c3", "d1"], 4)


def test_training_from_a_folder_that_is_not_a_checkpoint_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from leftqa.train.crossencoder import TrainConfig, train

    with pytest.raises(TrainingError, match="not a training checkpoint"):
        train([Pair("q", "s", 1.0, 0)], tmp_path / "out", TrainConfig(), init=tmp_path)


def test_without_drops_a_documents_passages_and_moves_later_ranks_up() -> None:
    """A "missing" question is asked as if its paragraph were not indexed: its passages and sentences go, the
    passages after it move up a rank, and every per-passage signal stays with its passage."""
    from types import SimpleNamespace

    from leftqa.qa.retrieve import Retrieval, SentenceEvidence
    from leftqa.train.combiner import without

    docs = ["a.txt", "gold.txt", "gold.txt", "b.txt"]  # passage position -> document
    index = SimpleNamespace(passages=[SimpleNamespace(doc_id=d) for d in docs])
    order = np.array([1, 3, 2, 0])  # ranked positions: gold first and third

    def ev(rank: int, pos: int) -> SentenceEvidence:
        return SentenceEvidence(rank, pos, 0, 0.1 * pos, 0.0, 0.0, 0.0, frozenset())

    r = Retrieval("q", "hybrid", order, np.array([0.9, 0.8, 0.7, 0.6]), np.array([1.0, 0.5, 0.4, 0.3]),
                  np.array([0.6, 0.5, 0.4, 0.3]), np.array([0.7, 0.6, 0.5, 0.4]), np.zeros(3), None, "date",
                  tuple(ev(i, int(p)) for i, p in enumerate(order)))  # fmt: skip
    w = without(r, "gold.txt", index)
    assert w.positions.tolist() == [3, 0]
    assert w.scores.tolist() == [0.8, 0.6] and w.bm25.tolist() == [0.5, 0.3]
    assert w.dense.tolist() == [0.5, 0.3] and w.sentence.tolist() == [0.6, 0.4]
    assert [(s.rank, s.pos) for s in w.sentences] == [(0, 3), (1, 0)]
    assert without(r, "elsewhere.txt", index).positions.tolist() == order.tolist()


def test_pairs_carry_their_question_number_and_group_whole() -> None:
    from leftqa.train.pairs import grouped

    art = _fenwick()
    pairs = list(make_pairs([art], seed=1))
    groups = grouped(pairs)
    assert [g[0].question for g in groups] == ["Who led the Harbour Committee?", "Who led the lighthouse committee?", "Who kept the light?"]
    assert [p.group for p in pairs] == [0] * len(groups[0]) + [1] * len(groups[1]) + [2] * len(groups[2])
    assert [sum(p.label for p in g) for g in groups] == [1.0, 0.0, 1.0]


def test_group_batches_keep_every_question_whole_and_in_one_batch() -> None:
    import random

    from leftqa.train.crossencoder import group_batches

    groups = [[Pair(f"q{g}", f"s{g}-{i}", float(i == 0), g) for i in range(3 + g % 3)] for g in range(40)]
    batches = group_batches(groups, 8, random.Random(0), pool=2)
    seen = [p for b in batches for p in b]
    assert sorted((p.group, p.sentence) for p in seen) == sorted((p.group, p.sentence) for g in groups for p in g)
    for b in batches:  # a question's pairs are adjacent, and no question is split across batches
        order = [p.group for p in b]
        runs = [k for i, k in enumerate(order) if i == 0 or order[i - 1] != k]
        assert len(runs) == len(set(order))
    where = {}
    for n, b in enumerate(batches):
        for p in b:
            assert where.setdefault(p.group, n) == n


def test_listwise_loss_is_a_softmax_against_a_no_answer_logit_of_zero() -> None:
    torch = pytest.importorskip("torch")
    from leftqa.train.crossencoder import listwise_loss

    rows = [Pair("a", "x", 1.0, 0), Pair("a", "y", 0.0, 0), Pair("b", "z", 0.0, 1), Pair("b", "w", 0.0, 1)]
    logits = torch.tensor([2.0, 1.0, -1.0, 0.5])
    # question a: target its positive among [0, 2, 1]; question b (no positive): target the no-answer slot of [0, -1, 0.5]
    a = -2.0 + np.log(np.exp(0.0) + np.exp(2.0) + np.exp(1.0))
    b = 0.0 + np.log(np.exp(0.0) + np.exp(-1.0) + np.exp(0.5))
    assert float(listwise_loss(logits, rows)) == pytest.approx((a + b) / 2, abs=1e-6)


def test_an_unknown_loss_is_refused() -> None:
    from leftqa.train.crossencoder import TrainConfig, train

    with pytest.raises(TrainingError, match="unknown loss"):
        train([Pair("q", "s", 1.0, 0)], Path("/nonexistent"), TrainConfig(loss="hinge"))


def test_make_scorer_runs_the_commands_of_the_shipped_model_card() -> None:
    """`make scorer` reproduces the shipped scorer: its recipe is the model card's Retrain commands, in order."""
    import re

    root = Path(__file__).resolve().parents[2]
    card = (root / "src" / "leftqa" / "qa" / "scorer_model" / "MODEL_CARD.md").read_text(encoding="utf-8")
    block = re.search(r"## Retrain\n(?:.*\n)*?```\n(.*?)```", card, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^scorer:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    assert [line.strip().replace("$(BIN)/", ".venv/bin/") for line in recipe.group(1).splitlines()] == commands
    assert commands and all(c.startswith(".venv/bin/leftqa train-scorer --squad ../shared/data/squad2 ") for c in commands)


def test_verifier_rows_pair_each_question_with_a_window_of_three_sentences() -> None:
    from leftqa.train.verify import KINDS, floor_at, sample, verifier_rows

    para = PARA + " The committee of the harbour later moved to Dover."
    s = ["The Harbour Committee was led by Marta Quell.", "She organised the first public meeting in the town hall.",
         "The breakwater was finished in 1840.", "The committee of the harbour later moved to Dover."]  # fmt: skip
    impossible = _q("b", "Who led the lighthouse committee?", "Marta Quell", para, impossible=True)
    del impossible["plausible_answers"][0]["answer_start"]  # as in the training file: found by its text
    art = _article("Fenwick", [(para, [_q("a", "Who led the Harbour Committee?", "Marta Quell", para), impossible])])
    rows = verifier_rows([art], seed=1, near_share=1.0, variant_share=1.0)
    assert rows[0] == ("Who led the Harbour Committee?", f"{s[0]} {s[1]}", 1.0, "answer")
    # the best-overlap window two or more sentences away, without the answer
    assert rows[1] == ("Who led the Harbour Committee?", f"{s[2]} {s[3]}", 0.0, "near-topic")
    assert rows[-1] == ("Who led the lighthouse committee?", f"{s[0]} {s[1]}", 0.0, "squad-impossible")
    assert len(rows) == 4 and rows[2][3] in KINDS and rows[2][2] == (1.0 if rows[2][3] in KINDS[:3] else 0.0)
    assert rows == verifier_rows([art], seed=1, near_share=1.0, variant_share=1.0)  # seeded
    pairs = sample(rows, {"answer": 5, "near-topic": 1}, seed=2)
    assert sorted((p.sentence, p.label) for p in pairs) == [(f"{s[0]} {s[1]}", 1.0), (f"{s[2]} {s[3]}", 0.0)]
    assert floor_at([0.1 * i for i in range(1, 11)], 0.0) == 0.1 and floor_at([0.2, 0.4], 50.0) == pytest.approx(0.3)
    with pytest.raises(TrainingError):
        floor_at([], 3.0)


def test_false_premises_exchange_names_of_the_window_or_turn_a_word_into_its_opposite() -> None:
    import random

    from leftqa.train.verify import flip_stance, swap_roles

    window = "Stalin allied with Bukharin against Trotsky in 1924. Trotsky was exiled by Stalin."
    names = ["Stalin", "Bukharin", "Trotsky", "Lenin"]
    swapped = swap_roles("Why did Stalin ally with Bukharin against Trotsky?", window, names, random.Random(3))
    assert swapped in {"Why did Bukharin ally with Stalin against Trotsky?", "Why did Trotsky ally with Bukharin against Stalin?",
                       "Why did Stalin ally with Trotsky against Bukharin?"}  # fmt: skip
    # "A and B" reads the same either way round; a name the window lacks is not exchanged
    assert swap_roles("When did Stalin and Bukharin meet?", window, names, random.Random(1)) is None
    one = swap_roles("Who exiled Trotsky?", "Trotsky was exiled by Stalin.", names, random.Random(1))
    assert one == "Who exiled Stalin?"
    assert swap_roles("Who exiled Lenin?", window, names, random.Random(1)) is None
    assert flip_stance("Why did Goldman support Stalin?", "Goldman remained critical of Stalin.", random.Random(1)) == "Why did Goldman oppose Stalin?"
    assert flip_stance("Who won the First election?", "Smith won the first election.", random.Random(0)) in {"Who lost the First election?", "Who won the Last election?"}
    # an opposite the window already uses could make the question answerable: not flipped
    assert flip_stance("Who supported the plan?", "Some supported it and some opposed it.", random.Random(1)) is None


def test_a_swapped_question_names_someone_of_the_article_its_paragraph_never_mentions() -> None:
    import random

    article = {"paragraphs": [
        {"context": "Marta Quell led the Harbour Committee in March. Ansel Pike kept a diary."},
        {"context": "Ansel Pike and Edwin Tallow met Marta Quell. Tallow kept the light on Monday."},
        {"context": "Edwin Tallow wrote a memoir. Quell and Pike were not in it. Ansel Pike left in March."},
    ]}  # fmt: skip
    names = combiner.salient_names(article)
    assert names == ["Ansel Pike", "Edwin Tallow", "Marta Quell"]  # in two paragraphs or more; no month or day
    paragraph = article["paragraphs"][0]["context"]
    # Pike is in the paragraph, so only Tallow can stand in for Quell
    assert combiner.swap_name("Which committee did Marta Quell lead?", names, paragraph, random.Random(0)) == "Which committee did Edwin Tallow lead?"
    assert combiner.swap_name("Which committee did she lead?", names, paragraph, random.Random(0)) is None  # no name
    assert combiner.swap_name("Who led it, Marta Quell?", ["Marta Quell", "Ansel Pike"], paragraph, random.Random(0)) is None
