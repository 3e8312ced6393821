"""Readers for every source format: extracted text, titles, sections, page numbers and provenance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAKE_MODEL

from leftqa.config import Settings
from leftqa.errors import SourceError
from leftqa.index.builder import build_index
from leftqa.ingest.corpus import INTRO, READERS, Document, read_corpus, read_document
from leftqa.ingest.formats import pdf_paragraphs
from leftqa.qa.assistant import Assistant

from samples import BANNED, CAUSES, KRONSTADT, make_docx, make_pdf, PAGE_HTML, SHLYAPNIKOV


def blocks(doc: Document) -> list[tuple[str, str, int | None]]:
    """(section, block text, page) of every block, checking that each block is exactly a span of doc.text."""
    out = []
    for b in doc.blocks:
        assert 0 <= b.start < b.end <= len(doc.text)
        text = doc.text[b.start : b.end]
        assert text == text.strip() and text
        out.append((b.section, text, b.page))
    return out


def test_every_format_has_a_reader() -> None:
    assert {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl"} <= set(READERS)


def test_html_keeps_main_text_and_headings_only(tmp_path: Path) -> None:
    path = tmp_path / "kronstadt.html"
    path.write_text(PAGE_HTML, encoding="utf-8")
    doc = read_document(path, "kronstadt.html")
    assert doc.title == "Kronstadt rebellion"
    assert blocks(doc) == [
        (INTRO, KRONSTADT, None),
        ("Causes", CAUSES, None),
        ("Causes", "Petrograd strikes", None),
        ("Causes", "Grain requisitions", None),
        ("Aftermath", "The uprising was crushed in March 1921.", None),
        ("Aftermath", "Survivors fled to Finland.", None),
    ]
    for junk in ("SCRIPTTEXT", "NAVTEXT", "HEADERTEXT", "COMMENTTEXT", "HIDDENTEXT", "NOSCRIPTTEXT", "ASIDETEXT", "FOOTERTEXT", "color"):
        assert junk not in doc.text
    assert "Causes" in doc.text  # headings stay in the text between their paragraphs


@pytest.mark.parametrize(
    ("html", "title"),
    [
        ("<html><body><h1>Only a heading title</h1><p>Body text of the page is here.</p></body></html>", "Only a heading title"),
        ("<html><body><p>Body text of the page is here.</p></body></html>", "Untitled page"),
        ("<p>Body text of the page is here.</p>", "Untitled page"),
    ],
)
def test_html_title_falls_back_to_h1_then_file_name(tmp_path: Path, html: str, title: str) -> None:
    path = tmp_path / "untitled-page.htm"
    path.write_text(html, encoding="utf-8")
    doc = read_document(path, path.name)
    assert doc.title == title
    assert [t for _, t, _ in blocks(doc)] == ["Body text of the page is here."]


def test_html_honours_declared_and_bom_encodings(tmp_path: Path) -> None:
    latin = tmp_path / "latin.html"
    latin.write_bytes('<html><head><meta charset="iso-8859-1"><title>Café</title></head><body><p>Déjà vu à Paris.</p></body></html>'.encode("latin-1"))
    assert (read_document(latin, "latin.html").title, blocks(read_document(latin, "latin.html"))[0][1]) == ("Café", "Déjà vu à Paris.")
    utf16 = tmp_path / "utf16.html"
    utf16.write_bytes("<html><body><p>Grüße aus Köln.</p></body></html>".encode("utf-16"))
    assert blocks(read_document(utf16, "utf16.html"))[0][1] == "Grüße aus Köln."


def test_html_article_is_preferred_to_page_chrome(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.write_text(
        "<html><body><div class='menu'>Menu text outside</div><article><header><h1>Story</h1></header>"
        "<p>The story itself.</p><footer>Byline kept.</footer></article></body></html>",
        encoding="utf-8",
    )
    doc = read_document(path, "a.html")
    assert [t for _, t, _ in blocks(doc)] == ["The story itself.", "Byline kept."]
    assert doc.title == "Story"


def test_pdf_pages_sections_and_metadata_title(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "workers-opposition.pdf",
        [("Origins", [SHLYAPNIKOV, "A second paragraph on the first page."]), (None, ["Page two continues the origins."]), ("Suppression", [BANNED])],
        title="The Workers Opposition",
    )
    doc = read_document(path, "workers-opposition.pdf")
    assert doc.title == "The Workers Opposition"
    assert blocks(doc) == [
        ("Origins", SHLYAPNIKOV, 1),
        ("Origins", "A second paragraph on the first page.", 1),
        ("Origins", "Page two continues the origins.", 2),
        ("Suppression", BANNED, 3),
    ]


def test_pdf_without_metadata_or_outline(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "plain_notes.pdf", [(None, [SHLYAPNIKOV])])
    doc = read_document(path, "plain_notes.pdf")
    assert doc.title == "Plain notes"
    assert blocks(doc) == [(INTRO, SHLYAPNIKOV, 1)]


@pytest.mark.parametrize(
    ("page_text", "paragraphs"),
    [
        ("One line only.", ["One line only."]),
        ("First paragraph line one that is long enough\ncontinues here.\n\nSecond one.", ["First paragraph line one that is long enough continues here.", "Second one."]),
        ("A word hyphen-\nated across lines and a long line to set the width\nend.", ["A word hyphenated across lines and a long line to set the width end."]),
        ("A long line that sets the typical width of this page here\nShort end.\nNext paragraph starts here and is long too", ["A long line that sets the typical width of this page here Short end.", "Next paragraph starts here and is long too"]),
        ("", []),
        ("\n \n", []),
    ],
)
def test_pdf_paragraphs(page_text: str, paragraphs: list[str]) -> None:
    assert pdf_paragraphs(page_text) == paragraphs


def test_docx_title_headings_and_tables(tmp_path: Path) -> None:
    doc = read_document(make_docx(tmp_path / "k.docx"), "k.docx")
    assert doc.title == "Kronstadt 1921"
    assert blocks(doc) == [
        (INTRO, KRONSTADT, None),
        ("Causes", CAUSES, None),
        ("Causes", "Date | Event", None),
        ("Causes", "1 March 1921 | Petropavlovsk resolution", None),
        ("Aftermath", "The uprising was crushed in March 1921.", None),
    ]
    assert "Aftermath" in doc.text


@pytest.mark.parametrize(("title_style", "core_title", "expected"), [(False, "From metadata", "From metadata"), (False, "", "Sailors notes")])
def test_docx_title_from_metadata_or_name(tmp_path: Path, title_style: bool, core_title: str, expected: str) -> None:
    doc = read_document(make_docx(tmp_path / "sailors_notes.docx", title_style, core_title), "sailors_notes.docx")
    assert doc.title == expected


def test_jsonl_records_become_sections(tmp_path: Path) -> None:
    path = tmp_path / "biographies.jsonl"
    records = [
        {"title": "Max Shachtman", "text": "Max Shachtman was an American Marxist.\nHe founded the Workers Party in 1940.", "url": "ignored"},
        {"text": "A record without a title."},
        {"title": "C. L. R. James", "text": "James was a Trinidadian historian and journalist."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records[:2]) + "\n\n" + json.dumps(records[2]) + "\n", encoding="utf-8")
    doc = read_document(path, "biographies.jsonl")
    assert doc.title == "Biographies"
    assert blocks(doc) == [
        ("Max Shachtman", "Max Shachtman was an American Marxist.", None),
        ("Max Shachtman", "He founded the Workers Party in 1940.", None),
        ("Record 2", "A record without a title.", None),
        ("C. L. R. James", "James was a Trinidadian historian and journalist.", None),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"title": "a", "text": "fine"}\n{not json}\n', "line 2 is not valid JSON"),
        ('{"title": "a", "body": "no text field"}\n', 'line 1 is not an object with a "text" string'),
        ("[1, 2]\n", 'line 1 is not an object with a "text" string'),
    ],
)
def test_jsonl_bad_lines_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SourceError, match=message):
        read_document(path, "bad.jsonl")


def test_suffixes_are_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "PAGE.HTML"
    path.write_text("<p>Upper case suffix works.</p>", encoding="utf-8")
    assert blocks(read_document(path, "PAGE.HTML"))[0][1] == "Upper case suffix works."


def test_sidecar_records_the_source_url(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(PAGE_HTML, encoding="utf-8")
    (tmp_path / "page.html.source.json").write_text(json.dumps({"url": "https://example.org/kronstadt"}), encoding="utf-8")
    assert read_document(path, "page.html").source == "https://example.org/kronstadt"
    (tmp_path / "page.html.source.json").write_text("{broken", encoding="utf-8")
    assert read_document(path, "page.html").source == ""


def test_mixed_corpus_builds_and_cites_pages_and_sources(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "kronstadt.html").write_text(PAGE_HTML, encoding="utf-8")
    (corpus / "kronstadt.html.source.json").write_text(json.dumps({"url": "http://example.org/k"}), encoding="utf-8")
    make_pdf(corpus / "opposition.pdf", [("Origins", [SHLYAPNIKOV]), ("Suppression", [BANNED])], title="The Workers Opposition")
    make_docx(corpus / "k.docx")
    (corpus / "bios.jsonl").write_text(json.dumps({"title": "Max Shachtman", "text": "Max Shachtman was an American Marxist."}) + "\n", encoding="utf-8")
    (corpus / "notes.md").write_text("# Notes\n\nA markdown note about the Tenth Party Congress.\n", encoding="utf-8")
    docs, warnings = read_corpus(corpus)
    assert warnings == []
    assert [d.doc_id for d in docs] == ["bios.jsonl", "k.docx", "kronstadt.html", "notes.md", "opposition.pdf"]

    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL)
    report = build_index(settings)
    assert (report.documents, report.added, report.warnings) == (5, 5, ())
    assistant = Assistant.load(settings)
    by_id = {p.id: p for p in assistant.index.passages}
    hit = assistant.search("banned at the Tenth Party Congress expelled", k=1)[0]
    assert (hit.doc_id, hit.page, hit.section, hit.title) == ("opposition.pdf", 2, "Suppression", "The Workers Opposition")
    assert by_id[hit.passage_id].text == BANNED
    html_passages = [p for p in assistant.index.passages if p.doc_id == "kronstadt.html"]
    assert html_passages and {p.source for p in html_passages} == {"http://example.org/k"}
    assert {p.source for p in assistant.index.passages if p.doc_id != "kronstadt.html"} == {""}


def test_heavy_parsers_are_imported_only_when_used() -> None:
    code = (
        "import sys, leftqa, leftqa.ingest.corpus, leftqa.ingest.formats, leftqa.index.builder, leftqa.ingest.sources, leftqa.app.cli;"
        "print(sorted(m for m in ('bs4', 'pypdf', 'docx', 'torch', 'faiss') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_docx_bomb_placed_in_the_corpus_folder_is_skipped_unread(tmp_path: Path) -> None:
    """The unpack limit holds for files copied into corpus/ by hand, not only for uploads and `leftqa add`."""
    import zipfile

    from leftqa.ingest.documents import MAX_UNPACKED_BYTES

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.md").write_text("# Notes\n\nA markdown note about the Tenth Party Congress.\n", encoding="utf-8")
    with zipfile.ZipFile(corpus / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w") as part:
            for _ in range(MAX_UNPACKED_BYTES // (1 << 20) + 1):
                part.write(b"\0" * (1 << 20))
    docs, warnings = read_corpus(corpus)
    assert [d.doc_id for d in docs] == ["notes.md"]
    assert warnings == ["bomb.docx: the DOCX package unpacks to 301 MB in 2 parts, over the 300 MB limit (a zip bomb?), skipped"]
