"""The Python API behind `import leftqa`: open an index, then ask and search it, with the records the CLI prints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from leftqa.config import Settings
from leftqa.records import Answer, Hit

if TYPE_CHECKING:
    from leftqa.qa.assistant import Assistant


class LeftQA:
    """An open index with its models: `ask` and `search` it; thread-safe, as the server's Assistant is."""

    def __init__(self, assistant: "Assistant") -> None:
        self.assistant = assistant

    @property
    def settings(self) -> Settings:
        """The settings it was opened with."""
        return self.assistant.settings

    def ask(self, question: str, history: Sequence[str] = (), mode: str | None = None) -> Answer:
        """Answer `question` after the earlier questions `history` (oldest first): quoted, cited, or an abstention."""
        return self.assistant.ask(question, tuple(history), mode)

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        """The `k` passages ranked highest for `query` (default: the settings' top_k and mode)."""
        return self.assistant.search(query, mode, k)

    def __repr__(self) -> str:
        index = self.assistant.index
        return f"<LeftQA {self.settings.index_dir}: {len(index.manifest.documents)} documents, {index.size} passages>"


def open(index_dir: str | Path | None = None, **settings: Any) -> LeftQA:  # noqa: A001 - leftqa.open, like io.open
    """Load an index (default: LEFTQA_INDEX_DIR, else index/ here) and its models; `settings` are Settings fields."""
    from leftqa.index.builder import recorded_corpus
    from leftqa.qa.assistant import Assistant

    if index_dir is not None and settings.get("corpus_dir") is None:
        settings["corpus_dir"] = recorded_corpus(Path(index_dir))  # only for the staleness check; answers need no corpus
    return LeftQA(Assistant.load(Settings.from_env(index_dir=index_dir, **settings)))  # ConfigError for a bad setting
