"""The pool of Ray actors a Ray build (`index/ray_build.py`) runs its tasks on, and the actor itself.

Each actor (`_Worker`) reads and chunks the files it is sent and embeds texts with the model it loads once, at its
first batch: sentence-transformers on its GPU when it has one, else ONNX on its CPU share. The pool feeds the
actors from a queue, IN_FLIGHT tasks each, and checks that every actor runs the driver's leftqa pipeline and ray
version. A batch whose actor dies goes back on the queue and a replacement actor is started, a limited number of
times; losing the cluster's head, or no actor being able to start, is a `ClusterError`.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from leftqa import __version__
from leftqa.config import Settings
from leftqa.errors import ClusterError
from leftqa.index.builder import ReadResult, pipeline_key, read_source
from leftqa.index.embed import Embedder, SentenceTransformerEmbedder, load_embedder, resolve_model_path, split_backend
from leftqa.index.ray_batches import Shipped
from leftqa.ingest.corpus import sidecar_path

IN_FLIGHT = 2  # tasks queued per actor, so it never waits for the driver between batches


class _Worker:
    """The actor: reads and chunks files, and embeds texts with the model it loads once."""

    def __init__(self, model: str, cpus: int, min_words: int, max_words: int) -> None:
        import ray

        self._model, self._cpus, self._min, self._max = model, cpus, min_words, max_words
        self._embedder: Any = None
        self._gpu = bool(ray.get_gpu_ids())
        self._device = "cuda" if self._gpu else "cpu"

    def info(self) -> dict[str, Any]:
        import ray

        return {
            "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address(),
            "leftqa": __version__, "pipeline": pipeline_key(), "ray": ray.__version__, "device": self._device,
        }  # fmt: skip

    def read(self, files: list[Shipped]) -> list[ReadResult]:
        out = []
        with tempfile.TemporaryDirectory(prefix="leftqa-read-") as tmp:
            for doc_id, data, side in files:
                path = Path(tmp) / doc_id
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                if side is not None:
                    sidecar_path(path).write_bytes(side)
                out.append(read_source(path, doc_id, self._min, self._max))
                path.unlink()
                if side is not None:
                    sidecar_path(path).unlink()
        return out

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._load().encode(texts, batch_size=max(1, len(texts)))

    def dim(self) -> int:
        return int(self._load().dim)

    def _load(self) -> Any:
        if self._embedder is None:
            self._embedder = _worker_embedder(self._model, self._cpus, self._gpu)
        return self._embedder


def _worker_embedder(model: str, cpus: int, gpu: bool) -> Embedder:
    """The model on this worker: sentence-transformers on its GPU (fp32 models), else ONNX on `cpus` threads."""
    backend, _ = split_backend(model)
    if gpu and backend in ("onnx", "torch"):
        return SentenceTransformerEmbedder.on_device(model, resolve_model_path(model), "cuda")
    embedder = load_embedder(model, cpus)
    if hasattr(embedder, "batch_threads"):
        embedder.batch_threads = cpus  # type: ignore[attr-defined]
    return embedder


@dataclass
class _Slot:
    actor: Any
    ready: Any  # ObjectRef of info() until the actor answered, then None
    info: dict[str, Any] = field(default_factory=dict)


class WorkerPool:
    """Actors fed from a queue, IN_FLIGHT tasks each; a dead actor's tasks go back on the queue and it is replaced.

    `workers` actors of `cpus` CPUs (and `per_actor` Ray resources) are started at once. A batch may be sent again
    `retries` times after its actor died; `workers * (1 + retries)` replacement actors may be started over the
    build; with no actor alive for `start_timeout` seconds the build fails. `head` is probed when Ray goes quiet.
    """

    def __init__(
        self, ray: Any, settings: Settings, *, workers: int, cpus: int, retries: int, start_timeout: float,
        per_actor: dict[str, Any], head: tuple[str, int], log: Callable[[str], None],
    ) -> None:  # fmt: skip
        self._ray = ray
        self._head = head
        self._probed = time.monotonic()
        self.lost = False
        self._retries = retries
        self._start_timeout = start_timeout
        self._log = log
        self._key = pipeline_key()
        self._cls = ray.remote(_Worker).options(max_restarts=0, max_task_retries=0, **per_actor)
        self._gpu = "num_gpus" in per_actor
        self._args = (settings.model, cpus, settings.min_words, settings.max_words)
        self._slots: list[_Slot] = []
        self.served: set[int] = set()
        self.devices: set[str] = set()
        self.nodes: set[str] = set()
        self.batches = self.retried = self.replaced = 0
        self._replacements_left = workers * (1 + retries)  # actors that may still be started to replace dead ones
        for _ in range(workers):
            self._spawn()
        self._wait_ready(min(start_timeout, 60.0))

    def _wait_ready(self, timeout: float) -> None:
        """Let the first workers start (so work is spread over all of them); the build fails if none can."""
        ray = self._ray
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            starting = [s.ready for s in self._slots if s.ready is not None]
            if not starting:
                return
            done, _ = ray.wait(starting, num_returns=len(starting), timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            for ref in done:
                slot = next((s for s in self._slots if s.ready is not None and s.ready == ref), None)
                if slot is not None:
                    self._started(slot, ref)
        if not self.live:
            raise ClusterError(f"no Ray worker could start within {timeout:.0f}s (no free CPU or GPU on the cluster?); the index was not changed")

    @property
    def live(self) -> list[_Slot]:
        return [s for s in self._slots if s.ready is None]

    def _spawn(self) -> None:
        actor = self._cls.remote(*self._args)
        self._slots.append(_Slot(actor=actor, ready=actor.info.remote()))

    def call_one(self, method: str) -> Any:
        out: list[Any] = []
        self.run(method, [None], lambda _i, value: out.append(value))
        return out[0]

    def run(self, method: str, payloads: list[Any], on_result: Callable[[int, Any], None]) -> None:
        """Run `method(payload)` on the actors for every payload; on_result(i, value) as each finishes."""
        try:
            for i, value in self.stream(method, payloads):
                on_result(i, value)
        except BaseException:
            if not self.lost:  # as when the error comes from the actors: a failed run leaves no actor behind
                self.shutdown()
            raise

    def stream(self, method: str, payloads: list[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (i, method(payloads[i])) as each finishes; at most IN_FLIGHT tasks per live actor are out at once.

        Nothing is sent while the consumer holds the generator, so the driver never holds more than that window of
        finished results it has not taken. A payload is dropped from `payloads` once its result is yielded. The
        tasks of a stream the consumer stops early are cancelled, and the actors kept (another stream may use them).
        """
        ray = self._ray
        exc_types = ray.exceptions
        queue = list(range(len(payloads)))[::-1]
        attempts = [0] * len(payloads)
        inflight: dict[Any, tuple[int, _Slot]] = {}
        busy: dict[int, int] = {}  # this stream's tasks per actor: a suspended stream must not block another's
        remaining = len(payloads)
        waiting_since = time.monotonic()
        try:
            while remaining:
                for slot in self.live:
                    while queue and busy.get(id(slot), 0) < IN_FLIGHT:
                        i = queue.pop()
                        call = getattr(slot.actor, method)
                        # Passed by value: a batch (~30 KB of text) travels inside the task, and no call that
                        # needs the local object store is made (after losing the head it would end the process).
                        ref = call.remote() if method == "dim" else call.remote(payloads[i])
                        inflight[ref] = (i, slot)
                        busy[id(slot)] = busy.get(id(slot), 0) + 1
                pending = list(inflight) + [s.ready for s in self._slots if s.ready is not None]
                if not self.live and time.monotonic() - waiting_since > self._start_timeout:
                    raise ClusterError(
                        f"no Ray worker could start within {self._start_timeout:.0f}s (the cluster has no free "
                        f"{'GPU' if self._gpu else 'CPU'} for one, or it was lost); the index was not changed"
                    )
                if not pending:
                    raise ClusterError("every Ray worker died and no replacement can be started; the index was not changed")
                done, _ = ray.wait(pending, num_returns=1, timeout=1.0)
                if not done:
                    self._check_head()
                for ref in done:
                    slot = next((s for s in self._slots if s.ready is not None and s.ready == ref), None)
                    if slot is not None:
                        self._started(slot, ref)
                        continue
                    i, slot = inflight.pop(ref)
                    busy[id(slot)] -= 1
                    try:
                        value = ray.get(ref)
                    except exc_types.RayTaskError as exc:
                        raise ClusterError(f"a Ray worker failed: {_first_line(exc)}") from None
                    except (exc_types.RayActorError, exc_types.WorkerCrashedError, exc_types.ObjectLostError,
                            exc_types.NodeDiedError, exc_types.OwnerDiedError) as exc:  # fmt: skip
                        self._check_head(now=True)
                        self._died(slot, exc, inflight, queue, attempts)
                        queue.append(i)
                        attempts[i] += 1
                        self.retried += 1
                        if attempts[i] > self._retries:
                            raise ClusterError(f"a batch failed on {attempts[i]} Ray workers in a row ({_first_line(exc)}); the index was not changed") from None
                        continue
                    self.served.add(id(slot))
                    if method != "dim":
                        self.batches += 1
                    remaining -= 1
                    payloads[i] = None  # sent for the last time: the driver need not keep it
                    yield i, value
                if self.live:
                    waiting_since = time.monotonic()
        except GeneratorExit:
            self._cancel(inflight)  # the consumer stopped early (or finished): the pool stays for its next work
            raise
        except BaseException:
            if self.lost:
                raise
            self._cancel(inflight)
            self.shutdown()
            raise

    def _cancel(self, inflight: dict[Any, tuple[int, _Slot]]) -> None:
        for ref in inflight:
            try:
                self._ray.cancel(ref)
            except Exception:  # noqa: BLE001 - best effort: the actors are killed next, or finish it unseen
                pass

    def _check_head(self, now: bool = False) -> None:
        """ClusterError when the head no longer accepts connections (Ray itself would wait, then end the process)."""
        if not now and time.monotonic() - self._probed < 3.0:
            return
        self._probed = time.monotonic()
        for attempt in range(2):
            try:
                socket.create_connection(self._head, timeout=5).close()
                return
            except OSError as exc:
                why = exc.strerror or str(exc)
                time.sleep(0.5 * (attempt + 1))
        self.lost = True
        raise ClusterError(f"lost the Ray cluster at {self._head[0]}:{self._head[1]} ({why}) during the build; the index was not changed")

    def _started(self, slot: _Slot, ref: Any) -> None:
        ray = self._ray
        try:
            info = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            raise ClusterError(f"a Ray worker cannot start: {_first_line(exc)}") from None
        except ray.exceptions.RayError as exc:
            self._slots.remove(slot)
            self._replace(f"a Ray worker died while starting ({_first_line(exc)})")
            return
        if info.get("pipeline") != self._key or info.get("ray") != ray.__version__:
            raise ClusterError(
                f"the Ray worker on {info.get('ip')} runs leftqa {info.get('leftqa')} (pipeline {info.get('pipeline')}, "
                f"ray {info.get('ray')}) but this driver runs {__version__} (pipeline {self._key}, ray {ray.__version__}); "
                "install the same leftqa and ray on every node"
            )
        slot.ready, slot.info = None, info
        self.devices.add(str(info.get("device")))
        self.nodes.add(str(info.get("node")))

    def _died(self, slot: _Slot, exc: BaseException, inflight: dict[Any, tuple[int, _Slot]], queue: list[int], attempts: list[int]) -> None:
        if slot not in self._slots:
            return  # already handled through another of its tasks
        self._slots.remove(slot)
        where = slot.info.get("ip", "?")
        self._replace(f"a Ray worker on {where} died ({_first_line(exc)}); its batches are sent again")

    def _replace(self, why: str) -> None:
        self._log(why)
        if self._replacements_left > 0:
            self._replacements_left -= 1
            self.replaced += 1
            self._spawn()

    def shutdown(self) -> None:
        if self.lost:
            self._slots = []
            return
        for slot in self._slots:
            try:
                self._ray.kill(slot.actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead or the cluster is gone
                pass
        self._slots = []


def _first_line(exc: BaseException) -> str:
    """One line of a Ray error: the worker's own exception message when there is one."""
    cause = getattr(exc, "cause", None)
    text = str(cause if isinstance(cause, BaseException) and str(cause).strip() else exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]
