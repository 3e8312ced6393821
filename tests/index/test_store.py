"""The on-disk index: build, save/load round trip, manifest checks, atomic writes and crash recovery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FAKE_MODEL, GUILD_MD, TINY_PASSAGES, build_fake_index

from leftqa import __version__
from leftqa.config import Settings
from leftqa.errors import CorpusError, IndexCorruptError, IndexMismatchError, IndexMissingError
from leftqa.index.builder import build_index, stale_reason
from leftqa.index.embed import load_embedder
from leftqa.index.store import FORMAT, FORMAT_VERSION, MANIFEST, Chunking, Index, IndexManifest, read_manifest, recover, swap_in
from leftqa.ingest.chunking import chunk_documents
from leftqa.ingest.corpus import read_corpus
from leftqa.qa.assistant import Assistant


def passages_on_disk(index_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (index_dir / "passages.jsonl").read_text("utf-8").splitlines()]


def leftovers(index_dir: Path) -> list[str]:
    """Temporary or old folders left beside an index folder (the build lock file may stay by design)."""
    return sorted(p.name for p in index_dir.parent.iterdir() if p.name.startswith(f".{index_dir.name}.") and p.is_dir())


def test_build_report_and_manifest(fake_settings: Settings) -> None:
    report = build_fake_index(fake_settings)
    assert (report.documents, report.passages, report.warnings) == (2, TINY_PASSAGES, ())
    assert report.sentences == sum(len(p.sentences) for p in Index.load(fake_settings.index_dir).passages)

    manifest = read_manifest(fake_settings.index_dir)
    assert manifest.format == FORMAT and manifest.format_version == FORMAT_VERSION
    assert manifest.leftqa_version == __version__
    assert (manifest.model, manifest.embedder, manifest.dimension) == (FAKE_MODEL, FAKE_MODEL, 64)
    assert manifest.chunking == Chunking(min_words=40, max_words=150)
    assert manifest.passages == TINY_PASSAGES and manifest.sentences == report.sentences
    assert [d.doc_id for d in manifest.documents] == ["harbour-history.txt", "weavers-guild.md"]
    assert manifest.corpus_fingerprint is not None and len(manifest.corpus_fingerprint) == 32
    assert manifest.files is not None
    assert {"passages.jsonl", "passage_vectors.npy", "sentence_vectors.npy", "dense.faiss", "terms.json"} <= set(manifest.files)
    for name, meta in manifest.files.items():
        assert (fake_settings.index_dir / name).stat().st_size == meta.bytes
        assert len(meta.sha256) == 64 and meta.edge_sha256 is None


def test_round_trip_and_no_pickle(fake_index: Settings) -> None:
    path = fake_index.index_dir
    index = Index.load(path)
    assert index.size == TINY_PASSAGES
    docs, _ = read_corpus(fake_index.corpus_dir)
    assert index.passages == chunk_documents(docs)  # frozen records survive JSONL exactly
    assert index.passage_vectors.shape == (TINY_PASSAGES, 64) and index.passage_vectors.dtype == np.float32
    assert index.sentence_vectors.shape == (int(index.sentence_starts[-1]), 64)
    assert index.dense.ntotal == TINY_PASSAGES
    # Vectors are unit length and match a fresh encoding of the same texts (the fake embedder is deterministic).
    fresh = load_embedder(FAKE_MODEL).encode([p.text for p in index.passages])
    np.testing.assert_allclose(np.asarray(index.passage_vectors), fresh, rtol=0, atol=1e-6)
    for npy in path.rglob("*.npy"):
        np.load(npy, allow_pickle=False)  # raises if the file needed pickle
    assert not [p for p in path.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]


def test_same_corpus_same_ids_across_builds(fake_settings: Settings, tmp_path: Path) -> None:
    build_fake_index(fake_settings)
    again = fake_settings.with_(index_dir=tmp_path / "again")
    build_fake_index(again)
    first, second = passages_on_disk(fake_settings.index_dir), passages_on_disk(again.index_dir)
    assert [p["id"] for p in first] == [p["id"] for p in second]
    assert first == second


def test_editing_one_document_keeps_other_documents_ids(fake_settings: Settings) -> None:
    build_fake_index(fake_settings)
    before = passages_on_disk(fake_settings.index_dir)
    (fake_settings.corpus_dir / "weavers-guild.md").write_text(GUILD_MD.replace("nine weeks", "ten weeks"), encoding="utf-8")
    build_fake_index(fake_settings)
    after = passages_on_disk(fake_settings.index_dir)
    ids = lambda rows, doc: [p["id"] for p in rows if p["doc_id"] == doc]  # noqa: E731
    assert ids(after, "harbour-history.txt") == ids(before, "harbour-history.txt")
    assert ids(after, "weavers-guild.md") != ids(before, "weavers-guild.md")
    assert len(set(ids(after, "weavers-guild.md")) - set(ids(before, "weavers-guild.md"))) == 1


# --- mismatch and missing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "hash:32"}, "built with model 'hash:64' but 'hash:32' is configured"),
        ({"min_words": 30}, "built with chunking"),
        ({"max_words": 120}, "built with chunking"),
    ],
)
def test_loading_with_other_settings_is_a_mismatch(fake_index: Settings, changes: dict, message: str) -> None:
    with pytest.raises(IndexMismatchError, match=message) as exc:
        Assistant.load(fake_index.with_(**changes))
    assert "run `leftqa index` to rebuild it" in str(exc.value)


def test_changed_corpus_is_stale_not_a_mismatch(fake_index: Settings) -> None:
    size = Assistant.load(fake_index).index.size
    (fake_index.corpus_dir / "extra.txt").write_text("Extra\n\nA new document about nothing.\n", encoding="utf-8")
    assert Assistant.load(fake_index).index.size == size  # still answers, from the index as built
    assert stale_reason(fake_index) == "corpus changed"


def test_format_version_change_is_a_mismatch(fake_index: Settings) -> None:
    mpath = fake_index.index_dir / MANIFEST
    manifest = json.loads(mpath.read_text("utf-8"))
    mpath.write_text(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match=f"index format version {FORMAT_VERSION + 1} is not the supported {FORMAT_VERSION}; run `leftqa index`"):
        Index.load(fake_index.index_dir)


def test_stale_reason(fake_settings: Settings) -> None:
    assert stale_reason(fake_settings).startswith("no index at")
    build_fake_index(fake_settings)
    assert stale_reason(fake_settings) == ""
    assert stale_reason(fake_settings.with_(model="hash:32")) == "model changed"
    assert stale_reason(fake_settings.with_(max_words=100)) == "chunking settings changed"


@pytest.mark.parametrize("make", ["nothing", "empty folder", "not a manifest"])
def test_missing_index(tmp_path: Path, make: str) -> None:
    path = tmp_path / "index"
    if make != "nothing":
        path.mkdir()
    if make == "not a manifest":
        (path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(IndexMissingError, match=f"no index at {path}; run `leftqa index` to build it"):
        Index.load(path)


def test_truncated_file_is_corrupt(fake_index: Settings) -> None:
    f = fake_index.index_dir / "passages.jsonl"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(IndexCorruptError, match="passages.jsonl .* truncated or altered"):
        Index.load(fake_index.index_dir)


def test_unreadable_manifest_is_corrupt(fake_index: Settings) -> None:
    (fake_index.index_dir / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="unreadable"):
        Index.load(fake_index.index_dir)


def test_manifest_round_trips_to_the_same_json(make_corpus, tmp_path: Path) -> None:  # noqa: ANN001
    corpus = make_corpus({"a.txt": "A\n\n" + GUILD_MD, "b.md": GUILD_MD, "bad.pdf": b"not a pdf"})
    build_fake_index(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL))
    text = (tmp_path / "index" / MANIFEST).read_text("utf-8")
    manifest = read_manifest(tmp_path / "index")
    assert [s.doc_id for s in manifest.skipped or ()] == ["bad.pdf"] and manifest.build == {"engine": "local"}
    assert json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n" == text  # same keys, order and values


def test_unknown_keys_are_kept_and_absent_ones_stay_absent(fake_index: Settings) -> None:
    mpath = fake_index.index_dir / MANIFEST
    data = json.loads(mpath.read_text("utf-8"))
    for key in ("pipeline", "corpus_dir", "skipped", "build"):
        del data[key]
    data["documents"][0]["language"] = "en"
    data["chunking"]["overlap"] = 2
    data["later"] = {"x": [1]}
    manifest = IndexManifest.from_dict(data)
    assert (manifest.pipeline, manifest.corpus_dir, manifest.skipped, manifest.build) == (None, None, None, None)
    assert manifest.extra == {"later": {"x": [1]}} and manifest.documents[0].extra == {"language": "en"}
    assert manifest.chunking.to_dict() == {"min_words": 40, "max_words": 150, "overlap": 2}
    assert manifest.to_dict() == data


def test_a_new_manifest_leaves_unset_keys_out() -> None:
    manifest = IndexManifest(model="m", embedder="m", chunking=Chunking(40, 150))
    assert list(manifest.to_dict()) == ["model", "embedder", "chunking", "documents", "format", "format_version", "dimension", "passages", "sentences"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("model"), "model is missing"),
        (lambda m: m.update(embedder=7), "embedder should be a string, not 7"),
        (lambda m: m.update(chunking=[40, 150]), r"chunking should be an object, not \[40, 150\]"),
        (lambda m: m["chunking"].update(max_words="150"), 'chunking.max_words should be an integer, not "150"'),
        (lambda m: m.update(documents={}), "documents should be a list, not {}"),
        (lambda m: m["documents"].append("x.txt"), 'documents\\[2\\] should be an object, not "x.txt"'),
        (lambda m: m["documents"][1].pop("doc_id"), r"documents\[1\].doc_id is missing"),
        (lambda m: m["documents"][0].update(passages=True), r"documents\[0\].passages should be an integer, not true"),
        (lambda m: m.update(skipped=[{"doc_id": None}]), r"skipped\[0\].doc_id should be a string, not null"),
        (lambda m: m.update(dense_params={"M": "32"}), 'dense_params.M should be an integer, not "32"'),
        (lambda m: m.update(build="local"), 'build should be an object, not "local"'),
        (lambda m: m["files"]["terms.json"].pop("sha256"), r"files\['terms.json'\].sha256 is missing"),
        (lambda m: m["files"]["terms.json"].update(bytes=1.5), r"files\['terms.json'\].bytes should be an integer, not 1.5"),
        (lambda m: m.update(corpus_dir=None), "corpus_dir should be a string, not null"),
    ],
)
def test_read_manifest_rejects_malformed_fields(fake_index: Settings, change, message: str) -> None:  # noqa: ANN001
    mpath = fake_index.index_dir / MANIFEST
    data = json.loads(mpath.read_text("utf-8"))
    change(data)
    mpath.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match=f"^index manifest {mpath} is malformed: {message}; run `leftqa index` to rebuild it$"):
        read_manifest(fake_index.index_dir)
    with pytest.raises(IndexCorruptError, match="is malformed"):
        Index.load(fake_index.index_dir)


@pytest.mark.parametrize(
    "files",
    [{}, {"bad.txt": b"\xff\xfe\xfa not utf-8 \xff"}],
    ids=["empty corpus", "only unreadable files"],
)
def test_empty_corpus_builds_nothing(make_corpus, tmp_path: Path, files: dict) -> None:  # noqa: ANN001
    settings = Settings(corpus_dir=make_corpus(files), index_dir=tmp_path / "index", model=FAKE_MODEL)
    with pytest.raises(CorpusError, match="no readable documents in"):
        build_index(settings, load_embedder(FAKE_MODEL))
    assert not settings.index_dir.exists()
    assert leftovers(settings.index_dir) == []


# --- atomic writes and recovery ------------------------------------------------------------------------------------


def test_failed_save_keeps_previous_index_and_leaves_no_temp_folder(fake_index: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    path = fake_index.index_dir
    before = passages_on_disk(path)
    (fake_index.corpus_dir / "weavers-guild.md").write_text(GUILD_MD.replace("twelve", "eleven"), encoding="utf-8")

    def broken_write_index(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", broken_write_index)
    with pytest.raises(OSError, match="No space left"):
        build_fake_index(fake_index)
    monkeypatch.undo()

    assert leftovers(path) == []
    index = Index.load(path)  # the previous index, intact (checksums verified)
    assert [p.to_dict()["id"] for p in index.passages] == [p["id"] for p in before]
    assert stale_reason(fake_index) == "corpus changed"


def test_interrupted_save_keeps_previous_index(fake_index: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import leftqa.index.store as index_module

    before = passages_on_disk(fake_index.index_dir)
    (fake_index.corpus_dir / "weavers-guild.md").write_text(GUILD_MD.replace("twelve", "eleven"), encoding="utf-8")

    def interrupted(folder: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module, "_fsync_tree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_fake_index(fake_index)
    assert leftovers(fake_index.index_dir) == []
    assert passages_on_disk(fake_index.index_dir) == before


def test_successful_rebuild_swaps_and_cleans_up(fake_index: Settings) -> None:
    (fake_index.corpus_dir / "weavers-guild.md").write_text(GUILD_MD.replace("twelve", "eleven"), encoding="utf-8")
    build_fake_index(fake_index)
    assert leftovers(fake_index.index_dir) == []
    assert stale_reason(fake_index) == ""
    assert any("eleven master weavers" in p.text for p in Index.load(fake_index.index_dir).passages)


def test_recover_after_crash_between_the_two_renames(fake_index: Settings) -> None:
    path = fake_index.index_dir
    before = passages_on_disk(path)
    # swap_in renames the live index aside, then renames the new one in; a crash in between leaves only the old.
    os.rename(path, path.parent / f".{path.name}.old-12345")
    assert not path.exists()
    index = Index.load(path)  # load() calls recover()
    assert [p.id for p in index.passages] == [p["id"] for p in before]
    assert path.is_dir() and leftovers(path) == []


def test_recover_is_a_no_op_when_the_index_exists_or_nothing_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "index"
    recover(path)
    assert not path.exists()
    (tmp_path / ".index.old-1").mkdir()  # no manifest: not an index, never restored
    recover(path)
    assert not path.exists()


def test_swap_in_replaces_the_folder(tmp_path: Path) -> None:
    live, new = tmp_path / "index", tmp_path / ".index.tmp-1"
    live.mkdir()
    (live / "old.txt").write_text("old", encoding="utf-8")
    new.mkdir()
    (new / "new.txt").write_text("new", encoding="utf-8")
    swap_in(new, live)
    assert sorted(p.name for p in live.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_swap_replaces_the_live_index_and_leaves_nothing_behind(tmp_path: Path) -> None:
    from leftqa.index.store import _exchange, swap_in

    new, live = tmp_path / ".index.tmp-1", tmp_path / "index"
    new.mkdir()
    live.mkdir()
    (new / "manifest.json").write_text("new", encoding="utf-8")
    (live / "manifest.json").write_text("old", encoding="utf-8")
    assert not _exchange(tmp_path / "missing-a", tmp_path / "missing-b")  # nothing to exchange: refused, not raised
    swap_in(new, live)
    assert (live / "manifest.json").read_text("utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no old copy left aside, no temp folder
