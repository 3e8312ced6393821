"""Corpus reader: titles, headings, paragraphs, captions with exact offsets, bad files, fingerprints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from conftest import GUILD_MD, HARBOUR_TXT, REAL_CORPUS

from leftqa.errors import CorpusError, SourceError
from leftqa.ingest.corpus import (
    INTRO,
    corpus_fingerprint,
    decode,
    parse_markdown,
    parse_plain,
    parse_text_document,
    read_corpus,
    read_text_file,
    title_from_name,
)


def texts(text: str, blocks) -> list[tuple[str, str]]:  # noqa: ANN001
    """(section, block text) pairs, read back through the offsets."""
    return [(b.section, text[b.start : b.end]) for b in blocks]


# --- plain text in the seed's style --------------------------------------------------------------------------------


def test_plain_title_sections_paragraphs_and_caption() -> None:
    title, blocks = parse_plain(HARBOUR_TXT, "fallback")
    assert title == "The Harbour of Fenwick"
    got = texts(HARBOUR_TXT, blocks)
    assert [s for s, _ in got] == [
        INTRO,
        INTRO,
        "Early years (1820-1880)",
        "Early years (1820-1880)",
        "Early years (1820-1880)",
        "The lighthouse years (1880-1914)",
        "The lighthouse years (1880-1914)",
    ]
    assert got[0][1].startswith("The harbour of Fenwick grew from a small fishing village")
    assert got[0][1].endswith("local historians still use today.")
    # The caption line keeps only its caption, and its offsets point at exactly that text.
    assert got[4][1] == "The lighthouse at Fenwick Point was first lit in March 1887."
    assert all("File:" not in t and "|" not in t for _, t in got)


def test_plain_headings_must_stand_alone_between_blank_lines() -> None:
    text = "Doc title\n\nIntro paragraph here.\n\nA heading\n\nBody under heading.\nNot a heading\nMore body.\n"
    title, blocks = parse_plain(text, "fallback")
    assert title == "Doc title"
    assert texts(text, blocks) == [
        (INTRO, "Intro paragraph here."),
        ("A heading", "Body under heading."),
        ("A heading", "Not a heading"),  # no blank lines around it: a paragraph, not a heading
        ("A heading", "More body."),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "This short line ends like a sentence.",
        "Is this a question?",
        "A line that ends with a colon:",
        " ".join(["word"] * 21),  # too many words for a heading
    ],
)
def test_plain_standalone_line_that_is_not_a_heading(line: str) -> None:
    text = f"Title\n\nFirst paragraph.\n\n{line}\n\nLast paragraph.\n"
    _, blocks = parse_plain(text, "fallback")
    assert texts(text, blocks) == [(INTRO, "First paragraph."), (INTRO, line), (INTRO, "Last paragraph.")]


def test_plain_without_title_line_uses_fallback_title() -> None:
    text = "A body paragraph that starts the file.\nAnother one.\n\nSection\n\nText.\n"
    title, blocks = parse_plain(text, "From the file name")
    assert title == "From the file name"
    assert texts(text, blocks) == [
        (INTRO, "A body paragraph that starts the file."),
        (INTRO, "Another one."),
        ("Section", "Text."),
    ]


def test_plain_crlf_and_indentation_keep_offsets_exact() -> None:
    text = "Title\r\n\r\n   Indented paragraph.   \r\nFile:x.png|thumb|A caption.  \r\n\r\nPart two\r\n\r\nEnd.\r\n"
    title, blocks = parse_plain(text, "fallback")
    assert title == "Title"
    assert texts(text, blocks) == [(INTRO, "Indented paragraph."), (INTRO, "A caption."), ("Part two", "End.")]


def test_plain_hard_wrapped_paragraph_is_one_block() -> None:
    # A long line that does not end like a sentence was cut by a hard wrap; the next line continues it.
    text = (
        "Title\n\nLeon Trotsky was exiled by Stalin in February 1929, after a long\n"
        "struggle inside the party. He went to Turkey first\nand later to Mexico.\n"
        "Short list item\nAnother list item\n"
        "File:x.jpg|thumb|A caption that does not end with a stop at all\nAfter the caption.\n"
    )
    _, blocks = parse_plain(text, "fallback")
    assert texts(text, blocks) == [
        (INTRO, "Leon Trotsky was exiled by Stalin in February 1929, after a long\nstruggle inside the party. He went to Turkey first\nand later to Mexico."),
        (INTRO, "Short list item"),
        (INTRO, "Another list item"),
        (INTRO, "A caption that does not end with a stop at all"),
        (INTRO, "After the caption."),
    ]


@pytest.mark.parametrize(
    ("line", "caption"),
    [
        ("File:Leon Trotsky, 1930s.jpg|thumb|Trotsky was exiled by Stalin in February 1929.", "Trotsky was exiled by Stalin in February 1929."),
        ("Image:Map.png|thumb|upright|left|A map of the front, 1937.", "A map of the front, 1937."),
        ("File:Mural.jpg|thumb|  Padded caption.  ", "Padded caption."),
        ("File:Empty.jpg|thumb|", None),  # no caption: nothing to keep
        ("File:Empty.jpg|thumb|   ", None),
    ],
)
def test_caption_lines_keep_only_the_caption_with_exact_offsets(line: str, caption: str | None) -> None:
    text = f"Title\n\nBefore.\n{line}\nAfter.\n"
    _, blocks = parse_plain(text, "fallback")
    expected = [(INTRO, "Before.")] + ([(INTRO, caption)] if caption else []) + [(INTRO, "After.")]
    assert texts(text, blocks) == expected


def test_standalone_caption_line_is_a_caption_not_a_heading() -> None:
    text = "Title\n\nBody.\n\nFile:x.jpg|thumb|Short caption\n\nMore body.\n"
    _, blocks = parse_plain(text, "fallback")
    assert texts(text, blocks) == [(INTRO, "Body."), (INTRO, "Short caption"), (INTRO, "More body.")]


def test_real_corpus_caption_is_recovered_with_offsets() -> None:
    path = REAL_CORPUS / "anti-stalinist-left.txt"
    doc = read_text_file(path, path.name)
    text = path.read_text("utf-8")
    assert doc.title == "Anti-Stalinist left"
    captions = [doc.text[b.start : b.end] for b in doc.blocks if "February 1929" in doc.text[b.start : b.end]]
    assert len(captions) == 1
    assert captions[0].startswith("Bolshevik revolutionary Leon Trotsky was exiled by Stalin in February 1929.")
    assert doc.text == text
    assert all("File:" not in doc.text[b.start : b.end] for b in doc.blocks)


# --- Markdown ------------------------------------------------------------------------------------------------------


def test_markdown_title_sections_and_paragraphs() -> None:
    title, blocks = parse_markdown(GUILD_MD, "fallback")
    assert title == "The Weavers Guild"
    got = texts(GUILD_MD, blocks)
    assert [s for s, _ in got] == [INTRO, "Apprentices", "Apprentices", "The great strike", "The great strike", "Decline", "Decline"]
    assert got[1][1].startswith("An apprentice joined a workshop")


def test_markdown_heading_forms_and_fences() -> None:
    text = (
        "# Title #\n\nIntro.\n\n## Closed heading ##\n\nBody.\n\n```\n# not a heading\n```\n\n"
        "###### Deep\n\nDeep body.\n\n# Later top heading\n\nLate body.\n"
    )
    title, blocks = parse_markdown(text, "fallback")
    assert title == "Title"
    assert texts(text, blocks) == [
        (INTRO, "Intro."),
        ("Closed heading", "Body."),
        ("Closed heading", "# not a heading"),  # inside a code fence: text, not a heading
        ("Deep", "Deep body."),
        ("Later top heading", "Late body."),  # a top heading after body text is a section
    ]


def test_markdown_without_title_heading_uses_fallback() -> None:
    text = "Intro text first.\n\n# Heading after text\n\nBody.\n"
    title, blocks = parse_markdown(text, "fallback")
    assert title == "fallback"
    assert texts(text, blocks) == [(INTRO, "Intro text first."), ("Heading after text", "Body.")]


def test_markdown_title_equal_to_file_name_does_not_swallow_first_section() -> None:
    # Regression: the title was detected by comparing with the fallback title, so "# History" in history.md
    # left the next top heading to become the title too.
    text = "# History\n\n# Early years\n\nBody.\n"
    title, blocks = parse_markdown(text, "History")
    assert title == "History"
    assert texts(text, blocks) == [("Early years", "Body.")]


def test_markdown_wrapped_paragraph_is_one_block() -> None:
    text = "# T\n\nLeon Trotsky was\nexiled by Stalin in\nFebruary 1929.\n\n- item one\n- item two\n  continued\n\n> quoted\n"
    _, blocks = parse_markdown(text, "fallback")
    assert texts(text, blocks) == [
        (INTRO, "Leon Trotsky was\nexiled by Stalin in\nFebruary 1929."),
        (INTRO, "- item one"),
        (INTRO, "- item two\n  continued"),
        (INTRO, "> quoted"),
    ]


def test_markdown_caption_line_stands_alone() -> None:
    text = "# T\n\nBody line.\nFile:x.jpg|thumb|The caption.\nNext line.\n"
    _, blocks = parse_markdown(text, "fallback")
    assert texts(text, blocks) == [(INTRO, "Body line."), (INTRO, "The caption."), (INTRO, "Next line.")]


@pytest.mark.parametrize(("suffix", "title"), [(".md", "The Weavers Guild"), (".markdown", "The Weavers Guild"), (".txt", "# The Weavers Guild")])
def test_parse_text_document_picks_parser_by_suffix(suffix: str, title: str) -> None:
    doc = parse_text_document("d", GUILD_MD, suffix, "Fallback")
    assert doc.title == title
    assert doc.text == GUILD_MD


# --- decoding and files --------------------------------------------------------------------------------------------


def test_decode_accepts_utf8_and_bom() -> None:
    assert decode("Knüfken".encode("utf-8"), "a.txt") == "Knüfken"
    assert decode(b"\xef\xbb\xbfTitle", "a.txt") == "Title"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Knüfken café".encode("latin-1"), "not valid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks binary"),
        (bytes(range(1, 32)) * 3, "looks binary"),
    ],
)
def test_decode_rejects_non_utf8_and_binary(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        decode(data, "bad.txt")


def test_read_text_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(SourceError, match="empty.txt"):
        read_text_file(empty, "empty.txt")
    with pytest.raises(SourceError, match="gone.txt"):
        read_text_file(tmp_path / "gone.txt", "gone.txt")


def test_read_corpus_skips_bad_files_with_one_warning_each(make_corpus: Callable[..., Path]) -> None:
    root = make_corpus(
        {
            "b.txt": HARBOUR_TXT,
            "a.md": GUILD_MD,
            "sub/c.txt": "Nested\n\nA nested document.\n",
            "latin1.txt": "Caf\xe9 society.".encode("latin-1"),
            "image.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "notes.pdf.bak": "ignored: unknown suffix",
            ".hidden.txt": "Hidden\n\nNever read.\n",
        }
    )
    docs, warnings = read_corpus(root)
    assert [d.doc_id for d in docs] == ["a.md", "b.txt", "sub/c.txt"]
    assert [d.title for d in docs] == ["The Weavers Guild", "The Harbour of Fenwick", "Nested"]
    assert len(warnings) == 2
    assert warnings[0].startswith("image.md: looks binary")
    assert warnings[1].startswith("latin1.txt: not valid UTF-8")


def test_read_corpus_skips_links_leaving_the_corpus(make_corpus: Callable[..., Path], tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret\n\nNot part of the corpus.\n", encoding="utf-8")
    root = make_corpus({"a.txt": "Title\n\nBody.\n"})
    os.symlink(outside, root / "link.txt")
    docs, warnings = read_corpus(root)
    assert [d.doc_id for d in docs] == ["a.txt"]
    assert warnings == ["link.txt: points outside the corpus folder, skipped"]


def test_read_corpus_of_empty_folder_is_empty(make_corpus: Callable[..., Path]) -> None:
    assert read_corpus(make_corpus({})) == ([], [])


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_read_corpus_missing_or_not_a_folder(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "corpus"
    if kind == "file":
        root.write_text("not a folder", encoding="utf-8")
    with pytest.raises(CorpusError, match=str(root)):
        read_corpus(root)


@pytest.mark.parametrize(
    ("name", "title"),
    [(Path("anti-stalinist-left.txt"), "Anti stalinist left"), (Path("the_great__purge.md"), "The great purge")],
)
def test_title_from_name(name: Path, title: str) -> None:
    assert title_from_name(name) == title


# --- fingerprints --------------------------------------------------------------------------------------------------


def test_corpus_fingerprint_tracks_content_names_and_additions(make_corpus: Callable[..., Path]) -> None:
    root = make_corpus()
    first = corpus_fingerprint(root)
    assert first == corpus_fingerprint(root)
    assert first == corpus_fingerprint(make_corpus(name="copy"))  # same files elsewhere: same fingerprint

    (root / "weavers-guild.md").write_text(GUILD_MD.replace("twelve", "eleven"), encoding="utf-8")
    edited = corpus_fingerprint(root)
    assert edited != first

    (root / "weavers-guild.md").rename(root / "guild.md")
    renamed = corpus_fingerprint(root)
    assert renamed not in (first, edited)

    (root / "new.txt").write_text("New\n\nA new document.\n", encoding="utf-8")
    assert corpus_fingerprint(root) not in (first, edited, renamed)


def test_document_fingerprint_changes_with_text() -> None:
    a = parse_text_document("a.txt", HARBOUR_TXT, ".txt", "A")
    b = parse_text_document("a.txt", HARBOUR_TXT + "One more line.\n", ".txt", "A")
    assert a.fingerprint == parse_text_document("other.txt", HARBOUR_TXT, ".txt", "B").fingerprint
    assert a.fingerprint != b.fingerprint
    assert len(a.fingerprint) == 16


@pytest.mark.parametrize("text", ["Orla Brenn rowed.\n", "Orla Brenn rowed", "A Short Note\n\nOrla Brenn rowed\n"])
def test_a_text_of_title_like_lines_only_is_its_own_text(text: str) -> None:
    """A one-line note looks like a title (a short standalone line); with nothing else it is the text, not "no text"."""
    _title, blocks = parse_plain(text, "Note")
    assert any("Orla Brenn rowed" in text[b.start : b.end] for b in blocks)
