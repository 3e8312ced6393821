"""Read corpus documents into title, sections and body blocks with offsets into the document text."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Callable

from leftqa.errors import CorpusError, SourceError
from leftqa.ingest import formats
from leftqa.ingest.documents import (
    INTRO,
    Block,
    Document,
    decode,
    load_bytes,
    title_from_name,
)

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
# `leftqa add URL` records where a file came from in a sidecar beside it: NAME.EXT + SIDECAR.
SIDECAR = ".source.json"

# MediaWiki image lines: "File:Name.jpg|thumb|upright|Caption text". Only the caption carries facts.
_FILE_LINE = re.compile(r"^(?:File|Image):[^|\n]*\|(?:[^|\n]*\|)*")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# Lines that start their own Markdown block (list item, quote, table row) rather than continue a paragraph.
_MD_BLOCK_START = re.compile(r"^(?:[-*+]\s|\d+[.)]\s|>|\|)")
_SENTENCE_END = (".", "!", "?", ":", ";", ",")
_PARAGRAPH_END = (".", "!", "?", ":", ";", "…", '"', "”", "’", "'", ")", "]")
_WRAP_MIN_CHARS = 40


def _is_heading(line: str, prev_blank: bool, next_blank: bool) -> bool:
    """A plain-text heading: a short line standing alone between blank lines, not ending like a sentence."""
    words = line.split()
    return (
        prev_blank
        and next_blank
        and 0 < len(words) <= 20
        and len(line) <= 160
        and not line.rstrip().endswith(_SENTENCE_END)
        and not _FILE_LINE.match(line)
    )


def _lines(text: str) -> list[tuple[int, int, str]]:
    """(start, end, line) for every line, offsets excluding the newline."""
    out, pos = [], 0
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        out.append((pos, pos + len(line), line))
        pos += len(raw)
    return out


def _body_span(start: int, line: str) -> tuple[int, int] | None:
    """The part of a body line that is text: captions lose their `File:…|` markup, whitespace is trimmed."""
    m = _FILE_LINE.match(line)
    lo = m.end() if m else 0
    hi = len(line)
    while lo < hi and line[lo].isspace():
        lo += 1
    while hi > lo and line[hi - 1].isspace():
        hi -= 1
    return (start + lo, start + hi) if hi > lo else None


def parse_plain(text: str, fallback_title: str) -> tuple[str, tuple[Block, ...]]:
    """Title and blocks of a plain-text document in the seed's style (title line, standalone headings)."""
    lines = _lines(text)
    n = len(lines)
    blank = [not ln.strip() for _, _, ln in lines]
    title, section, blocks = fallback_title, INTRO, []
    first = next((i for i in range(n) if not blank[i]), None)
    heading_at = -1
    wrapped = False  # the previous line was cut mid-sentence (hard-wrapped text), so this line continues it
    for i, (start, _end, line) in enumerate(lines):
        if blank[i]:
            wrapped = False
            continue
        prev_blank = i == 0 or blank[i - 1]
        next_blank = i == n - 1 or blank[i + 1]
        if _is_heading(line, prev_blank, next_blank):
            if i == first and i + 1 < n:
                title = line.strip()
            else:
                section, heading_at = line.strip(), start
            wrapped = False
            continue
        span = _body_span(start, line)
        if span:
            caption = bool(_FILE_LINE.match(line))
            if wrapped and not caption:
                blocks[-1] = Block(section, blocks[-1].start, span[1], heading=heading_at)
            else:
                blocks.append(Block(section, *span, heading=heading_at))
            # The seed puts one paragraph per line, each ending like a sentence; a long line that does not is
            # a hard wrap (short unpunctuated lines are list items or labels and stay on their own).
            body = line.strip()
            wrapped = not caption and len(body) >= _WRAP_MIN_CHARS and not body.endswith(_PARAGRAPH_END)
    if not blocks:  # only title- or heading-like lines (a one-line note): they are the text, not its headings
        blocks = [Block(INTRO, *span) for start, _end, line in lines if (span := _body_span(start, line))]
    return title, tuple(blocks)


def parse_markdown(text: str, fallback_title: str) -> tuple[str, tuple[Block, ...]]:
    """Title and blocks of a Markdown document: `#` headings are sections, the first top heading the title."""
    title, section, blocks = fallback_title, INTRO, []
    in_fence = False
    seen_body = False
    heading_at = -1
    titled = False  # a flag, not `title == fallback_title`: a heading may repeat the file name
    continues = False  # the previous line was paragraph text, so a wrapped next line belongs to it
    for start, _end, line in _lines(text):
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
            continues = False
            continue
        if not stripped:
            continues = False
            continue
        m = None if in_fence else _MD_HEADING.match(stripped)
        if m:
            heading = m.group(2).strip()
            if len(m.group(1)) == 1 and not seen_body and not titled:
                title, titled = heading or fallback_title, True
            elif heading:
                section, heading_at = heading, start
            continues = False
            continue
        span = _body_span(start, line)
        if span:
            caption = bool(_FILE_LINE.match(line))
            # Markdown wraps a paragraph over consecutive lines; one block keeps its sentences whole.
            if continues and not caption and not _MD_BLOCK_START.match(stripped):
                blocks[-1] = Block(section, blocks[-1].start, span[1], heading=heading_at)
            else:
                blocks.append(Block(section, *span, heading=heading_at))
            seen_body = True
            continues = not in_fence and not caption
    return title, tuple(blocks)


def parse_text_document(doc_id: str, text: str, suffix: str, fallback_title: str, source: str = "") -> Document:
    """A Document from text already decoded, by file kind."""
    parse = parse_markdown if suffix in (".md", ".markdown") else parse_plain
    title, blocks = parse(text, fallback_title)
    return Document(doc_id=doc_id, title=title, text=text, blocks=blocks, source=source)


def read_text_file(path: Path, doc_id: str) -> Document:
    """Read one .txt/.md file."""
    data = load_bytes(path, doc_id)
    text = decode(data, doc_id)
    doc = parse_text_document(doc_id, text, path.suffix.lower(), title_from_name(path))
    if not doc.blocks:
        raise SourceError(f"{doc_id}: no text, skipped")
    return doc


def list_sources(root: Path, suffixes: tuple[str, ...]) -> tuple[list[tuple[Path, str]], list[str]]:
    """Files under root with a known suffix, as (path, doc_id), never leaving root; plus warnings."""
    if not root.exists():
        raise CorpusError(f"corpus folder {root} does not exist")
    if not root.is_dir():
        raise CorpusError(f"corpus path {root} is not a folder")
    real_root = root.resolve()
    found: list[tuple[Path, str]] = []
    warnings: list[str] = []
    seen: set[Path] = {real_root}  # so a link back to the root (or an ancestor folder) is not walked twice
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError as exc:
            warnings.append(f"{folder}: cannot list folder ({exc.strerror or exc}), skipped")
            continue
        for entry in entries:
            rel = entry.relative_to(root).as_posix()
            if entry.name.startswith("."):
                continue
            try:
                real = entry.resolve(strict=True)
            except (OSError, RuntimeError):
                warnings.append(f"{rel}: broken or looping link, skipped")
                continue
            if real != real_root and real_root not in real.parents:
                warnings.append(f"{rel}: points outside the corpus folder, skipped")
                continue
            if real in seen:
                continue
            if entry.is_dir():
                seen.add(real)
                stack.append(entry)
            elif entry.suffix.lower() in suffixes:
                seen.add(real)
                if not entry.is_file():  # a FIFO or device named like a document would block or never end
                    warnings.append(f"{rel}: not a regular file, skipped")
                    continue
                found.append((entry, rel))
    found.sort(key=lambda item: item[1])
    return found, warnings


def _reader(name: str) -> Callable[[Path, str], Document]:
    """A reader of formats.py looked up at call time, so a patched reader (tests) is the one used."""

    def reader(path: Path, doc_id: str) -> Document:
        return getattr(formats, name)(path, doc_id)

    reader.__name__ = name
    return reader


READERS: dict[str, Callable[[Path, str], Document]] = {
    **{suffix: read_text_file for suffix in TEXT_SUFFIXES},
    ".html": _reader("read_html"),
    ".htm": _reader("read_html"),
    ".pdf": _reader("read_pdf"),
    ".docx": _reader("read_docx"),
    ".jsonl": _reader("read_jsonl"),
}


def sidecar_path(path: Path) -> Path:
    """Where the provenance record of a source file lives."""
    return path.with_name(path.name + SIDECAR)


def read_source_url(path: Path) -> str:
    """The URL a source file was downloaded from (recorded by `leftqa add`), or ""."""
    side = sidecar_path(path)
    try:
        data = json.loads(side.read_text("utf-8"))
    except (OSError, ValueError):
        return ""
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else ""


def read_document(path: Path, doc_id: str) -> Document:
    """Parse one source file with the reader for its suffix; any OS failure becomes a SourceError."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SourceError(f"{doc_id}: unsupported file type {path.suffix!r}, skipped")
    try:
        doc = reader(path, doc_id)
    except PermissionError:
        raise SourceError(f"{doc_id}: permission denied, skipped") from None
    except OSError as exc:
        raise SourceError(f"{doc_id}: cannot be read ({exc.strerror or exc}), skipped") from None
    if not doc.source:
        url = read_source_url(path)
        if url:
            doc = replace(doc, source=url)
    return doc


def read_corpus(root: Path) -> tuple[list[Document], list[str]]:
    """Every readable document under root, in path order, and one warning line per skipped file."""
    found, warnings = list_sources(root, tuple(READERS))
    docs: list[Document] = []
    for path, doc_id in found:
        try:
            docs.append(read_document(path, doc_id))
        except SourceError as exc:
            warnings.append(str(exc))
    return docs, warnings


def source_digest(path: Path) -> str:
    """Hex sha256 of a source file's bytes (streamed) and of its provenance sidecar, if any; "" if unreadable."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        h = hashlib.sha256()
    side = sidecar_path(path)
    if side.is_file():
        try:
            h.update(b"\x00source\x00" + side.read_bytes())
        except OSError:
            pass
    return h.hexdigest()


def source_digests(root: Path) -> tuple[dict[str, str], list[str]]:
    """{doc_id: source_digest} of every source file under root, in path order; plus listing warnings."""
    found, warnings = list_sources(root, tuple(READERS))
    return {doc_id: source_digest(path) for path, doc_id in found}, warnings


def fingerprint_of(digests: dict[str, str]) -> str:
    """The corpus fingerprint from per-file digests (see `corpus_fingerprint`)."""
    h = hashlib.sha256()
    for doc_id, digest in digests.items():
        h.update(doc_id.encode("utf-8") + b"\x00" + bytes.fromhex(digest))
    return h.hexdigest()[:32]


def corpus_fingerprint(root: Path) -> str:
    """Hash of every source file's path and bytes: changes whenever the corpus changes."""
    return fingerprint_of(source_digests(root)[0])
