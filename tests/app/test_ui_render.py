"""The chat UI's event handlers without a server: a chat turn, conversation state, feedback and reload messages,
and the bind check of `leftqa serve`."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import pytest
from conftest import FAKE_MODEL
from test_render import answer, cite, hit

from leftqa.app import ui
from leftqa.app.cli import main
from leftqa.app.ui import Conversation, record_feedback, reload_index, respond
from leftqa.config import Settings
from leftqa.errors import IndexMissingError, QuestionError
from leftqa.records import Answer


class StubAssistant:
    """Records what the UI passes to the assistant; raises QuestionError for blank questions like the real one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], str | None]] = []

    def ask(self, question: str, history: Sequence[str] = (), mode: str | None = None) -> Answer:
        self.calls.append((question, tuple(history), mode))
        if not question.strip():
            raise QuestionError("the question is empty; type a question about the corpus")
        q = " ".join(question.split())
        return answer(f"About {q}. [1]", [cite(1, "p1", f"About {q}.", ((0, 5),))], [hit(1, "p1", f"About {q}.")], question=q)

    def reload(self) -> str:
        raise IndexMissingError("no index at /nowhere; run `leftqa index` first")


def test_respond_passes_the_conversation_as_history_and_user_mistakes_become_bubbles() -> None:
    stub = StubAssistant()
    box, bubbles, panel, conv = respond(stub, "First <q>?", "bm25", None)
    assert (box, len(bubbles), conv.history) == ("", 2, ("First <q>?",))
    assert bubbles[0] == {"role": "user", "content": '<span class="lq-q">First &lt;q&gt;?</span>'}
    box, bubbles, panel, conv = respond(stub, "   ", "bm25", conv)
    assert box == "   " and len(bubbles) == 3 and conv.history == ("First <q>?",)
    assert bubbles[-1]["content"] == '<p class="lq-error">Sorry, I can’t answer that: the question is empty; type a question about the corpus.</p>'
    assert 'id="lq-src-1-1"' in panel  # the last good answer's sources stay
    _, bubbles, panel, conv = respond(stub, "Second?", "not-a-mode", conv)
    assert [c[1:] for c in stub.calls] == [((), "bm25"), (("First <q>?",), "bm25"), (("First <q>?",), None)]
    assert conv.turns == 2 and 'href="#lq-src-2-1"' in bubbles[-1]["content"] and 'id="lq-src-2-1"' in panel


def test_feedback_is_about_the_latest_answer_and_its_earlier_questions(tmp_path: Path) -> None:
    settings = Settings(feedback_path=tmp_path / "fb.jsonl")
    assert "Ask a question first" in record_feedback(settings, Conversation(), "helpful")
    stub = StubAssistant()
    conv = respond(stub, "One?", "hybrid", None)[3]
    conv = respond(stub, "Two?", "hybrid", conv)[3]
    assert "recorded" in record_feedback(settings, conv, "wrong evidence")
    row = json.loads(settings.feedback_path.read_text("utf-8"))
    assert (row["question"], row["history"], row["verdict"], row["cited_passage_ids"]) == ("Two?", ["One?"], "wrong evidence", ["p1"])


def test_reload_failure_is_a_message() -> None:
    assert reload_index(StubAssistant()).startswith('<p class="lq-status lq-error">The index was not reloaded')


@pytest.fixture
def bind_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Hosts passed to check_bind, with Gradio's launch and block_thread stubbed (no server is started)."""
    import gradio as gr

    hosts: list[str] = []
    real = ui.check_bind
    monkeypatch.setattr(ui, "check_bind", lambda host, credentials: (hosts.append(host), real(host, credentials))[1])
    server = SimpleNamespace(mount=lambda path, api: None, router=SimpleNamespace(routes=[]))  # where `launch` adds /api and /mcp
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: (server, f"http://{kw['server_name']}:{kw['server_port']}/", None))
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: None)
    return hosts


def test_leftqa_serve_checks_the_bind_once_before_loading(
    bind_checks: list[str], fake_index: Settings, clean_leftqa_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", "--port", "7999", "--index", str(fake_index.index_dir), "--corpus", str(fake_index.corpus_dir), "--model", FAKE_MODEL]
    assert main(args) == 0
    assert bind_checks == ["127.0.0.1"] and "chat UI on http://127.0.0.1:7999/" in capsys.readouterr().out


def test_serve_and_launch_still_check_the_bind_for_library_callers(bind_checks: list[str], fake_assistant, fake_index: Settings) -> None:  # noqa: ANN001
    from leftqa.errors import ConfigError

    ui.serve(fake_assistant, port=7999)
    assert bind_checks == ["127.0.0.1"]
    with pytest.raises(ConfigError, match="refusing to serve on 0.0.0.0 without a password"):
        ui.launch(ui.build_app(fake_assistant, fake_index), "0.0.0.0", 7999)
    assert bind_checks == ["127.0.0.1", "0.0.0.0"]
