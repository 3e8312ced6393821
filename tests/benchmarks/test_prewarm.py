"""benchmarks/benchlib.py `prewarm`: the files every query reads through are read last, so they stay cached."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT


def _benchlib():  # noqa: ANN202 - a module
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("benchlib", REPO_ROOT / "benchmarks" / "benchlib.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prewarm_reads_the_sparsely_read_files_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _benchlib()
    names = ["bm25/data.csc.index.npy", "dense.faiss", "manifest.json", "passages.jsonl", "sentence_codes.npy", "sentence_scales.npy"]
    for i, name in enumerate(names):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * (i + 1))
    read: list[str] = []
    real_open = Path.open

    def spy(self: Path, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        read.append(self.relative_to(tmp_path).as_posix())
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)
    assert bench.prewarm(tmp_path) == sum(range(1, len(names) + 1))  # every byte of every file
    assert read == ["passages.jsonl", "sentence_codes.npy", "bm25/data.csc.index.npy", "dense.faiss", "manifest.json", "sentence_scales.npy"]
