"""Follow-up questions without an LLM: detect questions that cannot stand alone and add the conversation's topic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

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


def context_terms(previous_query: str, answer_sentences: list[str], questions_only: bool = False) -> list[str]:
    """What the conversation is about: names and content words of the last query, then two names from its answer;
    with `questions_only`, the user's words alone: no answer names, no pronoun or word of a name already taken."""
    terms_: list[str] = list(names(previous_query))
    for w in content_words(previous_query):
        if questions_only and (w in _ANAPHORA or any(w in t.lower() for t in terms_)):
            continue
        if not any(w in n.lower().split() for n in terms_):
            terms_.append(w)
    added = 0
    for sentence in [] if questions_only else answer_sentences[:1]:
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


# Personal pronouns stand for the conversation's subject: replaced by its name ("When did she die?" -> "When did
# Rosa Luxemburg die?"); possessives take "'s", and "her" is possessive before a content word ("her legacy").
# "it" and "they" are left alone: as often a thing or a group the user never named ("How does it portray him?"
# after a question about a mural), so such a follow-up is read after the previous question instead.
_SUBJECT_PRONOUNS = frozenset("he she him".split())
_POSSESSIVE_PRONOUNS = frozenset("his hers".split())
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")
_ABOUT = re.compile(r"^\s*(?:and|but|so)?\s*(?:what|how)\s+about\s+(.+?)[\s?.!]*$|^\s*and\s+(.+?)[\s?.!]*$", re.I)


@dataclass(frozen=True)
class Subject:
    """What a question asks about: its name as the corpus writes it, and the words the user typed for it."""

    name: str
    typed: str


def subject_of(question: str, texts: Sequence[str]) -> Subject | None:
    """The name a question asks about, matched case-insensitively against the names of `texts` (the passages it
    retrieved) and its own: the one with most of its words in the question (a surname alone will do), then the
    longest; None when it names nothing the corpus names."""
    asked = [w for w in words(question) if not is_stopword(w)]
    # Most of the question's words, then fewest words the question lacks: "Rosa Luxemburg" before a run such as
    # "Like Rosa Luxemburg" that a sentence-initial word joined.
    best: tuple[tuple[int, int], str, list[str]] | None = None
    for name in dict.fromkeys([*names(question), *(n for t in texts for n in names(t))]):
        own = [w for w in words(name) if not is_stopword(w)]
        hit = [w for w in own if w in asked]
        if not hit or (len(hit) == 1 and len(hit[0]) < 4 and len(own) > 1):
            continue
        key = (len(hit), len(hit) - len(own))
        if best is None or key > best[0]:
            best = (key, name, hit)
    if best is None:
        return None
    spans = [m for m in _WORD.finditer(question) if words(m.group(0))[:1] and words(m.group(0))[0] in best[2]]
    return Subject(best[1], question[spans[0].start() : spans[-1].end()] if spans else best[1])


def rewrite(question: str, subject: Subject, previous: str) -> str:
    """A follow-up as one question that stands alone: its pronoun replaced by the subject's name, "what about X?"
    as the previous question about X (the subject as typed there replaced), anything else after the previous
    question."""
    about = _ABOUT.match(question)
    if about:
        other = (about.group(1) or about.group(2)).strip()
        if subject.typed in previous:
            return previous.replace(subject.typed, other, 1)
        return f"{previous.rstrip()} ({other})"
    tokens = list(_WORD.finditer(question))
    for i, m in enumerate(tokens):
        w = m.group(0).lower()
        after = tokens[i + 1].group(0) if i + 1 < len(tokens) else ""
        possessive = w in _POSSESSIVE_PRONOUNS or (w == "her" and after and not is_stopword(after))
        if w in _SUBJECT_PRONOUNS or w == "her" or possessive:
            name = f"{subject.name}'s" if possessive else subject.name
            return question[: m.start()] + name + question[m.end() :]
    return f"{previous.rstrip()} {question.strip()}"
