"""The retrain's variant questions: wrong subject, false premise, pronoun follow-up, sloppy and keyword."""

from __future__ import annotations

import random

from leftqa.train.pairs import Pair, make_pairs
from leftqa.train.variants import (
    KINDS,
    article_names,
    as_followup,
    keywords,
    pronoun_for,
    sloppy,
    swap_subject,
    swap_year,
    variant_pairs,
)

HARBOUR = (
    "The Harbour Committee was led by Marta Quell. She organised the first public meeting in 1841. "
    "The breakwater was finished in 1840."
)
GUILD = "Hester Vane led the Weavers Guild after 1902. She was born in Leeds. The guild met in the Corn Exchange."


def _article() -> dict:
    def q(qid: str, question: str, answer: str, context: str) -> dict:
        return {"id": qid, "question": question, "is_impossible": False,
                "answers": [{"text": answer, "answer_start": context.index(answer)}]}  # fmt: skip

    return {"title": "Fenwick", "paragraphs": [
        {"context": HARBOUR, "qas": [q("a", "Who did Marta Quell organise the meeting with?", "first public meeting", HARBOUR),
                                     q("b", "When was the breakwater finished?", "1840", HARBOUR),
                                     q("c", "What did Marta Quell lead?", "Harbour Committee", HARBOUR)]},
        {"context": GUILD, "qas": [q("d", "Where was Hester Vane born?", "Leeds", GUILD)]},
    ]}  # fmt: skip


def test_article_names_skip_months_demonyms_and_words_also_written_in_lower_case() -> None:
    texts = ["Marta Quell met Italian traders in March. The Harbour was old.", "The harbour froze. Hester Vane left."]
    assert article_names(texts) == ["Marta Quell", "Hester Vane"]


def test_swap_subject_puts_in_a_name_of_the_article_the_paragraph_never_mentions() -> None:
    out = swap_subject("What did Marta Quell lead?", HARBOUR, ["Marta Quell", "Hester Vane", "Leeds"], random.Random(0))
    assert out == ("What did Hester Vane lead?", "Marta Quell", "Hester Vane")
    assert swap_subject("What did Marta Quell lead?", HARBOUR, ["Harbour Committee"], random.Random(0)) is None


def test_swap_year_changes_a_year_the_answer_gives_to_one_the_paragraph_never_gives() -> None:
    q = "What was finished in 1840?"
    assert swap_year(q, "The breakwater was finished in 1840.", HARBOUR, ["1840", "1841", "1902"], random.Random(0)) == "What was finished in 1902?"
    # No year of the answer sentence in the question: no false premise to make.
    assert swap_year("What was finished?", "The breakwater was finished in 1840.", HARBOUR, ["1902"], random.Random(0)) is None


def test_follow_up_pronoun_follows_the_paragraph_and_the_position_of_the_name() -> None:
    assert pronoun_for(GUILD) == ("she", "her", "her")
    assert pronoun_for("He wrote. His book sold.") == ("he", "him", "his")
    assert pronoun_for("The guild met.") == ("it", "it", "its")
    assert as_followup("Where was Hester Vane born?", "Hester Vane", GUILD) == "Where was she born?"
    assert as_followup("What did Hester Vane's guild do?", "Hester Vane", GUILD) == "What did her guild do?"
    assert as_followup("Who worked with Hester Vane?", "Hester Vane", GUILD) == "Who worked with her?"
    assert as_followup("Who trained Hester Vane?", "Hester Vane", GUILD) == "Who trained her?"
    assert as_followup("Hester Vane led what?", "Hester Vane", GUILD) == "She led what?"
    # A name inside another word is not the name: "B" of "R&B" is no subject of "Besides".
    assert as_followup("Besides R&B, what did Beyonce sing?", "B", GUILD) is None


def test_typed_styles_keep_the_question_words() -> None:
    assert sloppy("When was the Breakwater finished?", random.Random(0)) == "when was the breakwater finished"
    assert sloppy("When was the Breakwater finished?", random.Random(1)) == "when was the brekawater finished"  # a typo
    assert sloppy("Who organised the meeting?", random.Random(4)) == "who organiesd the meeting"
    assert keywords("When was the breakwater finished?") == "breakwater finished"


def test_variant_pairs_label_wrong_subject_and_false_premise_unanswerable_and_keep_other_labels() -> None:
    article = _article()
    asked = {p.question for p in make_pairs([article], 0) if p.label > 0}
    counts: dict[str, int] = {}
    pairs = list(variant_pairs([article], asked, 1.0, 3, first_group=100, counts=counts))
    groups: dict[int, list[Pair]] = {}
    for p in pairs:
        groups.setdefault(p.group, []).append(p)
    # One variant a question, each with its answer sentence first and the two best-overlap sentences of its paragraph.
    assert [(g[0].question, [p.label for p in g]) for g in groups.values()] == [
        ("Who did Corn Exchange organise the meeting with?", [0.0, 0.0, 0.0]),  # wrong subject: nothing answers
        ("when was the breakwater finished", [1.0, 0.0, 0.0]),
        ("Who did Marta Quell organise the meeting with? What did she lead?", [1.0, 0.0, 0.0]),  # read after the earlier turn
        ("Where was Harbour Committee born?", [0.0, 0.0, 0.0]),
    ]
    assert sorted(groups) == [100, 101, 102, 103] and counts == {"wrong-subject": 2, "style": 1, "followup": 1}
    assert [p.sentence for p in groups[102]][0] == "The Harbour Committee was led by Marta Quell."
    # A share of 0 makes nothing; a question not among those asked is never varied.
    assert list(variant_pairs([article], asked, 0.0, 3, first_group=100)) == []
    assert list(variant_pairs([article], set(), 1.0, 3, first_group=100)) == []


def test_a_year_of_the_answer_becomes_a_false_premise() -> None:
    context = "The breakwater was finished in 1840. The pier followed in 1852. Storms came."
    article = {"title": "Pier", "paragraphs": [
        {"context": context, "qas": [{"id": "y", "question": "What was finished in 1840?", "is_impossible": False,
                                      "answers": [{"text": "breakwater", "answer_start": 4}]}]},
        {"context": "Nothing happened in 1901. Or in 1902.", "qas": []},
    ]}  # fmt: skip
    kinds = [next(iter(c)) for seed in range(12) if (c := {}) is not None
             and list(variant_pairs([article], {"What was finished in 1840?"}, 1.0, seed, 0, counts=c))]  # fmt: skip
    # No name to swap or turn into a pronoun, and a style variant only when no other kind can be made.
    assert set(kinds) == {"false-premise"}
    made = {p.question: p.label for seed in range(12) for p in variant_pairs([article], {"What was finished in 1840?"}, 1.0, seed, 0)
            if p.sentence.startswith("The breakwater")}  # fmt: skip
    premises = {q: label for q, label in made.items() if "190" in q}
    assert premises and set(premises) <= {"What was finished in 1901?", "What was finished in 1902?"}
    assert set(premises.values()) == {0.0}
