"""Fit how the answer layer combines the cross-encoder with the rule features, on SQuAD articles the
cross-encoder never saw, through the real pipeline: each held-out paragraph becomes a document, questions are
retrieved and their candidate sentences scored exactly as `leftqa ask` does. Two logistic models come out:
the sentence ranker (does this candidate hold the answer?) and answerability (does any?).

Answerability learns from three kinds of question: answerable ones, SQuAD's unanswerable ones (written to look
answerable by their paragraph), and "missing" ones: answerable questions asked with their own paragraph taken
out of the retrieval, so the rest of the article is about the same subject but (nearly always) does not hold
the fact. That is what a reader's near-topic question looks like ("When was Luxemburg born?" of an article that
names her but never gives the year), and SQuAD's own unanswerable questions do not teach it."""

from __future__ import annotations

import json
import math
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from leftqa.config import Settings
from leftqa.errors import TrainingError
from leftqa.ingest.chunking import split_sentences
from leftqa.qa.features import missing_names
from leftqa.qa.followup import names
from leftqa.index.store import Index
from leftqa.qa import answer as ans
from leftqa.qa.retrieve import Retrieval
from leftqa.qa.scorer import ANSWERABILITY_FEATURES, SENTENCE_FEATURES, AnswerScorer, Linear, fit_logistic, standardisation
from leftqa.text import normalise, words
from leftqa.train.pairs import answer_sentence

# Of the collected questions' layout (2: with "missing" questions and each question's kind; 3: each candidate's
# window name coverage, and "swapped" questions).
CACHE_VERSION = 3
RANKER_L2 = 1.0
ANSWERABILITY_L2 = 1.0
# "pointwise": a logistic model per candidate; "softmax": one softmax over each question's candidates, the
# objective of choosing the best one (see `fit_softmax`).
RANKER_LOSSES = ("pointwise", "softmax")


@dataclass(frozen=True)
class Question:
    """A held-out question with its candidate sentences as the pipeline found them (before the cross-encoder)."""

    qid: str
    question: str
    answerable: bool
    texts: tuple[str, ...]  # candidate sentences, rule order, at most `candidates`
    labels: tuple[int, ...]  # 1 where the candidate is the gold answer sentence
    # per candidate: rule, passage, rank, cosine, coverage, type_ok, bigram, names_found of its passage, and
    # window_names (the share of the question's names in the sentence, its neighbours and the title)
    rule: tuple[tuple[float, ...], ...]
    evidence: dict[str, float]  # question-level rule evidence (answer.evidence without the learned parts)
    # "answerable", "impossible" (SQuAD's unanswerable), "missing" (its paragraph taken out) or "swapped" (one of
    # its names replaced by another of the article that its paragraph never mentions)
    kind: str


def write_corpus(articles: list[dict[str, Any]], folder: Path) -> dict[tuple[int, int], str]:
    """One .txt per paragraph (title line, blank line, context); returns (article, paragraph) -> file stem."""
    folder.mkdir(parents=True, exist_ok=True)
    stems: dict[tuple[int, int], str] = {}
    for a, article in enumerate(articles):
        title = str(article.get("title", "")).replace("_", " ")
        for p, para in enumerate(article["paragraphs"]):
            stem = f"a{a:03d}-p{p:03d}"
            stems[(a, p)] = stem
            path = folder / f"{stem}.txt"
            text = f"{title}, paragraph {p + 1}\n\n{para['context']}\n"
            if not path.exists() or path.read_text("utf-8") != text:
                path.write_text(text, encoding="utf-8")
    return stems


def without(r: Retrieval, doc_id: str, index: Index) -> Retrieval:
    """The retrieval as if document `doc_id` were not in the index: its passages dropped, later ranks moved up."""
    keep = [i for i, pos in enumerate(r.positions) if index.passages[int(pos)].doc_id != doc_id]
    new_rank = {old: new for new, old in enumerate(keep)}
    sentences = tuple(replace(s, rank=new_rank[s.rank]) for s in r.sentences if s.rank in new_rank)
    pick = np.asarray(keep, dtype=np.int64)
    return replace(r, positions=r.positions[pick], scores=r.scores[pick], bm25=r.bm25[pick], dense=r.dense[pick],
                   sentence=r.sentence[pick], sentences=sentences)  # fmt: skip


def collect(
    articles: list[dict[str, Any]], workdir: Path, candidates: int, sample: int, seed: int,
    log: Callable[[str], None] = print, missing: int = 0, context: bool = False, swapped: int = 0,
) -> list[Question]:  # fmt: skip
    """Build an index of the articles' paragraphs under `workdir` and gather every sampled question's candidates:
    `sample` answerable, half as many unanswerable, `missing` answerable ones asked without their paragraph and
    `swapped` ones asked about a name of the article that their paragraph never mentions (`swap_name`).
    `context`: candidates are cached as the cross-encoder reads them with its sentence context."""
    from leftqa.index.builder import build_index, stale_reason
    from leftqa.index.embed import load_embedder
    from leftqa.qa.assistant import Assistant

    settings = Settings(corpus_dir=workdir / "corpus", index_dir=workdir / "index", top_k=10, scorer="none")
    stems = write_corpus(articles, settings.corpus_dir)
    if stale_reason(settings):
        log(f"indexing {sum(len(a['paragraphs']) for a in articles):,} held-out paragraphs in {settings.index_dir}")
        build_index(settings, load_embedder(settings.model))
    assistant = Assistant.load(settings)
    index, retriever = assistant.index, assistant.retriever
    rows = [
        (a, p, q) for a, art in enumerate(articles) for p, para in enumerate(art["paragraphs"]) for q in para["qas"]
        if str(q.get("question", "")).strip()
    ]
    rng = random.Random(seed)
    answerable = [r for r in rows if not r[2].get("is_impossible")]
    impossible = [r for r in rows if r[2].get("is_impossible")]
    picked = rng.sample(answerable, min(sample, len(answerable))) + rng.sample(impossible, min(sample // 2, len(impossible)))
    kinds = ["impossible" if r[2].get("is_impossible") else "answerable" for r in picked]
    if missing:
        # Drawn after the others with their own generator, so adding them leaves the rest of the sample as it was.
        taken = {id(r[2]) for r in picked}
        rest = [r for r in answerable if id(r[2]) not in taken]
        extra = random.Random(seed + 1).sample(rest, min(missing, len(rest)))
        picked, kinds = picked + extra, kinds + ["missing"] * len(extra)
    asked_as = {n: " ".join(r[2]["question"].split()) for n, r in enumerate(picked)}
    if swapped:
        taken = {id(r[2]) for r in picked}
        rest = [r for r in answerable if id(r[2]) not in taken]
        swap_rng = random.Random(seed + 2)  # its own generator: the rest of the sample stays as it was
        swap_rng.shuffle(rest)
        article_names: dict[int, list[str]] = {}
        made = 0
        for a, p, q in rest:
            if made >= swapped:
                break
            if a not in article_names:
                article_names[a] = salient_names(articles[a])
            new = swap_name(" ".join(q["question"].split()), article_names[a], articles[a]["paragraphs"][p]["context"], swap_rng)
            if new is not None:
                asked_as[len(picked)] = new
                picked, kinds, made = picked + [(a, p, q)], kinds + ["swapped"], made + 1
    out: list[Question] = []
    for n, ((a, p, q), kind) in enumerate(zip(picked, kinds), start=1):
        question = asked_as[n - 1]
        r = retriever.retrieve(question, "hybrid", max(10, ans.PASSAGES_FOR_ANSWER))
        if kind == "missing":
            r = without(r, f"{stems[(a, p)]}.txt", index)  # its doc_id: the file's path in the corpus
        cands = ans.score_sentences(index, r)
        head = cands[:candidates]
        gold = None if kind in ("missing", "swapped") else _gold_sentence(articles[a]["paragraphs"][p], q)
        texts = tuple(ans.scored_text(index, c, context) for c in head)
        labels = tuple(int(gold is not None and normalise(ans.scored_text(index, c)) == gold) for c in head)
        chosen = ans.select(cands, 3, index)
        ev = ans.evidence(cands, r, chosen, ans.quoted_name_coverage(index, chosen, question), ans.window_name_coverage(index, chosen, question))
        found = {c.pos: ans.quoted_name_coverage(index, (c,), question) for c in head}
        rule = tuple((c.rule, c.passage, float(c.rank), c.cosine, c.coverage, c.type_ok, c.bigram, found[c.pos],
                      ans.window_name_coverage(index, (c,), question)) for c in head)  # fmt: skip
        ev = {**ev, "strict": float(r.answer_type in ans.STRICT_TYPES)}
        out.append(Question(str(q.get("id", n)), question, kind == "answerable", texts, labels, rule, ev, kind))
        if n % 500 == 0:
            log(f"collected {n:,}/{len(picked):,} questions")
    return out


_CALENDAR = frozenset({
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
})  # fmt: skip


def salient_names(article: dict[str, Any]) -> list[str]:
    """Names an article uses in two paragraphs or more (no month or day names): who and what it is about, the
    plausible stand-ins for a swapped question."""
    seen: dict[str, int] = {}
    for para in article["paragraphs"]:
        for n in set(names(para["context"])):
            if not _CALENDAR & set(n.split()):
                seen[n] = seen.get(n, 0) + 1
    return sorted(n for n, k in seen.items() if k >= 2)


def swap_name(question: str, article_names: Sequence[str], paragraph: str, rng: random.Random) -> str | None:
    """The question with one of its names replaced by a name of the article that `paragraph` never mentions and
    that shares no word with the one replaced (a two-word name by a two-word name where there is one), or None."""
    asked = [n for n in names(question) if n != "I" and n in question]
    if not asked:
        return None
    old = rng.choice(asked)
    old_words = set(words(old))
    pool = [n for n in article_names if not old_words & set(words(n)) and missing_names(f"of {n}", paragraph)]
    same = [n for n in pool if (len(n.split()) > 1) == (len(old.split()) > 1)]
    if not (same or pool):
        return None
    return question.replace(old, rng.choice(same or pool), 1)


def _gold_sentence(para: dict[str, Any], q: dict[str, Any]) -> str | None:
    if q.get("is_impossible") or not q.get("answers"):
        return None
    spans = split_sentences(para["context"])
    i = answer_sentence(spans, int(q["answers"][0].get("answer_start", -1)))
    return None if i is None else normalise(para["context"][spans[i][0] : spans[i][1]])


def save_questions(questions: Sequence[Question], path: Path) -> None:
    """Cache collected questions as JSON Lines (collection is the slow half)."""
    with path.open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q.__dict__, ensure_ascii=False) + "\n")


def load_questions(path: Path) -> list[Question]:
    """Read questions cached by `save_questions`."""
    out = []
    for line in path.read_text("utf-8").splitlines():
        d = json.loads(line)
        out.append(Question(d["qid"], d["question"], d["answerable"], tuple(d["texts"]), tuple(d["labels"]),
                            tuple(tuple(r) for r in d["rule"]), d["evidence"], d["kind"]))  # fmt: skip
    return out


def candidate_rows(q: Question, ce: np.ndarray) -> np.ndarray:
    """SENTENCE_FEATURES rows for a question's candidates, in the order `answer.sentence_features` builds them."""
    heads = [
        ans.Candidate(rank=int(r[2]), pos=0, index_in_passage=0, score=r[0], cosine=r[3], coverage=r[4], type_ok=r[5],
                      matched=frozenset(), bigram=r[6], passage=r[1], rule=r[0])  # fmt: skip
        for r in q.rule
    ]
    return ans.sentence_features(heads, ce)


def fit_softmax(groups: Sequence[tuple[np.ndarray, np.ndarray]], features: Sequence[str], l2: float, iters: int = 50) -> Linear:
    """L2-regularised conditional logit by Newton's method: per group (one question's candidate rows and 0/1
    labels), the softmax of the linear scores should put its mass on the labelled rows. The bias, which the
    softmax ignores, is then fitted with the weights fixed so that sigmoid(logit) estimates each row's chance of
    being labelled, keeping the logits on the pointwise model's scale (the answer layer reads differences and
    the best value)."""
    groups = [(x, y) for x, y in groups if len(x) and y.sum() > 0]
    if not groups:
        raise TrainingError("the fit needs groups with a labelled row")
    x_all = np.vstack([x for x, _ in groups])
    mean, scale = standardisation(x_all)
    zs = [((x - mean) / scale, y / y.sum()) for x, y in groups]

    def loss(w: np.ndarray) -> float:
        total = 0.5 * l2 * float(w @ w)
        for z, t in zs:
            s = z @ w
            top = s.max()
            total += float(top + np.log(np.exp(s - top).sum()) - t @ s)
        return total

    w = np.zeros(x_all.shape[1])
    current = loss(w)
    for _ in range(iters):
        grad = l2 * w
        hess = np.diag(np.full(len(w), l2 + 1e-9))
        for z, t in zs:
            s = z @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += z.T @ (p - t)
            zp = z.T @ p
            hess += (z * p[:, None]).T @ z - np.outer(zp, zp)
        step = np.linalg.solve(hess, grad)
        # Damped: a full Newton step can overshoot far from the optimum, so it is halved until the loss falls.
        for _ in range(30):
            trial = loss(w - step)
            if trial <= current:
                break
            step = step / 2
        else:
            break
        w, current = w - step, trial
        if np.abs(step).max() < 1e-7:
            break
    s_all = ((x_all - mean) / scale) @ w
    y_all = np.concatenate([y for _, y in groups]).astype(np.float64)
    b = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(s_all + b, -30, 30)))
        step = float((p - y_all).sum() / max((p * (1 - p)).sum(), 1e-9))
        b -= step
        if abs(step) < 1e-9:
            break
    return Linear(tuple(features), tuple(float(v) for v in w), float(b), tuple(float(v) for v in mean), tuple(float(v) for v in scale))


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (probability a random positive outranks a random negative)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return math.nan
    values = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    average = np.cumsum(counts) - (counts - 1) / 2  # ties share the mean of their ranks
    ranks = average[inverse]
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def refused_at(scores: Sequence[float], labels: Sequence[bool], false_abstention: float) -> float:
    """Share of the unanswerable (label False) refused by the threshold that abstains on at most
    `false_abstention` of the answerable: abstain below the score of the answerable at that quantile."""
    pos = np.sort([s for s, y in zip(scores, labels) if y])
    neg = np.asarray([s for s, y in zip(scores, labels) if not y])
    if not len(pos) or not len(neg):
        return math.nan
    k = int(math.floor(false_abstention * len(pos) + 1e-9))  # answerable cases that may fall below the threshold
    if k >= len(pos):
        return 1.0
    return float(np.mean(neg < pos[k]))


def false_abstention_for(scores: Sequence[float], labels: Sequence[bool], refused: float) -> float:
    """The least share of the answerable abstained on by a threshold that refuses at least `refused` of the
    unanswerable (label False)."""
    pos = np.asarray([s for s, y in zip(scores, labels) if y])
    neg = np.sort([s for s, y in zip(scores, labels) if not y])
    if not len(pos) or not len(neg):
        return math.nan
    need = int(math.ceil(refused * len(neg) - 1e-9))  # unanswerable cases that must fall below the threshold
    if need <= 0:
        return 0.0
    return float(np.mean(pos <= neg[need - 1]))  # the threshold sits just above the need-th lowest


# False-abstention levels at which the model card reports the refusal the answerability estimate buys.
OPERATING_POINTS = (0.02, 0.04, 0.10)


def fit(
    questions: Sequence[Question], scorer: AnswerScorer, folds: int = 5, log: Callable[[str], None] = print,
    ranker_loss: str = "pointwise",
) -> dict[str, Any]:  # fmt: skip
    """Score every candidate with the cross-encoder, fit the ranker and answerability, and measure both by
    cross-validation over questions (the figures the model card reports)."""
    ce_all = []
    for n, q in enumerate(questions, start=1):
        ce_all.append(scorer.logits(q.question, list(q.texts)) if q.texts else np.zeros(0, dtype=np.float32))
        if n % 1000 == 0:
            log(f"cross-encoder scored {n:,}/{len(questions):,} questions")
    return fit_scored(questions, ce_all, folds, ranker_loss)


def fit_scored(
    questions: Sequence[Question], ce_all: Sequence[np.ndarray], folds: int = 5, ranker_loss: str = "pointwise",
    extra: np.ndarray | None = None, features: Sequence[str] = ANSWERABILITY_FEATURES,
) -> dict[str, Any]:  # fmt: skip
    """`fit` once the cross-encoder has scored every question's candidates (`ce_all`, in question order). Also
    returns the out-of-fold answerability logits ("cv": scores, labels, kinds). `extra`, a column per candidate
    feature and a row per question, is appended to the answerability features: for measuring a feature the answer
    layer does not compute yet (`benchmarks/answerability_curve.py`), never for a shipped fit. `features`: the
    answerability model's evidence keys, ANSWERABILITY_FEATURES or those plus "window_names" (an experiment's)."""
    if ranker_loss not in RANKER_LOSSES:
        raise TrainingError(f"unknown ranker loss {ranker_loss!r} (one of {', '.join(RANKER_LOSSES)})")
    rows = [candidate_rows(q, ce) if q.texts else np.zeros((0, len(SENTENCE_FEATURES))) for q, ce in zip(questions, ce_all)]
    fold_of = [i % folds for i in range(len(questions))]
    metrics: dict[str, Any] = {"questions": len(questions), "answerable": sum(q.answerable for q in questions)}
    for kind in ("impossible", "missing", "swapped"):
        metrics[f"{kind}_questions"] = sum(1 for q in questions if q.kind == kind)
    top1 = {"rules": [], "cross_encoder": [], "combined": []}
    gold_in_head = []
    answer_scores: list[float] = []
    answer_labels: list[bool] = []
    answer_kinds: list[str] = []
    for k in range(folds + 1):  # folds 0..folds-1 measure; the last pass fits on everything
        train_idx = [i for i in range(len(questions)) if k == folds or fold_of[i] != k]
        test_idx = [] if k == folds else [i for i in range(len(questions)) if fold_of[i] == k]
        try:
            ranker = _fit_ranker(questions, rows, train_idx, ranker_loss)
            answerability = _fit_answerability(questions, rows, ce_all, ranker, train_idx, extra, features)
        except TrainingError:
            if k == folds:
                raise
            continue  # a fold of a tiny run without both kinds of question measures nothing
        for i in test_idx:
            q = questions[i]
            if q.answerable and q.texts:
                labels = np.asarray(q.labels)
                gold_in_head.append(bool(labels.any()))
                top1["rules"].append(bool(labels[0]))
                top1["cross_encoder"].append(bool(labels[int(np.argmax(ce_all[i]))]))
                top1["combined"].append(bool(labels[int(np.argmax(ranker.logit(rows[i])))]))
            answer_scores.append(_answer_logit(q, rows[i], ce_all[i], ranker, answerability, None if extra is None else extra[i], features))
            answer_labels.append(q.answerable)
            answer_kinds.append(q.kind)
    metrics["ranker_loss"] = ranker_loss
    metrics["cv_top1_answerable"] = {k: round(float(np.mean(v)), 4) if v else math.nan for k, v in top1.items()}
    metrics["cv_gold_in_candidates"] = round(float(np.mean(gold_in_head)), 4) if gold_in_head else math.nan
    metrics["cv_answerability_auc"] = round(auc(answer_scores, answer_labels), 4)
    for kind in sorted(set(answer_kinds) - {"answerable"}):
        pick = [i for i, k in enumerate(answer_kinds) if k in ("answerable", kind)]
        pick_scores, pick_labels = [answer_scores[i] for i in pick], [answer_labels[i] for i in pick]
        metrics[f"cv_answerability_auc_{kind}"] = round(auc(pick_scores, pick_labels), 4)
        # What the estimate can deliver: refusal at a false-abstention budget, and the budget 80% refusal costs.
        metrics[f"cv_refused_{kind}"] = {f"{fa:g}": round(refused_at(pick_scores, pick_labels, fa), 4) for fa in OPERATING_POINTS}
        metrics[f"cv_false_abstention_for_0.8_refused_{kind}"] = round(false_abstention_for(pick_scores, pick_labels, 0.8), 4)
    cv = {"scores": answer_scores, "labels": answer_labels, "kinds": answer_kinds}
    return {"ranker": ranker, "answerability": answerability, "metrics": metrics, "cv": cv}


def _fit_ranker(questions: Sequence[Question], rows: Sequence[np.ndarray], idx: Sequence[int], loss: str = "pointwise") -> Linear:
    keep = [i for i in idx if questions[i].answerable and any(questions[i].labels)]
    if not keep:
        raise TrainingError("no held-out answerable question has its answer sentence among the candidates")
    if loss == "softmax":
        return fit_softmax([(rows[i], np.asarray(questions[i].labels, dtype=np.float64)) for i in keep], SENTENCE_FEATURES, RANKER_L2)
    x = np.vstack([rows[i] for i in keep])
    y = np.concatenate([np.asarray(questions[i].labels, dtype=np.float64) for i in keep])
    return fit_logistic(x, y, SENTENCE_FEATURES, RANKER_L2)


def _question_features(
    q: Question, row: np.ndarray, ce: np.ndarray, ranker: Linear, extra: np.ndarray | None = None,
    features: Sequence[str] = ANSWERABILITY_FEATURES,
) -> list[float]:  # fmt: skip
    """ANSWERABILITY_FEATURES as `answer.evidence` reports them once the ranker has chosen (its best candidate
    stands for the quoted sentences: their type and the names of their passage), then any `extra` values."""
    ev = dict(q.evidence)
    if len(ce):
        top = np.sort(ce)[::-1]
        z = ranker.logit(row)
        best = q.rule[int(np.argmax(z))]
        ev.update(ce_best=float(top[0]), ce_margin=float(top[0] - top[1]) if len(top) > 1 else 0.0,
                  combined_best=float(z.max()), names_found=best[7], window_names=best[8] if len(best) > 8 else 1.0,
                  type_found=1.0 if not ev.get("strict") or best[5] else 0.0)  # fmt: skip
    return [float(ev.get(k, 0.0)) for k in features] + ([] if extra is None else [float(v) for v in extra])


def _fit_answerability(
    questions: Sequence[Question], rows: Sequence[np.ndarray], ce_all: Sequence[np.ndarray], ranker: Linear, idx: Sequence[int],
    extra: np.ndarray | None = None, features: Sequence[str] = ANSWERABILITY_FEATURES,
) -> Linear:  # fmt: skip
    x = np.asarray([_question_features(questions[i], rows[i], ce_all[i], ranker, None if extra is None else extra[i], features) for i in idx])
    y = np.asarray([float(questions[i].answerable) for i in idx])
    names = tuple(features) + (() if extra is None else tuple(f"extra{j}" for j in range(extra.shape[1])))
    return fit_logistic(x, y, names, ANSWERABILITY_L2)


def _answer_logit(
    q: Question, row: np.ndarray, ce: np.ndarray, ranker: Linear, answerability: Linear, extra: np.ndarray | None = None,
    features: Sequence[str] = ANSWERABILITY_FEATURES,
) -> float:  # fmt: skip
    return float(answerability.logit(np.asarray([_question_features(q, row, ce, ranker, extra, features)]))[0])


def stderr_log(msg: str) -> None:
    """Progress to stderr."""
    print(msg, file=sys.stderr, flush=True)
