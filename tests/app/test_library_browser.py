"""The Library tab in a real headless Chromium: drop a PDF, watch it index, ask about it, remove it, ask again.

Uses the browser of test_ui_browser (Debian's /usr/bin/chromium through Playwright; skipped only where there is
none unless LEFTQA_REQUIRE_BROWSER is set) and a server over a private copy of the real corpus and index."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from test_library import MILL_TXT
from test_library_http import library  # noqa: F401 - the fixture: a private real-model server
from test_ui_browser import TIMEOUT_MS, Visit, browser, overlaps  # noqa: F401 - the Chromium fixture

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MILL_Q = "Who built the paper mill at Orrin?"
BUILD_MS = 300_000  # a build on a loaded 2-core machine; the wait ends as soon as the report is shown


@pytest.fixture
def visit(browser, library: tuple[str, Any]) -> Iterator[Visit]:  # noqa: ANN001, F811
    v = Visit(browser, library[0])
    yield v
    v.page.close()
    assert v.dialogs == [], f"a dialog opened: {v.dialogs}"
    assert v.external == [], f"the page fetched from other hosts: {v.external}"


def test_drop_a_pdf_into_the_library_ask_about_it_remove_it(
    visit: Visit, library: tuple[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from playwright.sync_api import expect
    from samples import make_pdf

    import leftqa.index.builder as builder

    # The first build waits until the progress bar has been seen, so the check needs no timing.
    real_build, release = builder.build_index, threading.Event()
    monkeypatch.setattr(builder, "build_index", lambda *a, **k: (release.wait(300), real_build(*a, **k))[1])
    page = visit.page
    pdf = make_pdf(tmp_path / "orrin-mill.pdf", [("The mill", [MILL_TXT.split("\n\n\n")[1].strip()])], title="The Mill at Orrin")

    page.get_by_role("tab", name="Library").click()
    table = page.locator("#lq-docs")
    expect(table).to_contain_text("Anti-Stalinist left")
    expect(table).not_to_contain_text("The Mill at Orrin")
    page.locator("#lq-upload input[type=file]").set_input_files(str(pdf))
    expect(page.locator("#lq-upload").get_by_role("cell", name="orrin-mill.pdf")).to_be_visible(timeout=TIMEOUT_MS)
    page.locator("#lq-add").click()
    status = page.locator("#lq-lib-status")
    try:
        # The progress (its label and bar, and its timer) is drawn beside the status line, never over it.
        progress = page.locator("#lq-library-tab .progress-level")
        expect(progress).to_be_visible(timeout=BUILD_MS)
        expect(progress).to_contain_text("updating the index", timeout=BUILD_MS)
        page.wait_for_timeout(300)  # the bar and the timer settle
        drawn = [b for b in (e.bounding_box() for e in page.locator("#lq-library-tab .progress-level, #lq-library-tab .progress-text").all()) if b]
        assert len(drawn) == 2, drawn
        line, docs = status.bounding_box(), table.bounding_box()
        assert line and docs and line["height"] > 0 and status.locator(".lq-status").is_visible()
        for box in drawn:
            assert not overlaps(box, line), f"the progress {box} covers the status line {line}"
            assert not overlaps(box, docs), f"the progress {box} covers the document list {docs}"
        expect(status.locator(".progress-level, .progress-text")).to_have_count(0)
        shot = tmp_path / "progress.png"
        page.screenshot(path=str(shot))
        print(f"screenshot: {shot}")
    finally:
        release.set()
    expect(status).to_contain_text("2 documents: 1 added, 0 changed, 0 removed, 1 unchanged", timeout=BUILD_MS)
    expect(status).to_contain_text("added: orrin-mill.pdf")
    expect(status).to_contain_text("The chat now answers from 2 documents")
    expect(table).to_contain_text("The Mill at Orrin")
    expect(table).to_contain_text("orrin-mill.pdf")

    page.get_by_role("tab", name="Chat").click()
    visit.ask(MILL_Q)
    expect(page.locator("#lq-chat .lq-answer").last).to_contain_text("Tobias and Elke Marran")
    expect(page.locator("#lq-sources")).to_contain_text("The Mill at Orrin")

    page.get_by_role("tab", name="Library").click()
    choice = page.locator("#lq-remove-choice input")
    choice.click()
    page.get_by_role("option", name="orrin-mill.pdf").click()
    page.locator("#lq-remove").click()
    expect(status).to_contain_text("Removed orrin-mill.pdf.", timeout=BUILD_MS)
    expect(status).to_contain_text("1 documents: 0 added, 0 changed, 1 removed, 1 unchanged")
    expect(table).not_to_contain_text("The Mill at Orrin")

    page.get_by_role("tab", name="Chat").click()
    visit.ask(MILL_Q)
    expect(page.locator("#lq-chat .lq-abstain").last).to_contain_text("Not in the corpus.")
    assert not (Path(library[1].settings.corpus_dir) / "orrin-mill.pdf").exists()


def test_a_skipped_file_is_shown_with_its_reason(visit: Visit, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = visit.page
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    page.get_by_role("tab", name="Library").click()
    page.locator("#lq-upload input[type=file]").set_input_files(str(empty))
    expect(page.locator("#lq-upload").get_by_role("cell", name="empty.txt")).to_be_visible(timeout=TIMEOUT_MS)
    page.locator("#lq-add").click()
    status = page.locator("#lq-lib-status")
    expect(status).to_contain_text("nothing was added", timeout=BUILD_MS)
    expect(status.locator(".lq-skipped")).to_contain_text("empty.txt: empty file, skipped")
    expect(status.locator(".lq-skipped")).not_to_contain_text("empty.txt: empty.txt")  # the reason does not repeat the name


def test_what_the_library_says_to_nothing_chosen_and_bad_input(visit: Visit, library: tuple[str, Any], tmp_path: Path) -> None:  # noqa: F811
    import re

    from playwright.sync_api import expect

    page = visit.page
    page.get_by_role("tab", name="Library").click()
    status = page.locator("#lq-lib-status")
    size = re.compile(r"The chat still answers from [1-9]\d* documents, [1-9]\d* passages")

    page.locator("#lq-add").click()  # Add files with nothing chosen
    expect(status).to_contain_text("no files were chosen; choose one or more files, then press Add files", timeout=BUILD_MS)
    expect(status).to_contain_text(size)
    expect(status).not_to_contain_text("0 documents")

    page.locator("#lq-remove").click()  # Remove with nothing chosen
    expect(status).to_contain_text("no document was chosen; choose one in the list, then press Remove", timeout=BUILD_MS)
    expect(status).not_to_contain_text("Skipped")

    choice = page.locator("#lq-remove-choice input")  # a path typed into the list (it takes custom values)
    choice.fill("../../etc/passwd")
    choice.press("Enter")
    page.locator("#lq-remove").click()
    expect(status).to_contain_text("nothing was removed: '../../etc/passwd': not a document of the corpus", timeout=BUILD_MS)
    expect(status).to_contain_text(size)
    expect(status).not_to_contain_text("Skipped")
    expect(status).not_to_contain_text("nothing was added")

    page.locator("#lq-add-url").click()  # Add page with no address
    expect(status).to_contain_text("enter a web address (http or https) first", timeout=BUILD_MS)
    expect(status).not_to_contain_text("(empty)")

    note = tmp_path / "note.txt"  # an 18-byte, one-line text file is a document
    note.write_text("Orla Brenn rowed.\n", encoding="utf-8")
    assert note.stat().st_size == 18
    page.locator("#lq-upload input[type=file]").set_input_files(str(note))
    expect(page.locator("#lq-upload").get_by_role("cell", name="note.txt")).to_be_visible(timeout=TIMEOUT_MS)
    page.locator("#lq-add").click()
    expect(status).to_contain_text("added: note.txt", timeout=BUILD_MS)
    expect(status).not_to_contain_text("no text")
    expect(page.locator("#lq-docs")).to_contain_text("note.txt")
    from leftqa.app.library import Library

    assert Library(library[1]).remove("note.txt").ok


def test_document_titles_and_reasons_are_shown_as_text(visit: Visit, library: tuple[str, Any], tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect

    page = visit.page
    evil = "<img src=x onerror=alert(1)> Harbour notes"
    hostile = tmp_path / "evil <script>alert(2)<%2Fscript>.md"
    hostile.write_text(f"# {evil}\n\n{MILL_TXT.split(chr(10) * 3)[1].strip()}\n", encoding="utf-8")
    page.get_by_role("tab", name="Library").click()
    page.locator("#lq-upload input[type=file]").set_input_files(str(hostile))
    expect(page.locator("#lq-upload")).to_contain_text("evil", timeout=TIMEOUT_MS)
    page.locator("#lq-add").click()
    status = page.locator("#lq-lib-status")
    expect(status).to_contain_text("1 added", timeout=BUILD_MS)
    expect(page.locator("#lq-docs")).to_contain_text(evil)
    page.wait_for_timeout(500)  # give an injected handler time to fire, were there one
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("#lq-docs script, #lq-lib-status script").count() == 0
    doc_id = next(d.doc_id for d in library[1].index.manifest.documents if d.title == evil)
    from leftqa.app.library import Library

    assert Library(library[1]).remove(doc_id).ok
