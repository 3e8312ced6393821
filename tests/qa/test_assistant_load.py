"""Assistant.load: the models load beside the index, and an index error is still the error reported."""

from __future__ import annotations

import threading

import pytest

from leftqa.config import Settings
from leftqa.errors import IndexMissingError
from leftqa.qa import assistant as mod
from leftqa.qa.assistant import Assistant


def test_the_models_load_while_the_index_loads(fake_index: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    models_started = threading.Event()
    real_models, real_index = mod._load_models, mod._load_index

    def models(settings: Settings):
        models_started.set()
        return real_models(settings)

    def index(settings: Settings):
        # Loaded one after the other, the models would start only after this returns: the wait would time out.
        assert models_started.wait(timeout=30), "the models did not start loading before the index was loaded"
        return real_index(settings)

    monkeypatch.setattr(mod, "_load_models", models)
    monkeypatch.setattr(mod, "_load_index", index)
    loaded = Assistant.load(fake_index)
    assert loaded.index.size > 0 and loaded.ask("Who led the Harbour Committee?").passages


def test_a_missing_index_is_reported_whatever_the_models_do(fake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def models(settings: Settings):  # never returns before the index error is raised
        release.wait(timeout=30)
        raise RuntimeError("models failed too")

    monkeypatch.setattr(mod, "_load_models", models)
    try:
        with pytest.raises(IndexMissingError):
            Assistant.load(fake_settings)  # fake_settings names an index folder that was never built
    finally:
        release.set()
