"""Question in, verified answer out: retrieve, compress, generate (streaming), verify."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rag.errors import LLMUnavailable, RagError
from rag.generation.answer import ABSTENTION, Answer
from rag.generation.backends import GenerationStats, get_generator
from rag.generation.extractive import extractive_answer
from rag.generation.followup import Turn, standalone_question
from rag.generation.prompt import build_messages, compress
from rag.generation.verify import verify
from rag.text import content_terms, strip_citations
from rag.retrieval import Retriever
from rag.settings import LLMBackendName, RetrievalMode, Settings

log = logging.getLogger(__name__)


@dataclass
class StreamEvent:
    """``token`` events carry generated text as it comes; the last event is ``answer``."""

    kind: str
    text: str = ""
    answer: Answer | None = None


class Answerer:
    """Grounded question answering over one collection."""

    def __init__(self, settings: Settings, retriever: Retriever | None = None) -> None:
        self.settings = settings
        self.retriever = retriever or Retriever(settings)

    def ask(self, question: str, history: Sequence[Turn] = (), backend: LLMBackendName | None = None,
            mode: RetrievalMode | None = None, top_k: int | None = None) -> Answer:
        """The verified answer (no streaming)."""
        for event in self.stream(question, history, backend, mode, top_k):
            if event.answer is not None:
                return event.answer
        raise RagError("no answer produced")  # unreachable: stream always ends with an answer

    def stream(self, question: str, history: Sequence[Turn] = (), backend: LLMBackendName | None = None,
               mode: RetrievalMode | None = None, top_k: int | None = None) -> Iterator[StreamEvent]:
        """Token events while generating, then the verified answer."""
        question = question.strip()
        if not question:
            raise RagError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise RagError(f"the question has {len(question)} characters; the limit is {self.settings.max_question_chars}")
        s = self.settings
        backend_name: LLMBackendName = backend or s.llm_backend
        timings: dict[str, float] = {}
        started = time.perf_counter()

        standalone = standalone_question(question, list(history))
        passages = self.retriever.search(standalone, k=top_k or s.answer_top_k, mode=mode)
        timings["retrieve_ms"] = _ms(started)

        mark = time.perf_counter()
        context = compress(standalone, passages, s.context_sentences, self.retriever.embedder)
        timings["context_ms"] = _ms(mark)

        generator = get_generator(backend_name, s)  # ModelError propagates: a config problem, not a fallback case
        stats = GenerationStats()
        fallback_reason: str | None = None
        raw = ""
        used = backend_name
        mark = time.perf_counter()
        if generator is not None:
            try:
                for piece in generator.stream(build_messages(standalone, context), s.llm_max_tokens, s.llm_temperature, stats):
                    raw += piece
                    yield StreamEvent("token", piece)
            except LLMUnavailable as exc:
                fallback_reason = str(exc)
                log.warning("generator failed, falling back to extractive", extra={"backend": backend_name, "error": str(exc)})
                raw = ""
        if generator is None or fallback_reason:
            used = "extractive"
            raw, _ = extractive_answer(standalone, context, self.retriever.embedder, s.extractive_min_score)
            if fallback_reason:
                yield StreamEvent("token", ("\n" if stats.completion_tokens else "") + raw)
            else:
                yield StreamEvent("token", raw)
        timings["generate_ms"] = _ms(mark)
        timings["first_token_ms"] = stats.first_token_ms

        mark = time.perf_counter()
        # Novelty is judged against what the user asked now, not the context a follow-up borrowed.
        checked = verify(raw, question, context, s.support_threshold, self.retriever.embedder)
        if checked.abstained and used != "extractive" and not content_terms(strip_citations(raw)):
            # The model only pointed at passages ("[2]") without writing an answer: extract from them.
            text, score = extractive_answer(standalone, context, self.retriever.embedder, s.extractive_rescue_score)
            if text != ABSTENTION:
                rescued = verify(text, question, context, s.support_threshold, self.retriever.embedder)
                if not rescued.abstained:
                    checked, used = rescued, "extractive"
                    fallback_reason = "the model cited passages without writing an answer"
        timings["verify_ms"] = _ms(mark)
        timings["total_ms"] = _ms(started)

        answer = Answer(
            question=question, answer=checked.answer, citations=checked.citations, abstained=checked.abstained,
            backend=used, standalone_question=standalone, raw_answer=raw, fallback_reason=fallback_reason,
            timings=timings, passages=passages, prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens,
        )
        log.info("answered", extra={"backend": used, "abstained": answer.abstained, "notes": "; ".join(checked.notes),
                                    **{k: round(v, 1) for k, v in timings.items()}})
        yield StreamEvent("answer", answer=answer)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
