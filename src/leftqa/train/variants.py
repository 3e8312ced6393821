"""Training questions SQuAD does not have (issue 29, item 2), made from its answerable ones: the same question
about another person of the article (wrong subject), with another year (false premise), as a follow-up whose
subject is a pronoun after an earlier question, and typed the way people type (lower case, no punctuation, a
typo; keywords only). The first two have no answer among their sentences; the last two keep the original labels."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from leftqa.train.pairs import Pair, _content, _paragraphs, answer_sentence

KINDS = ("wrong-subject", "false-premise", "followup", "style")
_NOT_NAMES = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
_ADJECTIVE = re.compile(r"(?:ian|ians|ese|ish|ean|eans|ic|ics)$")  # "Italian", "Chinese": a demonym, not a subject
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b")
_PUNCT = re.compile(r"[^\w\s'-]")


def _content_words(name: str) -> list[str]:
    from leftqa.text import is_stopword, words

    return [w for w in words(name) if not is_stopword(w) and not w.isdigit()]


def _name_like(name: str, lower: set[str]) -> bool:
    parts = name.split()
    if any(p.lower() in _NOT_NAMES for p in parts):
        return False
    return not (len(parts) == 1 and (name.lower() in lower or _ADJECTIVE.search(name.lower())))


def article_names(paragraphs: Sequence[str]) -> list[str]:
    """Capitalised names (`followup.names`) across an article's paragraphs, first seen first, each with a content
    word of three letters or more; no month or day names, and no single word that the article also writes in
    lower case or that ends like a demonym."""
    from leftqa.qa.followup import names

    # A word the article also writes in lower case is a common word capitalised ("Technology"), not a name.
    lower = {w for text in paragraphs for w in re.findall(r"\b[a-z][a-z'-]+\b", text)}
    out: dict[str, None] = {}
    for text in paragraphs:
        for n in names(text):
            if n != "I" and any(len(w) >= 3 for w in _content_words(n)) and _name_like(n, lower):
                out.setdefault(n, None)
    return list(out)


def _own_names(question: str, paragraph_words: set[str]) -> list[str]:
    """The question's names that its paragraph mentions (every content word of them)."""
    from leftqa.qa.followup import names

    return [
        n for n in names(question)
        if n != "I" and n in question and _content_words(n) and all(w in paragraph_words for w in _content_words(n))
        and not any(p.lower() in _NOT_NAMES for p in n.split())
    ]  # fmt: skip


def swap_subject(
    question: str, paragraph: str, candidates: Sequence[str], rng: random.Random
) -> tuple[str, str, str] | None:
    """(swapped question, name taken out, name put in), or None: one of the question's names that its paragraph
    mentions is replaced by a name from `candidates` (the article's) of which no word occurs in the paragraph or
    the question (nor its stem or a five-letter prefix), with as many words as the replaced one."""
    from leftqa.text import stems, words

    in_para = set(words(paragraph))
    seen = in_para | set(words(question))
    seen_stems = set(stems(sorted(seen)))

    def unseen(name: str) -> bool:  # no word of it, its stem or a 5-letter prefix of it in paragraph or question
        ws = words(name)
        return bool(ws) and not any(
            w in seen or s in seen_stems or any(v[:5] == w[:5] for v in seen if len(v) >= 5 and len(w) >= 5)
            for w, s in zip(ws, stems(ws))
        )

    own = _own_names(question, in_para)
    rng.shuffle(own)
    for old in own:
        # As many words as the name replaced, so the question keeps its shape ("Ada Lovelace" -> "Charles Babbage").
        others = [c for c in candidates if len(c.split()) == len(old.split()) and _content_words(c) and unseen(c)]
        if others:
            new = rng.choice(others)
            break
    else:
        return None
    at = question.index(old)
    return question[:at] + new + question[at + len(old) :], old, new


def swap_year(question: str, answer: str, paragraph: str, article_years: Sequence[str], rng: random.Random) -> str | None:
    """The question with a year it shares with its answer sentence replaced by another year of the article that
    its paragraph never gives (a false premise: the sentence states the fact for the original year), or None."""
    asked = [y for y in _YEAR.findall(question) if y in answer]
    others = [y for y in article_years if y not in paragraph and y not in question]
    if not asked or not others:
        return None
    old, new = rng.choice(asked), rng.choice(others)
    return re.sub(rf"\b{old}\b", new, question, count=1)


# After one of these a name is an object ("an album from Beyoncé" -> "from her"), elsewhere the subject.
_OBJECT_AFTER = frozenset(
    "of to from with by for about at on in against under than like as between into onto without toward towards "
    "beyond after before over during and or".split()
)
# After these a name is still the subject ("When did X die?", "Who was X?").
_AUXILIARY = frozenset("is was were are be been did does do has have had will would can could who what".split())


def pronoun_for(paragraph: str) -> tuple[str, str, str]:
    """(subject, object, possessive) pronouns a paragraph would use for its subject: the more frequent of she and
    he, else it."""
    low = paragraph.lower()
    she = len(re.findall(r"\b(?:she|her|hers)\b", low))
    he = len(re.findall(r"\b(?:he|his|him)\b", low))
    if she > he:
        return "she", "her", "her"
    return ("he", "him", "his") if he else ("it", "it", "its")


def as_followup(question: str, name: str, paragraph: str) -> str | None:
    """The question with `name` (and its possessive) replaced by the pronoun the paragraph suggests, or None."""
    subject, obj, possessive = pronoun_for(paragraph)
    m = re.search(rf"(?<![\w&]){re.escape(name)}(?![\w&])(['’]s?)?", question)
    if m is None:
        return None
    before = re.findall(r"[a-z]+", question[: m.start()].lower())[-1:]
    if m.group(1):
        word = possessive
    elif before and before[0] in _OBJECT_AFTER:
        word = obj
    elif before and before[0] not in _AUXILIARY and not question[m.end() :].strip(" ?.!"):
        word = obj  # last word after a verb: "Who coached Beyoncé?" -> "Who coached her?"
    else:
        word = subject
    out = question[: m.start()] + word + question[m.end() :]
    return out[0].upper() + out[1:] if m.start() == 0 else out


def sloppy(question: str, rng: random.Random) -> str:
    """The question as typed in a hurry: lower case, no punctuation, now and then two letters swapped."""
    text = " ".join(_PUNCT.sub(" ", question.lower()).split())
    long = [m for m in re.finditer(r"[a-z]{6,}", text)]
    if long and rng.random() < 0.5:
        m = rng.choice(long)
        i = rng.randrange(m.start() + 1, m.end() - 2)
        text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


def keywords(question: str) -> str:
    """The question as a search query: its content words in order."""
    from leftqa.qa.followup import content_words

    return " ".join(content_words(question))


def one_variant(
    kind: str, question: str, paragraph: dict[str, Any], answer_text: str, names: Callable[[], Sequence[str]],
    years: Sequence[str], rng: random.Random,
) -> tuple[str, float] | None:
    """One `kind` of variant of an answerable question of `paragraph` whose answer sentence is `answer_text`, with
    its label (0 for a wrong subject or a false premise, 1 for a follow-up or a style), or None when it does not
    apply; `names` gives the article's names (`article_names`), `years` its years."""
    from leftqa.qa.features import as_question
    from leftqa.text import words

    ctx = paragraph["context"]
    if kind == "wrong-subject":
        s = swap_subject(question, ctx, names(), rng)
        return (s[0], 0.0) if s else None
    if kind == "false-premise":
        y = swap_year(question, answer_text, ctx, years, rng)
        return (y, 0.0) if y else None
    if kind == "followup":
        own = [n for n in _own_names(question, set(words(ctx))) if len(n) >= 3]
        turn = as_followup(question, own[0], ctx) if own else None
        if not turn:
            return None
        asked = [" ".join(str(o.get("question", "")).split()) for o in paragraph["qas"] if not o.get("is_impossible")]
        earlier = [a for a in asked if own[0] in a and a != question]
        before = rng.choice(earlier) if earlier else f"Tell me about {own[0]}"
        # Read as at query time (Settings.followup_reader "questions"): the earlier turn, then this.
        return f"{as_question(before)} {as_question(turn)}", 1.0
    return (sloppy(question, rng) if rng.random() < 0.6 else keywords(question)), 1.0


def variant_pairs(
    articles: list[dict[str, Any]], questions: set[str], share: float, seed: int, first_group: int, context: bool = False,
    counts: dict[str, int] | None = None,
) -> Iterator[Pair]:
    """For a `share` of the answerable `questions`, one variant each (a kind drawn in turn from those it allows),
    paired with its answer sentence and the two best word-overlap sentences of its paragraph; wrong-subject and
    false-premise variants label every sentence 0 (the listwise no-answer option must win). `counts`, when
    given, gathers how many questions of each kind were made."""
    rng = random.Random(seed + 29)
    group = first_group
    for article in articles:
        paras = _paragraphs(article, context)
        contexts = [p["context"] for p in article["paragraphs"]]
        names = functools.cache(partial(article_names, contexts))  # only made when a wrong subject is asked for
        years = list(dict.fromkeys(y for c in contexts for y in _YEAR.findall(c)))
        for pi, p in enumerate(article["paragraphs"]):
            sents, spans, toks = paras[pi]
            for q in p["qas"]:
                question = " ".join(str(q.get("question", "")).split())
                if q.get("is_impossible") or question not in questions or rng.random() >= share:
                    continue
                answers = q.get("answers") or []
                gold = answer_sentence(spans, int(answers[0].get("answer_start", -1))) if answers else None
                if gold is None or len(spans) < 2:
                    continue
                qt = _content(question)
                others = sorted((i for i in range(len(sents)) if i != gold), key=lambda i: -len(qt & toks[i]))[:2]
                ctx = contexts[pi]
                made: tuple[str, float] | None = None
                for kind in [*rng.sample(KINDS[:3], 3), "style"]:  # style, which always applies, when no other does
                    made = one_variant(kind, question, p, ctx[spans[gold][0] : spans[gold][1]], names, years, rng)
                    if made and made[0].strip():
                        break
                    made = None
                if made is None:
                    continue
                text, label = made
                if counts is not None:
                    counts[kind] = counts.get(kind, 0) + 1
                yield Pair(text, sents[gold], label, group)
                yield from (Pair(text, sents[i], 0.0, group) for i in others)
                group += 1
