"""Follow-up questions without an LLM: detect questions that cannot stand alone and add the conversation's topic."""

from __future__ import annotations

import re

from leftqa.text import is_stopword, words

# Words that point back into the conversation: pronouns, and words of contrast or addition that presuppose
# something already said ("Which other movement…", "… as well?"). Grammar words only: nothing here names a person
# or event.
_ANAPHORA = frozenset(
    "he she it they them him her his hers its their theirs this that these those there then such former latter "
    "other another else too same instead either".split()
)
_LEADS = re.compile(r"^\s*(and|but|also|so|what about|how about|and what about|what else|anything else|why not|and why)\b", re.I)
_CAPITAL = re.compile(r"\b[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")
_GENERIC_CAPS = frozenset("What Which Who Whom Whose When Where Why How Did Does Do Was Were Is Are And But Also The A An In On Of".split())
_POSSESSIVE = re.compile(r"['’]s?$")  # "Luxemburg's" -> "Luxemburg"; "Engels" keeps its s
MAX_CONTEXT_TERMS = 8


def content_words(text: str) -> list[str]:
    """Words of a text that carry topic (no stop or question words), in order, without repeats."""
    return list(dict.fromkeys(w for w in words(text) if not is_stopword(w) and len(w) > 1))


def names(text: str) -> list[str]:
    """Capitalised names in a text (multi-word runs kept together); a lone capitalised first word is not a name."""
    out = []
    for m in _CAPITAL.finditer(text):
        parts = [p for p in m.group(0).split() if p not in _GENERIC_CAPS]
        sentence_initial = m.start() == 0 or text[: m.start()].rstrip().endswith((".", "!", "?", ":", '"', "“"))
        if not parts or (sentence_initial and len(parts) == 1 and m.group(0) == parts[0]):
            continue
        out.append(_POSSESSIVE.sub("", " ".join(parts)))
    return list(dict.fromkeys(out))


def needs_context(question: str) -> bool:
    """True when a question leans on the conversation: pronouns, words such as "other" or "as well", "and what
    about…", or too few content words."""
    toks = words(question)
    if not toks:
        return False
    if _LEADS.match(question):
        return True
    if any(t in _ANAPHORA for t in toks) or ("as", "well") in zip(toks, toks[1:]):
        return True
    content = [t for t in toks if not is_stopword(t)]
    return len(content) <= 1 and not names(question)


def context_terms(previous_query: str, answer_sentences: list[str]) -> list[str]:
    """What the conversation is about: names and content words of the last query, then two names from its answer."""
    terms_: list[str] = list(names(previous_query))
    for w in content_words(previous_query):
        if not any(w in n.lower().split() for n in terms_):
            terms_.append(w)
    added = 0
    for sentence in answer_sentences[:1]:
        for name in names(sentence):
            if added < 2 and name.lower() not in (t.lower() for t in terms_):
                terms_.append(name)
                added += 1
    return terms_[:MAX_CONTEXT_TERMS]


def build_query(question: str, context: list[str]) -> str:
    """The effective query shown to the user: the new question, then the conversation's context in brackets."""
    if not context:
        return question
    return f"{question.strip()} ({', '.join(context)})"
