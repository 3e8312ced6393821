"""Which compressed dense index the compact layout uses: recall@10 against exact search, latency and build time.

    python benchmarks/ann_choice.py --passages 200000 --out reports/ann-200k.json
    python benchmarks/ann_choice.py --passages 1000000 --configs hnsw32-sq8,ivf-sq8 --out reports/ann-1m.json
    python benchmarks/ann_choice.py --passages 200000 --configs hnsw32-sq8,pca128-hnsw32-rerank10 --out reports/ann-pca.json

Vectors are the synthetic passages of benchmarks/benchlib.py (normalised mean of three real pool sentence
vectors); queries are real model vectors of generated questions (seed 17, as `run.py` measures recall). Search
runs on one thread, as the query path does; builds use every core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
import benchlib as bench  # noqa: E402


def vectors(n: int, model: str, cache: Path, queries: int, pool_size: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """(passage vectors, query vectors) of the synthetic benchmark at `n` passages drawn from `pool_size` sentences."""
    from leftqa.index.embed import load_embedder

    pool = bench.pool_sentences(pool_size, bench.vocabulary(model))
    pvecs = bench.pool_vectors(pool, model, cache)
    ids = bench.compose(n, pool_size)
    base = bench._passage_vectors(ids, pvecs)
    qvecs = load_embedder(model, threads=1).encode(bench.synthetic_questions(ids, pool, queries, seed=17))
    return base, np.ascontiguousarray(qvecs, dtype=np.float32)


def measure(index, qvecs: np.ndarray, truth: np.ndarray, knob: str, values: list[int]) -> list[dict]:
    """Recall@10 and single-thread ms per query for each value of the search knob."""
    import faiss

    faiss.omp_set_num_threads(1)
    out = []
    for v in values:
        if knob == "efSearch":
            for part in _parts(index):
                _hnsw(part).efSearch = v
        else:
            faiss.extract_index_ivf(index).nprobe = v
        ms, hits = [], 0
        for q, t in zip(qvecs, truth):
            t0 = time.perf_counter()
            _, ids = index.search(q.reshape(1, -1), 10)
            ms.append((time.perf_counter() - t0) * 1000)
            hits += len(set(ids[0].tolist()) & set(t.tolist()))
        out.append({knob: v, "recall_at_10": round(hits / truth.size, 4), "ms": bench.percentiles(ms)})
        print(json.dumps(out[-1]), flush=True)
    return out


def _parts(index):  # noqa: ANN001, ANN202 - FAISS indexes
    """The sub-indexes of an IndexShards, or the index itself."""
    import faiss

    if isinstance(index, faiss.IndexShards):
        return [faiss.downcast_index(index.at(i)) for i in range(index.count())]
    return [index]


def _sq8_hnsw(dim: int, m: int, ranges: np.ndarray):  # noqa: ANN202 - a FAISS index
    """An empty HNSW graph (efConstruction 40) over SQ8 codes with given per-dimension ranges (shared by shards)."""
    import faiss

    part = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
    part.hnsw.efConstruction = 40
    faiss.copy_array_to_vector(ranges, faiss.downcast_index(part.storage).sq.trained)
    faiss.downcast_index(part.storage).is_trained = True
    part.is_trained = True
    return part


def sharded_hnsw(base: np.ndarray, shards: int, m: int):  # noqa: ANN201 - a FAISS index
    """`shards` HNSW graphs over SQ8 codes (one set of ranges), each over a consecutive row range, searched in
    parallel threads and merged by score (FAISS IndexShards)."""
    import faiss

    n, dim = base.shape
    trainer = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    trainer.train(base[:: max(1, n // 200_000)])
    ranges = faiss.vector_to_array(trainer.sq.trained)
    out = faiss.IndexShards(dim, True, True)  # threaded, successive ids
    out.own_indices = False
    out.referenced_objects = []
    for lo, hi in zip(np.linspace(0, n, shards + 1, dtype=np.int64)[:-1], np.linspace(0, n, shards + 1, dtype=np.int64)[1:]):
        part = _sq8_hnsw(dim, m, ranges)
        for a in range(int(lo), int(hi), 100_000):
            part.add(base[a : min(a + 100_000, int(hi))])
        out.add_shard(part)
        out.referenced_objects.append(part)
    return out


def _hnsw(index):  # noqa: ANN001, ANN202 - a FAISS index
    """The HNSW graph of an index, also inside a refine wrapper and a PCA pre-transform."""
    import faiss

    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        index = faiss.downcast_index(index.base_index)
    if isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return index.hnsw


def pca_hnsw_rerank(base: np.ndarray, dims: int, m: int, k_factor: int):  # noqa: ANN201 - a FAISS index
    """HNSW over SQ8 codes of PCA-reduced vectors (cheaper distances while building), its candidates re-scored
    with full-width SQ8 codes: `k_factor` x 10 candidates for a top 10."""
    import faiss

    n, dim = base.shape
    small = faiss.IndexHNSWSQ(dims, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
    small.hnsw.efConstruction = 40
    reduced = faiss.IndexPreTransform(faiss.PCAMatrix(dim, dims), small)
    full = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexRefine(reduced, full)
    index.k_factor = k_factor
    index.train(base[:: max(1, n // 200_000)])
    for lo in range(0, n, 100_000):
        index.add(base[lo : lo + 100_000])
    return index


def queries_and_truth(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """The seeded query vectors of the synthetic benchmark at --passages and their exact top 10 (cached: minutes at 10M)."""
    from leftqa.index.embed import load_embedder

    n = args.passages
    cache = Path(args.cache) / f"ann-truth-{n}-q{args.queries}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return saved["queries"], saved["truth"]
    pool = bench.pool_sentences(20_000, bench.vocabulary(args.model))
    pvecs = bench.pool_vectors(pool, args.model, Path(args.cache))
    ids = bench.compose(n, 20_000)
    qvecs = np.ascontiguousarray(load_embedder(args.model, threads=1).encode(bench.synthetic_questions(ids, pool, args.queries, seed=17)), dtype=np.float32)
    truth = bench.exact_top(ids, pvecs, qvecs)
    np.savez(cache, queries=qvecs, truth=truth)
    return qvecs, truth


def sharded_at_scale(args: argparse.Namespace) -> int:
    """`--shards K`: K HNSW graphs (M 48, SQ8) over consecutive ranges of the --passages synthetic vectors, built one
    range at a time and saved under --cache (a killed run resumes at the next shard), then swept like --index."""
    import faiss

    from leftqa.index.codes import read_mapped_index

    n, k = args.passages, args.shards
    pool = bench.pool_sentences(20_000, bench.vocabulary(args.model))
    pvecs = bench.pool_vectors(pool, args.model, Path(args.cache))
    ids = bench.compose(n, 20_000)
    folder = Path(args.cache) / f"shards-{n}-{k}"
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "build.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    ranges_path = folder / "sq_ranges.npy"
    if not ranges_path.exists():
        trainer = faiss.IndexScalarQuantizer(pvecs.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        trainer.train(bench._passage_vectors(ids[:: max(1, n // 200_000)], pvecs))
        np.save(ranges_path, faiss.vector_to_array(trainer.sq.trained))
    ranges = np.load(ranges_path)
    bounds = np.linspace(0, n, k + 1, dtype=np.int64)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    for s, (lo, hi) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
        out = folder / f"shard-{s:03d}.faiss"
        if out.exists():
            continue
        t0 = time.perf_counter()
        part = _sq8_hnsw(pvecs.shape[1], 48, ranges)
        for a in range(lo, hi, 100_000):
            part.add(bench._passage_vectors(ids[a : min(a + 100_000, hi)], pvecs))
        faiss.write_index(part, str(out) + ".tmp")
        os.replace(str(out) + ".tmp", out)
        log[str(s)] = {"rows": hi - lo, "build_s": round(time.perf_counter() - t0, 1), "load_avg": os.getloadavg()}
        log_path.write_text(json.dumps(log, indent=2) + "\n")
        print(f"shard {s}: {hi - lo:,} rows in {log[str(s)]['build_s']} s", flush=True)
    qvecs, truth = queries_and_truth(args)
    used = args.first or k
    if args.first:  # the first graphs alone: an index of their rows, judged against exact search over those rows
        rows = int(bounds[used])
        cache = Path(args.cache) / f"ann-truth-{n}-q{args.queries}-first{rows}.npz"
        if not cache.exists():
            np.savez(cache, truth=bench.exact_top(ids[:rows], pvecs, qvecs))
        with np.load(cache) as saved:
            truth = saved["truth"]
    del ids
    index = faiss.IndexShards(pvecs.shape[1], True, True)
    for part in [read_mapped_index(folder / f"shard-{s:03d}.faiss") for s in range(used)]:
        index.add_shard(part)  # faiss's wrapper keeps a reference to each shard
    for q in qvecs[:20]:
        index.search(q.reshape(1, -1), 10)
    runs = measure(index, qvecs, truth, "efSearch", [int(e) for e in (args.ef or "256,512,1024").split(",")])
    size = sum(f.stat().st_size for f in folder.glob("shard-*.faiss"))
    result = {"passages": n, "shards": k, "first": args.first, "rows_searched": int(bounds[used]), "spec": "hnsw48-sq8 efConstruction 40, one set of SQ8 ranges", "build": log,
              "build_s": round(sum(v["build_s"] for v in log.values()), 1), "bytes_per_vector": round(size / n, 1),
              "queries": len(qvecs), "load_avg": os.getloadavg(), "runs": runs}  # fmt: skip
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def sweep_index(args: argparse.Namespace) -> int:
    """Recall@10 (against exact search over the original float32 vectors) and latency per efSearch of a built index."""
    import faiss

    from leftqa.index.codes import read_mapped_index

    qvecs, truth = queries_and_truth(args)
    path = Path(args.index) / "dense.faiss"
    t0 = time.perf_counter()
    if args.load == "faiss-mmap":
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    elif args.load == "mapped":  # what `Index.load` does
        index = read_mapped_index(path)
    else:  # copied into the process's memory (transparent huge pages if GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
        index = faiss.read_index(str(path))
    load_s = time.perf_counter() - t0
    for q in qvecs[:20]:  # warm the mapped pages
        index.search(q.reshape(1, -1), 10)
    runs = measure(index, qvecs, truth, "efSearch", [int(e) for e in (args.ef or "512,1024,2048,4096").split(",")])
    result = {
        "passages": args.passages, "index": args.index, "queries": len(qvecs), "load": args.load, "load_s": round(load_s, 2),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""), "load_avg": os.getloadavg(), "runs": runs,
        "status": {k: v.strip() for k, v in (line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()) if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile")},
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build each candidate index over the same vectors and measure it."""
    import faiss

    p = argparse.ArgumentParser()
    p.add_argument("--passages", type=int, required=True)
    p.add_argument("--model", default="bundled:all-MiniLM-L6-v2")
    p.add_argument("--cache", default="/tmp/leftqa-bench")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--configs", default="hnsw32-sq8,hnsw16-sq8,ivf-sq8", help="comma list; an -efcN suffix sets an HNSW's efConstruction (default 40)")
    p.add_argument("--out", required=True)
    p.add_argument("--index", help="sweep efSearch on this built synthetic index of --passages (no build)")
    p.add_argument("--shards", type=int, help="build this many HNSW graphs over consecutive row ranges of --passages, one at a time, and sweep them")
    p.add_argument("--first", type=int, help="with --shards: search only the first this many graphs (an index of their rows)")
    p.add_argument("--load", choices=("mapped", "faiss-mmap", "memory"), default="mapped", help="how --index's FAISS file is opened (default: as Index.load does)")
    p.add_argument("--ef", help="efSearch values swept (comma list; default 512,1024,2048,4096 with --index, else 128 to 2048)")
    # Each pool sentence is in 3n/pool passages: 150 at 1M with the benchmark's 20,000, 1,500 at 10M. A query's
    # exact top 10 are then near-ties among that many passages; a smaller pool reproduces 10M's density at 1M.
    p.add_argument("--pool", type=int, default=20_000, help="pool sentences the passages are drawn from (default 20000, as benchmarks/run.py)")
    args = p.parse_args(argv)
    if args.index:
        return sweep_index(args)
    if args.shards:
        return sharded_at_scale(args)
    base, qvecs = vectors(args.passages, args.model, Path(args.cache), args.queries, args.pool)
    n, dim = base.shape
    exact = faiss.IndexFlatIP(dim)
    exact.add(base)
    faiss.omp_set_num_threads(1)
    _, truth = exact.search(qvecs, 10)
    del exact
    efs = [int(e) for e in (args.ef or "128,256,512,1024,2048").split(",")]
    result = {"passages": n, "pool": args.pool, "queries": len(qvecs), "load_avg": os.getloadavg(), "configs": {}}
    for name in args.configs.split(","):
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        t0 = time.perf_counter()
        if name.startswith("pca"):  # e.g. pca128-hnsw32-rerank10
            parts = name.split("-")
            index = pca_hnsw_rerank(base, int(parts[0][3:]), int(parts[1][4:]), int(parts[2][6:]))
            knob, values = "efSearch", efs
        elif name.startswith("shards"):  # e.g. shards10-hnsw48-sq8: consecutive row ranges, one graph each
            index = sharded_hnsw(base, int(name.split("-")[0][6:]), int(name.split("-")[1][4:]))
            knob, values = "efSearch", efs
        elif name.startswith("hnsw"):
            m = int(name[4:].split("-")[0])
            efc = next((int(part[3:]) for part in name.split("-") if part.startswith("efc")), 40)  # hnsw32-sq8-efc80
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = efc
            index.train(base[:: max(1, n // 200_000)])
            for lo in range(0, n, 100_000):
                index.add(base[lo : lo + 100_000])
            knob, values = "efSearch", efs
        else:
            nlist = int(4 * np.sqrt(n)) // 64 * 64
            quantizer = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            index.train(base[:: max(1, n // (50 * nlist))])
            for lo in range(0, n, 100_000):
                index.add(base[lo : lo + 100_000])
            name = f"ivf{nlist}-sq8"
            knob, values = "nprobe", [16, 32, 64, 128, 256]
        build_s = time.perf_counter() - t0
        size = 0
        for part in _parts(index):
            faiss.write_index(part, "/tmp/wt31-ann.faiss")
            size += os.path.getsize("/tmp/wt31-ann.faiss")
        print(name, "build", round(build_s, 1), "s", size / n, "B/vector", flush=True)
        result["configs"][name] = {"build_s": round(build_s, 1), "bytes_per_vector": round(size / n, 1), "runs": measure(index, qvecs, truth, knob, values)}
        del index
    os.remove("/tmp/wt31-ann.faiss")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
