"""Eval metric functions on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from leftqa.evals import metrics as m

LOG3 = math.log2(3)  # discount of rank 2
LOG4 = 2.0  # discount of rank 3


@pytest.mark.parametrize(
    ("text", "evidence", "expected"),
    [
        ("Trotsky was exiled in 1929.", ["exiled in 1929"], True),
        ("Trotsky was EXILED   in\n1929.", ["exiled in 1929"], True),  # case and whitespace
        ("the party’s Left Opposition", ["the party's left opposition"], True),  # curly quote
        ("from 1924 – 1953", ["1924 - 1953"], True),  # en dash
        ("Trotsky was exiled in 1929.", ["exiled in 1930", "Trotsky was"], True),  # any snippet
        ("Trotsky was exiled in 1929.", ["exiled in 1930"], False),
        ("Trotsky was exiled in 1929.", [], False),
        ("Trotsky was exiled in 1929.", [""], False),  # an empty snippet never matches everything
    ],
)
def test_is_relevant(text: str, evidence: list[str], expected: bool) -> None:
    assert m.is_relevant(text, evidence) is expected


def test_relevant_ranks_are_one_based_positions_of_matching_texts() -> None:
    texts = ["nothing here", "Emma Goldman died in 1940", "also nothing", "Goldman DIED in 1940 in Toronto"]
    assert m.relevant_ranks(texts, ["goldman died in 1940"]) == (2, 4)
    assert m.relevant_ranks(texts, ["Kronstadt"]) == ()


@pytest.mark.parametrize(
    ("ranks", "k", "expected"),
    [((1,), 1, 1.0), ((2,), 1, 0.0), ((2,), 3, 1.0), ((3, 7), 3, 1.0), ((4,), 3, 0.0), ((10,), 10, 1.0), ((11,), 10, 0.0), ((), 10, 0.0)],
)
def test_hit_at(ranks: tuple[int, ...], k: int, expected: float) -> None:
    assert m.hit_at(ranks, k) == expected


@pytest.mark.parametrize(
    ("ranks", "expected"),
    [((1,), 1.0), ((2,), 0.5), ((4, 2), 0.5), ((3, 9), 1 / 3), ((10,), 0.1), ((11,), 0.0), ((), 0.0)],
)
def test_reciprocal_rank_at_10(ranks: tuple[int, ...], expected: float) -> None:
    assert m.reciprocal_rank(ranks, 10) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("ranks", "n_relevant", "expected"),
    [
        ((1,), 1, 1.0),
        ((2,), 1, 1 / LOG3),
        ((1, 3), 2, (1 + 1 / LOG4) / (1 + 1 / LOG3)),
        ((3,), 2, (1 / LOG4) / (1 + 1 / LOG3)),
        ((1, 2), 2, 1.0),
        ((1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 12, 1.0),  # the ideal list is cut at k as well
        ((2,), 3, (1 / LOG3) / (1 + 1 / LOG3 + 1 / LOG4)),
        ((11,), 1, 0.0),
        ((), 2, 0.0),
        ((1,), 0, 0.0),  # no relevant passage: nothing to normalise by
    ],
)
def test_ndcg_at_10_binary(ranks: tuple[int, ...], n_relevant: int, expected: float) -> None:
    assert m.ndcg(ranks, n_relevant, 10) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("text", "answers", "expected"),
    [
        ("She died in Toronto in 1940. [1]", ["1940"], True),
        ("Led by the Trotskyist “Left Opposition”", ['left opposition"'], True),
        ("She died in Toronto in 1940.", ["1939", "Toronto"], True),
        ("She died in Toronto in 1940.", ["1939"], False),
        ("She died in Toronto in 1940.", [], False),
    ],
)
def test_contains_answer(text: str, answers: list[str], expected: bool) -> None:
    assert m.contains_answer(text, answers) is expected


@pytest.mark.parametrize(
    ("flags", "expected"), [([True, False, True, True], 0.75), ([False], 0.0), ([True], 1.0), ([], 0.0)]
)
def test_share(flags: list[bool], expected: float) -> None:
    assert m.share(flags) == expected


@pytest.mark.parametrize(("values", "expected"), [([1.0, 2.0, 6.0], 3.0), ([0.5], 0.5), ([], 0.0)])
def test_mean(values: list[float], expected: float) -> None:
    assert m.mean(values) == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([10.0, 20.0, 30.0, 40.0], 50, 25.0),
        ([40.0, 10.0, 30.0, 20.0], 50, 25.0),  # order does not matter
        ([10.0, 20.0, 30.0], 50, 20.0),
        ([10.0, 20.0, 30.0, 40.0, 50.0], 95, 48.0),  # position 3.8: 40 + 0.8 * 10
        ([10.0, 20.0], 100, 20.0),
        ([10.0, 20.0], 0, 10.0),
        ([7.0], 95, 7.0),
        ([], 50, 0.0),
    ],
)
def test_percentile_interpolates_linearly(values: list[float], q: float, expected: float) -> None:
    assert m.percentile(values, q) == pytest.approx(expected, abs=1e-12)
