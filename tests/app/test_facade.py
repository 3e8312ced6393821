"""The Python API (`import leftqa`, app/facade.py): light to import, open an index from any folder, ask and search."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import subprocess_env

import leftqa
from leftqa.config import Settings
from leftqa.errors import ConfigError, IndexMissingError, QuestionError


def test_import_is_light_and_side_effect_free(tmp_path: Path) -> None:
    code = (
        "import sys, leftqa; heavy = ('torch', 'numpy', 'gradio', 'faiss', 'onnxruntime', 'fastapi', 'mcp', 'leftqa.qa', 'leftqa.app');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]" and r.stderr == "", r
    assert list(tmp_path.iterdir()) == []


def test_every_public_name_resolves() -> None:
    for name in leftqa.__all__:
        assert getattr(leftqa, name) is not None
    assert leftqa.Answer.__module__ == "leftqa.records" and leftqa.LeftQAError is not None
    assert set(leftqa.__all__) <= set(dir(leftqa))
    with pytest.raises(AttributeError):
        leftqa.no_such_name  # noqa: B018


def test_open_ask_and_search(fake_index: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # another folder: the index says where its corpus is
    qa = leftqa.open(fake_index.index_dir, model=fake_index.model, scorer="none", top_k=4)
    answer = qa.ask("Who led the Harbour Committee?")
    assert isinstance(answer, leftqa.Answer) and "Marta Quell" in answer.answer and answer.citations[0].n == 1
    assert qa.settings.corpus_dir == fake_index.corpus_dir
    follow = qa.ask("When did it open?", history=["Who was the customs surgeon?"], mode="bm25")
    assert follow.mode == "bm25" and follow.query != follow.question
    hits = qa.search("lighthouse keeper", k=2)
    assert [h.rank for h in hits] == [1, 2] and all(isinstance(h, leftqa.Hit) for h in hits)
    assert "13 passages" in repr(qa)
    with pytest.raises(QuestionError):
        qa.ask("")


def test_open_refuses_bad_settings_and_missing_index(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        leftqa.open(tmp_path, no_such_setting=1)
    with pytest.raises(IndexMissingError):
        leftqa.open(tmp_path / "nothing", model="hash:64")
