"""Training pairs for the answer verifier (issue 29): SQuAD 2.0 questions read against the answer sentence *with
its neighbours* ("window"), labelled 1 when the window answers and 0 when it is on the subject but does not: the
plausible-answer window of an unanswerable question, the best word-overlap window of the paragraph that does not
hold the answer (near-topic), the answer window of the question asked about another name of the article (wrong
subject) or with another year (false premise). Pronoun follow-ups and sloppy or keyword versions of answerable
questions keep label 1, so that the way people type is not taken for a missing answer."""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from leftqa.errors import TrainingError
from leftqa.train.pairs import Pair, _content, answer_sentence
from leftqa.train.variants import _YEAR, _own_names, article_names, one_variant

VERIFIER_FILE = "verifier.onnx"  # in the scorer folder, listed with its sha256 in scorer.json
KINDS = ("answer", "style", "followup", "squad-impossible", "near-topic", "wrong-subject", "false-premise", "role-swap",
         "stance-flip")  # fmt: skip
# Word pairs that turn a statement into its opposite ("Why did she support Stalin?" of "she remained critical of Stalin").
_OPPOSITES = (
    ("support", "oppose"), ("supported", "opposed"), ("supporter", "opponent"), ("supporters", "opponents"),
    ("praised", "criticised"), ("praise", "criticise"), ("allied", "fought"), ("ally", "enemy"), ("allies", "enemies"),
    ("won", "lost"), ("win", "lose"), ("joined", "left"), ("join", "leave"), ("accepted", "rejected"),
    ("accept", "reject"), ("increased", "decreased"), ("increase", "decrease"), ("before", "after"),
    ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("most", "least"), ("highest", "lowest"),
    ("earliest", "latest"), ("began", "ended"), ("start", "end"), ("started", "ended"), ("founded", "dissolved"),
    ("adopted", "abandoned"), ("adopt", "abandon"), ("agreed", "refused"), ("legal", "illegal"), ("north", "south"),
    ("east", "west"), ("higher", "lower"), ("more", "fewer"), ("rise", "fall"), ("rose", "fell"), ("gained", "lost"),
    ("allowed", "banned"), ("allow", "ban"), ("created", "destroyed"), ("built", "demolished"), ("born", "died"),
    ("success", "failure"), ("successful", "unsuccessful"), ("victory", "defeat"), ("public", "private"),
)  # fmt: skip
_OPPOSITE = {**dict(_OPPOSITES), **{b: a for a, b in _OPPOSITES}}


def window(sentences: Sequence[str], i: int) -> str:
    """Sentence `i` with the one before and the one after it (what the verifier reads)."""
    return " ".join(sentences[max(0, i - 1) : i + 2])


def swap_roles(question: str, window_text: str, names: Sequence[str], rng: random.Random) -> str | None:
    """The question with two of its names that the window mentions exchanged ("Why did Stalin ally with Trotsky
    against Bukharin?" of a sentence where he allied with Bukharin), or one of them replaced by another name of
    the window; None when the question names nothing the window does, or joins its two names by "and"."""
    low = window_text.lower()
    asked = [n for n in names if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", question) and n.lower() in low]
    asked = [n for n in asked if not any(n != m and n in m for m in asked)]  # "Stalin" inside "Joseph Stalin"
    if len(asked) >= 2:
        a, b = rng.sample(asked, 2)
        lo, hi = sorted((question.index(a), question.index(b)))
        if re.search(r"\b(?:and|or|&)\b|,", question[lo:hi]):
            return None  # "A and B" reads the same either way round
        return re.sub(
            rf"(?<!\w)(?:{re.escape(a)}|{re.escape(b)})(?!\w)", lambda m: b if m.group(0) == a else a, question
        )
    others = [n for n in names if n.lower() in low and n not in question and not any(n in m or m in n for m in asked)]
    if len(asked) != 1 or not others:
        return None
    return re.sub(rf"(?<!\w){re.escape(asked[0])}(?!\w)", rng.choice(others), question, count=1)


def flip_stance(question: str, window_text: str, rng: random.Random) -> str | None:
    """The question with one word turned into its opposite (`_OPPOSITE`) whose opposite the window does not use,
    keeping its capital; None when it has no such word."""
    low = set(re.findall(r"[a-z]+", window_text.lower()))
    found = [
        m
        for m in re.finditer(r"[A-Za-z]+", question)
        if m.group(0).lower() in _OPPOSITE and _OPPOSITE[m.group(0).lower()] not in low
    ]
    if not found:
        return None
    m = rng.choice(found)
    new = _OPPOSITE[m.group(0).lower()]
    new = new.capitalize() if m.group(0)[0].isupper() else new
    return question[: m.start()] + new + question[m.end() :]


def verifier_rows(
    articles: list[dict[str, Any]],
    seed: int = 13,
    near_share: float = 0.5,
    variant_share: float = 0.5,
    negative_style: float = 0.0,
    premise_share: float = 0.0,
) -> list[tuple[str, str, float, str]]:
    """(question, window, label, kind) for the articles' questions, in article order. A `negative_style` share of
    the unanswerable rows is asked as people type too (a pronoun follow-up after an earlier question, or sloppy, or
    keywords), as the answerable "style" and "followup" rows are: otherwise the way a question is typed would tell
    the model its label. A `premise_share` of the answerable questions is also asked with a false premise made
    from its own answer window: two of its names exchanged or one replaced by another name of the window
    (role-swap), or a word turned into its opposite (stance-flip)."""
    from leftqa.ingest.chunking import split_sentences
    from leftqa.text import words

    rng = random.Random(seed)
    restyle = random.Random(seed + 1)  # its own stream: the rows drawn without restyling stay the same
    premises = random.Random(seed + 2)  # likewise for the false premises
    out: list[tuple[str, str, float, str]] = []

    def typed(question: str, ctx: str, qas: list[dict[str, Any]]) -> str:
        """The question as a pronoun follow-up when it names someone of the paragraph, else sloppy or keywords."""
        para = {"context": ctx, "qas": qas}
        own = any(len(n) >= 3 for n in _own_names(question, set(words(ctx))))
        made = (
            one_variant("followup", question, para, "", list, (), restyle) if own and restyle.random() < 0.5 else None
        )
        made = made or one_variant("style", question, para, "", list, (), restyle)
        return (made[0] if made else "") or question

    def add(question: str, text: str, label: float, kind: str, ctx: str, qas: list[dict[str, Any]]) -> None:
        if label == 0.0 and negative_style and restyle.random() < negative_style:
            question = typed(question, ctx, qas)
        out.append((question, text, label, kind))

    for art in articles:
        ctxs = [p["context"] for p in art["paragraphs"]]
        names = functools.cache(partial(article_names, ctxs))  # only made when a variant needs them
        years = list(dict.fromkeys(y for c in ctxs for y in _YEAR.findall(c)))
        for p in art["paragraphs"]:
            ctx = p["context"]
            spans = split_sentences(ctx)
            sents = [ctx[s:e] for s, e in spans]
            if len(sents) < 2:
                continue
            toks = [_content(s) for s in sents]
            for q in p["qas"]:
                question = " ".join(str(q.get("question", "")).split())
                if not question:
                    continue
                imp = bool(q.get("is_impossible"))
                answers = q.get("plausible_answers" if imp else "answers") or []
                start = (
                    int(answers[0].get("answer_start", ctx.find(str(answers[0].get("text", "")) or "\0")))
                    if answers
                    else -1
                )
                gold = answer_sentence(spans, start) if answers else None
                if gold is None:
                    continue
                if imp:
                    add(question, window(sents, gold), 0.0, "squad-impossible", ctx, p["qas"])
                    continue
                out.append((question, window(sents, gold), 1.0, "answer"))
                texts = [str(a.get("text", "")).lower() for a in answers if str(a.get("text", "")).strip()]
                qt = _content(question)
                if rng.random() < near_share:
                    far = [
                        j
                        for j in range(len(sents))
                        if abs(j - gold) >= 2 and not any(t in window(sents, j).lower() for t in texts)
                    ]
                    far.sort(key=lambda j: -len(qt & toks[j]))
                    if far and qt & toks[far[0]]:
                        add(question, window(sents, far[0]), 0.0, "near-topic", ctx, p["qas"])
                if premise_share and premises.random() < premise_share:
                    w = window(sents, gold)
                    swapped = swap_roles(question, w, names(), premises) if premises.random() < 0.5 else None
                    if swapped and swapped != question:
                        add(swapped, w, 0.0, "role-swap", ctx, p["qas"])
                    else:
                        flipped = flip_stance(question, w, premises)
                        if flipped:
                            add(flipped, w, 0.0, "stance-flip", ctx, p["qas"])
                if rng.random() >= variant_share:
                    continue
                kinds = ["wrong-subject", "false-premise", "followup", "style"]
                rng.shuffle(kinds)
                for kind in kinds:
                    made = one_variant(kind, question, p, sents[gold], names, years, rng)
                    if made and made[0].strip():
                        add(made[0], window(sents, gold), made[1], kind, ctx, p["qas"])
                        break
    return out


def sample(rows: Sequence[tuple[str, str, float, str]], counts: dict[str, int], seed: int) -> list[Pair]:
    """A seeded draw of `counts[kind]` rows of each kind (all of a kind when it has fewer), shuffled, as pairs."""
    rng = random.Random(seed)
    by: dict[str, list[tuple[str, str, float, str]]] = {}
    for r in rows:
        by.setdefault(r[3], []).append(r)
    chosen = [r for kind, n in counts.items() for r in rng.sample(by.get(kind, []), min(n, len(by.get(kind, []))))]
    rng.shuffle(chosen)
    return [Pair(q, s, y, i) for i, (q, s, y, _) in enumerate(chosen)]


def kind_counts(rows: Sequence[tuple[str, str, float, str]]) -> dict[str, int]:
    """How many rows of each kind."""
    return dict(Counter(r[3] for r in rows))


def floor_at(scores: Sequence[float], percentile: float) -> float:
    """The probability under which `percentile` % of the answerable windows' scores fall (the refusal floor)."""
    import numpy as np

    if not scores:
        raise TrainingError("no answerable held-out windows to place the verifier's floor")
    return round(float(np.percentile(np.asarray(scores, dtype=np.float64), percentile)), 6)


def held_out_scores(
    model: Path, rows: Sequence[tuple[str, str, float, str]], max_length: int, threads: int = 2
) -> list[float]:
    """P(answers) of the exported ONNX verifier for each (question, window) row, read as at query time."""
    from tokenizers import Tokenizer

    from leftqa.onnxrt import onnx_session
    from leftqa.qa.scorer import cross_encoder_logits, sigmoid

    tok = Tokenizer.from_file(str(model.parent / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length, strategy="only_second")
    session = onnx_session(model, threads)
    out: list[float] = []
    for lo in range(0, len(rows), 32):
        batch = rows[lo : lo + 32]
        out.extend(sigmoid(float(z)) for z in cross_encoder_logits(session, tok, [(q, s) for q, s, _, _ in batch]))
    return out


def add_verifier(
    scorer: Path, checkpoint: Path, squad: Path, workdir: Path, held: int = 6000, percentile: float = 3.0,
    log: Callable[[str], None] = print, init: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Export a trained verifier checkpoint into the scorer folder `scorer` (verifier.onnx, int8), place its floor at
    `percentile` of the held-out SQuAD articles' answerable windows, and record it with its checksum and held-out
    metrics in scorer.json."""
    import json
    import shutil

    from leftqa.files import atomic_write_bytes, file_sha256
    from leftqa.qa.scorer import MANIFEST
    from leftqa.train.combiner import auc
    from leftqa.train.crossencoder import export_onnx
    from leftqa.train.pairs import load_squad, split_articles
    from leftqa.train.run import squad_train_file

    progress = json.loads((Path(checkpoint) / "progress.json").read_text("utf-8"))
    config = progress["config"]
    _, held_articles = split_articles(load_squad(squad_train_file(squad)), 40, int(config["seed"]))
    # Every kind of negative, so the metrics cover them all; the floor reads the answerable windows only, which
    # neither restyling nor the false premises change.
    rows = verifier_rows(
        held_articles,
        seed=int(config["seed"]) + 1,
        near_share=1.0,
        variant_share=1.0,
        negative_style=1 / 3,
        premise_share=0.5,
    )
    rows = random.Random(int(config["seed"])).sample(rows, min(held, len(rows)))
    model = export_onnx(Path(checkpoint), Path(workdir) / "verifier-export")
    log(f"exported {model}; scoring {len(rows):,} held-out windows")
    scores = held_out_scores(model, rows, int(config["max_length"]))
    answerable = [p for p, r in zip(scores, rows) if r[2] > 0]
    floor = floor_at(answerable, percentile)
    metrics: dict[str, Any] = {"windows": len(rows), "kinds": kind_counts(rows)}
    for kind in KINDS[3:]:
        pairs = [(p, r[2] > 0) for p, r in zip(scores, rows) if r[2] > 0 or r[3] == kind]
        metrics[f"auc_{kind}"] = round(auc([p for p, _ in pairs], [y for _, y in pairs]), 4)
        neg = [p for p, r in zip(scores, rows) if r[3] == kind]
        metrics[f"refused_{kind}"] = round(sum(p < floor for p in neg) / max(1, len(neg)), 4)
    for kind in KINDS[:3]:
        pos = [p for p, r in zip(scores, rows) if r[3] == kind]
        metrics[f"refused_{kind}"] = round(sum(p < floor for p in pos) / max(1, len(pos)), 4)
    shutil.copyfile(model, Path(scorer) / VERIFIER_FILE)
    digest = file_sha256(Path(scorer) / VERIFIER_FILE)
    path = Path(scorer) / MANIFEST
    data = json.loads(path.read_text("utf-8"))
    data["verifier"] = {
        "file": VERIFIER_FILE, "version": f"minilm-verifier-{config['layers']}l-{digest[:8]}", "max_length": int(config["max_length"]),
        "floor": floor, "floor_percentile": percentile, "training": {"progress": progress, "init": init or {}},
        "metrics": metrics,
    }  # fmt: skip
    data["files"] = {**data.get("files", {}), VERIFIER_FILE: digest}
    atomic_write_bytes(path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    log(f"verifier {data['verifier']['version']}: floor {floor} ({percentile}th percentile of answerable); {metrics}")
    return data["verifier"]


# The first verifier's training draw (`sample`; docs/experiments.md, 19:35): as many answerable windows as
# unanswerable ones. No verifier ships.
DEFAULT_COUNTS = {"answer": 12000, "style": 3000, "followup": 3000, "squad-impossible": 9000, "near-topic": 5000,
                  "wrong-subject": 3200, "false-premise": 900}  # fmt: skip


def train_verifier(
    squad: Path, scorer: Path, init: Path, workdir: Path, counts: dict[str, int] | None = None, seed: int = 13,
    max_steps: int = 0, held: int = 6000, percentile: float = 3.0, log: Callable[[str], None] = print,
    negative_style: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """Train the answer verifier from checkpoint `init` on SQuAD train (the scorer's 401 training articles), then
    export it into the scorer folder with its floor (`add_verifier`)."""
    import json

    from leftqa.train.crossencoder import TrainConfig, train
    from leftqa.train.pairs import load_squad, split_articles
    from leftqa.train.run import squad_train_file

    train_articles, _ = split_articles(load_squad(squad_train_file(squad)), 40, seed)
    rows = verifier_rows(train_articles, seed=seed, negative_style=negative_style)
    pairs = sample(rows, counts or DEFAULT_COUNTS, seed)
    log(
        f"{len(rows):,} windows {kind_counts(rows)}; training on {len(pairs):,} ({int(sum(p.label for p in pairs)):,} answerable)"
    )
    layers = (
        int(json.loads((Path(init) / "config.json").read_text("utf-8")).get("num_hidden_layers", 6))
        if (Path(init) / "config.json").is_file()
        else 6
    )
    config = TrainConfig(layers=layers, batch=32, max_length=128, seed=seed, freeze_embeddings=True, loss="pointwise", lr=3e-5,
                         save_every=100, max_steps=max_steps)  # fmt: skip
    checkpoint = Path(workdir) / "verifier-checkpoint"
    train(pairs, checkpoint, config, log=log, init=Path(init))
    # What the starting checkpoint was trained with (its own progress.json), never its path on this machine.
    started = (
        json.loads((Path(init) / "progress.json").read_text("utf-8"))
        if (Path(init) / "progress.json").is_file()
        else {}
    )
    return add_verifier(scorer, checkpoint, squad, workdir, held=held, percentile=percentile, log=log, init=started)
