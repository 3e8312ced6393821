"""`leftqa add`: files, folders and URLs (from a local HTTP server on 127.0.0.1) into the corpus, then indexed."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from conftest import FAKE_MODEL, GUILD_MD, HARBOUR_TXT
from samples import BANNED, KRONSTADT, PAGE_HTML, SHLYAPNIKOV, make_pdf

from leftqa.app import cli
from leftqa.config import Settings
from leftqa.errors import SourceError
from leftqa.index.store import Index
from leftqa.ingest.sources import add_sources, download, url_file_name
from leftqa.qa.assistant import Assistant


class Handler(BaseHTTPRequestHandler):
    """Routes of the test server; every loop is bounded so the server always stops."""

    pdf = b""

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def send(self, status: int, ctype: str, body: bytes, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path
        if path.startswith("/articles/kronstadt"):
            self.send(200, "text/html; charset=utf-8", PAGE_HTML.encode("utf-8"))
        elif path == "/paper.pdf":
            self.send(200, "application/pdf", self.pdf)
        elif path == "/download?id=7":
            self.send(200, "application/octet-stream", self.pdf)
        elif path == "/latin":
            self.send(200, "text/plain; charset=iso-8859-1", "Déjà vu in the café of the Kronstadt sailors.\n".encode("latin-1"))
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/articles/kronstadt.html")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow":
            time.sleep(2)
            self.send(200, "text/html", b"<p>too late</p>")
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(40):  # 8 s at most, far past the client's 1 s deadline
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif path == "/big":
            self.send(200, "text/plain", b"word " * 1000)
        elif path == "/big-unannounced":
            self.send(200, "text/plain", b"word " * 1000, length=False)
            self.close_connection = True
        elif path == "/image.png":
            self.send(200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
        elif path == "/empty":
            self.send(200, "text/html", b"")
        else:
            self.send(404, "text/plain", b"not found")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout tests) breaks the pipe; that is expected, not worth a traceback


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    Handler.pdf = make_pdf(tmp_path_factory.mktemp("pdf") / "paper.pdf", [("Origins", [SHLYAPNIKOV]), ("Suppression", [BANNED])], title="The Workers Opposition").read_bytes()
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "harbour-history.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL)


def run(settings: Settings, *args: str) -> int:
    return cli.main(["add", *args, "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--model", FAKE_MODEL, "-q"])


def test_add_url_downloads_records_source_indexes_and_cites(server: str, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{server}/articles/kronstadt.html"
    assert run(settings, url) == 0
    out, err = capsys.readouterr()
    port = server.rsplit(":", 1)[1]
    rel = f"web/127.0.0.1-{port}-articles-kronstadt.html"
    assert out.splitlines() == [
        f"added: {url} -> {rel}",
        "2 documents: 2 added, 0 changed, 0 removed, 0 unchanged; " + out.splitlines()[1].split("; ")[1],
        out.splitlines()[2],
    ]
    assert err == ""
    saved = Path(settings.corpus_dir) / rel
    assert saved.read_text("utf-8") == PAGE_HTML
    record = json.loads(saved.with_name(saved.name + ".source.json").read_text("utf-8"))
    assert (record["url"], record["final_url"], record["content_type"]) == (url, url, "text/html")

    assistant = Assistant.load(settings)
    hit = assistant.search("Kronstadt rebellion uprising of sailors against the Bolshevik government", k=1)[0]
    assert (hit.doc_id, hit.title) == (rel, "Kronstadt rebellion")
    passage = next(p for p in assistant.index.passages if p.id == hit.passage_id)
    assert passage.source == url and KRONSTADT in passage.text
    answer = assistant.ask("What was the Kronstadt rebellion?")
    assert not answer.abstained
    assert answer.citations[0].doc_id == rel


def test_add_pdf_url_keeps_pages(server: str, settings: Settings) -> None:
    result = add_sources([f"{server}/paper.pdf", f"{server}/download?id=7"], Path(settings.corpus_dir))
    assert result.failed == 1
    port = server.rsplit(":", 1)[1]
    # The second URL says octet-stream and has no suffix: the content is a PDF, but nothing says so.
    assert [a.dest for a in result.added] == [f"web/127.0.0.1-{port}-paper.pdf"]
    assert result.warnings == (f"{server}/download?id=7: unsupported content type 'application/octet-stream' (leftqa reads HTML, PDF, DOCX, text and Markdown)",)
    from leftqa.index.builder import build_index

    build_index(settings)
    pages = {(p.page, p.source) for p in Index.load(settings.index_dir).passages if p.doc_id.endswith(".pdf")}
    assert pages == {(1, f"{server}/paper.pdf"), (2, f"{server}/paper.pdf")}


def test_redirect_and_charset(server: str, tmp_path: Path) -> None:
    added = download(f"{server}/redirect", tmp_path)
    record = json.loads((tmp_path / (added.dest + ".source.json")).read_text("utf-8"))
    assert record["url"] == f"{server}/redirect" and record["final_url"] == f"{server}/articles/kronstadt.html"
    latin = download(f"{server}/latin", tmp_path)
    assert latin.dest.endswith("-latin.txt")
    from leftqa.ingest.corpus import read_document

    doc = read_document(tmp_path / latin.dest, latin.dest)
    assert doc.text.strip() == "Déjà vu in the café of the Kronstadt sailors."


def test_downloading_again_is_unchanged_then_updated(server: str, tmp_path: Path) -> None:
    url = f"{server}/articles/kronstadt.html"
    first = download(url, tmp_path)
    assert download(url, tmp_path).status == "unchanged"
    (tmp_path / first.dest).write_text("<p>an older copy of the page</p>", encoding="utf-8")
    assert download(url, tmp_path).status == "updated"
    (tmp_path / (first.dest + ".source.json")).write_text(json.dumps({"url": "http://elsewhere.example/"}), encoding="utf-8")
    with pytest.raises(SourceError, match="already exists in the corpus from another source; use --replace"):
        download(url, tmp_path)
    assert download(url, tmp_path, replace=True).status == "replaced"


@pytest.mark.parametrize(
    ("path", "kwargs", "message"),
    [
        ("/slow", {"timeout": 0.5}, "download timed out after 0.5s"),
        ("/trickle", {"timeout": 1.0}, "download timed out after 1s"),
        ("/big", {"max_bytes": 1000}, "5,000 bytes is over the 1,000-byte download limit"),
        ("/big-unannounced", {"max_bytes": 1000}, "more than the 1,000-byte download limit, not saved"),
        ("/missing", {}, "the server answered 404"),
        ("/image.png", {}, "unsupported content type 'image/png'"),
        ("/empty", {}, "the server sent an empty page, not saved"),
    ],
)
def test_download_errors_are_clear(server: str, tmp_path: Path, path: str, kwargs: dict, message: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info:
        download(f"{server}{path}", tmp_path, **kwargs)
    assert str(info.value) == f"{server}{path}: {message}" or str(info.value).startswith(f"{server}{path}: {message}")
    assert time.monotonic() - t0 < 5
    assert not (tmp_path / "web").exists() or not any(p.name.endswith(".html") or p.name.endswith(".txt") for p in (tmp_path / "web").iterdir())


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file.txt", "file:///etc/passwd"])
def test_only_http_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(SourceError, match="only http and https URLs can be downloaded"):
        download(url, tmp_path)


def test_refused_connection(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bind, read the number, close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/x.html", tmp_path, timeout=2)


def test_cli_download_failure_is_one_line_and_nonzero(server: str, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(settings, f"{server}/slow", "--timeout", "0.5") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"warning: {server}/slow: download timed out after 0.5s"]
    assert not Path(settings.index_dir).exists()  # nothing was added, so nothing was indexed


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://example.org/wiki/Kronstadt_rebellion", "example.org-wiki-Kronstadt_rebellion.html"),
        ("https://example.org/a/page.html", "example.org-a-page.html"),
        ("http://127.0.0.1:8000/", "127.0.0.1-8000.html"),
        ("http://example.org/../../etc/passwd", "example.org-etc-passwd.html"),
        ("http://example.org/.hidden/..", "example.org-.hidden.html"),
        ("http://example.org/search?q=1", "example.org-search-" + __import__("hashlib").sha256(b"q=1").hexdigest()[:8] + ".html"),
    ],
)
def test_url_file_names_are_safe(url: str, name: str) -> None:
    got = url_file_name(url, ".html")
    assert got == name
    assert "/" not in got and not got.startswith(".") and ".." not in got.replace("...", "")


def test_add_files_and_folders(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "mine"
    (src / "chapter" / ".git").mkdir(parents=True)
    (src / "guild.md").write_text(GUILD_MD, encoding="utf-8")
    (src / "chapter" / "one.txt").write_text(HARBOUR_TXT.replace("Fenwick", "Ostby"), encoding="utf-8")
    (src / "chapter" / "picture.png").write_bytes(b"\x89PNG")
    (src / "chapter" / ".git" / "HEAD.txt").write_text("ignored", encoding="utf-8")
    single = tmp_path / "notes.md"
    single.write_text("# Notes\n\nThe harbour committee met every Tuesday in the town hall.\n", encoding="utf-8")

    assert run(settings, str(src), str(single)) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[:3] == [f"added: {src / 'guild.md'} -> mine/guild.md", f"added: {src / 'chapter' / 'one.txt'} -> mine/chapter/one.txt", f"added: {single} -> notes.md"]
    assert out.splitlines()[3].startswith("4 documents: 4 added, 0 changed, 0 removed, 0 unchanged; ")
    assert err.splitlines() == [f"warning: {src}: 1 files of other types not copied"]
    assert {p.doc_id for p in Index.load(settings.index_dir).passages} == {"harbour-history.txt", "mine/chapter/one.txt", "mine/guild.md", "notes.md"}

    assert run(settings, str(single)) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[:2] == [f"unchanged: {single} -> notes.md", "4 documents: 0 added, 0 changed, 0 removed, 4 unchanged; 0 passages embedded"]

    single.write_text("# Notes\n\nThe committee now meets on Thursdays.\n", encoding="utf-8")
    assert run(settings, str(single)) == 1
    _, err = capsys.readouterr()
    assert err.splitlines() == [f"warning: {single}: notes.md already exists in the corpus with other content; use --replace to overwrite it"]
    assert run(settings, str(single), "--replace") == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[:2] == [f"replaced: {single} -> notes.md", "4 documents: 0 added, 1 changed, 0 removed, 3 unchanged; 1 passages embedded"]


def test_add_rejects_unknown_and_missing_paths_but_adds_the_rest(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data.csv").write_text("a,b\n", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("A short note about the breakwater and the harbour committee.\n", encoding="utf-8")
    rc = run(settings, str(tmp_path / "data.csv"), str(tmp_path / "nope.txt"), str(tmp_path / "ok.txt"))
    out, err = capsys.readouterr()
    assert rc == 1
    assert out.splitlines()[0] == f"added: {tmp_path / 'ok.txt'} -> ok.txt"
    assert err.splitlines() == [
        f"warning: {tmp_path / 'data.csv'}: unsupported file type '.csv' (supported: .docx .htm .html .jsonl .markdown .md .pdf .txt)",
        f"warning: {tmp_path / 'nope.txt'}: no such file or folder",
    ]
    assert Index.load(settings.index_dir).manifest.documents[1].doc_id == "ok.txt"


def test_adding_a_file_already_in_the_corpus_just_indexes(settings: Settings) -> None:
    inside = Path(settings.corpus_dir) / "harbour-history.txt"
    result = add_sources([str(inside)], Path(settings.corpus_dir))
    assert [(a.dest, a.status) for a in result.added] == [("harbour-history.txt", "already in corpus")]
    assert run(settings, str(inside)) == 0
    assert Index.load(settings.index_dir).size > 0


def test_add_creates_a_missing_corpus_folder(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("A note about the harbour committee and its breakwater plans.\n", encoding="utf-8")
    settings = Settings(corpus_dir=tmp_path / "new-corpus", index_dir=tmp_path / "idx", model=FAKE_MODEL)
    assert run(settings, str(note)) == 0
    assert (tmp_path / "new-corpus" / "note.txt").exists() and Index.load(tmp_path / "idx").size == 1


def test_adding_a_folder_that_contains_the_corpus_does_not_copy_the_corpus_into_itself(tmp_path: Path) -> None:
    project = tmp_path / "project"
    corpus = project / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "old.txt").write_text("Already in the corpus.\n", encoding="utf-8")
    (project / "notes.md").write_text("# Notes\n\nA note beside the corpus.\n", encoding="utf-8")
    result = add_sources([str(project)], corpus)
    assert [(a.dest, a.status) for a in result.added] == [("project/notes.md", "added")]
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()) == ["old.txt", "project/notes.md"]
