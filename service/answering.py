"""Admission for answer requests: the run is created (question, index and model checked) before anything is
streamed, then admitted to the generation queue or refused with 429."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from rag.generation.answer import Answer
from rag.generation.followup import Turn
from rag.generation.run import AnswerRun
from rag.retrieval.query import check_unicode
from rag.settings import LLMBackendName, RetrievalMode
from service.errors import ServiceError
from service.queue import EventStream, QueueFull
from service.state import ServiceState


@dataclass
class AnswerJob:
    """What an answer route asks for, in the library's terms."""

    question: str
    history: Sequence[Turn]
    backend: LLMBackendName | None = None
    mode: RetrievalMode | None = None
    top_k: int | None = None
    draft: bool = False  # stream the unverified draft as generated (else: verified sentences only)


def resolve_backend(state: ServiceState, requested: LLMBackendName | None) -> LLMBackendName:
    """The backend to use: the configured one unless the request names another one enabled on this server."""
    if requested is None:
        return state.settings.llm_backend
    enabled = state.components.generators.enabled()
    if requested not in enabled:
        raise ServiceError(400, f"backend {requested!r} is not enabled on this server; use one of: {', '.join(enabled)}",
                           "backend_not_enabled", param="backend")
    return requested


async def start(state: ServiceState, job: AnswerJob) -> tuple[AnswerRun, EventStream[str]]:
    """Fail fast with a proper status (bad question or history, store, empty index, model), then admit or refuse with 429."""
    for i, turn in enumerate(job.history):
        check_unicode(turn.content, f"history turn {i + 1}")
    components = await state.acore()
    backend = resolve_backend(state, job.backend)
    run = await run_in_threadpool(components.answerer.run, job.question, job.history, backend, job.mode, job.top_k)
    try:
        return run, state.queue.submit(lambda: iter(run) if job.draft else run.verified())
    except QueueFull as exc:
        state.metrics.rejected.inc()
        raise ServiceError(429, str(exc), "queue_full", type_="rate_limit_error",
                           headers={"Retry-After": str(exc.retry_after)}) from None


async def finish(state: ServiceState, run: AnswerRun, stream: EventStream[str]) -> Answer:
    """Wait for an admitted run to end (non-streaming routes) and return its verified answer."""
    try:
        async for _ in stream.events():
            pass
    finally:
        stream.cancel()  # no-op when finished; stops the worker if this request was cancelled
    answer = run.answer()
    state.metrics.observe_answer(answer)
    return answer
