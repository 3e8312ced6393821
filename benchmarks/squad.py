"""SQuAD 2.0 benchmark: the `leftqa eval` metrics on public text nobody here tuned for.

Each paragraph becomes one document of a temporary corpus (never corpus/), indexed with the real model.
Answerable questions become cases (evidence = the sentence holding the gold answer, answer = any gold answer);
impossible questions form the unanswerable group, which measures abstention.

    .venv/bin/python benchmarks/squad.py [DATA.json | --dev] [--mode all] [--json] [--limit N | --sample N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "benchmarks" / "squad2-dev-2articles.json"
# The public validation set: 32 SQuAD 2.0 dev articles (11,092 questions) that nothing here is trained or tuned on.
DEV_DATA = REPO.parent / "shared" / "data" / "squad2" / "squad2-dev-32articles.json.gz"


def load_squad(path: Path) -> list[dict[str, Any]]:
    """The `data` list of a SQuAD JSON file (articles with paragraphs and questions)."""
    import gzip

    from leftqa.errors import EvalError

    try:
        raw = Path(path).read_bytes()
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvalError(f"cannot read SQuAD file {path}: {exc}") from None
    if not isinstance(data, list):
        raise EvalError(f"{path}: 'data' is not a list of articles")
    return data


def _slug(title: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in title).strip("-").lower() or "article"


def write_corpus(data: list[dict[str, Any]], folder: Path) -> int:
    """One .txt per paragraph ("Title, paragraph N", blank line, context); rewrites only changed files."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for article in data:
        title = str(article.get("title", "")).replace("_", " ")
        for i, para in enumerate(article["paragraphs"], start=1):
            wanted[f"{_slug(title)}-{i:03d}.txt"] = f"{title}, paragraph {i}\n\n{para['context']}\n"
    for stale in folder.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        path = folder / name
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return len(wanted)


def evidence_sentence(context: str, start: int) -> str:
    """The sentence of a paragraph that holds the character at `start` (the next one when it falls between)."""
    from leftqa.ingest.chunking import split_sentences

    spans = split_sentences(context)
    for s, e in spans:
        if start < e:
            return context[s:e]
    s, e = spans[-1]
    return context[s:e]


def make_cases(data: list[dict[str, Any]], limit: int | None = None, sample: int | None = None, seed: int = 0) -> list[Any]:
    """Eval cases: answerable questions (evidence sentence, gold answers) and impossible ones (unanswerable)."""
    from leftqa.evals.cases import Case

    answerable, impossible = [], []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                where = f"squad:{qa['id']}"
                if qa.get("is_impossible") or not qa.get("answers"):
                    impossible.append(Case(qa["id"], qa["question"].strip(), (), (), (), False, where))
                    continue
                gold = qa["answers"][0]
                sentence = evidence_sentence(para["context"], int(gold["answer_start"]))
                answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
                answerable.append(Case(qa["id"], qa["question"].strip(), (sentence,), answers, (), True, where))
    if limit is not None:
        answerable, impossible = answerable[:limit], impossible[:limit]
    if sample is not None:  # a seeded sample spread over every article, for quicker runs on the 11K dev questions
        import random

        rng = random.Random(seed)
        answerable = sorted(rng.sample(answerable, min(sample, len(answerable))), key=answerable.index)
        impossible = sorted(rng.sample(impossible, min(sample, len(impossible))), key=impossible.index)
    return answerable + impossible


def prepare(data: list[dict[str, Any]], workdir: Path, model: str, quiet: bool = False) -> Any:
    """Corpus and index under workdir (rebuilt only when stale) and the Assistant loaded on them."""
    from leftqa.config import Settings
    from leftqa.index.builder import build_index, stale_reason
    from leftqa.index.embed import load_embedder
    from leftqa.qa.assistant import Assistant

    # From the environment, so LEFTQA_SCORER / LEFTQA_CALIBRATION_PATH choose what is measured (as for `leftqa eval`).
    settings = Settings.from_env(corpus_dir=workdir / "corpus", index_dir=workdir / "index", model=model, top_k=10)
    write_corpus(data, settings.corpus_dir)
    reason = stale_reason(settings)
    if reason:
        if not quiet:
            print(f"building the benchmark index in {settings.index_dir} ({reason})", file=sys.stderr)
        build_index(settings, load_embedder(model))
    return Assistant.load(settings)


def findable(cases: list[Any], passages: Any) -> tuple[list[Any], list[str]]:
    """(cases whose evidence sentence lies inside one passage, ids of the others: a chunking disagreement)."""
    from leftqa.errors import EvalError
    from leftqa.evals.run import relevant_passages

    kept, dropped = [], []
    for case in cases:
        try:
            relevant_passages([case], passages)
            kept.append(case)
        except EvalError:
            dropped.append(case.id)
    return kept, dropped


def run(args: argparse.Namespace) -> Any:
    """Build (or reuse) the benchmark index and evaluate the SQuAD cases; an EvalRun."""
    from leftqa.config import MODES
    from leftqa.evals.run import evaluate

    data = load_squad(Path(args.data))
    cases = make_cases(data, args.limit, args.sample)
    modes = list(MODES) if args.mode == "all" else [args.mode]
    with tempfile.TemporaryDirectory(prefix="leftqa-squad-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        assistant = prepare(data, workdir, args.model, args.json)
        kept, dropped = findable(cases, assistant.index.passages)
        meta = {
            "benchmark": "squad2",
            "data": str(args.data),
            "paragraphs": sum(len(a["paragraphs"]) for a in data),
            "answerable": sum(1 for c in kept if c.answerable),
            "impossible": sum(1 for c in kept if not c.answerable),
            "dropped": dropped,  # evidence sentence not found in any passage (chunking disagreement)
        }
        return evaluate(assistant, kept, modes, meta=meta)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Run the leftqa eval metrics on SQuAD 2.0 data.")
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA), help=f"SQuAD JSON file (default {DEFAULT_DATA})")
    parser.add_argument("--mode", choices=("hybrid", "bm25", "dense", "all"), default="all", help="retrieval mode (default all)")
    parser.add_argument("--model", default="bundled:all-MiniLM-L6-v2", help="embedding model (default the bundled MiniLM)")
    parser.add_argument("--dev", action="store_true", help=f"the public validation set: {DEV_DATA.name} (32 articles)")
    parser.add_argument("--limit", type=int, help="at most N answerable and N impossible questions (smoke runs)")
    parser.add_argument("--sample", type=int, help="a seeded sample of N answerable and N impossible questions")
    parser.add_argument("--workdir", help="keep the corpus and index here and reuse them (default a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print metrics as JSON")
    parser.add_argument("--report", metavar="DIR", help="write report.json and report.md with failing cases")
    args = parser.parse_args(argv)
    if args.dev:
        args.data = str(DEV_DATA)
    if not Path(args.data).is_file():
        print(f"SQuAD data not found at {args.data}; skipping the benchmark (pass the file as an argument)", file=sys.stderr)
        return 0
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    from leftqa.errors import LeftQAError
    from leftqa.evals.report import format_table, write_report

    try:
        result = run(args)
    except LeftQAError as exc:
        print(f"squad benchmark: error: {exc}", file=sys.stderr)
        return 1
    meta = result.meta
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(cases=False), ensure_ascii=False) + "\n")
    else:
        print(
            f"SQuAD 2.0 ({meta['data']}): {meta['paragraphs']} paragraphs as documents; "
            f"{meta['answerable']} answerable questions, {meta['impossible']} impossible (the unanswerable group)"
        )
        if meta["dropped"]:
            print(f"{len(meta['dropped'])} case(s) dropped: evidence sentence not inside one passage")
        print(format_table(result))
    if args.report:
        write_report(result, Path(args.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
