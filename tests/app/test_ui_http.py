"""The chat server over HTTP: the real app on a free 127.0.0.1 port, real index and model, driven by gradio_client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import UIServer
from test_library_http import library  # noqa: F401 - the fixture: a private real-model server whose corpus may change

pytestmark = pytest.mark.e2e

ANTWERP = "Who led the Antwerp Group?"
SPAIN = "What did they do in Spain?"
EVIL = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


@pytest.fixture
def client(ui_server: UIServer):  # noqa: ANN201 - gradio_client.Client
    """A new browser-like session (its own conversation state on the server)."""
    from gradio_client import Client

    return Client(ui_server.url, verbose=False)


def ask(client, question: str, history: list[str] | None = None, mode: str = "hybrid") -> dict:  # noqa: ANN001
    return client.predict(question, history or [], mode, api_name="/ask")


def chat(client, question: str, mode: str = "hybrid") -> tuple[str, list[dict], str]:  # noqa: ANN001
    box, bubbles, sources = client.predict(question, mode, api_name="/chat")
    return box, bubbles, sources


def text_of(bubble: dict) -> str:
    content = bubble["content"]
    return "".join(part["text"] for part in content) if isinstance(content, list) else content


def passage_text(answer: dict, passage_id: str) -> str:
    return next((p["text"] for p in answer["passages"] if p["passage_id"] == passage_id), "")


def test_server_is_local_and_lists_the_ask_endpoint(ui_server: UIServer, client) -> None:  # noqa: ANN001
    assert ui_server.url.startswith("http://127.0.0.1:")
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/ask", "/chat"} <= set(endpoints)
    assert [p["parameter_name"] for p in endpoints["/ask"]["parameters"]] == ["question", "history", "mode"]


def test_antwerp_question_quotes_knuefken_with_a_citation(client) -> None:  # noqa: ANN001
    a = ask(client, ANTWERP)
    assert not a["abstained"] and a["query"] == ANTWERP
    assert "led by Hermann Knüfken" in a["answer"] and "[1]" in a["answer"]
    c = a["citations"][0]
    assert c["n"] == 1 and "Hermann Knüfken" in c["quote"]
    text = passage_text(a, c["passage_id"])
    quoted = [text[s:e] for s, e in c["highlights"]]
    assert quoted and all(q in c["quote"] for q in quoted) and any("Hermann Knüfken" in q for q in quoted)


def test_follow_ups_use_the_history(client) -> None:  # noqa: ANN001
    a = ask(client, SPAIN, [ANTWERP])
    assert a["query"] != SPAIN and "Antwerp" in a["query"]
    spain = [p["passage_id"] for p in a["passages"] if "Durruti Column" in p["text"]]
    assert spain, "the Spain/Durruti passage was not retrieved"
    assert a["passages"][0]["passage_id"] in spain or {c["passage_id"] for c in a["citations"]} & set(spain)
    b = ask(client, "Who expelled them?", [ANTWERP, SPAIN])
    assert b["query"] != b["question"]
    beimler = [p["passage_id"] for p in b["passages"] if "Hans Beimler" in p["text"]]
    assert beimler and (b["passages"][0]["passage_id"] in beimler or {c["passage_id"] for c in b["citations"]} & set(beimler))


def test_chat_event_keeps_the_conversation_and_renders_citations(client) -> None:  # noqa: ANN001
    box, bubbles, sources = chat(client, ANTWERP)
    assert box == "" and [b["role"] for b in bubbles] == ["user", "assistant"]
    first = text_of(bubbles[1])
    assert "led by Hermann Knüfken." in first and '<a class="lq-cite" href="#lq-src-1-1"' in first
    assert 'id="lq-src-1-1"' in sources and '<mark class="lq-quote">' in sources
    marked = sources.split('<mark class="lq-quote">', 1)[1].split("</mark>", 1)[0]
    assert "Hermann Knüfken" in marked
    box, bubbles, sources = chat(client, SPAIN)
    assert len(bubbles) == 4 and "Searched for:" in text_of(bubbles[3]) and "Antwerp Group" in text_of(bubbles[3])
    assert "Durruti Column" in sources and 'id="lq-src-2-1"' in sources


def test_clear_starts_a_new_conversation(client) -> None:  # noqa: ANN001
    chat(client, ANTWERP)
    box, bubbles, sources, status = client.predict(api_name="/clear")
    assert (box, bubbles, status) == ("", [], "")
    _, bubbles, _ = chat(client, SPAIN)
    assert len(bubbles) == 2 and "Searched for" not in text_of(bubbles[1])


def test_off_topic_question_abstains_with_closest_material(client) -> None:  # noqa: ANN001
    a = ask(client, "How do I bake sourdough bread?")
    assert a["abstained"] and a["citations"] == [] and "[1]" not in a["answer"] and a["passages"]
    _, bubbles, sources = chat(client, "How do I bake sourdough bread?")
    assert "Not in the corpus." in text_of(bubbles[1]) and "lq-cite" not in text_of(bubbles[1])
    assert "Closest material — not an answer" in sources and "lq-cited" not in sources


def test_html_in_a_question_is_shown_as_text(client) -> None:  # noqa: ANN001
    a = ask(client, EVIL)
    assert a["question"] == EVIL  # JSON data is returned as given; only HTML rendering escapes it
    _, bubbles, sources = chat(client, EVIL)
    shown = text_of(bubbles[0]) + text_of(bubbles[1]) + sources
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;" in text_of(bubbles[0])
    assert "<script" not in shown.lower() and "<img" not in shown.lower()


@pytest.mark.parametrize(("question", "message"), [("", "the question is empty"), ("x" * 2500, "the question is too long")])
def test_user_mistakes_are_polite_messages(client, question: str, message: str) -> None:  # noqa: ANN001
    box, bubbles, _ = chat(client, question)
    assert box == question and f"Sorry, I can’t answer that: {message}" in text_of(bubbles[-1])
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message) as err:
        ask(client, question)
    assert "Traceback" not in str(err.value)


def test_mode_selector_reaches_the_assistant(client) -> None:  # noqa: ANN001
    assert ask(client, ANTWERP, mode="bm25")["mode"] == "bm25"
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown retrieval mode"):
        ask(client, ANTWERP, mode="psychic")


def test_feedback_buttons_append_json_lines(ui_server: UIServer, client) -> None:  # noqa: ANN001
    path: Path = ui_server.settings.feedback_path
    before = path.read_text("utf-8").splitlines() if path.exists() else []
    assert "Ask a question first" in client.predict(api_name="/feedback_helpful")
    chat(client, ANTWERP)
    assert "recorded" in client.predict(api_name="/feedback_helpful")
    chat(client, SPAIN)
    assert "recorded" in client.predict(api_name="/feedback_wrong")
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()[len(before) :]]
    assert [(r["question"], r["history"], r["verdict"]) for r in rows] == [
        (ANTWERP, [], "helpful"),
        (SPAIN, [ANTWERP], "wrong evidence"),
    ]
    assert rows[0]["cited_passage_ids"] and rows[0]["answer"].endswith("[1]")


def test_reload_button_reloads_the_index(client, real_assistant, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import leftqa.qa.assistant as chat_module

    # Reloading reads the index again; the model is the session's, not loaded a second time.
    monkeypatch.setattr(chat_module, "load_embedder", lambda model, threads=0: real_assistant.embedder)
    status = client.predict(api_name="/reload")
    assert status.startswith('<p class="lq-status">Index reloaded: ') and " passages" in status
    assert "Hermann Knüfken" in ask(client, ANTWERP)["answer"]


@pytest.mark.parametrize("path", ["/etc/passwd", "corpus/anti-stalinist-left.txt", "src/leftqa/ui.py"])
def test_no_file_is_served_beyond_the_app(ui_server: UIServer, path: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(ui_server.url + "gradio_api/file=" + path, timeout=10)
    assert err.value.code in (403, 404)


def test_serve_binds_localhost_by_default() -> None:
    from leftqa.app.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 7860)


def remove_source_schema(url: str) -> dict:
    with urllib.request.urlopen(url + "gradio_api/info", timeout=30) as resp:
        return json.load(resp)["named_endpoints"]["/remove_source"]["parameters"]


def test_remove_source_takes_any_doc_id_so_a_document_added_after_start_can_go(library, tmp_path: Path) -> None:  # noqa: ANN001, F811
    """The published schema of /remove_source is a plain string, not the documents there were at start."""
    from gradio_client import Client, handle_file

    url = library[0]
    before = remove_source_schema(url)
    assert [(p["parameter_name"], p["type"], p["python_type"]["type"]) for p in before] == [("doc_id", {"type": "string"}, "str")]
    client = Client(url, verbose=False)
    note = tmp_path / "lantern-society.txt"
    note.write_text("The Lantern Society of Brask was founded in 1874 by the glassblower Ilse Varro.\n", encoding="utf-8")
    added = client.predict([handle_file(str(note))], False, api_name="/add_sources")
    assert added["ok"] and "lantern-society.txt" in [d["doc_id"] for d in client.predict(api_name="/documents")]
    assert remove_source_schema(url) == before  # nothing there names the documents of the moment

    fresh = Client(url, verbose=False)  # a client that read the schema after the document was added, as well
    for who in (client, fresh):
        refused = who.predict("no-such.txt", api_name="/remove_source")
        assert not refused["ok"] and refused["message"] == "nothing was removed: 'no-such.txt': not a document of the corpus"
    gone = fresh.predict(doc_id="lantern-society.txt", api_name="/remove_source")
    assert gone["ok"] and gone["removed"] == "lantern-society.txt"
    assert "lantern-society.txt" not in [d["doc_id"] for d in client.predict(api_name="/documents")]
