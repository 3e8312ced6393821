"""manifest.json as typed records: what an index was built from and with, and its files' sizes and checksums.

Read and checked in one place (`store.read_manifest`, which also checks the format and version first): each
record's `from_dict` names the first malformed field in an IndexCorruptError. Keys this version does not know
(from newer or older writers) are kept in `extra` and written back; optional keys absent from a manifest are None
here and stay absent when it is written. Records are frozen: changes go through `dataclasses.replace`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from leftqa.errors import IndexCorruptError

FORMAT = "leftqa-index"
FORMAT_VERSION = 1

T = TypeVar("T")
_REQUIRED: Any = object()


class _Fields:
    """One JSON object of a manifest, read field by field; IndexCorruptError names the first malformed field."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise _malformed(where or "the manifest", "an object", data)
        self._data, self._prefix, self._known = data, f"{where}." if where else "", set()

    def get(self, key: str, parse: Callable[[object, str], T], default: T = _REQUIRED) -> T:
        self._known.add(key)
        if key in self._data:
            return parse(self._data[key], self._prefix + key)
        if default is _REQUIRED:
            raise IndexCorruptError(f"{self._prefix}{key} is missing")
        return default

    def extra(self) -> dict[str, object]:
        """The keys not read by `get`, in their order."""
        return {k: v for k, v in self._data.items() if k not in self._known}


def _malformed(where: str, expected: str, value: object) -> IndexCorruptError:
    return IndexCorruptError(f"{where} should be {expected}, not {json.dumps(value, ensure_ascii=False)[:80]}")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _malformed(where, "a string", value)
    return value


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _malformed(where, "an integer", value)
    return value


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _malformed(where, "an object", value)
    return value


def _counts(value: object, where: str) -> dict[str, int]:
    return {k: _count(v, f"{where}.{k}") for k, v in _object(value, where).items()}


def _list_of(parse: Callable[[object, str], T]) -> Callable[[object, str], tuple[T, ...]]:
    def parse_list(value: object, where: str) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise _malformed(where, "a list", value)
        return tuple(parse(item, f"{where}[{i}]") for i, item in enumerate(value))

    return parse_list


def _present(fields: dict[str, object]) -> dict[str, object]:
    """The fields that are not None (absent from the manifest read, or not set)."""
    return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class Chunking:
    """The passage sizes an index was chunked with (`Settings.chunking()`)."""

    min_words: int
    max_words: int
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object, where: str = "chunking") -> "Chunking":
        f = _Fields(data, where)
        return cls(f.get("min_words", _count), f.get("max_words", _count), f.extra())

    def to_dict(self) -> dict[str, object]:
        return {"min_words": self.min_words, "max_words": self.max_words, **self.extra}


@dataclass(frozen=True)
class DocumentEntry:
    """One source file in the index: its id (path in the corpus), what was read from it, and its passage count."""

    doc_id: str
    title: str = ""
    fingerprint: str = ""  # of the extracted text
    sha256: str = ""  # of the file ("" in manifests of builders that did not record it)
    source: str = ""  # the URL of a downloaded page, else ""
    passages: int = 0
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object, where: str) -> "DocumentEntry":
        f = _Fields(data, where)
        return cls(
            f.get("doc_id", _text), f.get("title", _text, ""), f.get("fingerprint", _text, ""), f.get("sha256", _text, ""),
            f.get("source", _text, ""), f.get("passages", _count, 0), f.extra(),
        )  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        return {"doc_id": self.doc_id, "title": self.title, "fingerprint": self.fingerprint, "sha256": self.sha256,
                "source": self.source, "passages": self.passages, **self.extra}  # fmt: skip


@dataclass(frozen=True)
class SkippedEntry:
    """A source file the build could not read, and the warning it gave."""

    doc_id: str
    sha256: str = ""
    reason: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object, where: str) -> "SkippedEntry":
        f = _Fields(data, where)
        return cls(f.get("doc_id", _text), f.get("sha256", _text, ""), f.get("reason", _text, ""), f.extra())

    def to_dict(self) -> dict[str, object]:
        return {"doc_id": self.doc_id, "sha256": self.sha256, "reason": self.reason, **self.extra}


@dataclass(frozen=True)
class FileEntry:
    """One index file's size and sha256 (and, above FULL_HASH_LIMIT, the sha256 of its edges)."""

    bytes: int
    sha256: str
    edge_sha256: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object, where: str) -> "FileEntry":
        f = _Fields(data, where)
        return cls(f.get("bytes", _count), f.get("sha256", _text), f.get("edge_sha256", _text, None), f.extra())

    def to_dict(self) -> dict[str, object]:
        return {**_present({"bytes": self.bytes, "sha256": self.sha256, "edge_sha256": self.edge_sha256}), **self.extra}


def _files(value: object, where: str) -> dict[str, FileEntry]:
    return {name: FileEntry.from_dict(meta, f"{where}[{name!r}]") for name, meta in _object(value, where).items()}


@dataclass(frozen=True)
class IndexManifest:
    """manifest.json: what an index was built from and with, and the size and checksum of each of its files.

    The caller of `Index.build` gives the first eight fields; `Index.build` sets format to dense_params, the
    builder `build`, and `Index.save` created and files. `CompactWriter.finish` (index/compact.py) sets all of
    those for the compact layout, with `layout` and extra["quantisation"] (how its vectors are stored). `to_dict` writes the keys in this order (`extra` after
    `skipped`), leaving out the None ones.
    """

    model: str
    embedder: str
    chunking: Chunking
    pipeline: str | None = None  # `builder.pipeline_key()`: passages are reused only while it is unchanged
    corpus_dir: str | None = None
    corpus_fingerprint: str | None = None
    documents: tuple[DocumentEntry, ...] = ()
    skipped: tuple[SkippedEntry, ...] | None = None  # None: not recorded (synthetic benchmark indexes, old builders)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    layout: str | None = None  # "compact" (`codes.LAYOUT`: quantised vectors, written by index/compact.py); None: exact
    leftqa_version: str | None = None
    backend: str | None = None  # embedding backend (onnx, onnx-int8, torch, hash...)
    dimension: int = 0
    passages: int = 0
    sentences: int = 0
    dense_index: str | None = None  # flat-ip or hnsw32-ip; hnsw48-sq8-ip in the compact layout (hnsw32-sq8-ip before 2026-12-07)
    dense_params: Mapping[str, int] | None = None
    build: Mapping[str, object] | None = None  # where the build ran (`BuildBackend.describe()`)
    created: str | None = None
    files: Mapping[str, FileEntry] | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object) -> "IndexManifest":
        """Read parsed manifest.json; IndexCorruptError naming the first malformed field."""
        f = _Fields(data, "")
        return cls(
            model=f.get("model", _text), embedder=f.get("embedder", _text), chunking=f.get("chunking", Chunking.from_dict),
            pipeline=f.get("pipeline", _text, None), corpus_dir=f.get("corpus_dir", _text, None),
            corpus_fingerprint=f.get("corpus_fingerprint", _text, None),
            documents=f.get("documents", _list_of(DocumentEntry.from_dict), ()),
            skipped=f.get("skipped", _list_of(SkippedEntry.from_dict), None),
            format=f.get("format", _text), format_version=f.get("format_version", _count),
            layout=f.get("layout", _text, None), leftqa_version=f.get("leftqa_version", _text, None),
            backend=f.get("backend", _text, None),
            dimension=f.get("dimension", _count, 0), passages=f.get("passages", _count, 0), sentences=f.get("sentences", _count, 0),
            dense_index=f.get("dense_index", _text, None), dense_params=f.get("dense_params", _counts, None),
            build=f.get("build", _object, None), created=f.get("created", _text, None), files=f.get("files", _files, None),
            extra=f.extra(),
        )  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        """manifest.json's content, keys in the order they have always been written."""
        head = {
            "model": self.model, "embedder": self.embedder, "chunking": self.chunking.to_dict(), "pipeline": self.pipeline,
            "corpus_dir": self.corpus_dir, "corpus_fingerprint": self.corpus_fingerprint,
            "documents": [d.to_dict() for d in self.documents],
            "skipped": None if self.skipped is None else [s.to_dict() for s in self.skipped],
        }  # fmt: skip
        files = None if self.files is None else {name: meta.to_dict() for name, meta in self.files.items()}
        tail = {
            "format": self.format, "format_version": self.format_version, "layout": self.layout,
            "leftqa_version": self.leftqa_version, "backend": self.backend, "dimension": self.dimension, "passages": self.passages, "sentences": self.sentences,
            "dense_index": self.dense_index, "dense_params": None if self.dense_params is None else dict(self.dense_params),
            "build": None if self.build is None else dict(self.build), "created": self.created, "files": files,
        }  # fmt: skip
        return {**_present(head), **self.extra, **_present(tail)}

    def digests(self) -> dict[str, str]:
        """sha256 of each source file the index was built from, read or skipped, by doc_id."""
        known = {d.doc_id: d.sha256 for d in self.documents}
        known.update({s.doc_id: s.sha256 for s in self.skipped or ()})
        return known
