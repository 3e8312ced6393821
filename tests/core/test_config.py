"""Settings: defaults, validation, from_env (the only reader of the environment)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from leftqa.config import BUNDLED_MODEL, Settings
from leftqa.errors import ConfigError


def test_defaults() -> None:
    s = Settings()
    assert (s.corpus_dir, s.index_dir, s.model, s.mode, s.top_k) == (Path("corpus"), Path("index"), BUNDLED_MODEL, "hybrid", 10)
    assert s.chunking() == {"min_words": 40, "max_words": 150}


def test_frozen_and_with_() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.top_k = 3  # type: ignore[misc]
    t = s.with_(top_k=3, mode="bm25")
    assert (t.top_k, t.mode, s.top_k, s.mode) == (3, "bm25", 10, "hybrid")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "sparse"}, "unknown retrieval mode 'sparse'"),
        ({"min_words": 0}, "min_words"),
        ({"min_words": 200, "max_words": 150}, "min_words <= max_words"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 1001}, "top_k"),
        ({"max_answer_sentences": 0}, "max_answer_sentences"),
        ({"max_answer_sentences": 11}, "max_answer_sentences"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_question_chars": 0}, "max_question_chars"),
        ({"threads": -1}, "threads"),
        ({"scorer_threads": -1}, "scorer_threads"),
        ({"support_logit": -0.5}, "support_logit"),
        ({"followup_reader": "history"}, "unknown followup_reader 'history'"),
    ],
)
def test_invalid_settings_raise_config_error(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**changes)


@pytest.mark.parametrize(("changes"), [{"min_words": 150, "max_words": 150}, {"top_k": 1}, {"top_k": 1000}, {"threads": 0}, {"mode": "dense"}])
def test_boundary_settings_are_valid(changes: dict) -> None:
    Settings(**changes)


def test_from_env_reads_and_coerces_leftqa_variables() -> None:
    env = {
        "LEFTQA_CORPUS_DIR": "/data/corpus",
        "LEFTQA_INDEX_DIR": "idx",
        "LEFTQA_MODEL": "hash:64",
        "LEFTQA_TOP_K": "7",
        "LEFTQA_MODE": "bm25",
        "LEFTQA_MAX_WORDS": "",  # empty values are ignored
        "LEFTQA_UNKNOWN": "ignored",
        "TOP_K": "99",  # no prefix: not ours
    }
    s = Settings.from_env(env)
    assert s == Settings(corpus_dir=Path("/data/corpus"), index_dir=Path("idx"), model="hash:64", top_k=7, mode="bm25")
    assert isinstance(s.corpus_dir, Path) and isinstance(s.top_k, int)


def test_from_env_reads_float_settings_and_rejects_non_numbers() -> None:
    assert Settings.from_env({"LEFTQA_SUPPORT_LOGIT": "2.5"}).support_logit == 2.5
    with pytest.raises(ConfigError, match="LEFTQA_SUPPORT_LOGIT must be a number, got 'wide'"):
        Settings.from_env({"LEFTQA_SUPPORT_LOGIT": "wide"})


def test_from_env_overrides_win_and_none_is_ignored() -> None:
    s = Settings.from_env({"LEFTQA_TOP_K": "7", "LEFTQA_MODEL": "hash:64"}, top_k=3, model=None, index_dir="elsewhere")
    assert (s.top_k, s.model, s.index_dir) == (3, "hash:64", Path("elsewhere"))


def test_from_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch, clean_leftqa_env: None) -> None:
    monkeypatch.setenv("LEFTQA_TOP_K", "4")
    assert Settings.from_env().top_k == 4
    assert Settings.from_env({}).top_k == 10  # an explicit mapping replaces os.environ entirely


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEFTQA_TOP_K": "ten"}, "LEFTQA_TOP_K must be a whole number, got 'ten'"),
        ({"LEFTQA_MODE": "fuzzy"}, "unknown retrieval mode 'fuzzy'"),
        ({"LEFTQA_BATCH_SIZE": "0"}, "batch_size"),
    ],
)
def test_from_env_bad_values_raise_config_error(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_from_env_unknown_override_is_config_error() -> None:
    with pytest.raises(ConfigError, match="no_such_setting"):
        Settings.from_env({}, no_such_setting=1)


def _environment_reads(tree: ast.AST) -> list[int]:
    """Line numbers that read the process environment (os.environ / os.getenv / environ / getenv)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in ("environ", "getenv") for a in node.names):
            lines.append(node.lineno)
    return lines


def test_settings_from_env_is_the_only_environment_reader() -> None:
    offenders = {}
    for path in sorted((REPO_ROOT / "src" / "leftqa").rglob("*.py")):
        if path.name == "config.py":
            continue
        lines = _environment_reads(ast.parse(path.read_text("utf-8")))
        if lines:
            offenders[path.relative_to(REPO_ROOT).as_posix()] = lines
    assert offenders == {}, "read settings through Settings.from_env, not the environment directly"


def test_environment_reader_detector_catches_reads() -> None:
    src = "import os\nfrom os import getenv\na = os.environ.get('X')\nb = os.getenv('Y')\n"
    assert sorted(_environment_reads(ast.parse(src))) == [2, 3, 4]
