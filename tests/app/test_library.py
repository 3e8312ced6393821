"""The Library without a server: safe uploads, removal, the serialised rebuild, stale indexes, the recorded corpus,
the bind/auth rule, first-run messages, and feedback turned into eval cases (hand-made corpora, `hash:64`)."""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import FAKE_MODEL, GUILD_MD, HARBOUR_TXT

from leftqa.app.cli import main
from leftqa.app.library import DocumentRow, Library, Placed, Skipped
from leftqa.config import Settings
from leftqa.errors import ConfigError, CorpusError, FeedbackError, SourceError
from leftqa.index.builder import recorded_corpus, stale_warning
from leftqa.index.store import Index
from leftqa.ingest.corpus import sidecar_path
from leftqa.ingest.sources import MAX_UNPACKED_BYTES, check_unpacked_size, place_upload, remove_source, safe_file_name
from leftqa.qa.assistant import Assistant

MILL_TXT = """\
The Mill at Orrin


The paper mill at Orrin was built beside the river by the brothers Tobias and Elke Marran in 1811. Water wheels drove the beaters that turned linen rags into pulp, and the mill made writing paper for the county courts and the schools for almost a hundred years before steam engines replaced the wheels.
"""
MILL_QUESTION = "Who built the paper mill at Orrin?"


def upload(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """A file as an upload arrives: somewhere outside the corpus (Gradio's temporary folder)."""
    folder = tmp_path / "uploads"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def corpus_files(corpus: Path) -> list[str]:
    return sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file())


# --- upload names and limits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("notes.txt", "notes.txt"),
        ("../../evil.txt", "evil.txt"),
        ("/etc/cron.d/evil.md", "evil.md"),
        ("..\\..\\windows\\evil.html", "evil.html"),
        (".hidden.txt", "hidden.txt"),
        ("a\x00b\nc.txt", "abc.txt"),
        ("Über <b>|x|.md", "Über -b-x-.md"),
    ],
)
def test_upload_names_keep_to_the_corpus_folder(name: str, safe: str) -> None:
    assert safe_file_name(name) == safe


@pytest.mark.parametrize("name", ["", "..", "../", ".", "/", "a/..", " . "])
def test_unusable_upload_names_are_refused(name: str) -> None:
    with pytest.raises(SourceError, match="not a usable file name"):
        safe_file_name(name)


def test_a_hostile_upload_name_lands_directly_in_the_corpus(tmp_path: Path, make_corpus) -> None:  # noqa: ANN001
    corpus = make_corpus()
    src = upload(tmp_path, "mill.txt", MILL_TXT)
    added = place_upload(src, "../../../outside/mill.txt", corpus)
    assert (added.dest, added.status) == ("mill.txt", "added")
    assert (corpus / "mill.txt").read_text("utf-8") == MILL_TXT
    assert not (tmp_path / "outside").exists()
    assert corpus_files(corpus) == ["harbour-history.txt", "mill.txt", "weavers-guild.md"]


def test_symlinked_uploads_and_links_in_the_corpus_are_refused(tmp_path: Path, make_corpus) -> None:  # noqa: ANN001
    corpus = make_corpus()
    secret = tmp_path / "secret.txt"
    secret.write_text("Secret\n\nNot for the corpus.\n", encoding="utf-8")
    link = tmp_path / "uploads" / "link.txt"
    link.parent.mkdir()
    link.symlink_to(secret)
    with pytest.raises(SourceError, match="link.txt: not a regular file, not copied"):
        place_upload(link, "link.txt", corpus)
    (corpus / "trap.txt").symlink_to(secret)
    with pytest.raises(SourceError, match="trap.txt exists in the corpus as a link or folder, not overwritten"):
        place_upload(upload(tmp_path, "trap.txt", MILL_TXT), "trap.txt", corpus, replace=True)
    assert secret.read_text("utf-8") == "Secret\n\nNot for the corpus.\n"


def test_upload_limits_are_those_of_leftqa_add(tmp_path: Path, make_corpus) -> None:  # noqa: ANN001
    corpus = make_corpus()
    big = upload(tmp_path, "big.txt", b"")
    os.truncate(big, 20_000_001)  # sparse: over the 20 MB text limit without writing 20 MB
    with pytest.raises(SourceError, match=r"^big.txt: 20 MB is over the 20 MB limit, not copied$"):
        place_upload(big, "big.txt", corpus)
    with pytest.raises(SourceError, match=r"^tool.exe: unsupported file type '.exe'"):
        place_upload(upload(tmp_path, "tool.exe", b"MZ"), "tool.exe", corpus)
    other = upload(tmp_path, "harbour-history.txt", "Other\n\nSomething else entirely.\n")
    with pytest.raises(SourceError, match="harbour-history.txt already exists in the corpus with other content; replace it to overwrite it"):
        place_upload(other, "harbour-history.txt", corpus)
    assert place_upload(other, "harbour-history.txt", corpus, replace=True).status == "replaced"
    assert corpus_files(corpus) == ["harbour-history.txt", "weavers-guild.md"]


def make_bomb(path: Path, megabytes: int) -> Path:
    """A DOCX-named zip whose one part inflates to `megabytes` MB of zeros (a few hundred KB on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w") as part:
            block = b"\0" * (1 << 20)
            for _ in range(megabytes):
                part.write(block)
    return path


def test_a_docx_bomb_is_refused_by_its_unpacked_size(tmp_path: Path, make_corpus) -> None:  # noqa: ANN001
    corpus = make_corpus()
    bomb = make_bomb(tmp_path / "bomb.docx", MAX_UNPACKED_BYTES // (1 << 20) + 1)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(SourceError, match=r"report.docx: the DOCX package unpacks to 301 MB in 2 parts, over the 300 MB limit \(a zip bomb\?\), not copied"):
        place_upload(bomb, "report.docx", corpus)
    assert corpus_files(corpus) == ["harbour-history.txt", "weavers-guild.md"]
    small = make_bomb(tmp_path / "small.docx", 2)
    check_unpacked_size(small, "small.docx")  # under the limit: left for the reader
    with pytest.raises(SourceError, match="unpacks to 2 MB"):
        check_unpacked_size(small, "small.docx", limit=1_000_000)


# --- removing -------------------------------------------------------------------------------------------------------


def test_remove_source_deletes_the_file_and_its_provenance(make_corpus) -> None:  # noqa: ANN001
    corpus = make_corpus({"a.txt": MILL_TXT, "web/page.html": "<main><p>x</p></main>", "b.md": GUILD_MD})
    sidecar_path(corpus / "web/page.html").write_text('{"url": "http://example.org/page"}', encoding="utf-8")
    assert remove_source("web/page.html", corpus) == "web/page.html"
    assert corpus_files(corpus) == ["a.txt", "b.md"]


@pytest.mark.parametrize("doc_id", ["../a.txt", "/etc/passwd", "nope.txt", "", "web\\..\\a.txt", "a.txt.source.json"])
def test_remove_source_takes_only_documents_of_the_corpus(make_corpus, doc_id: str) -> None:  # noqa: ANN001
    corpus = make_corpus({"a.txt": MILL_TXT, "b.md": GUILD_MD})
    with pytest.raises(SourceError, match="not a document of the corpus"):
        remove_source(doc_id, corpus)
    assert corpus_files(corpus) == ["a.txt", "b.md"]


def test_the_last_document_is_kept(make_corpus) -> None:  # noqa: ANN001
    corpus = make_corpus({"a.txt": MILL_TXT})
    with pytest.raises(CorpusError, match="a.txt is the only document in the corpus; add another before removing it"):
        remove_source("a.txt", corpus)
    assert corpus_files(corpus) == ["a.txt"]


# --- the Library on a fake index ------------------------------------------------------------------------------------


def test_add_ask_remove_ask(fake_assistant: Assistant, tmp_path: Path) -> None:
    library = Library(fake_assistant)
    assert [(r.doc_id, r.title, r.format, r.passages) for r in library.documents()] == [
        ("harbour-history.txt", "The Harbour of Fenwick", "txt", 6),
        ("weavers-guild.md", "The Weavers Guild", "md", 7),
    ]
    steps: list[tuple[float, str]] = []
    report = library.add_files([(upload(tmp_path, "mill.txt", MILL_TXT), "mill.txt")], progress=lambda f, m: steps.append((f, m)))
    assert report.ok and report.message == "3 documents: 1 added, 0 changed, 0 removed, 2 unchanged; 1 passages embedded"
    assert report.placed == (Placed("mill.txt", "mill.txt", "added"),)
    assert (report.skipped, report.documents, report.passages) == ((), 3, 14)
    assert steps[0] == (0.05, "copying mill.txt") and steps[-1] == (1.0, "done")
    assert [f for f, _ in steps] == sorted(f for f, _ in steps)
    row = next(r for r in library.documents() if r.doc_id == "mill.txt")
    assert row == DocumentRow("mill.txt", "The Mill at Orrin", "mill.txt", "txt", 1, "", row.added) and row.added.endswith("+00:00")
    hit = fake_assistant.search(MILL_QUESTION, "bm25", 1)[0]
    assert hit.doc_id == "mill.txt"  # the assistant was switched to the new index

    report = library.remove("mill.txt")
    assert report.ok and report.removed == "mill.txt" and report.message.endswith("1 removed, 2 unchanged; 0 passages embedded")
    assert [r.doc_id for r in library.documents()] == ["harbour-history.txt", "weavers-guild.md"]
    assert all(h.doc_id != "mill.txt" for h in fake_assistant.search(MILL_QUESTION, "bm25", 10))


def test_unusable_files_are_skipped_with_reasons_and_not_left_in_the_corpus(fake_assistant: Assistant, tmp_path: Path) -> None:
    library = Library(fake_assistant)
    corpus = Path(fake_assistant.settings.corpus_dir)
    files = [
        (upload(tmp_path, "empty.txt", ""), "empty.txt"),
        (upload(tmp_path, "binary.txt", b"\x00\x01\x02" * 100), "binary.txt"),
        (upload(tmp_path, "tool.exe", b"MZ"), "tool.exe"),
        (upload(tmp_path, "mill.txt", MILL_TXT), "../mill.txt"),
    ]
    report = library.add_files(files)
    assert report.ok and report.placed == (Placed("../mill.txt", "mill.txt", "added"),)
    assert report.skipped == (
        Skipped("empty.txt", "empty file, skipped"),  # the reason does not repeat the name
        Skipped("binary.txt", "looks binary (NUL bytes), skipped"),
        Skipped("tool.exe", "unsupported file type '.exe' (supported: .docx .htm .html .jsonl .markdown .md .pdf .txt)"),
    )
    assert corpus_files(corpus) == ["harbour-history.txt", "mill.txt", "weavers-guild.md"]


def test_nothing_to_do_is_said_and_nothing_rebuilt(fake_assistant: Assistant, tmp_path: Path) -> None:
    library = Library(fake_assistant)
    before = (Path(fake_assistant.settings.index_dir) / "manifest.json").read_bytes()
    none = library.add_files([])  # Add files with nothing chosen: says so, with the library as it is
    assert (none.ok, none.message) == (False, "no files were chosen; choose one or more files, then press Add files")
    assert (none.documents, none.passages) == (2, fake_assistant.index.size)
    same = library.add_files([(upload(tmp_path, "harbour-history.txt", HARBOUR_TXT), "harbour-history.txt")])
    assert (same.ok, same.message, same.build) == (True, "nothing changed: the files are already in the library", None)
    bad = library.add_files([(upload(tmp_path, "x.exe", b"MZ"), "x.exe")])
    assert (bad.ok, bad.message) == (False, "nothing was added")
    gone = library.remove("../weavers-guild.md")
    assert (gone.ok, gone.message, gone.skipped) == (False, "nothing was removed: '../weavers-guild.md': not a document of the corpus", ())
    nothing = library.remove("")
    assert (nothing.ok, nothing.message, nothing.documents) == (False, "no document was chosen; choose one in the list, then press Remove", 2)
    url = library.add_url("file:///etc/passwd")
    assert (url.ok, url.message, url.skipped) == (False, "nothing was added: file:///etc/passwd is not a web address; only http and https pages can be added", ())
    assert (library.add_url("  ").ok, library.add_url("").message) == (False, "enter a web address (http or https) first")
    assert (Path(fake_assistant.settings.index_dir) / "manifest.json").read_bytes() == before


def test_a_one_line_text_file_is_a_document(fake_assistant: Assistant, tmp_path: Path) -> None:
    library = Library(fake_assistant)
    report = library.add_files([(upload(tmp_path, "note.txt", "Orla Brenn rowed.\n"), "note.txt")])  # 18 bytes, one line
    assert report.ok and report.placed == (Placed("note.txt", "note.txt", "added"),) and report.skipped == ()
    assert "Orla Brenn rowed." in fake_assistant.ask("Who rowed?").answer


def test_two_changes_at_once_queue_and_both_land(fake_assistant: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import leftqa.index.builder as builder

    library = Library(fake_assistant)
    real_build = builder.build_index
    entered, release = threading.Event(), threading.Event()
    builds: list[str] = []

    def slow_first_build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        builds.append("start")
        if len(builds) == 1:
            entered.set()
            assert release.wait(60)
        report = real_build(*args, **kwargs)
        builds.append("end")
        return report

    monkeypatch.setattr(builder, "build_index", slow_first_build)
    mill = upload(tmp_path, "mill.txt", MILL_TXT)
    other = upload(tmp_path, "guild-copy.md", GUILD_MD.replace("Hester Vane", "Hester Vale"))
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", library.add_files([(mill, "mill.txt")])))
    first.start()
    assert entered.wait(60)
    waits: list[str] = []
    second = threading.Thread(target=lambda: results.setdefault("second", library.add_files([(other, "guild-copy.md")], progress=lambda f, m: waits.append(m))))
    second.start()
    # While the first build is held, questions are answered from the index loaded before it.
    assert all(h.doc_id != "mill.txt" for h in fake_assistant.search(MILL_QUESTION, "bm25", 10))
    release.set()
    first.join(60)
    second.join(60)
    assert builds == ["start", "end", "start", "end"]  # one after the other, never interleaved
    assert waits[0] == "waiting for the previous library change to finish"
    assert results["first"].ok and results["second"].ok
    assert results["second"].message == "4 documents: 1 added, 0 changed, 0 removed, 3 unchanged; 2 passages embedded"  # only the two changed paragraphs are new text
    index = Index.load(Path(fake_assistant.settings.index_dir))  # every checksum verified
    assert [d.doc_id for d in index.manifest.documents] == ["guild-copy.md", "harbour-history.txt", "mill.txt", "weavers-guild.md"]


def test_a_build_held_elsewhere_is_reported_and_the_chat_keeps_its_index(fake_assistant: Assistant, tmp_path: Path) -> None:
    from leftqa.index.builder import build_lock

    library = Library(fake_assistant)
    with build_lock(Path(fake_assistant.settings.index_dir)):
        report = library.add_files([(upload(tmp_path, "mill.txt", MILL_TXT), "mill.txt")])
    assert not report.ok
    assert report.message.startswith("the index was not updated (the chat keeps the previous one): another build of ")
    assert (report.documents, report.passages) == (2, 13)


# --- stale, not broken; the recorded corpus ------------------------------------------------------------------------


def test_a_changed_corpus_warns_and_still_answers(fake_index: Settings) -> None:
    corpus = Path(fake_index.corpus_dir)
    assert stale_warning(fake_index) == ""
    (corpus / "mill.txt").write_text(MILL_TXT, encoding="utf-8")
    (corpus / "weavers-guild.md").write_text(GUILD_MD.replace("nine weeks", "ten weeks"), encoding="utf-8")
    (corpus / "harbour-history.txt").unlink()
    assert stale_warning(fake_index) == (
        f"the corpus {corpus} changed since the index was built (1 files added, 1 changed, 1 removed); answering from "
        f"the index as built; run `leftqa index --corpus {corpus} --index {fake_index.index_dir}` to update it"
    )
    a = Assistant.load(fake_index).ask("Who led the Harbour Committee?")
    assert "Marta Quell" in a.answer and a.citations[0].doc_id == "harbour-history.txt"


def test_the_manifest_records_the_corpus_folder(fake_index: Settings) -> None:
    manifest = json.loads((Path(fake_index.index_dir) / "manifest.json").read_text("utf-8"))
    assert manifest["corpus_dir"] == str(Path(fake_index.corpus_dir).resolve())
    assert recorded_corpus(Path(fake_index.index_dir)) == Path(fake_index.corpus_dir).resolve()


def test_ask_with_index_from_another_folder_uses_the_recorded_corpus(
    fake_index: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_leftqa_env: None
) -> None:
    monkeypatch.setenv("LEFTQA_SCORER", "none")  # rules only, as for every fake-embedder index (ignored where unknown)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "corpus").mkdir(parents=True)
    (elsewhere / "corpus" / "other.txt").write_text(MILL_TXT, encoding="utf-8")  # another corpus/ in that folder
    monkeypatch.chdir(elsewhere)
    args = ["--index", str(fake_index.index_dir), "--model", FAKE_MODEL, "--json"]
    assert main(["ask", "Who led the Harbour Committee?", *args]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "Marta Quell" in json.loads(out)["answer"]
    # The recorded corpus changed: one warning line, and the answer still comes.
    (Path(fake_index.corpus_dir) / "mill.txt").write_text(MILL_TXT, encoding="utf-8")
    assert main(["ask", "Who led the Harbour Committee?", *args]) == 0
    out, err = capsys.readouterr()
    assert "Marta Quell" in json.loads(out)["answer"]
    assert err.splitlines() == [
        f"warning: the corpus {Path(fake_index.corpus_dir).resolve()} changed since the index was built (1 files added, 0 changed, "
        f"0 removed); answering from the index as built; run `leftqa index --corpus {Path(fake_index.corpus_dir).resolve()} "
        f"--index {fake_index.index_dir}` to update it"
    ]
    # --corpus still says otherwise: this folder's corpus/ differs from the index entirely.
    assert main(["ask", "Who led the Harbour Committee?", *args, "--corpus", "corpus"]) == 0
    out, err = capsys.readouterr()
    assert "(1 files added, 0 changed, 2 removed)" in err and "Marta Quell" in json.loads(out)["answer"]


def test_first_build_says_so(tmp_path: Path, make_corpus, capsys: pytest.CaptureFixture[str], clean_leftqa_env: None) -> None:  # noqa: ANN001
    corpus = make_corpus()
    args = ["--corpus", str(corpus), "--index", str(tmp_path / "idx"), "--model", FAKE_MODEL]
    assert main(["index", "--if-stale", "-q", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"building the index for the first time (about a minute) from {corpus} into {tmp_path / 'idx'} …\n")
    assert "no index at" not in out
    assert main(["index", "--if-stale", "-q", *args]) == 0
    assert capsys.readouterr().out == f"index at {tmp_path / 'idx'} is up to date\n"


# --- serving beyond loopback ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_serve_refuses_other_addresses_without_auth(fake_index: Settings, host: str, capsys: pytest.CaptureFixture[str], clean_leftqa_env: None) -> None:
    code = main(["serve", "--host", host, "--index", str(fake_index.index_dir), "--model", FAKE_MODEL])
    err = capsys.readouterr().err
    assert code == 1 and err == (
        f"leftqa: error: refusing to serve on {host} without a password: the Library can change the corpus; "
        "pass --auth USER:PASSWORD (or set LEFTQA_AUTH), or keep the default --host 127.0.0.1\n"
    )


def test_bind_rule() -> None:
    from leftqa.app.ui import check_bind

    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        check_bind(host, None)
    check_bind("0.0.0.0", ("user", "pw"))
    with pytest.raises(ConfigError, match="refusing to serve on 0.0.0.0 without a password"):
        check_bind("0.0.0.0", None)


@pytest.mark.parametrize("value", ["user", ":pw", "user:", ":"])
def test_malformed_auth_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="auth must be USER:PASSWORD"):
        Settings.from_env({"LEFTQA_AUTH": value})
    assert Settings.from_env({"LEFTQA_AUTH": "ann:se:cret"}).credentials() == ("ann", "se:cret")
    assert "se:cret" not in repr(Settings.from_env({"LEFTQA_AUTH": "ann:se:cret"}))


# --- feedback becomes eval cases ------------------------------------------------------------------------------------


def test_feedback_becomes_candidate_eval_cases(fake_assistant: Assistant, tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_leftqa_env: None) -> None:
    from leftqa.evals.cases import load_cases, relevant_passages
    from leftqa.evals.feedback import Feedback, append_feedback, candidate_cases, read_feedback

    log = tmp_path / "feedback.jsonl"
    good = fake_assistant.ask("Who led the Harbour Committee?")
    follow = fake_assistant.ask("When did the journeymen of Aldmoor stop work?", ["Who led the Harbour Committee?"])
    off = fake_assistant.ask("How do I bake sourdough bread?")
    assert not good.abstained and not follow.abstained and off.abstained
    append_feedback(log, Feedback.build(good, [], "wrong evidence"))
    append_feedback(log, Feedback.build(good, [], "helpful"))  # the latest verdict on a question wins
    append_feedback(log, Feedback.build(follow, ["Who led the Harbour Committee?"], "wrong evidence"))
    append_feedback(log, Feedback.build(off, [], "helpful"))
    items = read_feedback(log)
    assert [i.verdict for i in items] == ["wrong evidence", "helpful", "wrong evidence", "helpful"]
    cases = candidate_cases(items)
    assert [(c["question"], c.get("history"), c["expected"], c.get("answerable", True), "review" in c) for c in cases] == [
        ("Who led the Harbour Committee?", None, list(items[1].evidence), True, False),
        ("When did the journeymen of Aldmoor stop work?", ["Who led the Harbour Committee?"], [], True, True),
        ("How do I bake sourdough bread?", None, [], False, False),
    ]
    assert items[1].evidence and all(e in good.answer for e in items[1].evidence)

    out = tmp_path / "candidates.jsonl"
    assert main(["feedback", "--file", str(log), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[4:6] == [f"4 feedback lines in {log}: 2 candidate cases ready, 1 to review", f"wrote 3 candidate cases to {out}"]
    assert printed[1].endswith("  helpful         Who led the Harbour Committee?")
    with pytest.raises(Exception, match="unknown field\\(s\\) review"):
        load_cases([out])  # refused until reviewed
    reviewed = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    reviewed[1].pop("review")
    reviewed[1]["expected"] = ["In the spring of 1902 the journeymen of Aldmoor stopped work for nine weeks."]
    out.write_text("".join(json.dumps(c) + "\n" for c in reviewed), encoding="utf-8")
    loaded = load_cases([out])
    assert [c.group for c in loaded] == ["single", "followup", "unanswerable"]
    relevant = relevant_passages(loaded, fake_assistant.index.passages)
    assert relevant[loaded[0].id] == frozenset(c.passage_id for c in good.citations)


def test_feedback_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_leftqa_env: None) -> None:
    from leftqa.evals.feedback import read_feedback

    with pytest.raises(FeedbackError, match="no feedback yet"):
        read_feedback(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x", "verdict": "meh"}\n', encoding="utf-8")
    assert main(["feedback", "--file", str(bad)]) == 1
    assert capsys.readouterr().err == f"leftqa: error: {bad}:1: not a feedback line (not a feedback record)\n"


def test_library_report_round_trips() -> None:
    from leftqa.app.library import LibraryReport

    report = LibraryReport("add_sources", True, "m", (Placed("a", "a", "added"),), "", (Skipped("b", "why"),), {"index": "i"}, 2, 3)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["placed"] == [{"source": "a", "dest": "a", "status": "added"}] and data["skipped"] == [{"file": "b", "reason": "why"}]
    assert LibraryReport.from_dict(data) == report


def test_leftqa_add_refuses_a_docx_bomb_too(tmp_path: Path, make_corpus) -> None:  # noqa: ANN001
    from leftqa.ingest.sources import add_sources

    corpus = make_corpus()
    bomb = make_bomb(tmp_path / "bomb.docx", MAX_UNPACKED_BYTES // (1 << 20) + 1)
    result = add_sources([str(bomb)], corpus)
    assert (result.added, result.failed) == ((), 1)
    assert result.warnings == (f"{bomb}: the DOCX package unpacks to 301 MB in 2 parts, over the 300 MB limit (a zip bomb?), not copied",)
    assert corpus_files(corpus) == ["harbour-history.txt", "weavers-guild.md"]
