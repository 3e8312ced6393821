"""Answer-type detection, type matching and IDF-weighted coverage."""

from __future__ import annotations

import math

import pytest

from leftqa.qa.features import QueryTerms, answer_type, idf, mid_sentence_names, name_coverage, type_match


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
        # The first wh-word is the focus: a later "when" opens a clause and asks for no date.
        ("Which revolt was the turning point when leftists split?", "other"),
        ("Who was the leader when the war began?", "person"),
        ("In which city was the congress held?", "place"),
        ("Since when has the archive existed?", "date"),
        ("During which years did the committee meet?", "date"),
        ("Over what period were they pushed out?", "date"),
        ("Did she stay in Russia when Stalin rose?", "other"),  # a yes/no question
        ("Name the founders.", "other"),
        ("How long did the rebellion last?", "duration"),
        ("How long ago did it happen?", "date"),
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
        # Lower-case particles join two capitalised words, never trail one: "One of the" names nobody.
        ("person", "One of the conflicts of the time was the Spanish Civil War.", "Who led the POUM in the Spanish Civil War?", 0.0),
        ("place", "The Chamber of Deputies met.", "Where did they meet?", 1.0),
        # A month is a date only next to a day or a year.
        ("date", "She criticised the October Revolution.", "When did she die?", 0.0),
        ("date", "The term may also refer to it.", "When was it coined?", 0.0),
        ("date", "He was exiled in February 1929.", "When was he exiled?", 1.0),
        ("date", "The city fell on 12 October.", "When did it fall?", 1.0),
        # A year after a preposition dates something and counts nothing.
        ("number", "The centre was founded in 1932.", "How many delegates attended?", 0.0),
        ("number", "There were 1500 delegates.", "How many delegates attended?", 1.0),
        ("duration", "The purge lasted from 1936 to 1938.", "How long did it last?", 1.0),
        ("duration", "The purge was a key moment.", "How long did it last?", 0.0),
    ],
)
def test_type_match(kind: str, sentence: str, question: str, expected: float) -> None:
    assert type_match(kind, sentence, question) == expected


@pytest.mark.parametrize(
    ("sentence", "known", "expected"),
    [
        ("Trotsky would become the most vocal critic.", frozenset({"Trotsky"}), 1.0),  # the passage names him mid-sentence
        ("Trotsky would become the most vocal critic.", frozenset(), 0.0),  # a lone first word could be any word
        ("Support for the latter became a key issue.", frozenset({"Trotsky"}), 0.0),
    ],
)
def test_a_capitalised_first_word_is_a_name_when_the_passage_says_so(sentence: str, known: frozenset[str], expected: float) -> None:
    assert type_match("person", sentence, "Who became the most vocal critic?", known) == expected


def test_mid_sentence_names_skip_sentence_openers() -> None:
    names = mid_sentence_names(["Support grew for Leon Trotsky in Mexico.", "Trotsky wrote."])
    assert names == frozenset({"Leon", "Trotsky", "Mexico"})


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


def _retrieval(kind: str):  # noqa: ANN202
    import numpy as np

    from leftqa.qa.retrieve import Retrieval

    qt = QueryTerms.build(["publish"], {"publish": 1}, 10)
    z = np.zeros(1, dtype=np.float32)
    return Retrieval("q", "hybrid", np.zeros(1, dtype=np.int64), z, z, z, z, z, qt, kind, ())


@pytest.mark.parametrize(
    ("kind", "quoted_type_ok", "other_type_ok", "found"),
    [
        ("date", 0.0, 1.0, 0.0),  # a date elsewhere in the top sentences does not answer "when"
        ("date", 1.0, 0.0, 1.0),
        ("person", 0.0, 1.0, 0.0),
        ("number", 1.0, 1.0, 1.0),
        ("other", 0.0, 0.0, 1.0),  # no strict type expected: always found
        ("title", 0.0, 0.0, 1.0),  # titles are detected too loosely to require
    ],
)
def test_type_found_reads_only_what_would_be_quoted(kind: str, quoted_type_ok: float, other_type_ok: float, found: float) -> None:
    from leftqa.qa.answer import Candidate, evidence
    from leftqa.qa.policy import forced_reason

    quoted = Candidate(0, 0, 0, 1.0, 0.5, 0.5, quoted_type_ok, frozenset())
    other = Candidate(0, 0, 1, 0.9, 0.5, 0.5, other_type_ok, frozenset())
    ev = evidence([quoted, other], _retrieval(kind), (quoted,))
    assert ev["type_found"] == found
    assert forced_reason(ev).startswith("no answer of the expected kind") is (found == 0.0)


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        ("How many people were killed at Kronstadt?", "The Great Purge claimed many lives.", 0.0),
        ("How many people were killed at Kronstadt?", "The Kronstadt rebellion was crushed.", 1.0),
        ("What religion were the Normans?", "The Norman dukes were Catholic.", 1.0),  # same stem
        ("Is Tito's current counted?", "Movements include Trotskyism and Titoism.", 1.0),  # a prefix
        ("Did Emma Goldman meet Hitler?", "Emma Goldman criticised Stalin.", 0.5),  # one name of two
        ("When did Leon Trotsky leave?", "Trotsky was exiled in 1929.", 1.0),  # one word of a name is enough
        ("How do I reverse a list?", "Anything.", 1.0),  # "I" is no name
        ("who led the antwerp group?", "Anything.", 1.0),  # no capitalised names: nothing to check
        ("Who led the Antwerp Group?", "The militia was led by Hermann Knüfken.", 0.0),
        # Written numbers count too, by their digits.
        ("what did trotsky demand in 1936?", "In 1936, Trotsky called for free elections.", 1.0),
        ("what did trotsky demand in 1937?", "In 1936, Trotsky called for free elections.", 0.0),
        ("were 600,000 people killed?", "Casualties ranged from 600000 to over 1 million.", 1.0),
        ("what happened in 19?", "In 1936 it began.", 0.0),  # digits match whole, not inside another number
        ("Who led the Antwerp Group?", "The group was led by Hermann Knüfken.", 1.0),  # lenient: any word of the name
    ],
)
def test_name_coverage(question: str, text: str, expected: float) -> None:
    assert name_coverage(question, text) == expected


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("Tell me about the POUM", "What is the POUM?"),
        ("Could you tell me more about Titoism?", "What is Titoism?"),
        ("describe the Left Opposition.", "What is the Left Opposition?"),
        ("What do you know about Emma Goldman", "What is Emma Goldman?"),
        ("Give me an overview of the Kronstadt rebellion", "What is the Kronstadt rebellion?"),
        ("Who was Bukharin?", "Who was Bukharin?"),
        ("Did the author describe the POUM?", "Did the author describe the POUM?"),
    ],
)
def test_requests_are_read_as_the_question_they_ask(text: str, question: str) -> None:
    from leftqa.qa.features import as_question

    assert as_question(text) == question


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("Tell me about the POUM", "the POUM"),
        ("Who was Bukharin?", "Bukharin"),
        ("What is meant by the Third Camp?", "the Third Camp"),
        ("Who were the Mensheviks?", "the Mensheviks"),
        ("What was the aim of the Left Opposition?", ""),
        ("Who was the leader of the POUM?", ""),
        ("What was Stalin's birth name?", ""),
        ("When was the POUM founded?", ""),
    ],
)
def test_descriptive_requests_name_their_subject(question: str, subject: str) -> None:
    from leftqa.qa.features import descriptive_subject

    assert descriptive_subject(question) == subject


def test_the_vocabulary_finds_full_names_the_corpus_never_mentions() -> None:
    from leftqa.qa.features import Vocabulary
    from leftqa.text import terms

    vocab = Vocabulary(dict.fromkeys(terms("Rosa Luxemburg and Leon Trotsky wrote on Titoism in the Soviet Union."), 1))
    assert vocab.absent_names("What did Karl Kautsky write about Rosa Luxemburg?") == ["Karl Kautsky"]
    assert vocab.absent_names("Who was Rosa Luxemborg?") == []  # one typo in a long word
    assert vocab.absent_names("What did Lev Trotsky think of Tito?") == []  # one word of the name, a prefix
    assert vocab.absent_names("Why did the USSR fall?") == []  # a lone word may be an alias the corpus spells out


@pytest.mark.parametrize(
    ("sentence", "about"),
    [
        ("Rosa Luxemburg was heavily critical of the methods.", True),
        ("The POUM was a party of the anti-Stalinist left.", True),
        ("Like Rosa Luxemburg, Emma Goldman was critical of Lenin.", False),  # mentioned in passing
        ("Stalin vilified Luxemburg's legacy.", False),
    ],
)
def test_a_sentence_opening_with_the_subject_is_about_it(sentence: str, about: bool) -> None:
    from leftqa.qa.features import descriptive_subject, opens_with

    subject = descriptive_subject("Who was Rosa Luxemburg?") if "Luxemburg" in sentence else descriptive_subject("Tell me about the POUM")
    assert opens_with(subject, sentence) is about
