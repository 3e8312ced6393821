"""The build's vector cache: texts embedded once, vectors of identical texts reused from the previous index of the
same model, with the previous index's texts held as sorted sha256 prefixes (about 20 bytes a text) rather than a
dict of every text."""

from __future__ import annotations

import hashlib
from array import array
from typing import TYPE_CHECKING, Callable

import numpy as np

from leftqa.config import Settings
from leftqa.index.embed import Embedder

if TYPE_CHECKING:
    from leftqa.index.store import Index


class VectorCache:
    """Embeds texts, reusing vectors of identical texts (by sha256) from the previous index of the same model."""

    # A text's vector comes from the first of: the previous index (its first occurrence there), the batches embedded
    # since the last `release`, the embedder. The previous index's texts are a `TextTable` (about 20 bytes a text):
    # a dict of them took ~200 bytes a text, 12 GB for the ~60M texts of 10M passages.

    def __init__(self, factory: Callable[[], Embedder], settings: Settings, progress: bool, log: Callable[[str], None]) -> None:
        self._factory = factory
        self._embedder: Embedder | None = None
        self._settings = settings
        self._progress = progress
        self._log = log
        self._sources: list[np.ndarray] = []  # matrices vectors are taken from: previous index, fresh batches
        self._tables: list[tuple[TextTable, int, int]] = []  # (a seeded index's texts, its passages' source, passages)
        self._fresh: dict[bytes, tuple[int, int]] = {}  # sha256 of a text embedded since `release` -> (source, row)
        self.dim = 0
        self.missed = Digests()  # every text embedded (not reused), for the report's counts
        self._seeded = 0  # sources from the previous index; later ones are fresh batches `release` may drop

    def seed(self, previous: Index) -> None:
        """Offer every passage and sentence vector of a loaded previous index for reuse."""
        self.dim = previous.manifest.dimension
        self._sources += [previous.passage_vectors, previous.sentence_vectors]
        n = len(previous.passages)
        prefixes, codes = bytearray(), array("i" if n + len(previous.sentence_vectors) < 2**31 else "q")
        row = 0
        for i, p in enumerate(previous.passages):  # index order (a passage, then its sentences): the first one wins
            prefixes += text_key(p.text)[:16]
            codes.append(i)
            for sentence in p.sentences:
                prefixes += text_key(sentence.text)[:16]
                codes.append(n + row)  # sentence rows come after the passage rows
                row += 1
        table = TextTable(np.frombuffer(prefixes, dtype="S16"), np.frombuffer(codes, dtype=codes.typecode))
        self._tables.append((table, len(self._sources) - 2, n))
        self._seeded = len(self._sources)

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        where = np.full((len(texts), 2), -1, dtype=np.int64)  # (source, row) of each text's vector
        for table, p_src, n in self._tables:
            open_ = np.flatnonzero(where[:, 0] < 0)
            if not len(open_):
                break
            codes = table.find(np.array([keys[i][:16] for i in open_], dtype="S16"))
            hit = codes >= 0
            is_sentence = codes[hit] >= n
            where[open_[hit], 0] = p_src + is_sentence
            where[open_[hit], 1] = codes[hit] - n * is_sentence
        todo: dict[bytes, str] = {}
        for i in np.flatnonzero(where[:, 0] < 0).tolist():
            k = keys[i]
            if k in self._fresh:
                where[i] = self._fresh[k]
            elif k not in todo:
                todo[k] = texts[i]
        if todo:
            embedder = self._load()
            self._log(f"embedding {len(todo)} new texts with {embedder.name}")
            vecs = embedder.encode(list(todo.values()), batch_size=self._settings.batch_size, progress=self._progress)
            self._sources.append(vecs)
            for i, k in enumerate(todo):
                self._fresh[k] = (len(self._sources) - 1, i)
                self.missed.add(k)
            self.dim = int(vecs.shape[1])
            if len(todo) == len(texts):  # every text new and distinct: the batch is the answer, in order
                return np.ascontiguousarray(vecs, dtype=np.float32)
            for i in np.flatnonzero(where[:, 0] < 0).tolist():
                where[i] = self._fresh[keys[i]]
        if not texts and not self.dim:
            self.dim = self._load().dim
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for source in np.unique(where[:, 0]):
            mask = where[:, 0] == source
            out[mask] = self._sources[int(source)][where[mask, 1]]
        return out

    def release(self) -> None:
        """Forget the vectors embedded so far (a chunked build has written them), so memory stays bounded."""
        self._fresh = {}
        del self._sources[self._seeded :]

    def _load(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._factory()
        return self._embedder


class TextTable:
    """Where each distinct text of a sequence first occurs: sorted 16-byte sha256 prefixes beside the caller's codes."""

    # 16 bytes a text, not sha256's 32: two of n texts share a prefix (and so a vector) with odds of about n^2 / 2^129,
    # 1e-23 for 60M texts, as unlikely in practice as a sha256 collision. Codes keep the dtype they come in.
    def __init__(self, prefixes: np.ndarray, codes: np.ndarray) -> None:
        order = np.argsort(prefixes, kind="stable")  # stable: copies of a text keep their order, the first first
        ranked = prefixes[order]
        first = np.ones(len(ranked), dtype=bool)
        first[1:] = ranked[1:] != ranked[:-1]
        self.codes = codes[order[first]]
        del order  # before the last copy, the peak of a seed's memory
        self.prefixes = ranked[first]

    def find(self, prefixes: np.ndarray) -> np.ndarray:
        """The code of each of `prefixes` (16-byte sha256 prefixes, dtype S16), -1 for those not in the table."""
        out = np.full(len(prefixes), -1, dtype=np.int64)
        if not len(self.prefixes) or not len(prefixes):
            return out
        at = np.minimum(np.searchsorted(self.prefixes, prefixes), len(self.prefixes) - 1)
        hit = self.prefixes[at] == prefixes
        out[hit] = self.codes[at[hit]]
        return out


def text_key(text: str) -> bytes:
    """The sha256 of a text, by which vectors are reused."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class Digests:
    """A multiset of texts by the first 16 bytes of their sha256, kept in numpy blocks.

    The report counts distinct texts; sets of the texts themselves would hold every passage and sentence of a
    corpus (gigabytes at 10M passages), these 16 bytes a text, where a collision is as unlikely as a sha256 one.
    """

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._open: list[bytes] = []

    def add(self, key: bytes) -> None:
        self._open.append(key[:16])
        if len(self._open) >= 65_536:
            self._flush()

    def distinct(self) -> np.ndarray:
        """The distinct digests, sorted."""
        self._flush()
        self._blocks = [np.unique(np.concatenate(self._blocks))] if self._blocks else []
        return self._blocks[0] if self._blocks else np.zeros(0, dtype="S16")

    def _flush(self) -> None:
        if self._open:
            self._blocks.append(np.array(self._open, dtype="S16"))
            self._open = []
