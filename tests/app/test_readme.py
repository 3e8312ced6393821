"""The README's examples run (here beside the app they document): its Python block, each `curl` line against a live server, and the MCP configuration."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shlex
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import HARBOUR_TXT, REPO_ROOT
from test_library_http import library  # noqa: F401 - the fixture

from leftqa.config import Settings

README = REPO_ROOT / "README.md"
README_URL = "http://127.0.0.1:7860"
README_PAGE = "https://example.org/page.html"
PAGE = (
    "<!doctype html><html><head><title>The Lantern Society</title></head><body><main><h1>The Lantern Society</h1><p>The "
    "Lantern Society of Brask was founded in 1874 by the glassblower Ilse Varro, who wanted the narrow streets of the old "
    "town lit every night of the winter. Its members carried oil lanterns from the harbour to the cathedral square and "
    "kept a ledger of every street they lit, every storm they walked through and every lantern that broke.</p></main></body></html>"
)


def blocks(lang: str) -> list[str]:
    """The README's fenced code blocks in `lang`, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text("utf-8"), flags=re.S | re.M)


def curl_lines() -> list[str]:
    """Every line of a bash block that is a curl command, in README order."""
    return [line.strip() for block in blocks("bash") for line in block.splitlines() if line.strip().startswith("curl ")]


def test_readme_is_short() -> None:
    assert len(README.read_text("utf-8").splitlines()) <= 400


@pytest.mark.e2e
def test_python_example_runs(real_index_settings: Settings, bundled_embedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    import leftqa.qa.assistant as chat

    (code,) = [b for b in blocks("python") if "import leftqa" in b]
    monkeypatch.chdir(Path(real_index_settings.index_dir).parent)  # the folder of corpus/ and index/, as after `make run`
    monkeypatch.setattr(chat, "load_embedder", lambda model, threads=0: bundled_embedder)  # loaded once per session
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "[1]" in out and "characters" in out


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local web page standing in for the README's example address."""
    site = tmp_path_factory.mktemp("site")
    (site / "page.html").write_text(PAGE, encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page.html"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_every_curl_example_runs(library: tuple[str, Any], page_url: str, tmp_path: Path) -> None:
    live = library[0].rstrip("/")  # the real app over a private copy of corpus/: the examples add and remove documents
    (tmp_path / "notes.txt").write_text(HARBOUR_TXT, encoding="utf-8")
    (tmp_path / "chapter.md").write_text("# A chapter\n\n" + " ".join(HARBOUR_TXT.split()[40:140]) + "\n", encoding="utf-8")
    lines = curl_lines()
    assert len(lines) >= 10
    for line in lines:
        args = shlex.split(line.replace(README_URL, live).replace(README_PAGE, page_url))
        r = subprocess.run(["curl", "--fail-with-body", "-sS", *args[1:]], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        print(f"$ {line}\n{r.stdout[:300]}\n")  # the real outputs, for the record (pytest -s)
        assert r.returncode == 0, (line, r.stdout, r.stderr)
        json.loads(r.stdout)


def test_mcp_configuration_is_a_leftqa_command() -> None:
    from leftqa.app.cli import build_parser

    (config,) = [json.loads(b) for b in blocks("json") if "mcpServers" in b]
    server = config["mcpServers"]["leftqa"]
    assert server["command"].endswith("/.venv/bin/leftqa")
    assert build_parser().parse_args(server["args"]).command == "mcp"
