"""The chat UI: Gradio Blocks wiring and layout around the shared Assistant (no answering logic lives here).

The HTML it shows comes from `app/render.py`; its CSS and JS are `app/assets/ui.css` and `app/assets/ui.js`."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import asdict, dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence
from weakref import WeakKeyDictionary

from leftqa.app.library import Library, LibraryReport
from leftqa.app.render import (
    LIBRARY_COLUMNS, esc, library_table, render_answer, render_library_report, render_sources, user_bubble,
)  # fmt: skip
from leftqa.config import MODES, Settings
from leftqa.errors import ConfigError, LeftQAError
from leftqa.evals.feedback import Feedback, append_feedback
from leftqa.ingest.documents import MAX_PACKAGE_BYTES
from leftqa.records import Answer

if TYPE_CHECKING:
    import gradio as gr

    from leftqa.qa.assistant import Assistant

EXAMPLES = (
    "Who led the Antwerp Group?",
    "When was Trotsky exiled?",
    "What was the Right Opposition?",
    "What did the Three Arrows symbol signify?",
)
# Answering is CPU-bound (a MiniLM query embedding, then FAISS, BM25 and sentence scoring, ~30-60 ms) and the
# target is a 2-core machine: two answers at a time keep both cores busy, while more would only make each one
# slower (torch already runs its own threads) and raise peak memory. Everything else waits in the queue.
ANSWER_CONCURRENCY = 2
# At two answers at a time a full queue of 100 drains in roughly two seconds, which is still a usable wait;
# past that a newcomer gets an immediate "queue is full" instead of an unbounded one.
QUEUE_SIZE = 100
# Sources of this many earlier answers stay in the panel so markers in older chat bubbles still resolve.
EARLIER_TURNS = 8
# Library changes rebuild the index: one at a time, the rest wait in the queue (the chat keeps answering).
LIBRARY_CONCURRENCY = 1
# Uploads larger than the largest source `leftqa add` accepts (PDF and DOCX) are refused by the server itself.
MAX_UPLOAD_BYTES = MAX_PACKAGE_BYTES
LOOPBACK = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger("leftqa.ui")
# The JSON API (app/api.py) of each app built here, sharing its Library, and its Assistant for the MCP tools.
_APIS: "WeakKeyDictionary[gr.Blocks, Any]" = WeakKeyDictionary()


@dataclass(frozen=True)
class Conversation:
    """One browser session: the questions asked (the assistant's history), chat bubbles and recent answers."""

    history: tuple[str, ...] = ()
    messages: tuple[dict[str, str], ...] = ()
    answers: tuple[tuple[int, Answer], ...] = ()  # (turn number, answer), oldest first, capped
    turns: int = 0

    @property
    def last(self) -> Answer | None:
        """The latest answer, if any."""
        return self.answers[-1][1] if self.answers else None


def refuse(message: str) -> "gr.Error":
    """The error for bad input to an endpoint: shown to the caller, one line in the log, no traceback."""
    import gradio as gr

    log.warning("refused: %s", message)
    return gr.Error(message, print_exception=False)


def respond(assistant: "Assistant", question: str, mode: str, conv: Conversation | None) -> tuple[str, list[dict[str, str]], str, Conversation]:
    """One chat turn: (new textbox value, chat bubbles, sources panel, conversation); user mistakes become bubbles."""
    conv = conv if isinstance(conv, Conversation) else Conversation()
    question = question if isinstance(question, str) else ""
    try:
        a = assistant.ask(question, conv.history, mode if mode in MODES else None)
    except LeftQAError as exc:
        bubbles = [user_bubble(question)] if question.strip() else []
        bubbles.append({"role": "assistant", "content": f'<p class="lq-error">Sorry, I can’t answer that: {esc(exc)}.</p>'})
        conv = replace(conv, messages=conv.messages + tuple(bubbles))
        return question, list(conv.messages), render_sources(conv.answers), conv
    turn = conv.turns + 1
    bubbles = (user_bubble(a.question), {"role": "assistant", "content": render_answer(a, turn)})
    conv = Conversation(
        history=conv.history + (a.question,),
        messages=conv.messages + bubbles,
        answers=(conv.answers + ((turn, a),))[-(EARLIER_TURNS + 1) :],
        turns=turn,
    )
    return "", list(conv.messages), render_sources(conv.answers), conv


def record_feedback(settings: Settings, conv: Conversation | None, verdict: str) -> str:
    """Append a verdict on the latest answer to the feedback file; the status line to show."""
    if not isinstance(conv, Conversation) or conv.last is None:
        return '<p class="lq-status">Ask a question first; feedback is about the latest answer.</p>'
    try:
        append_feedback(settings.feedback_path, Feedback.build(conv.last, conv.history[:-1], verdict))
    except LeftQAError as exc:
        return f'<p class="lq-status lq-error">Sorry, the feedback was not saved: {esc(exc)}.</p>'
    return f'<p class="lq-status">Thanks: “{esc(verdict)}” recorded for <q>{esc(conv.last.question)}</q>.</p>'


def reload_index(assistant: "Assistant") -> str:
    """Load the index again from disk; the status line to show."""
    try:
        return f'<p class="lq-status">Index reloaded: {esc(assistant.reload())}.</p>'
    except LeftQAError as exc:
        return f'<p class="lq-status lq-error">The index was not reloaded (still serving the previous one): {esc(exc)}.</p>'


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, credentials: tuple[str, str] | None) -> None:
    """ConfigError when serving beyond this machine without a password (the Library lets visitors change the corpus)."""
    if credentials is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without a password: the Library can change the corpus; "
            "pass --auth USER:PASSWORD (or set LEFTQA_AUTH), or keep the default --host 127.0.0.1"
        )


def build_app(assistant: "Assistant", settings: Settings, examples: Sequence[str] = EXAMPLES) -> "gr.Blocks":
    """The Gradio app: Chat and Library tabs, and the /ask, /documents, /add_sources, /add_url, /remove_source API."""
    import gradio as gr

    library = Library(assistant)

    def on_chat(question: str, mode: str, conv: Conversation) -> tuple[Any, ...]:
        return respond(assistant, question, mode, conv)

    def on_example(mode: str, conv: Conversation, evt: gr.SelectData) -> tuple[Any, ...]:
        text = evt.value.get("text", "") if isinstance(evt.value, dict) else str(evt.value)
        return respond(assistant, text, mode, conv)

    # Gradio finds the event-data parameter by its annotation; this module's annotations are strings.
    on_example.__annotations__["evt"] = gr.SelectData

    def on_clear() -> tuple[Any, ...]:
        return "", [], render_sources(()), Conversation(), ""

    def ask(question: str, history: list[str] | None = None, mode: str | None = None) -> dict:
        """Answer `question` after the earlier questions `history` (oldest first): the `leftqa ask --json` object."""
        if mode not in (None, "", *MODES):
            raise refuse(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        if history is not None and (not isinstance(history, list) or not all(isinstance(h, str) for h in history)):
            raise refuse("history must be a list of earlier questions (strings)")
        try:
            return assistant.ask(question, history or (), mode or None).to_dict()
        except LeftQAError as exc:
            raise refuse(str(exc)) from None

    def documents() -> list[dict]:
        """The documents of the index being served: {doc_id, title, file, format, passages, source, added} each."""
        return [asdict(r) for r in library.documents()]

    def bar(progress: Any) -> Callable[[float, str], None]:
        return lambda fraction, message: progress(fraction, desc=message)

    def add_sources(files: list[str] | None, replace: bool = False, progress: gr.Progress = gr.Progress()) -> dict:
        paths = [f for f in (files or []) if f]
        return library.add_files([(f, Path(f).name) for f in paths], replace=bool(replace), progress=bar(progress)).to_dict()

    def add_url(url: str, progress: gr.Progress = gr.Progress()) -> dict:
        return library.add_url(url if isinstance(url, str) else "", progress=bar(progress)).to_dict()

    def remove_source(doc_id: str, progress: gr.Progress = gr.Progress()) -> dict:
        return library.remove(doc_id if isinstance(doc_id, str) else "", progress=bar(progress)).to_dict()

    def show_library(report: dict | None = None) -> tuple[Any, ...]:
        rows = library.documents()
        status = render_library_report(LibraryReport.from_dict(report) if isinstance(report, dict) else None)
        return status, library_table(rows), gr.update(choices=[r.doc_id for r in rows], value=None)

    with gr.Blocks(title="leftqa", analytics_enabled=False) as app:
        conv = gr.State(Conversation())
        gr.HTML(
            '<div class="lq-header"><h1>leftqa</h1><p>Answers quote the corpus verbatim. Every sentence carries a '
            "numbered citation: click or hover it to see the passage, with the quoted words highlighted.</p></div>"
        )
        with gr.Tabs(elem_id="lq-tabs"):
            with gr.Tab("Chat", id="chat", elem_id="lq-chat-tab"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=360):
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            elem_id="lq-chat",
                            height=560,
                            render_markdown=False,  # bubbles are HTML built here with every text escaped
                            sanitize_html=True,
                            allow_tags=False,
                            feedback_options=None,
                            buttons=["copy", "copy_all"],  # no "share": nothing leaves this machine
                            examples=[{"text": q} for q in examples],
                            placeholder="Ask about the corpus, or pick an example.",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False,
                                placeholder="Ask a question, e.g. Who led the Antwerp Group?",
                                elem_id="lq-question",
                                scale=5,
                                lines=1,
                                max_lines=4,
                                autofocus=True,
                            )
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="lq-ask", min_width=80)
                        with gr.Row():
                            helpful = gr.Button("✓ Helpful", size="sm", elem_id="lq-helpful")
                            wrong = gr.Button("⚠ Wrong evidence", size="sm", elem_id="lq-wrong")
                            clear = gr.Button("Clear conversation", size="sm", elem_id="lq-clear")
                        status = gr.HTML("", elem_id="lq-status")
                        with gr.Accordion("Advanced", open=False, elem_id="lq-advanced"):
                            mode = gr.Radio(list(MODES), value=settings.mode, label="Retrieval mode", info="hybrid = BM25 keywords + MiniLM embeddings")
                            reload_btn = gr.Button("Reload index", size="sm", elem_id="lq-reload")
                            reload_status = gr.HTML("")
                    with gr.Column(scale=2, min_width=320):
                        sources = gr.HTML(render_sources(()), elem_id="lq-sources", padding=True)
            with gr.Tab("Library", id="library", elem_id="lq-library-tab"):
                gr.HTML(
                    '<p class="lq-lib-intro">The documents the chat answers from. Adding or removing one updates the '
                    "index in the background (the same incremental build as <code>leftqa add</code>); the chat keeps "
                    "answering from the previous index until the new one is ready.</p>"
                )
                with gr.Row(equal_height=False):
                    lib_status = gr.HTML(render_library_report(None), elem_id="lq-lib-status", scale=3)
                    # A change's progress bar has this area of its own beside the status line (ui.css keeps it tall
                    # enough): drawn over the status, as Gradio draws it on an output, it covered the text.
                    lib_progress = gr.HTML("", elem_id="lq-lib-progress", js_on_load=None, scale=2, min_width=260)
                table = gr.Dataframe(
                    headers=list(LIBRARY_COLUMNS), value=library_table(library.documents()), interactive=False,
                    wrap=True, elem_id="lq-docs", label="Documents",
                )  # fmt: skip
                with gr.Row(equal_height=False):
                    with gr.Column():
                        upload = gr.File(
                            file_count="multiple", type="filepath", elem_id="lq-upload",
                            label="Add files (.txt .md .html .htm .pdf .docx .jsonl)",
                        )  # fmt: skip
                        replace_box = gr.Checkbox(False, label="Replace corpus files of the same name", elem_id="lq-replace")
                        add_btn = gr.Button("Add files", variant="primary", elem_id="lq-add")
                    with gr.Column():
                        url_box = gr.Textbox(label="Web address", placeholder="https://example.org/page.html", elem_id="lq-url", max_lines=1)
                        url_btn = gr.Button("Add page", elem_id="lq-add-url")
                        doc_choice = gr.Dropdown(
                            choices=[r.doc_id for r in library.documents()], value=None, allow_custom_value=True,
                            label="Remove a document", elem_id="lq-remove-choice",
                        )  # fmt: skip
                        remove_btn = gr.Button("Remove", variant="stop", elem_id="lq-remove")
                report = gr.JSON(visible=False)
                # /remove_source reads its doc_id from this hidden box, not from the dropdown: the API schema of a
                # Dropdown is a Literal of the choices it was built with, which a document added later is not.
                doc_id_box = gr.Textbox(visible=False, label="doc_id")
                doc_id_box.example_payload = lambda: "notes.pdf"  # the example of the API page (a Textbox's: "Hello!!")

        chat_io = dict(inputs=[question, mode, conv], outputs=[question, chatbot, sources, conv])
        gr.on(
            [question.submit, ask_btn.click], on_chat, **chat_io, api_name="chat",
            concurrency_id="answer", concurrency_limit=ANSWER_CONCURRENCY, show_progress="minimal",
        )
        chatbot.example_select(
            on_example, inputs=[mode, conv], outputs=[question, chatbot, sources, conv], api_visibility="undocumented",
            concurrency_id="answer", concurrency_limit=ANSWER_CONCURRENCY, show_progress="minimal",
        )
        gr.on([clear.click, chatbot.clear], on_clear, outputs=[question, chatbot, sources, conv, status], api_name="clear", queue=False)
        helpful.click(lambda c: record_feedback(settings, c, "helpful"), [conv], [status], api_name="feedback_helpful", queue=False)
        wrong.click(lambda c: record_feedback(settings, c, "wrong evidence"), [conv], [status], api_name="feedback_wrong", queue=False)
        reload_btn.click(lambda: reload_index(assistant), None, [reload_status], api_name="reload", concurrency_id="reload", concurrency_limit=1)
        gr.api(ask, api_name="ask", concurrency_id="answer", concurrency_limit=ANSWER_CONCURRENCY)

        # Library: every change is one queued event (one at a time), its report shown once it is done.
        lib_view = [lib_status, table, doc_choice]
        change = dict(concurrency_id="library", concurrency_limit=LIBRARY_CONCURRENCY, show_progress="full", show_progress_on=[lib_progress])
        add_btn.click(add_sources, [upload, replace_box], [report], api_name="add_sources", **change).then(
            lambda r: (*show_library(r), None), [report], [*lib_view, upload], api_visibility="private"
        )
        gr.on([url_btn.click, url_box.submit], add_url, [url_box], [report], api_name="add_url", **change).then(
            lambda r: (*show_library(r), "" if (r or {}).get("ok") else gr.update()), [report], [*lib_view, url_box], api_visibility="private"
        )
        # The button copies the choice into doc_id_box in the browser (no round trip), then runs /remove_source.
        remove_btn.click(None, [doc_choice], [doc_id_box], js="(doc_id) => doc_id", queue=False, api_visibility="private").then(
            remove_source, [doc_id_box], [report], api_name="remove_source", **change
        ).then(show_library, [report], lib_view, api_visibility="private")
        gr.api(documents, api_name="documents", queue=False)
        app.load(lambda: show_library()[1:], None, [table, doc_choice], api_visibility="private", queue=False)

    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=ANSWER_CONCURRENCY)
    _skip_event_analytics(app)
    _refuse_missing_inputs(app)
    from leftqa.app.api import build_api

    _APIS[app] = (build_api(assistant, settings, library, ANSWER_CONCURRENCY), assistant)  # served by `launch`
    return app


def _skip_event_analytics(app: "gr.Blocks") -> None:
    """Stop Gradio's queue from summarising past events after every event (it is private API, hence guarded)."""
    # Since Gradio 5.44.1 (gradio-app/gradio#11764) the queue rebuilds a pandas summary of its recorded events
    # (process times, success rates per endpoint) after every queued event (GRADIO_ANALYTICS_CACHE_FREQUENCY
    # defaults to 1), whether or not monitoring is enabled; the summary is only served by /monitoring/summary,
    # which since 6.22 answers 403 with enable_monitoring=False, as here. Measured at 18 ms per event after 500
    # events and 70 ms after 10,000: more than an answer. Gradio 6.25 (#13756) caps the record at 10,000 events
    # (GRADIO_ANALYTICS_MAX_EVENTS); before it the record grew without bound. Still so in 6.31. The attributes
    # rather than the GRADIO_* variables, which are read when the queue is made and would reach every app of the
    # process; without the attribute (an older or changed Gradio) this does nothing.
    queue = getattr(app, "_queue", None)
    if queue is not None and hasattr(queue, "ANAYLTICS_CACHE_FREQUENCY"):  # sic: Gradio's spelling
        queue.ANAYLTICS_CACHE_FREQUENCY = 2**62
        queue.ANALYTICS_MAX_EVENTS = 100


def _refuse_missing_inputs(app: "gr.Blocks") -> None:
    """An API call with too few values (or none) is refused with a message and one log line, not a traceback."""
    # Gradio checks the count in Blocks.validate_inputs and raises a ValueError, which its queue prints with a
    # traceback and answers as {"error": null} (the message is hidden when show_error is off, as here).
    check = app.validate_inputs

    def validate(block_fn: Any, inputs: list[Any]) -> None:
        try:
            check(block_fn, inputs)
        except ValueError:
            name = block_fn.api_name or block_fn.name or "this event"
            raise refuse(f"/{name} takes {len(block_fn.inputs)} values in \"data\", got {len(inputs)}") from None

    app.validate_inputs = validate  # type: ignore[method-assign]


def _asset(name: str) -> str:
    return (files("leftqa.app") / "assets" / name).read_text(encoding="utf-8")


def launch(
    app: "gr.Blocks", host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None, *, checked: bool = False
) -> str:
    """Serve `app` on host:port in the background (never shared; beyond loopback only with `auth`); its URL."""
    import gradio as gr

    if not checked:  # checked=True: the caller ran check_bind(host, auth) already, e.g. before a slow model load
        check_bind(host, auth)

    theme = gr.themes.Default(  # system fonts: the page must not fetch anything from the internet
        primary_hue="red", neutral_hue="stone", font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    try:
        server, url, _ = app.launch(
            server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=True,
            show_error=False, quiet=True, allowed_paths=None, footer_links=["api"], ssr_mode=False,
            mcp_server=False, pwa=False, enable_monitoring=False, theme=theme, css=_asset("ui.css"), js=_asset("ui.js"),
            auth=auth, auth_message="leftqa: sign in with the user and password given to `leftqa serve --auth`.",
            max_file_size=MAX_UPLOAD_BYTES,
        )
    except OSError as exc:
        # Gradio's message suggests code changes; the user's remedy is a command-line option.
        raise ConfigError(f"cannot serve on {host}:{port} ({exc.strerror or 'port in use or address not available'}); choose another --port or --host") from None
    if app in _APIS:  # the JSON API under /api and the MCP tools at /mcp, beside the chat
        from leftqa.app.api import mount_api
        from leftqa.app.mcp_server import mount_http

        api, assistant = _APIS[app]
        mount_api(server, api, auth)
        mount_http(server, assistant, auth, host)
    return str(url)


def serve(assistant: "Assistant", host: str = "127.0.0.1", port: int = 7860, *, checked: bool = False) -> None:
    """Build the app for `assistant` and serve it until Ctrl-C (`leftqa serve`; `checked` as for `launch`)."""
    app = build_app(assistant, assistant.settings)
    url = launch(app, host=host, port=port, auth=assistant.settings.credentials(), checked=checked)
    print(f"leftqa: chat UI on {url}  JSON API on {url.rstrip('/')}/api (docs: /api/docs)  (Ctrl-C stops)", flush=True)
    app.block_thread()  # returns on Ctrl-C, after closing the server
