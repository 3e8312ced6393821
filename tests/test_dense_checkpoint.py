"""The compact layout's HNSW insertion saved in a checkpoint folder: a killed build resumes to the same index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from leftqa.index import compact
from leftqa.index.compact import CompactWriter, build_compact_dense, vectors_fingerprint
from leftqa.index.manifest import Chunking, IndexManifest
from leftqa.index.store import Index
from leftqa.records import Passage, Sentence

N, DIM, EVERY = 3000, 32, 1000
# efSearch well below N, so that search results depend on the graph (with efSearch >= N it is exhaustive).
SPEC = {"type": "hnsw48-sq8-ip", "M": 48, "efConstruction": 40, "efSearch": 32}


class Interrupted(Exception):
    """Stands in for the kill of a build."""


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # One thread: HNSW insertion is then deterministic, so a resumed build must give exactly the same graph.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def unit_rows(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def stop_at_first(event: str, rows: int) -> None:
    if event == "saved":
        raise Interrupted(rows)


def assert_same_index(a: Any, b: Any) -> None:
    assert a.ntotal == b.ntotal
    codes = (faiss.vector_to_array(faiss.downcast_index(i.storage).codes) for i in (a, b))
    assert np.array_equal(*codes)
    for name in ("levels", "neighbors", "offsets"):
        assert np.array_equal(faiss.vector_to_array(getattr(a.hnsw, name)), faiss.vector_to_array(getattr(b.hnsw, name))), name
    assert (a.hnsw.entry_point, a.hnsw.max_level, a.hnsw.efSearch) == (b.hnsw.entry_point, b.hnsw.max_level, b.hnsw.efSearch)
    queries = unit_rows(2000, seed=99)
    da, ia = a.search(queries, 10)
    db, ib = b.search(queries, 10)
    assert np.array_equal(ia, ib) and np.array_equal(da, db)


def test_a_resumed_build_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    x = unit_rows(N, seed=1)
    whole, trained = build_compact_dense(x, SPEC, every=EVERY)
    folder = tmp_path / "ck"
    with pytest.raises(Interrupted):
        build_compact_dense(x, SPEC, checkpoint=folder, every=EVERY, on_progress=stop_at_first)
    state = json.loads((folder / "state.json").read_text("utf-8"))
    assert state["rows"] == EVERY and state["total"] == N and state["dim"] == DIM and state["spec"] == SPEC
    assert state["fingerprint"] == vectors_fingerprint(x) and (folder / "dense.partial").is_file()
    assert not (folder / "dense.partial.tmp").exists() and not (folder / "state.json.tmp").exists()

    said: list[str] = []
    events: list[tuple[str, int]] = []
    again, trained_again = build_compact_dense(x, SPEC, checkpoint=folder, every=EVERY, log=said.append, on_progress=lambda e, r: events.append((e, r)))
    assert any("resuming" in m and f"{EVERY:,}" in m for m in said)
    assert events == [("resumed", EVERY), ("saved", 2 * EVERY)]  # none at the end: the caller saves the index itself
    assert trained and trained_again
    assert_same_index(whole, again)
    assert folder.is_dir()  # left for the caller to remove once the index is saved


def test_a_build_killed_right_after_training_resumes_from_zero_rows(tmp_path: Path) -> None:
    x = unit_rows(N, seed=2)
    folder = tmp_path / "ck"
    whole, _ = build_compact_dense(x, SPEC, every=EVERY)
    real_add = faiss.IndexHNSWSQ.add

    def killed_add(self: Any, rows: Any) -> None:
        raise Interrupted(0)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(faiss.IndexHNSWSQ, "add", killed_add)
        with pytest.raises(Interrupted):
            build_compact_dense(x, SPEC, checkpoint=folder, every=EVERY)
    assert faiss.IndexHNSWSQ.add is real_add
    assert json.loads((folder / "state.json").read_text("utf-8"))["rows"] == 0
    said: list[str] = []
    again, _ = build_compact_dense(x, SPEC, checkpoint=folder, every=EVERY, log=said.append)
    assert any("resuming" in m for m in said)
    assert_same_index(whole, again)


@pytest.mark.parametrize("change", ["vectors", "spec", "state"])
def test_a_checkpoint_of_another_build_is_discarded(tmp_path: Path, change: str) -> None:
    x = unit_rows(N, seed=3)
    folder = tmp_path / "ck"
    with pytest.raises(Interrupted):
        build_compact_dense(x, SPEC, checkpoint=folder, every=EVERY, on_progress=stop_at_first)
    spec = dict(SPEC)
    if change == "vectors":  # row 0 is in the fingerprint's sample
        x = x.copy()
        x[0] = -x[0]
    elif change == "spec":
        spec["efConstruction"] = 60
    else:  # a state whose row count does not match the partial index (as a kill between the two renames leaves it)
        state = json.loads((folder / "state.json").read_text("utf-8"))
        (folder / "state.json").write_text(json.dumps({**state, "rows": 2 * EVERY}), encoding="utf-8")
    whole, _ = build_compact_dense(x, spec, every=EVERY)
    said: list[str] = []
    events: list[tuple[str, int]] = []
    fresh, _ = build_compact_dense(x, spec, checkpoint=folder, every=EVERY, log=said.append, on_progress=lambda e, r: events.append((e, r)))
    assert any("afresh" in m for m in said) and not any("resuming" in m for m in said)
    assert events == [("saved", EVERY), ("saved", 2 * EVERY)]
    assert_same_index(whole, fresh)
    assert json.loads((folder / "state.json").read_text("utf-8"))["fingerprint"] == vectors_fingerprint(x)


def passages(n: int) -> list[Passage]:
    out = []
    for i in range(n):
        text = f"Passage {i} of the checkpoint test."
        out.append(Passage(f"p{i:05d}", "doc.txt", "Doc", "", 100 * i, 100 * i + len(text), text, (Sentence(text, 100 * i, 100 * i + len(text), 0, len(text)),)))
    return out


def write(path: Path, checkpoint: Path, x: np.ndarray, log: list[str]) -> IndexManifest:
    writer = CompactWriter(path, DIM, log=log.append, checkpoint=checkpoint)
    try:
        for lo in range(0, len(x), 1000):
            writer.add(passages(len(x))[lo : lo + 1000], x[lo : lo + 1000], x[lo : lo + 1000])
        return writer.finish(IndexManifest(model="hash:32", embedder="hash:32", chunking=Chunking(40, 150), corpus_dir="(test)", corpus_fingerprint="test"))
    except BaseException:
        writer.abort()
        raise


def killed_after_first_save(monkeypatch: pytest.MonkeyPatch, saver: str, out: Path, folder: Path, x: np.ndarray) -> None:
    """Write an index whose build is killed right after `compact.<saver>` first saves rows to the checkpoint."""
    real_save = getattr(compact, saver)

    def save_then_die(*args: Any) -> None:
        real_save(*args)
        if args[-1].rows:  # the state is the last argument
            raise Interrupted(args[-1].rows)

    with monkeypatch.context() as mp:
        mp.setattr(compact, saver, save_then_die)
        with pytest.raises(Interrupted):
            write(out, folder, x, [])


def test_the_writer_resumes_and_removes_the_checkpoint_once_the_index_is_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "DENSE_CHECKPOINT_ROWS", EVERY)
    x = unit_rows(N, seed=4)
    out, folder = tmp_path / "index", tmp_path / "index.dense-checkpoint"
    killed_after_first_save(monkeypatch, "save_checkpoint", out, folder, x)
    assert (folder / "dense.partial").is_file() and not out.exists()
    assert not list(tmp_path.glob(".index.tmp-*"))  # the writer's temporary folder went with the abort
    said: list[str] = []
    manifest = write(out, folder, x, said)
    assert any("resuming" in m for m in said)
    assert not folder.exists()
    assert manifest.extra.get("quantisation") is not None
    assert manifest.dense_index == "hnsw48-sq8-ip" and manifest.passages == N
    index = Index.load(out)
    assert index.dense.ntotal == N


SHARDED = {**SPEC, "shards": 3}


def read_graphs(folder: Path, shards: int) -> list[Any]:
    from leftqa.index.codes import shard_file

    return [faiss.read_index(str(folder / shard_file(k))) for k in range(shards)]


def test_a_resumed_sharded_build_writes_the_graphs_of_an_uninterrupted_one(tmp_path: Path) -> None:
    from leftqa.index.codes import shard_bounds
    from leftqa.index.compact import build_sharded_dense

    x = unit_rows(N, seed=5)
    whole, resumed, folder = tmp_path / "whole", tmp_path / "resumed", tmp_path / "ck"
    whole.mkdir()
    resumed.mkdir()
    assert build_sharded_dense(x, SHARDED, whole)
    with pytest.raises(Interrupted):
        build_sharded_dense(x, SHARDED, resumed, checkpoint=folder, on_progress=stop_at_first)
    bounds = shard_bounds(N, 3).tolist()
    assert json.loads((folder / "state.json").read_text("utf-8"))["rows"] == bounds[1]
    assert not list(resumed.iterdir())  # the graphs reach the index folder only once all are built
    said: list[str] = []
    events: list[tuple[str, int]] = []
    assert build_sharded_dense(x, SHARDED, resumed, checkpoint=folder, log=said.append, on_progress=lambda e, r: events.append((e, r)))
    assert any("resuming" in m and "1 of 3 graphs" in m for m in said)
    assert events == [("resumed", bounds[1]), ("saved", bounds[2]), ("saved", bounds[3])]
    a, b = read_graphs(whole, 3), read_graphs(resumed, 3)
    assert [g.ntotal for g in a] == np.diff(bounds).tolist()
    for ga, gb in zip(a, b):
        assert_same_index(ga, gb)
    ranges = [faiss.vector_to_array(faiss.downcast_index(g.storage).sq.trained) for g in a]
    assert all(np.array_equal(ranges[0], r) for r in ranges)  # one quantiser for every graph


@pytest.mark.parametrize("change", ["vectors", "shards", "graph"])
def test_a_sharded_checkpoint_of_another_build_is_discarded(tmp_path: Path, change: str) -> None:
    from leftqa.index.codes import shard_file
    from leftqa.index.compact import build_sharded_dense

    x = unit_rows(N, seed=6)
    folder, out = tmp_path / "ck", tmp_path / "out"
    out.mkdir()
    with pytest.raises(Interrupted):
        build_sharded_dense(x, SHARDED, out, checkpoint=folder, on_progress=stop_at_first)
    spec = dict(SHARDED)
    if change == "vectors":
        x = x.copy()
        x[0] = -x[0]
    elif change == "shards":
        spec["shards"] = 2
    else:  # a finished graph that is not what the state says (a kill while it was replaced, a disk error)
        (folder / shard_file(0)).write_bytes(b"not a faiss index")
    said: list[str] = []
    events: list[tuple[str, int]] = []
    build_sharded_dense(x, spec, out, checkpoint=folder, log=said.append, on_progress=lambda e, r: events.append((e, r)))
    assert any("afresh" in m for m in said) and not any("resuming" in m for m in said)
    assert [e for e, _ in events] == ["saved"] * spec["shards"]
    assert sum(g.ntotal for g in read_graphs(out, spec["shards"])) == N


def test_the_writer_publishes_a_sharded_index_and_removes_its_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "SHARD_ROWS", 1200)
    x = unit_rows(N, seed=7)
    out, folder = tmp_path / "index", tmp_path / "index.dense-checkpoint"
    killed_after_first_save(monkeypatch, "save_checkpoint_state", out, folder, x)
    assert (folder / "dense-000.faiss").is_file() and not out.exists()
    said: list[str] = []
    manifest = write(out, folder, x, said)
    assert any("resuming" in m for m in said) and not folder.exists()
    assert manifest.dense_index == "hnsw48-sq8-ip" and manifest.dense_params == {"M": 48, "efConstruction": 40, "efSearch": 1024, "shards": 3}
    assert manifest.files is not None and sorted(f for f in manifest.files if f.startswith("dense")) == ["dense-000.faiss", "dense-001.faiss", "dense-002.faiss"]
    index = Index.load(out)
    assert index.dense.ntotal == N and len(index.passage_vectors) == N
    # Every row is found by its own vector, whichever graph holds it (ids run on from graph to graph).
    rows = np.array([0, 999, 1000, 1999, 2000, 2999])
    _, ids = index.dense.search(np.ascontiguousarray(index.passage_vectors[rows]), 1)
    assert ids[:, 0].tolist() == rows.tolist()
