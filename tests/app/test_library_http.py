"""The Library over HTTP: a real server on 127.0.0.1 with its own copy of the real corpus and index and the bundled
model, driven by gradio_client (and raw HTTP where a client would refuse to send something hostile)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import HARBOUR_TXT, REAL_CORPUS, free_port, served
from test_library import MILL_TXT, make_bomb

pytestmark = pytest.mark.e2e

HARBOUR_Q = "Who led the Harbour Committee?"
MILL_Q = "Who built the paper mill at Orrin?"
ANTWERP = "Who led the Antwerp Group?"
ORIGINAL = ["anti-stalinist-left.txt"]
PAGE = """<!doctype html><html><head><title>The Lantern Society</title></head><body><main>
<h1>The Lantern Society</h1>
<p>The Lantern Society of Brask was founded in 1874 by the glassblower Ilse Varro, who wanted the narrow streets of the old
town lit every night of the winter. Its members carried oil lanterns from the harbour to the cathedral square and kept
a ledger of every street they lit, every storm they walked through and every lantern that broke on the cobbles.</p>
</main></body></html>"""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, real_index_settings, bundled_embedder) -> Iterator[tuple[str, Any]]:  # noqa: ANN001
    """(url, assistant) of the real app over a private copy of corpus/ and its index (built with the bundled model)."""
    import leftqa.qa.assistant as chat
    from leftqa.index.builder import build_index

    root = tmp_path_factory.mktemp("library-http")
    corpus = Path(shutil.copytree(REAL_CORPUS, root / "corpus"))
    settings = real_index_settings.with_(corpus_dir=corpus, index_dir=root / "index", feedback_path=root / "feedback.jsonl")
    build_index(settings, bundled_embedder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chat, "load_embedder", lambda model, threads=0: bundled_embedder)
        assistant = chat.Assistant.load(settings)
    with served(assistant, settings) as url:
        yield url, assistant


@pytest.fixture
def client(library: tuple[str, Any]):  # noqa: ANN201 - gradio_client.Client
    from gradio_client import Client

    return Client(library[0], verbose=False)


def documents(client) -> list[dict]:  # noqa: ANN001
    return client.predict(api_name="/documents")


def doc_ids(client) -> list[str]:  # noqa: ANN001
    return [d["doc_id"] for d in documents(client)]


def add(client, *paths: Path, replace: bool = False) -> dict:  # noqa: ANN001
    from gradio_client import handle_file

    return client.predict([handle_file(str(p)) for p in paths], replace, api_name="/add_sources")


def ask(client, question: str) -> dict:  # noqa: ANN001
    return client.predict(question, [], "hybrid", api_name="/ask")


def write(folder: Path, name: str, content: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def call_raw(url: str, api: str, data: list) -> tuple[str, str]:
    """(event, data) of a raw queued API call: what any HTTP client, not just gradio_client, can send."""
    import httpx

    r = httpx.post(url + f"gradio_api/call/{api}", json={"data": data}, timeout=60)
    r.raise_for_status()
    event_id = r.json()["event_id"]
    with httpx.stream("GET", url + f"gradio_api/call/{api}/{event_id}", timeout=300) as resp:
        lines = [line for line in resp.iter_lines() if line]
    return lines[-2].removeprefix("event: "), lines[-1].removeprefix("data: ")


def test_the_library_endpoints_are_listed_next_to_ask(client) -> None:  # noqa: ANN001
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = {name: [p["parameter_name"] for p in endpoints[name]["parameters"]] for name in ("/documents", "/add_sources", "/add_url", "/remove_source", "/ask")}
    assert params == {
        "/documents": [],
        "/add_sources": ["files", "replace"],
        "/add_url": ["url"],
        "/remove_source": ["doc_id"],
        "/ask": ["question", "history", "mode"],
    }


def test_add_list_ask_remove_ask(client, tmp_path: Path) -> None:  # noqa: ANN001
    from samples import make_pdf

    assert documents(client) == [
        {"doc_id": "anti-stalinist-left.txt", "title": "Anti-Stalinist left", "file": "anti-stalinist-left.txt", "format": "txt",
         "passages": 18, "source": "", "added": documents(client)[0]["added"]},
    ]  # fmt: skip
    assert ask(client, HARBOUR_Q)["abstained"]
    pdf = make_pdf(tmp_path / "orrin-mill.pdf", [("The mill", [MILL_TXT.split("\n\n\n")[1].strip()])], title="The Mill at Orrin")
    report = add(client, write(tmp_path, "harbour.txt", HARBOUR_TXT), pdf)
    assert report["ok"] and report["message"] == "3 documents: 2 added, 0 changed, 0 removed, 1 unchanged; 7 passages embedded"
    assert report["placed"] == [
        {"source": "harbour.txt", "dest": "harbour.txt", "status": "added"},
        {"source": "orrin-mill.pdf", "dest": "orrin-mill.pdf", "status": "added"},
    ]
    assert (report["skipped"], report["documents"], report["passages"]) == ([], 3, 25)
    rows = {d["doc_id"]: d for d in documents(client)}
    assert sorted(rows) == ["anti-stalinist-left.txt", "harbour.txt", "orrin-mill.pdf"]
    assert (rows["orrin-mill.pdf"]["title"], rows["orrin-mill.pdf"]["format"], rows["orrin-mill.pdf"]["passages"]) == ("The Mill at Orrin", "pdf", 1)
    assert (rows["harbour.txt"]["title"], rows["harbour.txt"]["passages"]) == ("The Harbour of Fenwick", 6)

    a = ask(client, HARBOUR_Q)
    assert not a["abstained"] and "Marta Quell" in a["answer"] and a["citations"][0]["doc_id"] == "harbour.txt"
    m = ask(client, MILL_Q)
    assert not m["abstained"] and "Tobias and Elke Marran" in m["answer"] and m["citations"][0]["doc_id"] == "orrin-mill.pdf"
    assert "led by Hermann Knüfken" in ask(client, ANTWERP)["answer"]

    for doc_id in ("harbour.txt", "orrin-mill.pdf"):
        gone = client.predict(doc_id, api_name="/remove_source")
        assert gone["ok"] and gone["removed"] == doc_id
    assert doc_ids(client) == ORIGINAL
    for q in (HARBOUR_Q, MILL_Q):
        after = ask(client, q)
        assert after["abstained"] and all(c["doc_id"] in ORIGINAL for c in after["citations"])
        assert all(p["doc_id"] in ORIGINAL for p in after["passages"])


def test_bad_files_are_skipped_with_reasons(client, tmp_path: Path) -> None:  # noqa: ANN001
    big = write(tmp_path, "big.txt", b"")
    os.truncate(big, 20_000_001)
    files = [
        write(tmp_path, "empty.txt", ""),
        write(tmp_path, "binary.txt", b"\x00\x01\x02" * 100),
        write(tmp_path, "tool.exe", b"MZ\x90\x00"),
        big,
        make_bomb(tmp_path / "bomb.docx", 300),
        write(tmp_path, "broken.pdf", b"%PDF-1.4 this is not really a PDF"),
    ]
    report = add(client, *files)
    assert (report["ok"], report["message"], report["placed"], report["build"]) == (False, "nothing was added", [], None)
    assert [(s["file"], s["reason"]) for s in report["skipped"]] == [
        ("empty.txt", "empty file, skipped"),  # each reason without the name it is listed under
        ("binary.txt", "looks binary (NUL bytes), skipped"),
        ("tool.exe", "unsupported file type '.exe' (supported: .docx .htm .html .jsonl .markdown .md .pdf .txt)"),
        ("big.txt", "20 MB is over the 20 MB limit, not copied"),
        ("bomb.docx", "the DOCX package unpacks to 315 MB in 2 parts, over the 300 MB limit (a zip bomb?), not copied"),
        ("broken.pdf", report["skipped"][5]["reason"]),
    ]
    assert not report["skipped"][5]["reason"].startswith("broken.pdf")
    assert doc_ids(client) == ORIGINAL


def test_hostile_names_and_paths_stay_out_of_the_rest_of_the_disk(library: tuple[str, Any], client) -> None:  # noqa: ANN001
    import httpx

    url, assistant = library
    corpus = Path(assistant.settings.corpus_dir)
    uploaded = httpx.post(
        url + "gradio_api/upload",
        files=[("files", ("../../evil.txt", HARBOUR_TXT.encode())), ("files", (".bashrc.md", MILL_TXT.encode()))],
        timeout=60,
    ).json()
    event, data = call_raw(url, "add_sources", [[{"path": p, "meta": {"_type": "gradio.FileData"}} for p in uploaded], False])
    assert event == "complete"
    placed = json.loads(data)[0]["placed"]
    assert [p["dest"] for p in placed] == ["evil.txt", "bashrc.md"]
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()) == ["anti-stalinist-left.txt", "bashrc.md", "evil.txt"]
    assert not (corpus.parent.parent / "evil.txt").exists()
    # A path the server did not receive as an upload (its own files, the corpus itself) is refused by Gradio.
    for path in ("/etc/passwd", str(corpus / "anti-stalinist-left.txt")):
        assert call_raw(url, "add_sources", [[{"path": path, "meta": {"_type": "gradio.FileData"}}], False])[0] == "error"
    for doc_id in ("../../etc/passwd", "/etc/passwd", str(corpus / "evil.txt")):
        refused = client.predict(doc_id, api_name="/remove_source")
        assert (refused["ok"], refused["message"], refused["skipped"]) == (False, f"nothing was removed: {doc_id!r}: not a document of the corpus", [])
    for doc_id in ("evil.txt", "bashrc.md"):
        assert client.predict(doc_id, api_name="/remove_source")["ok"]
    assert doc_ids(client) == ORIGINAL
    last = client.predict("anti-stalinist-left.txt", api_name="/remove_source")
    assert not last["ok"] and last["message"].endswith("is the only document in the corpus; add another before removing it")


def test_two_uploads_at_once_queue_and_never_corrupt_anything(library: tuple[str, Any], tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    from leftqa.index.store import Index

    url, assistant = library
    one, two = Client(url, verbose=False), Client(url, verbose=False)
    jobs = [
        one.submit([handle_file(str(write(tmp_path / "a", "harbour.txt", HARBOUR_TXT)))], False, api_name="/add_sources"),
        two.submit([handle_file(str(write(tmp_path / "b", "mill.txt", MILL_TXT)))], False, api_name="/add_sources"),
    ]
    reports = [job.result(timeout=600) for job in jobs]
    assert all(r["ok"] for r in reports)
    assert sorted(r["message"].split(":")[0] for r in reports) == ["2 documents", "3 documents"]  # one after the other
    index = Index.load(Path(assistant.settings.index_dir))  # every file's checksum verified
    assert sorted(d.doc_id for d in index.manifest.documents) == ["anti-stalinist-left.txt", "harbour.txt", "mill.txt"]
    assert "Marta Quell" in ask(one, HARBOUR_Q)["answer"] and "Marran" in ask(two, MILL_Q)["answer"]
    for doc_id in ("harbour.txt", "mill.txt"):
        assert one.predict(doc_id, api_name="/remove_source")["ok"]
    assert doc_ids(one) == ORIGINAL


def test_questions_asked_during_a_rebuild_are_answered_from_the_old_index(
    library: tuple[str, Any], client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    from gradio_client import handle_file

    import leftqa.index.builder as builder

    real_build = builder.build_index
    entered, release = threading.Event(), threading.Event()

    def held_build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        entered.set()
        assert release.wait(300)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(builder, "build_index", held_build)
    job = client.submit([handle_file(str(write(tmp_path, "harbour.txt", HARBOUR_TXT)))], False, api_name="/add_sources")
    assert entered.wait(300)
    try:
        meanwhile = ask(client, HARBOUR_Q)
        assert meanwhile["abstained"] and "led by Hermann Knüfken" in ask(client, ANTWERP)["answer"]
        assert doc_ids(client) == ORIGINAL
    finally:
        release.set()
    assert job.result(timeout=600)["ok"]
    assert "Marta Quell" in ask(client, HARBOUR_Q)["answer"]
    assert client.predict("harbour.txt", api_name="/remove_source")["ok"]


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = PAGE.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def test_a_web_address_is_added_with_its_source(client) -> None:  # noqa: ANN001
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = f"http://127.0.0.1:{server.server_address[1]}/societies/lantern.html"
        report = client.predict(page, api_name="/add_url")
    finally:
        server.shutdown()
        server.server_close()
    doc_id = f"web/127.0.0.1-{page.split(':')[2].split('/')[0]}-societies-lantern.html"
    assert report["ok"] and report["placed"] == [{"source": page, "dest": doc_id, "status": "added"}]
    row = next(d for d in documents(client) if d["doc_id"] == doc_id)
    assert (row["title"], row["file"], row["format"], row["source"]) == ("The Lantern Society", doc_id.split("/")[1], "html", page)
    a = ask(client, "Who founded the Lantern Society of Brask?")
    assert "Ilse Varro" in a["answer"] and a["citations"][0]["source"] == page
    assert client.predict(doc_id, api_name="/remove_source")["ok"]
    assert doc_ids(client) == ORIGINAL
    refused = client.predict("ftp://example.org/x.html", api_name="/add_url")
    assert not refused["ok"] and "only http and https pages can be added" in refused["message"]
    refused = client.predict("http://127.0.0.1:1/x.html", api_name="/add_url")
    assert not refused["ok"] and refused["skipped"][0]["reason"].startswith("cannot connect")


# --- auth ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def guarded(fake_assistant, fake_index) -> Iterator[str]:  # noqa: ANN001
    with served(fake_assistant, fake_index, auth=("ann", "s3cret")) as url:
        yield url


def test_with_auth_nothing_is_answered_without_the_password(guarded: str) -> None:
    import httpx
    from gradio_client import Client

    assert httpx.post(guarded + "gradio_api/call/ask", json={"data": [HARBOUR_Q, [], "hybrid"]}, timeout=30).status_code == 401
    assert httpx.post(guarded + "gradio_api/call/documents", json={"data": []}, timeout=30).status_code == 401
    assert httpx.post(guarded + "gradio_api/upload", files={"files": ("x.txt", b"x")}, timeout=30).status_code == 401
    assert "Marta Quell" not in httpx.get(guarded + "config", timeout=30).text
    from gradio_client.exceptions import AuthenticationError

    with pytest.raises(AuthenticationError, match="as credentials were not provided"):  # not even the app's config
        Client(guarded, verbose=False)
    with pytest.raises(ValueError, match="Could not login to"):
        Client(guarded, auth=("ann", "wrong"), verbose=False)
    client = Client(guarded, auth=("ann", "s3cret"), verbose=False)
    assert "Marta Quell" in ask(client, HARBOUR_Q)["answer"]
    assert [d["doc_id"] for d in client.predict(api_name="/documents")] == ["harbour-history.txt", "weavers-guild.md"]


def test_launch_refuses_other_addresses_without_auth(fake_assistant, fake_index) -> None:  # noqa: ANN001
    from leftqa.app.ui import build_app, launch
    from leftqa.errors import ConfigError

    app = build_app(fake_assistant, fake_index)
    port = free_port()
    with pytest.raises(ConfigError, match="refusing to serve on 0.0.0.0 without a password"):
        launch(app, "0.0.0.0", port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # nothing was started on the port
