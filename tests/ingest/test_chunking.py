"""Sentence splitting and section-aware passages: boundaries, offsets, stable ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GUILD_MD, HARBOUR_TXT, REAL_CORPUS, TINY_CORPUS, TINY_PASSAGES

from leftqa.ingest.chunking import chunk_document, chunk_documents, passage_id, split_sentences, word_count
from leftqa.ingest.corpus import Block, Document, parse_text_document, read_corpus
from leftqa.records import Passage


def sentences(text: str) -> list[str]:
    spans = split_sentences(text)
    for s, e in spans:
        assert text[s:e] == text[s:e].strip() and e > s
    return [text[s:e] for s, e in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "James P. Cannon founded the party in the U.S. in 1928. He was expelled.",
            ["James P. Cannon founded the party in the U.S. in 1928.", "He was expelled."],
        ),
        (
            "The historian Bernhard H. Bayerlein wrote about it. Others disagreed.",
            ["The historian Bernhard H. Bayerlein wrote about it.", "Others disagreed."],
        ),
        ("Dr. Ansel Pike kept a diary. It survives.", ["Dr. Ansel Pike kept a diary.", "It survives."]),
        ("The U.S.S.R. collapsed in 1991. Russia followed.", ["The U.S.S.R. collapsed in 1991.", "Russia followed."]),
        ("A. B. Smith met C. D. Jones in Paris.", ["A. B. Smith met C. D. Jones in Paris."]),
        ('She called it "not a movement of the people." He agreed.', ['She called it "not a movement of the people."', "He agreed."]),
        ("What? Really! Yes.", ["What?", "Really!", "Yes."]),
        ("Trotsky (1879–1940) was exiled. He wrote.", ["Trotsky (1879–1940) was exiled.", "He wrote."]),
        ("He was born c. 1880 in Kiev. He died young.", ["He was born c. 1880 in Kiev.", "He died young."]),
        ("It lasted (ca. 1900-1950) decades. Then it ended.", ["It lasted (ca. 1900-1950) decades.", "Then it ended."]),
        ("He died in 1940. 1941 was worse.", ["He died in 1940.", "1941 was worse."]),
        ("No final stop", ["No final stop"]),
        ("", []),
    ],
)
def test_split_sentences_keeps_initials_and_abbreviations(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_split_sentences_offsets_skip_surrounding_whitespace() -> None:
    text = "  First one.   Second  one.  "
    assert split_sentences(text) == [(2, 12), (15, 27)]


def test_split_sentences_treats_line_breaks_as_spaces() -> None:
    # Regression: pysbd ended a sentence at "in\n", cutting "exiled by Stalin in / February 1929." in two.
    text = "Leon Trotsky was\nexiled by Stalin in\nFebruary 1929. He left."
    assert sentences(text) == ["Leon Trotsky was\nexiled by Stalin in\nFebruary 1929.", "He left."]


# --- the faster pysbd segmenter gives exactly pysbd's output ------------------------------------------------------

TRICKY = [
    "Dr. Pike met DR. Pike and dr. pike. Then he left. Then he left.",
    "See p. 12 and P. 14, pp. 3-5 and No. 7; nos. 8 and Art. 2 (ext. 4) follow.",
    "Mr. and Mrs. Smith, Prof. Jones, Gen. Lee, St. Petersburg and Mt. Everest. Fig. 3 shows it.",
    "The U.S. Army and the u.s. navy, e.g. ships, i.e. boats, a Ph.D. thesis, Dr.phil. work.",
    "{dr} Smith wrote {p} a {st} X and {no} 5. Then {mr} y.",
    "İstanbul St. İnn, ſt. Peter's ſtreet. KELVIN K. Smith. \u0130s it? I'm sure. I'll go.",
    "He said \"wait...\" and left . . . later. It's 5 p.m. now, not 9 a.m. yet.",
    "1. First item 2. Second item a. sub (b) other i. roman ii. two. Done!",
    "What?! Really!! Yes?? No. (Quoted text.) \"Another one.\" 'Single quoted.'",
    "Same sentence. Same sentence. Same sentence.",
    "  leading and trailing spaces.   ",
    "c. 1880 ca. 1900 circa. 1910 the end. Jan. 5 Feb. 6 Sept. 7.",
    "He went to Calif. in Jan. and to Wash. D.C. in Feb. The Co. Ltd. Inc. was there.",
]


def _tricky_fuzz(n: int, seed: int = 5) -> list[str]:
    """Random texts of abbreviations in odd cases and punctuation: where pysbd's special cases meet."""
    import random

    from pysbd.lang.english import English

    rng = random.Random(seed)
    abbreviations = English.Abbreviation.ABBREVIATIONS
    words = "the party was founded in by he she I I'm it and of Trotsky Paris army İstanbul ſtreet café".split()
    tails = [".", ". ", ".,", ".:", ". 12", ". (", ". a", ". I ", "} ", "", "..", "!", "?"]
    out = []
    for _ in range(n):
        toks = []
        for _ in range(rng.randint(1, 40)):
            r = rng.random()
            if r < 0.3:
                a = rng.choice(abbreviations)
                toks.append(rng.choice([a, a.upper(), a.capitalize(), a.replace("s", "ſ")]) + rng.choice(tails))
            elif r < 0.4:
                toks.append(str(rng.randint(0, 3000)) + rng.choice(["", ".", ")"]))
            elif r < 0.45:
                toks.append("{" + rng.choice(abbreviations) + "} " + rng.choice("aB1."))
            else:
                toks.append(rng.choice(words + ["U.S.", "e.g.", "a.m.", "1.", "(a)", '"', "...", "?!"]))
        out.append(" ".join(toks))
    return out


def test_segmenter_gives_exactly_stock_pysbd_output() -> None:
    import pysbd

    from leftqa.ingest.chunking import _segmenter

    stock = pysbd.Segmenter(language="en", clean=False)
    assert type(_segmenter()) is not pysbd.Segmenter or pysbd.__version__ != "0.3.4"  # the fast one is in use
    docs, _ = read_corpus(REAL_CORPUS)
    texts = [d.text[b.start : b.end] for d in docs for b in d.blocks] + TRICKY + _tricky_fuzz(300)
    texts += [t.replace(". ", ".\n") for t in TRICKY]  # pysbd's line-by-line path
    for text in texts:
        assert _segmenter().segment(text) == stock.segment(text), text


def test_ignorecase_fold_covers_every_code_point() -> None:
    """The abbreviation shortcut relies on these: what re.IGNORECASE matches to a-z, and re's \\s."""
    import re

    from leftqa.ingest.chunking import _IGNORECASE_FOLD

    every = "".join(map(chr, range(0x110000)))
    for ch in re.findall("[a-z]", every, flags=re.IGNORECASE):
        folded = ch.translate(_IGNORECASE_FOLD).lower()
        assert len(folded) == 1 and folded.isascii() and re.fullmatch(folded, ch, flags=re.IGNORECASE), hex(ord(ch))
    assert re.findall(r"\s", every) == [ch for ch in every if ch.isspace()]


def test_word_count() -> None:
    assert word_count("James P. Cannon, 1928 — U.S.") == 6
    assert word_count("") == 0


# --- passages ------------------------------------------------------------------------------------------------------


def doc_from(text: str, doc_id: str = "doc.txt") -> Document:
    return parse_text_document(doc_id, text, Path(doc_id).suffix, "Fallback")


def check_offsets(doc: Document, passages: list[Passage]) -> None:
    """Every sentence reads back from both the passage text and the document text."""
    for p in passages:
        assert p.sentences
        assert p.start == p.sentences[0].start and p.end == p.sentences[-1].end
        for s in p.sentences:
            assert p.text[s.local_start : s.local_end] == s.text
            assert doc.text[s.start : s.end] == s.text


def test_tiny_corpus_passages_one_per_paragraph() -> None:
    docs = [doc_from(HARBOUR_TXT, "harbour-history.txt"), doc_from(GUILD_MD, "weavers-guild.md")]
    passages = chunk_documents(docs)
    assert len(passages) == TINY_PASSAGES == 13
    assert [p.doc_id for p in passages] == ["harbour-history.txt"] * 6 + ["weavers-guild.md"] * 7
    assert [p.section for p in passages[:6]] == [
        "Introduction",
        "Introduction",
        "Early years (1820-1880)",
        "Early years (1820-1880)",
        "The lighthouse years (1880-1914)",
        "The lighthouse years (1880-1914)",
    ]
    # The 11-word caption is too short for a passage of its own and joins the paragraph before it (same section).
    customs = passages[3]
    assert customs.sentences[-1].text == "The lighthouse at Fenwick Point was first lit in March 1887."
    assert customs.text.endswith("harbour master.\nThe lighthouse at Fenwick Point was first lit in March 1887.")
    assert all(40 <= word_count(p.text) <= 150 for p in passages)
    for doc in docs:
        check_offsets(doc, [p for p in passages if p.doc_id == doc.doc_id])


def sentence_text(n: int, words_each: int) -> str:
    """Sentence n with exactly `words_each` words (distinct, so every sentence is recognisable)."""
    return " ".join([f"Sentence{n}"] + [f"w{n}x{i}" for i in range(words_each - 1)]) + "."


def test_long_paragraph_splits_between_sentences_into_balanced_pieces() -> None:
    para = " ".join(sentence_text(i, 20) for i in range(20))  # 400 words in one paragraph
    doc = doc_from(f"Title\n\n{para}\n")
    passages = chunk_document(doc, min_words=40, max_words=150)
    assert [word_count(p.text) for p in passages] == [140, 140, 120]  # ceil(400/150) = 3 pieces, none over 150
    assert [len(p.sentences) for p in passages] == [7, 7, 6]
    assert " ".join(p.text for p in passages) == para  # nothing lost, nothing cut inside a sentence
    check_offsets(doc, passages)


def test_single_sentence_over_max_words_stays_whole() -> None:
    long_sentence = sentence_text(0, 200)
    doc = doc_from(f"Title\n\n{long_sentence} Short one after it.\n")
    passages = chunk_document(doc, min_words=40, max_words=150)
    assert [p.text for p in passages] == [long_sentence, "Short one after it."]


def test_short_paragraphs_join_within_a_section_but_never_across_sections() -> None:
    text = (
        "Title\n\nFirst short paragraph in the introduction.\nSecond short paragraph in the introduction.\n\n"
        "Second section\n\nA short paragraph under the second heading.\n"
    )
    doc = doc_from(text)
    passages = chunk_document(doc, min_words=40, max_words=150)
    assert [(p.section, p.text) for p in passages] == [
        ("Introduction", "First short paragraph in the introduction.\nSecond short paragraph in the introduction."),
        ("Second section", "A short paragraph under the second heading."),
    ]
    check_offsets(doc, passages)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("guide.md", "# Guide\n\n## Part A\n\n### Notes\n\nShort note one.\n\n## Part B\n\n### Notes\n\nShort note two.\n"),
        ("guide.txt", "Guide\n\nNotes\n\nShort note one.\n\nNotes\n\nShort note two.\n"),
    ],
)
def test_sections_sharing_a_name_are_never_joined(name: str, text: str) -> None:
    doc = doc_from(text, name)
    assert [text[b.heading : b.heading + len("### Notes")].lstrip("# ").startswith("Notes") for b in doc.blocks] == [True, True]
    passages = chunk_document(doc, min_words=40, max_words=150)
    assert [(p.section, p.text) for p in passages] == [("Notes", "Short note one."), ("Notes", "Short note two.")]


def test_joined_pieces_never_exceed_max_words() -> None:
    paragraphs = "\n".join(sentence_text(i, 30) for i in range(6))  # six 30-word paragraphs, one section
    doc = doc_from(f"Title\n\n{paragraphs}\n")
    passages = chunk_document(doc, min_words=40, max_words=70)
    assert [word_count(p.text) for p in passages] == [60, 60, 60]
    check_offsets(doc, passages)


def test_passages_never_span_sections_on_real_corpus() -> None:
    docs, warnings = read_corpus(REAL_CORPUS)
    assert warnings == []
    for doc in docs:
        passages = chunk_document(doc)
        check_offsets(doc, passages)
        section_of = {}
        for b in doc.blocks:
            for i in range(b.start, b.end):
                section_of[i] = b.section
        for p in passages:
            assert {section_of[s.start] for s in p.sentences} == {p.section}
            assert word_count(p.text) <= 150
        # Sentence splitting must not have cut the initials and abbreviations in the seed.
        all_sentences = [s.text for p in passages for s in p.sentences]
        assert not any(s.endswith((" P.", " H.", "Dr.", " U.S.")) for s in all_sentences)


def test_real_corpus_caption_and_knufken_sentences_are_whole() -> None:
    docs, _ = read_corpus(REAL_CORPUS)
    all_sentences = [s.text for p in chunk_documents(docs) for s in p.sentences]
    assert "Bolshevik revolutionary Leon Trotsky was exiled by Stalin in February 1929." in all_sentences
    knufken = [s for s in all_sentences if "Hermann Knüfken" in s]
    assert len(knufken) == 1 and knufken[0].startswith("Illustrating the role") and knufken[0].endswith("Knüfken.")


# --- ids -----------------------------------------------------------------------------------------------------------


def test_passage_id_is_derived_from_document_position_and_text() -> None:
    base = passage_id("a.txt", 0, "text")
    assert base == passage_id("a.txt", 0, "text")
    assert len(base) == 16 and int(base, 16) >= 0
    assert len({base, passage_id("b.txt", 0, "text"), passage_id("a.txt", 1, "text"), passage_id("a.txt", 0, "text!")}) == 4


def test_ids_stable_unique_and_local_to_their_document() -> None:
    def ids(corpus: dict[str, str]) -> dict[str, list[str]]:
        docs = [doc_from(text, name) for name, text in sorted(corpus.items())]
        out: dict[str, list[str]] = {}
        for p in chunk_documents(docs):
            out.setdefault(p.doc_id, []).append(p.id)
        return out

    first = ids(TINY_CORPUS)
    assert first == ids(dict(TINY_CORPUS))
    all_ids = [i for v in first.values() for i in v]
    assert len(all_ids) == len(set(all_ids)) == TINY_PASSAGES

    edited = ids({**TINY_CORPUS, "weavers-guild.md": GUILD_MD.replace("nine weeks", "ten weeks")})
    assert edited["harbour-history.txt"] == first["harbour-history.txt"]
    changed = [a != b for a, b in zip(first["weavers-guild.md"], edited["weavers-guild.md"])]
    assert changed == [False, False, False, True, False, False, False]  # only the edited passage's id changes


def test_block_section_boundaries_follow_blocks() -> None:
    # A hand-made Document (as other readers build them): blocks carry the sections.
    text = "Alpha one. Alpha two.\nBeta one."
    doc = Document("d", "T", text, (Block("A", 0, 21), Block("B", 22, 31)))
    passages = chunk_document(doc)
    assert [(p.section, p.text, p.start, p.end) for p in passages] == [("A", "Alpha one. Alpha two.", 0, 21), ("B", "Beta one.", 22, 31)]
