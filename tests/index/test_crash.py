"""Crash safety: builds killed at any moment leave the previous index loadable and correct; corruption is detected."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FAKE_MODEL, GUILD_MD, HARBOUR_TXT, REAL_CORPUS

from leftqa.app import cli
from leftqa.config import Settings
from leftqa.errors import IndexCorruptError, IndexLockedError, IndexMissingError
from leftqa.index.builder import build_index, lock_path
from leftqa.index.store import Index, read_manifest
from leftqa.qa.assistant import Assistant

INDEX_FILES = [
    "bm25/data.csc.index.npy",
    "bm25/indices.csc.index.npy",
    "bm25/indptr.csc.index.npy",
    "bm25/params.index.json",
    "bm25/vocab.index.json",
    "dense.faiss",
    "passage_offsets.npy",
    "passage_vectors.npy",
    "passages.jsonl",
    "sentence_starts.npy",
    "sentence_vectors.npy",
    "terms.json",
]


def variants(text: str, n: int, tag: str) -> dict[str, str]:
    """n documents that differ in every paragraph (so no vector can be reused between them)."""
    return {f"{tag}-{i:03d}.txt": "\n".join(f"{line} Copy {tag} {i} of the record." if len(line) > 80 else line for line in text.splitlines()) for i in range(n)}


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LEFTQA_")}


def index_cmd(corpus: Path, index: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "leftqa.app.cli", "index", "--corpus", str(corpus), "--index", str(index), *extra]


def doc_ids(index_dir: Path) -> list[str]:
    return [d.doc_id for d in Index.load(index_dir).manifest.documents]


@pytest.fixture
def v1(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "harbour-history.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    (corpus / "weavers-guild.md").write_text(GUILD_MD, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL)
    build_index(settings)
    return settings


# ---------------------------------------------------------------- corruption


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("pristine")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "harbour-history.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", model=FAKE_MODEL)
    build_index(settings)
    return settings


def test_every_index_file_is_checksummed(pristine: Settings) -> None:
    index_dir = Path(pristine.index_dir)
    on_disk = sorted(p.relative_to(index_dir).as_posix() for p in index_dir.rglob("*") if p.is_file())
    listed = sorted(read_manifest(index_dir).files or {})
    assert on_disk == sorted([*listed, "manifest.json"])
    assert set(INDEX_FILES) <= set(listed)  # the files the damage tests below cover


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "altered":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])  # same size, one bit flipped
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["truncated", "altered", "deleted"])
@pytest.mark.parametrize("name", INDEX_FILES)
def test_damaged_file_is_detected_with_rebuild_advice(pristine: Settings, tmp_path: Path, name: str, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    index_dir = Path(shutil.copytree(pristine.index_dir, tmp_path / "index"))
    corrupt(index_dir / name, how)
    with pytest.raises(IndexCorruptError) as info:
        Index.load(index_dir)
    message = str(info.value)
    assert name in message and message.endswith("run `leftqa index` to rebuild it")
    assert ("missing" if how == "deleted" else "truncated or altered (checksum mismatch)") in message

    rc = cli.main(["search", "breakwater", "--index", str(index_dir), "--corpus", str(pristine.corpus_dir), "--model", FAKE_MODEL])
    out, err = capsys.readouterr()
    assert (rc, out, err.splitlines()) == (1, "", [f"leftqa: error: {message}"])

    # `leftqa index` repairs it: the damaged index cannot be trusted for reuse, so everything is embedded again.
    rc = cli.main(["index", "--index", str(index_dir), "--corpus", str(pristine.corpus_dir), "--model", FAKE_MODEL, "-q"])
    out, err = capsys.readouterr()
    size = Index.load(pristine.index_dir).size
    assert rc == 0 and out.startswith(f"1 documents: 0 added, 0 changed, 0 removed, 1 unchanged; {size} passages embedded")
    assert err.startswith("note: previous index unusable, building from scratch: ")
    assert Index.load(index_dir).size == size


@pytest.mark.parametrize(("content", "error"), [("{not json", IndexCorruptError), ('{"format": "other"}', IndexCorruptError), (None, IndexMissingError)])
def test_damaged_manifest(pristine: Settings, tmp_path: Path, content: str | None, error: type) -> None:
    index_dir = Path(shutil.copytree(pristine.index_dir, tmp_path / "index"))
    if content is None:
        (index_dir / "manifest.json").unlink()
    else:
        (index_dir / "manifest.json").write_text(content, encoding="utf-8")
    with pytest.raises(error, match=r"run `leftqa index` to (re)?build it"):
        Index.load(index_dir)
    settings = pristine.with_(index_dir=index_dir)
    assert build_index(settings).documents == 1
    Index.load(index_dir)


def test_tampered_checksum_in_manifest_is_detected(pristine: Settings, tmp_path: Path) -> None:
    index_dir = Path(shutil.copytree(pristine.index_dir, tmp_path / "index"))
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    manifest["files"]["passages.jsonl"]["sha256"] = "0" * 64
    (index_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match=r"passages.jsonl .* \(checksum mismatch\)"):
        Index.load(index_dir)


# ---------------------------------------------------------------- killed builds


def assert_old_or_new(settings: Settings, old: list[str], new: list[str]) -> list[str]:
    """The index loads (checksums verified), is exactly one of the two versions, and answers from it."""
    ids = doc_ids(Path(settings.index_dir))
    assert ids in (old, new)
    assistant = Assistant.load(settings)
    top = assistant.search("Who led the Harbour Committee?", k=1)[0]
    assert top.doc_id in ids and "Marta Quell" in top.text
    if ids == new:
        assert assistant.search("Copy harbour 3 of the record", k=1, mode="bm25")[0].doc_id == "harbour-003.txt"
    return ids


def test_build_killed_at_many_moments_keeps_a_loadable_index(v1: Settings, tmp_path: Path) -> None:
    old = doc_ids(v1.index_dir)
    backup = Path(shutil.copytree(v1.index_dir, tmp_path / "backup"))
    corpus = Path(v1.corpus_dir)
    for name, text in variants(HARBOUR_TXT, 8, "harbour").items():
        (corpus / name).write_text(text, encoding="utf-8")
    cmd = index_cmd(corpus, Path(v1.index_dir), "--model", FAKE_MODEL, "-q")

    # One full run into a scratch copy measures how long a build takes here.
    scratch = tmp_path / "measure" / "index"
    t0 = time.monotonic()
    subprocess.run(index_cmd(corpus, scratch, "--model", FAKE_MODEL, "-q"), env=child_env(), check=True, capture_output=True)
    duration = time.monotonic() - t0
    new = doc_ids(scratch)

    seen = set()
    for fraction in (0.25, 0.6, 0.85, 0.97):
        proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ids = assert_old_or_new(v1, old, new)
        seen.add("new" if ids == new else "old")
        if ids == new:  # the build won the race: put the old index back for the next try
            shutil.rmtree(v1.index_dir)
            shutil.copytree(backup, v1.index_dir)
    assert "old" in seen

    report = build_index(v1)  # the next build cleans up whatever the killed ones left and completes
    assert doc_ids(Path(v1.index_dir)) == new
    assert sorted(p.name for p in Path(v1.index_dir).parent.iterdir() if p.name.startswith(".")) == [".leftqa-index.lock"]  # no temp folders
    assert report.summary().startswith("10 documents: 8 added, 0 changed, 0 removed, 2 unchanged")


def test_build_killed_while_writing_leaves_a_temp_folder_the_next_build_removes(v1: Settings) -> None:
    old = doc_ids(v1.index_dir)
    corpus = Path(v1.corpus_dir)
    for name, text in variants(GUILD_MD, 4, "guild").items():
        (corpus / name).write_text(text, encoding="utf-8")
    parent = Path(v1.index_dir).parent
    caught = None
    for _attempt in range(5):
        proc = subprocess.Popen(index_cmd(corpus, Path(v1.index_dir), "--model", FAKE_MODEL, "-q"), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            temps = list(parent.glob(".index.tmp-*"))
            if temps:
                proc.send_signal(signal.SIGKILL)
                caught = temps[0].name
                break
            time.sleep(0.0005)
        proc.wait()
        if caught:
            break
        shutil.rmtree(v1.index_dir)  # the build finished before we saw its temp folder: start again from v1
        build_index(v1.with_(corpus_dir=_v1_only(corpus, parent)))
    assert caught, "never caught a build in the middle of writing its temp folder"
    assert (parent / caught).exists() and doc_ids(Path(v1.index_dir)) == old
    assistant = Assistant.load(v1)
    assert assistant.search("Who led the Harbour Committee?", k=1)[0].doc_id == "harbour-history.txt"

    report = build_index(v1)
    assert f"removed {caught}, left by an interrupted build" in report.notes
    assert not (parent / caught).exists()
    assert len(doc_ids(Path(v1.index_dir))) == 6


def _v1_only(corpus: Path, parent: Path) -> Path:
    only = parent / "v1-corpus"
    if not only.exists():
        only.mkdir()
        for name in ("harbour-history.txt", "weavers-guild.md"):
            shutil.copy(corpus / name, only / name)
    return only


def test_concurrent_build_is_refused_while_another_process_builds(v1: Settings) -> None:
    corpus = Path(v1.corpus_dir)
    for name, text in variants(HARBOUR_TXT, 8, "harbour").items():
        (corpus / name).write_text(text, encoding="utf-8")
    proc = subprocess.Popen(index_cmd(corpus, Path(v1.index_dir), "--model", FAKE_MODEL, "-q"), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = lock_path(Path(v1.index_dir))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and lock.read_text().strip() != str(proc.pid):
            time.sleep(0.002)
        with pytest.raises(IndexLockedError, match=rf"\(pid {proc.pid}\)"):
            build_index(v1)
    finally:
        assert proc.wait(timeout=120) == 0
    assert len(doc_ids(Path(v1.index_dir))) == 10


@pytest.mark.e2e
def test_real_build_killed_mid_embedding_keeps_the_previous_index(real_index_settings: Settings, bundled_embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    corpus = Path(shutil.copytree(real_index_settings.corpus_dir, tmp_path / "corpus"))
    index_dir = Path(shutil.copytree(real_index_settings.index_dir, tmp_path / "index"))
    old = doc_ids(index_dir)
    seed = (REAL_CORPUS / "anti-stalinist-left.txt").read_text("utf-8")
    for name, text in variants(seed, 8, "copy").items():
        (corpus / name).write_text(text, encoding="utf-8")

    proc = subprocess.Popen(index_cmd(corpus, index_dir), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        line = ""
        while not line.startswith("embedding "):
            line = lines.get(timeout=120)
        assert line.strip().endswith("new texts with bundled:all-MiniLM-L6-v2")
        time.sleep(0.2)
        assert proc.poll() is None, "the build finished embedding too fast to be killed in the middle"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()

    assert doc_ids(index_dir) == old
    import leftqa.qa.assistant as chat

    monkeypatch.setattr(chat, "load_embedder", lambda model, threads=0: bundled_embedder)
    assistant = Assistant.load(real_index_settings.with_(corpus_dir=corpus, index_dir=index_dir))
    hits = assistant.search("During which years did Stalin run the Soviet Union?", k=3)
    assert any("leader of the Soviet Union between 1924 and 1953" in h.text for h in hits)
    answer = assistant.ask("During which years did Stalin run the Soviet Union?")
    assert not answer.abstained and answer.citations
    texts = {p.id: p.text for p in assistant.index.passages}
    assert all(c.doc_id == "anti-stalinist-left.txt" and c.quote.split(" … ")[0] in texts[c.passage_id] for c in answer.citations)
