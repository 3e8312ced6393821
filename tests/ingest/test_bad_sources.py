"""Bad sources are skipped with one warning line naming the file and the reason; the rest of the corpus indexes."""

from __future__ import annotations

import io
import os
import pathlib
import zipfile
from pathlib import Path

import pytest
from conftest import FAKE_MODEL, HARBOUR_TXT
from samples import make_pdf, make_scanned_pdf

from leftqa.app import cli
from leftqa.config import Settings
from leftqa.errors import SourceError
from leftqa.index.builder import build_index
from leftqa.index.store import Index
from leftqa.ingest.corpus import list_sources, read_corpus, read_document
from leftqa.ingest.documents import MAX_FILE_BYTES

SECRET = "The secret outside the corpus must never be indexed."


def _zip_without_docx_parts() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "a zip file, but not a Word document")
    return buf.getvalue()


# name -> (bytes, the reason its warning must give)
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty.txt": (b"", "empty file, skipped"),
    "blank.md": (b"  \n\n\t\n", "empty file, skipped"),
    "image.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "looks binary (NUL bytes), skipped"),
    "controls.md": (bytes(range(1, 32)) * 4, "looks binary (control characters), skipped"),
    "latin1.txt": ("Caf\u00e9 society of the 1930s.".encode("latin-1"), "not valid UTF-8 (byte 3), skipped; re-save it as UTF-8"),
    "fake.pdf": (b"just some text named like a PDF", "not a PDF file (no %PDF header), skipped"),
    "broken.pdf": (b"%PDF-1.4\n1 0 obj garbage\n%%EOF\n", "cannot be parsed as PDF (PdfReadError: startxref not found), skipped"),
    "scripts.html": (b"<html><head><script>document.write('hi')</script><style>p{}</style></head><body><script>var a = 1;</script><nav>Home | About</nav></body></html>", "no main text (only scripts, styles or navigation), skipped"),
    "binary.html": (b"<html>\x00\x01\x02\x00binary", "looks binary (NUL bytes), skipped"),
    "notzip.docx": (b"plain text named like a Word file", "not a DOCX file (not a zip package), skipped"),
    "badzip.docx": (_zip_without_docx_parts(), "cannot be parsed as DOCX (KeyError: \"There is no item named '[Content_Types].xml' in the archive\"), skipped"),
    "bad.jsonl": (b'{"title": "ok", "text": "fine"}\n{oops\n', "line 2 is not valid JSON, skipped; fix or remove that line"),
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "good.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    for name, (data, _) in BAD_FILES.items():
        (root / name).write_bytes(data)
    make_scanned_pdf(root / "scan.pdf")
    with (root / "huge.txt").open("wb") as f:  # 50 MB, sparse: the reader must refuse it by size, not read it
        f.truncate(50_000_000)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    (root / "outside.txt").symlink_to(outside / "secret.txt")
    (root / "outside-dir").symlink_to(outside, target_is_directory=True)
    (root / "escape.txt").symlink_to("../outside/secret.txt")
    (root / "self-loop.txt").symlink_to("self-loop.txt")
    (root / "loop-a.txt").symlink_to("loop-b.txt")
    (root / "loop-b.txt").symlink_to("loop-a.txt")
    (root / "dangling.md").symlink_to("does-not-exist.md")
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)  # a folder loop back to the corpus root
    (root / "sub" / "good-link.txt").symlink_to("../good.txt")  # inside the corpus: the same file, read once
    os.mkfifo(root / "pipe.txt")
    return root


EXPECTED = sorted(
    [f"{name}: {reason}" for name, (_, reason) in BAD_FILES.items()]
    + [
        "scan.pdf: PDF has no text layer (scanned images? OCR it first), skipped",
        f"huge.txt: 50 MB is over the {MAX_FILE_BYTES // 1_000_000} MB limit, skipped",
        "outside.txt: points outside the corpus folder, skipped",
        "outside-dir: points outside the corpus folder, skipped",
        "escape.txt: points outside the corpus folder, skipped",
        "self-loop.txt: broken or looping link, skipped",
        "loop-a.txt: broken or looping link, skipped",
        "loop-b.txt: broken or looping link, skipped",
        "dangling.md: broken or looping link, skipped",
        "pipe.txt: not a regular file, skipped",
    ]
)


def test_every_bad_source_is_skipped_with_one_warning_and_the_rest_indexes(corpus: Path, tmp_path: Path) -> None:
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL)
    report = build_index(settings)
    assert sorted(report.warnings) == EXPECTED
    assert all("\n" not in w for w in report.warnings)
    assert report.summary().startswith("1 documents: 1 added, 0 changed, 0 removed, 0 unchanged; ")
    index = Index.load(settings.index_dir)
    assert {p.doc_id for p in index.passages} == {"good.txt"}
    assert not any("secret" in p.text for p in index.passages)
    # Skipped files are remembered, so an unchanged corpus still reports them without rebuilding.
    again = build_index(settings)
    assert not again.rebuilt and sorted(again.warnings) == EXPECTED


def test_cli_prints_one_line_per_skipped_file(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["index", "--corpus", str(corpus), "--index", str(tmp_path / "index"), "--model", FAKE_MODEL, "-q"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert sorted(err.splitlines()) == sorted(f"warning: {w}" for w in EXPECTED)
    assert out.splitlines()[0].startswith("1 documents: 1 added")


def test_listing_never_leaves_the_corpus_nor_loops(corpus: Path) -> None:
    found, _ = list_sources(corpus, (".txt",))
    assert [doc_id for _, doc_id in found] == ["empty.txt", "good.txt", "huge.txt", "image.txt", "latin1.txt"]


def test_huge_file_is_refused_before_reading(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_read(self: Path) -> bytes:
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(pathlib.Path, "read_bytes", no_read)
    with pytest.raises(SourceError, match="huge.txt: 50 MB is over the 20 MB limit"):
        read_document(corpus / "huge.txt", "huge.txt")


@pytest.mark.parametrize("name", ["good.txt", "page.html", "paper.pdf", "records.jsonl"])
def test_permission_denied_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # Tests run as root, where chmod 000 does not stop reading: simulate the refusal at the file-system call.
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "other.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    if name.endswith(".pdf"):
        make_pdf(root / name, [(None, ["Some text on a page."])])
    else:
        (root / name).write_text('{"text": "x"}' if name.endswith(".jsonl") else "<p>Some text.</p>", encoding="utf-8")
    real_read = pathlib.Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
    docs, warnings = read_corpus(root)
    assert [d.doc_id for d in docs] == ["other.txt"]
    assert warnings == [f"{name}: permission denied, skipped"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; covered by the simulated case above")
def test_unreadable_file_mode(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "other.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    locked = root / "locked.txt"
    locked.write_text(HARBOUR_TXT, encoding="utf-8")
    locked.chmod(0)
    try:
        docs, warnings = read_corpus(root)
    finally:
        locked.chmod(0o644)
    assert [d.doc_id for d in docs] == ["other.txt"]
    assert warnings == ["locked.txt: permission denied, skipped"]


def test_utf16_with_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes("Grüße aus Köln, written in UTF-16.\n".encode("utf-16"))
    assert read_document(path, "utf16.txt").text.strip() == "Grüße aus Köln, written in UTF-16."
