"""Lexical analysis: word tokens, stemmed content terms, normalisation."""

from __future__ import annotations

import pytest

from leftqa.text import is_stopword, normalise, stems, terms, words


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
