"""The document records every reader returns (Block, Document), and the byte-level helpers readers share."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from leftqa.errors import SourceError

INTRO = "Introduction"
# Text-like sources (txt, md, html, jsonl) are held in memory whole and sentence-split; 20 MB of text is already
# minutes of chunking, so larger files are skipped by size before a byte is read.
MAX_FILE_BYTES = 20_000_000
# PDF and DOCX files are mostly images and compressed XML; their extracted text is far smaller than the file.
MAX_PACKAGE_BYTES = 200_000_000


@dataclass(frozen=True)
class Block:
    """A body paragraph (or caption): `text[start:end]` of its document, under one section heading."""

    section: str
    start: int
    end: int
    page: int | None = None
    # Document offset of the heading line that opened this section (-1: none or unknown); tells apart two
    # sections that share a name ("Notes" under two parts), so a passage never joins them.
    heading: int = -1


@dataclass(frozen=True)
class Document:
    """A parsed source document; block offsets index into `text`."""

    doc_id: str
    title: str
    text: str
    blocks: tuple[Block, ...]
    source: str = ""

    @property
    def fingerprint(self) -> str:
        """Content hash of the document text (changes when the file's text changes)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def decode(data: bytes, name: str) -> str:
    """UTF-8 text of a file (BOM allowed; UTF-16 with a BOM too), or SourceError for binary or other encodings."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise SourceError(f"{name}: not valid UTF-16 despite its byte-order mark, skipped") from None
    elif b"\x00" in data[:8192]:
        raise SourceError(f"{name}: looks binary (NUL bytes), skipped")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{name}: not valid UTF-8 (byte {exc.start}), skipped; re-save it as UTF-8") from None
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 8:
        raise SourceError(f"{name}: looks binary (control characters), skipped")
    return text


def title_from_name(path: Path) -> str:
    """A readable title from a file name."""
    return re.sub(r"[-_]+", " ", path.stem).strip().capitalize() or path.name


def load_bytes(path: Path, doc_id: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a source file, refusing files over `limit` before reading them."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise SourceError(f"{doc_id}: {size / 1e6:.0f} MB is over the {limit / 1e6:.0f} MB limit, skipped")
        data = path.read_bytes()
    except PermissionError:
        raise SourceError(f"{doc_id}: permission denied, skipped") from None
    except OSError as exc:
        raise SourceError(f"{doc_id}: cannot be read ({exc.strerror or exc}), skipped") from None
    if not data or (len(data) < 65536 and not data.strip()):
        raise SourceError(f"{doc_id}: empty file, skipped")
    return data


# A DOCX is a zip package: its parts are inflated in memory when read, so a small file that unpacks to gigabytes
# (a zip bomb) is refused by the sizes its parts unpack to, before anything inflates them.
MAX_UNPACKED_BYTES = 300_000_000
MAX_PACKAGE_PARTS = 10_000


def check_package(package: Path | IO[bytes], label: str, limit: int = MAX_UNPACKED_BYTES, action: str = "skipped") -> None:
    """SourceError when a zip package would unpack to more than `limit` bytes or holds absurdly many parts.

    Python's zipfile never inflates a part beyond the size its header declares, so the declared sizes bound what
    reading the package can cost; a package that is not a readable zip is left for the reader to report."""
    import zipfile

    try:
        with zipfile.ZipFile(package) as z:
            parts = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    unpacked = sum(p.file_size for p in parts)
    if unpacked > limit or len(parts) > MAX_PACKAGE_PARTS:
        raise SourceError(
            f"{label}: the DOCX package unpacks to {unpacked / 1e6:,.0f} MB in {len(parts):,} parts, over the "
            f"{limit / 1e6:.0f} MB limit (a zip bomb?), {action}"
        )
