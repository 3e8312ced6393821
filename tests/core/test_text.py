"""Lexical analysis: word tokens, stemmed content terms, normalisation."""

from __future__ import annotations

import pytest

from leftqa.text import is_stopword, normalise, points_back, stems, terms, with_context, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Stalin's rule", ["stalin", "rule"]),
        ("Stalin’s rule", ["stalin", "rule"]),  # typographic apostrophe
        ("Hermann Knüfken led it.", ["hermann", "knufken", "led", "it"]),  # accents folded
        ("Hermann Knufken led it.", ["hermann", "knufken", "led", "it"]),
        ("Marxism–Leninism", ["marxism", "leninism"]),
        ("don't", ["dont"]),
        ("U.S. in 1929", ["u", "s", "in", "1929"]),
        ("snake_case words", ["snake", "case", "words"]),  # underscores split tokens
        ("  ", []),
        ("", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Who led the Antwerp Group?", ["led", "antwerp", "group"]),
        ("When was Trotsky exiled?", ["trotski", "exil"]),
        ("the of and", []),
        ("Running runners ran", ["run", "runner", "ran"]),
    ],
)
def test_terms_drop_stop_and_question_words_and_stem(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


def test_normalise_unifies_quotes_dashes_space_and_case() -> None:
    assert normalise("  “Kronstadt”\u00a0moment —  ‘Stalin’s’\n") == "\"kronstadt\" moment - 'stalin's'"


def test_normalise_composes_unicode() -> None:
    assert normalise("Knu\u0308fken") == normalise("Knüfken") == "knüfken"


def test_stems_and_stopwords() -> None:
    assert stems(["exiled", "purges"]) == ["exil", "purg"]
    assert stems([]) == []
    assert is_stopword("Who") and is_stopword("the") and is_stopword("was")
    assert not is_stopword("Trotsky")


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("He also criticized the thesis.", True),
        ("These were described by Trotsky as tendencies.", True),
        ("However, once Trotsky was out of the way, Stalin turned.", True),
        ("“They were wrong,” she said.", True),
        ("The latter became a key issue.", True),
        ("Heavy rain fell.", False),  # "He" only as a word of its own
        ("Theirs is a long story.", False),
        ("Trotsky was exiled in 1929.", False),
    ],
)
def test_points_back(sentence: str, expected: bool) -> None:
    assert points_back(sentence) is expected


def test_with_context_adds_the_previous_sentence_only_to_one_that_points_back() -> None:
    assert with_context("She organised the meeting.", "Marta Quell led the committee.") == (
        "She organised the meeting. [SEP] Marta Quell led the committee."
    )
    assert with_context("Marta Quell led the committee.", "The town grew.") == "Marta Quell led the committee."
    assert with_context("She organised the meeting.", "") == "She organised the meeting."  # first of its passage
