"""Readers for HTML, PDF, DOCX and JSON Lines sources; each returns a Document whose blocks index into its text."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any, Iterator

from leftqa.errors import SourceError
from leftqa.ingest.documents import INTRO, MAX_PACKAGE_BYTES, Block, Document, check_package, decode, load_bytes, title_from_name

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Elements whose boundaries end a paragraph; everything else (a, em, span, …) is inline.
_BLOCK_TAGS = _HEADINGS | {
    "address", "article", "blockquote", "body", "br", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "header", "hgroup", "hr", "li", "main", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
# Never main text: code, styling, page chrome and widgets.
_DROP_TAGS = (
    "head", "title", "script", "style", "noscript", "template", "svg", "math", "nav", "aside", "form", "iframe", "object",
    "embed", "button", "select", "textarea", "canvas", "dialog", "menu",
)  # fmt: skip
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"}
_SENTENCE_END = (".", "!", "?", ":", '"', "\u201d", ")")


class _TextBuilder:
    """Paragraphs joined by blank lines into one text, recording the offsets of each body block."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.blocks: list[Block] = []

    def add(self, text: str, section: str, page: int | None = None, body: bool = True) -> None:
        """Append a paragraph (headings with body=False: kept in the text, not indexed as a block)."""
        text = " ".join(text.split())
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        if body:
            self.blocks.append(Block(section, start, self.length, page))

    def document(self, doc_id: str, title: str, empty_reason: str) -> Document:
        """The Document, or SourceError(empty_reason) when no body text was found."""
        if not self.blocks:
            raise SourceError(f"{doc_id}: {empty_reason}, skipped")
        return Document(doc_id=doc_id, title=title, text="".join(self.parts), blocks=tuple(self.blocks))


# ---------------------------------------------------------------- HTML


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return False  # UTF-16/UTF-8 byte-order marks: NULs are expected in UTF-16
    return b"\x00" in head


def read_html(path: Path, doc_id: str) -> Document:
    """Main text and headings of an HTML page (no scripts, styles, navigation); title from <title> or <h1>."""
    data = load_bytes(path, doc_id)
    if _looks_binary(data):
        raise SourceError(f"{doc_id}: looks binary (NUL bytes), skipped")
    from bs4 import BeautifulSoup

    # html.parser is pure Python and tolerant; bs4 decodes by BOM, <meta charset> and then a best guess.
    soup = BeautifulSoup(data, "html.parser")
    text_head = soup.get_text()[:8192]
    if sum(1 for ch in text_head if ord(ch) < 32 and ch not in "\n\r\t\f") > 8:
        raise SourceError(f"{doc_id}: looks binary (control characters), skipped")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(_is_chrome):
        tag.decompose()
    for tag in soup.find_all(["header", "footer"]):
        if tag.find_parent(["article", "main"]) is None:
            tag.decompose()
    articles = soup.find_all("article")
    root = soup.find("main") or (articles[0] if len(articles) == 1 else None) or soup.find("body") or soup
    out = _TextBuilder()
    state = {"title": title, "section": INTRO, "seen_body": False}
    try:
        _walk_html(root, out, state)
    except RecursionError:
        raise SourceError(f"{doc_id}: HTML nested too deeply to read, skipped") from None
    doc = out.document(doc_id, state["title"] or title_from_name(path), "no main text (only scripts, styles or navigation)")
    return doc


def _is_chrome(tag: Any) -> bool:
    attrs = getattr(tag, "attrs", None) or {}
    if attrs.get("role") in _CHROME_ROLES or attrs.get("aria-hidden") == "true" or "hidden" in attrs:
        return True
    style = str(attrs.get("style", "")).replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


def _walk_html(node: Any, out: _TextBuilder, state: dict[str, Any]) -> None:
    from bs4 import NavigableString, Tag

    inline: list[str] = []

    def flush() -> None:
        text = " ".join("".join(inline).split())
        inline.clear()
        if text:
            out.add(text, state["section"])
            state["seen_body"] = True

    for child in node.children:
        if isinstance(child, Tag):
            name = child.name
            if name in _HEADINGS:
                flush()
                heading = " ".join(child.get_text(" ").split())
                if not heading:
                    continue
                if name == "h1" and not state["seen_body"] and (not state["title"] or heading in state["title"]):
                    state["title"] = state["title"] or heading  # the page's own title heading, not a section
                else:
                    state["section"] = heading
                out.add(heading, state["section"], body=False)
            elif name in _BLOCK_TAGS:
                flush()
                _walk_html(child, out, state)
            else:
                inline.append(" ".join(_inline_text(child)))
        elif type(child) is NavigableString:  # comments, doctypes and CDATA are NavigableString subclasses
            inline.append(str(child))
    flush()


def _inline_text(node: Any) -> Iterator[str]:
    """Text of an inline element, block children included (rare inside inline tags) but nothing dropped."""
    from bs4 import NavigableString, Tag

    for child in node.children:
        if isinstance(child, Tag):
            yield from _inline_text(child)
        elif type(child) is NavigableString:
            yield str(child)


# ---------------------------------------------------------------- PDF


def read_pdf(path: Path, doc_id: str) -> Document:
    """Text of a PDF page by page (Block.page is the 1-based page), outline entries as sections."""
    data = load_bytes(path, doc_id, MAX_PACKAGE_BYTES)
    if b"%PDF-" not in data[:1024]:
        raise SourceError(f"{doc_id}: not a PDF file (no %PDF header), skipped")
    from pypdf import PdfReader

    # pypdf logs every repaired cross-reference as a warning; a skipped or readable file needs no such noise.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(f"{doc_id}: PDF is password-protected, skipped")
        meta = reader.metadata
        meta_title = " ".join(str(meta.title or "").split()) if meta is not None else ""
        marks = _pdf_outline(reader)
        pages = [page.extract_text() or "" for page in reader.pages]
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on damaged files
        raise SourceError(f"{doc_id}: cannot be parsed as PDF ({type(exc).__name__}: {str(exc)[:120]}), skipped") from None
    out = _TextBuilder()
    section = INTRO
    for number, page_text in enumerate(pages, start=1):
        for _page, heading in (m for m in marks if m[0] == number):
            section = heading
        for para in pdf_paragraphs(page_text):
            out.add(para, section, page=number)
    return out.document(doc_id, meta_title or title_from_name(path), "PDF has no text layer (scanned images? OCR it first)")


def _pdf_outline(reader: Any) -> list[tuple[int, str]]:
    """(1-based page, title) of every outline (bookmark) entry, in page order; [] when absent or broken."""
    marks: list[tuple[int, str]] = []

    def visit(items: Any) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # noqa: BLE001 - a broken bookmark loses its section, not the document
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page is not None and page >= 0:
                marks.append((page + 1, title))

    try:
        visit(reader.outline)
    except Exception:  # noqa: BLE001
        return []
    return sorted(marks, key=lambda m: m[0])


def pdf_paragraphs(page_text: str) -> list[str]:
    """Paragraphs of one page's extracted lines: blank lines and short lines ending a sentence end a paragraph."""
    lines = [ln.strip() for ln in page_text.splitlines()]
    widths = sorted(len(ln) for ln in lines if ln)
    full = widths[int(len(widths) * 0.9)] if widths else 0
    paras: list[str] = []
    cur: list[str] = []
    for ln in lines:
        if not ln:
            if cur:
                paras.append(" ".join(cur))
                cur = []
            continue
        if cur and cur[-1].endswith("-") and ln[:1].islower() and not cur[-1].endswith(" -"):
            cur[-1] = cur[-1][:-1] + ln  # a word hyphenated across lines by the typesetter
        else:
            cur.append(ln)
        if ln.endswith(_SENTENCE_END) and len(ln) < 0.75 * full:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


# ---------------------------------------------------------------- DOCX


def read_docx(path: Path, doc_id: str) -> Document:
    """Paragraphs and table rows of a Word document; Heading styles are sections, Title (or metadata) the title."""
    data = load_bytes(path, doc_id, MAX_PACKAGE_BYTES)
    if not data.startswith(b"PK"):
        raise SourceError(f"{doc_id}: not a DOCX file (not a zip package), skipped")
    check_package(io.BytesIO(data), doc_id)  # a file copied into corpus/ by hand never went through `leftqa add`
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        meta_title = " ".join((document.core_properties.title or "").split())
        items = list(_docx_items(document))
    except Exception as exc:  # noqa: BLE001 - damaged packages fail in zipfile, lxml or python-docx
        raise SourceError(f"{doc_id}: cannot be parsed as DOCX ({type(exc).__name__}: {str(exc)[:120]}), skipped") from None
    out = _TextBuilder()
    title, section, seen_body = meta_title, INTRO, False
    for kind, text in items:
        if kind == "title" or (kind == "heading1" and not seen_body and not title):
            title = title or text
            out.add(text, section, body=False)
        elif kind.startswith("heading"):
            section = text
            out.add(text, section, body=False)
        else:
            out.add(text, section)
            seen_body = True
    return out.document(doc_id, title or title_from_name(path), "no text")


def _docx_items(document: Any) -> Iterator[tuple[str, str]]:
    """("title" | "headingN" | "body", text) for paragraphs and table rows in document order."""
    from docx.table import Table

    content = document.iter_inner_content() if hasattr(document, "iter_inner_content") else document.paragraphs
    for item in content:
        if isinstance(item, Table):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                        cells.append(text)
                if cells:
                    yield "body", " | ".join(cells)
            continue
        text = " ".join(item.text.split())
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        low = style.lower()
        if low == "title":
            yield "title", text
        elif low.startswith("heading"):
            level = low.removeprefix("heading").strip()
            yield f"heading{level if level.isdigit() else 1}", text
        else:
            yield "body", text


# ---------------------------------------------------------------- JSON Lines


def read_jsonl(path: Path, doc_id: str) -> Document:
    """JSON Lines of {"title", "text"} records: one document per file, each record a section named by its title."""
    text = decode(load_bytes(path, doc_id), doc_id)
    out = _TextBuilder()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise SourceError(f"{doc_id}: line {lineno} is not valid JSON, skipped; fix or remove that line") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise SourceError(f'{doc_id}: line {lineno} is not an object with a "text" string, skipped')
        title = " ".join(str(record.get("title") or "").split()) or f"Record {lineno}"
        out.add(title, title, body=False)
        for para in record["text"].splitlines():
            out.add(para, title)
    return out.document(doc_id, title_from_name(path), "no records with text")
