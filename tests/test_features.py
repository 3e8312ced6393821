"""Answer-type detection, type matching and IDF-weighted coverage."""

from __future__ import annotations

import math

import pytest

from leftqa.features import QueryTerms, answer_type, idf, type_match


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did Emma Goldman die?", "date"),
        ("In what year was the centre founded?", "date"),
        ("How many people died in the Great Purge?", "number"),
        ("Who led the Antwerp Group?", "person"),
        ("Which historian described the transformation?", "person"),
        ("Where did the group send fighters?", "place"),
        ("Which country did they fight in?", "place"),
        ("Which book did George Orwell write?", "title"),
        ("What was the Kronstadt rebellion?", "other"),
        ("Why did Trotsky oppose Stalin?", "other"),
    ],
)
def test_answer_type(question: str, kind: str) -> None:
    assert answer_type(question) == kind


@pytest.mark.parametrize(
    ("kind", "sentence", "question", "expected"),
    [
        ("date", "She remained critical until her death in 1940.", "When did Emma Goldman die?", 1.0),
        ("date", "She remained critical of Stalin.", "When did Emma Goldman die?", 0.0),
        ("date", "It was founded in 1932.", "What happened in 1932?", 0.0),  # the question's own year is no answer
        ("number", "Casualties ranged from 600,000 to over 1 million people.", "How many died?", 1.0),
        ("number", "Casualties were high.", "How many died?", 0.0),
        ("person", "The group was led by Hermann Knüfken.", "Who led the Antwerp Group?", 1.0),
        ("person", "The Antwerp Group was active.", "Who led the Antwerp Group?", 0.0),
        ("title", 'He wrote the book "Homage to Catalonia" in Spain.', "Which book did he write?", 1.0),
        ("other", "Anything at all in 1940.", "What was it?", 0.0),
    ],
)
def test_type_match(kind: str, sentence: str, question: str, expected: float) -> None:
    assert type_match(kind, sentence, question) == expected


def test_idf_rare_terms_weigh_more() -> None:
    df = {"stalin": 9, "knufken": 1}
    assert idf(df, 10, "stalin") == pytest.approx(math.log(11 / 9.5))
    assert idf(df, 10, "knufken") == pytest.approx(math.log(11 / 1.5))
    assert idf(df, 10, "unseen") == pytest.approx(math.log(11 / 0.5))


def test_coverage_and_bigrams() -> None:
    df = {"antwerp": 1, "group": 3, "led": 5}
    qt = QueryTerms.build(["led", "antwerp", "group"], df, 10)
    w = qt.weights
    assert qt.coverage({"antwerp", "group"}) == pytest.approx((w["antwerp"] + w["group"]) / (w["led"] + w["antwerp"] + w["group"]))
    assert qt.coverage(set()) == 0.0
    assert qt.bigram_share(["the", "antwerp", "group"]) == 0.5
    assert qt.matched({"group", "other"}) == frozenset({"group"})


def test_context_terms_weigh_less_than_question_terms() -> None:
    df = {"spain": 2, "antwerp": 2}
    qt = QueryTerms.build(["spain"], df, 10, context=["antwerp", "spain"], context_weight=0.5)
    assert qt.terms == ("spain", "antwerp")
    assert qt.weights["antwerp"] == pytest.approx(0.5 * qt.weights["spain"])
    assert qt.bigrams == frozenset()
