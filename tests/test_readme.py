"""The README's examples run: its Python block against a real index."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from leftqa.config import Settings

README = REPO_ROOT / "README.md"


def blocks(lang: str) -> list[str]:
    """The README's fenced code blocks in `lang`, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", README.read_text("utf-8"), flags=re.S | re.M)


@pytest.mark.e2e
def test_python_example_runs(real_index_settings: Settings, bundled_embedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    import leftqa.qa.assistant as chat

    (code,) = [b for b in blocks("python") if "import leftqa" in b]
    monkeypatch.chdir(Path(real_index_settings.index_dir).parent)  # the folder of corpus/ and index/, as after `make run`
    monkeypatch.setattr(chat, "load_embedder", lambda model, threads=0: bundled_embedder)  # loaded once per session
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "[1]" in out and "characters" in out
