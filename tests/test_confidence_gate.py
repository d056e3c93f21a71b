"""The confidence gate (``RAG_MIN_CONFIDENCE``) sentence by sentence: what share of the answer it reads.

Real Chroma and the real embedding model over the seeds; a scripted generator, judge off (the rules check each
sentence), and a confidence model that reads only the share of the draft kept, so the gate's arithmetic is visible.
"""

from __future__ import annotations

from rag.components import Components
from rag.embedding import Embedder
from rag.generation.backends.fake import FakeGenerator
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


def _answer(settings: Settings, embedder: Embedder, draft: str):  # type: ignore[no-untyped-def]
    components = Components(settings.model_copy(update={"judge": False, "min_confidence": 0.7}), embedder=embedder,
                            generators={"llamacpp": FakeGenerator([cite("al-Muhajir", draft)])})
    components.answerer.confidence_model = SHARE_ONLY
    return components.answerer.run(QUESTION).answer()


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
