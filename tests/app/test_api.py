"""The JSON API under /api (app/api.py) on a real server over HTTP: a private tiny corpus and fake-embedder index."""

from __future__ import annotations

import json
import logging
import typing
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from conftest import HARBOUR_TXT, TINY_CORPUS, build_fake_index, served, write_files

from leftqa.app.api import Mode
from leftqa.config import MODES, Settings

QUESTION = "Who led the Harbour Committee?"
NOTE = "The Fenwick tram company was founded in 1903 by Orla Brenn, a former lighthouse keeper."


def _settings(root: Path) -> Settings:
    corpus = write_files(root / "corpus", TINY_CORPUS)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", model="hash:64", scorer="none", feedback_path=root / "feedback.jsonl")
    build_fake_index(settings)
    return settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Settings]]:
    """(base URL, assistant, settings) of the app over its own tiny corpus, no auth."""
    from leftqa.qa.assistant import Assistant

    settings = _settings(tmp_path_factory.mktemp("api"))
    assistant = Assistant.load(settings)
    with served(assistant, settings) as url:
        yield url.rstrip("/"), assistant, settings


@pytest.fixture
def api(server: tuple[str, Any, Settings]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0] + "/api", timeout=120) as client:
        yield client


def test_mode_literal_matches_config() -> None:
    assert typing.get_args(Mode) == MODES


def test_health(api: httpx.Client) -> None:
    body = api.get("/health").json()
    assert body["status"] == "ok" and body["documents"] == 2 and body["passages"] == 13 and body["model"] == "hash:64"


def test_ask_is_the_cli_json_object(api: httpx.Client, server: tuple[str, Any, Settings]) -> None:
    r = api.post("/ask", json={"question": QUESTION})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = server[1].ask(QUESTION).to_dict()
    assert json.loads(json.dumps(expected)).keys() == body.keys()
    assert body["answer"] == expected["answer"] and "Marta Quell" in body["answer"] and body["citations"][0]["n"] == 1
    follow = api.post("/ask", json={"question": "When was it founded?", "history": [QUESTION], "mode": "bm25"}).json()
    assert follow["mode"] == "bm25" and follow["query"] != follow["question"]


def test_search_is_the_cli_json_object(api: httpx.Client) -> None:
    body = api.get("/search", params={"q": "lighthouse keeper", "k": 3, "mode": "bm25"}).json()
    assert set(body) == {"question", "mode", "hits"} and body["mode"] == "bm25" and len(body["hits"]) == 3
    assert body["hits"][0]["rank"] == 1 and {"passage_id", "doc_id", "text", "score"} <= set(body["hits"][0])


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "detail"),
    [
        ("post", "/ask", {"json": {"question": "  "}}, 422, "the question is empty; type a question about the corpus"),
        ("post", "/ask", {"json": {"question": "x" * 2001}}, 422, "the question is too long (2,001 characters; the limit is 2,000)"),
        ("post", "/ask", {}, 422, "request body: Field required"),
        ("post", "/ask", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON decode error"),
        ("post", "/ask", {"json": {"question": QUESTION, "mode": "fuzzy"}}, 422, "mode: Input should be 'hybrid', 'bm25' or 'dense'"),
        ("post", "/ask", {"json": {"question": QUESTION, "history": "earlier"}}, 422, "history: Input should be a valid list"),
        ("get", "/search", {"params": {"q": "x", "k": 0}}, 422, "k: Input should be greater than or equal to 1"),
        ("get", "/search", {}, 422, "q: Field required"),
        ("post", "/documents", {}, 422, "files: Field required"),
        ("post", "/documents/url", {"json": {"url": ""}}, 422, "enter a web address (http or https) first"),
        ("post", "/documents/url", {"json": {"url": "ftp://x"}}, 422, "ftp://x is not a web address; only http and https pages can be added"),
        ("delete", "/documents/no-such.txt", {}, 404, "'no-such.txt': not a document of the index"),
        ("post", "/feedback", {"json": {"question": QUESTION, "verdict": "meh"}}, 422, "verdict: Input should be 'helpful' or 'wrong evidence'"),
    ],
)
def test_bad_input_is_a_4xx_with_one_line(api: httpx.Client, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
                                          method: str, path: str, kwargs: dict, status: int, detail: str) -> None:  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="leftqa.api"):
        r = api.request(method.upper(), path, **kwargs)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"detail"} and isinstance(r.json()["detail"], str) and detail in r.json()["detail"]
    records = [rec for rec in caplog.records if rec.name == "leftqa.api"]
    assert len(records) == 1 and records[0].exc_info is None and detail in records[0].getMessage()
    assert "Traceback" not in capfd.readouterr().err


def test_upload_replace_and_remove(api: httpx.Client, server: tuple[str, Any, Settings]) -> None:
    files = [("files", ("tram.txt", NOTE.encode())), ("files", ("tram-copy.md", ("# Trams\n\n" + NOTE).encode())), ("files", ("x.exe", b"MZ"))]
    r = api.post("/documents", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["added"] == ["tram-copy.md", "tram.txt"] or sorted(body["added"]) == ["tram-copy.md", "tram.txt"]
    assert [s["file"] for s in body["skipped"]] == ["x.exe"] and "unsupported file type" in body["skipped"][0]["reason"]
    assert body["documents"] == 4 and body["passages"] > 13
    assert "Orla Brenn" in api.post("/ask", json={"question": "Who founded the Fenwick tram company?"}).json()["answer"]

    other = NOTE.replace("1903", "1904").encode()
    refused = api.post("/documents", files=[("files", ("tram.txt", other))])  # each file refused is listed, not a 4xx
    assert refused.status_code == 200 and refused.json()["added"] == [] and "replace it" in refused.json()["skipped"][0]["reason"]
    replaced = api.post("/documents", files=[("files", ("tram.txt", other))], data={"replace": "true"}).json()
    assert replaced["replaced"] == ["tram.txt"] and replaced["documents"] == 4

    for doc in ("tram.txt", "tram-copy.md"):
        gone = api.delete(f"/documents/{doc}")
        assert gone.status_code == 200 and gone.json()["removed"] == doc
    assert sorted(d["doc_id"] for d in api.get("/documents").json()) == sorted(TINY_CORPUS)
    assert api.delete("/documents/tram.txt").status_code == 404


def test_feedback_is_recorded(api: httpx.Client, server: tuple[str, Any, Settings]) -> None:
    r = api.post("/feedback", json={"question": QUESTION, "verdict": "wrong evidence"})
    assert r.status_code == 200 and r.json()["recorded"] is True
    line = json.loads(Path(server[2].feedback_path).read_text().splitlines()[-1])
    assert line["question"] == QUESTION and line["verdict"] == "wrong evidence" and line["cited_passage_ids"]


def test_openapi_and_docs(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    assert {"/health", "/ask", "/search", "/documents", "/documents/url", "/documents/{doc_id}", "/feedback"} <= set(schema["paths"])
    assert "422" in schema["paths"]["/ask"]["post"]["responses"]
    assert "swagger" in api.get("/docs").text.lower()


def test_gradio_client_still_works(server: tuple[str, Any, Settings]) -> None:
    from gradio_client import Client

    answer = Client(server[0], verbose=False).predict(QUESTION, [], "hybrid", api_name="/ask")
    assert "Marta Quell" in answer["answer"]


def test_auth_guards_every_api_route(tmp_path: Path) -> None:
    from leftqa.qa.assistant import Assistant

    settings = _settings(tmp_path)
    with served(Assistant.load(settings), settings, auth=("ada", "s3cret")) as url:
        base = url.rstrip("/") + "/api"
        for path in ("/health", "/documents", "/openapi.json", "/docs", "/search?q=harbour"):
            r = httpx.get(base + path)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"), path
            assert httpx.get(base + path, auth=("ada", "wrong")).status_code == 401
        assert httpx.post(base + "/ask", json={"question": QUESTION}).status_code == 401
        ok = httpx.post(base + "/ask", json={"question": QUESTION}, auth=("ada", "s3cret"), timeout=120)
        assert ok.status_code == 200 and "Marta Quell" in ok.json()["answer"]


def test_upload_over_the_limit_is_refused(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import leftqa.app.api as api_module

    monkeypatch.setattr(api_module, "MAX_PACKAGE_BYTES", 10)
    r = api.post("/documents", files=[("files", ("big.txt", HARBOUR_TXT.encode()))])
    assert r.status_code == 413 and "big.txt" in r.json()["detail"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], '/ask takes 3 values in \\"data\\", got 0'),
        ([""], '/ask takes 3 values in \\"data\\", got 1'),
        (["", [], "hybrid"], "the question is empty; type a question about the corpus"),
        ([QUESTION, [], "fuzzy"], "unknown retrieval mode 'fuzzy'; choose one of hybrid, bm25, dense"),
    ],
)
def test_gradio_api_refuses_bad_input_in_one_line(server: tuple[str, Any, Settings], caplog: pytest.LogCaptureFixture,
                                                  capfd: pytest.CaptureFixture[str], data: list, message: str) -> None:  # fmt: skip
    """Gradio's own /ask endpoint: an error with the message (not {"error": null}), one log line, no traceback."""
    with caplog.at_level(logging.WARNING, logger="leftqa.ui"):
        event = httpx.post(server[0] + "/gradio_api/call/ask", json={"data": data}).json()["event_id"]
        stream = httpx.get(f"{server[0]}/gradio_api/call/ask/{event}", timeout=60).text
    assert "event: error" in stream and message in stream and '"error": null' not in stream
    assert [r.getMessage() for r in caplog.records if r.name == "leftqa.ui"] == [f"refused: {message.replace(chr(92), '')}"]
    assert "Traceback" not in capfd.readouterr().err
