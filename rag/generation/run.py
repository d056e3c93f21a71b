"""One question being answered: the object every face consumes (CLI, OpenAI chat, /v1/ask, eval, bench).

In the spirit of llm's ``Response``: iterate it for the draft text as the generator writes it, or call
``answer()`` to run it to the end and get the verified ``Answer``. Either way the same steps run once,
in order: retrieve, build the prompt, generate (falling back to extractive when the generator fails),
verify. ``prompt`` holds the messages the generator was given once the prompt is built.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING

from rag.errors import LLMUnavailable, RagError
from rag.generation.answer import Answer
from rag.generation.backends import GenerationStats, Generator, Prompt
from rag.generation.followup import Turn, standalone_question
from rag.generation.generators import FALLBACK
from rag.retrieval import Passage
from rag.settings import RetrievalMode

if TYPE_CHECKING:
    from rag.generation.answerer import Answerer

log = logging.getLogger(__name__)
_IGNORED_IN_COMPARISON = re.compile(r"[\s.]+")


def comparable(text: str) -> str:
    """Text with whitespace and periods ignored: marker placement alone is not a change."""
    return _IGNORED_IN_COMPARISON.sub("", text)


class AnswerRun:
    """A question on its way to a verified answer. Created by ``Answerer.run`` after the question was checked."""

    def __init__(self, answerer: Answerer, question: str, history: tuple[Turn, ...], generator: Generator,
                 mode: RetrievalMode | None, top_k: int | None) -> None:
        self.question = question
        self.history = history
        self.mode = mode
        self.top_k = top_k
        self.backend = generator.name
        self.standalone = question
        self.passages: list[Passage] = []
        self.prompt: Prompt | None = None
        self.draft = ""  # the text being verified: the generator's output (or the fallback's)
        self.streamed = ""  # everything yielded so far
        self.fallback_reason: str | None = None
        self.stats = GenerationStats()
        self.timings: dict[str, float] = {}
        self._answerer = answerer
        self._generator = generator
        self._answer: Answer | None = None
        self._steps = self._run()

    # -- consuming --------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        """Draft text pieces as they are generated (unverified). Closing the iterator stops generation."""
        return self._steps

    def answer(self) -> Answer:
        """Run to the end (if not yet done) and return the verified answer."""
        for _ in self._steps:
            pass
        if self._answer is None:
            raise RagError("the answer run was stopped before it finished")
        return self._answer

    @property
    def done(self) -> bool:
        return self._answer is not None

    @property
    def changed_by_verification(self) -> bool:
        """True when the verified answer differs from the draft that was streamed (re-cited, dropped, abstained)."""
        return comparable(self.answer().answer) != comparable(self.streamed)

    @property
    def messages(self) -> list[dict[str, str]]:
        """The chat messages the generator was given (empty before the prompt is built)."""
        return self.prompt.messages if self.prompt else []

    def close(self) -> None:
        """Stop the run where it is (releases the model after the current token)."""
        self._steps.close()

    # -- the steps --------------------------------------------------------------------------------
    def _run(self) -> Iterator[str]:
        a = self._answerer
        started = time.perf_counter()
        self.standalone = standalone_question(self.question, list(self.history))
        self.passages = a.retrieve(self.standalone, self.mode, self.top_k)
        self.timings["retrieve_ms"] = _ms(started)

        mark = time.perf_counter()
        self.prompt = a.build_prompt(self.standalone, self.passages)
        self.timings["context_ms"] = _ms(mark)

        mark = time.perf_counter()
        yield from self._generate(self.prompt)
        self.timings["generate_ms"] = _ms(mark)
        self.timings["first_token_ms"] = self.stats.first_token_ms

        mark = time.perf_counter()
        checked, backend, rescued_because = a.verify(self.question, self.standalone, self.prompt, self.draft, self.backend)
        self.backend = backend
        self.fallback_reason = self.fallback_reason or rescued_because
        self.timings["verify_ms"] = _ms(mark)
        self.timings["total_ms"] = _ms(started)

        self._answer = Answer(
            question=self.question, answer=checked.answer, citations=checked.citations, abstained=checked.abstained,
            backend=self.backend, standalone_question=self.standalone, raw_answer=self.draft,
            fallback_reason=self.fallback_reason, timings=self.timings, passages=self.passages,
            prompt_tokens=self.stats.prompt_tokens, completion_tokens=self.stats.completion_tokens,
        )
        log.info("answered", extra={"backend": self.backend, "abstained": checked.abstained, "notes": "; ".join(checked.notes),
                                    **{k: round(v, 1) for k, v in self.timings.items()}})

    def _generate(self, prompt: Prompt) -> Iterator[str]:
        """The generator's pieces; when it fails, the extractive backend's answer instead (the reason is kept)."""
        s = self._answerer.settings
        try:
            with closing(self._generator.stream(prompt, s.llm_max_tokens, s.llm_temperature, self.stats)) as pieces:
                for piece in pieces:
                    self.draft += piece
                    self.streamed += piece
                    yield piece
        except LLMUnavailable as exc:
            self.fallback_reason = str(exc)
            log.warning("generator failed, falling back to extractive", extra={"backend": self.backend, "error": str(exc)})
            fallback = self._answerer.generators.get(FALLBACK)
            text = "".join(fallback.stream(prompt, s.llm_max_tokens, s.llm_temperature, self.stats))
            piece = ("\n" if self.streamed else "") + text
            self.backend, self.draft = fallback.name, text
            self.streamed += piece
            yield piece


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
