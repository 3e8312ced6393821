"""The chat UI: Gradio Blocks wiring and layout around the shared Assistant (no answering logic lives here)."""

from __future__ import annotations

import html
import ipaddress
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from leftqa.app.library import DocumentRow, Library, LibraryReport
from leftqa.config import MODES, Settings
from leftqa.errors import ConfigError, LeftQAError
from leftqa.evals.feedback import Feedback, append_feedback
from leftqa.ingest.documents import MAX_PACKAGE_BYTES
from leftqa.records import Answer, Citation, Hit

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
_MARKER = re.compile(r"(?<!\S)\[(\d+)\](?!\S)")
_SHOWN_QUESTION_CHARS = 300
# Library changes rebuild the index: one at a time, the rest wait in the queue (the chat keeps answering).
LIBRARY_CONCURRENCY = 1
LIBRARY_COLUMNS = ("title", "file", "format", "passages", "source", "added")
# Uploads larger than the largest source `leftqa add` accepts (PDF and DOCX) are refused by the server itself.
MAX_UPLOAD_BYTES = MAX_PACKAGE_BYTES
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _source_id(turn: int, n: int) -> str:
    return f"lq-src-{turn}-{n}"


def _cite_link(c: Citation, turn: int) -> str:
    tip = f"[{c.n}] {c.title} › {c.section}: {c.quote[:240]}{'…' if len(c.quote) > 240 else ''}"
    return f'<a class="lq-cite" href="#{_source_id(turn, c.n)}" title="{_e(tip)}">[{c.n}]</a>'


def render_answer(a: Answer, turn: int) -> str:
    """The chat bubble for an answer: escaped text, [n] markers linked to their sources, abstention spelled out."""
    parts = []
    if a.query != a.question:
        parts.append(f'<p class="lq-searched">Searched for: <q>{_e(a.query)}</q></p>')
    if a.abstained:
        parts.append(f'<p class="lq-abstain"><strong>Not in the corpus.</strong> {_e(a.answer)}</p>')
        parts.append('<p class="lq-hint">The nearest passages are listed under “Closest material”; they are not an answer.</p>')
        return "".join(parts)
    by_n = {c.n: c for c in a.citations}
    out, pos = [], 0
    for m in _MARKER.finditer(a.answer):
        c = by_n.get(int(m.group(1)))
        if c is not None:
            out += [_e(a.answer[pos : m.start()]), _cite_link(c, turn)]
            pos = m.end()
    out.append(_e(a.answer[pos:]))
    parts.append(f'<p class="lq-answer">{"".join(out)}</p>')
    return "".join(parts)


def _highlighted(text: str, spans: Sequence[Sequence[int]]) -> str:
    out, pos = [], 0
    for start, end in sorted((max(0, int(s)), min(len(text), int(e))) for s, e in spans):
        if end <= pos:
            continue
        start = max(start, pos)
        out += [_e(text[pos:start]), f'<mark class="lq-quote">{_e(text[start:end])}</mark>']
        pos = end
    out.append(_e(text[pos:]))
    return "".join(out)


def _cited_card(c: Citation, hits: dict[str, Hit], turn: int) -> str:
    hit = hits.get(c.passage_id)
    # The cited passage normally is among the ranked hits; if not, its quoted sentences still show verbatim.
    body = _highlighted(hit.text, c.highlights) if hit else f'<mark class="lq-quote">{_e(c.quote)}</mark>'
    page = f", p. {_e(c.page)}" if c.page else ""
    origin = f" · from {_e(c.source)}" if c.source else ""  # shown as text, never a live link
    return (
        f'<article class="lq-source lq-cited" id="{_source_id(turn, c.n)}">'
        f'<header><span class="lq-n">[{c.n}]</span> <span class="lq-where">{_e(c.title)} › {_e(c.section)}</span>'
        f'<span class="lq-score" title="retrieval score">score {c.score:.3f}</span></header>'
        f'<p class="lq-text">{body}</p>'
        f'<footer class="lq-meta">{_e(c.doc_id)}{page} · characters {c.start}–{c.end} · passage {_e(c.passage_id)}{origin}</footer>'
        "</article>"
    )


def _hit_card(h: Hit, kind: str) -> str:
    return (
        f'<article class="lq-source {kind}">'
        f'<header><span class="lq-rank">#{h.rank}</span> <span class="lq-where">{_e(h.title)} › {_e(h.section)}</span>'
        f'<span class="lq-score" title="retrieval score">score {h.score:.3f}</span></header>'
        f'<p class="lq-text">{_e(h.text)}</p></article>'
    )


def _current(a: Answer, turn: int) -> str:
    if a.abstained:
        shown, rest = a.passages[:3], a.passages[3:]
        more = "".join(_hit_card(h, "lq-closest") for h in rest)
        return (
            '<section class="lq-turn lq-notcovered"><h3>Closest material — not an answer</h3>'
            f'<p class="lq-note">The corpus does not seem to cover <q>{_e(a.question)}</q>. These are the nearest '
            "passages, shown so you can check for yourself; none of them answers the question.</p>"
            + "".join(_hit_card(h, "lq-closest") for h in shown)
            + (f'<details class="lq-more"><summary>More retrieved passages ({len(rest)})</summary>{more}</details>' if rest else "")
            + "</section>"
        )
    hits = {h.passage_id: h for h in a.passages}
    cited = {c.passage_id for c in a.citations}
    others = [h for h in a.passages if h.passage_id not in cited]
    more = "".join(_hit_card(h, "lq-other") for h in others)
    return (
        f'<section class="lq-turn"><h3>Sources</h3><p class="lq-for">for <q>{_e(a.question)}</q></p>'
        + "".join(_cited_card(c, hits, turn) for c in a.citations)
        + (f'<details class="lq-more"><summary>Other retrieved passages ({len(others)})</summary>{more}</details>' if others else "")
        + "</section>"
    )


def render_sources(answers: Sequence[tuple[int, Answer]]) -> str:
    """The sources panel: the latest answer's cited passages (quotes highlighted), the rest collapsed below."""
    if not answers:
        return '<div class="lq-sources lq-empty"><p>Sources appear here: every quoted sentence is highlighted in its passage.</p></div>'
    turn, latest = answers[-1]
    earlier = [
        f'<div class="lq-earlier-turn"><p class="lq-for"><q>{_e(a.question)}</q></p>'
        + "".join(_cited_card(c, {h.passage_id: h for h in a.passages}, t) for c in a.citations)
        + "</div>"
        for t, a in reversed(answers[:-1])
        if a.citations
    ]
    tail = f'<details class="lq-earlier"><summary>Sources of earlier answers ({len(earlier)})</summary>{"".join(earlier)}</details>' if earlier else ""
    return f'<div class="lq-sources">{_current(latest, turn)}{tail}</div>'


def _user_bubble(question: str) -> dict[str, str]:
    shown = " ".join(question.split())
    if len(shown) > _SHOWN_QUESTION_CHARS:
        shown = shown[:_SHOWN_QUESTION_CHARS] + "…"
    return {"role": "user", "content": f'<span class="lq-q">{_e(shown)}</span>'}


def respond(assistant: "Assistant", question: str, mode: str, conv: Conversation | None) -> tuple[str, list[dict[str, str]], str, Conversation]:
    """One chat turn: (new textbox value, chat bubbles, sources panel, conversation); user mistakes become bubbles."""
    conv = conv if isinstance(conv, Conversation) else Conversation()
    question = question if isinstance(question, str) else ""
    try:
        a = assistant.ask(question, conv.history, mode if mode in MODES else None)
    except LeftQAError as exc:
        bubbles = [_user_bubble(question)] if question.strip() else []
        bubbles.append({"role": "assistant", "content": f'<p class="lq-error">Sorry, I can’t answer that: {_e(exc)}.</p>'})
        conv = replace(conv, messages=conv.messages + tuple(bubbles))
        return question, list(conv.messages), render_sources(conv.answers), conv
    turn = conv.turns + 1
    bubbles = (_user_bubble(a.question), {"role": "assistant", "content": render_answer(a, turn)})
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
        return f'<p class="lq-status lq-error">Sorry, the feedback was not saved: {_e(exc)}.</p>'
    return f'<p class="lq-status">Thanks: “{_e(verdict)}” recorded for <q>{_e(conv.last.question)}</q>.</p>'


def reload_index(assistant: "Assistant") -> str:
    """Load the index again from disk; the status line to show."""
    try:
        return f'<p class="lq-status">Index reloaded: {_e(assistant.reload())}.</p>'
    except LeftQAError as exc:
        return f'<p class="lq-status lq-error">The index was not reloaded (still serving the previous one): {_e(exc)}.</p>'


def library_table(rows: Sequence[DocumentRow]) -> list[list[Any]]:
    """The Library table's rows: one per document, in LIBRARY_COLUMNS order (plain text; the table escapes it)."""
    return [[r.title, r.file, r.format, r.passages, r.source, r.added] for r in rows]


def render_library_report(report: LibraryReport | None) -> str:
    """The Library's status line after a change: what happened, files added, and each skipped file with its reason."""
    if report is None:
        return '<p class="lq-status">Add files or a web address; each change updates the index while the chat keeps answering.</p>'
    kind = "lq-status" if report.ok else "lq-status lq-error"
    parts = [f'<p class="{kind}">{_e(report.message)}</p>']
    if report.placed:
        items = "".join(f"<li>{_e(p['status'])}: {_e(p['dest'])}</li>" for p in report.placed)
        parts.append(f'<ul class="lq-placed">{items}</ul>')
    if report.removed:
        parts.append(f'<p class="lq-removed">Removed {_e(report.removed)}.</p>')
    if report.skipped:
        items = "".join(f"<li><strong>{_e(s.file)}</strong>: {_e(s.reason)}</li>" for s in report.skipped)
        parts.append(f'<div class="lq-skipped"><p>Skipped ({len(report.skipped)}):</p><ul>{items}</ul></div>')
    parts.append(f'<p class="lq-lib-size">The chat now answers from {report.documents} documents, {report.passages} passages.</p>')
    return '<div class="lq-lib-report">' + "".join(parts) + "</div>"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, credentials: tuple[str, str] | None) -> None:
    """ConfigError when the server would listen beyond this machine without a password (the Library can change
    the corpus, so anyone who reaches the page could)."""
    if credentials is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without a password: the Library can change the corpus; "
            "pass --auth USER:PASSWORD (or set LEFTQA_AUTH), or keep the default --host 127.0.0.1"
        )


def build_app(assistant: "Assistant", settings: Settings, examples: Sequence[str] = EXAMPLES) -> "gr.Blocks":
    """The Gradio app: the Chat tab (chat, sources panel, feedback, Advanced panel), the Library tab, and the
    `/ask`, `/documents`, `/add_sources`, `/add_url` and `/remove_source` API endpoints."""
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
            raise gr.Error(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}")
        if history is not None and (not isinstance(history, list) or not all(isinstance(h, str) for h in history)):
            raise gr.Error("history must be a list of earlier questions (strings)")
        try:
            return assistant.ask(question, history or (), mode or None).to_dict()
        except LeftQAError as exc:
            raise gr.Error(str(exc)) from None

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
                lib_status = gr.HTML(render_library_report(None), elem_id="lq-lib-status")
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
        change = dict(concurrency_id="library", concurrency_limit=LIBRARY_CONCURRENCY, show_progress="full", show_progress_on=[lib_status])
        add_btn.click(add_sources, [upload, replace_box], [report], api_name="add_sources", **change).then(
            lambda r: (*show_library(r), None), [report], [*lib_view, upload], api_visibility="private"
        )
        gr.on([url_btn.click, url_box.submit], add_url, [url_box], [report], api_name="add_url", **change).then(
            lambda r: (*show_library(r), "" if (r or {}).get("ok") else gr.update()), [report], [*lib_view, url_box], api_visibility="private"
        )
        remove_btn.click(remove_source, [doc_choice], [report], api_name="remove_source", **change).then(
            show_library, [report], lib_view, api_visibility="private"
        )
        gr.api(documents, api_name="documents", queue=False)
        app.load(lambda: show_library()[1:], None, [table, doc_choice], api_visibility="private", queue=False)

    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=ANSWER_CONCURRENCY)
    # After every event Gradio rebuilds a pandas summary of up to 10,000 past events for a monitoring page we
    # do not enable; measured at 18 ms per event after 500 events and 70 ms after 10,000, more than an answer.
    queue = getattr(app, "_queue", None)
    if queue is not None and hasattr(queue, "ANAYLTICS_CACHE_FREQUENCY"):  # sic: Gradio's spelling
        queue.ANAYLTICS_CACHE_FREQUENCY = 2**62
        queue.ANALYTICS_MAX_EVENTS = 100
    return app


def launch(app: "gr.Blocks", host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None) -> str:
    """Start serving `app` on host:port in the background (never shared publicly, no extra file access); its URL.

    Beyond loopback a password (`auth`) is required; with one, every page and API call needs it."""
    import gradio as gr

    check_bind(host, auth)

    theme = gr.themes.Default(  # system fonts: the page must not fetch anything from the internet
        primary_hue="red", neutral_hue="stone", font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    try:
        _, url, _ = app.launch(
            server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=True,
            show_error=False, quiet=True, allowed_paths=None, footer_links=["api"], ssr_mode=False,
            mcp_server=False, pwa=False, enable_monitoring=False, theme=theme, css=CSS, js=JS,
            auth=auth, auth_message="leftqa: sign in with the user and password given to `leftqa serve --auth`.",
            max_file_size=MAX_UPLOAD_BYTES,
        )
    except OSError as exc:
        # Gradio's message suggests code changes; the user's remedy is a command-line option.
        raise ConfigError(f"cannot serve on {host}:{port} ({exc.strerror or 'port in use or address not available'}); choose another --port or --host") from None
    return str(url)


def serve(assistant: "Assistant", host: str = "127.0.0.1", port: int = 7860) -> None:
    """Build the app for `assistant` and serve it until Ctrl-C (the `leftqa serve` command)."""
    credentials = assistant.settings.credentials()
    check_bind(host, credentials)
    app = build_app(assistant, assistant.settings)
    url = launch(app, host=host, port=port, auth=credentials)
    print(f"leftqa: chat UI on {url}  (Ctrl-C stops)", flush=True)
    app.block_thread()  # returns on Ctrl-C, after closing the server


# Clicking a marker scrolls its source into view (opening "earlier answers" when needed) and flashes it;
# hovering marks the card. Delegated from the document because chat bubbles are re-rendered on every turn.
JS = """
() => {
  const target = (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#lq-src-"]') : null;
    return a ? [a, document.getElementById(a.getAttribute("href").slice(1))] : [null, null];
  };
  document.addEventListener("click", (ev) => {
    const [a, el] = target(ev);
    if (!a) return;
    ev.preventDefault();
    if (!el) return;
    for (let d = el.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
    el.scrollIntoView({behavior: "smooth", block: "center"});
    el.classList.remove("lq-flash");
    void el.offsetWidth;
    el.classList.add("lq-flash");
  });
  document.addEventListener("mouseover", (ev) => { const [, el] = target(ev); if (el) el.classList.add("lq-hover"); });
  document.addEventListener("mouseout", (ev) => { const [, el] = target(ev); if (el) el.classList.remove("lq-hover"); });
}
"""

CSS = """
.lq-header h1 { margin: 0 0 .2rem 0; font-size: 1.6rem; }
.lq-header p { margin: 0; color: var(--body-text-color-subdued); }
#lq-chat .lq-searched { font-size: .85em; color: var(--body-text-color-subdued); margin: 0 0 .4rem 0; }
#lq-chat .lq-abstain strong, #lq-chat .lq-error { color: #9a3412; }
#lq-chat .lq-hint { font-size: .85em; color: var(--body-text-color-subdued); }
a.lq-cite { font-weight: 600; text-decoration: none; color: #b91c1c; padding: 0 .1em; border-radius: 3px; cursor: pointer; }
a.lq-cite:hover { background: #fde68a; }
#lq-sources { max-height: 720px; overflow-y: auto; }
.lq-sources h3 { margin: .2rem 0; font-size: 1.05rem; }
.lq-sources .lq-for { margin: 0 0 .5rem 0; color: var(--body-text-color-subdued); font-size: .9em; }
.lq-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .55rem .7rem; margin: 0 0 .6rem 0; }
.lq-source header { display: flex; gap: .4rem; align-items: baseline; font-size: .9em; font-weight: 600; }
.lq-source .lq-where { flex: 1; }
.lq-source .lq-n { color: #b91c1c; }
.lq-source .lq-score, .lq-source .lq-rank { font-weight: 400; color: var(--body-text-color-subdued); white-space: nowrap; }
.lq-source .lq-text { white-space: pre-line; margin: .35rem 0; font-size: .92em; line-height: 1.45; }
.lq-source .lq-meta { font-size: .75em; color: var(--body-text-color-subdued); }
mark.lq-quote { background: #fde68a; color: inherit; padding: 0 .1em; border-radius: 2px; }
.lq-source.lq-hover, .lq-source.lq-flash { border-color: #b91c1c; box-shadow: 0 0 0 2px #fca5a5; }
.lq-source.lq-flash { animation: lq-flash 1.6s ease-out; }
@keyframes lq-flash { from { background: #fef3c7; } to { background: transparent; } }
.lq-notcovered h3 { color: #9a3412; }
.lq-notcovered .lq-note { border-left: 4px solid #f97316; padding: .3rem .6rem; background: rgba(249,115,22,.08); }
.lq-source.lq-closest { border-style: dashed; opacity: .85; }
.lq-source.lq-other { opacity: .85; }
details.lq-more, details.lq-earlier { margin-top: .4rem; }
details.lq-more summary, details.lq-earlier summary { cursor: pointer; font-size: .9em; color: var(--body-text-color-subdued); }
.lq-status { margin: 0; font-size: .9em; }
.lq-lib-intro { margin: .2rem 0 .6rem 0; color: var(--body-text-color-subdued); }
.lq-lib-report ul { margin: .2rem 0 .4rem 1.2rem; font-size: .9em; }
.lq-skipped { border-left: 4px solid #f97316; padding: .2rem .6rem; background: rgba(249,115,22,.08); }
.lq-lib-size { font-size: .85em; color: var(--body-text-color-subdued); margin: .2rem 0; }
"""
