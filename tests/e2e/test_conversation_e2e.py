"""End to end on the real model and corpus: answers, answer types, two- and three-turn conversations, abstention."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def _cited_text(answer) -> str:  # noqa: ANN001
    return " ".join(c.quote for c in answer.citations)


def test_when_question_quotes_the_sentence_with_the_year_first(real_assistant) -> None:  # noqa: ANN001
    a = real_assistant.ask("When did Emma Goldman die?")
    assert not a.abstained
    assert a.answer.startswith("Emma Goldman remained critical")
    assert "1940" in a.answer.split("[1]")[0]


def test_two_turns_antwerp_group_then_spain(real_assistant) -> None:  # noqa: ANN001
    history = ["Who led the Antwerp Group?"]
    first = real_assistant.ask(history[0])
    assert "Hermann Knüfken" in first.answer
    second = real_assistant.ask("What did they do in Spain?", history)
    assert second.query != second.question  # the follow-up was resolved against the conversation
    assert "Antwerp Group" in second.query
    assert "This group sent fighters to Spain" in second.answer
    assert "Durruti Column" in _cited_text(second)


def test_three_turns_keep_the_topic(real_assistant) -> None:  # noqa: ANN001
    history = ["Who led the Antwerp Group?", "What did they do in Spain?"]
    third = real_assistant.ask("Why were they expelled?", history)
    assert not third.abstained
    assert "Hans Beimler" in third.answer
    assert "political differences" in third.answer


def test_pronoun_follow_up_about_a_person(real_assistant) -> None:  # noqa: ANN001
    a = real_assistant.ask("When did she die?", ["What did Emma Goldman think of Lenin?"])
    assert "Emma Goldman" in a.query
    assert "1940" in a.answer


def test_standalone_question_in_a_conversation_is_not_rewritten(real_assistant) -> None:  # noqa: ANN001
    a = real_assistant.ask("When was Trotsky exiled?", ["Who led the Antwerp Group?"])
    assert a.query == "When was Trotsky exiled?"
    assert "February 1929" in a.answer


def test_follow_up_retrieves_the_conversation_topic(real_assistant) -> None:  # noqa: ANN001
    followed = real_assistant.ask("Who were most of its victims?", ["When did the Great Purge take place?"])
    assert "Great Purge" in followed.query
    assert "A majority of those targeted were peasants and minorities" in followed.passages[0].text


@pytest.mark.parametrize("question", ["How do I reverse a list in Python?", "What is the capital of Australia?"])
def test_off_topic_questions_are_abstained_on(real_assistant, question: str) -> None:  # noqa: ANN001
    a = real_assistant.ask(question)
    assert a.abstained
    assert a.citations == ()
    assert a.passages  # closest material is still listed


def test_dangling_quote_introductions_are_not_answers(real_assistant) -> None:  # noqa: ANN001
    a = real_assistant.ask("What did Daniel Bell say about Kronstadt?")
    assert not a.answer.startswith("The American anti-Stalinist socialist Daniel Bell later said:")
