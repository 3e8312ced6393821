"""leftqa: offline, citation-backed extractive question answering over a curated corpus.

The Python API::

    import leftqa

    qa = leftqa.open("index")                 # an index folder (default: LEFTQA_INDEX_DIR, else ./index)
    answer = qa.ask("Who led the Antwerp Group?")
    print(answer.answer)                      # quoted sentences with [n] markers, or why it abstained
    for c in answer.citations:                # where each quote is: document, section, character offsets
        print(c.n, c.doc_id, c.start, c.end)
    hits = qa.search("Antwerp Group", k=3)    # ranked passages

`import leftqa` loads nothing heavy: the index, models and their libraries load in `leftqa.open`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["open", "LeftQA", "Answer", "Citation", "Hit", "Settings", "LeftQAError", "__version__"]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (PEP 562), so that `import leftqa` stays light."""
    if name in ("open", "LeftQA"):
        from leftqa.app import facade

        return getattr(facade, name)
    if name in ("Answer", "Citation", "Hit"):
        from leftqa import records

        return getattr(records, name)
    if name == "Settings":
        from leftqa.config import Settings

        return Settings
    if name == "LeftQAError":
        from leftqa.errors import LeftQAError

        return LeftQAError
    raise AttributeError(f"module 'leftqa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
