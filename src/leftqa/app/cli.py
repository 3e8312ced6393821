"""Command line: `leftqa index|add|search|ask|serve|mcp|eval|calibrate|feedback|train-scorer|train-verifier`. The only place errors become messages."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from leftqa.config import MODES, Settings
from leftqa.errors import LeftQAError, QuestionError

if TYPE_CHECKING:  # for annotations only: the command imports what it runs when it runs
    from leftqa.index.builder import BuildReport
    from leftqa.records import Answer


def _settings(args: argparse.Namespace) -> Settings:
    corpus = getattr(args, "corpus", None)
    if corpus is None and getattr(args, "index", None):
        from leftqa.index.builder import recorded_corpus

        corpus = recorded_corpus(Path(args.index))  # an index given by --index knows the corpus it was built from
    return Settings.from_env(
        corpus_dir=corpus,
        index_dir=getattr(args, "index", None),
        model=getattr(args, "model", None),
        mode=getattr(args, "mode", None) if getattr(args, "mode", None) in MODES else None,
        top_k=getattr(args, "k", None),
        auth=getattr(args, "auth", None),
    )


def _warn_stale(settings: Settings) -> None:
    """One warning line when the corpus changed since the index was built (the index still answers)."""
    from leftqa.index.builder import stale_warning

    warning = stale_warning(settings)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _print_build(report: BuildReport) -> None:
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(report.summary())
    print(report.details())


def _progress_printer(quiet: bool) -> Callable[[str], None] | None:
    if quiet:
        return None
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def _build(settings: Settings, args: argparse.Namespace, full: bool = False) -> BuildReport:
    """build_index, locally or (with --ray ADDRESS) reading and embedding on a Ray cluster."""
    from leftqa.index.builder import build_index

    log = _progress_printer(args.quiet)
    if not getattr(args, "ray", None):
        return build_index(settings, progress=not args.quiet, full=full, log=log)
    from leftqa.index.ray_build import Progress, RayBackend, RayOptions, require_ray

    require_ray()  # before anything else: without the extra, say how to install it
    options = RayOptions(address=args.ray, workers=args.ray_workers, cpus=args.ray_cpus, batch_tokens=args.ray_batch_tokens)
    with RayBackend(options, progress=None if args.quiet else Progress(sys.stderr), log=log) as backend:
        return build_index(settings, progress=not args.quiet, full=full, log=log, backend=backend)


def cmd_index(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.if_stale:
        from leftqa.index.builder import stale_reason

        reason = stale_reason(settings)
        if not reason:
            print(f"index at {settings.index_dir} is up to date")
            return 0
        if not Path(settings.index_dir, "manifest.json").exists():
            print(f"building the index for the first time (about a minute) from {settings.corpus_dir} into {settings.index_dir} …", flush=True)
        else:
            print(f"building index: {reason}", flush=True)
    # The model loads only if something needs embedding, so an unchanged corpus rebuilds in a second or two.
    report = _build(settings, args, full=args.full)
    _print_build(report)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from leftqa.ingest.sources import add_sources

    settings = _settings(args)
    result = add_sources(args.sources, Path(settings.corpus_dir), replace=args.replace, timeout=args.timeout, max_bytes=args.max_bytes)
    for line in result.lines():
        print(line)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if result.changed and not args.no_index:
        _print_build(_build(settings, args))
    return 1 if result.failed else 0


def cmd_search(args: argparse.Namespace) -> int:
    from leftqa.qa.assistant import Assistant

    settings = _settings(args)
    _warn_stale(settings)
    assistant = Assistant.load(settings)
    hits = assistant.search(args.question)  # -k and --mode are in the settings, over LEFTQA_TOP_K and LEFTQA_MODE
    if args.json:
        from dataclasses import asdict

        _print_json({"question": args.question, "mode": settings.mode, "hits": [asdict(h) for h in hits]})
        return 0
    for h in hits:
        print(f"{h.rank:>2}. [{h.score:.3f}] {h.title} › {h.section}  ({h.passage_id})")
        print("    " + h.text[:300].replace("\n", " ") + ("…" if len(h.text) > 300 else ""))
    return 0


def _format_answer(a: Answer) -> str:
    lines = []
    if a.query != a.question:
        lines.append(f"(Searched for: {a.query})")
    lines.append(a.answer)
    if a.abstained:
        lines.append("\nClosest material (not an answer):")
        for h in a.passages[:3]:
            lines.append(f"  - {h.title} › {h.section}: {h.text[:160]}…")
    else:
        lines.append("")
        for c in a.citations:
            page = f", p. {c.page}" if c.page else ""
            origin = f", from {c.source}" if c.source else ""
            lines.append(f"[{c.n}] {c.title} › {c.section}{page} ({c.doc_id}, chars {c.start}-{c.end}, passage {c.passage_id}{origin})")
    return "\n".join(lines)


def _batch_lines(path: str) -> list[str]:
    if path == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LeftQAError(f"cannot read batch file {path}: {exc}") from None


def cmd_ask(args: argparse.Namespace) -> int:
    from leftqa.qa.assistant import Assistant, clean_question

    if args.batch is None and args.question is None:
        raise QuestionError("give a question, or --batch FILE")
    settings = _settings(args)
    if args.batch is None:
        clean_question(args.question, settings.max_question_chars)  # fail fast, before loading the model
    _warn_stale(settings)
    assistant = Assistant.load(settings)
    if args.batch is None:
        a = assistant.ask(args.question, args.history or (), args.mode)
        if args.json:
            _print_json(a.to_dict())
        else:
            print(_format_answer(a))
        return 0
    failures = 0
    for lineno, line in enumerate(_batch_lines(args.batch), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                raise QuestionError('each line must be a JSON object with a "question" string')
            history = item.get("history") or []
            if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
                raise QuestionError('"history" must be a list of earlier questions (strings)')
            out = assistant.ask(item["question"], history, args.mode).to_dict()
        except (ValueError, RecursionError, LeftQAError) as exc:  # RecursionError: JSON nested too deeply
            failures += 1
            msg = str(exc) if isinstance(exc, LeftQAError) else f"invalid JSON: {exc}"
            out = {"line": lineno, "error": msg}
        if args.json:
            _print_json(out)
        else:
            print(out.get("answer", "error: " + str(out.get("error"))))
    return 1 if failures else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from leftqa.app.ui import check_bind, serve
    from leftqa.qa.assistant import Assistant

    settings = _settings(args)
    check_bind(args.host, settings.credentials())  # before the minute of loading, not after
    _warn_stale(settings)
    assistant = Assistant.load(settings)
    serve(assistant, host=args.host, port=args.port, checked=True)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from leftqa.app.mcp_server import run_stdio
    from leftqa.qa.assistant import Assistant

    settings = _settings(args)
    _warn_stale(settings)
    run_stdio(Assistant.load(settings))  # stdout carries the protocol: nothing else may print there
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from leftqa.app.measure import EvalRequest, eval_command

    settings = _settings(args)
    _warn_stale(settings)
    request = EvalRequest(
        cases=tuple(Path(p) for p in args.cases or ()), mode=args.mode, json=args.json,
        report=Path(args.report) if args.report else None, check=args.check, write_baseline=args.write_baseline,
        baseline=Path(args.baseline) if args.baseline else None,
        export_beir=Path(args.export_beir) if args.export_beir else None, history=not args.no_history,
    )  # fmt: skip
    return eval_command(request, settings)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from leftqa.app.measure import calibrate_command

    return calibrate_command(_settings(args), tuple(Path(p) for p in args.cases or ()), args.answerability, args.false_abstention_bound)


def cmd_train_scorer(args: argparse.Namespace) -> int:
    import tempfile

    from leftqa.qa.scorer import BUNDLED_SCORER
    from leftqa.train.crossencoder import TrainConfig
    from leftqa.train.run import run_training, with_config

    config = with_config(TrainConfig(), layers=args.layers, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads,
                         max_steps=args.max_steps, freeze_embeddings=args.freeze_embeddings, loss=args.loss,
                         skip_pairs=args.skip_pairs, missing_share=args.missing_share, variant_share=args.variant_share,
                         context=args.context == "previous")  # fmt: skip
    out = Path(args.out) if args.out else BUNDLED_SCORER
    with tempfile.TemporaryDirectory(prefix="leftqa-train-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        manifest = run_training(
            Path(args.squad) if args.squad else Settings.from_env().squad_dir, out, workdir, config, pairs=args.pairs, holdout=args.holdout,
            combiner_sample=args.combiner_sample, combiner_missing=args.combiner_missing, candidates=args.candidates, serve_candidates=args.serve_candidates,
            ranker_loss=args.ranker_loss,
            checkpoint=Path(args.checkpoint) if args.checkpoint else None, init=Path(args.init) if args.init else None,
        )  # fmt: skip
    m = manifest["metrics"]
    print(f"wrote answer scorer {manifest['version']} to {out}")
    print(f"held-out top-1: rules {m['cv_top1_answerable']['rules']:.3f}, cross-encoder {m['cv_top1_answerable']['cross_encoder']:.3f}, "
          f"combined {m['cv_top1_answerable']['combined']:.3f}; answerability AUC {m['cv_answerability_auc']:.3f}")  # fmt: skip
    print("next: `leftqa calibrate` (abstention threshold on the tuning split), then `leftqa eval`")
    return 0


def cmd_train_verifier(args: argparse.Namespace) -> int:
    import tempfile

    from leftqa.qa.scorer import BUNDLED_SCORER
    from leftqa.train.verify import train_verifier

    out = Path(args.out) if args.out else BUNDLED_SCORER
    with tempfile.TemporaryDirectory(prefix="leftqa-verifier-") as tmp:
        v = train_verifier(Path(args.squad) if args.squad else Settings.from_env().squad_dir, out, Path(args.init),
                           Path(args.workdir) if args.workdir else Path(tmp), max_steps=args.max_steps or 0)  # fmt: skip
    print(f"wrote answer verifier {v['version']} into {out} (floor {v['floor']})")
    print("next: `leftqa eval` (the calibration of the scorer is unchanged)")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from leftqa.evals.feedback import candidate_cases, read_feedback, write_cases

    settings = _settings(args)
    path = Path(args.file) if args.file else Path(settings.feedback_path)
    items = read_feedback(path)
    for item in items:
        history = f" (after {len(item.history)} earlier questions)" if item.history else ""
        print(f"{item.time}  {item.verdict:<14}  {item.question}{history}")
    cases = candidate_cases(items)
    review = sum(1 for c in cases if "review" in c)
    print(f"{len(items)} feedback lines in {path}: {len(cases) - review} candidate cases ready, {review} to review")
    if args.out:
        write_cases(Path(args.out), cases)
        print(f"wrote {len(cases)} candidate cases to {args.out}")
        if review:
            print(f"review them: give each case marked \"review\" the right evidence in \"expected\" (or set \"answerable\": false), delete its \"review\" field, then run `leftqa eval --cases {args.out}`")
    return 0


def _unit_interval(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _common(p: argparse.ArgumentParser, corpus: bool = False, model: bool = True) -> None:
    p.add_argument("--index", metavar="DIR", help="index folder (default: index/ in the current folder)")
    if corpus:
        p.add_argument("--corpus", metavar="DIR", help="corpus folder (default: corpus/ in the current folder)")
    if model:
        p.add_argument("--model", metavar="NAME_OR_PATH", help="sentence-transformers model (default: the bundled all-MiniLM-L6-v2)")


def _ray_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", metavar="ADDRESS", help="read and embed on a Ray cluster: auto, HOST:PORT or ray://HOST:10001 (needs the ray extra)")
    p.add_argument("--ray-workers", type=int, default=0, metavar="N", help="Ray workers (default: one per GPU, else one per --ray-cpus CPUs)")
    p.add_argument("--ray-cpus", type=int, default=1, metavar="N", help="CPUs (threads) per Ray worker (default 1)")
    p.add_argument("--ray-batch-tokens", type=int, default=0, metavar="N", help="padded tokens per embedding batch (default 8192 on CPUs, 65536 on GPUs)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `leftqa` command."""
    parser = argparse.ArgumentParser(prog="leftqa", description="Offline, citation-backed extractive question answering.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("index", help="build the index from the corpus folder", description="Read the corpus, chunk it into passages, embed them and write the index (atomically).")
    _common(p, corpus=True)
    p.add_argument("--full", action="store_true", help="rebuild everything instead of reusing unchanged vectors")
    p.add_argument("--if-stale", action="store_true", help="build only when the index is missing or out of date")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _ray_flags(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("add", help="copy files, folders or web pages into the corpus and update the index", description="Copy files or folders (.txt .md .html .htm .pdf .docx .jsonl) into the corpus, or download http(s) URLs into corpus/web/ with their source URL recorded, then update the index incrementally.")
    p.add_argument("sources", nargs="+", metavar="PATH_OR_URL", help="files, folders or http(s) URLs")
    _common(p, corpus=True)
    p.add_argument("--replace", action="store_true", help="overwrite corpus files of the same name that differ")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="give up on a download after this long (default 30)")
    p.add_argument("--max-bytes", type=int, default=None, metavar="N", help="refuse downloads larger than N bytes (default: the 20 MB source limit)")
    p.add_argument("--no-index", action="store_true", help="only copy into the corpus; do not update the index")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _ray_flags(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("search", help="rank passages for a question", description="Show the passages retrieved for a question.")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="number of passages (default 10, or LEFTQA_TOP_K)")
    p.add_argument("--mode", choices=MODES, default=None, help="retrieval mode (default hybrid, or LEFTQA_MODE)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _common(p, corpus=True)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with quoted, cited sentences", description="Answer extractively; --batch reads JSON Lines {question, history}.")
    p.add_argument("question", nargs="?")
    p.add_argument("--history", action="append", metavar="QUESTION", help="an earlier question of the conversation (repeatable, oldest first)")
    p.add_argument("--batch", metavar="FILE", help="JSON Lines of {question, history}; - reads standard input")
    p.add_argument("--mode", choices=MODES, default=None, help="retrieval mode (default hybrid, or LEFTQA_MODE)")
    p.add_argument("--json", action="store_true", help="print the JSON answer object")
    _common(p, corpus=True)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="run the chat UI", description="Serve the Gradio chat UI and its Library (bound to 127.0.0.1 unless --host says otherwise; any other address needs --auth).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="require this user and password (default: LEFTQA_AUTH); needed beyond 127.0.0.1")
    _common(p, corpus=True)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", help="serve ask and search as MCP tools over stdio", description="Run a Model Context Protocol server on standard input and output with the tools ask (quoted, cited answers) and search, for assistants and agents.")
    _common(p, corpus=True)
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser("eval", help="measure retrieval and answers on eval cases", description="Run eval cases (evals/*.jsonl) and report hit@k, MRR, nDCG, answer and abstention metrics.")
    p.add_argument("--cases", nargs="+", metavar="FILE", help="case files (default: every evals/*.jsonl)")
    p.add_argument("--mode", choices=(*MODES, "all"), default=None, help="retrieval mode, or all for a side-by-side table (default hybrid, or LEFTQA_MODE)")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.add_argument("--report", metavar="DIR", help="write report.json and report.md (with failing cases) to DIR")
    p.add_argument("--check", action="store_true", help="fail when a headline metric drops below evals/baseline.json")
    p.add_argument("--baseline", metavar="FILE", default=None, help="baseline file for --check/--write-baseline (default evals/baseline.json)")
    p.add_argument("--write-baseline", action="store_true", help="store the current metrics as the baseline")
    p.add_argument("--export-beir", metavar="DIR", help="write the cases and corpus in BEIR layout to DIR")
    p.add_argument("--no-history", action="store_true", help="ask follow-up cases without their history (for comparison)")
    _common(p, corpus=True)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", help="choose abstention thresholds from the eval cases", description="Fit the abstention threshold (and the rules' weights) on answerable vs unanswerable tuning cases and store it beside the answer scorer it calibrates (or in LEFTQA_CALIBRATION_PATH).")
    p.add_argument("--cases", nargs="+", metavar="FILE", help="case files (default: the tuning cases of evals/)")
    p.add_argument("--false-abstention-bound", type=_unit_interval, metavar="B", help="choose the threshold so that the 95%% Wilson upper bound of false abstention on the cases is <= B (default: the rate itself <= 0.03)")
    p.add_argument("--answerability", choices=("keep", "adapt", "refit"), default="keep",  # a choice, not a setting
                   help="the answer scorer's answerability model: keep it and choose only its threshold (default), adapt it "
                        "to the cases (its logit rescaled, the type and name evidence reweighted) or refit every weight")
    _common(p, corpus=True)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("train-scorer", help="train the answer scorer on SQuAD 2.0 (CPU; see the model card)", description="Fine-tune the bundled MiniLM as a cross-encoder on SQuAD 2.0 train, export it to ONNX int8, fit the ranker and answerability on held-out articles, and write the scorer folder (default: the bundled one).")
    p.add_argument("--squad", metavar="PATH", help="SQuAD 2.0 train JSON(.gz), or a folder holding squad2-train.json.gz (default ../shared/data/squad2, or LEFTQA_SQUAD_DIR)")
    p.add_argument("--out", metavar="DIR", help="scorer folder to write (default: the bundled src/leftqa/qa/scorer_model)")
    p.add_argument("--pairs", type=int, default=100_000, help="training pairs (default 100000; 0 = all)")
    p.add_argument("--layers", type=int, help="MiniLM layers kept (default 4)")
    p.add_argument("--batch", type=int, help="batch size (default 32)")
    p.add_argument("--lr", type=float, help="learning rate (default 4e-5)")
    p.add_argument("--seed", type=int, help="seed of every shuffle and of torch (default 13)")
    p.add_argument("--threads", type=int, help="CPU threads (default 2)")
    p.add_argument("--freeze-embeddings", action="store_true", default=None, help="keep the word embeddings as pre-trained (~20%% faster on CPU)")
    p.add_argument("--loss", choices=("pointwise", "listwise"), help="pointwise: BCE per pair (default); listwise: each question's sentences and a no-answer option in one softmax")
    p.add_argument("--context", choices=("none", "previous"), default="none", help="previous: a sentence opening with a pronoun or connective is read with the sentence before it (default none)")
    p.add_argument("--variant-share", type=float, help="share of answerable questions also trained as one variant each: wrong subject, false premise, pronoun follow-up, sloppy or keyword (listwise; default 0)")
    p.add_argument("--missing-share", type=float, help="share of answerable questions also trained as near-topic unanswerable ones, on the other paragraphs of their article (listwise; default 0)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps, the schedule still spanning every pair (default: all)")
    p.add_argument("--holdout", type=int, default=40, help="articles held out for the ranker and answerability fits (default 40)")
    p.add_argument("--combiner-sample", type=int, default=2500, help="held-out answerable questions for the fits, plus half as many unanswerable (default 2500)")
    p.add_argument("--combiner-missing", type=int, default=0, help="held-out answerable questions also asked without their own paragraph, as near-topic unanswerable ones for the answerability fit (default 0)")
    p.add_argument("--candidates", type=int, default=16, help="sentences per question the fits read (default 16)")
    p.add_argument("--ranker-loss", choices=("pointwise", "softmax"), default="pointwise", help="how the sentence ranker is fitted: pointwise, a logistic model per candidate (default); softmax, one softmax over each question's candidates")
    p.add_argument("--serve-candidates", type=int, default=8, help="sentences per question the scorer reads when answering (default 8)")
    p.add_argument("--checkpoint", metavar="DIR", help="skip training: export and fit this checkpoint (a finished or interrupted run's)")
    p.add_argument("--init", metavar="DIR", help="start from this checkpoint's weights instead of the bundled MiniLM (a second stage; pair it with --skip-pairs)")
    p.add_argument("--skip-pairs", type=int, help="skip the first N pairs of the seeded order (whole questions), the ones an --init checkpoint trained on (default 0)")
    p.add_argument("--workdir", metavar="DIR", help="keep checkpoints, the export and the held-out index here (default: a temporary folder)")
    p.set_defaults(func=cmd_train_scorer)

    p = sub.add_parser("train-verifier", help="train the answer verifier on SQuAD 2.0 into a scorer folder (CPU; see the model card)",
                       description="Fine-tune a scorer checkpoint as the answer verifier (question against the quoted sentence with its neighbours) on SQuAD 2.0 train, export it to ONNX int8 into the scorer folder and place its refusal floor on held-out articles.")  # fmt: skip
    p.add_argument("--squad", metavar="PATH", help="SQuAD 2.0 train JSON(.gz), or a folder holding squad2-train.json.gz (default ../shared/data/squad2, or LEFTQA_SQUAD_DIR)")
    p.add_argument("--init", metavar="DIR", required=True, help="the checkpoint to start from (a `train-scorer --workdir` run's checkpoint folder)")
    p.add_argument("--out", metavar="DIR", help="scorer folder that receives verifier.onnx (default: the bundled src/leftqa/qa/scorer_model)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps, the schedule still spanning every pair (default: all)")
    p.add_argument("--workdir", metavar="DIR", help="keep the checkpoint and the export here (default: a temporary folder)")
    p.set_defaults(func=cmd_train_verifier)

    p = sub.add_parser("feedback", help="list UI feedback and turn it into candidate eval cases", description="List the Helpful / Wrong evidence verdicts of evals/feedback.jsonl and write candidate eval cases for review.")
    p.add_argument("--file", metavar="FILE", help="feedback file (default: evals/feedback.jsonl or LEFTQA_FEEDBACK_PATH)")
    p.add_argument("--out", metavar="FILE", help="write candidate eval cases (JSON Lines) to FILE, for `leftqa eval --cases FILE` after review")
    p.set_defaults(func=cmd_feedback)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one command, turning library errors into one-line messages."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LeftQAError as exc:
        print(f"leftqa: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, QuestionError) else 1
    except KeyboardInterrupt:
        print("leftqa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
