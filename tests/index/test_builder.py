"""Incremental rebuilds: reuse of unchanged vectors, the report line, identity with a full build, the lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FAKE_MODEL, GUILD_MD, HARBOUR_TXT

from leftqa.app import cli
from leftqa.config import Settings
from leftqa.errors import CorpusError, IndexLockedError, ModelError
from leftqa.index.builder import BuildReport, build_index, build_lock, lock_path
from leftqa.index.embed import HashEmbedder
from leftqa.index.store import Index
from leftqa.qa.assistant import Assistant

MILL_TXT = """\
The Mill at Carrow


The mill at Carrow ground corn for the valley for two hundred years. The miller paid rent to the abbey until the abbey lands were sold, and after that to a family of merchants from the county town. The wheel turned on water from a leat that the villagers kept clear every spring.

Fire and rebuilding

A fire destroyed the wooden mill in 1811. The new building was made of stone and had three pairs of millstones, a drying kiln and a loft for sacks. It worked until 1952, when the last miller retired and the machinery was sold for scrap to a dealer from the coast.
"""

QUERIES = ["Who led the Harbour Committee?", "When did the journeymen strike?", "stone breakwater", "apprentice masterpiece", "fire destroyed the mill"]


class CountingEmbedder(HashEmbedder):
    """The fake embedder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__(64)
        self.seen: list[str] = []

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        self.seen.extend(texts)
        return super().encode(texts, batch_size, progress)


def write(corpus: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (corpus / name).write_text(text, encoding="utf-8")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(corpus, {"harbour-history.txt": HARBOUR_TXT, "weavers-guild.md": GUILD_MD, "mill.txt": MILL_TXT})
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL)


def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading any model fail, to prove a build did not need one."""

    def refuse(model: str, threads: int = 0):  # noqa: ANN202
        raise ModelError("the model must not be loaded")

    monkeypatch.setattr("leftqa.index.embed.load_embedder", refuse)


def passages_text(index_dir: Path) -> str:
    return (index_dir / "passages.jsonl").read_text("utf-8")


def test_summary_line_has_the_documented_form() -> None:
    report = BuildReport(documents=5, passages=9, sentences=30, embedded=4, seconds=1.0, warnings=(), path="index", added=1, changed=2, removed=3, unchanged=2, embedded_sentences=7)
    assert report.summary() == "5 documents: 1 added, 2 changed, 3 removed, 2 unchanged; 4 passages embedded"
    assert report.details() == "9 passages, 30 sentences (7 sentences embedded) in 1.0s -> index"


def test_first_build_embeds_everything_once(settings: Settings) -> None:
    embedder = CountingEmbedder()
    report = build_index(settings, embedder)
    index = Index.load(settings.index_dir)
    texts = {p.text for p in index.passages} | {s.text for p in index.passages for s in p.sentences}
    assert sorted(embedder.seen) == sorted(texts)  # each distinct text once, even when a passage is one sentence
    assert report.summary() == f"3 documents: 3 added, 0 changed, 0 removed, 0 unchanged; {index.size} passages embedded"
    assert report.embedded + report.embedded_sentences == len(texts)
    assert report.rebuilt


def test_no_change_rebuild_loads_no_model_and_keeps_the_index(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(settings)
    before = (settings.index_dir / "manifest.json").read_bytes()
    no_model(monkeypatch)
    report = build_index(settings)
    assert report.summary() == "3 documents: 0 added, 0 changed, 0 removed, 3 unchanged; 0 passages embedded"
    assert not report.rebuilt and report.embedded_sentences == 0
    assert (settings.index_dir / "manifest.json").read_bytes() == before


def test_add_change_remove_and_unchanged(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(settings)
    old = Index.load(settings.index_dir)
    corpus = Path(settings.corpus_dir)
    (corpus / "mill.txt").unlink()
    edited = GUILD_MD.replace("nine weeks", "eleven weeks")
    write(corpus, {"weavers-guild.md": edited, "mill-copy.txt": MILL_TXT.replace("Carrow", "Dunmore")})
    embedder = CountingEmbedder()
    report = build_index(settings, embedder)
    new = Index.load(settings.index_dir)

    new_passage_texts = {p.text for p in new.passages} - {p.text for p in old.passages}
    assert report.summary() == f"3 documents: 1 added, 1 changed, 1 removed, 1 unchanged; {len(new_passage_texts)} passages embedded"
    # Only the edited paragraph of the guild and the new document were embedded, nothing of the harbour.
    assert len([p for p in new.passages if p.doc_id == "weavers-guild.md" and p.text in new_passage_texts]) == 1
    known = {p.text for p in old.passages} | {s.text for p in old.passages for s in p.sentences}
    fresh = new_passage_texts | {s.text for p in new.passages for s in p.sentences if p.text in new_passage_texts}
    assert sorted(embedder.seen) == sorted(fresh - known)
    assert {p.doc_id for p in new.passages} == {"harbour-history.txt", "weavers-guild.md", "mill-copy.txt"}
    assert not any("Carrow" in p.text for p in new.passages)  # the removed file left nothing behind
    assert [d.doc_id for d in new.manifest.documents] == ["harbour-history.txt", "mill-copy.txt", "weavers-guild.md"]


def test_changing_back_reuses_vectors(settings: Settings) -> None:
    build_index(settings)
    corpus = Path(settings.corpus_dir)
    (corpus / "mill.txt").write_text(MILL_TXT.replace("1811", "1812"), encoding="utf-8")
    assert build_index(settings).embedded == 1
    (corpus / "mill.txt").write_text(MILL_TXT, encoding="utf-8")
    report = build_index(settings)
    # The vectors of the 1811 paragraph are gone from the index, so it is embedded again; nothing else is.
    assert report.summary() == "3 documents: 0 added, 1 changed, 0 removed, 2 unchanged; 1 passages embedded"


def test_same_text_different_bytes_is_unchanged(settings: Settings) -> None:
    build_index(settings)
    (Path(settings.corpus_dir) / "page.html").write_text("<html><body><p>" + "Some page text about mills and weirs. " * 8 + "</p></body></html>", encoding="utf-8")
    build_index(settings)
    (Path(settings.corpus_dir) / "page.html").write_text("<html><body><script>x=1</script><p>" + "Some page text about mills and weirs. " * 8 + "</p></body></html>", encoding="utf-8")
    report = build_index(settings)
    assert report.summary() == "4 documents: 0 added, 0 changed, 0 removed, 4 unchanged; 0 passages embedded"
    assert report.rebuilt  # the file was read again; its extracted text turned out the same


def rankings(settings: Settings) -> list[list[tuple[str, float]]]:
    assistant = Assistant.load(settings)
    out = []
    for q in QUERIES:
        for mode in ("hybrid", "bm25", "dense"):
            out.append([(h.passage_id, round(h.score, 6)) for h in assistant.search(q, mode, 10)])
    return out


def test_incremental_build_is_identical_to_a_full_build(settings: Settings, tmp_path: Path) -> None:
    build_index(settings)
    corpus = Path(settings.corpus_dir)
    (corpus / "mill.txt").unlink()
    write(corpus, {"weavers-guild.md": GUILD_MD.replace("nine weeks", "eleven weeks"), "mill-2.txt": MILL_TXT.replace("1811", "1799")})
    build_index(settings)
    full = settings.with_(index_dir=tmp_path / "full-index")
    build_index(full, full=True)

    a, b = Path(settings.index_dir), Path(full.index_dir)
    assert passages_text(a) == passages_text(b)
    for name in ("passage_vectors.npy", "sentence_vectors.npy", "terms.json", "dense.faiss"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / "manifest.json").read_text("utf-8")) for d in (a, b))
    for key in ("documents", "corpus_fingerprint", "passages", "sentences", "skipped"):
        assert ma[key] == mb[key], key
    assert rankings(settings) == rankings(full)


def test_full_rebuild_embeds_everything(settings: Settings) -> None:
    first = build_index(settings)
    report = build_index(settings, full=True)
    assert report.summary() == f"3 documents: 0 added, 0 changed, 0 removed, 3 unchanged; {first.passages} passages embedded"
    assert (report.embedded, report.embedded_sentences) == (first.embedded, first.embedded_sentences)


def test_other_model_embeds_everything_again(settings: Settings) -> None:
    first = build_index(settings)
    report = build_index(settings.with_(model="hash:32"))
    assert report.embedded == first.passages
    assert any("model changed" in n for n in report.notes)
    assert Index.load(settings.index_dir).passage_vectors.shape[1] == 32


def test_chunking_change_rechunks_but_reuses_sentence_vectors(settings: Settings) -> None:
    first = build_index(settings)
    report = build_index(settings.with_(min_words=10, max_words=30))
    assert report.passages > first.passages
    assert report.embedded_sentences < report.sentences  # sentences are the same texts; their vectors are reused


def test_index_from_an_older_builder_is_reread_without_reembedding(settings: Settings) -> None:
    build_index(settings)
    mpath = Path(settings.index_dir) / "manifest.json"
    manifest = json.loads(mpath.read_text("utf-8"))
    manifest.pop("pipeline")
    for d in manifest["documents"]:
        d.pop("sha256")
    mpath.write_text(json.dumps(manifest), encoding="utf-8")
    report = build_index(settings)
    assert report.summary() == "3 documents: 0 added, 0 changed, 0 removed, 3 unchanged; 0 passages embedded"
    assert report.rebuilt


def test_user_files_in_the_index_folder_survive_a_rebuild(settings: Settings) -> None:
    build_index(settings)
    (Path(settings.index_dir) / "calibration.json").write_text('{"threshold": 0.5}', encoding="utf-8")
    (Path(settings.corpus_dir) / "mill.txt").unlink()
    build_index(settings)
    assert (Path(settings.index_dir) / "calibration.json").read_text("utf-8") == '{"threshold": 0.5}'


def test_leftovers_of_killed_builds_are_removed(settings: Settings) -> None:
    build_index(settings)
    parent = Path(settings.index_dir).parent
    for name in (".index.tmp-999999", ".index.old-999998"):
        (parent / name).mkdir()
        (parent / name / "passages.jsonl").write_text("half written", encoding="utf-8")
    (Path(settings.corpus_dir) / "mill.txt").unlink()
    report = build_index(settings)
    assert sorted(report.notes) == ["removed .index.old-999998, left by an interrupted build", "removed .index.tmp-999999, left by an interrupted build"]
    assert sorted(p.name for p in parent.iterdir()) == [".leftqa-index.lock", "corpus", "index"]


def test_corrupt_previous_index_is_rebuilt_from_scratch(settings: Settings) -> None:
    first = build_index(settings)
    vectors = Path(settings.index_dir) / "passage_vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-16])
    report = build_index(settings)
    assert report.embedded == first.passages
    assert any("previous index unusable" in n and "rebuild" in n for n in report.notes)
    Index.load(settings.index_dir)


def test_corpus_of_only_unreadable_files_keeps_the_old_index(settings: Settings) -> None:
    build_index(settings)
    before = passages_text(Path(settings.index_dir))
    for f in Path(settings.corpus_dir).iterdir():
        f.write_bytes(b"\x00\x01binary")
    with pytest.raises(CorpusError, match=r"no readable documents .* \(3 files skipped\)"):
        build_index(settings)
    assert passages_text(Path(settings.index_dir)) == before


def test_a_second_build_fails_fast_while_one_holds_the_lock(settings: Settings) -> None:
    with build_lock(Path(settings.index_dir)):
        with pytest.raises(IndexLockedError, match=r"another build of .* is running \(pid \d+\); wait for it to finish"):
            build_index(settings)
    build_index(settings)  # released


def test_lock_held_by_another_process(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code = (
        "import sys, time; from pathlib import Path; from leftqa.index.builder import build_lock\n"
        "with build_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(settings.index_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        rc = cli.main(["index", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", FAKE_MODEL, "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1
        assert err == [f"leftqa: error: another build of {settings.index_dir} is running (pid {holder.pid}); wait for it to finish, then run again"]
        assert not Path(settings.index_dir).exists()
    finally:
        holder.kill()
        holder.wait()
    assert lock_path(Path(settings.index_dir)).exists()
    assert cli.main(["index", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", FAKE_MODEL, "-q"]) == 0


def test_cli_index_prints_report_and_warnings(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    (Path(settings.corpus_dir) / "empty.txt").write_text("", encoding="utf-8")
    args = ["index", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", FAKE_MODEL, "-q"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("3 documents: 3 added, 0 changed, 0 removed, 0 unchanged; ")
    assert err.splitlines() == ["warning: empty.txt: empty file, skipped"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "3 documents: 0 added, 0 changed, 0 removed, 3 unchanged; 0 passages embedded"
    assert "up to date" in out.splitlines()[1]
    assert err.splitlines() == ["warning: empty.txt: empty file, skipped"]


def test_running_assistant_keeps_answering_during_a_rebuild_then_reloads(settings: Settings) -> None:
    build_index(settings)
    assistant = Assistant.load(settings)
    old_vectors = assistant.index.passage_vectors
    before = assistant.search("fire destroyed the wooden mill", k=1)[0]
    assert before.doc_id == "mill.txt"

    (Path(settings.corpus_dir) / "mill.txt").unlink()
    write(Path(settings.corpus_dir), {"lighthouse.txt": MILL_TXT.replace("mill", "lighthouse").replace("Mill", "Lighthouse")})
    build_index(settings)  # swaps the folder the assistant's vectors are memory-mapped from

    again = assistant.search("fire destroyed the wooden mill", k=1)[0]
    assert (again.passage_id, again.score) == (before.passage_id, before.score)
    assert float(np.abs(np.asarray(old_vectors)).sum()) > 0  # the mapped pages are still readable
    assistant.ask("When did the fire destroy the mill?")

    assistant.reload()
    assert {p.doc_id for p in assistant.index.passages} == {"harbour-history.txt", "weavers-guild.md", "lighthouse.txt"}
    assert assistant.search("fire destroyed the wooden lighthouse", k=1)[0].doc_id == "lighthouse.txt"


def test_vectors_are_reused_only_from_fully_verified_files(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Loading checks large files only at their edges; shrink "large" so a small index has such files.
    monkeypatch.setattr("leftqa.index.store.FULL_HASH_LIMIT", 0)
    monkeypatch.setattr("leftqa.index.store.EDGE", 256)
    first = build_index(settings)
    vectors = Path(settings.index_dir) / "passage_vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a damaged middle that the edge check cannot see
    vectors.write_bytes(bytes(data))
    Index.load(settings.index_dir)  # loads: the damage is invisible to the quick check
    (Path(settings.corpus_dir) / "mill.txt").write_text(MILL_TXT.replace("1811", "1812"), encoding="utf-8")
    report = build_index(settings)
    assert any(n.startswith("previous index unusable, building from scratch: index file passage_vectors.npy") for n in report.notes)
    assert report.embedded == first.passages  # nothing was copied from the damaged file
    fresh = settings.with_(index_dir=Path(settings.index_dir).parent / "fresh")
    build_index(fresh, full=True)
    assert vectors.read_bytes() == (Path(fresh.index_dir) / "passage_vectors.npy").read_bytes()


@pytest.mark.e2e
def test_incremental_build_matches_a_full_build_with_the_real_model(tmp_path: Path, bundled_embedder, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from conftest import REAL_CORPUS

    import leftqa.qa.assistant as chat

    monkeypatch.setattr(chat, "load_embedder", lambda model, threads=0: bundled_embedder)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write(corpus, {"seed.txt": (REAL_CORPUS / "anti-stalinist-left.txt").read_text("utf-8"), "harbour-history.txt": HARBOUR_TXT, "weavers-guild.md": GUILD_MD})
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=bundled_embedder.name)
    build_index(settings, bundled_embedder)
    (corpus / "harbour-history.txt").unlink()
    write(corpus, {"weavers-guild.md": GUILD_MD.replace("nine weeks", "eleven weeks"), "mill.txt": MILL_TXT})
    report = build_index(settings, bundled_embedder)
    assert report.summary().startswith("3 documents: 1 added, 1 changed, 1 removed, 1 unchanged; ")
    full = settings.with_(index_dir=tmp_path / "full")
    build_index(full, bundled_embedder, full=True)

    a, b = Index.load(settings.index_dir), Index.load(full.index_dir)
    assert passages_text(Path(settings.index_dir)) == passages_text(Path(full.index_dir))
    # Batches differ (only new texts vs everything), so floats may differ in the last bits, never more.
    np.testing.assert_allclose(a.passage_vectors, b.passage_vectors, atol=1e-5)
    np.testing.assert_allclose(a.sentence_vectors, b.sentence_vectors, atol=1e-5)
    queries = ["During which years did Stalin run the Soviet Union?", "Who led the strike of the journeymen?", "When did fire destroy the mill?", "Trotsky Left Opposition"]
    ia, ib = Assistant.load(settings), Assistant.load(full)
    for q in queries:
        for mode in ("hybrid", "bm25", "dense"):
            ha, hb = ia.search(q, mode, 10), ib.search(q, mode, 10)
            assert [h.passage_id for h in ha] == [h.passage_id for h in hb], (q, mode)
            assert [h.score for h in ha] == pytest.approx([h.score for h in hb], abs=1e-4)


def test_failed_write_is_a_clear_error_and_keeps_the_old_index(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    build_index(settings)
    before = passages_text(Path(settings.index_dir))
    (Path(settings.corpus_dir) / "mill.txt").unlink()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("leftqa.index.store.np.save", disk_full)
    rc = cli.main(["index", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", FAKE_MODEL, "-q"])
    err = capsys.readouterr().err.splitlines()
    assert rc == 1
    assert err == [f"leftqa: error: cannot write the index to {settings.index_dir} (No space left on device); the previous index is unchanged"]
    assert passages_text(Path(settings.index_dir)) == before
    assert not list(Path(settings.index_dir).parent.glob(".index.tmp-*"))
