"""The chat UI in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against the real server.

Skipped only where no Chromium exists; with LEFTQA_REQUIRE_BROWSER set (as .ci/run does) a missing or broken
browser fails instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import UIServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]
ANTWERP = "Who led the Antwerp Group?"
EVIL = "<script>alert(1)</script> <img src=x onerror=alert(1)>"
TIMEOUT_MS = 60_000


def require_browser() -> None:
    reason = ""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[dev]')"
    if reason and os.environ.get("LEFTQA_REQUIRE_BROWSER"):
        pytest.fail(f"LEFTQA_REQUIRE_BROWSER is set but {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Chromium context with a new, empty profile."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM), args=ARGS, headless=True, viewport={"width": 1400, "height": 900},
        )
        yield ctx
        ctx.close()


@pytest.mark.parametrize(("required", "outcome"), [("", pytest.skip.Exception), ("1", pytest.fail.Exception)])
def test_missing_chromium_skips_only_when_the_browser_is_not_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, required: str, outcome: type) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("LEFTQA_REQUIRE_BROWSER", required)
    with pytest.raises(outcome, match="no Chromium at"):
        require_browser()


class Visit:
    """One page of the app, recording dialogs (an alert would mean injected script ran) and off-host requests."""

    def __init__(self, browser, url: str) -> None:  # noqa: ANN001
        self.url = url
        self.page = browser.new_page()
        self.dialogs: list[str] = []
        self.external: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: None if r.url.startswith((url.rstrip("/"), "data:", "blob:")) else self.external.append(r.url))
        self.page.goto(url)
        self.page.locator("#lq-question textarea").wait_for(timeout=TIMEOUT_MS)

    def _dialog(self, dialog) -> None:  # noqa: ANN001
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ask(self, question: str) -> None:
        """Type a question, press Enter, and wait until its answer bubble is in place."""
        bubbles = self.page.locator("#lq-chat .lq-answer, #lq-chat .lq-abstain, #lq-chat .lq-error")
        before = bubbles.count()
        box = self.page.locator("#lq-question textarea")
        box.fill(question)
        box.press("Enter")
        self.page.wait_for_function(
            "n => document.querySelectorAll('#lq-chat .lq-answer, #lq-chat .lq-abstain, #lq-chat .lq-error').length > n",
            arg=before, timeout=TIMEOUT_MS,
        )


def overlaps(a: dict, b: dict) -> bool:
    """Whether two bounding boxes ({x, y, width, height}) share any area."""
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


# Scrolls the conversation a few pixels at a time, from the top until its first message has left the view, and returns
# each icon (the chat's clear and copy-all, every message's copy), or its label, found over the visible part of a
# message's text. Gradio's round "scroll to the latest message" arrow is meant to float over the messages.
ICONS_OVER_TEXT = """() => {
  const chat = document.querySelector('#lq-chat');
  const scroller = chat.querySelector('.bubble-wrap');
  const first = chat.querySelector('.message-row .message-content');
  const seen = (r) => r.width > 0 && r.height > 0;
  const clip = (r, v) => ({x: Math.max(r.left, v.left), y: Math.max(r.top, v.top),
                           right: Math.min(r.right, v.right), bottom: Math.min(r.bottom, v.bottom)});
  const meet = (a, b) => a.x < b.right && b.x < a.right && a.y < b.bottom && b.y < a.bottom;
  const found = [];
  const end = first.getBoundingClientRect().bottom - scroller.getBoundingClientRect().top + scroller.scrollTop;
  let steps = 0;
  for (let top = 0; top <= end; top += 3, steps++) {
    scroller.scrollTop = top;
    const view = scroller.getBoundingClientRect();
    const icons = [...chat.querySelectorAll('button.icon-button, label')].filter(
      (e) => !e.closest('.scroll-down-button-container') && seen(e.getBoundingClientRect()));
    for (const text of chat.querySelectorAll('.message-content')) {
      const t = clip(text.getBoundingClientRect(), view);
      if (t.right <= t.x || t.bottom <= t.y) continue;  // scrolled out of view
      for (const icon of icons) {
        const r = icon.getBoundingClientRect();
        if (meet({x: r.left, y: r.top, right: r.right, bottom: r.bottom}, t))
          found.push(`scrollTop ${top}: ${icon.getAttribute('aria-label') || icon.textContent.trim()} over ${JSON.stringify(text.textContent.slice(0, 40))}`);
      }
    }
  }
  return {steps, end, scrollable: scroller.scrollHeight > scroller.clientHeight, found: found.slice(0, 10)};
}"""


@pytest.fixture
def visit(browser, ui_server: UIServer) -> Iterator[Visit]:  # noqa: ANN001 - browser first: no server without one
    v = Visit(browser, ui_server.url)
    yield v
    v.page.close()
    assert v.dialogs == [], f"a dialog opened: {v.dialogs}"
    assert v.external == [], f"the page fetched from other hosts: {v.external}"


def test_answer_shows_markers_and_highlighted_sources_and_markers_bring_them_into_view(visit: Visit, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = visit.page
    expect(page.locator("#lq-chat").get_by_text(ANTWERP)).to_be_visible()  # an example question on first load
    visit.ask(ANTWERP)
    marker = page.locator('#lq-chat a.lq-cite[href="#lq-src-1-1"]').first  # a passage may back several sentences
    expect(marker).to_be_visible()
    expect(marker).to_have_text("[1]")
    expect(page.locator("#lq-chat .lq-answer").last).to_contain_text("led by Hermann Knüfken.")
    source = page.locator("#lq-src-1-1")
    expect(source.locator("mark.lq-quote", has_text="led by Hermann Knüfken.")).to_be_visible()
    marker.hover()
    expect(source).to_have_class("lq-source lq-cited lq-hover")
    assert "Anti-Stalinist left ›" in (marker.get_attribute("title") or "")

    visit.ask("What did they do in Spain?")
    expect(page.locator("#lq-chat .lq-searched").last).to_contain_text("Searched for:")
    expect(page.locator("#lq-src-2-1")).to_be_visible()
    # The first answer's source is now folded under "earlier answers": its marker must unfold and show it.
    expect(source).to_be_hidden()
    marker.click()
    expect(source).to_be_in_viewport()
    expect(source).to_have_class("lq-source lq-cited lq-flash")
    shot = tmp_path / "answer.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_html_in_a_question_is_shown_as_text_and_never_runs(visit: Visit) -> None:
    from playwright.sync_api import expect

    page = visit.page
    visit.ask(EVIL)
    expect(page.locator("#lq-chat .lq-q").last).to_have_text(EVIL)
    expect(page.locator("#lq-chat .lq-abstain").last).to_contain_text("Not in the corpus.")
    expect(page.locator("#lq-sources")).to_contain_text("Closest material — not an answer")
    page.wait_for_timeout(500)  # give an injected handler time to fire, were there one
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("#lq-chat script, #lq-sources script").count() == 0


def test_example_feedback_and_clear(visit: Visit) -> None:
    from playwright.sync_api import expect

    page = visit.page
    page.locator("#lq-chat").get_by_text("When was Trotsky exiled?").click()
    page.wait_for_function("() => document.querySelectorAll('#lq-chat .lq-answer, #lq-chat .lq-abstain').length > 0", timeout=TIMEOUT_MS)
    expect(page.locator("#lq-chat .lq-q")).to_have_text(["When was Trotsky exiled?"])
    page.locator("#lq-helpful").click()
    expect(page.locator("#lq-status")).to_contain_text("recorded")
    page.locator("#lq-clear").click()
    expect(page.locator("#lq-chat .lq-q")).to_have_count(0)
    expect(page.locator("#lq-chat").get_by_text(ANTWERP)).to_be_visible()


def test_the_chat_icons_never_cover_message_text_as_it_scrolls(visit: Visit, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = visit.page
    for q in (ANTWERP, "What did they do in Spain?", "When was Trotsky exiled?"):
        visit.ask(q)
    chat = page.locator("#lq-chat")
    expect(chat.get_by_role("button", name="Clear")).to_be_visible()  # the icons the check is about are there
    expect(chat.get_by_role("button", name="Copy conversation")).to_be_visible()
    expect(chat.get_by_role("button", name="Copy message").first).to_be_attached()
    chat.locator(".message-row").first.hover()
    result = page.evaluate(ICONS_OVER_TEXT)
    assert result["scrollable"] and result["steps"] > 10, result  # the conversation scrolls and the first message left the view
    assert result["found"] == [], result["found"]
    page.evaluate("() => { document.querySelector('#lq-chat .bubble-wrap').scrollTop = 40; }")
    shot = tmp_path / "chat-scrolled.png"
    chat.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
