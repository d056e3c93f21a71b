"""Admission for answer requests: the run is created (question, index and model checked) before anything is
streamed, then admitted to the generation queue or refused with 429."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from rag.generation.answer import Answer
from rag.generation.followup import Turn
from rag.generation.run import AnswerRun
from rag.retrieval.filters import SearchFilter
from rag.retrieval.query import check_unicode
from rag.settings import LLMBackendName, Prefer, RetrievalMode
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
    where: SearchFilter | None = None  # only passages of the documents this lets through
    collection: str | None = None  # None: the server's configured collection
    prefer: Prefer | None = None  # how to order sources that disagree (None: RAG_PREFER)


def resolve_backend(state: ServiceState, requested: LLMBackendName | None) -> LLMBackendName:
    """The backend to use: the configured one unless the request names another one enabled on this server."""
    if requested is None:
        return state.settings.llm_backend
    enabled = state.components.generators.enabled()
    if requested not in enabled:
        raise ServiceError(400, f"backend {requested!r} is not enabled on this server; use one of: {', '.join(enabled)}",
                           "backend_not_enabled", param="backend")
    return requested


async def start(state: ServiceState, job: AnswerJob, streaming: bool = True) -> tuple[AnswerRun, EventStream[str]]:
    """Fail fast with a proper status (bad question or history, store, empty index, model), then admit or refuse with 429.

    ``streaming=False`` (a route that answers once, through ``finish``): the worker passes on every draft piece, so
    a cancel (the client went away) stops the generation after the current token, not after the whole answer."""
    for i, turn in enumerate(job.history):
        check_unicode(turn.content, f"history turn {i + 1}")
    components = await state.acore(job.collection)
    backend = resolve_backend(state, job.backend)
    if job.where is not None:  # an unknown author, document or key is a 400 now, not an in-band error mid-stream
        await run_in_threadpool(components.retriever.allowed_docs, job.where)
    run = await run_in_threadpool(components.answerer.run, job.question, job.history, backend, job.mode, job.top_k,
                                  job.where, job.prefer)
    try:
        return run, state.queue.submit(lambda: _events(run, draft=job.draft or not streaming))
    except QueueFull as exc:
        state.metrics.rejected.inc()
        raise ServiceError(429, str(exc), "queue_full", type_="rate_limit_error",
                           headers={"Retry-After": str(exc.retry_after)}) from None


async def finish(state: ServiceState, run: AnswerRun, stream: EventStream[str], request: Request | None = None) -> Answer:
    """Wait for an admitted run (started with ``streaming=False``) to end and return its verified answer.

    With ``request``, a client that disconnects cancels the run: the server would otherwise generate the whole
    answer for nobody (uvicorn does not cancel a handler whose client left; only ``receive`` tells)."""
    watcher = asyncio.create_task(_cancel_on_disconnect(request, stream)) if request is not None else None
    try:
        async for _ in stream.events():
            pass
    finally:
        stream.cancel()  # no-op when finished; stops the worker if this request was cancelled
        if watcher is not None and not watcher.done():
            watcher.cancel()
    if watcher is not None and watcher.done() and not watcher.cancelled() and watcher.result():
        raise ClientDisconnect()  # counted as 499 by service.metrics; nobody is there to read an answer
    answer = run.answer()
    state.metrics.observe_answer(answer)
    return answer


async def _cancel_on_disconnect(request: Request, stream: EventStream[str]) -> bool:
    """Wait for the client to leave and cancel ``stream`` (True); the body was read already, so ``receive`` only
    returns when the connection ends or the response is complete."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            if not stream.finished.is_set():
                stream.cancel()
                return True
            return False


def _events(run: AnswerRun, draft: bool) -> Iterator[str]:
    """The run's draft pieces or verified sentences; closing this (the worker does when the request is cancelled)
    closes the run itself, which closes the generator's stream and frees the model at once. Closing only the
    filtered view left the run suspended, holding the model until it was garbage collected."""
    try:
        yield from (iter(run) if draft else run.verified())
    finally:
        run.close()
