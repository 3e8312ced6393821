"""Performance benchmark: build throughput vs the model's raw encode throughput, warm `ask` latency in process and
over HTTP (`leftqa serve`) next to a plain script's (sentence-transformers + bm25s + exact FAISS, no answer),
cold start, peak memory and index size, at the bundled corpus, 100K and 1M passages.

    python benchmarks/run.py                       # real corpus + 100K + 1M (synthetic; cached under /tmp)
    python benchmarks/run.py --sizes real,100000   # a subset
    python benchmarks/run.py --sizes build         # only build vs raw encode (bundled, generated, corpus/ x copies)
    python benchmarks/run.py --smoke               # seconds: fake embedder, tiny sizes (what CI runs)

Prints a table and writes JSON (--out, default reports/bench.json). What is synthetic: the 100K/1M passages are
generated text; their sentence vectors are real model vectors of the generated sentences and their passage
vectors the normalised mean of those (see benchmarks/benchlib.py). Query vectors are always computed by the real model
at ask time. Machines are noisy: compare the ratios measured within one run (the load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

sys.path.insert(0, str(REPO / "benchmarks"))
import benchlib as bench  # noqa: E402
from leftqa.config import BUNDLED_MODEL, Settings  # noqa: E402

LEFTQA = [sys.executable, "-m", "leftqa.app.cli"]
COLD_QUESTION = "When was Trotsky exiled?"


def real_questions(limit: int) -> list[str]:
    """The eval questions of the bundled corpus (single-turn wording)."""
    out = []
    for line in (REPO / "evals" / "tuning.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line)["question"])
    return out[:limit]


def embedded_texts(passages: Sequence[Any]) -> tuple[list[str], list[str]]:
    """What a full build embeds, in its two encode calls: distinct passage texts, then distinct new sentence texts."""
    passage_texts = list(dict.fromkeys(p.text for p in passages))
    seen = set(passage_texts)
    sentence_texts = [t for t in dict.fromkeys(s.text for p in passages for s in p.sentences) if t not in seen]
    return passage_texts, sentence_texts


class TimedEmbedder:
    """An embedder that adds up the wall and CPU seconds spent in its `encode` calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.wall = self.cpu = 0.0

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> Any:
        """The wrapped embedder's vectors; the time taken is added to `wall` and `cpu`."""
        t, c = time.perf_counter(), time.process_time()
        try:
            return self.inner.encode(texts, batch_size=batch_size, progress=progress)
        finally:
            self.wall += time.perf_counter() - t
            self.cpu += time.process_time() - c


def build_throughput(model: str, corpus: Path, work: Path, repeats: int = 2) -> dict[str, Any]:
    """A full `build_index` of a corpus next to the model's raw `encode` of exactly the texts that build embeds.

    Like for like: one embedder object (same threads, batch size) on both sides, model loading excluded from
    both, and the raw side encodes the same distinct passage texts, then the same new sentence texts, in the same
    two calls as the build's vector cache (checked against the build's own count). One untimed raw pass comes
    first: ONNX Runtime allocates for each new batch shape on first use, and the first full pass was ~10% slower
    in both tries (23.6 vs 21.3 s, 23.2 vs 21.0 s), which had favoured whichever side went second (the build).
    Raw and build then alternate (raw, build, build, raw, ...) so drifting load hits both alike; ratios are of
    the summed times.

    On this shared 2-core VM the same raw encode varies by ±10% from one pass to the next, more than the build's
    overhead, so each build also times its own encode calls: `build_vs_raw_net` is raw / (raw + the build's
    time outside encode), both parts measured within one pass each.
    """
    from leftqa.index.builder import build_index
    from leftqa.index.embed import load_embedder
    from leftqa.ingest.chunking import chunk_documents
    from leftqa.ingest.corpus import read_corpus

    settings = Settings(corpus_dir=corpus, index_dir=work / f"build-{corpus.name}", model=model, threads=0)
    embedder = load_embedder(model, threads=0)
    docs, _ = read_corpus(corpus)
    passages = chunk_documents(docs, settings.min_words, settings.max_words)
    passage_texts, sentence_texts = embedded_texts(passages)

    def raw() -> None:
        embedder.encode(passage_texts, batch_size=settings.batch_size)
        embedder.encode(sentence_texts, batch_size=settings.batch_size)

    raw()  # warm-up, untimed

    timed = TimedEmbedder(embedder)

    def build() -> None:
        shutil.rmtree(settings.index_dir, ignore_errors=True)
        report = build_index(settings, timed, full=True)
        if report.embedded + report.embedded_sentences != len(passage_texts) + len(sentence_texts):
            raise RuntimeError("the build embedded other texts than the raw encode measured")

    runs: list[dict[str, float]] = []
    for i in range(repeats):
        run: dict[str, float] = {"load_avg_1m": round(os.getloadavg()[0], 2)}
        for name, step in ((("raw", raw), ("build", build)) if i % 2 == 0 else (("build", build), ("raw", raw))):
            timed.wall = timed.cpu = 0.0
            t, c = time.perf_counter(), time.process_time()
            step()
            run[f"{name}_s"], run[f"{name}_cpu_s"] = round(time.perf_counter() - t, 3), round(time.process_time() - c, 3)
            if name == "build":  # the build's own encode calls; the rest of its time is its overhead
                run["encode_in_build_s"], run["encode_in_build_cpu_s"] = round(timed.wall, 3), round(timed.cpu, 3)
        runs.append(run)
    raw_s, build_s = (sum(r[f"{k}_s"] for r in runs) / repeats for k in ("raw", "build"))
    raw_cpu, build_cpu = (sum(r[f"{k}_cpu_s"] for r in runs) / repeats for k in ("raw", "build"))
    over_s = sum(r["build_s"] - r["encode_in_build_s"] for r in runs) / repeats
    over_cpu = sum(r["build_cpu_s"] - r["encode_in_build_cpu_s"] for r in runs) / repeats
    n = len(passages)
    return {"passages": n, "sentences": sum(len(p.sentences) for p in passages), "texts_embedded": len(passage_texts) + len(sentence_texts),
            "repeats": repeats, "raw_encode_s": round(raw_s, 2), "build_s": round(build_s, 2),
            "raw_encode_passages_per_s": round(n / raw_s, 1), "build_passages_per_s": round(n / build_s, 1),
            "build_vs_raw": round(raw_s / build_s, 3), "raw_encode_cpu_s": round(raw_cpu, 2), "build_cpu_s": round(build_cpu, 2),
            "build_vs_raw_cpu": round(raw_cpu / build_cpu, 3) if build_cpu else None,
            "build_overhead_s": round(over_s, 2), "build_overhead_cpu_s": round(over_cpu, 2),
            "build_vs_raw_net": round(raw_s / (raw_s + over_s), 3), "build_vs_raw_net_cpu": round(raw_cpu / max(raw_cpu + over_cpu, 1e-9), 3),
            "runs": runs}  # fmt: skip


def write_text_corpus(folder: Path, passages: int, model: str) -> Path:
    """A corpus of generated paragraphs (3 pool sentences each, ~45 words: one passage per paragraph)."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = bench.pool_sentences(max(passages * 3, 100), bench.vocabulary(model), seed=21)
    for d in range(0, passages, 50):
        paras = [" ".join(pool[3 * i : 3 * i + 3]) for i in range(d, min(d + 50, passages))]
        (folder / f"doc{d // 50:04d}.txt").write_text(f"Document {d // 50}\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
    return folder


def cold_start(index_dir: Path, corpus: Path, model: str, repeats: int) -> dict[str, Any]:
    """`leftqa ask` as a fresh process: median wall time and peak RSS over `repeats` runs."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    runs = [bench.run_child([*LEFTQA, "ask", COLD_QUESTION, "--index", str(index_dir), "--corpus", str(corpus), "--model", model], env=env) for _ in range(repeats)]
    bad = [r for r in runs if r["returncode"] != 0]
    if bad:
        raise RuntimeError(f"cold `leftqa ask` failed: {bad[0]['stderr'][-500:]}")
    walls = sorted(r["wall_s"] for r in runs)
    return {"wall_s": walls[len(walls) // 2], "walls_s": walls, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "cpu_s": sorted(r["cpu_s"] for r in runs)[len(runs) // 2]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_ask(url: str, question: str) -> dict[str, Any]:
    req = urllib.request.Request(f"{url}gradio_api/call/ask", data=json.dumps({"data": [question, [], None]}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        event_id = json.loads(r.read())["event_id"]
    event = ""
    with urllib.request.urlopen(f"{url}gradio_api/call/ask/{event_id}", timeout=120) as r:
        for raw in r:
            line = raw.decode("utf-8").strip()
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"HTTP ask failed: {line}")
                return json.loads(line[5:])[0]
    raise RuntimeError("HTTP ask: stream ended without a result")


def http_latency(index_dir: Path, corpus: Path, model: str, questions: list[str]) -> dict[str, Any]:
    """Round trips of the `/ask` API of a real `leftqa serve` on 127.0.0.1 (POST + event stream), one at a time."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [*LEFTQA, "serve", "--port", str(port), "--index", str(index_dir), "--corpus", str(corpus), "--model", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        t0 = time.perf_counter()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`leftqa serve` exited: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.perf_counter() - t0 > 300:
                    raise RuntimeError("`leftqa serve` did not start within 300 s") from None
                time.sleep(0.2)
        ready_s = time.perf_counter() - t0
        for q in questions[:5]:
            _http_ask(url, q)
        ms = []
        for q in questions:
            t = time.perf_counter()
            _http_ask(url, q)
            ms.append((time.perf_counter() - t) * 1000)
        mem = _proc_memory_mb(proc.pid)
        return {"ms": bench.percentiles(ms), "server_ready_s": round(ready_s, 1), "server_peak_rss_mb": mem.get("VmHWM", 0.0),
                "server_rss_private_mb": mem.get("RssAnon", 0.0), "server_rss_file_mb": mem.get("RssFile", 0.0)}  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _proc_memory_mb(pid: int) -> dict[str, float]:
    """Peak RSS and current private (anonymous) vs file-backed RSS: memory-mapped index pages are page cache,
    shared between processes and evictable, so RSS alone overstates what a process costs."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("VmHWM", "RssAnon", "RssFile"):
                out[key] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def warm_asks(index_dir: Path, corpus: Path, model: str, questions: list[str]) -> dict[str, Any]:
    """Load an Assistant (as `leftqa serve` does) and time `ask` over the questions."""
    from leftqa.qa.assistant import Assistant

    bench.prewarm(index_dir)  # "warm": the index files are in the page cache, as on a server that has been up
    t = time.perf_counter()
    assistant = Assistant.load(Settings(index_dir=index_dir, corpus_dir=corpus, model=model))
    load_s = time.perf_counter() - t
    wall, cpu = bench.time_asks(assistant, questions)
    return {"ms": bench.percentiles(wall), "cpu_ms": bench.percentiles(cpu), "load_s": round(load_s, 2), "dense_index": assistant.index.manifest.dense_index}


def synthetic_index(n: int, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The cached synthetic index of `n` passages, built in a child process when missing (its wall and peak RSS)."""
    root = Path(args.cache) / (f"smoke-{n}" if args.smoke else f"syn-{n}")
    index_dir, meta = root / "index", root.parent / f"build-{root.name.split('-', 1)[1]}.json"
    if args.smoke:
        meta = root / "build.json"
    if (index_dir / "manifest.json").exists() and meta.exists() and not args.rebuild:
        return index_dir, {**json.loads(meta.read_text()), "cached": True}
    # The compact build's HNSW checkpoint sits beside index_dir (index.dense-checkpoint), so it outlives this and
    # a killed build run again, even with --rebuild, resumes it (only if the regenerated vectors match it).
    shutil.rmtree(index_dir, ignore_errors=True)
    cmd = [sys.executable, str(REPO / "benchmarks" / "benchlib.py"), "build-synthetic", "--out", str(index_dir), "--passages", str(n), "--model", args.model, "--cache", str(args.cache)]
    if args.smoke:
        cmd += ["--pool", "400", "--ann-threshold", str(max(n // 2, 1))]
    r = bench.run_child(cmd, timeout=6 * 3600, env={**os.environ, "PYTHONPATH": str(REPO / "src")}, echo=True)
    if r["returncode"] != 0:
        raise RuntimeError(f"synthetic build of {n} failed: {r['stderr'][-800:]}")
    info = {**json.loads(r["stdout"].strip().splitlines()[-1]), "wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"]}
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps(info))
    return index_dir, {**info, "cached": False}


def measure_synthetic(n: int, args: argparse.Namespace, nowhere: Path) -> dict[str, Any]:
    """Every measurement at one synthetic size."""
    from leftqa.index.codes import LAYOUT
    from leftqa.index.embed import load_embedder
    from leftqa.index.store import read_manifest

    index_dir, build = synthetic_index(n, args)
    pool_size = 400 if args.smoke else 20_000
    pool = bench.pool_sentences(pool_size, bench.vocabulary(args.model))
    ids = bench.compose(n, pool_size)
    questions = bench.synthetic_questions(ids, pool, args.questions)
    row: dict[str, Any] = {"size": f"{n:,}", "passages": n, "synthetic": True, "build_index_part": build}
    row["warm_ask"] = warm_asks(index_dir, nowhere, args.model, questions)
    qvecs = load_embedder(args.model).encode(bench.synthetic_questions(ids, pool, args.recall_queries, seed=17))
    compact = read_manifest(index_dir).layout == LAYOUT
    # A compact index keeps only quantised vectors: recall is measured against exact search over the originals.
    truth = bench.exact_top(ids, bench.pool_vectors(pool, args.model, Path(args.cache)), qvecs) if compact else None
    row["ann"] = bench.ann_recall(index_dir, qvecs, truth=truth)
    row["bm25"] = bench.bm25_speed(index_dir, questions)
    row["plain_script"] = bench.plain_baseline(index_dir, questions, args.model)
    row["cold_start"] = cold_start(index_dir, nowhere, args.model, args.cold_repeats)
    if args.http:
        row["http"] = http_latency(index_dir, nowhere, args.model, questions)
    row["index_mb"] = round(bench.dir_bytes(index_dir) / 2**20, 1)
    row["index_bytes_per_passage"] = round(bench.dir_bytes(index_dir) / n)
    row["index_files_bytes_per_passage"] = {f.relative_to(index_dir).as_posix(): round(f.stat().st_size / n) for f in sorted(index_dir.rglob("*")) if f.is_file() and f.stat().st_size > n}
    return row


def measure_builds(args: argparse.Namespace, work: Path, row: dict[str, Any]) -> dict[str, Any]:
    """Build vs raw encode on the bundled corpus (18 passages: fixed costs dominate), on generated paragraphs and
    on real text at scale (corpus/ plus varied copies, as benchmarks/rebuild.py makes them)."""
    from rebuild import make_corpus

    row["build"] = build_throughput(args.model, REPO / "corpus", work, args.build_repeats)
    row["passages"] = row["build"]["passages"]
    if args.build_passages:
        text = write_text_corpus(work / "textcorpus", args.build_passages, args.model)
        row["build_generated_text"] = build_throughput(args.model, text, work, args.build_repeats)
    if args.build_copies:
        copies = make_corpus(work / "copiescorpus", args.build_copies)
        row["build_real_text_copies"] = {"copies": args.build_copies, **build_throughput(args.model, copies, work, args.build_repeats)}
    return row


def measure_real(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The bundled corpus: build vs raw encode, warm asks, HTTP, cold start, size."""
    row = measure_builds(args, work, {"size": "real corpus", "synthetic": False})
    index_dir = work / "build-corpus"
    questions = real_questions(args.questions)
    row["warm_ask"] = warm_asks(index_dir, REPO / "corpus", args.model, questions)
    row["plain_script"] = bench.plain_baseline(index_dir, questions, args.model)
    row["cold_start"] = cold_start(index_dir, REPO / "corpus", args.model, args.cold_repeats)
    if args.http:
        row["http"] = http_latency(index_dir, REPO / "corpus", args.model, questions)
    row["index_mb"] = round(bench.dir_bytes(index_dir) / 2**20, 3)
    return row


def _fmt(v: Any, spec: str = "") -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a fixed-width text table."""
    head = ["size", "passages", "build p/s", "encode p/s", "build/raw", "ask p50", "ask p95", "ask cpu p50", "plain p50", "http p50", "http p95", "cold s", "cold RSS MB", "index MB", "dense", "recall@10"]
    lines = [" | ".join(head)]
    for r in rows:
        b = r.get("build_generated_text") or r.get("build") or {}
        http = (r.get("http") or {}).get("ms", {})
        lines.append(" | ".join([
            r["size"], f"{r['passages']:,}", _fmt(b.get("build_passages_per_s")), _fmt(b.get("raw_encode_passages_per_s")), _fmt(b.get("build_vs_raw")),
            _fmt(r["warm_ask"]["ms"]["p50"]), _fmt(r["warm_ask"]["ms"]["p95"]), _fmt(r["warm_ask"]["cpu_ms"]["p50"]), _fmt((r.get("plain_script") or {}).get("ms", {}).get("p50")), _fmt(http.get("p50")), _fmt(http.get("p95")),
            _fmt(r["cold_start"]["wall_s"]), _fmt(r["cold_start"]["peak_rss_mb"]), _fmt(r["index_mb"]), str(r["warm_ask"].get("dense_index")),
            _fmt((r.get("ann") or {}).get("recall_at_10")),
        ]))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print/write its results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny run in seconds with the fake embedder (for CI)")
    p.add_argument("--sizes", default="real,100000,1000000", help="comma list: real, build and/or passage counts")
    p.add_argument("--model", default=None, help=f"embedding model (default {BUNDLED_MODEL}; hash:64 with --smoke)")
    p.add_argument("--out", default=str(REPO / "reports" / "bench.json"), help="JSON output file")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "leftqa-bench"), help="where synthetic indexes are kept")
    p.add_argument("--questions", type=int, default=121, help="questions per latency measurement")
    p.add_argument("--recall-queries", type=int, default=200, help="queries for ANN recall")
    p.add_argument("--cold-repeats", type=int, default=3)
    p.add_argument("--build-passages", type=int, default=1000, help="generated-text corpus for build vs encode (0: skip)")
    p.add_argument("--build-copies", type=int, default=10, help="real-text corpus for build vs encode: corpus/ plus N varied copies (0: skip)")
    p.add_argument("--build-repeats", type=int, default=2, help="raw encode / build pairs per build measurement")
    p.add_argument("--http", action=argparse.BooleanOptionalAction, default=None, help="measure HTTP latency (default: on, off with --smoke)")
    p.add_argument("--rebuild", action="store_true", help="rebuild cached synthetic indexes (a compact build's dense checkpoint of the same vectors is still resumed)")
    args = p.parse_args(argv)
    if args.smoke:
        args.model = args.model or "hash:64"
        args.sizes = "real,2000" if args.sizes == p.get_default("sizes") else args.sizes
        args.questions, args.recall_queries, args.cold_repeats = min(args.questions, 20), min(args.recall_queries, 20), 1
        args.build_passages = min(args.build_passages, 40)
        args.build_copies, args.build_repeats = min(args.build_copies, 1), 1
    args.model = args.model or BUNDLED_MODEL
    args.http = (not args.smoke) if args.http is None else args.http
    t0, load0 = time.perf_counter(), os.getloadavg()
    rows: list[dict[str, Any]] = []
    build_only: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="leftqa-bench-") as tmp:
        work = Path(tmp)
        nowhere = work / "no-corpus"  # synthetic indexes have no corpus folder to fingerprint
        for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            if size == "build":  # the build-vs-encode measurements alone, with no ask latencies
                build_only = measure_builds(args, work, {"size": "build only"})
                print(f"[{time.perf_counter() - t0:.0f}s] measured builds", file=sys.stderr, flush=True)
                continue
            rows.append(measure_real(args, work) if size == "real" else measure_synthetic(int(size), args, nowhere))
            print(f"[{time.perf_counter() - t0:.0f}s] measured {rows[-1]['size']}", file=sys.stderr, flush=True)
    result = {"model": args.model, "smoke": args.smoke, "cpus": os.cpu_count(), "load_avg_start": load0, "load_avg_end": os.getloadavg(),
              "seconds": round(time.perf_counter() - t0, 1), "results": rows}  # fmt: skip
    if build_only:
        result["build_only"] = build_only
        print(json.dumps(build_only, indent=2))
    print(table(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
