"""HTML of the chat UI: answer bubbles, the sources panel, the Library's table and reports (pure; no gradio here).

Every text from the corpus, a question or a report is escaped before it joins the markup."""

from __future__ import annotations

import html
import re
from typing import Any, Sequence

from leftqa.app.library import DocumentRow, LibraryReport
from leftqa.records import Answer, Citation, Hit

_MARKER = re.compile(r"(?<!\S)\[(\d+)\](?!\S)")
_SHOWN_QUESTION_CHARS = 300
LIBRARY_COLUMNS = ("title", "file", "format", "passages", "source", "added")


def esc(text: object) -> str:
    """`text` as HTML text or attribute value (quotes escaped too)."""
    return html.escape(str(text), quote=True)


def _source_id(turn: int, n: int) -> str:
    return f"lq-src-{turn}-{n}"


def _cite_link(c: Citation, turn: int) -> str:
    tip = f"[{c.n}] {c.title} › {c.section}: {c.quote[:240]}{'…' if len(c.quote) > 240 else ''}"
    return f'<a class="lq-cite" href="#{_source_id(turn, c.n)}" title="{esc(tip)}">[{c.n}]</a>'


def render_answer(a: Answer, turn: int) -> str:
    """The chat bubble for an answer: escaped text, [n] markers linked to their sources, abstention spelled out."""
    parts = []
    if a.query != a.question:
        parts.append(f'<p class="lq-searched">Searched for: <q>{esc(a.query)}</q></p>')
    if a.abstained:
        parts.append(f'<p class="lq-abstain"><strong>Not in the corpus.</strong> {esc(a.answer)}</p>')
        parts.append('<p class="lq-hint">The nearest passages are listed under “Closest material”; they are not an answer.</p>')
        return "".join(parts)
    by_n = {c.n: c for c in a.citations}
    out, pos = [], 0
    for m in _MARKER.finditer(a.answer):
        c = by_n.get(int(m.group(1)))
        if c is not None:
            out += [esc(a.answer[pos : m.start()]), _cite_link(c, turn)]
            pos = m.end()
    out.append(esc(a.answer[pos:]))
    parts.append(f'<p class="lq-answer">{"".join(out)}</p>')
    return "".join(parts)


def _highlighted(text: str, spans: Sequence[Sequence[int]]) -> str:
    out, pos = [], 0
    for start, end in sorted((max(0, int(s)), min(len(text), int(e))) for s, e in spans):
        if end <= pos:
            continue
        start = max(start, pos)
        out += [esc(text[pos:start]), f'<mark class="lq-quote">{esc(text[start:end])}</mark>']
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def _cited_card(c: Citation, hits: dict[str, Hit], turn: int) -> str:
    hit = hits.get(c.passage_id)
    # The cited passage normally is among the ranked hits; if not, its quoted sentences still show verbatim.
    body = _highlighted(hit.text, c.highlights) if hit else f'<mark class="lq-quote">{esc(c.quote)}</mark>'
    page = f", p. {esc(c.page)}" if c.page else ""
    origin = f" · from {esc(c.source)}" if c.source else ""  # shown as text, never a live link
    return (
        f'<article class="lq-source lq-cited" id="{_source_id(turn, c.n)}">'
        f'<header><span class="lq-n">[{c.n}]</span> <span class="lq-where">{esc(c.title)} › {esc(c.section)}</span>'
        f'<span class="lq-score" title="retrieval score">score {c.score:.3f}</span></header>'
        f'<p class="lq-text">{body}</p>'
        f'<footer class="lq-meta">{esc(c.doc_id)}{page} · characters {c.start}–{c.end} · passage {esc(c.passage_id)}{origin}</footer>'
        "</article>"
    )


def _hit_card(h: Hit, kind: str) -> str:
    return (
        f'<article class="lq-source {kind}">'
        f'<header><span class="lq-rank">#{h.rank}</span> <span class="lq-where">{esc(h.title)} › {esc(h.section)}</span>'
        f'<span class="lq-score" title="retrieval score">score {h.score:.3f}</span></header>'
        f'<p class="lq-text">{esc(h.text)}</p></article>'
    )


def _current(a: Answer, turn: int) -> str:
    if a.abstained:
        shown, rest = a.passages[:3], a.passages[3:]
        more = "".join(_hit_card(h, "lq-closest") for h in rest)
        return (
            '<section class="lq-turn lq-notcovered"><h3>Closest material — not an answer</h3>'
            f'<p class="lq-note">The corpus does not seem to cover <q>{esc(a.question)}</q>. These are the nearest '
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
        f'<section class="lq-turn"><h3>Sources</h3><p class="lq-for">for <q>{esc(a.question)}</q></p>'
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
        f'<div class="lq-earlier-turn"><p class="lq-for"><q>{esc(a.question)}</q></p>'
        + "".join(_cited_card(c, {h.passage_id: h for h in a.passages}, t) for c in a.citations)
        + "</div>"
        for t, a in reversed(answers[:-1])
        if a.citations
    ]
    tail = f'<details class="lq-earlier"><summary>Sources of earlier answers ({len(earlier)})</summary>{"".join(earlier)}</details>' if earlier else ""
    return f'<div class="lq-sources">{_current(latest, turn)}{tail}</div>'


def user_bubble(question: str) -> dict[str, str]:
    """The chat bubble for a question: whitespace collapsed, cut after a few hundred characters, escaped."""
    shown = " ".join(question.split())
    if len(shown) > _SHOWN_QUESTION_CHARS:
        shown = shown[:_SHOWN_QUESTION_CHARS] + "…"
    return {"role": "user", "content": f'<span class="lq-q">{esc(shown)}</span>'}


def library_table(rows: Sequence[DocumentRow]) -> list[list[Any]]:
    """The Library table's rows: one per document, in LIBRARY_COLUMNS order (plain text; the table escapes it)."""
    return [[r.title, r.file, r.format, r.passages, r.source, r.added] for r in rows]


def render_library_report(report: LibraryReport | None) -> str:
    """The Library's status line after a change: what happened, files added, and each skipped file with its reason."""
    if report is None:
        return '<p class="lq-status">Add files or a web address; each change updates the index while the chat keeps answering.</p>'
    kind = "lq-status" if report.ok else "lq-status lq-error"
    parts = [f'<p class="{kind}">{esc(report.message)}</p>']
    if report.placed:
        items = "".join(f"<li>{esc(p.status)}: {esc(p.dest)}</li>" for p in report.placed)
        parts.append(f'<ul class="lq-placed">{items}</ul>')
    if report.removed:
        parts.append(f'<p class="lq-removed">Removed {esc(report.removed)}.</p>')
    if report.skipped:
        items = "".join(f"<li><strong>{esc(s.file)}</strong>: {esc(s.reason)}</li>" for s in report.skipped)
        parts.append(f'<div class="lq-skipped"><p>Skipped ({len(report.skipped)}):</p><ul>{items}</ul></div>')
    size = f"{report.documents} documents, {report.passages} passages"
    parts.append(f'<p class="lq-lib-size">The chat {"now" if report.ok else "still"} answers from {size}.</p>')
    return '<div class="lq-lib-report">' + "".join(parts) + "</div>"
