"""Follow-up detection and query building (no LLM): standalone questions are never rewritten."""

from __future__ import annotations

import pytest

from leftqa.qa.followup import build_query, context_terms, names, needs_context


@pytest.mark.parametrize(
    "question",
    [
        "What did they do in Spain?",
        "When did she die?",
        "Who led it?",
        "And what about Bukharin?",
        "What about the Right Opposition?",
        "Why?",
        "When?",
        "Which war did he oppose?",
        "How did Stalin treat her legacy?",
        "What happened there?",
        "Which other party was banned?",  # contrast or addition presupposes what was said before
        "Was Kamenev expelled as well?",
        "Who else opposed the purges?",
    ],
)
def test_questions_that_lean_on_the_conversation(question: str) -> None:
    assert needs_context(question)


@pytest.mark.parametrize(
    "question",
    [
        "Who led the Antwerp Group?",
        "When was Trotsky exiled?",
        "What was the Kronstadt rebellion?",
        "How many people died in the Great Purge?",
        "Which historian wrote about the Antwerp Group?",
        "Which mothers of the town joined the Harbour Committee?",  # "other" inside a word is no cue
        "",
    ],
)
def test_standalone_questions(question: str) -> None:
    assert not needs_context(question)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Who led the Antwerp Group?", ["Antwerp Group"]),
        ("Illustrating the role, historian Jonathan Hyslop names Hermann Knüfken.", ["Jonathan Hyslop", "Hermann Knüfken"]),
        ("What was Rosa Luxemburg's main criticism?", ["Rosa Luxemburg"]),
        ("Another key figure was Louis Fischer. Bell said so.", ["Louis Fischer"]),
        ("A mural shows Trotsky with Marx and Engels and the Bolsheviks' leaders.", ["Trotsky", "Marx", "Engels", "Bolsheviks"]),
    ],
)
def test_names(text: str, expected: list[str]) -> None:
    assert names(text) == expected


def test_context_takes_question_names_and_words_then_two_answer_names() -> None:
    ctx = context_terms(
        "Who led the Antwerp Group?",
        ['The "Antwerp Group" of activists in the International Transport Workers\' Federation, led by Hermann Knüfken, met Jonathan Hyslop.'],
    )
    assert ctx == ["Antwerp Group", "led", "International Transport Workers' Federation", "Hermann Knüfken"]


def test_context_is_bounded() -> None:
    ctx = context_terms("Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa words here", [])
    assert len(ctx) <= 8


@pytest.mark.parametrize(
    ("question", "context", "expected"),
    [
        ("When did she die?", ["Emma Goldman"], "When did she die? (Emma Goldman)"),
        ("When did she die?", [], "When did she die?"),
        ("  Why?  ", ["Kronstadt", "rebellion"], "Why? (Kronstadt, rebellion)"),
    ],
)
def test_build_query(question: str, context: list[str], expected: str) -> None:
    assert build_query(question, context) == expected


LUXEMBURG = ["Rosa Luxemburg was heavily critical of the methods. Like Rosa Luxemburg, Emma Goldman was critical of Lenin."]


@pytest.mark.parametrize(
    ("question", "name", "typed"),
    [
        ("who was rosa luxemburg", "Rosa Luxemburg", "rosa luxemburg"),  # typed in lower case, found by the corpus's name
        ("What was Luxemburg critical of?", "Luxemburg", "Luxemburg"),  # a surname alone
        ("What did goldman think", "Emma Goldman", "goldman"),
    ],
)
def test_the_subject_is_what_the_user_typed_matched_to_the_corpus_names(question: str, name: str, typed: str) -> None:
    from leftqa.qa.followup import subject_of

    found = subject_of(question, LUXEMBURG)
    assert found is not None and (found.name, found.typed) == (name, typed)


def test_a_question_naming_nothing_the_corpus_names_has_no_subject() -> None:
    from leftqa.qa.followup import subject_of

    assert subject_of("what happened next", LUXEMBURG) is None


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When did she die?", "When did Rosa Luxemburg die?"),
        ("How did Stalin treat her legacy?", "How did Stalin treat Rosa Luxemburg's legacy?"),
        ("What did it say?", "Who was Rosa Luxemburg? What did it say?"),  # "it" is not the person: read after
        ("Why?", "Who was Rosa Luxemburg? Why?"),
        ("and Goldman?", "Who was Goldman?"),  # the previous question about the other name
    ],
)
def test_a_follow_up_is_rewritten_as_one_question(question: str, expected: str) -> None:
    from leftqa.qa.followup import rewrite, subject_of

    subject = subject_of("Who was Rosa Luxemburg?", LUXEMBURG)
    assert subject is not None
    assert rewrite(question, subject, "Who was Rosa Luxemburg?") == expected


def test_context_from_the_users_questions_only_has_no_answer_names_pronouns_or_repeats() -> None:
    previous = "What did she criticize? (Rosa Luxemburg, Bolsheviks)"
    answer = ["Rosa Luxemburg was heavily critical of the methods that Bolsheviks used in the October Revolution."]
    assert context_terms(previous, answer) == ["Rosa Luxemburg", "Bolsheviks", "she", "criticize", "October Revolution"]
    assert context_terms(previous, answer, questions_only=True) == ["Rosa Luxemburg", "Bolsheviks", "criticize"]
