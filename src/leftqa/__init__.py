"""leftqa: offline, citation-backed extractive question answering over a curated corpus."""

__version__ = "0.1.0"
