"""Does the answerability fit gain from wrong-subject negatives and name-evidence features? (issue 29, item 2)

The answerability estimate reads how well the best sentence matches the question, so it cannot tell "about the
subject" from "answers the question". This measures, without retraining the cross-encoder, whether refitting
the answerability logistic model would help when

(a) its training data includes synthetic WRONG-SUBJECT negatives ("swapped"): an answerable held-out SQuAD
    question with one of its names (a capitalised name of `leftqa.qa.followup.names` that its own paragraph
    mentions) replaced by another name of the same article that its paragraph does not mention (no word of it
    occurs there), asked through the pipeline against the same held-out index, labelled unanswerable; and
(b) two evidence features join ANSWERABILITY_FEATURES (as `combiner.fit_scored`'s `extra` columns):
    `names_in_quote` (`qa.answer.names_in_quote` of the sentences the rules would quote, `answer.select`, read
    with the sentence before when it points back, plus the passage title/section) and `names_in_corpus` (share of
    the question's names not in `qa.features.Vocabulary(index.doc_freq).absent_names`; 1.0 without names).

Protocol (fixed before any result was seen):
- Held-out articles, seed, candidates (`fit_candidates`) and pipeline: those of the shipped scorer
  (`AnswerScorer.load()`, its manifest), exactly as `benchmarks/answerability_curve.py` and
  `combiner.collect` (same per-question code, copied here to also keep what the two new features need).
- Sample (prefix-stable, so a larger rerun reuses a smaller one's cache): the held-out answerable questions in
  one seeded shuffle (Random(seed)); answerable = its first A, "missing" = its last M (asked with their own
  paragraph taken out, as `combiner.without`), swapped = generated from its middle onwards until S succeed
  (Random(seed + 2) picks the names); SQuAD-impossible = first I of their own shuffle (Random(seed + 1)).
- 5-fold CV as `combiner.fit_scored`: fold = position % 5 over [answerable, impossible, missing, swapped]
  (swapped last, so the other questions keep the folds they have without them); ranker on answerable only;
  answerability on the training folds. Variant "without swapped": swapped questions are dropped from the
  training folds but still scored out of fold. Feature sets: shipped; + names_in_quote; + names_in_corpus;
  + both. Check: "shipped, without swapped" must reproduce `fit_scored` on the non-swapped questions.
- Reported per kind (answerable vs that kind only): CV AUC and `combiner.refused_at` at false abstention
  0.02 / 0.04 / 0.10.
- Decision rule: a variant is worth a refit if, against "shipped features, without swapped", it raises refused
  at false abstention 0.04 on swapped by >= 0.05 absolute (about 2.5 standard errors at 750 negatives) while
  AUC and refused at 0.04 on impossible and on missing each fall by no more than 0.01. Swapped negatives are
  noisy labels (another paragraph of the article may answer the swapped question); the gain on them in the
  "with swapped" variants is in-distribution and says nothing about real users' wrong-subject questions beyond
  this construction. `names_in_corpus` can only fire on names the corpus never mentions, which swapped
  questions by construction do not have (the name comes from the same article); it is measured for
  completeness.

    nice -n 5 .venv/bin/python benchmarks/answerability_negatives.py --answerable 1500 --impossible 750 \\
        --missing 750 --swapped 750 [--workdir /work/scratch/negatives] [--json out.json]

Result, 2026-12-07 (scorer minilm-ce-6l-9d797b83; 2,400 answerable, 1,200 of each negative kind; the check
reproduced fit_scored exactly): no variant meets the rule. Training with swapped negatives raises refused at
0.04 on swapped from 0.422 to 0.578 (0.600 with names_in_quote) but lowers it on impossible by 0.04 (0.268 ->
0.224/0.233; paired bootstrap 95% interval excludes 0) and on missing by 0.03. names_in_quote without swapped
training changes nothing (+0.007 on swapped): the shipped `names_found` already carries the signal.
names_in_corpus is 1.0 for every question here (all SQuAD names occur in the held-out corpus), so it is inert.

Collected questions (the cross-encoder's inputs and the two features) are appended to
<workdir>/questions-<seed>-<candidates>.jsonl as they are made, so an interrupted or larger rerun only collects
what is missing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

KINDS = ("answerable", "impossible", "missing", "swapped")
LEVELS = (0.02, 0.04, 0.10)
EXTRA = ("names_in_quote", "names_in_corpus")
FEATURE_SETS = {"shipped": (), "+names_in_quote": (0,), "+names_in_corpus": (1,), "+both": (0, 1)}


def article_names(paragraphs: Sequence[str]) -> list[str]:
    """An article's names (`leftqa.train.variants.article_names`, where the retrain's variants use it too)."""
    from leftqa.train.variants import article_names as names_of

    return names_of(paragraphs)


def swap_subject(question: str, paragraph: str, candidates: Sequence[str], rng: random.Random) -> tuple[str, str, str] | None:
    """A wrong-subject variant of the question (`leftqa.train.variants.swap_subject`)."""
    from leftqa.train.variants import swap_subject as swap

    return swap(question, paragraph, candidates, rng)


def names_in_corpus(vocabulary: Any, question: str) -> float:
    """Share of the question's names not among `vocabulary.absent_names` (1.0 when it names nothing)."""
    from leftqa.qa.followup import names

    asked = [n for n in names(question) if n != "I"]
    if not asked:
        return 1.0
    absent = set(vocabulary.absent_names(question))
    return round(1.0 - sum(n in absent for n in asked) / len(asked), 6)


def plan(held: list[dict[str, Any]], counts: dict[str, int], seed: int) -> list[tuple[str, str, str, int, int]]:
    """(kind, id, question text, article, paragraph) for every question to collect, in KINDS order."""
    rows = [
        (a, p, q) for a, art in enumerate(held) for p, para in enumerate(art["paragraphs"]) for q in para["qas"]
        if str(q.get("question", "")).strip()
    ]  # fmt: skip
    answerable = [r for r in rows if not r[2].get("is_impossible")]
    impossible = [r for r in rows if r[2].get("is_impossible")]
    random.Random(seed).shuffle(answerable)
    random.Random(seed + 1).shuffle(impossible)
    n_a, n_m = counts["answerable"], counts["missing"]
    if n_a > len(answerable) // 3 or n_m > len(answerable) // 3:
        raise SystemExit(f"not enough held-out answerable questions ({len(answerable):,}) for these counts")
    text = lambda q: " ".join(q["question"].split())
    out = [("answerable", str(q["id"]), text(q), a, p) for a, p, q in answerable[:n_a]]
    out += [("impossible", str(q["id"]), text(q), a, p) for a, p, q in impossible[: counts["impossible"]]]
    out += [("missing", str(q["id"]), text(q), a, p) for a, p, q in (answerable[-n_m:] if n_m else [])]
    art_names = {}
    rng = random.Random(seed + 2)
    swapped = []
    for a, p, q in answerable[len(answerable) // 3 :]:
        if len(swapped) >= counts["swapped"]:
            break
        if a not in art_names:
            art_names[a] = article_names([para["context"] for para in held[a]["paragraphs"]])
        s = swap_subject(text(q), held[a]["paragraphs"][p]["context"], art_names[a], rng)
        if s is not None:
            swapped.append(("swapped", f"{q['id']}-swap", s[0], a, p))
    return out + swapped


def collect(held: list[dict[str, Any]], todo: list[tuple[str, str, str, int, int]], workdir: Path, candidates: int,
            context: bool, cache: Path, log=print) -> dict[tuple[str, str, str], dict[str, Any]]:  # fmt: skip
    """Run each planned question through the pipeline (as `combiner.collect` does) and append its record to
    `cache`; returns every cached record by (kind, id)."""
    from leftqa.config import Settings
    from leftqa.index.builder import build_index, stale_reason
    from leftqa.index.embed import load_embedder
    from leftqa.qa import answer as ans
    from leftqa.qa.assistant import Assistant
    from leftqa.qa.features import Vocabulary
    from leftqa.text import normalise
    from leftqa.train import combiner as cb

    done: dict[tuple[str, str, str], dict[str, Any]] = {}
    if cache.exists():
        for line in cache.read_text("utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                done[(d["kind"], d["qid"], d["question"])] = d
    need = [t for t in todo if (t[0], t[1], t[2]) not in done]
    if not need:
        return done
    settings = Settings(
        corpus_dir=workdir / "heldout" / "corpus", index_dir=workdir / "heldout" / "index", top_k=10, scorer="none"
    )
    stems = cb.write_corpus(held, settings.corpus_dir)
    if stale_reason(settings):
        log(f"indexing {sum(len(a['paragraphs']) for a in held):,} held-out paragraphs in {settings.index_dir}")
        t0 = time.time()
        build_index(settings, load_embedder(settings.model))
        log(f"indexed in {time.time() - t0:.0f} s")
    assistant = Assistant.load(settings)
    index, retriever = assistant.index, assistant.retriever
    vocabulary = Vocabulary(index.doc_freq)
    qa_by_id = {str(q["id"]): q for art in held for para in art["paragraphs"] for q in para["qas"]}
    t0 = time.time()
    with cache.open("a", encoding="utf-8") as f:
        for n, (kind, qid, question, a, p) in enumerate(need, start=1):
            r = retriever.retrieve(question, "hybrid", max(10, ans.PASSAGES_FOR_ANSWER))
            if kind == "missing":
                r = cb.without(r, f"{stems[(a, p)]}.txt", index)
            cands = ans.score_sentences(index, r)
            head = cands[:candidates]
            gold = cb._gold_sentence(held[a]["paragraphs"][p], qa_by_id[qid]) if kind == "answerable" else None
            texts = [ans.scored_text(index, c, context) for c in head]
            labels = [int(gold is not None and normalise(ans.scored_text(index, c)) == gold) for c in head]
            chosen = ans.select(cands, 3, index)
            ev = ans.evidence(cands, r, chosen, ans.quoted_name_coverage(index, chosen, question))
            names = {c.pos: ans.quoted_name_coverage(index, (c,), question) for c in head}
            rule = [
                [c.rule, c.passage, float(c.rank), c.cosine, c.coverage, c.type_ok, c.bigram, names[c.pos]]
                for c in head
            ]
            ev = {**ev, "strict": float(r.answer_type in ans.STRICT_TYPES)}
            d = {"qid": qid, "question": question, "answerable": kind == "answerable", "texts": texts, "labels": labels,
                 "rule": rule, "evidence": ev, "kind": kind,
                 "names_in_quote": ans.names_in_quote(index, chosen, question) if chosen else 0.0,
                 "names_in_corpus": names_in_corpus(vocabulary, question)}  # fmt: skip
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
            f.flush()
            done[(kind, qid, question)] = d
            if n % 100 == 0:
                log(f"collected {n:,}/{len(need):,} ({n / (time.time() - t0):.2f} questions/s)")
    log(
        f"collected {len(need):,} questions in {time.time() - t0:.0f} s ({len(need) / max(time.time() - t0, 1e-9):.2f}/s)"
    )
    return done


def cross_encoder_logits(scorer, version: str, questions, cache: Path) -> list[np.ndarray]:
    """The cross-encoder's logits for every question's candidates, cached by (kind, id, question) in `cache`."""
    done: dict[tuple[str, str, str], list[float]] = {}
    if cache.exists():
        for line in cache.read_text("utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                done[(d["kind"], d["qid"], d["question"])] = d["ce"]
    out = []
    t0, n_new = time.time(), 0
    with cache.open("a", encoding="utf-8") as f:
        for q in questions:
            key = (q.kind, q.qid, q.question)
            if key not in done:
                ce = scorer.logits(q.question, list(q.texts)) if q.texts else np.zeros(0, dtype=np.float32)
                done[key] = [float(v) for v in ce]
                f.write(json.dumps({"kind": q.kind, "qid": q.qid, "question": q.question, "ce": done[key]}) + "\n")
                f.flush()
                n_new += 1
                if n_new % 250 == 0:
                    print(
                        f"cross-encoder scored {n_new:,} ({n_new / (time.time() - t0):.2f}/s)",
                        file=sys.stderr,
                        flush=True,
                    )
            out.append(np.asarray(done[key], dtype=np.float32))
    print(f"cross-encoder scored {n_new:,} new questions in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def cross_validate(questions, rows, ce_all, extra, train_swapped: bool, folds: int = 5) -> dict[str, list]:
    """Out-of-fold answerability logits as `combiner.fit_scored` computes them; without `train_swapped`, swapped
    questions are left out of every training fold (still scored)."""
    from leftqa.train import combiner as cb

    fold_of = [i % folds for i in range(len(questions))]
    scores = [0.0] * len(questions)
    for k in range(folds):
        train = [
            i for i in range(len(questions)) if fold_of[i] != k and (train_swapped or questions[i].kind != "swapped")
        ]
        ranker = cb._fit_ranker(questions, rows, train)
        model = cb._fit_answerability(questions, rows, ce_all, ranker, train, extra)
        for i in (i for i in range(len(questions)) if fold_of[i] == k):
            scores[i] = cb._answer_logit(
                questions[i], rows[i], ce_all[i], ranker, model, None if extra is None else extra[i]
            )
    return {"scores": scores, "labels": [q.answerable for q in questions], "kinds": [q.kind for q in questions]}


def per_kind(cv: dict[str, list]) -> dict[str, dict[str, Any]]:
    """AUC and refused at each false-abstention level, answerable against each kind of unanswerable question."""
    from leftqa.train.combiner import auc, refused_at

    out = {}
    for kind in KINDS[1:]:
        pick = [i for i, k in enumerate(cv["kinds"]) if k in ("answerable", kind)]
        s, y = [cv["scores"][i] for i in pick], [cv["labels"][i] for i in pick]
        if all(y):
            continue
        out[kind] = {"n": sum(not v for v in y), "auc": round(auc(s, y), 4),
                     "refused_at": {f"{fa:g}": round(refused_at(s, y, fa), 4) for fa in LEVELS}}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """Plan, collect (or reuse), score with the shipped cross-encoder, cross-validate every variant, print."""
    from leftqa.qa.scorer import BUNDLED_SCORER, SENTENCE_FEATURES, AnswerScorer, read_info
    from leftqa.train import combiner as cb
    from leftqa.train.pairs import load_squad, split_articles
    from leftqa.train.run import squad_train_file

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--squad", default=str(REPO.parent / "shared" / "data" / "squad2"), help="SQuAD 2.0 train (folder or file)"
    )
    p.add_argument("--scorer", default=str(BUNDLED_SCORER), help="answer scorer folder (default: the bundled one)")
    p.add_argument("--workdir", default="/work/scratch/negatives", help="held-out index and question cache (reused)")
    for kind, n in zip(KINDS, (1500, 750, 750, 750)):
        p.add_argument(f"--{kind}", type=int, default=n, help=f"{kind} questions (default {n})")
    p.add_argument("--collect-only", action="store_true", help="collect and cache, do not fit")
    p.add_argument("--json", help="also write the result as JSON here")
    args = p.parse_args(argv)

    info = read_info(Path(args.scorer))
    training = info.extra.get("training", {})
    seed = int(training.get("config", {}).get("seed", 13))
    held_titles = sorted(training.get("held_out_articles", []))
    _, held = split_articles(load_squad(squad_train_file(Path(args.squad))), len(held_titles), seed)
    if sorted(str(a.get("title", "")) for a in held) != held_titles:
        print("the held-out articles differ from the ones the scorer's manifest lists", file=sys.stderr)
        return 2
    candidates = int(info.extra.get("fit_candidates", 16))
    counts = {k: getattr(args, k) for k in KINDS}
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    todo = plan(held, counts, seed)
    cache = workdir / f"questions-{seed}-{candidates}{'-context' if info.context else ''}.jsonl"
    records = collect(held, todo, workdir, candidates, info.context, cache, cb.stderr_log)
    if args.collect_only:
        return 0
    recs = [records[(t[0], t[1], t[2])] for t in todo]
    questions = [cb.Question(d["qid"], d["question"], d["answerable"], tuple(d["texts"]), tuple(d["labels"]),
                             tuple(tuple(r) for r in d["rule"]), d["evidence"], d["kind"]) for d in recs]  # fmt: skip
    extra_all = np.asarray([[d[k] for k in EXTRA] for d in recs], dtype=np.float64)
    scorer = AnswerScorer.load(Path(args.scorer), threads=2)
    ce_all = cross_encoder_logits(scorer, info.version, questions, workdir / f"ce-{info.version}.jsonl")
    rows = [
        cb.candidate_rows(q, ce) if q.texts else np.zeros((0, len(SENTENCE_FEATURES)))
        for q, ce in zip(questions, ce_all)
    ]

    # Check: the shipped variant without swapped negatives is fit_scored's own protocol on the other questions.
    base = [i for i, q in enumerate(questions) if q.kind != "swapped"]
    ref = cb.fit_scored([questions[i] for i in base], [ce_all[i] for i in base])["cv"]["scores"]
    mine = cross_validate(questions, rows, ce_all, None, train_swapped=False)["scores"]
    in_fold_order = [j for k in range(5) for j in range(len(base)) if j % 5 == k]  # fit_scored's cv order
    gap = float(np.max(np.abs(np.asarray(ref) - np.asarray([mine[base[j]] for j in in_fold_order]))))

    result: dict[str, Any] = {"scorer": info.version, "counts": {k: sum(q.kind == k for q in questions) for k in KINDS},
                              "check_max_logit_gap_vs_fit_scored": gap, "feature_means": {}, "variants": {}}  # fmt: skip
    for kind in KINDS:
        pick = [i for i, q in enumerate(questions) if q.kind == kind]
        result["feature_means"][kind] = {
            k: round(float(extra_all[pick, j].mean()), 4) if pick else None for j, k in enumerate(EXTRA)
        }
    for fname, cols in FEATURE_SETS.items():
        extra = extra_all[:, list(cols)] if cols else None
        for train_swapped in (False, True):
            name = f"{fname} {'with' if train_swapped else 'without'} swapped"
            result["variants"][name] = per_kind(cross_validate(questions, rows, ce_all, extra, train_swapped))

    print(f"answer scorer {info.version}; held-out SQuAD train, 5-fold CV; questions {result['counts']}")
    print(f"check: largest |logit| gap to combiner.fit_scored (shipped, without swapped): {gap:.2e}")
    print(f"feature means by kind: {json.dumps(result['feature_means'])}")
    head = (
        "| variant | "
        + " | ".join(f"{k} AUC | {k} ref@{' / '.join(f'{fa:g}' for fa in LEVELS)}" for k in KINDS[1:])
        + " |"
    )
    print(head)
    print("|" + "---|" * (1 + 2 * (len(KINDS) - 1)))
    for name, kinds in result["variants"].items():
        cells = []
        for k in KINDS[1:]:
            c = kinds.get(k)
            cells += (
                ["–", "–"]
                if c is None
                else [f"{c['auc']:.4f}", " / ".join(f"{v:.3f}" for v in c["refused_at"].values())]
            )
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
