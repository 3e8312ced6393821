"""Builds on a Ray cluster: changed files are read and chunked, and new texts embedded, by a pool of Ray actors.

Only the expensive, stateless work leaves the driver. `build_index` still decides what to reuse (unchanged
files, texts embedded before), builds the BM25 and dense indexes, writes the files, holds the lock and swaps
the folder in, exactly as for a local build; this module is the `BuildBackend` it calls for reading and
embedding. Each actor loads the model once (lazily, at its first batch) and uses its GPU when the cluster has
GPUs. Batches are sized by tokens and their results stream back as they finish. A batch whose actor dies is
sent to another actor (and a replacement actor is started); the cluster going away, or no actor being able to
start, is a `ClusterError`. Ctrl-C cancels the batches in flight and kills the actors.

`ray` is an optional dependency (`pip install -e '.[ray]'`), imported only by this module and its helpers, and
only when a build uses it. Every node must run the same leftqa and ray versions as the driver (checked: a worker
whose reader and chunking code differ would cut other passages).

The helpers: `ray_pool` (the actors and the pool that feeds them, retries and replacements), `ray_batches` (how
files and texts are cut into tasks), `ray_progress` (the driver's progress line).
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from leftqa.config import Settings
from leftqa.errors import ClusterError
from leftqa.index.builder import ReadResult, read_source
from leftqa.index.embed import Embedder
from leftqa.index.ray_batches import (
    CPU_BATCH_TOKENS, GPU_BATCH_TOKENS, Shipped, read_batches, shippable, token_batches, token_counter,
)
from leftqa.index.ray_pool import WorkerPool
from leftqa.index.ray_progress import Progress

__all__ = ["Progress", "RayBackend", "RayOptions", "RayStats", "require_ray", "token_batches"]

INSTALL_HINT = "pip install -e '.[ray]'"


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
        self.progress = progress
        self.batch_tokens = 0  # padded tokens per embedding batch, chosen when connecting (RayOptions.batch_tokens)
        self._log = log or (lambda _msg: None)
        self._ray: Any = None
        self._pool: WorkerPool | None = None
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

    @property
    def pool(self) -> WorkerPool:
        """The actor pool; the backend connects to the cluster in `read` or `embedder`."""
        assert self._pool is not None, "not connected to the Ray cluster yet"
        return self._pool

    def add_embedded(self, texts: int, seconds: float) -> None:
        """Count `texts` embedded in `seconds` (the embedder's encode calls) in the stats."""
        self._stats = _replace(self._stats, texts_embedded=self._stats.texts_embedded + texts,
                               embed_seconds=self._stats.embed_seconds + seconds)  # fmt: skip

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

    def read(self, jobs: list[tuple[Path, str]], settings: Settings) -> Iterator[ReadResult]:
        """Each job's ReadResult as its batch comes back from the actors (files the driver must read, first)."""
        shipped: list[Shipped] = []
        for path, doc_id in jobs:
            item = shippable(path, doc_id)
            if item is None:  # unreadable, special or over the size limit: read here, for the same warning
                yield read_source(path, doc_id, settings.min_words, settings.max_words)
            else:
                shipped.append(item)
        if not shipped:
            return
        pool = self._connect(settings)
        payloads = read_batches(shipped)
        count = len(shipped)
        del shipped  # the batches hold the files now, each dropped once its results are back
        t0 = time.perf_counter()
        if self.progress is not None:
            self.progress.start("read", count)
        read = 0
        # Lazily: the build embeds (on the same actors) while it reads, and takes results as their files come up,
        # so only the window of batches in flight is held here, not every file's passages.
        for _i, out in pool.stream("read", payloads):
            read += len(out)
            # Counted as each batch arrives: the consumer may never resume the generator after the last one.
            self._stats = _replace(self._stats, documents_read=self._stats.documents_read + len(out),
                                   read_seconds=self._stats.read_seconds + time.perf_counter() - t0)  # fmt: skip
            t0 = time.perf_counter()
            if self.progress is not None:
                if self.progress.phase != "read":  # an embedding step came in between: show the reading again
                    self.progress.start("read", count)
                    self.progress.advance(read - len(out))
                self.progress.workers = len(pool.live)
                self.progress.advance(len(out))
            yield from out

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

    def _connect(self, settings: Settings) -> WorkerPool:
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
        self._stats = _replace(self._stats, ray_version=ray.__version__, connect_seconds=time.perf_counter() - t0)
        self.batch_tokens = opts.batch_tokens or (GPU_BATCH_TOKENS if gpus else CPU_BATCH_TOKENS)
        self._log(f"Ray cluster: {len([n for n in ray.nodes() if n.get('Alive')])} nodes, {cpus} CPUs, {gpus} GPUs; "
                  f"{workers} workers of {opts.cpus} CPU{'s' if opts.cpus > 1 else ''}{' and 1 GPU' if gpus else ''}")  # fmt: skip
        self._pool = WorkerPool(
            ray, settings, workers=workers, cpus=opts.cpus, retries=opts.retries, start_timeout=opts.start_timeout,
            per_actor=per_actor, head=(host, port), log=self._log,
        )  # fmt: skip
        return self._pool


class _RayEmbedder:
    """The `Embedder` the build's vector cache calls: token-sized batches over the actor pool, in order."""

    def __init__(self, backend: RayBackend, model: str) -> None:
        self._backend = backend
        self.name = model
        self._dim = 0
        self._lengths = token_counter(model)

    @property
    def dim(self) -> int:
        if not self._dim:
            self._dim = int(self._backend.pool.call_one("dim"))
        return self._dim

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        backend = self._backend
        pool = backend.pool
        t0 = time.perf_counter()
        batches = token_batches(self._lengths(texts), backend.batch_tokens)
        out: np.ndarray | None = np.zeros((len(texts), self._dim), dtype=np.float32) if self._dim else None
        reporter = backend.progress
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
        backend.add_embedded(len(texts), time.perf_counter() - t0)
        return np.ascontiguousarray(out, dtype=np.float32)


def _replace(stats: RayStats, **changes: Any) -> RayStats:
    from dataclasses import replace

    return replace(stats, **changes)
