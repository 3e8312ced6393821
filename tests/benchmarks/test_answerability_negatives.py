"""The wrong-subject ("swapped") question generator of benchmarks/answerability_negatives.py."""

from __future__ import annotations

import importlib.util
import random
import sys

from conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "answerability_negatives", REPO_ROOT / "benchmarks" / "answerability_negatives.py"
)
assert _spec is not None and _spec.loader is not None
neg = importlib.util.module_from_spec(_spec)
sys.modules["answerability_negatives"] = neg
_spec.loader.exec_module(neg)

LOVELACE = (
    "Ada Lovelace wrote the first published notes on programming a machine. In 1843 Lovelace translated an "
    "article by Luigi Menabrea and added notes of her own."
)
BABBAGE = (
    "Charles Babbage designed the Analytical Engine in London. The Royal Society honoured Babbage in 1824, and "
    "the machine was never finished in January of any year."
)


def test_swapped_question_names_someone_of_the_article_that_its_paragraph_does_not() -> None:
    candidates = neg.article_names([LOVELACE, BABBAGE])
    assert "Charles Babbage" in candidates and "January" not in candidates
    for seed in range(10):
        out = neg.swap_subject("What did Ada Lovelace translate in 1843?", LOVELACE, candidates, random.Random(seed))
        assert out is not None
        question, old, new = out
        assert old == "Ada Lovelace" and question == f"What did {new} translate in 1843?"
        assert new in candidates and len(new.split()) == 2
        assert not any(w.lower() in LOVELACE.lower() for w in new.split())  # absent from its own paragraph


def test_questions_without_a_swappable_name_are_skipped() -> None:
    candidates = neg.article_names([LOVELACE, BABBAGE])
    rng = random.Random(0)
    assert neg.swap_subject("What did she translate in 1843?", LOVELACE, candidates, rng) is None  # no name
    # Its name is not in its paragraph, so it is not the paragraph's subject.
    assert neg.swap_subject("Where did Charles Babbage work?", LOVELACE, candidates, rng) is None
    # Every other name of the article also occurs in the paragraph.
    assert neg.swap_subject("What did Ada Lovelace write?", LOVELACE, neg.article_names([LOVELACE]), rng) is None


def test_names_in_corpus_counts_the_names_the_vocabulary_lacks() -> None:
    class Vocab:
        def absent_names(self, question: str) -> list[str]:
            return ["Karl Kautsky"] if "Karl Kautsky" in question else []

    assert neg.names_in_corpus(Vocab(), "Did Karl Kautsky meet Rosa Luxemburg?") == 0.5
    assert neg.names_in_corpus(Vocab(), "When was the party founded?") == 1.0
