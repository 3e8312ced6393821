"""Builds on a Ray cluster: changed files are read and chunked, and new texts embedded, by a pool of Ray actors.

Only the expensive, stateless work leaves the driver. `build_index` still decides what to reuse (unchanged
files, texts embedded before), builds the BM25 and dense indexes, writes the files, holds the lock and swaps
the folder in, exactly as for a local build; this module is the `BuildBackend` it calls for reading and
embedding. Each actor loads the model once (lazily, at its first batch) and uses its GPU when the cluster has
GPUs. Batches are sized by tokens and their results stream back as they finish. A batch whose actor dies is
sent to another actor (and a replacement actor is started); the cluster going away, or no actor being able to
start, is a `ClusterError`. Ctrl-C cancels the batches in flight and kills the actors.

`ray` is an optional dependency (`pip install -e '.[ray]'`), imported only here and only when a build uses it.
Every node must run the same leftqa and ray versions as the driver (checked: a worker whose reader and
chunking code differ would cut other passages).
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

import numpy as np

from leftqa import __version__
from leftqa.config import Settings
from leftqa.errors import ClusterError
from leftqa.index.builder import ReadResult, pipeline_key, read_source
from leftqa.index.embed import Embedder, load_embedder, resolve_model_path, split_backend
from leftqa.ingest.corpus import SIDECAR, sidecar_path
from leftqa.ingest.documents import MAX_FILE_BYTES, MAX_PACKAGE_BYTES

INSTALL_HINT = "pip install -e '.[ray]'"
CPU_BATCH_TOKENS = 8192  # padded tokens per batch on a CPU worker (~1-3 s of one core for MiniLM)
GPU_BATCH_TOKENS = 65536
MAX_BATCH_TEXTS = 1024
READ_BATCH_BYTES = 8_000_000  # files shipped to a worker per read task (at least one file)
READ_BATCH_FILES = 64
IN_FLIGHT = 2  # tasks queued per actor, so it never waits for the driver between batches


@dataclass(frozen=True)
class RayOptions:
    """How a build uses the cluster. workers=0: one per GPU if the cluster has GPUs, else one per `cpus` CPUs."""

    address: str
    workers: int = 0
    cpus: int = 1  # CPUs (and ONNX Runtime threads) per worker
    batch_tokens: int = 0  # padded tokens per embedding batch; 0: CPU_BATCH_TOKENS, or GPU_BATCH_TOKENS on GPUs
    retries: int = 3  # times one batch may be sent again after its worker died
    connect_timeout: float = 10.0
    start_timeout: float = 120.0  # no worker alive and none started within this long: the build fails

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise ClusterError("--ray needs an address: auto, HOST:PORT or ray://HOST:10001")
        if self.workers < 0 or self.cpus < 1 or self.batch_tokens < 0 or self.retries < 0:
            raise ClusterError("Ray workers must be >= 0, CPUs per worker >= 1, batch tokens >= 0 and retries >= 0")


@dataclass(frozen=True)
class RayStats:
    """What the cluster did in one build (also the manifest's "build" entry, without the timings)."""

    address: str
    ray_version: str = ""
    nodes: int = 0
    workers: int = 0  # actors that served at least one batch
    devices: tuple[str, ...] = ()
    documents_read: int = 0
    texts_embedded: int = 0
    batches: int = 0
    retried: int = 0  # batches sent again after their worker died
    replaced: int = 0  # actors started to replace dead ones
    connect_seconds: float = 0.0
    read_seconds: float = 0.0  # wall time of the read phase (first submit to last result)
    embed_seconds: float = 0.0  # wall time inside the embedder's encode calls


def require_ray() -> Any:
    """The ray module, or ClusterError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs the optional Ray extra; install it with `{INSTALL_HINT}` (or `pip install 'leftqa[ray]'`)") from None
    return ray


class Progress:
    """A one-line progress display on the driver: documents read, texts embedded, throughput."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._every = 0.1 if self._tty else every
        self._last = 0.0
        self._phase = ""
        self._done = self._total = 0
        self._t0 = time.perf_counter()
        self.workers = 0

    @property
    def phase(self) -> str:
        """"read" or "embed": what is being counted now."""
        return self._phase

    def start(self, phase: str, total: int) -> None:
        self._phase, self._done, self._total, self._t0, self._last = phase, 0, total, time.perf_counter(), 0.0

    def advance(self, n: int) -> None:
        self._done += n
        now = time.perf_counter()
        if now - self._last >= self._every or self._done >= self._total:
            self._last = now
            self._show(final=self._done >= self._total)

    def _show(self, final: bool) -> None:
        seconds = max(time.perf_counter() - self._t0, 1e-9)
        rate = self._done / seconds
        unit = "documents read" if self._phase == "read" else "texts embedded"
        line = f"ray: {self._done:,}/{self._total:,} {unit}, {rate:,.1f}/s, {self.workers} workers"
        if self._tty:
            self._stream.write("\r" + line + (" " * 8) + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


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

    def read(self, files: list[tuple[str, bytes, bytes | None]]) -> list[ReadResult]:
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
        from leftqa.index.embed import SentenceTransformerEmbedder

        path = resolve_model_path(model)
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(path, device="cuda", local_files_only=not Path(path).exists())
        dim = st.get_embedding_dimension() if hasattr(st, "get_embedding_dimension") else st.get_sentence_embedding_dimension()
        return SentenceTransformerEmbedder(model, st, int(dim))
    embedder = load_embedder(model, cpus)
    if hasattr(embedder, "batch_threads"):
        embedder.batch_threads = cpus  # type: ignore[attr-defined]
    return embedder


def _host_port(address: str) -> tuple[str, int] | None:
    """Where to probe an address before ray.init (which waits for an unreachable cluster for minutes)."""
    ray = require_ray()
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            address = canonicalize_bootstrap_address("auto") or ""
        except Exception as exc:  # noqa: BLE001 - no running cluster found on this machine
            raise ClusterError(f"no Ray cluster found for --ray auto ({str(exc).splitlines()[0][:200]}); start one with `ray start --head`") from None
        if not address:
            raise ClusterError("no Ray cluster found for --ray auto; start one with `ray start --head` or give HOST:PORT")
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"bad Ray address {address!r}: use auto, HOST:PORT or ray://HOST:10001")
    del ray
    return host.strip("[]"), int(port)


class RayBackend:
    """The `BuildBackend` that runs reading and embedding on a Ray cluster; use as a context manager."""

    def __init__(self, options: RayOptions, progress: Progress | None = None, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self._progress = progress
        self._log = log or (lambda _msg: None)
        self._ray: Any = None
        self._pool: _Pool | None = None
        self._stats = RayStats(address=options.address)
        self._settings: Settings | None = None

    def __enter__(self) -> "RayBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> RayStats:
        pool = self._pool
        if pool is None:
            return self._stats
        return _replace(
            self._stats, workers=len(pool.served), devices=tuple(sorted(pool.devices)), batches=pool.batches,
            retried=pool.retried, replaced=pool.replaced, nodes=len(pool.nodes),
        )  # fmt: skip

    def close(self) -> None:
        """Kill the actors and disconnect (idempotent); after losing the cluster there is nothing to tell it."""
        if self._pool is not None:
            self._pool.shutdown()
            if self._pool.lost:
                self._ray = None
        if self._ray is not None:
            try:
                self._ray.shutdown()
            except Exception:  # noqa: BLE001 - a lost cluster cannot be disconnected from cleanly
                pass
            self._ray = None

    # -- BuildBackend --------------------------------------------------------------------------------------

    def read(self, jobs: list[tuple[Path, str]], settings: Settings) -> Iterable[ReadResult]:
        local: list[ReadResult] = []
        shipped: list[tuple[str, bytes, bytes | None]] = []
        for path, doc_id in jobs:
            item = _shippable(path, doc_id)
            if item is None:  # unreadable, special or over the size limit: read here, for the same warning
                local.append(read_source(path, doc_id, settings.min_words, settings.max_words))
            else:
                shipped.append(item)
        if not shipped:
            return local
        pool = self._connect(settings)
        payloads = _read_batches(shipped)
        t0 = time.perf_counter()
        if self._progress is not None:
            self._progress.start("read", len(shipped))
        results: list[ReadResult] = list(local)

        def done(_i: int, out: list[ReadResult]) -> None:
            results.extend(out)
            if self._progress is not None:
                self._progress.workers = len(pool.live)
                self._progress.advance(len(out))

        pool.run("read", payloads, done)
        self._stats = _replace(self._stats, documents_read=self._stats.documents_read + len(shipped),
                               read_seconds=self._stats.read_seconds + time.perf_counter() - t0)  # fmt: skip
        return results

    def embedder(self, settings: Settings) -> Embedder:
        self._connect(settings)
        return _RayEmbedder(self, settings.model)

    def describe(self) -> dict[str, Any]:
        s = self.stats
        return {
            "engine": "ray", "address": s.address, "ray_version": s.ray_version, "nodes": s.nodes, "workers": s.workers,
            "devices": list(s.devices), "batches": s.batches, "retried": s.retried, "replaced": s.replaced,
        }  # fmt: skip

    # -- internals -----------------------------------------------------------------------------------------

    def _connect(self, settings: Settings) -> "_Pool":
        if self._pool is not None:
            return self._pool
        ray = require_ray()
        address = self.options.address
        t0 = time.perf_counter()
        host, port = _host_port(address) or ("", 0)
        try:
            socket.create_connection((host, port), timeout=self.options.connect_timeout).close()
        except OSError as exc:
            raise ClusterError(
                f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); check the address or start the "
                "cluster (`ray start --head`); the index was not changed"
            ) from None
        self._log(f"connecting to the Ray cluster at {address}")
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, namespace="leftqa")
        except Exception as exc:  # noqa: BLE001 - version mismatch, refused connection: one line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ClusterError(f"cannot connect to the Ray cluster at {address}: {first[:300]}") from None
        self._ray = ray
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 0))
        opts = self.options
        per_actor: dict[str, Any] = {"num_cpus": opts.cpus}
        if gpus:
            per_actor["num_gpus"] = 1
        auto = gpus if gpus else max(1, cpus // opts.cpus)
        workers = opts.workers or auto
        budget = opts.batch_tokens or (GPU_BATCH_TOKENS if gpus else CPU_BATCH_TOKENS)
        self._stats = _replace(self._stats, ray_version=ray.__version__, connect_seconds=time.perf_counter() - t0)
        self._budget = budget
        self._log(f"Ray cluster: {len([n for n in ray.nodes() if n.get('Alive')])} nodes, {cpus} CPUs, {gpus} GPUs; "
                  f"{workers} workers of {opts.cpus} CPU{'s' if opts.cpus > 1 else ''}{' and 1 GPU' if gpus else ''}")  # fmt: skip
        self._pool = _Pool(ray, settings, opts, per_actor, workers, self._log, (host, port))
        return self._pool


class _RayEmbedder:
    """The `Embedder` the build's vector cache calls: token-sized batches over the actor pool, in order."""

    def __init__(self, backend: RayBackend, model: str) -> None:
        self._backend = backend
        self.name = model
        self._dim = 0
        self._lengths = _token_counter(model)

    @property
    def dim(self) -> int:
        if not self._dim:
            pool = self._backend._pool
            assert pool is not None
            self._dim = int(pool.call_one("dim"))
        return self._dim

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        backend = self._backend
        pool = backend._pool
        assert pool is not None
        t0 = time.perf_counter()
        batches = token_batches(self._lengths(texts), backend._budget)
        out: np.ndarray | None = np.zeros((len(texts), self._dim), dtype=np.float32) if self._dim else None
        reporter = backend._progress
        if reporter is not None:
            reporter.start("embed", len(texts))

        def done(i: int, vecs: np.ndarray) -> None:
            nonlocal out
            if out is None:
                self._dim = int(vecs.shape[1])
                out = np.zeros((len(texts), self._dim), dtype=np.float32)
            out[batches[i]] = vecs
            if reporter is not None:
                reporter.workers = len(pool.live)
                reporter.advance(len(batches[i]))

        pool.run("embed", [[texts[j] for j in rows] for rows in batches], done)
        if out is None:
            out = np.zeros((0, self.dim), dtype=np.float32)
        backend._stats = _replace(backend._stats, texts_embedded=backend._stats.texts_embedded + len(texts),
                                  embed_seconds=backend._stats.embed_seconds + time.perf_counter() - t0)  # fmt: skip
        return np.ascontiguousarray(out, dtype=np.float32)


def token_batches(lengths: list[int], budget: int, max_texts: int = MAX_BATCH_TEXTS) -> list[np.ndarray]:
    """Row indices of each batch: longest texts first, each batch at most `budget` padded tokens (>= 1 text)."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    lo = 0
    while lo < len(order):
        width = max(1, int(lengths[order[lo]]))
        n = max(1, min(max_texts, budget // width))
        batches.append(order[lo : lo + n])
        lo += n
    return batches


def _token_counter(model: str) -> Callable[[list[str]], list[int]]:
    """Token counts by the model's own tokenizer when it is a local folder; else ~4/3 tokens a word."""
    try:
        path = Path(resolve_model_path(model))
        tokenizer_file = path / "tokenizer.json"
        if tokenizer_file.is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(tokenizer_file))
            tok.no_padding()
            tok.enable_truncation(max_length=512)
            def count(texts: list[str], chunk: int = 20_000) -> list[int]:
                out: list[int] = []
                for lo in range(0, len(texts), chunk):  # in chunks: an Encoding per text is heavy
                    out += [len(e.ids) for e in tok.encode_batch([str(t).strip() for t in texts[lo : lo + chunk]])]
                return out

            return count
    except Exception:  # noqa: BLE001 - any model name the driver cannot resolve falls back to the estimate
        pass
    return lambda texts: [len(t.split()) * 4 // 3 + 2 for t in texts]


def _shippable(path: Path, doc_id: str) -> tuple[str, bytes, bytes | None] | None:
    """(doc_id, bytes, sidecar bytes) of a regular file a worker can read, or None to read it on the driver."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        limit = MAX_PACKAGE_BYTES if path.suffix.lower() in (".pdf", ".docx") else MAX_FILE_BYTES
        if st.st_size > limit:
            return None
        data = path.read_bytes()
        side_path = sidecar_path(path)
        side = side_path.read_bytes() if side_path.is_file() else None
    except OSError:
        return None
    assert SIDECAR in side_path.name
    return doc_id, data, side


def _read_batches(items: list[tuple[str, bytes, bytes | None]]) -> list[list[tuple[str, bytes, bytes | None]]]:
    batches: list[list[tuple[str, bytes, bytes | None]]] = [[]]
    size = 0
    for item in items:
        n = len(item[1])
        if batches[-1] and (size + n > READ_BATCH_BYTES or len(batches[-1]) >= READ_BATCH_FILES):
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += n
    return batches


def _replace(stats: RayStats, **changes: Any) -> RayStats:
    from dataclasses import replace

    return replace(stats, **changes)


@dataclass
class _Slot:
    actor: Any
    ready: Any  # ObjectRef of info() until the actor answered, then None
    info: dict[str, Any] = field(default_factory=dict)
    busy: int = 0


class _Pool:
    """Actors fed from a queue, IN_FLIGHT tasks each; a dead actor's tasks go back on the queue and it is replaced."""

    def __init__(
        self, ray: Any, settings: Settings, options: RayOptions, per_actor: dict[str, Any], workers: int,
        log: Callable[[str], None], head: tuple[str, int],
    ) -> None:  # fmt: skip
        self._ray = ray
        self._head = head
        self._probed = time.monotonic()
        self.lost = False
        self._opts = options
        self._log = log
        self._key = pipeline_key()
        self._cls = ray.remote(_Worker).options(max_restarts=0, max_task_retries=0, **per_actor)
        self._gpu = "num_gpus" in per_actor
        self._args = (settings.model, options.cpus, settings.min_words, settings.max_words)
        self._slots: list[_Slot] = []
        self.served: set[int] = set()
        self.devices: set[str] = set()
        self.nodes: set[str] = set()
        self.batches = self.retried = self.replaced = 0
        self._budget = workers * (1 + options.retries)  # replacements allowed over the build
        for _ in range(workers):
            self._spawn()
        self._wait_ready(min(options.start_timeout, 60.0))

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
        ray = self._ray
        exc_types = ray.exceptions
        queue = list(range(len(payloads)))[::-1]
        attempts = [0] * len(payloads)
        inflight: dict[Any, tuple[int, _Slot]] = {}
        remaining = len(payloads)
        waiting_since = time.monotonic()
        try:
            while remaining:
                for slot in self.live:
                    while queue and slot.busy < IN_FLIGHT:
                        i = queue.pop()
                        call = getattr(slot.actor, method)
                        # Passed by value: a batch (~30 KB of text) travels inside the task, and no call that
                        # needs the local object store is made (after losing the head it would end the process).
                        ref = call.remote() if method == "dim" else call.remote(payloads[i])
                        inflight[ref] = (i, slot)
                        slot.busy += 1
                pending = list(inflight) + [s.ready for s in self._slots if s.ready is not None]
                if not self.live and time.monotonic() - waiting_since > self._opts.start_timeout:
                    raise ClusterError(
                        f"no Ray worker could start within {self._opts.start_timeout:.0f}s (the cluster has no free "
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
                    slot.busy -= 1
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
                        if attempts[i] > self._opts.retries:
                            raise ClusterError(f"a batch failed on {attempts[i]} Ray workers in a row ({_first_line(exc)}); the index was not changed") from None
                        continue
                    self.served.add(id(slot))
                    if method != "dim":
                        self.batches += 1
                    remaining -= 1
                    on_result(i, value)
                if self.live:
                    waiting_since = time.monotonic()
        except BaseException:
            if self.lost:
                raise
            for ref in inflight:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - best effort: the actors are killed next
                    pass
            self.shutdown()
            raise

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
        if self._budget > 0:
            self._budget -= 1
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
