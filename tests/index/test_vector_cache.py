"""The build's vector cache: each text takes the vector of its first occurrence in the previous index (then of the
batches embedded since the last release), and the previous index's texts are held in numpy arrays of a few bytes
a text, not in Python containers that grow with the corpus."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import FAKE_MODEL, write_files

from leftqa.config import Settings
from leftqa.index import compact, vectorcache
from leftqa.index.builder import build_index
from leftqa.index.vectorcache import TextTable, VectorCache
from leftqa.index.embed import HashEmbedder
from leftqa.index.store import Index

ONE = (
    "The single sentence of this paragraph runs on about the quay, the ropes, the tar, the gulls and the salt wind "
    "that blew from the north across the harbour and the town for the whole of that grey, wet and cold winter morning."
)
SHARED = "Every ledger of the port was bound in green cloth and kept in the tower room above the customs house."


def para(i: int, opening: str = "") -> str:
    """A one-passage paragraph of three or four sentences whose texts differ from every other paragraph's."""
    return (
        f"{opening + ' ' if opening else ''}The barge number {i} left the quay at dawn with wool and timber. "
        f"Its master wrote cargo {i * 13} in the ledger before the tide turned. "
        f"By the evening of day {i} the barge had reached the markets of the coast and the crew of {i % 7 + 3} rested."
    )


def doc(title: str, paragraphs: list[str]) -> str:
    return title + "\n\n" + "\n".join(paragraphs) + "\n"


class CallEmbedder(HashEmbedder):
    """The fake embedder with vectors that differ from call to call and row to row, so that every embedding of a
    text is told apart: a cache that took another occurrence's vector would give other numbers."""

    def __init__(self) -> None:
        super().__init__(64)
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        out = super().encode(texts, batch_size, progress)
        out[:, 1] += 0.013 * len(self.calls) + 0.0007 * np.arange(len(texts))
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def settings_for(tmp_path: Path, files: dict[str, str]) -> Settings:
    corpus = write_files(tmp_path / "corpus", files)
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=FAKE_MODEL, scorer="none")


def texts_in_index_order(previous: Index) -> Iterator[tuple[str, np.ndarray]]:
    """Each passage's text and vector, then its sentences' (the order in which the first occurrence wins)."""
    row = 0
    for i, p in enumerate(previous.passages):
        yield p.text, np.asarray(previous.passage_vectors[np.array([i])][0])
        for s in p.sentences:
            yield s.text, np.asarray(previous.sentence_vectors[np.array([row])][0])
            row += 1


def held(obj: object, skip: set[int], seen: set[int] | None = None) -> Iterator[object]:
    """Every container and numpy array reachable from `obj` through the vector cache module's own objects (not through the
    settings, the embedder factory, the log, or the arrays whose ids are in `skip`)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or id(obj) in skip:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        yield obj
        for k, v in obj.items():
            yield from held(k, skip, seen)
            yield from held(v, skip, seen)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        yield obj
        for item in obj:
            yield from held(item, skip, seen)
    elif type(obj).__module__ == vectorcache.__name__ and hasattr(obj, "__dict__"):
        for v in vars(obj).values():
            yield from held(v, skip, seen)


def test_the_cache_holds_the_previous_index_texts_in_numpy_not_in_python_containers(tmp_path: Path) -> None:
    files = {f"n{i:02d}.txt": doc(f"Note {i}", [para(3 * i + j) for j in range(3)]) for i in range(30)}
    files["dup.txt"] = doc("Copies", [para(0), para(1)])  # copies: the cache keeps each distinct text once
    settings = settings_for(tmp_path, files)
    build_index(settings)
    previous = Index.load(settings.index_dir)
    texts = [t for t, _ in texts_in_index_order(previous)]
    distinct = len(set(texts))
    assert distinct > 300 and distinct < len(texts)
    batch = 8
    cache = VectorCache(CallEmbedder, settings, False, lambda _m: None)
    cache.seed(previous)
    skip = {id(previous.passage_vectors), id(previous.sentence_vectors)}

    def containers() -> list[int]:
        return [len(x) for x in held(cache, skip) if not isinstance(x, np.ndarray)]

    arrays = [a for a in held(cache, skip) if isinstance(a, np.ndarray)]
    assert max(containers()) <= batch  # no dict, set or list of the previous index's texts
    per_text = sum(a.nbytes for a in arrays)
    assert 16 * distinct <= per_text <= 24 * distinct  # 16 bytes of sha256 and a row number a text, in numpy
    assert any(len(a) == distinct for a in arrays)

    new = [para(1000 + i) for i in range(batch)]
    cache(new + texts[:batch])
    assert max(containers()) <= batch  # one batch of fresh texts, besides the arrays
    cache.release()
    assert not any(x for x in held(cache, skip) if isinstance(x, (dict, set)))  # the fresh batch's table is gone
    assert sum(a.nbytes for a in held(cache, skip) if isinstance(a, np.ndarray)) == per_text  # and its vectors


def test_each_text_takes_the_vector_of_its_first_occurrence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "COMPACT_THRESHOLD", 5)
    monkeypatch.setattr(compact, "CHUNK", 3)
    files = {
        "a.txt": doc("A", [para(0), ONE, para(1)]),
        "b.txt": doc("B", [para(2), para(3, SHARED)]),
        "c.txt": doc("C", [para(4), para(0)]),  # para(0) again, in a later chunk: embedded again, another vector
        "d.txt": doc("D", [para(5, SHARED), ONE]),  # ONE was a passage and its own sentence; SHARED a sentence
        "e.txt": doc("E", [para(6, ONE)]),  # ONE as a sentence of a longer passage
    }
    settings = settings_for(tmp_path, files)
    build_index(settings, CallEmbedder())
    previous = Index.load(settings.index_dir)
    assert previous.manifest.layout == "compact"
    first: dict[str, np.ndarray] = {}
    seen: dict[str, list[bytes]] = {}
    for text, vector in texts_in_index_order(previous):
        first.setdefault(text, vector)
        seen.setdefault(text, []).append(vector.tobytes())
    repeated = {t for t, vs in seen.items() if len(set(vs)) > 1}
    assert {para(0), ONE, SHARED} <= repeated  # the same text holds other vectors at its later occurrences
    assert all(first[t].tobytes() != seen[t][-1] for t in (para(0), ONE, SHARED))

    embedder = CallEmbedder()
    cache = VectorCache(lambda: embedder, settings, False, lambda _m: None)
    cache.seed(previous)
    asked = list(first) * 2
    random.Random(7).shuffle(asked)
    out = cache(asked)
    assert np.array_equal(out, np.stack([first[t] for t in asked]))
    assert embedder.calls == []

    new = [para(100), para(101)]
    out = cache([new[0], ONE, new[1], new[0], para(0)])
    assert embedder.calls == [new]  # the new texts once each; the others reused
    assert np.array_equal(out[[1, 4]], np.stack([first[ONE], first[para(0)]]))
    assert np.array_equal(out[0], out[3])
    again = cache([new[1], SHARED, new[0]])
    assert len(embedder.calls) == 1  # the batch embedded before the release is reused
    assert np.array_equal(again[[2, 0]], out[[0, 2]]) and np.array_equal(again[1], first[SHARED])
    cache.release()
    cache([new[0], para(0)])
    assert embedder.calls[1:] == [[new[0]]]  # forgotten after the release, unlike the previous index's texts


def test_the_text_table_finds_the_first_code_of_each_prefix() -> None:
    # Prefixes ending in zero bytes: numpy drops trailing NULs when it hands out an S16 item, not when it compares.
    zeros, a, a1 = b"\x00" * 16, b"a" + b"\x00" * 15, b"a" + b"\x00" * 14 + b"\x01"
    table = TextTable(np.array([zeros, a, a1, b"b" * 16, a, zeros], dtype="S16"), np.arange(10, 16, dtype=np.int32))
    asked = np.array([b"b" * 16, zeros, b"c" * 16, a, a1, b"\xff" * 16], dtype="S16")
    assert table.find(asked).tolist() == [13, 10, -1, 11, 12, -1]  # trailing zero bytes count; the first copy wins
    assert len(table.prefixes) == len(table.codes) == 4
    empty = TextTable(np.zeros(0, dtype="S16"), np.zeros(0, dtype=np.int32))
    assert empty.find(asked).tolist() == [-1] * 6
    assert table.find(np.zeros(0, dtype="S16")).tolist() == []
