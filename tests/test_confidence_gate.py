"""The confidence gate (``RAG_MIN_CONFIDENCE``) sentence by sentence: what share of the answer it reads.

Real Chroma and the real embedding model over the seeds; a scripted generator, judge off (the rules check each
sentence), and a confidence model that reads only the share of the draft kept, so the gate's arithmetic is visible.
"""

from __future__ import annotations

from rag.components import Components
from rag.embedding import Embedder
from rag.generation.answer import Answer
from rag.generation.backends.fake import FakeGenerator
from rag.generation.run import AnswerRun
from rag.settings import Settings
from rag.verification.claim_model import Logistic
from rag.verification.confidence import ConfidenceModel
from tests.fixtures.fake import cite

QUESTION = "Who has led ISIS-K since 2020?"
LEADER = "Shahab al-Muhajir has led ISIS-K since 2020 [{n}]."
IRAQI = "ISIS-K has been led by the Iraqi Shahab al-Muhajir since 2020 [{n}]."
UNSUPPORTED = "ISIS-K has been led by a council of twelve Nangarhar elders [{n}]."
# confidence = sigmoid(4 * kept_share - 2): a whole answer 0.88, half of one 0.5
SHARE_ONLY = ConfidenceModel(Logistic({"kept_share": 4.0}, -2.0), Logistic({}, 0.0))


def _run(settings: Settings, embedder: Embedder, draft: str, question: str = QUESTION) -> AnswerRun:
    components = Components(settings.model_copy(update={"judge": False, "min_confidence": 0.7}), embedder=embedder,
                            generators={"llamacpp": FakeGenerator([cite("al-Muhajir", draft)])})
    components.answerer.confidence_model = SHARE_ONLY
    return components.answerer.run(question)


def _answer(settings: Settings, embedder: Embedder, draft: str) -> Answer:
    return _run(settings, embedder, draft).answer()


def test_a_two_sentence_answer_is_not_gated_as_two_halves(seeded_settings: Settings, embedder: Embedder) -> None:
    """Each sentence was gated as a share of the whole draft, so the first of two supported sentences was half an
    answer (0.5 < 0.7) and so was the second: a right answer became an abstention (mini m28, m30)."""
    answer = _answer(seeded_settings, embedder, f"{LEADER} {IRAQI}")
    assert not answer.abstained, answer.notes
    assert "al-Muhajir" in answer.answer and "Iraqi" in answer.answer
    assert answer.confidence > 0.8


def test_a_dropped_sentence_still_counts_against_the_next(seeded_settings: Settings, embedder: Embedder) -> None:
    answer = _answer(seeded_settings, embedder, f"{UNSUPPORTED} {LEADER}")
    assert answer.abstained  # one of the two decided sentences kept: half an answer, under the gate
    assert "closest passage" in answer.answer


def test_a_sentence_dropped_later_never_pulls_a_shown_one_under_the_gate(seeded_settings: Settings,
                                                                         embedder: Embedder) -> None:
    """The gate read the share of the sentences decided so far: the leader sentence was streamed as 1 of 1 kept
    (0.88), then the next was dropped and the shown answer ended at 1 of 2 kept (0.5), under the gate of 0.7 it had
    passed (seeds s111). Now it waits for the sentence after it, and the answer is an abstention from the start."""
    run = _run(seeded_settings, embedder, f"{LEADER} {UNSUPPORTED}")
    shown = list(run.verified())
    answer = run.answer()
    assert answer.abstained and "closest passage" in answer.answer
    assert shown == [answer.answer]  # the leader sentence never appeared


def test_every_shown_answer_is_at_or_above_the_gate(seeded_settings: Settings, embedder: Embedder) -> None:
    """Whatever the mix of kept and dropped sentences, an answer that is not an abstention carries a confidence at or
    above ``RAG_MIN_CONFIDENCE``, and what was streamed is what the answer says."""
    drafts = [LEADER, f"{LEADER} {IRAQI}", f"{UNSUPPORTED} {LEADER}", f"{LEADER} {UNSUPPORTED}",
              f"{LEADER} {IRAQI} {UNSUPPORTED}", f"{LEADER} {UNSUPPORTED} {IRAQI} {LEADER}"]
    outcomes = []
    for draft in drafts:
        run = _run(seeded_settings, embedder, draft)
        shown = list(run.verified())
        answer = run.answer()
        outcomes.append(answer.abstained)
        assert " ".join(shown) == answer.answer, draft
        assert answer.abstained or answer.confidence >= 0.7, (draft, answer.confidence)
    assert outcomes == [False, False, True, True, True, False]  # 3 of 4 kept: sigmoid(1) = 0.73


def test_an_extract_that_replaces_a_pointer_only_draft_passes_the_same_gate(seeded_settings: Settings, embedder: Embedder) -> None:
    """A draft that only points ("[1]") gets the extractive sentence when it passes the checks; it was shown even when
    its confidence was under ``RAG_MIN_CONFIDENCE``."""
    def answer(model: ConfidenceModel):  # type: ignore[no-untyped-def]
        components = Components(seeded_settings.model_copy(update={"judge": False, "min_confidence": 0.7}), embedder=embedder,
                                generators={"llamacpp": FakeGenerator([cite("al-Muhajir", "[{n}]")])})
        components.answerer.confidence_model = model
        return components.answerer.run(QUESTION).answer()

    rescued = answer(SHARE_ONLY)  # the extract is the whole answer: 0.88
    assert not rescued.abstained and rescued.backend == "extractive" and "al-Muhajir" in rescued.answer
    gated = answer(ConfidenceModel(Logistic({}, -2.0), Logistic({}, 0.0)))  # every answer 0.12
    assert gated.abstained and gated.backend != "extractive"


def test_a_gated_abstention_cites_the_passage_its_withheld_answer_stood_on(seeded_settings: Settings,
                                                                           embedder: Embedder) -> None:
    """The closest passage was the one covering most of the question's words: here the question names the article
    (its title words are in every passage of it), so the first passage won, one on the airport bombing, not the
    evidence; in seeds s111 it was a document card. It is now the passage the withheld sentence was verified
    against, quoted at the sentence that supports it."""
    question = "Who has led ISIS-K since 2020, per the article about ISIS-K drawing first blood?"
    run = _run(seeded_settings, embedder, f"{LEADER} {UNSUPPORTED}", question)
    answer = run.answer()
    assert run.prompt is not None
    evidence = [c.n for c in run.prompt.context if "al-Muhajir" in c.passage.text]
    assert answer.abstained and "closest passage" in answer.answer
    assert [c.n for c in answer.citations] == evidence
    assert "al-Muhajir" in answer.citations[0].quote
