"""The learned rerank and answerability on the tiny corpus, with a stand-in scorer whose logits are chosen here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from leftqa.qa import answer as ans
from leftqa.qa.assistant import Assistant
from leftqa.qa.policy import learned_reason
from leftqa.qa.scorer import ANSWERABILITY_FEATURES, SENTENCE_FEATURES, Linear, ScorerInfo, VerifierInfo


def _only(features: tuple[str, ...], name: str, weight: float = 1.0, bias: float = 0.0) -> Linear:
    return Linear(features, tuple(weight if f == name else 0.0 for f in features), bias, (0.0,) * len(features), (1.0,) * len(features))


class StandIn:
    """Scores a sentence by whether it contains a chosen word (logit 5) or not (logit -5)."""

    def __init__(self, word: str, candidates: int = 4, answerability: Linear | None = None, verifier: float | None = None) -> None:
        self.word = word
        floor = VerifierInfo("verifier.onnx", 128, 0.5) if verifier is not None else None
        self.info = ScorerInfo("stand-in", 96, candidates, _only(SENTENCE_FEATURES, "ce"), answerability, verifier=floor)
        self.seen: list[tuple[str, list[str]]] = []
        self.verifier = verifier  # what verified() returns; None: no verifier
        self.windows: list[tuple[str, str]] = []

    @property
    def has_verifier(self) -> bool:
        return self.verifier is not None

    def verified(self, question: str, window: str) -> float:
        self.windows.append((question, window))
        assert self.verifier is not None
        return self.verifier

    def logits(self, question: str, sentences: list[str]) -> np.ndarray:
        self.seen.append((question, list(sentences)))
        return np.array([5.0 if self.word in s else -5.0 for s in sentences], dtype=np.float32)


def _candidates(assistant: Assistant, question: str) -> list[ans.Candidate]:
    r = assistant.retriever.retrieve(question, "hybrid", 10)
    return ans.score_sentences(assistant.index, r)


def test_rerank_puts_the_scorers_choice_first_and_keeps_the_rest_below(fake_assistant: Assistant) -> None:
    cands = _candidates(fake_assistant, "Who led the Harbour Committee?")
    scorer = StandIn("breakwater", candidates=4)
    head_texts = [ans.scored_text(fake_assistant.index, c) for c in cands[:4]]
    assert any("breakwater" in t for t in head_texts) and "breakwater" not in head_texts[0]
    out = ans.rerank(fake_assistant.index, cands, "Who led the Harbour Committee?", scorer)
    assert "breakwater" in ans.scored_text(fake_assistant.index, out[0])
    assert out[0].ce == 5.0 and out[0].rule == next(c.rule for c in cands if c.pos == out[0].pos and c.index_in_passage == out[0].index_in_passage)
    # only the rules' best four were read, with the question as given
    assert scorer.seen == [("Who led the Harbour Committee?", head_texts)]
    # the unread candidates follow in rule order, below every scored one
    tail = out[4:]
    assert [(c.pos, c.index_in_passage) for c in tail] == [(c.pos, c.index_in_passage) for c in cands[4:]]
    assert all(np.isnan(c.ce) for c in tail) and max(c.score for c in tail) < min(c.score for c in out[:4])


def test_a_scorer_that_reads_context_gets_a_pointing_back_sentence_with_the_one_before_it(fake_assistant: Assistant) -> None:
    cands = _candidates(fake_assistant, "Who organised the first public meeting?")
    she = next(c for c in cands if ans.scored_text(fake_assistant.index, c).startswith("She organised"))
    assert ans.scored_text(fake_assistant.index, she, context=True) == (
        "She organised the first public meeting in the town hall and persuaded the merchants to pay for a stone "
        "breakwater. [SEP] The Harbour Committee was led by Marta Quell."
    )
    scorer = StandIn("Marta Quell", candidates=len(cands))
    scorer.info = replace(scorer.info, context=True)
    out = ans.rerank(fake_assistant.index, cands, "Who organised the first public meeting?", scorer)
    read = dict(zip((ans.scored_text(fake_assistant.index, c) for c in cands), scorer.seen[0][1]))
    assert read["The Harbour Committee was led by Marta Quell."] == "The Harbour Committee was led by Marta Quell."
    assert read[ans.scored_text(fake_assistant.index, she)].endswith("[SEP] The Harbour Committee was led by Marta Quell.")
    assert out[0].ce == 5.0


def test_a_sentence_quoted_in_the_previous_turn_is_pushed_down(fake_assistant: Assistant) -> None:
    cands = _candidates(fake_assistant, "Who led the Harbour Committee?")
    scorer = StandIn("Quell")
    first = ans.rerank(fake_assistant.index, cands, "q", scorer)[0]
    marked = [replace(c, repeat=(c.pos, c.index_in_passage) == (first.pos, first.index_in_passage)) for c in cands]
    again = ans.rerank(fake_assistant.index, marked, "q", scorer)
    top = next(c for c in again if (c.pos, c.index_in_passage) == (first.pos, first.index_in_passage))
    assert top.score == pytest.approx(first.score - ans.REPEAT_LOGIT)


def test_without_a_scorer_the_rule_order_stands(fake_assistant: Assistant) -> None:
    cands = _candidates(fake_assistant, "Who led the Harbour Committee?")
    assert ans.rerank(fake_assistant.index, cands, "q", None) == cands


def test_sentence_features_follow_the_declared_order() -> None:
    c = ans.Candidate(rank=2, pos=0, index_in_passage=1, score=0.7, cosine=0.4, coverage=0.5, type_ok=1.0,
                      matched=frozenset(), bigram=0.25, passage=0.6, rule=0.7)  # fmt: skip
    rows = ans.sentence_features([c, replace(c, rule=0.1)], np.array([1.5, 3.0]))
    assert dict(zip(SENTENCE_FEATURES, rows[0])) == {
        "ce": 1.5, "ce_rank": 1.0, "rule": 0.7, "rule_rank": 0.0, "passage": 0.6, "passage_rank": 2.0,
        "cosine": 0.4, "coverage": 0.5, "type_ok": 1.0, "bigram": 0.25,
    }  # fmt: skip
    assert rows[1][1] == 0.0 and rows[1][3] == 1.0


def _deciding(a: Assistant, scorer: "StandIn", threshold: float = 0.5, answerability: Linear | None = None) -> Assistant:
    """The assistant with this scorer, deciding by its answerability (or a calibrated refit) at `threshold`."""
    from leftqa.qa.policy import AbstentionPolicy, Calibration

    policy = AbstentionPolicy.from_calibration(Calibration(threshold, answerability=answerability), scorer.info.answerability)
    return Assistant(a.settings, a.index, a.embedder, policy, scorer)  # type: ignore[arg-type]


def test_the_assistant_abstains_by_the_learned_answerability(fake_assistant: Assistant) -> None:
    # P(answerable) = sigmoid(ce_best): the stand-in gives 5 when a sentence holds the word, -5 when none does
    assistant = _deciding(fake_assistant, StandIn("Quell", answerability=_only(ANSWERABILITY_FEATURES, "ce_best")))
    yes = assistant.ask("Who led the Harbour Committee?")
    assert not yes.abstained and "Marta Quell" in yes.answer
    assert yes.evidence["ce_best"] == 5.0 and yes.evidence["answerable"] == pytest.approx(0.993307, abs=1e-6)
    assistant = _deciding(fake_assistant, StandIn("nowhere-to-be-found", answerability=_only(ANSWERABILITY_FEATURES, "ce_best")))
    no = assistant.ask("Who led the Harbour Committee?")
    assert no.abstained and no.citations == () and no.reason == "the closest material does not answer it"
    assert no.passages  # the closest material is still shown


def test_a_learned_refusal_names_what_the_material_lacks() -> None:
    ev = {"type_found": 1.0}
    assert learned_reason(ev, "When did Marta Quell visit Paris?", "Marta Quell led the committee.") == "the closest material does not mention Paris"
    assert learned_reason({"type_found": 0.0}, "When did she go?", "She went.").startswith("no answer of the expected kind")


def test_cited_passages_lead_the_sources_with_ranks_renumbered() -> None:
    from leftqa.records import Citation, Hit

    hits = tuple(Hit(rank=i, passage_id=f"p{i}", doc_id="d", title="t", section="s", text="x", score=1.0 / i, start=0, end=1) for i in (1, 2, 3))
    cites = (Citation(n=1, passage_id="p3", doc_id="d", title="t", section="s", start=0, end=1, quote="x", highlights=((0, 1),)),)
    out = ans.cited_first(hits, cites)
    assert [(h.rank, h.passage_id) for h in out] == [(1, "p3"), (2, "p1"), (3, "p2")]
    assert ans.cited_first(hits, ()) == hits


@pytest.mark.parametrize(
    ("question", "answered"),
    [
        ("Who was Marta Quell?", True),  # her passage names her and the quote does too
        ("Tell me about the Harbour Committee", True),
        ("Who was Ansel Pike?", False),  # a name the quoted passage never mentions
        ("What was the aim of the Harbour Committee?", False),  # a fact about it, not what it is
    ],
)
def test_a_descriptive_request_about_a_subject_the_quote_names_is_answered(fake_assistant: Assistant, question: str, answered: bool) -> None:
    cands = _candidates(fake_assistant, "Who led the Harbour Committee?")
    chosen = (next(c for c in cands if "Marta Quell" in ans.scored_text(fake_assistant.index, c)),)
    assert ans.describes(fake_assistant.index, chosen, question) == (1.0 if answered else 0.0)


def test_a_described_subject_is_answered_below_the_threshold(fake_assistant: Assistant) -> None:
    assistant = _deciding(fake_assistant, StandIn("Quell", answerability=_only(ANSWERABILITY_FEATURES, "ce_best", weight=0.0, bias=-5.0)))
    described = assistant.ask("Who was Marta Quell?")
    assert described.evidence["answerable"] < 0.5 and described.evidence["describes"] == 1.0 and not described.abstained
    factual = assistant.ask("Who led the Harbour Committee?")
    assert factual.abstained and factual.evidence["describes"] == 0.0


def test_a_calibrated_answerability_refit_replaces_the_scorers_own(fake_assistant: Assistant) -> None:
    # the scorer's own model says unanswerable whatever the evidence; the calibration's refit says answerable
    scorer = StandIn("Quell", answerability=_only(ANSWERABILITY_FEATURES, "ce_best", weight=0.0, bias=-5.0))
    assert _deciding(fake_assistant, scorer).ask("Who led the Harbour Committee?").abstained
    refit = _deciding(fake_assistant, scorer, answerability=_only(ANSWERABILITY_FEATURES, "ce_best")).ask("Who led the Harbour Committee?")
    assert not refit.abstained and refit.evidence["answerable"] == pytest.approx(0.993307, abs=1e-6)


def test_the_support_logit_setting_decides_how_close_a_further_sentence_must_score(fake_assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    def cand(score: float, term: str) -> ans.Candidate:
        return ans.Candidate(rank=0, pos=0, index_in_passage=int(score), score=score, cosine=0.5, coverage=0.5, type_ok=0.0, matched=frozenset({term}))

    cands = [cand(5.0, "a"), cand(3.0, "b"), cand(0.0, "c")]  # each adds a question term the ones above lack
    assert [len(ans.select(cands, 3, None, margin)) for margin in (1.0, 3.0, 6.0)] == [1, 2, 3]
    margins: list[float] = []
    real = ans.select
    monkeypatch.setattr(ans, "select", lambda c, n, index=None, margin=ans.SUPPORT_MARGIN: margins.append(margin) or real(c, n, index, margin))
    fake_assistant.scorer = StandIn("Quell")
    fake_assistant.settings = fake_assistant.settings.with_(support_logit=2.5)
    fake_assistant.ask("Who led the Harbour Committee?")
    assert margins == [2.5]


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        # the default shown query: the question, the conversation's context terms in brackets
        ("query", "What did she organise? (Harbour Committee, led, Marta Quell)"),
        # the previous question, then this one: what a reader would ask in one go
        ("questions", "Who led the Harbour Committee? What did she organise?"),
    ],
)
def test_the_scorer_reads_a_follow_up_as_the_followup_reader_setting_says(fake_assistant: Assistant, reader: str, expected: str) -> None:
    fake_assistant.scorer = StandIn("Quell")
    fake_assistant.settings = fake_assistant.settings.with_(followup_reader=reader)
    answer = fake_assistant.ask("What did she organise?", ["Who led the Harbour Committee?"])
    assert answer.query == "What did she organise? (Harbour Committee, led, Marta Quell)"  # retrieval is unchanged
    assert fake_assistant.scorer.seen[-1][0] == expected
    fake_assistant.ask("Who led the Harbour Committee?")  # a question that stands alone is read as asked
    assert fake_assistant.scorer.seen[-1][0] == "Who led the Harbour Committee?"


def test_a_follow_up_to_a_request_is_read_as_two_questions(fake_assistant: Assistant) -> None:
    fake_assistant.scorer = StandIn("Quell")
    fake_assistant.ask("Who led it?", ["Tell me about the Harbour Committee"])
    # each turn as the question it asks, not the request swallowing the follow-up ("What is … Who led it?")
    assert fake_assistant.scorer.seen[-1][0] == "What is the Harbour Committee? Who led it?"


def test_names_in_quote_reads_the_sentence_a_pronoun_points_back_to(fake_assistant: Assistant) -> None:
    cands = _candidates(fake_assistant, "Who led the Harbour Committee?")
    chosen = (next(c for c in cands if "Marta Quell" in ans.scored_text(fake_assistant.index, c)),)
    assert ans.names_in_quote(fake_assistant.index, chosen, "Who led the Harbour Committee?") == 1.0
    assert ans.names_in_quote(fake_assistant.index, chosen, "What did Ansel Pike say to Marta Quell?") == 0.5
    assert ans.names_in_quote(fake_assistant.index, chosen, "who led it") == 1.0  # names nothing


def test_window_name_coverage_reads_the_quote_its_neighbours_and_the_title_not_the_whole_passage(fake_assistant: Assistant) -> None:
    idx = fake_assistant.index
    cands = _candidates(fake_assistant, "Who led the Harbour Committee?")
    quell = next(c for c in cands if ans.scored_text(idx, c).startswith("The Harbour Committee was led"))
    last = next(c for c in cands if ans.scored_text(idx, c).startswith("Her rivals accused"))
    # "Fenwick" is in the title; "Quell" two sentences before the last one: the window stops at its neighbour
    assert ans.window_name_coverage(idx, (quell,), "What did Marta Quell do in Fenwick?") == 1.0
    assert ans.window_name_coverage(idx, (last,), "What did Marta Quell do in Fenwick?") == 0.5
    assert ans.quoted_name_coverage(idx, (last,), "What did Marta Quell do in Fenwick?") == 1.0  # the passage names her
    assert ans.window_name_coverage(idx, (last,), "who were her rivals") == 1.0  # names nothing
    assert ans.window_name_coverage(idx, (), "Who led it?") == 0.0
    ev = ans.evidence(cands, fake_assistant.retriever.retrieve("Who led the Harbour Committee?", "hybrid", 10), (last,), 1.0, 0.5)
    assert ev["window_names"] == 0.5


def _sentence(assistant: Assistant, question: str, text: str) -> ans.Candidate:
    return next(c for c in _candidates(assistant, question) if ans.scored_text(assistant.index, c).startswith(text))


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Marta Quell", 1.0),  # the sentence names her
        ("Edwin Tallow", 0.0),  # it opens with another name and never names him
        ("Tallow", 1.0),  # one word: too loose a name to judge by
    ],
)
def test_quotes_subject_judges_the_answer_sentence_by_who_it_opens_with(fake_assistant: Assistant, subject: str, expected: float) -> None:
    committee = _sentence(fake_assistant, "Who led the Harbour Committee?", "The Harbour Committee was led")
    assert ans.quotes_subject(fake_assistant.index, (committee,), subject) == expected
    # A sentence that opens with a pronoun may be about anyone: never judged.
    organised = _sentence(fake_assistant, "Who led the Harbour Committee?", "She organised")
    assert ans.quotes_subject(fake_assistant.index, (organised,), "Edwin Tallow") == 1.0
    # Only the answer sentence counts: a support sentence naming the subject does not rescue it.
    assert ans.quotes_subject(fake_assistant.index, (committee, organised), "Edwin Tallow") == 0.0


def test_type_gate_reads_the_answer_sentence_of_a_when_question(fake_assistant: Assistant) -> None:
    when = fake_assistant.retriever.retrieve("When did the first customs house open?", "hybrid", 10)
    dated = _sentence(fake_assistant, "When did the first customs house open?", "The first customs house opened in 1834")
    undated = _sentence(fake_assistant, "When did the first customs house open?", "Dr. Ansel Pike")
    assert when.answer_type == "date"
    assert ans.type_gate(when, (dated,)) == 1.0 and ans.type_gate(when, (undated, dated)) == 0.0
    who = fake_assistant.retriever.retrieve("Who kept a diary?", "hybrid", 10)
    assert ans.type_gate(who, (undated,)) == 1.0  # not a date or number question


def test_the_gates_refuse_only_when_their_settings_are_on(fake_assistant: Assistant) -> None:
    sure = _only(ANSWERABILITY_FEATURES, "ce_best", weight=0.0, bias=5.0)  # P(answerable) 0.993 whatever it reads
    history = ["Who was Edwin Tallow?"]
    off = _deciding(fake_assistant, StandIn("Harbour Committee was led", answerability=sure)).ask("Who led it?", history)
    assert not off.abstained and off.answer.startswith("The Harbour Committee was led by Marta Quell.")
    fake_assistant.settings = fake_assistant.settings.with_(subject_gate=True)
    on = _deciding(fake_assistant, StandIn("Harbour Committee was led", answerability=sure)).ask("Who led it?", history)
    assert on.abstained and on.evidence["subject_quoted"] == 0.0 and on.reason == "the closest sentence is about someone else"
    # The gate reads the user's question first: a question about Marta Quell is answered by the same sentence.
    assert not _deciding(fake_assistant, StandIn("Harbour Committee was led", answerability=sure)).ask("What did Marta Quell lead?").abstained
    fake_assistant.settings = fake_assistant.settings.with_(subject_gate=False, type_gate=True)
    undated = _deciding(fake_assistant, StandIn("Ansel Pike", answerability=sure)).ask("When did the first customs house open?")
    assert undated.abstained and undated.evidence["type_gate"] == 0.0
    dated = _deciding(fake_assistant, StandIn("opened in 1834", answerability=sure)).ask("When did the first customs house open?")
    assert not dated.abstained and dated.evidence["type_gate"] == 1.0


def test_the_verifier_reads_the_answer_sentence_with_its_neighbours_and_refuses_under_its_floor(fake_assistant: Assistant) -> None:
    sure = _only(ANSWERABILITY_FEATURES, "ce_best", weight=0.0, bias=5.0)  # P(answerable) 0.993 whatever it reads
    doubtful = StandIn("Harbour Committee was led", answerability=sure, verifier=0.2)
    no = _deciding(fake_assistant, doubtful).ask("Who led the Harbour Committee?")
    assert no.abstained and (no.evidence["verifier"], no.evidence["verified"]) == (0.2, 0.0)
    assert no.reason == "the closest sentences are on the subject but do not say what was asked"
    [(question, window)] = doubtful.windows
    passage = next(p for p in fake_assistant.index.passages if "The Harbour Committee was led" in p.text)
    at = next(i for i, s in enumerate(passage.sentences) if s.text.startswith("The Harbour Committee was led"))
    assert question == "Who led the Harbour Committee?"
    assert window == " ".join(s.text for s in passage.sentences[max(0, at - 1) : at + 2]) and window.count(".") >= 2
    confident = StandIn("Harbour Committee was led", answerability=sure, verifier=0.8)
    yes = _deciding(fake_assistant, confident).ask("Who led the Harbour Committee?")
    assert not yes.abstained and yes.evidence["verified"] == 1.0
    fake_assistant.settings = fake_assistant.settings.with_(verifier=False)
    off = _deciding(fake_assistant, StandIn("Harbour Committee was led", answerability=sure, verifier=0.2)).ask("Who led the Harbour Committee?")
    assert not off.abstained and "verifier" not in off.evidence
