"""One question being answered: the object every face consumes (CLI, OpenAI chat, /v1/ask, eval, bench).

In the spirit of llm's ``Response``: iterate it for the draft text as the generator writes it (unverified),
iterate ``verified()`` for the answer's sentences as each passes its check, or call ``answer()`` to run it to
the end and get the verified ``Answer``. Whichever way, the same steps run once, in order: retrieve, build
the prompt, generate (falling back to extractive when the generator fails), check claim by claim.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Literal

from rag.errors import LLMUnavailable, RagError
from rag.generation.answer import Answer
from rag.generation.backends import GenerationStats, Generator, Prompt
from rag.generation.followup import Turn, standalone_question
from rag.generation.generators import FALLBACK
from rag.retrieval import Passage
from rag.retrieval.filters import SearchFilter
from rag.settings import Prefer, RetrievalMode

if TYPE_CHECKING:
    from rag.generation.answerer import Answerer
    from rag.generation.conflicts import Side
    from rag.verification.claims import Claim

log = logging.getLogger(__name__)
_IGNORED_IN_COMPARISON = re.compile(r"[\s.]+")
Event = tuple[Literal["draft", "sentence"], str]


def comparable(text: str) -> str:
    """Text with whitespace and periods ignored: marker placement alone is not a change."""
    return _IGNORED_IN_COMPARISON.sub("", text)


class AnswerRun:
    """A question on its way to a verified answer. Created by ``Answerer.run`` after the question was checked."""

    def __init__(self, answerer: Answerer, question: str, history: tuple[Turn, ...], generator: Generator,
                 mode: RetrievalMode | None, top_k: int | None, where: SearchFilter | None = None,
                 prefer: Prefer = "newest") -> None:
        self.question = question
        self.history = history
        self.mode = mode
        self.top_k = top_k
        self.where = where
        self.prefer = prefer
        self.conflicts: list[tuple[Side, Claim]] = []  # sides of a disagreement among the passages, each checked
        self.backend = generator.name
        self.standalone = question
        self.passages: list[Passage] = []
        self.prompt: Prompt | None = None
        self.draft = ""  # the text being verified: the generator's output (or the fallback's)
        self.streamed = ""  # every draft piece yielded so far
        self.fallback_reason: str | None = None
        self.stats = GenerationStats()
        self.timings: dict[str, float] = {}
        self._answerer = answerer
        self._generator = generator
        self._answer: Answer | None = None
        self._events = self._run()

    # -- consuming --------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        """Draft text pieces as they are generated (unverified). Closing the iterator stops generation."""
        return (text for kind, text in self._events if kind == "draft")

    def verified(self) -> Iterator[str]:
        """The answer's sentences, each once it passed its check, with its final citation; nothing unverified.
        An abstention comes as one sentence."""
        return (text for kind, text in self._events if kind == "sentence")

    def answer(self) -> Answer:
        """Run to the end (if not yet done) and return the verified answer."""
        for _ in self._events:
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
        self._events.close()

    # -- the steps --------------------------------------------------------------------------------
    def _run(self) -> Iterator[Event]:
        a = self._answerer
        started = time.perf_counter()
        self.standalone = standalone_question(self.question, list(self.history))
        self.passages = a.retrieve(self.standalone, self.mode, self.top_k, self.where)
        self.timings["retrieve_ms"] = _ms(started)

        mark = time.perf_counter()
        self.prompt = a.build_prompt(self.standalone, self.passages)
        self.conflicts = a.disagreement(self, self.standalone, self.prompt.context)
        if self.conflicts:
            self.prompt = a.ask_for_every_side(self.prompt, [side for side, _ in self.conflicts], self.prefer)
        self.timings["context_ms"] = _ms(mark)

        mark = time.perf_counter()
        for piece in self._generate(self.prompt):
            yield "draft", piece
        self.timings["generate_ms"] = _ms(mark)
        self.timings["first_token_ms"] = self.stats.first_token_ms

        mark = time.perf_counter()
        check = a.check(self)
        for text in check.sentences():
            if "first_sentence_ms" not in self.timings:
                self.timings["first_sentence_ms"] = _ms(started)
            yield "sentence", text
        outcome = check.outcome
        assert outcome is not None
        v = outcome.verification
        if outcome.rescued:
            self.backend, self.fallback_reason = FALLBACK, self.fallback_reason or a.CITED_WITHOUT_ANSWER
        if v.abstained and "first_sentence_ms" not in self.timings:
            self.timings["first_sentence_ms"] = _ms(started)
            yield "sentence", v.answer
        self.timings["verify_ms"] = _ms(mark)
        self.timings["total_ms"] = _ms(started)

        self._answer = Answer(
            question=self.question, answer=v.answer, citations=v.citations, abstained=v.abstained,
            confidence=outcome.confidence, backend=self.backend, standalone_question=self.standalone, raw_answer=self.draft,
            fallback_reason=self.fallback_reason, timings=self.timings, passages=self.passages,
            prompt_tokens=self.stats.prompt_tokens, completion_tokens=self.stats.completion_tokens,
            signals=outcome.signals, notes=v.notes, conflicts=[side.to_dict() for side in outcome.conflicts],
        )
        log.info("answered", extra={"backend": self.backend, "abstained": v.abstained, "confidence": outcome.confidence,
                                    "notes": "; ".join(v.notes), **{k: round(t, 1) for k, t in self.timings.items()}})

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
