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
            _hnsw(index).efSearch = v
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


def sweep_index(args: argparse.Namespace) -> int:
    """Recall@10 (against exact search over the original float32 vectors) and latency per efSearch of a built index."""
    import faiss

    from leftqa.index.embed import load_embedder

    n = args.passages
    pool = bench.pool_sentences(20_000, bench.vocabulary(args.model))
    pvecs = bench.pool_vectors(pool, args.model, Path(args.cache))
    ids = bench.compose(n, 20_000)
    qvecs = np.ascontiguousarray(load_embedder(args.model, threads=1).encode(bench.synthetic_questions(ids, pool, args.queries, seed=17)), dtype=np.float32)
    truth = bench.exact_top(ids, pvecs, qvecs)
    index = faiss.read_index(str(Path(args.index) / "dense.faiss"), faiss.IO_FLAG_MMAP_IFC)
    for q in qvecs[:20]:  # warm the mapped pages
        index.search(q.reshape(1, -1), 10)
    runs = measure(index, qvecs, truth, "efSearch", [int(e) for e in (args.ef or "512,1024,2048,4096").split(",")])
    result = {"passages": n, "index": args.index, "queries": len(qvecs), "load_avg": os.getloadavg(), "runs": runs}
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
    p.add_argument("--ef", help="efSearch values swept (comma list; default 512,1024,2048,4096 with --index, else 128 to 2048)")
    # Each pool sentence is in 3n/pool passages: 150 at 1M with the benchmark's 20,000, 1,500 at 10M. A query's
    # exact top 10 are then near-ties among that many passages; a smaller pool reproduces 10M's density at 1M.
    p.add_argument("--pool", type=int, default=20_000, help="pool sentences the passages are drawn from (default 20000, as benchmarks/run.py)")
    args = p.parse_args(argv)
    if args.index:
        return sweep_index(args)
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
        faiss.write_index(index, "/tmp/wt31-ann.faiss")
        size = os.path.getsize("/tmp/wt31-ann.faiss")
        print(name, "build", round(build_s, 1), "s", size / n, "B/vector", flush=True)
        result["configs"][name] = {"build_s": round(build_s, 1), "bytes_per_vector": round(size / n, 1), "runs": measure(index, qvecs, truth, knob, values)}
        del index
    os.remove("/tmp/wt31-ann.faiss")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
