"""Shared fixtures: a tiny hand-made corpus, fake-embedder settings, and one real index for end-to-end tests.

Fixture guide for other test modules:

- `make_corpus(files=None, name="corpus")`: write a corpus folder under tmp_path and return its path; `files`
  maps relative paths to str (UTF-8) or bytes; the default is TINY_CORPUS (two documents, 13 passages).
- `tiny_corpus`: the default tiny corpus folder.
- `fake_settings`: Settings for `tiny_corpus` with the deterministic `hash:64` embedder and an index folder under
  tmp_path (not built yet).
- `fake_index`: `fake_settings` after building the index (returns the Settings).
- `fake_assistant`: an Assistant loaded from `fake_index`.
- `clean_leftqa_env`: removes every LEFTQA_<setting> variable so `Settings.from_env` sees only defaults.
- `subprocess_env()` (a function): the current environment without LEFTQA_<setting> variables, for running
  `leftqa` in a child process (HOME is kept, so the model's cached ONNX export is reused).
- `bundled_embedder` (session): the real bundled all-MiniLM-L6-v2 embedder, loaded once.
- `real_index_settings` (session): Settings of an index built from a copy of the real corpus/ with the bundled
  model in a temporary folder (never touches the repository's index/).
- `real_assistant` (session): an Assistant loaded (through `Assistant.load`) from `real_index_settings`,
  sharing `bundled_embedder` so the model is loaded once per test session.
"""

from __future__ import annotations

import os
import shutil
import socket
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import pytest

from leftqa.config import BUNDLED_MODEL, Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_CORPUS = REPO_ROOT / "corpus"
FAKE_MODEL = "hash:64"

# A plain-text document in the seed's style: title line, standalone headings, one paragraph per line, a
# MediaWiki caption line. Every paragraph has 40-150 words, so each becomes exactly one passage.
HARBOUR_TXT = """\
The Harbour of Fenwick


The harbour of Fenwick grew from a small fishing village into a busy port during the nineteenth century. Its story is told through the committees, the lighthouse keepers and the dock workers who shaped it. This opening paragraph introduces the town, its people and the written sources that local historians still use today.
The town archive holds letters, ledgers and photographs from the busiest decades of the port. Most of them were donated by the families of former dock workers, and the collection was catalogued by volunteers between 1970 and 1985. Researchers from several countries visit the small reading room every summer to study them.

Early years (1820-1880)

The Harbour Committee was led by Marta Quell. She organised the first public meeting in the town hall and persuaded the merchants to pay for a stone breakwater. Her rivals accused her of favouring the northern quay, but the committee supported her plans for two decades and the breakwater still stands.
The first customs house opened in 1834 beside the old fish market. Dr. Ansel Pike, the customs surgeon, kept a diary of every ship that arrived with fever aboard. His notes describe quarantine on the island, the price of bread and the arguments between captains and the harbour master.
File:Fenwick lighthouse.jpg|thumb|upright|The lighthouse at Fenwick Point was first lit in March 1887.

The lighthouse years (1880-1914)

The keepers of the lighthouse lived on the point with their families. Edwin R. Tallow kept the light for thirty years and wrote a short memoir about storms, wrecks and rescues. He described the winter of 1895, when ice closed the harbour for six weeks and the town nearly ran out of coal.
Trade with the U.S. grew quickly after the railway reached the harbour in 1891. Timber, salted fish and wool left the quays every week, while coal, machinery and tinned food arrived from across the ocean. The new warehouses along the southern quay were built of brick from the local kilns.
"""

# A Markdown document: `#` title, `##` sections, paragraphs separated by blank lines.
GUILD_MD = """\
# The Weavers Guild

The Weavers Guild of Aldmoor was founded by twelve master weavers who wanted fair prices for their cloth. The guild set standards for wool, trained apprentices and settled quarrels between workshops. Its charter was written on a single sheet of parchment that hangs today in the guild hall above the market square.

## Apprentices

An apprentice joined a workshop at the age of fourteen and stayed for seven years. The master gave food, a bed and training, and the apprentice gave labour in return. At the end of the seventh year every apprentice wove a masterpiece that the elders of the guild judged in public.

Apprentices who failed the test could try again after one more year of work. The guild records show that most of them passed on the second attempt. A few moved to other towns, where the rules were less strict and where nobody asked to see their masterpiece.

## The great strike

In the spring of 1902 the journeymen of Aldmoor stopped work for nine weeks. They asked for a shorter working day, a fixed wage for piece work and a vote in the guild council. The strike was led by Hester Vane, a dyer who had worked in the guild mills since she was a child.

The masters first refused every demand and hired workers from the countryside. Public meetings, collections in the chapels and a march to the county town kept the strikers together. In the end the council granted the shorter day and the fixed wage, but the vote was refused for another decade.

## Decline

Machine looms arrived in Aldmoor in the 1920s and the old workshops closed one after another. The guild kept its hall, its charter and its annual feast, but it no longer set prices or trained apprentices. Today it runs a small museum of looms, patterns and tools that schools visit throughout the year.

The museum keeps the ledger of the great strike, the banner carried on the march and a portrait of Hester Vane. Visitors can try a hand loom in the old dye room. Volunteers from the town explain how cloth was made before the machines came and why the weavers were proud of their craft.
"""

TINY_CORPUS: dict[str, str] = {"harbour-history.txt": HARBOUR_TXT, "weavers-guild.md": GUILD_MD}
TINY_PASSAGES = 13  # one per paragraph; the short caption joins the paragraph before it (see test_chunking)


def write_files(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write `files` (relative path -> text or bytes) under root, creating folders; returns root."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[..., Path]:
    """Factory: make_corpus(files=None, name="corpus") writes a corpus folder under tmp_path (default TINY_CORPUS)."""

    def make(files: Mapping[str, str | bytes] | None = None, name: str = "corpus") -> Path:
        return write_files(tmp_path / name, TINY_CORPUS if files is None else files)

    return make


@pytest.fixture
def tiny_corpus(make_corpus: Callable[..., Path]) -> Path:
    """The default tiny hand-made corpus folder (TINY_CORPUS)."""
    return make_corpus()


@pytest.fixture
def fake_settings(tiny_corpus: Path, tmp_path: Path) -> Settings:
    """Settings for the tiny corpus with the `hash:64` fake embedder; the index folder is not built yet."""
    # Rules only: the learned scorer was fitted on real-model features, which the fake embedder does not give.
    return Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", model=FAKE_MODEL, scorer="none")


def build_fake_index(settings: Settings):  # noqa: ANN201 - BuildReport
    """Build the index named by `settings` with its (fake) embedder; returns the BuildReport."""
    from leftqa.index.builder import build_index
    from leftqa.index.embed import load_embedder

    return build_index(settings, load_embedder(settings.model))


@pytest.fixture
def fake_index(fake_settings: Settings) -> Settings:
    """`fake_settings` with its index built (hash:64 embedder)."""
    build_fake_index(fake_settings)
    return fake_settings


@pytest.fixture
def fake_assistant(fake_index: Settings):  # noqa: ANN201 - Assistant
    """An Assistant loaded from the fake-embedder index of the tiny corpus."""
    from leftqa.qa.assistant import Assistant

    return Assistant.load(fake_index)


@pytest.fixture
def clean_leftqa_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every LEFTQA_<setting> environment variable so Settings.from_env sees only defaults."""
    for f in fields(Settings):
        monkeypatch.delenv("LEFTQA_" + f.name.upper(), raising=False)


def subprocess_env() -> dict[str, str]:
    """The current environment minus LEFTQA_<setting> variables (keeps HOME: the ONNX export cache lives there)."""
    settings_vars = {"LEFTQA_" + f.name.upper() for f in fields(Settings)}
    return {k: v for k, v in os.environ.items() if k not in settings_vars}


@pytest.fixture(scope="session")
def bundled_embedder():  # noqa: ANN201 - SentenceTransformerEmbedder
    """The real bundled all-MiniLM-L6-v2 embedder, loaded once per session (~5-10 s)."""
    from leftqa.index.embed import load_embedder

    return load_embedder(BUNDLED_MODEL)


@pytest.fixture(scope="session")
def real_index_settings(tmp_path_factory: pytest.TempPathFactory, bundled_embedder) -> Settings:  # noqa: ANN001
    """Settings of a real index (bundled model) built from a copy of corpus/ in a temporary folder."""
    from leftqa.index.builder import build_index

    root = tmp_path_factory.mktemp("real")
    # A copy, so another engineer editing corpus/ mid-run cannot make this index stale under our feet.
    corpus = Path(shutil.copytree(REAL_CORPUS, root / "corpus"))
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", model=BUNDLED_MODEL)
    build_index(settings, bundled_embedder)
    return settings


@pytest.fixture(scope="session")
def real_assistant(real_index_settings: Settings, bundled_embedder):  # noqa: ANN001, ANN201 - Assistant
    """An Assistant on the real index through Assistant.load, reusing the session's embedder."""
    import leftqa.qa.assistant as chat

    with pytest.MonkeyPatch.context() as mp:
        # Assistant.load would load the model again (~5-10 s); everything else (index, checks) runs as usual.
        mp.setattr(chat, "load_embedder", lambda model, threads=0: bundled_embedder)
        return chat.Assistant.load(real_index_settings)


# --- a real chat server ----------------------------------------------------------------------------------------------
# `free_port()`, `served(assistant, settings, auth=None)` (a context manager: the app's URL on a free 127.0.0.1 port,
# closed on leaving) and `ui_server` (module): the real app on `real_assistant`, a UIServer(url, settings) whose
# feedback file is private to the test module.


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(assistant: Any, settings: Settings, auth: tuple[str, str] | None = None) -> Iterator[str]:
    """The URL of the chat app for `assistant` served on a free 127.0.0.1 port; the server closes on leaving."""
    from leftqa.app.ui import build_app, launch

    app = build_app(assistant, settings)
    try:
        yield launch(app, "127.0.0.1", free_port(), auth=auth)
    finally:
        app.close()


class UIServer(NamedTuple):
    """A running chat server: its URL and the settings it serves."""

    url: str
    settings: Settings


@pytest.fixture(scope="module")
def ui_server(real_assistant, real_index_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:  # noqa: ANN001
    """The real app serving the session's real index on 127.0.0.1, with a feedback file of its own."""
    settings = real_index_settings.with_(feedback_path=tmp_path_factory.mktemp("ui-server") / "feedback.jsonl")
    with served(real_assistant, settings) as url:
        yield UIServer(url, settings)
