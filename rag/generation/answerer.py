"""Question in, verified answer out. ``Answerer.run`` checks the question and returns an ``AnswerRun``; the
steps it runs (retrieve, build prompt, generate, verify) are the named methods below."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rag.generation.answer import ABSTENTION, Answer
from rag.generation.backends import Prompt
from rag.generation.backends.extractive import extractive_answer
from rag.generation.followup import Turn
from rag.generation.generators import FALLBACK, Generators
from rag.generation.prompt import build_messages, compress
from rag.generation.run import AnswerRun
from rag.generation.verify import Verification, verify
from rag.retrieval import Passage, Retriever
from rag.retrieval.query import checked_question
from rag.settings import RetrievalMode, Settings
from rag.text import content_terms, strip_citations

log = logging.getLogger(__name__)
CITED_WITHOUT_ANSWER = "the model cited passages without writing an answer"


class Answerer:
    """Grounded question answering over one collection."""

    def __init__(self, settings: Settings, retriever: Retriever, generators: Generators) -> None:
        self.settings = settings
        self.retriever = retriever
        self.generators = generators

    def run(self, question: str, history: Sequence[Turn] = (), backend: str | None = None,
            mode: RetrievalMode | None = None, top_k: int | None = None) -> AnswerRun:
        """Check the question and the index, load the generator, and return the run (nothing is generated yet).

        Raises ``EmptyQuestion``, ``QuestionTooLong``, ``EmptyIndex`` or ``ModelError`` before anything streams.
        """
        question = checked_question(question, self.settings.max_question_chars)
        self.retriever.index.require_content()
        generator = self.generators.get(backend)
        return AnswerRun(self, question, tuple(history), generator, mode, top_k)

    def ask(self, question: str, history: Sequence[Turn] = (), backend: str | None = None,
            mode: RetrievalMode | None = None, top_k: int | None = None) -> Answer:
        """The verified answer (no streaming)."""
        return self.run(question, history, backend, mode, top_k).answer()

    # -- the steps, in the order a run takes them -------------------------------------------------
    def retrieve(self, question: str, mode: RetrievalMode | None, top_k: int | None) -> list[Passage]:
        return self.retriever.search(question, k=top_k or self.settings.answer_top_k, mode=mode)

    def build_prompt(self, question: str, passages: list[Passage]) -> Prompt:
        """Passages compressed to the sentences closest to the question, numbered, under the fixed system prompt."""
        context = compress(question, passages, self.settings.context_sentences, self.retriever.embedder)
        return Prompt(build_messages(question, context), question, context)

    def verify(self, question: str, standalone: str, prompt: Prompt, draft: str, backend: str) -> tuple[Verification, str, str | None]:
        """(verification, backend that answered, why the answer was rescued or None).

        Novelty is judged against what the user asked now, not the context a follow-up borrowed. A model that
        only pointed at passages ("[2]") without writing an answer is rescued by an extract, when a good one exists.
        """
        s, embedder = self.settings, self.retriever.embedder
        checked = verify(draft, question, prompt.context, s.support_threshold, embedder)
        if checked.abstained and backend != FALLBACK and not content_terms(strip_citations(draft)):
            text, _ = extractive_answer(standalone, prompt.context, embedder, s.extractive_rescue_score)
            if text != ABSTENTION:
                rescued = verify(text, question, prompt.context, s.support_threshold, embedder)
                if not rescued.abstained:
                    return rescued, FALLBACK, CITED_WITHOUT_ANSWER
        return checked, backend, None
