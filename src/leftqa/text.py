"""Lexical analysis shared by the BM25 index, sentence scoring and evals: tokens, stems, normalisation."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
                         "–": "-", "—": "-", "‑": "-", "‒": "-", "−": "-", "\u00a0": " "})
_SPACE = re.compile(r"\s+")

# Question words and light verbs carry no topic; kept out of content terms (BM25 uses its own stop list too).
QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how did does do was were is are am be been being has have had "
    "can could would should will shall may might must".split()
)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(_bm25s_stopwords()) | QUESTION_WORDS


def _bm25s_stopwords() -> list[str]:
    """bm25s's English stop words, read from its plain-data module without importing the package."""
    # `import bm25s.stopwords` runs bm25s/__init__, which imports scipy: ~0.6-1.3 s of every cold `leftqa ask`.
    import importlib.util

    spec = importlib.util.find_spec("bm25s")
    if spec is not None and spec.origin:
        part = importlib.util.spec_from_file_location("_leftqa_bm25s_stopwords", Path(spec.origin).parent / "stopwords.py")
        if part is not None and part.loader is not None:
            module = importlib.util.module_from_spec(part)
            part.loader.exec_module(module)
            return list(module.STOPWORDS_EN)
    from bm25s.stopwords import STOPWORDS_EN

    return list(STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202
    import Stemmer

    return Stemmer.Stemmer("english")


def normalise(text: str) -> str:
    """Case-folded text with unified quotes and dashes and collapsed whitespace (for evidence matching)."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    return _SPACE.sub(" ", text).strip().casefold()


def fold(text: str) -> str:
    """Text without diacritics ("Knüfken" -> "Knufken"), so spellings with and without accents match."""
    if text.isascii():  # nothing to fold (NFKD leaves ASCII as it is); skips a per-character loop per query
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens, possessives stripped ("Stalin's" -> "stalin")."""
    clean = fold(text).translate(_QUOTES).lower()
    if "'" not in clean:  # no apostrophes, nothing to strip: the common case, on every query's sentences
        return _TOKEN.findall(clean)
    out = []
    for tok in _TOKEN.findall(clean):
        if tok.endswith("'s"):
            tok = tok[:-2]
        out.append(tok.replace("'", ""))
    return out


def terms(text: str) -> list[str]:
    """Stemmed content terms (stop words dropped): the vocabulary of BM25 and lexical overlap."""
    stop = _stopwords()
    kept = [w for w in words(text) if w not in stop]
    return _stemmer().stemWords(kept) if kept else []


def stems(tokens: list[str]) -> list[str]:
    """Stems of already-split words."""
    return _stemmer().stemWords(tokens) if tokens else []


def is_stopword(word: str) -> bool:
    """True for function words and question words."""
    return word.lower() in _stopwords()


# A sentence opening with one of these points back to what came before ("He also criticised …", "These were
# described …", "However, once Trotsky …"): read alone it does not say who or what it is about.
_POINTS_BACK = re.compile(
    r"^\s*[\"“(]?(?:it|its|they|their|them|this|these|that|those|he|his|him|she|her|such|both|another|however|"
    r"together|conversely|later|then|thus|therefore|afterwards|meanwhile|nevertheless|instead|also|the latter|"
    r"the former)\b",
    re.I,
)
CONTEXT_SEPARATOR = " [SEP] "  # the tokenizer's own separator token, so the reader sees two segments


def points_back(sentence: str) -> bool:
    """True when a sentence opens with a pronoun or connective that refers to the sentence before it."""
    return bool(_POINTS_BACK.match(sentence))


def with_context(sentence: str, previous: str) -> str:
    """What the answer scorer reads for a sentence: the sentence, then the one before it when it points back."""
    return f"{sentence}{CONTEXT_SEPARATOR}{previous}" if previous and points_back(sentence) else sentence
