"""`leftqa add`: copy files and folders into the corpus, or download web pages with their source URL recorded."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from leftqa.errors import CorpusError, SourceError
from leftqa.files import atomic_copy, atomic_write_bytes, file_sha256
from leftqa.ingest.corpus import READERS, SIDECAR, read_source_url, sidecar_path, source_digests
from leftqa.ingest.documents import MAX_FILE_BYTES, MAX_PACKAGE_BYTES, MAX_UNPACKED_BYTES, check_package

WEB_FOLDER = "web"
_PACKAGE_SUFFIXES = (".pdf", ".docx")
_CONTENT_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/jsonl": ".jsonl",
    "application/x-ndjson": ".jsonl",
    "application/jsonlines": ".jsonl",
}


@dataclass(frozen=True)
class Added:
    """One file placed in the corpus (or found there already)."""

    source: str  # the path or URL as given
    dest: str  # path relative to the corpus folder
    status: str  # added | replaced | updated | unchanged | already in corpus


@dataclass(frozen=True)
class AddResult:
    """What `add_sources` did: files placed, one warning per item that failed, and how many failed."""

    added: tuple[Added, ...]
    warnings: tuple[str, ...]
    failed: int

    @property
    def changed(self) -> bool:
        """True when at least one item was placed or found (so the index should be updated)."""
        return bool(self.added)

    def lines(self) -> list[str]:
        """One line per placed file, for the CLI."""
        return [f"{a.status}: {a.source} -> {a.dest}" for a in self.added]


def size_limit(suffix: str) -> int:
    """The largest source file of this kind the corpus reader accepts."""
    return MAX_PACKAGE_BYTES if suffix.lower() in _PACKAGE_SUFFIXES else MAX_FILE_BYTES


def add_sources(
    items: list[str], corpus_dir: Path, replace: bool = False, timeout: float = 30.0, max_bytes: int | None = None
) -> AddResult:
    """Copy files/folders or download URLs into `corpus_dir`; an item that fails is reported and the rest go on."""
    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    added: list[Added] = []
    warnings: list[str] = []
    failed = 0
    for item in items:
        try:
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", item):
                added.append(download(item, corpus_dir, replace, timeout, max_bytes))
            else:
                placed, notes = copy_path(Path(item), corpus_dir, replace)
                added.extend(placed)
                warnings.extend(notes)
        except SourceError as exc:
            warnings.append(str(exc))
            failed += 1
    return AddResult(tuple(added), tuple(warnings), failed)


# ---------------------------------------------------------------- local files


def _inside(path: Path, folder: Path) -> bool:
    real, root = path.resolve(), folder.resolve()
    return real == root or root in real.parents


def copy_path(src: Path, corpus_dir: Path, replace: bool = False) -> tuple[list[Added], list[str]]:
    """Copy one file, or a folder's supported files (same layout), into the corpus; (placed, warnings)."""
    if not src.exists():
        raise SourceError(f"{src}: no such file or folder")
    if _inside(src, corpus_dir):
        if src.is_file():
            return [Added(str(src), src.resolve().relative_to(corpus_dir.resolve()).as_posix(), "already in corpus")], []
        return [Added(str(src), src.resolve().relative_to(corpus_dir.resolve()).as_posix() or ".", "already in corpus")], []
    if src.is_file():
        if src.suffix.lower() not in READERS:
            raise SourceError(f"{src}: unsupported file type {src.suffix!r} (supported: {' '.join(sorted(READERS))})")
        return [_copy_file(src, corpus_dir / src.name, corpus_dir, replace, str(src))], []
    if not src.is_dir():
        raise SourceError(f"{src}: not a regular file or folder")
    placed: list[Added] = []
    warnings: list[str] = []
    other = 0
    dest_root = corpus_dir / src.resolve().name
    for folder, dirs, files in os.walk(src, followlinks=False):
        # Never descend into the corpus itself (adding a parent folder would copy the corpus into itself).
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(Path(folder) / d, corpus_dir))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or name.endswith(SIDECAR):
                continue
            if path.suffix.lower() not in READERS:
                other += 1
                continue
            if path.is_symlink():
                warnings.append(f"{path}: symbolic link, not copied")
                continue
            rel = path.relative_to(src)
            try:
                placed.append(_copy_file(path, dest_root / rel, corpus_dir, replace, str(path)))
            except SourceError as exc:
                warnings.append(str(exc))
    if not placed:
        raise SourceError(f"{src}: no supported files in this folder (supported: {' '.join(sorted(READERS))})")
    if other:
        warnings.append(f"{src}: {other} files of other types not copied")
    return placed, warnings


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return file_sha256(a) == file_sha256(b)


def _copy_file(src: Path, dest: Path, corpus_dir: Path, replace: bool, label: str) -> Added:
    rel = dest.relative_to(corpus_dir).as_posix()
    limit = size_limit(src.suffix)
    try:
        size = src.stat().st_size
        if size > limit:
            raise SourceError(f"{src}: {size / 1e6:.0f} MB is over the {limit / 1e6:.0f} MB limit, not copied")
        check_unpacked_size(src, str(src))
        status = "added"
        if dest.exists():
            if _same_bytes(src, dest):
                return Added(label, rel, "unchanged")
            if not replace:
                raise SourceError(f"{src}: {rel} already exists in the corpus with other content; use --replace to overwrite it")
            status = "replaced"
        dest.parent.mkdir(parents=True, exist_ok=True)
        side = sidecar_path(src)
        if side.is_file():  # a page downloaded earlier keeps its source URL
            atomic_write_bytes(sidecar_path(dest), side.read_bytes())
        atomic_copy(src, dest)
    except PermissionError:
        raise SourceError(f"{src}: permission denied, not copied") from None
    except OSError as exc:
        raise SourceError(f"{src}: cannot be copied ({exc.strerror or exc})") from None
    return Added(label, rel, status)


def check_unpacked_size(path: Path, label: str, limit: int = MAX_UNPACKED_BYTES) -> None:
    """SourceError when a DOCX file would unpack to more than `limit` bytes (`check_package`), before it is copied."""
    if Path(path).suffix.lower() == ".docx":
        check_package(path, label, limit, "not copied")


def safe_file_name(name: str) -> str:
    """The last component of an uploaded file's name, made safe for the corpus folder: no folders, `..`, hidden
    names, control characters or separators survive. SourceError when nothing usable is left."""
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]+", "", base).strip().lstrip(".").strip()
    base = re.sub(r"[^\w.,()+ -]+", "-", base)[:150].strip()
    if not base or not Path(base).stem.strip(". -"):
        raise SourceError(f"{name!r}: not a usable file name, not copied")
    return base


def place_upload(src: Path, name: str, corpus_dir: Path, replace: bool = False) -> Added:
    """Copy an uploaded file into the corpus folder as `safe_file_name(name)`, within the limits of `leftqa add`.

    Whatever the name says, the copy lands directly in `corpus_dir`; the upload must be a regular file (not a
    symbolic link) of a supported type, and an existing link in the corpus is never written through."""
    src, corpus_dir = Path(src), Path(corpus_dir)
    safe = safe_file_name(name)
    shown = safe if safe == name else f"{name!r} (saved as {safe})"
    if Path(safe).suffix.lower() not in READERS:
        raise SourceError(f"{shown}: unsupported file type {Path(safe).suffix!r} (supported: {' '.join(sorted(READERS))})")
    try:
        if not src.is_file() or src.is_symlink():
            raise SourceError(f"{shown}: not a regular file, not copied")
    except OSError as exc:
        raise SourceError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    corpus_dir.mkdir(parents=True, exist_ok=True)
    dest = corpus_dir / safe
    if dest.is_symlink() or (dest.exists() and not dest.is_file()):
        raise SourceError(f"{shown}: {safe} exists in the corpus as a link or folder, not overwritten")
    if not _inside(dest.parent, corpus_dir):
        raise SourceError(f"{shown}: would leave the corpus folder, not copied")
    try:
        return _copy_file(src, dest, corpus_dir, replace, safe)
    except SourceError as exc:  # name the file as uploaded, not by its temporary path
        raise SourceError(str(exc).replace(str(src), shown).replace("use --replace", "replace it")) from None


def remove_source(doc_id: str, corpus_dir: Path) -> str:
    """Delete one source file (and its provenance record) from the corpus by its doc_id; the path removed.

    Only a file the corpus reader lists can be removed, so no name can reach outside the corpus folder; the last
    document is kept, since an index needs at least one."""
    corpus_dir = Path(corpus_dir)
    rel = PurePosixPath(str(doc_id))
    if not str(doc_id).strip() or rel.is_absolute() or ".." in rel.parts or "\\" in str(doc_id):
        raise SourceError(f"{doc_id!r}: not a document of the corpus")
    digests, _ = source_digests(corpus_dir)
    if rel.as_posix() not in digests:
        raise SourceError(f"{doc_id!r}: not a document of the corpus")
    if len(digests) == 1:
        raise CorpusError(f"{doc_id} is the only document in the corpus; add another before removing it")
    path = corpus_dir / rel
    try:
        path.unlink()
        side = sidecar_path(path)
        if side.is_file() and not side.is_symlink():
            side.unlink()
    except OSError as exc:
        raise SourceError(f"{doc_id}: cannot be removed ({exc.strerror or exc})") from None
    return rel.as_posix()


# ---------------------------------------------------------------- downloads


def url_file_name(url: str, suffix: str) -> str:
    """A safe, readable file name for a URL: host and path as a slug (no slashes, no leading dot) plus suffix."""
    parts = urlsplit(url)
    path = "/".join(seg for seg in parts.path.split("/") if seg not in ("", ".", ".."))
    stem, dot, ext = path.rpartition(".")
    if dot and "/" not in ext and f".{ext.lower()}" in (suffix, ".htm", ".html"):
        path = stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{parts.hostname or 'page'}-{parts.port or ''}-{path}")
    slug = re.sub(r"-{2,}", "-", slug).strip("-._")[:100] or "page"
    if parts.query:
        slug += "-" + hashlib.sha256(parts.query.encode("utf-8")).hexdigest()[:8]
    return slug + suffix


def _suffix_for(content_type: str, url: str) -> str:
    if content_type in _CONTENT_TYPES:
        return _CONTENT_TYPES[content_type]
    ext = Path(urlsplit(url).path).suffix.lower()
    if ext in READERS:
        return ext
    raise SourceError(f"{url}: unsupported content type {content_type!r} (leftqa reads HTML, PDF, DOCX, text and Markdown)")


def fetch(url: str, timeout: float, max_bytes: int) -> tuple[bytes, str, str, str]:
    """(body, content type, charset, final URL) of an http(s) URL, within `timeout` seconds and `max_bytes`."""
    import http.client
    import socket
    import urllib.error
    import urllib.request

    from leftqa import __version__

    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise SourceError(f"{url}: only http and https URLs can be downloaded")
    request = urllib.request.Request(url, headers={"User-Agent": f"leftqa/{__version__}", "Accept": "text/html,application/pdf,text/plain;q=0.9,*/*;q=0.5"})
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            final = resp.geturl()
            if urlsplit(final).scheme.lower() not in ("http", "https"):
                raise SourceError(f"{url}: redirected to a non-http address {final}")
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise SourceError(f"{url}: {int(length):,} bytes is over the {max_bytes:,}-byte download limit")
            chunks: list[bytes] = []
            total = 0
            while True:
                if time.monotonic() > deadline:
                    raise SourceError(f"{url}: download timed out after {timeout:g}s")
                # read1 returns what one recv gives, so a server trickling bytes cannot outlast the deadline.
                chunk = resp.read1(65536)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise SourceError(f"{url}: more than the {max_bytes:,}-byte download limit, not saved")
                chunks.append(chunk)
            content_type = resp.headers.get_content_type()
            charset = resp.headers.get_content_charset() or ""
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            raise SourceError(f"{url}: download timed out after {timeout:g}s") from None
        raise SourceError(f"{url}: cannot connect ({exc.reason})") from None
    except (TimeoutError, socket.timeout):
        raise SourceError(f"{url}: download timed out after {timeout:g}s") from None
    except (http.client.HTTPException, OSError, ValueError) as exc:
        raise SourceError(f"{url}: download failed ({type(exc).__name__}: {exc})") from None
    return b"".join(chunks), content_type, charset, final


def _to_utf8(data: bytes, charset: str) -> bytes:
    """Text re-encoded as UTF-8 with a BOM (which outranks an HTML page's own <meta charset>), when the server named a charset."""
    if not charset or charset.lower().replace("_", "-") in ("utf-8", "utf8"):
        return data
    try:
        return b"\xef\xbb\xbf" + data.decode(charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return data


def download(url: str, corpus_dir: Path, replace: bool = False, timeout: float = 30.0, max_bytes: int | None = None) -> Added:
    """Download an http(s) URL into corpus/web/, with a sidecar recording its source URL."""
    body, content_type, charset, final = fetch(url, timeout, max_bytes or MAX_FILE_BYTES)
    suffix = _suffix_for(content_type, final)
    if suffix not in _PACKAGE_SUFFIXES:
        body = _to_utf8(body, charset)
    if not body.strip():
        raise SourceError(f"{url}: the server sent an empty page, not saved")
    dest = Path(corpus_dir) / WEB_FOLDER / url_file_name(url, suffix)
    rel = dest.relative_to(corpus_dir).as_posix()
    status = "added"
    if dest.exists():
        same_url = read_source_url(dest) == url
        if dest.read_bytes() == body and same_url:
            return Added(url, rel, "unchanged")
        if not same_url and not replace:
            raise SourceError(f"{url}: {rel} already exists in the corpus from another source; use --replace to overwrite it")
        status = "updated" if same_url else "replaced"
    record = {
        "url": url,
        "final_url": final,
        "content_type": content_type,
        "retrieved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(sidecar_path(dest), (json.dumps(record, indent=2) + "\n").encode("utf-8"))
        atomic_write_bytes(dest, body)
    except OSError as exc:
        raise SourceError(f"{url}: cannot be saved into {corpus_dir} ({exc.strerror or exc})") from None
    return Added(url, rel, status)
