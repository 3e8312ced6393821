"""`leftqa index --ray`: a real local Ray cluster (a head and a second worker node, two processes) builds the index.

Ray advertises the machine's interface address whatever it is told, and nothing here may listen or connect
beyond loopback, so the cluster and every Ray driver run inside a network namespace of their own that has only
loopback (`unshare -n`, `ip link set lo up`; also a PID and mount namespace, so every Ray process dies with it).
The index files are on the shared filesystem, so they are compared here, outside, with local builds.

Needs root, `unshare`/`nsenter`/`ip` and the ray extra; skipped with the reason otherwise, except in CI or with
LEFTQA_REQUIRE_RAY set, where a missing prerequisite fails.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from conftest import GUILD_MD, HARBOUR_TXT, REAL_CORPUS, REPO_ROOT, write_files

from leftqa.config import Settings
from leftqa.errors import ClusterError
from leftqa.index.builder import build_index
from leftqa.index.ray_build import Progress, RayOptions, token_batches
from leftqa.qa.assistant import Assistant

BIN = Path(sys.executable).parent
PORT = 6390
REQUIRED = bool(os.environ.get("CI") or os.environ.get("LEFTQA_REQUIRE_RAY"))
QUERIES = ["Who led the Harbour Committee?", "When did the journeymen strike?", "Trotskyists in Spain", "apprentice masterpiece"]
PAGE_HTML = """<html><head><title>Dockers' strike</title></head><body><main><h1>Dockers' strike</h1>
<p>The dockers of the north quay stopped work in the spring of 1889 and stayed out for five weeks. Their committee met
every evening in the back room of the Anchor tavern, where the carters and the lightermen joined them.</p>
<p>The strike ended when the shipowners agreed to a standing rate for night work and to the hiring hall that the
committee had asked for since the winter, which the dockers ran themselves for the next decade.</p>
</main></body></html>"""


# --- without a cluster -------------------------------------------------------------------------------------------


def test_without_the_ray_extra_ray_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None; from leftqa.app.cli import main; "  # None: `import ray` fails
        f"sys.exit(main(['index', '--corpus', {str(REAL_CORPUS)!r}, '--index', {str(tmp_path / 'index')!r}, '--ray', 'auto']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "leftqa: error: --ray needs the optional Ray extra; install it with `pip install -e '.[ray]'` (or `pip install 'leftqa[ray]'`)"
    ]
    assert not (tmp_path / "index").exists()


def test_importing_the_cli_builder_and_ray_backend_does_not_import_ray() -> None:
    code = "import sys, leftqa.app.cli, leftqa.qa.assistant, leftqa.index.ray_build; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_batches_are_sized_by_padded_tokens_longest_first() -> None:
    batches = token_batches([3, 10, 4, 10, 2, 5], budget=20)
    assert [b.tolist() for b in batches] == [[1, 3], [5, 2, 0, 4]]  # 2 x 10 tokens, then 4 x 5 (padded to the 5)
    assert [b.tolist() for b in token_batches([50, 1], budget=20)] == [[0], [1]]  # a text over the budget goes alone
    assert [b.tolist() for b in token_batches([1] * 5, budget=100, max_texts=2)] == [[0, 1], [2, 3], [4]]


def test_progress_reports_documents_texts_and_throughput() -> None:
    stream = io.StringIO()
    progress = Progress(stream, every=0.0)
    progress.workers = 2
    progress.start("read", 3)
    progress.advance(1)
    progress.advance(2)
    progress.start("embed", 10)
    progress.advance(10)
    lines = stream.getvalue().splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["ray: 1/3 documents read", "ray: 3/3 documents read", "ray: 10/10 texts embedded"]
    assert all(ln.endswith(", 2 workers") and "/s" in ln for ln in lines)


@pytest.mark.parametrize("bad", [{"address": " "}, {"address": "auto", "workers": -1}, {"address": "auto", "cpus": 0}])
def test_bad_ray_options_are_refused(bad: dict) -> None:
    with pytest.raises(ClusterError):
        RayOptions(**bad)


# --- a real local cluster ------------------------------------------------------------------------------------------


def _missing() -> str:
    """Why the cluster cannot be started here, or ""."""
    if importlib.util.find_spec("ray") is None:
        return "the ray extra is not installed (pip install -e '.[ray]')"
    if os.geteuid() != 0:
        return "needs root to make a network namespace with only loopback (unshare -n)"
    for tool in ("unshare", "nsenter", "ip", "setsid"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux / iproute2)"
    probe = subprocess.run(["unshare", "-n", "-p", "-f", "-m", "--mount-proc", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace here: {probe.stderr.strip()[:200]}"
    return ""


# PID 1 of the namespace: reaps every orphan (killed Ray nodes leave many), ends after an hour at most.
_INIT = "import os, time\nend = time.time() + 3600\nwhile time.time() < end:\n    try:\n        os.wait()\n    except ChildProcessError:\n        time.sleep(0.2)"


class Namespace:
    """A network + PID + mount namespace with only loopback, kept alive by a reaping Python loop as its PID 1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._holder = subprocess.Popen(
            ["unshare", "-n", "-p", "-f", "-m", "--mount-proc", "--kill-child", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"', sys.executable, _INIT]
        )
        deadline = time.monotonic() + 10
        self.pid = 0
        while not self.pid and time.monotonic() < deadline:
            children = Path(f"/proc/{self._holder.pid}/task/{self._holder.pid}/children")
            text = children.read_text().split() if children.exists() else []
            self.pid = int(text[0]) if text else 0
            time.sleep(0.05)
        assert self.pid, "the namespace did not start"
        # RAY_AUTH_MODE: a ~/.ray/auth_token left by any earlier local ray.init makes `ray start --head` require token
        # authentication, which the namespace's clients then fail.
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}

    def _cmd(self, cmd: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "-p", "-m", "--", *cmd]

    def run(self, cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(cmd), capture_output=True, text=True, timeout=timeout, env=self.env, cwd=self.root)

    def popen(self, cmd: list[str], **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(self._cmd(cmd), text=True, env=self.env, cwd=self.root, **kw)  # type: ignore[call-overload]

    def start_node(self, name: str, args: list[str]) -> int:
        """`ray start ... --block` in a session of its own; returns its process group id (inside the namespace)."""
        pgid_file = self.root / f"{name}.pgid"
        pgid_file.unlink(missing_ok=True)
        log = (self.root / f"{name}.log").open("w")
        script = f'echo $$ > {pgid_file}; exec {BIN / "ray"} start --block --node-ip-address=127.0.0.1 --disable-usage-stats {" ".join(args)}'
        self.popen(["setsid", "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not (pgid_file.exists() and pgid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return int(pgid_file.read_text())

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-c", code], timeout=timeout)

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)  # PID 1 of the namespace: the kernel kills everything in it
        except ProcessLookupError:
            pass
        self._holder.wait(timeout=30)


class Cluster:
    """A head (1 CPU) and one worker node (1 CPU) on 127.0.0.1 inside a Namespace."""

    def __init__(self, ns: Namespace, port: int = PORT) -> None:
        self.ns = ns
        self.address = f"127.0.0.1:{port}"
        self.head = ns.start_node(f"head-{port}", ["--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", f"--temp-dir={ns.root / 'ray'}"])
        self.worker = 0
        self.wait_for_nodes(1)

    def add_worker(self) -> None:
        self.worker = self.ns.start_node("worker", [f"--address={self.address}", "--num-cpus=1"])

    def alive_nodes(self) -> int:
        code = f"import ray; ray.init(address={self.address!r}, logging_level='ERROR'); print(sum(1 for n in ray.nodes() if n['Alive']))"
        out = self.ns.python(code)
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else -1

    def wait_for_nodes(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive_nodes() == n:
                return
            time.sleep(1)
        raise AssertionError(f"the cluster did not reach {n} live nodes; logs in {self.ns.root}")

    def ensure_worker(self) -> None:
        """A live second node (started again after a test killed it)."""
        if self.worker and self.ns.run(["kill", "-0", "--", f"-{self.worker}"]).returncode == 0:
            return
        self.add_worker()
        self.wait_for_nodes(2)


@pytest.fixture(scope="module")
def ns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespace]:
    missing = _missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"the Ray cluster tests must run here (CI / LEFTQA_REQUIRE_RAY) but {missing}")
        pytest.skip(missing)
    space = Namespace(tmp_path_factory.mktemp("ray-ns"))
    yield space
    space.close()


@pytest.fixture(scope="module")
def cluster(ns: Namespace) -> Cluster:
    c = Cluster(ns)
    c.add_worker()
    c.wait_for_nodes(2)
    return c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hand-made txt and md files, the real corpus article, and a downloaded page with its source sidecar."""
    root = tmp_path_factory.mktemp("ray-corpus") / "corpus"
    write_files(root, {"harbour-history.txt": HARBOUR_TXT, "weavers-guild.md": GUILD_MD, "web/dockers.html": PAGE_HTML,
                       "web/dockers.html.source.json": json.dumps({"url": "https://example.org/dockers"})})  # fmt: skip
    shutil.copy(REAL_CORPUS / "anti-stalinist-left.txt", root / "anti-stalinist-left.txt")
    return root


@pytest.fixture(scope="module")
def local(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The same corpus built locally with the bundled model: what every Ray build must equal."""
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path_factory.mktemp("local") / "index")
    build_index(settings)
    return settings


def leftqa(ns: Namespace, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return ns.run([str(BIN / "leftqa"), *args], timeout=timeout)


def rankings(settings: Settings) -> list[list[str]]:
    assistant = Assistant.load(settings.with_(scorer="none"))  # passage rankings; the answer scorer plays no part
    return [[h.passage_id for h in assistant.search(q, mode, 10)] for q in QUERIES for mode in ("hybrid", "bm25", "dense")]


def assert_equal_to_local(index_dir: Path, local: Settings) -> dict:
    """Same passages (ids, text, offsets), same BM25 terms, vectors within 1e-5, same rankings; the Ray manifest."""
    a, b = index_dir, Path(local.index_dir)
    assert (a / "passages.jsonl").read_bytes() == (b / "passages.jsonl").read_bytes()
    assert (a / "terms.json").read_bytes() == (b / "terms.json").read_bytes()
    for name in ("passage_vectors.npy", "sentence_vectors.npy"):
        va, vb = np.load(a / name), np.load(b / name)
        assert va.shape == vb.shape and va.shape[0] > 0
        assert float(np.abs(va - vb).max()) <= 1e-5, name
    ma, mb = (json.loads((d / "manifest.json").read_text("utf-8")) for d in (a, b))
    for key in ("documents", "skipped", "passages", "sentences", "model", "embedder", "backend", "corpus_fingerprint", "pipeline"):
        assert ma[key] == mb[key], key
    assert mb["build"] == {"engine": "local"}
    assert rankings(local.with_(index_dir=a)) == rankings(local)
    return ma


@pytest.mark.ray
def test_ray_build_equals_a_local_build_and_add_reads_only_the_new_file(cluster: Cluster, local: Settings, corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    out = leftqa(cluster.ns, "index", "--corpus", str(corpus), "--index", str(index), "--ray", cluster.address, "--ray-batch-tokens", "512")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "4 documents: 4 added, 0 changed, 0 removed, 0 unchanged; 32 passages embedded"
    assert "ray: 4/4 documents read" in out.stderr and "texts embedded" in out.stderr
    manifest = assert_equal_to_local(index, local)
    build = manifest["build"]
    assert (build["engine"], build["address"], build["nodes"], build["workers"], build["devices"]) == ("ray", cluster.address, 2, 2, ["cpu"])
    assert build["retried"] == 0 and build["batches"] > 2
    passages = [json.loads(line) for line in (index / "passages.jsonl").read_text("utf-8").splitlines()]
    assert {p["source"] for p in passages if p["doc_id"] == "web/dockers.html"} == {"https://example.org/dockers"}

    # `leftqa add --ray`: only the new file is read on the cluster and only its texts are embedded.
    new = tmp_path / "mill.txt"
    new.write_text("The Mill Fire\n\nIn 1811 a fire destroyed the old mill by the river. The weavers who worked there "
                   "lost their looms and their wages for a whole season, and the guild paid each family a small sum.\n", "utf-8")  # fmt: skip
    added = leftqa(cluster.ns, "add", str(new), "--corpus", str(corpus), "--index", str(index), "--ray", cluster.address)
    assert added.returncode == 0, added.stderr
    assert "5 documents: 1 added, 0 changed, 0 removed, 4 unchanged; 1 passages embedded" in added.stdout
    assert "ray: 1/1 documents read" in added.stderr
    try:
        build_index(local)  # the local reference, incremental as well
        assert_equal_to_local(index, local)
    finally:
        (corpus / "mill.txt").unlink()
        build_index(local)


@pytest.mark.ray
def test_worker_node_killed_mid_build_its_batches_are_retried_and_the_index_equals_a_local_build(
    cluster: Cluster, local: Settings, corpus: Path, tmp_path: Path
) -> None:
    cluster.ensure_worker()
    index = tmp_path / "index"
    out = cluster.ns.run([sys.executable, str(REPO_ROOT / "tests" / "index" / "ray_fault_build.py"), "--address", cluster.address,
                          "--corpus", str(corpus), "--index", str(index), "--kill-pgid", str(cluster.worker)])  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["killed_after"] > 0
    stats = result["stats"]
    assert stats["nodes"] == 2 and stats["retried"] >= 1 and stats["replaced"] >= 1, (stats, out.stderr)
    assert "died" in out.stderr and "sent again" in out.stderr
    manifest = assert_equal_to_local(index, local)
    assert manifest["build"]["retried"] == stats["retried"]


@pytest.mark.ray
def test_dead_address_is_one_line_and_leaves_the_index_untouched(ns: Namespace, local: Settings, corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(local.index_dir, index)
    before = {p.name: p.read_bytes() for p in index.iterdir() if p.is_file()}
    (corpus / "extra.txt").write_text("A new file, so that the build has something to read and embed on the cluster.\n", "utf-8")
    try:
        out = leftqa(ns, "index", "--corpus", str(corpus), "--index", str(index), "--ray", "127.0.0.1:6399")
    finally:
        (corpus / "extra.txt").unlink()
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "leftqa: error: cannot reach the Ray cluster at 127.0.0.1:6399 (Connection refused); check the address or start "
        "the cluster (`ray start --head`); the index was not changed"
    ]
    assert {p.name: p.read_bytes() for p in index.iterdir() if p.is_file()} == before


# A terminal's Ctrl-C reaches a process whose SIGINT is at its default; a process started in the background by a
# shell without job control (`cmd &`, as a CI runner may start the suite) inherits SIGINT ignored, and Python then
# never raises KeyboardInterrupt. The build is started with SIGINT reset to the default, as from a terminal.
AS_FROM_A_TERMINAL = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"


@pytest.mark.ray
def test_ctrl_c_cancels_the_cluster_work_and_keeps_the_index(cluster: Cluster, local: Settings, corpus: Path, tmp_path: Path) -> None:
    cluster.ensure_worker()
    index = tmp_path / "index"
    shutil.copytree(local.index_dir, index)
    before = {p.name: p.read_bytes() for p in index.iterdir() if p.is_file()}
    pid_file = tmp_path / "leftqa.pid"
    err = tmp_path / "stderr.txt"
    cmd = f"echo $$ > {pid_file}; exec {sys.executable} -c '{AS_FROM_A_TERMINAL}' {BIN / 'leftqa'} index --full --corpus {corpus} --index {index} --ray {cluster.address} --ray-batch-tokens 128"
    with err.open("w") as stderr:
        proc = cluster.ns.popen(["sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 120
        while "embedding" not in err.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert "embedding" in err.read_text(), err.read_text()
        pid = pid_file.read_text().strip()
        # How the build's process treats signals as it is interrupted: shown if it does not stop.
        dispositions = cluster.ns.run(["grep", "-E", "^Sig(Blk|Ign|Cgt)", f"/proc/{pid}/status"]).stdout
        cluster.ns.run(["kill", "-INT", pid])
        code = proc.wait(timeout=60)
    assert code == 130, dispositions + err.read_text()
    assert err.read_text().splitlines()[-1] == "leftqa: interrupted"
    assert {p.name: p.read_bytes() for p in index.iterdir() if p.is_file()} == before
    # The actors are killed (their processes end within seconds) and every CPU of the cluster is free again.
    deadline = time.monotonic() + 30
    while cluster.ns.run(["pgrep", "-f", "ray::_Worker"]).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert cluster.ns.run(["pgrep", "-f", "ray::_Worker"]).returncode == 1
    code = f"import ray; ray.init(address={cluster.address!r}, logging_level='ERROR'); print(ray.available_resources().get('CPU'))"
    assert cluster.ns.python(code).stdout.strip().splitlines()[-1] == "2.0"


@pytest.mark.ray
def test_cluster_lost_mid_build_is_one_line_and_leaves_the_index_untouched(ns: Namespace, local: Settings, corpus: Path, tmp_path: Path) -> None:
    lone = Cluster(ns, port=PORT + 1)  # a head of its own, killed by this test
    index = tmp_path / "index"
    shutil.copytree(local.index_dir, index)
    before = {p.name: p.read_bytes() for p in index.iterdir() if p.is_file()}
    out = ns.run([sys.executable, str(REPO_ROOT / "tests" / "index" / "ray_fault_build.py"), "--address", lone.address, "--corpus", str(corpus),
                  "--index", str(index), "--kill-pgid", str(lone.head)], timeout=240)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.strip(), out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["killed_after"] > 0
    assert "\n" not in result["error"] and "the index was not changed" in result["error"], result["error"]
    assert {p.name: p.read_bytes() for p in index.iterdir() if p.is_file()} == before
