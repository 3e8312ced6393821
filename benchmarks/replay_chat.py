"""Replay fixed conversations in the real chat UI (headless Chromium) and write down what a user sees.

The real app (`leftqa.app.ui.build_app` + `launch`, as the tests' `served` fixture starts it) serves a temporary copy
of corpus/ and index/ on a free 127.0.0.1 port; the repository's own corpus/ and index/ are never written. Settings
come from the environment as for `leftqa serve` (`Settings.from_env`), so LEFTQA_* variables given to this script
reach the server; only the corpus, index and feedback paths are pinned to the temporary copy.

Each conversation runs in a fresh browser context (an empty chat, a new server-side session):

  a. "Who was Rosa Luxemburg?" -> "What did she criticize?" -> "When did she die?"
  b. "What was Trotsky's favourite food?"
  c. "What was Trotsky's favorite food?"
  d. upload kestrel-point-light.pdf (made here) in the Library tab, wait until it is indexed, then
     "Who built Kestrel Point Light?" -> "When was it automated?"

For every turn it reads from the page the answer bubble (or refusal), the "Searched for" line when shown, and the
sources panel (cited passages with their highlighted quotes, or the closest material of a refusal). The Markdown
transcript goes to stdout (and --out FILE); --json FILE writes the same data as JSON. The header records the leftqa
commit, the answer scorer that was loaded and every LEFTQA_* variable that was set.

Run from the repository root (it needs /usr/bin/chromium, and playwright and fpdf2 from the dev extras):

  nice -n 19 .venv/bin/python benchmarks/replay_chat.py --out /tmp/replay.md --json /tmp/replay.json
  LEFTQA_FOLLOWUP_SUBJECT=1 nice -n 19 .venv/bin/python benchmarks/replay_chat.py --out /tmp/replay-subject.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
)
PDF_NAME = "kestrel-point-light.pdf"
PDF_TITLE = "Kestrel Point Light"
# Made up: who built it and when, and separately when it was automated, its keepers and its height.
PDF_PARAGRAPHS = (
    (
        "Kestrel Point Light stands on a granite headland at the mouth of the Arden estuary, where the shipping lane to "
        "the harbour of Selby Haven narrows between two reefs. The lighthouse was built by the engineer Alasdair Crane in "
        "1871, after three ships were wrecked on the northern reef in a single winter. Its round tower of dressed stone "
        "is 38 metres tall, and its light could be seen from 22 nautical miles away."
    ),
    (
        "The first keeper was Thomas Penhale, who lived in the cottage beside the tower with his wife and five children. "
        "Penhale kept the light for twenty-six years and recorded every storm in a logbook that is now held in the county "
        "archive. In 1923 the oil lamp was replaced by an electric lamp fed by a small generator. The lighthouse was "
        "automated in 1987, and its last keeper, Ruth Abernethy, left the point in the spring of that year."
    ),
)
# (id, title, upload a PDF first?, questions)
CONVERSATIONS = (
    ("a", "Rosa Luxemburg, with follow-ups", False, ("Who was Rosa Luxemburg?", "What did she criticize?", "When did she die?")),
    ("b", "Trotsky's favourite food (British spelling)", False, ("What was Trotsky's favourite food?",)),
    ("c", "Trotsky's favorite food (American spelling)", False, ("What was Trotsky's favorite food?",)),
    ("d", "An uploaded PDF: Kestrel Point Light", True, ("Who built Kestrel Point Light?", "When was it automated?")),
)
BUBBLES = "#lq-chat .lq-answer, #lq-chat .lq-abstain, #lq-chat .lq-error"
# An element's text as drawn: <q> gets the quotation marks the browser adds around it.
SEEN_JS = "(e) => { const c = e.cloneNode(true); c.querySelectorAll('q').forEach(q => q.replaceWith('\u201c' + q.textContent + '\u201d')); return c.textContent.trim(); }"

# The latest assistant bubble as the user sees it, split into its parts.
READ_BUBBLE = """(sel) => {
  const SEEN = SEEN_JS;
  const found = [...document.querySelectorAll(sel)];
  const el = found[found.length - 1];
  const box = el.closest('.message-content') || el.closest('.message') || el.parentElement;
  const text = (s) => { const e = box.querySelector(s); return e ? SEEN(e) : null; };
  const qs = [...document.querySelectorAll('#lq-chat .lq-q')];
  return {
    shown_question: qs.length ? qs[qs.length - 1].innerText.trim() : null,
    bubble_text: box.innerText.trim(),
    searched_for: text('.lq-searched'),
    answer: text('.lq-answer'),
    refusal: text('.lq-abstain'),
    hint: text('.lq-hint'),
    error: text('.lq-error'),
    markers: [...box.querySelectorAll('a.lq-cite')].map(a => ({text: a.textContent, href: a.getAttribute('href'), title: a.getAttribute('title')})),
  };
}""".replace("SEEN_JS", SEEN_JS)

# The Library's documents table as shown: one " | "-joined line per row (Gradio draws the rows as divs).
LIBRARY_ROWS = """() => [...document.querySelectorAll('#lq-docs [role=row]')]
  .map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))
  .filter(cells => cells.length).map(cells => cells.join(' | '))"""

# The latest turn of the sources panel: cited passages (quotes in **bold**) or the closest material of a refusal.
READ_SOURCES = """() => {
  const SEEN = SEEN_JS;
  const panel = document.querySelector('#lq-sources');
  const turn = panel && panel.querySelector('.lq-turn');
  if (!turn) return null;
  const marked = (e) => e ? [...e.childNodes].map(c => c.nodeName === 'MARK' ? '**' + c.textContent + '**' : c.textContent).join('').trim() : null;
  const get = (e, s) => { const x = e.querySelector(s); return x ? SEEN(x) : null; };
  const card = (a) => ({
    label: get(a, '.lq-n') || get(a, '.lq-rank'),
    where: get(a, '.lq-where'),
    score: get(a, '.lq-score'),
    kind: a.classList.contains('lq-cited') ? 'cited' : (a.classList.contains('lq-closest') ? 'closest' : 'other'),
    text: get(a, '.lq-text'),
    marked: marked(a.querySelector('.lq-text')),
    quotes: [...a.querySelectorAll('mark.lq-quote')].map(m => m.textContent),
    meta: get(a, '.lq-meta'),
  });
  const more = turn.querySelector(':scope > details');
  const earlier = panel.querySelector('.lq-earlier > summary');
  return {
    heading: get(turn, 'h3'),
    for_question: (turn.querySelector('.lq-for q, .lq-note q') || {}).textContent || null,
    note: get(turn, '.lq-note'),
    shown: [...turn.querySelectorAll(':scope > article')].map(card),
    folded_summary: more ? get(more, 'summary') : null,
    folded: more ? [...more.querySelectorAll('article')].map(card) : [],
    earlier_summary: earlier ? earlier.textContent.trim() : null,
  };
}""".replace("SEEN_JS", SEEN_JS)


def log(msg: str) -> None:
    """A progress line on stderr (stdout carries the transcript)."""
    print(f"[replay {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git_info() -> dict[str, Any]:
    """The leftqa commit and the tracked files changed since it (the work tree is what was run)."""
    def git(*args: str) -> str:
        """The output of one git command in the repository."""
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False).stdout.strip()

    changed = git("diff", "--name-only", "HEAD").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "subject": git("log", "-1", "--format=%s"), "uncommitted": changed}


def leftqa_env() -> dict[str, str]:
    """The LEFTQA_* variables set in this process's environment (the server reads these)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("LEFTQA_")}


def scorer_info(assistant: Any) -> dict[str, Any]:
    """What answer scorer the server loaded: version, id and folder, or the rules."""
    settings = assistant.settings
    s = assistant.scorer
    info: dict[str, Any] = {"setting": settings.scorer, "env": "LEFTQA_SCORER"}
    if s is None:
        reason = "LEFTQA_SCORER=none" if settings.scorer == "none" else "the scorer was fitted on another embedding model"
        info.update(version="none (rules only)", id="rules", folder=None, note=reason)
    else:
        info.update(version=s.info.version, id=s.info.id, folder=str(s.folder))
    if os.environ.get("LEFTQA_SCORER_PATH"):
        ignored = "LEFTQA_SCORER_PATH is set but leftqa does not read it; a scorer folder is given as LEFTQA_SCORER"
        info["note"] = f"{info['note']}; {ignored}" if info.get("note") else ignored
    return info


def make_pdf(path: Path) -> Path:
    """Write the made-up lighthouse history as a one-page PDF with a text layer (the tests' PDF maker)."""
    sys.path.insert(0, str(REPO / "tests"))
    from samples import make_pdf as write_pdf

    return write_pdf(path, [(PDF_TITLE, list(PDF_PARAGRAPHS))], title=PDF_TITLE)


def start_server(root: Path) -> tuple[str, Any, Any, dict[str, Any]]:
    """Copy corpus/ and index/ under root and serve them with the real app; (url, app, assistant, facts)."""
    from leftqa.app.ui import build_app, launch
    from leftqa.config import Settings
    from leftqa.index.builder import stale_warning
    from leftqa.qa.assistant import Assistant

    corpus = Path(shutil.copytree(REPO / "corpus", root / "corpus"))
    index = Path(shutil.copytree(REPO / "index", root / "index"))
    # Everything else from LEFTQA_* as `leftqa serve` reads it; never a password prompt on this private loopback server.
    settings = Settings.from_env(corpus_dir=corpus, index_dir=index, feedback_path=root / "feedback.jsonl").with_(auth="")
    stale = stale_warning(settings)
    if stale:
        log(f"warning: {stale}")
    t0 = time.perf_counter()
    assistant = Assistant.load(settings)
    app = build_app(assistant, settings)
    url = launch(app, "127.0.0.1", free_port())
    manifest = assistant.index.manifest
    facts = {
        "url": url,
        "load_s": round(time.perf_counter() - t0, 1),
        "index": {"copied_from": str(REPO / "index"), "passages": manifest.passages, "model": manifest.model, "created": manifest.created},
        "stale_warning": stale or None,
        "settings": {f.name: str(getattr(settings, f.name)) for f in fields(settings) if f.name != "auth"},
    }
    return url, app, assistant, facts


def open_chat(browser: Any, url: str, timeout_ms: int) -> tuple[Any, Any, list[str]]:
    """A new browser context and page on the app (a fresh chat); (context, page, page errors seen)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.goto(url)
    page.locator("#lq-question textarea").wait_for(timeout=timeout_ms)
    return ctx, page, problems


def ask(page: Any, question: str, timeout_ms: int) -> dict[str, Any]:
    """Ask one question in the chat and read what the page then shows: the bubble and the sources panel."""
    from playwright.sync_api import TimeoutError as PWTimeout

    before = page.locator(BUBBLES).count()
    box = page.locator("#lq-question textarea")
    box.fill(question)
    t0 = time.perf_counter()
    box.press("Enter")
    try:
        page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length > n", arg=[BUBBLES, before], timeout=timeout_ms)
    except PWTimeout:
        return {"question": question, "seconds": round(time.perf_counter() - t0, 2), "failure": f"no answer bubble within {timeout_ms / 1000:.0f} s"}
    seconds = round(time.perf_counter() - t0, 2)
    turn: dict[str, Any] = {"question": question, "seconds": seconds}
    turn.update(page.evaluate(READ_BUBBLE, BUBBLES))
    if turn.get("error") is None:
        # The panel is another output of the same event: wait until it shows this question's turn.
        want = " ".join(question.split())
        try:
            page.wait_for_function(
                """(q) => { const e = document.querySelector('#lq-sources .lq-turn .lq-for q, #lq-sources .lq-turn .lq-note q');
                            return e && e.textContent.trim() === q; }""",
                arg=want, timeout=15_000,
            )
        except PWTimeout:
            turn["sources_note"] = "the sources panel did not show this question's turn within 15 s"
    panel = page.locator("#lq-sources")
    turn["sources_visible"] = panel.is_visible()
    turn["sources"] = page.evaluate(READ_SOURCES)
    return turn


def upload(page: Any, pdf: Path, timeout_ms: int, build_timeout_ms: int) -> dict[str, Any]:
    """Add `pdf` through the Library tab and wait for the report; what the Library then shows."""
    from playwright.sync_api import TimeoutError as PWTimeout

    page.get_by_role("tab", name="Library").click()
    page.locator("#lq-docs").wait_for(timeout=timeout_ms)
    page.locator("#lq-upload input[type=file]").set_input_files(str(pdf))
    page.locator("#lq-upload").get_by_role("cell", name=pdf.name).wait_for(timeout=timeout_ms)
    t0 = time.perf_counter()
    page.locator("#lq-add").click()
    step: dict[str, Any] = {"step": "upload", "file": pdf.name}
    try:
        # Every report after a change ends with the corpus size ("The chat now/still answers from ...").
        page.locator("#lq-lib-status .lq-lib-size").wait_for(timeout=build_timeout_ms)
    except PWTimeout:
        step["failure"] = f"no Library report within {build_timeout_ms / 1000:.0f} s"
    step["seconds"] = round(time.perf_counter() - t0, 1)
    step["status"] = page.locator("#lq-lib-status").inner_text().strip()
    step["indexed"] = f"added: {pdf.name}" in step["status"]
    try:  # the table is another output of the same event
        page.locator("#lq-docs [role=gridcell]", has_text=pdf.name).wait_for(timeout=10_000)
    except PWTimeout:
        step["table_note"] = f"{pdf.name} not in the documents table within 10 s of the report"
    step["library_rows"] = page.evaluate(LIBRARY_ROWS)
    page.get_by_role("tab", name="Chat").click()
    page.locator("#lq-question textarea").wait_for(timeout=timeout_ms)
    return step


def replay(url: str, work: Path, answer_timeout_ms: int, build_timeout_ms: int) -> tuple[list[dict[str, Any]], str]:
    """Run every conversation in its own browser context; (conversations, browser version)."""
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True)
        version = browser.version
        try:
            for cid, title, with_pdf, questions in CONVERSATIONS:
                log(f"conversation {cid}: {title}")
                ctx, page, problems = open_chat(browser, url, answer_timeout_ms)
                conv: dict[str, Any] = {"id": cid, "title": title, "steps": [], "turns": []}
                try:
                    if with_pdf:
                        pdf = make_pdf(work / PDF_NAME)
                        conv["document"] = {"file": PDF_NAME, "title": PDF_TITLE, "text": list(PDF_PARAGRAPHS)}
                        log(f"  uploading {PDF_NAME}")
                        step = upload(page, pdf, answer_timeout_ms, build_timeout_ms)
                        log(f"  library: {step['status'].splitlines()[0] if step['status'] else '(empty)'} ({step['seconds']} s)")
                        conv["steps"].append(step)
                    for q in questions:
                        turn = ask(page, q, answer_timeout_ms)
                        log(f"  {q} -> {turn.get('failure') or (turn.get('answer') or turn.get('refusal') or turn.get('error') or '')[:80]} ({turn['seconds']} s)")
                        conv["turns"].append(turn)
                        if turn.get("failure"):
                            break
                except Exception as exc:  # noqa: BLE001 - record it and go on with the next conversation
                    conv["failure"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    log(f"  failed: {conv['failure']}")
                conv["page_problems"] = problems
                ctx.close()
                results.append(conv)
        finally:
            browser.close()
    return results, version


def quote(text: str | None) -> str:
    """Text as a Markdown block quote (every line prefixed)."""
    return "\n".join("> " + line if line else ">" for line in (text or "").splitlines()) or ">"


def render_card(c: dict[str, Any]) -> list[str]:
    """A source card as Markdown lines: where it is, its score, the passage with quoted sentences in bold."""
    head = f"- {c.get('label') or ''} {c.get('where') or ''} ({c.get('score') or 'no score'})".replace("  ", " ")
    lines = [head]
    if c.get("meta"):
        lines.append(f"  <small>{c['meta']}</small>")
    lines.append("")
    lines += ["  " + ln for ln in quote(c.get("marked")).splitlines()]
    lines.append("")
    return lines


def render_turn(i: int, t: dict[str, Any]) -> list[str]:
    """One turn as Markdown: the question, what the bubble says, and the sources panel."""
    out = [f"### {i}. {t['question']}", "", f"*{t['seconds']} s from Enter to the answer bubble.*", ""]
    if t.get("failure"):
        return out + [f"**Failed:** {t['failure']}", ""]
    if t.get("shown_question") and t["shown_question"] != t["question"]:
        out += [f"Question bubble shows: “{t['shown_question']}”", ""]
    if t.get("searched_for"):
        out += [f"**{t['searched_for']}**", ""]
    if t.get("error"):
        out += ["**Error bubble:**", "", quote(t["error"]), ""]
    elif t.get("refusal") is not None:
        out += ["**Refused:**", "", quote(t["refusal"]), ""]
        if t.get("hint"):
            out += [f"*{t['hint']}*", ""]
    else:
        out += ["**Answer:**", "", quote(t.get("answer")), ""]
    src = t.get("sources")
    vis = "" if t.get("sources_visible") else " (the panel is NOT visible on the page)"
    if t.get("sources_note"):
        out += [f"*Note: {t['sources_note']}.*", ""]
    if not src:
        return out + [f"Sources panel: nothing for this turn{vis}.", ""]
    out += [f"**Sources panel — {src.get('heading')}**{vis} (for “{src.get('for_question')}”)", ""]
    if src.get("note"):
        out += [f"*{src['note']}*", ""]
    for c in src.get("shown") or []:
        out += render_card(c)
    if src.get("folded_summary"):
        names = "; ".join(f"{c.get('label')} {c.get('where')} ({c.get('score')})" for c in src.get("folded") or [])
        out += [f"Folded: {src['folded_summary']}: {names}", ""]
    if src.get("earlier_summary"):
        out += [f"Folded: {src['earlier_summary']}", ""]
    return out


def render_markdown(run: dict[str, Any]) -> str:
    """The whole run as a readable Markdown transcript."""
    g, s, srv = run["git"], run["scorer"], run["server"]
    lines = [
        "# leftqa chat replay",
        "",
        f"- run: {run['started']} ({run['seconds']} s in all; server load {srv['load_s']} s)",
        f"- leftqa commit: `{g['commit']}` — {g['subject']}",
        f"- uncommitted changes to tracked files: {', '.join(g['uncommitted']) if g['uncommitted'] else 'none'}",
        f"- answer scorer: `{s['version']}` (id `{s['id']}`, LEFTQA_SCORER={s['setting']}, folder {s['folder']})" + (f" — {s['note']}" if s.get("note") else ""),
        f"- LEFTQA_* environment: {', '.join(f'{k}={v}' for k, v in run['env'].items()) or 'none set'}",
        f"- index: a temporary copy of {srv['index']['copied_from']} ({srv['index']['passages']} passages, model {srv['index']['model']}, built {srv['index']['created']})"
        + (f"; warning: {srv['stale_warning']}" if srv.get("stale_warning") else ""),
        f"- browser: Chromium {run['browser']} (headless, {CHROMIUM})",
        f"- command: `{run['command']}`",
        "",
    ]
    for conv in run["conversations"]:
        lines += [f"## {conv['id']}. {conv['title']}", ""]
        if conv.get("document"):
            d = conv["document"]
            lines += [f"Uploaded document `{d['file']}` (title “{d['title']}”), its whole text:", ""]
            for para in d["text"]:
                lines += [quote(para), ">"]
            lines[-1] = ""
        for step in conv["steps"]:
            lines += [f"**Library, after Add files** ({step['seconds']} s{'; ' + step['failure'] if step.get('failure') else ''}; indexed: {'yes' if step['indexed'] else 'NO'}):", ""]
            lines += [quote(step["status"]), ""]
            lines += ["Documents table (title | file | format | passages | source | added):", ""]
            lines += [f"- {r}" for r in step["library_rows"]] + [""]
            if step.get("table_note"):
                lines += [f"*Note: {step['table_note']}.*", ""]
        for i, t in enumerate(conv["turns"], start=1):
            lines += render_turn(i, t)
        if conv.get("failure"):
            lines += [f"**Conversation failed:** {conv['failure']}", ""]
        if conv.get("page_problems"):
            lines += ["Page problems: " + "; ".join(conv["page_problems"]), ""]
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="also write the Markdown transcript to this file")
    p.add_argument("--json", type=Path, help="write the run's data as JSON to this file")
    p.add_argument("--answer-timeout", type=float, default=180.0, help="seconds to wait for one answer (default 180)")
    p.add_argument("--build-timeout", type=float, default=900.0, help="seconds to wait for the upload's index update (default 900)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the server on a copy of the corpus and index, replay the conversations, write the transcript."""
    args = parse_args(argv)
    if not CHROMIUM.exists():
        print(f"replay_chat: no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leftqa-replay-") as tmp:
        work = Path(tmp)
        log(f"starting the server on a copy of corpus/ and index/ in {work}")
        with redirect_stdout(sys.stderr):  # Gradio prints to stdout; it carries only the transcript
            url, app, assistant, server = start_server(work)
            log(f"server ready on {url} ({server['load_s']} s)")
            try:
                conversations, version = replay(url, work, int(args.answer_timeout * 1000), int(args.build_timeout * 1000))
            finally:
                app.close()
        run = {
            "started": started,
            "seconds": round(time.perf_counter() - t0, 1),
            "command": " ".join([*(f"{k}={v}" for k, v in leftqa_env().items()), "python", *sys.argv]),
            "git": git_info(),
            "scorer": scorer_info(assistant),
            "env": leftqa_env(),
            "server": server,
            "browser": version,
            "conversations": conversations,
        }
    md = render_markdown(run)
    sys.stdout.write(md)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(md, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    failed = any(c.get("failure") or any(t.get("failure") for t in c["turns"]) for c in conversations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
