"""The chat UI's HTML without gradio: escaping, markers, highlights, the sources panel, the Library's table and reports."""

from __future__ import annotations

from typing import Sequence

import pytest

from leftqa.app.library import DocumentRow, LibraryReport, Placed, Skipped
from leftqa.app.render import (
    LIBRARY_COLUMNS, esc, library_table, render_answer, render_library_report, render_sources, user_bubble,
)  # fmt: skip
from leftqa.records import Answer, Citation, Hit

EVIL = '<script>alert(1)</script><img src=x onerror=alert(1)>"'


def hit(rank: int, pid: str, text: str, title: str = "Doc", section: str = "Part") -> Hit:
    return Hit(rank=rank, passage_id=pid, doc_id="doc.txt", title=title, section=section, text=text, score=1 / rank, start=0, end=len(text))


def cite(n: int, pid: str, quote: str, highlights: tuple[tuple[int, int], ...], title: str = "Doc") -> Citation:
    return Citation(n=n, passage_id=pid, doc_id="doc.txt", title=title, section="Part", start=0, end=len(quote), quote=quote, highlights=highlights, score=0.5)


def answer(text: str, citations: Sequence[Citation] = (), passages: Sequence[Hit] = (), question: str = "Q?", query: str | None = None, abstained: bool = False) -> Answer:
    return Answer(question=question, query=query or question, abstained=abstained, answer=text, citations=tuple(citations), passages=tuple(passages), mode="hybrid")


def test_answer_text_is_escaped_and_markers_link_to_their_sources() -> None:
    c = cite(1, "p1", "A <b>bold</b> claim.", ((0, 20),), title=EVIL)
    out = render_answer(answer("A <b>bold</b> claim. [1] Not a marker: [7] or x[1].", [c]), turn=3)
    assert out.startswith('<p class="lq-answer">A &lt;b&gt;bold&lt;/b&gt; claim. <a class="lq-cite" href="#lq-src-3-1" title="[1] ')
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;" in out  # title attribute
    assert out.endswith("</a> Not a marker: [7] or x[1].</p>")
    assert out.count("<a ") == 1 and "<b>" not in out and "<script" not in out and "<img" not in out


@pytest.mark.parametrize(
    ("question", "query", "shown"),
    [("Q?", "Q?", None), ("And then?", "And then? (Antwerp <Group>)", "Searched for: <q>And then? (Antwerp &lt;Group&gt;)</q>")],
)
def test_searched_for_appears_only_when_the_query_differs(question: str, query: str, shown: str | None) -> None:
    out = render_answer(answer("x. [1]", [cite(1, "p", "x.", ((0, 2),))], question=question, query=query), turn=1)
    assert ("Searched for" in out) == (shown is not None)
    if shown:
        assert shown in out


def test_abstention_says_not_in_the_corpus_and_shows_closest_material() -> None:
    passages = [hit(i, f"p{i}", f"text {i} {EVIL}") for i in range(1, 6)]
    a = answer("The corpus does not seem to cover this question.", passages=passages, question=EVIL, abstained=True)
    bubble = render_answer(a, turn=1)
    assert "<strong>Not in the corpus.</strong>" in bubble and "lq-cite" not in bubble
    panel = render_sources([(1, a)])
    assert "Closest material — not an answer" in panel
    head, more = panel.split('<details class="lq-more">')
    assert [f"#{i}<" in head for i in range(1, 6)] == [True, True, True, False, False]
    assert "More retrieved passages (2)" in more and "#4<" in more and "#5<" in more
    assert "<script" not in panel and "<img" not in panel and "&lt;script&gt;" in panel


def test_sources_highlight_the_quoted_sentences_and_collapse_the_rest() -> None:
    text = "One <i>. Two & two. Three."
    a = answer(
        "Two & two. [1]",
        [cite(1, "p1", "Two & two.", ((9, 19),), title="T <1>")],
        [hit(1, "p1", text), hit(2, "p2", "Other passage.")],
    )
    panel = render_sources([(1, a)])
    assert '<article class="lq-source lq-cited" id="lq-src-1-1">' in panel
    assert 'One &lt;i&gt;. <mark class="lq-quote">Two &amp; two.</mark> Three.' in panel
    assert "T &lt;1&gt; › Part" in panel and "score 0.500" in panel
    assert '<details class="lq-more"><summary>Other retrieved passages (1)</summary>' in panel
    assert panel.index("Other passage.") > panel.index("<details")


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        (((4, 8), (0, 3)), '<mark class="lq-quote">abc</mark> <mark class="lq-quote">defg</mark> hij'),
        (((0, 6), (4, 8)), '<mark class="lq-quote">abc de</mark><mark class="lq-quote">fg</mark> hij'),
        (((-5, 2), (9, 99)), '<mark class="lq-quote">ab</mark>c defg <mark class="lq-quote">hij</mark>'),
    ],
)
def test_highlight_offsets_are_sorted_merged_and_clipped(spans: tuple[tuple[int, int], ...], expected: str) -> None:
    a = answer("x [1]", [cite(1, "p1", "abc", spans)], [hit(1, "p1", "abc defg hij")])
    assert f'<p class="lq-text">{expected}</p>' in render_sources([(1, a)])


def test_a_cited_passage_outside_the_ranked_list_still_shows_its_quote() -> None:
    a = answer("Q <x>. [1]", [cite(1, "gone", "Q <x>.", ((0, 6),))], [hit(1, "p1", "Unrelated.")])
    assert '<p class="lq-text"><mark class="lq-quote">Q &lt;x&gt;.</mark></p>' in render_sources([(1, a)])


def test_earlier_answers_keep_their_sources_so_old_markers_resolve() -> None:
    a1 = answer("A. [1]", [cite(1, "p1", "A.", ((0, 2),))], [hit(1, "p1", "A.")], question="first?")
    a2 = answer("B. [1]", [cite(1, "p2", "B.", ((0, 2),))], [hit(1, "p2", "B.")], question="second?")
    panel = render_sources([(1, a1), (2, a2)])
    current, earlier = panel.split('<details class="lq-earlier">')
    assert 'id="lq-src-2-1"' in current and 'id="lq-src-1-1"' in earlier and "Sources of earlier answers (1)" in earlier


def test_esc_escapes_markup_and_both_quotes() -> None:
    assert esc(EVIL) == "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;"
    assert esc("it's") == "it&#x27;s" and esc(3) == "3"


def test_a_question_bubble_collapses_whitespace_and_is_cut_after_300_characters() -> None:
    assert user_bubble(" a \n\t<b>  ") == {"role": "user", "content": '<span class="lq-q">a &lt;b&gt;</span>'}
    long = user_bubble("x" * 301)["content"]
    assert long == '<span class="lq-q">' + "x" * 300 + "…</span>"
    assert user_bubble("x" * 300)["content"] == '<span class="lq-q">' + "x" * 300 + "</span>"


def test_no_answer_yet_shows_where_sources_will_appear() -> None:
    assert render_sources(()) == (
        '<div class="lq-sources lq-empty"><p>Sources appear here: every quoted sentence is highlighted in its passage.</p></div>'
    )


def test_library_rows_follow_the_columns_and_stay_plain_text() -> None:
    row = DocumentRow(doc_id="web/a.html", title=EVIL, file="a.html", format="html", passages=3, source="https://e.org/a", added="2026-01-01")
    assert library_table([row]) == [[EVIL, "a.html", "html", 3, "https://e.org/a", "2026-01-01"]]  # the table escapes
    assert LIBRARY_COLUMNS == ("title", "file", "format", "passages", "source", "added")


def test_library_report_lists_placed_removed_and_skipped_files_escaped() -> None:
    assert render_library_report(None).startswith('<p class="lq-status">Add files or a web address')
    report = LibraryReport(
        action="add_sources", ok=True, message="Index updated <now>", placed=(Placed(source="x", dest="a<b>.txt", status="added"),),
        removed="old.txt", skipped=(Skipped(file=EVIL, reason="empty file, skipped"),), documents=2, passages=14,
    )  # fmt: skip
    out = render_library_report(report)
    assert out.startswith('<div class="lq-lib-report"><p class="lq-status">Index updated &lt;now&gt;</p>')
    assert '<ul class="lq-placed"><li>added: a&lt;b&gt;.txt</li></ul>' in out
    assert '<p class="lq-removed">Removed old.txt.</p>' in out
    assert '<div class="lq-skipped"><p>Skipped (1):</p><ul><li><strong>&lt;script&gt;' in out and "<script" not in out
    assert out.endswith('<p class="lq-lib-size">The chat now answers from 2 documents, 14 passages.</p></div>')


def test_a_failed_library_change_is_shown_as_an_error() -> None:
    out = render_library_report(LibraryReport(action="remove_source", ok=False, message="no such document", documents=2, passages=14))
    assert out == (
        '<div class="lq-lib-report"><p class="lq-status lq-error">no such document</p>'
        '<p class="lq-lib-size">The chat still answers from 2 documents, 14 passages.</p></div>'
    )
