"""Benchmark building blocks: timing and memory helpers, and synthetic corpora for runs 1,000x the bundled one.

Synthetic passages are three sentences drawn from a pool of generated sentences (words from the model's own
vocabulary, Zipf-distributed). The pool is embedded for real with the configured model; a passage's vector is
the normalised mean of its sentences' vectors, so large indexes need no hours of embedding. Used by
`benchmarks/run.py`; `python benchmarks/benchlib.py build-synthetic ...` builds one index in a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from leftqa.records import Passage, Sentence

if TYPE_CHECKING:
    from leftqa.index.manifest import IndexManifest

SENTENCES_PER_PASSAGE = 3
PASSAGES_PER_DOC = 100


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, mean and count of latencies in milliseconds."""
    a = np.asarray(ms, dtype=np.float64)
    if not len(a):
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "n": 0}
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2), "mean": round(float(a.mean()), 2), "n": int(len(a))}


def dir_bytes(path: Path) -> int:
    """Total size of the files under a folder."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# Files a query reads a few rows of (the compact layout's sentence codes and passage text). A server's page cache
# holds only the rows its queries touched; the files every query reads through (the dense index, BM25) stay.
SPARSE_FILES = ("sentence_codes.npy", "passages.jsonl")


def prewarm(path: Path) -> int:
    """Read every file under `path` once so it sits in the OS page cache, as a long-running server's index does;
    without this, whichever size ran after a larger one pays for disk reads. Returns the bytes read.

    The files queries read a few rows of go first: when the index is larger than memory (10M passages: 25.7 GB on
    24 GiB), reading them last evicted the dense index and BM25 that every query reads, which no server that has
    been up would have out of its cache."""
    total = 0
    files = sorted(p for p in Path(path).rglob("*") if p.is_file())
    for f in sorted(files, key=lambda f: f.name not in SPARSE_FILES):  # stable: sparse ones first, then by path
        with f.open("rb") as fh:
            while block := fh.read(8 << 20):
                total += len(block)
    return total


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(cmd: list[str], timeout: float = 900, env: dict[str, str] | None = None, echo: bool = False) -> dict[str, Any]:
    """Run a command; its wall time, its own peak RSS (MiB, from wait4), exit code and output.

    `echo`: the child's stderr is also copied to this process's stderr line by line as it comes."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines: list[bytes] = []
    reader = None
    if echo and proc.stderr is not None:
        # An hours-long build's progress belongs in the log while it runs (a killed run's log then says how far it
        # got); read only at the end, it would also block a child that writes more than the pipe holds.
        def pump(stream: Any) -> None:
            for line in stream:
                lines.append(line)
                sys.stderr.write(line.decode("utf-8", "replace"))
                sys.stderr.flush()

        reader = threading.Thread(target=pump, args=(proc.stderr,), daemon=True)
        reader.start()
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    if reader is not None:
        reader.join(timeout=30)
        err = b"".join(lines).decode("utf-8", "replace")
    else:
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "returncode": proc.returncode, "stdout": out, "stderr": err}  # fmt: skip


def time_asks(assistant: Any, questions: Sequence[str], warmup: int = 5) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) per `assistant.ask` over the questions, after a few unmeasured warm-up asks.

    The query path runs on one thread, so CPU time is about what the ask takes on an idle core: on a shared
    machine it is the steadier of the two.
    """
    for q in list(questions)[:warmup]:
        assistant.ask(q)
    wall, cpu = [], []
    for q in questions:
        t, c = time.perf_counter(), time.process_time()
        assistant.ask(q)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return wall, cpu


def vocabulary(model: str) -> list[str]:
    """Whole English words from the model's WordPiece vocabulary (or a small fallback list for fake models)."""
    from leftqa.index.embed import resolve_model_path, split_backend

    vocab_file = None
    if not model.startswith("hash:"):
        candidate = Path(resolve_model_path(split_backend(model)[1])) / "vocab.txt"
        vocab_file = candidate if candidate.is_file() else None
    if vocab_file is None:
        from leftqa.text import QUESTION_WORDS

        base = sorted(QUESTION_WORDS) + "party union workers strike congress council paper editor journal exile revolution".split()
        return sorted({a + b for a in base for b in ("", "s", "ism", "ist", "ed")})
    words = [w.strip() for w in vocab_file.read_text("utf-8").splitlines()]
    return [w for w in words if w.isalpha() and w.isascii() and len(w) >= 3]


def pool_sentences(n: int, vocab: list[str], seed: int = 7) -> list[str]:
    """`n` distinct generated sentences of 10-20 Zipf-distributed words."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(vocab))
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.07
    weights /= weights.sum()
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = int(rng.integers(10, 21))
        ids = order[rng.choice(len(vocab), size=k, p=weights)]
        s = " ".join(vocab[i] for i in ids)
        s = s[0].upper() + s[1:] + "."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def compose(n: int, pool_size: int, seed: int = 11) -> np.ndarray:
    """Pool sentence ids of each of `n` synthetic passages, shape (n, SENTENCES_PER_PASSAGE)."""
    return np.random.default_rng(seed).integers(0, pool_size, size=(n, SENTENCES_PER_PASSAGE))


def synthetic_passages(ids: np.ndarray, pool: list[str], first: int = 0) -> list[Passage]:
    """Passage records (ids, offsets and sentences like real ones) for composed pool sentence ids (numbered from `first`)."""
    out = []
    for i, row in enumerate(ids, start=first):
        sentences, local, pos = [], [], 0
        for sid in row:
            text = pool[int(sid)]
            local.append((pos, pos + len(text), text))
            pos += len(text) + 1
        doc_start = (i % PASSAGES_PER_DOC) * 4000  # passages of one document are laid out in order
        sentences = tuple(Sentence(t, doc_start + a, doc_start + b, a, b) for a, b, t in local)
        text = " ".join(t for _, _, t in local)
        out.append(Passage(f"syn{i:08d}", f"synthetic-{i // PASSAGES_PER_DOC:06d}.txt", f"Synthetic document {i // PASSAGES_PER_DOC}",
                           f"Part {i % PASSAGES_PER_DOC}", doc_start, doc_start + len(text), text, sentences))  # fmt: skip
    return out


def synthetic_questions(ids: np.ndarray, pool: list[str], n: int, seed: int = 13) -> list[str]:
    """Questions made of 4-7 words of one sentence of a random passage (so BM25 and dense both find it)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        row = ids[int(rng.integers(0, len(ids)))]
        words = pool[int(row[int(rng.integers(0, len(row)))])].rstrip(".").lower().split()
        pick = sorted(rng.choice(len(words), size=min(len(words), int(rng.integers(4, 8))), replace=False))
        out.append("What about " + " ".join(words[j] for j in pick) + "?")
    return out


def pool_vectors(pool: list[str], model: str, cache: Path) -> np.ndarray:
    """Real embeddings of the sentence pool with `model`, cached as .npy beside the other benchmark data."""
    from leftqa.index.embed import load_embedder

    tag = model.replace(":", "_").replace("/", "_")
    path = Path(cache) / f"pool-{tag}-{len(pool)}.npy"
    if path.exists():
        vecs = np.load(path, allow_pickle=False)
        if len(vecs) == len(pool):
            return vecs
    vecs = load_embedder(model).encode(pool, batch_size=64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs, allow_pickle=False)
    return vecs


def build_synthetic(out: Path, n: int, pool_size: int, model: str, cache: Path, ann_threshold: int, chunking: dict[str, int], compact: bool = False, without_dense: bool = False) -> dict[str, Any]:
    """Build a synthetic index of `n` passages at `out` with the real build code; stage timings in seconds.

    `compact`: the compact layout's streamed writer (chunks of passages, their vectors and terms), as
    `build_index` uses from COMPACT_THRESHOLD passages on; otherwise `Index.build` + `save` in memory."""
    import faiss

    from leftqa.index.store import Chunking, Index, IndexManifest

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # a build may use every core
    t0 = time.perf_counter()
    pool = pool_sentences(pool_size, vocabulary(model))
    vecs = pool_vectors(pool, model, cache)
    t_pool = time.perf_counter() - t0
    ids = compose(n, pool_size)
    manifest = IndexManifest(model=model, embedder=model, chunking=Chunking.from_dict(chunking), corpus_dir="(synthetic)", corpus_fingerprint=f"synthetic-{n}-{pool_size}",
                             extra={"synthetic": {"passages": n, "pool_sentences": pool_size, "vectors": "passage = normalised mean of real sentence vectors"}})  # fmt: skip
    if compact:
        return _build_synthetic_compact(out, ids, pool, vecs, manifest, {"pool_s": round(t_pool, 1)}, without_dense)
    passages = synthetic_passages(ids, pool)
    t_text = time.perf_counter() - t0 - t_pool
    calls = iter([_passage_vectors(ids, vecs), lambda: vecs[ids.reshape(-1)]])

    def embed(texts: list[str]) -> np.ndarray:  # passages first, then sentences, as Index.build asks
        step = next(calls)
        return step() if callable(step) else step

    t1 = time.perf_counter()
    index = Index.build(passages, embed, manifest, ann_threshold=ann_threshold)
    t_build = time.perf_counter() - t1
    index.save(out)
    t_save = time.perf_counter() - t1 - t_build
    return {"pool_s": round(t_pool, 1), "text_s": round(t_text, 1), "index_build_s": round(t_build, 1), "save_s": round(t_save, 1),
            "dense_index": index.manifest.dense_index, "dense_params": index.manifest.dense_params}  # fmt: skip


def _build_synthetic_compact(out: Path, ids: np.ndarray, pool: list[str], vecs: np.ndarray, manifest: IndexManifest, report: dict[str, Any], without_dense: bool = False) -> dict[str, Any]:
    """The synthetic index through `CompactWriter`: passages, vectors and terms made and written chunk by chunk.

    `without_dense` stops before the FAISS index (for a measurement of everything else at a size whose HNSW
    build would not finish in time): the files stay in the writer's temporary folder, renamed to `out`.

    The HNSW insertion (hours at 10M) is checkpointed in `<out>.dense-checkpoint`, beside `out` and outside the
    writer's temporary folder, so a killed build run again resumes it; the stages before it are redone (the
    passages and vectors are generated from fixed seeds, and the checkpoint is used only if they match)."""
    from leftqa.index.compact import CHUNK, CompactWriter

    t1 = time.perf_counter()

    def log(m: str) -> None:
        print(f"[{time.perf_counter() - t1:.0f}s] {m}", file=sys.stderr, flush=True)

    drop_dead_writer_folders(out, log)
    checkpoint = None if without_dense else out.parent / f"{out.name}.dense-checkpoint"
    writer = CompactWriter(out, int(vecs.shape[1]), log=log, checkpoint=checkpoint)
    make_s = 0.0
    try:
        for lo in range(0, len(ids), CHUNK):
            t = time.perf_counter()
            part = ids[lo : lo + CHUNK]
            passages = synthetic_passages(part, pool, first=lo)
            pvecs, svecs = _passage_vectors(part, vecs), vecs[part.reshape(-1)]
            make_s += time.perf_counter() - t  # stands in for reading, chunking and embedding: not the index's work
            writer.add(passages, pvecs, svecs)
            if (lo // CHUNK) % 20 == 0:
                print(f"[{time.perf_counter() - t1:.0f}s] {lo + len(part):,} passages written", file=sys.stderr, flush=True)
        if without_dense:
            writer.seal()
            os.replace(writer.tmp, out)
            return {**report, "text_and_vectors_s": round(make_s, 1), "index_build_s_without_dense": round(time.perf_counter() - t1 - make_s, 1),
                    "stages_s": {k: round(v, 1) for k, v in writer.timings.items()}, "layout": "compact (sealed, no FAISS index)"}  # fmt: skip
        final = writer.finish(manifest)
    except BaseException:
        writer.abort()
        raise
    total = time.perf_counter() - t1
    return {**report, "text_and_vectors_s": round(make_s, 1), "index_build_s": round(total - make_s, 1), "save_s": 0.0,
            "stages_s": {k: round(v, 1) for k, v in writer.timings.items()}, "layout": "compact",
            "dense_index": final.dense_index, "dense_params": final.dense_params}  # fmt: skip


def drop_dead_writer_folders(out: Path, log: Any = None) -> None:
    """Delete the temporary folders (`.<name>.tmp-<pid>`) that killed builds of `out` left beside it, once their
    process is gone: at 10M each holds ~35 GB, and a resumed build writes a new one under its own pid."""
    for folder in Path(out).parent.glob(f".{Path(out).name}.tmp-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            if log is not None:
                log(f"removing {folder}, left by a build (pid {pid}) that is gone")
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def exact_top(ids: np.ndarray, vecs: np.ndarray, queries: np.ndarray, k: int = 10, block: int = 500_000) -> np.ndarray:
    """Exact top-k passage ids per query over the synthetic passages' float32 vectors, regenerated block by block
    (a compact index keeps only quantised codes; a 10M float32 matrix would not fit next to it)."""
    import faiss

    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for lo in range(0, len(ids), block):
        flat = faiss.IndexFlatIP(vecs.shape[1])
        flat.add(_passage_vectors(ids[lo : lo + block], vecs))
        s, i = flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        s_all, i_all = np.concatenate([best_s, s], axis=1), np.concatenate([best_i, i + lo], axis=1)
        order = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s_all, order, 1), np.take_along_axis(i_all, order, 1)
    return best_i


def _passage_vectors(ids: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    out = np.empty((len(ids), vecs.shape[1]), dtype=np.float32)
    for lo in range(0, len(ids), 100_000):
        mean = vecs[ids[lo : lo + 100_000]].mean(axis=1)
        out[lo : lo + len(mean)] = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    return out


def ann_recall(index_dir: Path, queries: np.ndarray, k: int = 10, truth: np.ndarray | None = None) -> dict[str, Any]:
    """Recall@k of the index's dense search against exact search, and ms per query of each.

    Exact search runs over the index's own vectors, or `truth` gives each query's exact top k over the original
    float32 vectors (for a compact index, whose own vectors are quantised); then no exact latency is measured."""
    import faiss

    from leftqa.index.store import Index

    index = Index.load(index_dir, verify=False)
    faiss.omp_set_num_threads(1)
    if truth is not None:
        hits, ann_ms = 0, []
        for q, t in zip(queries, truth):
            t0 = time.perf_counter()
            _, a = index.dense.search(np.ascontiguousarray(q.reshape(1, -1), dtype=np.float32), k)
            ann_ms.append((time.perf_counter() - t0) * 1000)
            hits += len(set(a[0].tolist()) & set(t[:k].tolist()))
        return {"recall_at_10": round(hits / (k * len(queries)), 4), "ann_ms": percentiles(ann_ms), "exact_ms": None,
                "truth": "exact inner product over the original float32 passage vectors",
                "dense_index": index.manifest.dense_index, "dense_params": index.manifest.dense_params, "queries": len(queries)}  # fmt: skip
    exact = faiss.IndexFlatIP(index.passage_vectors.shape[1])
    for lo in range(0, index.size, 100_000):
        exact.add(np.ascontiguousarray(index.passage_vectors[lo : lo + 100_000]))
    hits, ann_ms, exact_ms = 0, [], []
    for q in queries:
        q = np.ascontiguousarray(q.reshape(1, -1), dtype=np.float32)
        t = time.perf_counter()
        _, a = index.dense.search(q, k)
        ann_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        _, e = exact.search(q, k)
        exact_ms.append((time.perf_counter() - t) * 1000)
        hits += len(set(a[0].tolist()) & set(e[0].tolist()))
    return {"recall_at_10": round(hits / (k * len(queries)), 4), "ann_ms": percentiles(ann_ms), "exact_ms": percentiles(exact_ms),
            "dense_index": index.manifest.dense_index, "queries": len(queries)}  # fmt: skip


def bm25_speed(index_dir: Path, questions: Sequence[str]) -> dict[str, Any]:
    """Queries per CPU second of our BM25 scorer and of bm25s's own get_scores on the same index, and whether equal."""
    import bm25s

    from leftqa.index.mapped import Bm25Scorer
    from leftqa.index.store import BM25_DIR, TERMS
    from leftqa.text import terms

    # The postings and terms alone (not Index.load), so a sealed folder without its FAISS index can be measured.
    index = argparse.Namespace(bm25=Bm25Scorer.load(Path(index_dir) / BM25_DIR), doc_freq=json.loads((Path(index_dir) / TERMS).read_text("utf-8"))["doc_freq"])
    theirs = bm25s.BM25.load(str(Path(index_dir) / BM25_DIR), mmap=True)
    queries = [[t for t in terms(q) if t in index.doc_freq] for q in questions]
    queries = [q for q in queries if q]
    same = all(np.array_equal(index.bm25.get_scores(q), theirs.get_scores(q)) for q in queries[:20])  # also warms pages
    from leftqa.index.postings import SparseBm25
    from leftqa.qa.retrieve import top_k

    sparse = SparseBm25(index.bm25)
    same_sparse = True
    for q in queries[:40]:  # top 100, their scores and the max, against the full score array
        full = index.bm25.get_scores(q)
        for s in (sparse.scores(q), sparse.top_scores(q, k=100)):
            top = s.top(100)
            same_sparse &= bool(np.array_equal(full[top], np.sort(full)[::-1][: len(top)]) and s.max() == float(full.max()))
            same_sparse &= bool(np.array_equal(s.at(top), full[top]))

    def full_top(q: list[str]) -> None:  # what retrieval did before: one score per passage, max, top 100
        scores = index.bm25.get_scores(q)
        scores.max()
        top_k(scores, 100)

    speed = {}
    for name, fn in (("leftqa_full_array", lambda q: index.bm25.get_scores(q)), ("bm25s_numpy", lambda q: theirs.get_scores(q)),
                     ("full_array_max_top100", full_top), ("postings_top100", lambda q: sparse.scores(q).top(100)),
                     ("postings_pruned_top100", lambda q: sparse.top_scores(q, k=100).top(100))):  # fmt: skip
        t = time.process_time()
        for q in queries:
            fn(q)
        speed[name] = round(len(queries) / max(time.process_time() - t, 1e-9), 1)
    postings = sum(int(index.bm25.indptr[index.bm25.vocab_dict[t] + 1] - index.bm25.indptr[index.bm25.vocab_dict[t]]) for q in queries for t in q)
    return {"queries_per_s": speed, "ms_per_query": {k: round(1000 / v, 2) for k, v in speed.items()}, "identical_scores": bool(same), "postings_top100_identical": same_sparse,
            "postings_per_query": round(postings / max(len(queries), 1)), "queries": len(queries)}  # fmt: skip


def plain_baseline(index_dir: Path, questions: Sequence[str], model: str) -> dict[str, Any]:
    """What a user would otherwise run: sentence-transformers encode + bm25s top 10 + exact FAISS top 10.

    Same index files and queries, no fusion, no answer; ms per query (wall and CPU), one thread for FAISS.
    """
    import bm25s
    import faiss

    from leftqa.index.embed import load_embedder, split_backend
    from leftqa.index.store import BM25_DIR, Index
    from leftqa.text import terms

    index = Index.load(index_dir, verify=False)
    embedder = load_embedder(model if model.startswith("hash:") else f"torch:{split_backend(model)[1]}", threads=1)
    lexical = bm25s.BM25.load(str(Path(index_dir) / BM25_DIR), mmap=True)
    exact = faiss.IndexFlatIP(index.passage_vectors.shape[1])
    for lo in range(0, index.size, 100_000):
        exact.add(np.ascontiguousarray(index.passage_vectors[lo : lo + 100_000]))
    faiss.omp_set_num_threads(1)

    def one(q: str) -> None:
        vec = embedder.encode([q])
        toks = [t for t in terms(q) if t in lexical.vocab_dict]
        if toks:
            scores = lexical.get_scores(toks)
            np.argpartition(-scores, min(10, len(scores) - 1))[:10]
        exact.search(vec, 10)

    for q in list(questions)[:3]:
        one(q)
    wall, cpu = [], []
    for q in questions:
        t, c = time.perf_counter(), time.process_time()
        one(q)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {"ms": percentiles(wall), "cpu_ms": percentiles(cpu), "embedder": embedder.name}


HEADLINE = ("hit@1", "hit@5", "mrr@10", "answer@1", "abstention_recall", "false_abstention")


def compare_backends(corpus: Path, cases: Path, calibration: Path | None, work: Path, model: str) -> dict[str, Any]:
    """`leftqa eval` headline metrics of torch, onnx and onnx-int8 indexes of one corpus, under one calibration.

    One process and one calibration for all three, so only the embedding backend differs (calibration files
    are per model name, and a backend-prefixed name would otherwise fall back to the default thresholds).
    """
    from leftqa.evals.cases import load_cases
    from leftqa.evals.run import evaluate
    from leftqa.index.builder import build_index
    from leftqa.qa.assistant import Assistant
    from leftqa.qa.policy import AbstentionPolicy, calibration_path, read_calibration

    base = model.split(":", 1)[1] if model.split(":", 1)[0] in ("torch", "onnx", "onnx-int8") else model
    loaded = load_cases([cases])
    policy = None
    out: dict[str, Any] = {"metrics": {}, "top10_identical_to_torch": {}}
    rankings: dict[str, list[tuple[str, ...]]] = {}
    for backend in ("torch", "onnx", "onnx-int8"):
        name = f"{backend}:{base}"
        settings_ = _settings(corpus, work / backend, name)
        build_index(settings_, full=True)
        assistant = Assistant.load(settings_)
        if policy is None:  # read once, unchecked: a backend-prefixed model name would refuse it, and all share one model
            scorer = assistant.scorer
            policy = AbstentionPolicy.from_calibration(read_calibration(calibration_path(calibration, scorer.folder if scorer else None)),
                                                       scorer.info.answerability if scorer else None)  # fmt: skip
            out["calibration"] = policy.source
        assistant = assistant.with_policy(policy)
        run = evaluate(assistant, loaded, ["hybrid"])
        out["metrics"][backend] = {g: {k: v for k, v in row.items() if k in HEADLINE} for g, row in run.metrics["hybrid"].items()}
        rankings[backend] = [tuple(h.passage_id for h in assistant.search(c.question)) for c in loaded]
    for backend in ("onnx", "onnx-int8"):
        same = sum(a == b for a, b in zip(rankings["torch"], rankings[backend]))
        out["top10_identical_to_torch"][backend] = f"{same}/{len(loaded)}"
    return out


def _settings(corpus: Path, index_dir: Path, model: str) -> Any:
    from leftqa.config import Settings

    return Settings(corpus_dir=corpus, index_dir=index_dir, model=model, threads=0)


def main(argv: Sequence[str] | None = None) -> int:
    """`python benchmarks/benchlib.py build-synthetic ...` (one synthetic build) or `compare-backends ...`; JSON on stdout."""
    p = argparse.ArgumentParser(prog="benchmarks/benchlib.py")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build-synthetic")
    b.add_argument("--out", required=True)
    b.add_argument("--passages", type=int, required=True)
    b.add_argument("--pool", type=int, default=20_000)
    b.add_argument("--model", required=True)
    b.add_argument("--cache", required=True)
    b.add_argument("--ann-threshold", type=int, default=None)
    b.add_argument("--min-words", type=int, default=40)
    b.add_argument("--max-words", type=int, default=150)
    b.add_argument("--layout", choices=("auto", "exact", "compact"), default="auto", help="auto: compact from COMPACT_THRESHOLD passages on")
    b.add_argument("--without-dense", action="store_true", help="compact: stop before the FAISS index (measures everything else)")
    c = sub.add_parser("compare-backends", help="eval headline metrics of the three embedding backends")
    c.add_argument("--corpus", default="corpus")
    c.add_argument("--cases", default="evals/tuning.jsonl")
    c.add_argument("--calibration", default=None, help="calibration file (default: the one beside the answer scorer)")
    c.add_argument("--work", required=True, help="folder for the three indexes")
    c.add_argument("--model", default="bundled:all-MiniLM-L6-v2")
    args = p.parse_args(argv)
    if args.command == "compare-backends":
        result = compare_backends(Path(args.corpus), Path(args.cases), Path(args.calibration) if args.calibration else None, Path(args.work), args.model)
        for group, row in result["metrics"]["onnx"].items():
            for k in row:
                vals = [result["metrics"][b][group].get(k) for b in ("torch", "onnx", "onnx-int8")]
                delta = 100 * (vals[2] - vals[1])
                print(f"{group:12s} {k:18s} torch {vals[0]:.4f}  onnx {vals[1]:.4f}  onnx-int8 {vals[2]:.4f}  int8-fp32 {delta:+.1f} pt")
        print("top-10 identical to torch:", result["top10_identical_to_torch"])
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    from leftqa.index.store import ANN_THRESHOLD

    threshold = ANN_THRESHOLD if args.ann_threshold is None else args.ann_threshold
    from leftqa.index.compact import COMPACT_THRESHOLD

    compact = args.layout == "compact" or (args.layout == "auto" and args.passages >= COMPACT_THRESHOLD)
    report = build_synthetic(Path(args.out), args.passages, args.pool, args.model, Path(args.cache), threshold, {"min_words": args.min_words, "max_words": args.max_words}, compact, args.without_dense)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
