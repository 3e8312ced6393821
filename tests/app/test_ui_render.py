"""The chat UI's rendering and wiring without a server: escaping, markers, highlights, conversation state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pytest

from leftqa.app.ui import Conversation, record_feedback, reload_index, render_answer, render_sources, respond
from leftqa.config import Settings
from leftqa.errors import IndexMissingError, QuestionError
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
