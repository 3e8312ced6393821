"""What the learned answerability estimate can deliver: refusal against false abstention on held-out SQuAD.

Runs the answer scorer's own fit protocol (the SQuAD train articles it held out, the same seeded sample of
answerable, SQuAD-unanswerable and "missing" questions, 5-fold cross-validation of the ranker and answerability
fits) and reports, per kind of unanswerable question, the share refused at several false-abstention budgets and
the false abstention that refusing 80% of them costs. "missing" questions (asked with their own paragraph taken
out of the retrieval) stand for a reader's near-topic questions.

`--passage-reads` also measures whether reading whole passages helps: the cross-encoder's logit for the question
against the top retrieved passage, the passage of its best sentence, and that sentence with its neighbours, added
as answerability features (same folds).

    .venv/bin/python benchmarks/answerability_curve.py [--squad ../shared/data/squad2] [--scorer DIR] [--passage-reads]

`--swapped N` adds N "swapped" questions (an answerable question with one name replaced by another of its article
that its paragraph never mentions), `--window-names` the answerability feature of that name (the share of the
question's names in the quote, its neighbours and the title), and `--write-scorer DIR` writes a copy of the scorer
with the ranker and answerability so refitted, for `leftqa calibrate` and `leftqa eval` (candidate H of
docs/experiments.md, 2026-12-07 22:10 UTC).

Collecting the questions (an index of the held-out paragraphs, then the pipeline per question) takes about ten
minutes on 2 cores and is cached in --workdir; scoring them, two to five more.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

LEVELS = (0.02, 0.03, 0.04, 0.10, 0.20)
PASSAGE_TOKENS = 256  # a whole passage, not one sentence: the reads are truncated here, not at the scorer's 96


def passage_reads(questions, articles, workdir: Path, scorer, ce_all) -> np.ndarray:  # noqa: ANN001
    """Per question: logits for (question, top passage), (question, passage of the best-CE sentence) and
    (question, that sentence with the ones before and after it)."""
    from leftqa.config import Settings
    from leftqa.qa import answer as ans
    from leftqa.qa.assistant import Assistant
    from leftqa.text import normalise
    from leftqa.train import combiner as cb

    home = workdir / "heldout"
    stems = cb.write_corpus(articles, home / "corpus")  # unchanged files are left alone: the index stays fresh
    doc_of = {q["id"]: f"{stems[(a, p)]}.txt" for a, art in enumerate(articles) for p, para in enumerate(art["paragraphs"]) for q in para["qas"]}
    settings = Settings(corpus_dir=home / "corpus", index_dir=home / "index", top_k=10, scorer="none")
    assistant = Assistant.load(settings)
    index, retriever = assistant.index, assistant.retriever
    scorer._tokenizer.enable_truncation(max_length=PASSAGE_TOKENS, strategy="only_second")
    out = np.zeros((len(questions), 3), dtype=np.float32)
    for i, (q, ce) in enumerate(zip(questions, ce_all)):
        r = retriever.retrieve(q.question, "hybrid", max(10, ans.PASSAGES_FOR_ANSWER))
        if q.kind == "missing":
            r = cb.without(r, doc_of[q.qid], index)
        top = index.passages[int(r.positions[0])].text
        holding, window = top, ""
        if len(ce):
            best = normalise(q.texts[int(np.argmax(ce))])
            for pos in r.positions[: ans.PASSAGES_FOR_ANSWER]:
                p = index.passages[int(pos)]
                texts = [normalise(s.text) for s in p.sentences]
                if best in texts:
                    j = texts.index(best)
                    holding, window = p.text, " ".join(s.text for s in p.sentences[max(0, j - 1) : j + 2])
                    break
        v = scorer.logits(q.question, [top, holding, window or holding])
        out[i] = v
        if (i + 1) % 1000 == 0:
            print(f"passage reads {i + 1:,}/{len(questions):,}", file=sys.stderr, flush=True)
    return out


def curve(cv: dict) -> dict:
    """AUC, refusal at each budget and the budget of 80% refusal, per kind of unanswerable question and overall,
    from `combiner.fit_scored`'s out-of-fold answerability logits."""
    from leftqa.train.combiner import auc, false_abstention_for, refused_at

    out = {}
    for kind in ("impossible", "missing", "swapped", "all"):
        if kind != "all" and kind not in cv["kinds"]:
            continue
        pick = [i for i, k in enumerate(cv["kinds"]) if k == "answerable" or kind in ("all", k)]
        s, y = [cv["scores"][i] for i in pick], [cv["labels"][i] for i in pick]
        out[kind] = {
            "unanswerable": sum(1 for v in y if not v),
            "auc": round(auc(s, y), 4),
            "refused_at": {f"{fa:g}": round(refused_at(s, y, fa), 4) for fa in LEVELS},
            "false_abstention_for_0.8_refused": round(false_abstention_for(s, y, 0.8), 4),
        }
    return out


def write_refit(src: Path, out: Path, fitted: dict, version: str) -> None:
    """A copy of the scorer folder `src` with the refitted ranker and answerability, under `version`, uncalibrated."""
    import shutil

    from leftqa.files import atomic_write_bytes
    from leftqa.qa.scorer import MANIFEST, read_info

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    doc = json.loads((src / MANIFEST).read_text("utf-8"))
    for name in doc["files"]:
        if name != "calibration.json":  # the copy is calibrated on its own (`leftqa calibrate`)
            shutil.copy2(src / name, out / name)
    doc.update(version=version, ranker=fitted["ranker"].to_dict(), answerability=fitted["answerability"].to_dict(), metrics=fitted["metrics"])
    doc["files"] = {k: v for k, v in doc["files"].items() if k != "calibration.json"}
    atomic_write_bytes(out / MANIFEST, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    read_info(out)
    print(f"wrote {out} ({version}); calibrate it with LEFTQA_SCORER={out} leftqa calibrate", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Collect (or reuse) the held-out questions, score them and print the curve."""
    from leftqa.qa.scorer import ANSWERABILITY_FEATURES, BUNDLED_SCORER, AnswerScorer, read_info
    from leftqa.train import combiner as cb
    from leftqa.train.pairs import load_squad, split_articles
    from leftqa.train.run import squad_train_file

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--squad", default=str(REPO.parent / "shared" / "data" / "squad2"), help="SQuAD 2.0 train (folder or file)")
    p.add_argument("--scorer", default=str(BUNDLED_SCORER), help="answer scorer folder (default: the bundled one)")
    p.add_argument("--workdir", default=str(REPO / "build" / "answerability-curve"), help="held-out index and question cache (reused)")
    p.add_argument("--passage-reads", action="store_true", help="also measure whole-passage reads as answerability features")
    p.add_argument("--json", help="also write the result as JSON here")
    p.add_argument("--swapped", type=int, default=0, help="add this many swapped-name questions (unanswerable)")
    p.add_argument("--window-names", action="store_true", help="fit answerability with the window_names feature too")
    p.add_argument("--write-scorer", help="write the scorer refitted this way to this folder")
    p.add_argument("--version", default="", help="the written scorer's version (default: the scorer's, suffixed -refit)")
    args = p.parse_args(argv)

    info = read_info(Path(args.scorer))
    training = info.extra.get("training", {})
    config = training.get("config", {})
    seed, held_titles = int(config.get("seed", 13)), sorted(training.get("held_out_articles", []))
    sample_total = int(training.get("combiner_questions", 5000))
    articles = load_squad(squad_train_file(Path(args.squad)))
    _, held = split_articles(articles, len(held_titles), seed)
    if sorted(str(a.get("title", "")) for a in held) != held_titles:
        print("the held-out articles differ from the ones the scorer's manifest lists; is this the same SQuAD train file?", file=sys.stderr)
        return 2
    missing = int(info.extra.get("metrics", {}).get("missing_questions", 0))
    sample = (sample_total - missing) * 2 // 3  # answerable; half as many of SQuAD's unanswerable (combiner.collect)
    fit_candidates = int(info.extra.get("fit_candidates", 16))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    swapped = f"-s{args.swapped}" if args.swapped else ""
    cache = workdir / f"heldout-questions-v{cb.CACHE_VERSION}-{fit_candidates}-{sample}-{missing}{swapped}-{seed}{'-context' if info.context else ''}.jsonl"
    if cache.exists():
        questions = cb.load_questions(cache)
    else:
        print("collecting held-out questions through the pipeline", file=sys.stderr)
        questions = cb.collect(held, workdir / "heldout", fit_candidates, sample, seed, cb.stderr_log, missing, info.context, args.swapped)
        cb.save_questions(questions, cache)
    scorer = AnswerScorer.load(Path(args.scorer), threads=2)
    ce_all = [scorer.logits(q.question, list(q.texts)) if q.texts else np.zeros(0, dtype=np.float32) for q in questions]
    ranker_loss = str(info.extra.get("metrics", {}).get("ranker_loss", "pointwise"))
    features = ANSWERABILITY_FEATURES + (("window_names",) if args.window_names else ())
    fitted = cb.fit_scored(questions, ce_all, ranker_loss=ranker_loss, features=features)
    result = {"scorer": info.version, "questions": len(questions), "base": curve(fitted["cv"])}
    if args.write_scorer:
        write_refit(Path(args.scorer), Path(args.write_scorer), fitted, args.version or f"{info.version}-refit")
    if args.passage_reads:
        reads = passage_reads(questions, held, workdir, scorer, ce_all)
        for name, cols in (("top_passage", [0]), ("best_passage", [1]), ("window", [2]), ("all_three", [0, 1, 2])):
            result[f"with_{name}"] = curve(cb.fit_scored(questions, ce_all, ranker_loss=ranker_loss, extra=reads[:, cols])["cv"])
    print(f"answer scorer {info.version}, {len(questions):,} held-out SQuAD train questions (5-fold CV)")
    for setting, kinds in ((k, v) for k, v in result.items() if isinstance(v, dict)):
        for kind, c in kinds.items():
            at = ", ".join(f"{fa} {r:.3f}" for fa, r in c["refused_at"].items())
            print(f"{setting:>18} {kind:>10} ({c['unanswerable']:,}): AUC {c['auc']:.4f}; refused at false abstention {at}; "
                  f"80% refused costs false abstention {c['false_abstention_for_0.8_refused']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
