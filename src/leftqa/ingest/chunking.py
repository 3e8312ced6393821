"""Split documents into sentences and section-aware passages with stable, content-derived ids."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from leftqa.ingest.documents import Block, Document
from leftqa.records import Passage, Sentence

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE_CHAR = re.compile(r"\s")
# pysbd ends a sentence after "c." / "ca." (circa) before a year: "born c. 1880" is one sentence.
_CIRCA = re.compile(r"(?:^|[\s(\[])(?:c|ca|cca|circa)\.$")


# What re.IGNORECASE matches to an ASCII letter beyond str.lower(): "İ" (its lower() is two characters), "ı", "ſ".
# tests/test_chunking.py checks this against every code point.
_IGNORECASE_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})
_PYSBD_VERSION = "0.3.4"


@lru_cache(maxsize=1)
def _segmenter():  # noqa: ANN202 - pysbd type
    """pysbd's English segmenter (clean=False keeps the text verbatim), with two slow steps done faster.

    Output is exactly pysbd's (tested against the stock Segmenter). pysbd compiled one regex per sentence to find
    it again in the text, and one per abbreviation found; the unique sentence patterns also evicted the
    abbreviation patterns from Python's 512-entry re cache, so nearly every paragraph recompiled both.
    """
    from importlib import metadata

    import pysbd
    from pysbd.lang.english import English
    from pysbd.utils import TextSpan

    if metadata.version("pysbd") != _PYSBD_VERSION:  # the shortcuts below mirror that release's code
        return pysbd.Segmenter(language="en", clean=False)
    lengths = sorted({len(a.strip()) for a in English.Abbreviation.ABBREVIATIONS})

    class Replacer(English.AbbreviationReplacer):  # type: ignore[name-defined,misc]
        def search_for_abbreviations_in_string(self, text: str) -> str:
            """pysbd's loop, minus regex calls whose result is known without running them."""
            lowered = text.lower()
            # Word-initial prefixes folded as re.IGNORECASE folds ASCII letters: a letters-only abbreviation that is
            # not among them cannot match pysbd's "(?:^|\s){abbr}" pattern, so its findall would return [].
            words = set(text.translate(_IGNORECASE_FOLD).lower().split())
            heads = {w[:n] for w in words for n in lengths}
            for abbr in self.lang.Abbreviation.ABBREVIATIONS:
                stripped = abbr.strip()
                if stripped not in lowered:
                    continue
                plain = stripped.isascii() and stripped.isalpha() and stripped.islower()
                if plain and stripped not in heads:
                    continue
                abbrev_match = re.findall(r"(?:^|\s|\r|\n){}".format(stripped), text, flags=re.IGNORECASE)
                if not abbrev_match:
                    continue
                # pysbd's look-behind has literal braces ("{abbr} "), so it finds nothing unless those are in the text.
                if "{" + stripped + "} " in text:
                    char_array = re.findall(r"(?<={" + str(re.escape(stripped)) + "} ).{1}", text)
                else:
                    char_array = []
                done: set[str] = set()
                for ind, match in enumerate(abbrev_match):
                    if plain and not char_array:
                        # The same substitution again is a no-op: it only turns "." into "∯", which no
                        # letters-only abbreviation pattern can match, so it never creates a new match.
                        if match.strip() in done:
                            continue
                        done.add(match.strip())
                    text = self.scan_for_replacements(text, match, ind, char_array)
            return text

    class Language(English):  # type: ignore[misc,valid-type]
        AbbreviationReplacer = Replacer

    class Segmenter(pysbd.Segmenter):  # type: ignore[misc]
        def sentences_with_char_spans(self, sentences: list[str]) -> list:  # noqa: ANN401
            """pysbd's re.finditer(re.escape(sent) + r"\\s*") search for each sentence, with str.find."""
            text = self.original_text
            spans = []
            prior_end = 0
            for sent in sentences:
                pos = 0
                while (start := text.find(sent, pos)) >= 0:
                    end = start + len(sent)
                    while end < len(text) and text[end].isspace():  # str.isspace() is exactly re's \s
                        end += 1
                    if end > prior_end:
                        spans.append(TextSpan(text[start:end], start, end))
                        prior_end = end
                        break
                    pos = end if end > start else start + 1  # finditer steps past an empty match
            return spans

    segmenter = Segmenter(language="en", clean=False)
    segmenter.language_module = Language
    return segmenter


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of one paragraph, trimmed of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    pos = 0
    # pysbd ends a sentence at a line break ("exiled in\nFebruary 1929."); a wrapped paragraph is one text, so
    # it sees every whitespace character as a space. Same length, so offsets into `text` stay exact.
    flat = _SPACE_CHAR.sub(" ", text)
    for piece in _segmenter().segment(flat):
        stripped = piece.strip()
        if not stripped:
            pos += len(piece)
            continue
        found = flat.find(stripped, pos)
        if found < 0:  # pysbd never rewrites with clean=False; guard anyway so offsets stay true
            found = pos
            stripped = flat[pos : pos + len(stripped)]
        spans.append((found, found + len(stripped)))
        pos = found + len(stripped)
    return _merge_fragments(text, spans)


def _merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join pieces that are not sentences on their own (a lone closing quote, a bare "..." or initials)."""
    out: list[tuple[int, int]] = []
    for start, end in spans:
        piece = text[start:end]
        after_circa = bool(out) and _CIRCA.search(text[out[-1][0] : out[-1][1]]) is not None
        if out and (len(_WORD.findall(piece)) == 0 or (piece[:1].islower() and not piece[:2].isupper()) or after_circa):
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def word_count(text: str) -> int:
    """Number of word tokens."""
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class _Unit:
    section: str
    block: int
    start: int
    end: int
    page: int | None
    words: int
    heading: int = -1


def _units(doc: Document) -> list[_Unit]:
    units = []
    for b_i, block in enumerate(doc.blocks):
        para = doc.text[block.start : block.end]
        for s, e in split_sentences(para):
            units.append(
                _Unit(block.section, b_i, block.start + s, block.start + e, block.page, word_count(para[s:e]), block.heading)
            )
    return units


def _split_long(units: list[_Unit], max_words: int) -> list[list[_Unit]]:
    """Cut one paragraph's sentences into the fewest pieces under max_words, balanced in size."""
    total = sum(u.words for u in units)
    if total <= max_words or len(units) == 1:
        return [units]
    pieces = -(-total // max_words)
    target = total / pieces
    out: list[list[_Unit]] = [[]]
    acc = 0
    for u in units:
        if out[-1] and (acc + u.words > max_words or (acc >= target and len(out) < pieces)):
            out.append([])
            acc = 0
        out[-1].append(u)
        acc += u.words
    return out


def _groups(units: list[_Unit], min_words: int, max_words: int) -> list[list[_Unit]]:
    """Paragraph-aligned groups: long paragraphs split between sentences, short ones joined within a section."""
    paragraphs: list[list[_Unit]] = []
    for u in units:
        if paragraphs and paragraphs[-1][0].block == u.block:
            paragraphs[-1].append(u)
        else:
            paragraphs.append([u])
    pieces: list[list[_Unit]] = []
    for para in paragraphs:
        pieces.extend(_split_long(para, max_words))
    groups: list[list[_Unit]] = []
    for piece in pieces:
        words = sum(u.words for u in piece)
        if groups:
            prev = groups[-1]
            prev_words = sum(u.words for u in prev)
            first = piece[0]
            same_section = (prev[0].section, prev[0].heading, prev[0].page) == (first.section, first.heading, first.page)
            if same_section and (prev_words < min_words or words < min_words) and prev_words + words <= max_words:
                prev.extend(piece)
                continue
        groups.append(list(piece))
    return groups


def passage_id(doc_id: str, ordinal: int, text: str) -> str:
    """Stable id from document, position and content: same corpus, same ids."""
    digest = hashlib.sha256(f"{doc_id}\x00{ordinal}\x00{text}".encode("utf-8")).hexdigest()
    return digest[:16]


def chunk_document(doc: Document, min_words: int = 40, max_words: int = 150) -> list[Passage]:
    """Passages of one document, never spanning two sections, aligned to sentence boundaries."""
    passages: list[Passage] = []
    for ordinal, group in enumerate(_groups(_units(doc), min_words, max_words)):
        parts: list[str] = []
        sentences: list[Sentence] = []
        length = 0
        for i, u in enumerate(group):
            sep = "" if i == 0 else ("\n" if u.block != group[i - 1].block else " ")
            body = doc.text[u.start : u.end]
            local = length + len(sep)
            parts.append(sep + body)
            sentences.append(Sentence(body, u.start, u.end, local, local + len(body)))
            length = local + len(body)
        text = "".join(parts)
        passages.append(
            Passage(
                id=passage_id(doc.doc_id, ordinal, text),
                doc_id=doc.doc_id,
                title=doc.title,
                section=group[0].section,
                start=group[0].start,
                end=group[-1].end,
                text=text,
                sentences=tuple(sentences),
                page=group[0].page,
                source=doc.source,
            )
        )
    return passages


def chunk_documents(docs: list[Document], min_words: int = 40, max_words: int = 150) -> list[Passage]:
    """Passages of many documents, in document order."""
    out: list[Passage] = []
    for doc in docs:
        out.extend(chunk_document(doc, min_words, max_words))
    return out


__all__ = ["Block", "chunk_document", "chunk_documents", "passage_id", "split_sentences", "word_count"]
