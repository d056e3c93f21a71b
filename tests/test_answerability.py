"""The judge's second question: does the kept sentence's window answer the question at all, read without the answer.

Real Chroma and the real embedding model over the seeds; a scripted generator that is also a scripted judge (a fixed
P(yes) for the claim checks and another for the claim-less ones), and a confidence model that reads only the
``answerable`` signal, so what the signal does to an answer is visible. The real judge is measured by ``rag eval``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.components import Components
from rag.evaluation.config import EvalSet
from rag.evaluation.runner import eval_settings
from rag.embedding import Embedder
from rag.generation.answer import Answer
from rag.generation.prompt import ContextPassage
from rag.generation.backends.fake import FakeGenerator
from rag.settings import Settings
from rag.retrieval import Passage
from rag.verification.claim_model import ClaimModel, Logistic
from rag.verification.confidence import UNJUDGED, ConfidenceModel
from rag.verification.judge import Check, check_messages, fixed_parts
from rag.verification.rules import windows, with_antecedent
from rag.verification.verifier import OFF_QUESTION_NOTE, Verifier
from tests.fixtures.fake import cite

QUESTION = "Who has led ISIS-K since 2020?"
LEADER = "Shahab al-Muhajir has led ISIS-K since 2020 [{n}]."
# confidence = sigmoid(8 * answerable - 4): a window that answers (0.9) 0.96, one that does not (0.2) 0.08
ANSWERABLE_ONLY = ConfidenceModel(Logistic({"answerable": 8.0}, -4.0), Logistic({}, 0.0))


class JudgingFake(FakeGenerator):
    """Scripted replies, and a judge: ``claim_p`` for every claim check, ``answers_p`` for every claim-less one."""

    name = "llamacpp"  # the backend it stands in for: the answerer asks the run's backend to judge

    def __init__(self, replies: list, claim_p: float, answers_p: float) -> None:  # type: ignore[type-arg]
        super().__init__(replies)
        self.claim_p, self.answers_p = claim_p, answers_p
        self.checks: list[Check] = []

    def judge(self, checks: list[Check]) -> list[float]:
        self.checks += checks
        return [self.answers_p if c.claim is None else self.claim_p for c in checks]


def _answer(settings: Settings, embedder: Embedder, fake: JudgingFake, model: ConfidenceModel = ANSWERABLE_ONLY,
            **overrides: object) -> Answer:
    components = Components(settings.model_copy(update={"judge": True, "min_confidence": 0.5, **overrides}),
                            embedder=embedder, generators={"llamacpp": fake})
    components.answerer.confidence_model = model
    return components.answerer.run(QUESTION).answer()


def test_the_kept_sentence_window_is_judged_against_the_question_alone(seeded_settings: Settings, embedder: Embedder) -> None:
    fake = JudgingFake([cite("al-Muhajir", LEADER)], claim_p=0.95, answers_p=0.9)
    answer = _answer(seeded_settings, embedder, fake)
    assert not answer.abstained, answer.notes
    assert "al-Muhajir" in answer.answer
    assert answer.signals["answerable"] == 0.9, (answer.notes, fake.checks)
    assert answer.confidence > 0.9
    asked = [c for c in fake.checks if c.claim is None]
    assert len(asked) == 1 and asked[0].question == QUESTION and "al-Muhajir" in asked[0].passage
    # ... given with the sentence before the claim's window, which says what "it" in "it has been led by" is
    claim_window = next(c.passage for c in fake.checks if c.claim is not None)
    assert asked[0].passage.endswith(claim_window) and len(asked[0].passage) > len(claim_window), asked[0].passage
    assert "Does the passage answer this exact question" in check_messages(asked[0])[-1]["content"]


def test_a_window_that_does_not_answer_the_question_gates_a_fluent_answer(seeded_settings: Settings,
                                                                           embedder: Embedder) -> None:
    """The claim check passes the sentence (0.95), but its window, read against the question alone, is a near miss
    (0.2): the calibrated confidence falls under the gate and the answer becomes an abstention."""
    fake = JudgingFake([cite("al-Muhajir", LEADER)], claim_p=0.95, answers_p=0.2)
    answer = _answer(seeded_settings, embedder, fake)
    assert answer.abstained
    assert "closest passage" in answer.answer
    assert [c.claim is None for c in fake.checks] == [False, True]  # the claim passed its own check; the window did not


def test_a_window_is_given_with_the_sentence_before_it() -> None:
    passage = "The Vale line opened in 1880. Traffic peaked in 1901, when the line carried 6,400 tons. It closed in 1960."
    first, second, last = windows(passage)
    assert with_antecedent(passage, second) == passage.split(" Traffic")[0] + " " + second
    assert with_antecedent(passage, first) == first  # nothing before the passage's first sentence
    assert with_antecedent(passage, last) == passage[passage.index("Traffic"):]
    assert with_antecedent(passage, "not a window of it") == "not a window of it"


def test_each_kind_of_check_has_its_own_fixed_prefix() -> None:
    """Backends cache a fixed prefix per kind: the claim checks' and the claim-less checks' share no instruction."""
    (claim_a, claim_b), (answers_a, answers_b) = fixed_parts(answers=False), fixed_parts(answers=True)
    assert claim_a[:-1] == claim_b[:-1] and answers_a[:-1] == answers_b[:-1]
    assert claim_a[0] != answers_a[0]
    assert "Proposed answer" in claim_a[-1]["content"] and "Proposed answer" not in answers_a[-1]["content"]


def test_the_check_is_asked_only_when_the_confidence_reads_it(seeded_settings: Settings, embedder: Embedder) -> None:
    """It costs a judge call per kept sentence: a confidence model that does not weigh ``answerable`` does not pay it,
    ``RAG_JUDGE_ANSWERS`` forces it either way, and ``rag eval`` always measures it (its reports fit the models)."""
    support_only = ConfidenceModel(Logistic({"support": 4.0}, -2.0), Logistic({}, 0.0))
    quiet = JudgingFake([cite("al-Muhajir", LEADER)], claim_p=0.95, answers_p=0.2)
    answer = _answer(seeded_settings, embedder, quiet, support_only)
    assert not answer.abstained and answer.signals["answerable"] == UNJUDGED
    assert [c.claim is None for c in quiet.checks] == [False]
    forced = JudgingFake([cite("al-Muhajir", LEADER)], claim_p=0.95, answers_p=0.2)
    answer = _answer(seeded_settings, embedder, forced, support_only, judge_answers=True)
    assert answer.signals["answerable"] == 0.2 and [c.claim is None for c in forced.checks] == [False, True]
    off = JudgingFake([cite("al-Muhajir", LEADER)], claim_p=0.95, answers_p=0.2)
    assert not _answer(seeded_settings, embedder, off, ANSWERABLE_ONLY, judge_answers=False).abstained
    assert eval_settings(Settings(), EvalSet("x", Path("gold.jsonl"), Path("docs"))).judge_answers is True
    assert eval_settings(Settings(judge_answers=False), EvalSet("x", Path("gold.jsonl"), Path("docs"))).judge_answers is False


def test_two_sentences_on_one_window_ask_its_question_once() -> None:
    """The claim-less check reads only the window and the question: a second sentence on the same window would ask
    the model exactly what the first did (1.6 s each on 2 cores), so a verifier asks each distinct check once."""
    passage = "Since 2020, ISIS-K has been led by the Iraqi Shahab al-Muhajir. The group is based in Nangarhar."
    context = [ContextPassage(1, Passage("d1::h::0/1", "d1", "Legiec analysis", "/src/d1.txt", passage, 0, len(passage), 0), passage)]
    judge = JudgingFake([], claim_p=0.95, answers_p=0.9)  # only its judge is used here
    verifier = Verifier(ClaimModel.load(), judge=judge, judge_answers=True)
    result = verifier.verify("Shahab al-Muhajir has led ISIS-K since 2020 [1]. He is Iraqi [1].", QUESTION, context)
    kept = [c for c in result.claims if c.final]
    assert len(kept) == 2 and {c.answerable for c in kept} == {0.9}, result.notes
    assert len({c.passage for c in judge.checks if c.claim is None}) == 1  # both sentences rest on one window ...
    assert [c.claim is None for c in judge.checks] == [False, True, False]  # ... whose question is asked once


def test_the_claim_threshold_setting_overrides_the_fitted_one(seeded_settings: Settings, embedder: Embedder) -> None:
    """``RAG_CLAIM_THRESHOLD``: the bar a sentence's probability of support must reach (default: the fitted one)."""
    support_only = ConfidenceModel(Logistic({"support": 4.0}, -2.0), Logistic({}, 0.0))
    kept = _answer(seeded_settings, embedder, JudgingFake([cite("al-Muhajir", LEADER)], claim_p=0.95, answers_p=0.9), support_only)
    assert not kept.abstained, kept.notes  # P(yes) 0.95 is over the fitted bar ...
    strict = _answer(seeded_settings, embedder, JudgingFake([cite("al-Muhajir", LEADER)], claim_p=0.95, answers_p=0.9),
                     support_only, claim_threshold=0.999)
    assert strict.abstained and "no sentence supported by the passages" in strict.notes  # ... and under this one


class WindowJudge:
    """Claim checks: yes (0.95) when the window holds every longer word of the claim. Claim-less checks: yes (0.9) only
    for a window that says who leads the group."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def judge(self, checks: list[Check]) -> list[float]:
        self.checks += checks
        return [(0.9 if "led by" in c.passage else 0.1) if c.claim is None else (0.95 if _states(c.passage, c.claim) else 0.05)
                for c in checks]


def _states(passage: str, claim: str) -> bool:
    words = {w.strip(".,").lower() for w in claim.split() if len(w.strip(".,")) > 3}
    return words <= {w.strip(".,").lower() for w in passage.split()}


def _context(*texts: str) -> list[ContextPassage]:
    return [ContextPassage(n, Passage(f"d{n}::h::0/1", f"d{n}", f"Analysis {n}", f"/src/d{n}.txt", t, 0, len(t), 0), t)
            for n, t in enumerate(texts, start=1)]


def test_min_answerable_drops_a_true_sentence_that_answers_another_question() -> None:
    """The claim check passes both sentences (each is stated by its passage), but the second one's passage says where
    the group is, not who leads it: with ``RAG_MIN_ANSWERABLE`` it is dropped; off (0), it is kept."""
    context = _context("Since 2020, ISIS-K has been led by Shahab al-Muhajir.", "ISIS-K is based in Nangarhar province.")
    draft = "Shahab al-Muhajir has led ISIS-K since 2020 [1]. ISIS-K is based in Nangarhar province [2]."
    off = Verifier(ClaimModel.load(), judge=WindowJudge(), judge_answers=True).verify(draft, QUESTION, context)
    assert "Nangarhar" in off.answer and not off.abstained
    on = Verifier(ClaimModel.load(), judge=WindowJudge(), judge_answers=True, min_answerable=0.5).verify(draft, QUESTION, context)
    assert "al-Muhajir" in on.answer and "Nangarhar" not in on.answer, on.answer
    assert OFF_QUESTION_NOTE in on.notes and [c.final for c in on.claims] == [[1], []]


def test_min_answerable_moves_a_sentence_to_the_passage_that_answers() -> None:
    """Cited to a passage that states it but is about something else, the sentence is tried on the best other passage,
    and kept there when that one answers the question: the citation moves instead of the answer being lost."""
    context = _context("Since 2020 Shahab al-Muhajir has led ISIS-K fighters in Kunar.",
                       "Since 2020, ISIS-K has been led by Shahab al-Muhajir.")
    draft = "Shahab al-Muhajir has led ISIS-K since 2020 [1]."
    off = Verifier(ClaimModel.load(), judge=WindowJudge(), judge_answers=True).verify(draft, QUESTION, context)
    assert [c.final for c in off.claims] == [[1]], off.notes
    judge = WindowJudge()
    on = Verifier(ClaimModel.load(), judge=judge, judge_answers=True, min_answerable=0.5).verify(draft, QUESTION, context)
    assert [c.final for c in on.claims] == [[2]] and on.claims[0].answerable == 0.9, on.notes
    assert "citation [1] moved to [2]" in on.notes and OFF_QUESTION_NOTE not in on.notes
    # A quoted side of a disagreement is the source's own words: its risk is checked by the side rules, not this one
    quoted = Verifier(ClaimModel.load(), judge=WindowJudge(), judge_answers=True, min_answerable=0.5).verify(
        draft, QUESTION, context[:1], quoted=True)
    assert [c.final for c in quoted.claims] == [[1]], quoted.notes


def test_min_answerable_needs_the_answers_check() -> None:
    with pytest.raises(ValidationError, match="RAG_MIN_ANSWERABLE needs the answers check"):
        Settings(min_answerable=0.5, judge_answers=False)
    with pytest.raises(ValidationError):
        Settings(min_answerable=1.5)
    assert Settings(min_answerable=0.5).min_answerable == 0.5
