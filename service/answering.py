"""The one path from an HTTP answer request to ``Answerer.stream``: checks first, then admission, then the worker."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from rag.errors import EmptyIndex, RagError
from rag.generation.answer import Answer
from rag.generation.answerer import StreamEvent
from rag.generation.followup import Turn
from rag.settings import LLMBackendName, RetrievalMode
from service.errors import ServiceError
from service.queue import EventStream, QueueFull
from service.state import ServiceState

VERIFIED_PREFIX = "\n\nVerified answer: "
_COMPARABLE = re.compile(r"[\s.]+")


def comparable(text: str) -> str:
    """Text with whitespace and periods ignored, to tell whether verification changed a streamed answer."""
    return _COMPARABLE.sub("", text)


def history_content(role: str, text: str) -> str:
    """An assistant turn echoed back by a client that kept our streamed text: keep only the verified answer."""
    if role == "assistant" and VERIFIED_PREFIX.strip() in text:
        return text.rsplit(VERIFIED_PREFIX.strip(), 1)[1].strip()
    return text


def check_question(state: ServiceState, question: str, param: str) -> str:
    question = question.strip()
    if not question:
        raise ServiceError(400, "the question is empty", "empty_question", param=param)
    limit = state.settings.max_question_chars
    if len(question) > limit:
        raise ServiceError(400, f"the question has {len(question)} characters; the limit is {limit}", "question_too_long", param=param)
    return question


@dataclass
class AnswerJob:
    question: str
    history: Sequence[Turn]
    backend: LLMBackendName
    mode: RetrievalMode | None = None
    top_k: int | None = None


async def start(state: ServiceState, job: AnswerJob) -> EventStream[StreamEvent]:
    """Fail fast with a proper status (store, empty index, model), then admit or refuse with 429."""
    core = await state.acore()
    if await run_in_threadpool(core.store.count) == 0:
        raise EmptyIndex(f"the collection {state.settings.collection!r} is empty: upload documents (POST /v1/documents) or run `rag ingest`")
    await state.agenerator(job.backend)  # loads once; ModelError -> 503 before anything is streamed
    try:
        return state.queue.submit(lambda: core.answerer.stream(job.question, job.history, job.backend, job.mode, job.top_k))
    except QueueFull as exc:
        state.metrics.rejected.inc()
        raise ServiceError(429, str(exc), "queue_full", type_="rate_limit_error",
                           headers={"Retry-After": str(exc.retry_after)}) from None


async def collect(state: ServiceState, stream: EventStream[StreamEvent]) -> Answer:
    """Run a request to its verified answer (non-streaming routes)."""
    answer: Answer | None = None
    try:
        async for event in stream.events():
            if event.answer is not None:
                answer = event.answer
    finally:
        stream.cancel()  # no-op when finished; stops the worker if this request was cancelled
    if answer is None:  # pragma: no cover - Answerer.stream always ends with an answer
        raise RagError("no answer was produced")
    state.metrics.observe_answer(answer)
    return answer
