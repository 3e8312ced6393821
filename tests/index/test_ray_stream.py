"""`RayBackend.read` streams: results come back batch by batch as the actors finish them, never all at once.

The pool runs on a fake `ray` (below) whose tasks run in the driver, in order, only when the pool waits for them,
so a test can see how much reading was done when the build took its first result. The actors run the real
`_Worker.read` and a hashing embedder, so a build through them must write the bytes of a local build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from conftest import FAKE_MODEL, write_files

from leftqa.config import Settings
from leftqa.index import compact, ray_batches
from leftqa.index.builder import build_index, pipeline_key, read_source
from leftqa.index.embed import HashEmbedder
from leftqa.index.ray_build import RayBackend, RayOptions
from leftqa.index.ray_pool import IN_FLIGHT, WorkerPool, _Worker

WORKERS = 2


def note(i: int) -> str:
    """A one-passage document whose text differs from every other note's."""
    return (f"Note {i}\n\nThe ferry number {i} left the quay at dawn carrying wool, timber and salted fish to the markets "
            f"of the coast, and the harbour master wrote its cargo in ledger {i} before the tide turned again in the "
            f"evening of that long and windy day of the year {1800 + i}.\n")  # fmt: skip


class _Errors:
    class RayError(Exception): ...
    class RayTaskError(RayError): ...
    class RayActorError(RayError): ...
    class WorkerCrashedError(RayError): ...
    class ObjectLostError(RayError): ...
    class NodeDiedError(RayError): ...
    class OwnerDiedError(RayError): ...


class _Ref:
    def __init__(self, method: str, run: Callable[[], Any]) -> None:
        self.method, self.run, self.done, self.value = method, run, False, None


class _FakeWorker:
    """The actor's work: the real `_Worker.read`, and hashed vectors (batch-independent) for `embed`."""

    def __init__(self, model: str, cpus: int, min_words: int, max_words: int) -> None:
        self._min, self._max = min_words, max_words

    def info(self) -> dict[str, Any]:
        return {"pid": 1, "node": "n1", "ip": "127.0.0.1", "leftqa": "x", "pipeline": pipeline_key(), "ray": FakeRay.__version__, "device": "cpu"}

    def read(self, files: list[Any]) -> Any:
        return _Worker.read(self, files)  # type: ignore[arg-type]

    def embed(self, texts: list[str]) -> np.ndarray:
        return HashEmbedder().encode(texts)

    def dim(self) -> int:
        return HashEmbedder().dim


class _Actor:
    def __init__(self, ray: "FakeRay", args: tuple[Any, ...]) -> None:
        self._ray, self._worker = ray, _FakeWorker(*args)

    def __getattr__(self, method: str) -> Any:
        ray, worker = self._ray, self._worker

        class _Method:
            @staticmethod
            def remote(*args: Any) -> _Ref:
                ref = _Ref(method, lambda: getattr(worker, method)(*args))
                ray.queue.append(ref)
                ray.submitted[method] = ray.submitted.get(method, 0) + 1
                return ref

        return _Method


class FakeRay:
    """Just enough of `ray` for WorkerPool: tasks run here, first submitted first, when `wait` needs one done."""

    __version__ = "fake"
    exceptions = _Errors

    def __init__(self) -> None:
        self.queue: list[_Ref] = []
        self.submitted: dict[str, int] = {}
        self.ran: dict[str, int] = {}

    def remote(self, cls: type) -> Any:
        ray = self

        class _Class:
            def options(self, **_kw: Any) -> "_Class":
                return self

            def remote(self, *args: Any) -> _Actor:
                return _Actor(ray, args)

        return _Class()

    def wait(self, refs: list[_Ref], num_returns: int = 1, timeout: float | None = None) -> tuple[list[_Ref], list[_Ref]]:
        while sum(r.done for r in refs) < num_returns and self.queue:
            ref = self.queue.pop(0)
            ref.value, ref.done = ref.run(), True
            self.ran[ref.method] = self.ran.get(ref.method, 0) + 1
        done = [r for r in refs if r.done][:num_returns]
        return done, [r for r in refs if r not in done]

    def get(self, ref: _Ref) -> Any:
        assert ref.done
        return ref.value

    def cancel(self, ref: _Ref) -> None:
        if ref in self.queue:
            self.queue.remove(ref)

    def kill(self, actor: Any, no_restart: bool = True) -> None:
        pass


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(ray_batches, "READ_BATCH_FILES", 2)  # 40 files: 20 read tasks, not one
    corpus = write_files(tmp_path / "corpus", {f"notes/n{i:02d}.txt": note(i) for i in range(40)})
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL, scorer="none")


def fake_backend(settings: Settings) -> tuple[RayBackend, FakeRay]:
    ray = FakeRay()
    backend = RayBackend(RayOptions(address="127.0.0.1:1"))
    backend._pool = WorkerPool(ray, settings, workers=WORKERS, cpus=1, retries=1, start_timeout=5, per_actor={"num_cpus": 1},
                               head=("127.0.0.1", 1), log=lambda _msg: None)  # fmt: skip
    backend.batch_tokens = 512
    return backend, ray


def test_read_yields_results_as_batches_finish_with_a_bounded_window_in_flight(settings: Settings) -> None:
    backend, ray = fake_backend(settings)
    corpus = Path(settings.corpus_dir)
    jobs = [(corpus / f"notes/n{i:02d}.txt", f"notes/n{i:02d}.txt") for i in range(40)]
    results = iter(backend.read(jobs, settings))
    first = next(results)
    window = WORKERS * IN_FLIGHT
    # One batch was needed for the first result: it was waited for, and no more than the window was ever sent.
    assert ray.ran.get("read") == 1 and ray.submitted["read"] <= window, (ray.ran, ray.submitted)
    # The build embeds on the same actors while a read is suspended with tasks in flight on them.
    vectors: list[np.ndarray] = []
    backend.pool.run("embed", [["the ferry"], ["the quay"]], lambda _i, v: vectors.append(v))
    assert len(vectors) == 2 and ray.submitted["read"] <= window
    rest = list(results)
    assert ray.submitted["read"] == ray.ran["read"] == 20
    got = sorted([first, *rest], key=lambda r: r.doc_id)
    assert got == [read_source(path, doc_id, settings.min_words, settings.max_words) for path, doc_id in jobs]
    assert backend.stats.documents_read == 40 and backend.describe()["batches"] == 20 + 2


def test_read_stopped_early_cancels_its_tasks_and_keeps_the_actors(settings: Settings) -> None:
    backend, ray = fake_backend(settings)
    corpus = Path(settings.corpus_dir)
    results = backend.read([(corpus / f"notes/n{i:02d}.txt", f"notes/n{i:02d}.txt") for i in range(40)], settings)
    next(iter(results))
    results.close()  # type: ignore[attr-defined]
    assert not [r for r in ray.queue if r.method == "read"]
    assert len(backend.pool.live) == WORKERS
    assert backend.pool.call_one("dim") == 64


@pytest.mark.parametrize("threshold, chunk", [(50_000, 50_000), (6, 4)])
def test_a_build_through_the_streaming_read_writes_the_bytes_of_a_local_build(
    threshold: int, chunk: int, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", threshold)
    monkeypatch.setattr(compact, "CHUNK", chunk)  # (6, 4): compact, reading and embedding interleaved
    backend, ray = fake_backend(settings)
    report = build_index(settings, backend=backend)
    assert report.passages == 40 and ray.ran["read"] == 20
    local = settings.with_(index_dir=tmp_path / "local")
    build_index(local, HashEmbedder())
    a, b = Path(settings.index_dir), Path(local.index_dir)
    names = sorted(f.name for f in a.iterdir() if f.is_file())
    assert names == sorted(f.name for f in b.iterdir() if f.is_file())
    for name in names:
        if name != "manifest.json":
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / "manifest.json").read_text("utf-8")) for d in (a, b))
    for m in (ma, mb):
        m.pop("created"), m.pop("build"), m.pop("corpus_dir", None)
    assert ma == mb
