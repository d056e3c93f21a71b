"""OpenAI-compatible routes: ``POST /v1/chat/completions`` (plain and streaming) and ``GET /v1/models``.
The wire format and its converters are in ``service.openai_schema``."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag.index.collections import MODEL_PREFIX
from rag.retrieval.filters import SearchFilter

from service.answering import finish, start
from service.errors import ServiceError
from service.openai_schema import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList, completion, sse_events, to_job
from service.routes import get_state
from service.state import ServiceState

router = APIRouter(tags=["OpenAI-compatible"])
State = Annotated[ServiceState, Depends(get_state)]


def _model_card(state: ServiceState, model_id: str) -> ModelCard:
    return ModelCard(id=model_id, created=int(state.started_at))


def collection_of_model(state: ServiceState, model: str | None) -> str | None:
    """The collection a model id names: ``rag:<name>`` names one; any other id (``rag``, the LLM's name, or whatever
    a client sends by default) means the server's configured collection (None)."""
    if model and model.startswith(MODEL_PREFIX):
        return model[len(MODEL_PREFIX):] or None
    return None


@router.get("/v1/models", response_model=ModelList)
async def list_models(state: State) -> ModelList:
    """One model per collection, ``rag:<name>`` (the server's configured collection first): the ``model`` of a chat
    request chooses the collection it answers from. Any other model name answers from the configured collection."""
    names = await run_in_threadpool(state.collection_names)
    return ModelList(data=[_model_card(state, MODEL_PREFIX + name) for name in names])


@router.get("/v1/models/{model_id:path}", response_model=ModelCard)
async def retrieve_model(model_id: str, state: State) -> ModelCard:
    names = await run_in_threadpool(state.collection_names)
    known = [state.settings.llm_model, *(MODEL_PREFIX + n for n in names)]
    if model_id not in known:
        raise ServiceError(404, f"the model {model_id!r} does not exist; this server's models: {', '.join(known)}",
                           "model_not_found", param="model")
    return _model_card(state, model_id)


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {"description": "chat.completion.chunk events when stream is true"}}}},
)
async def chat_completions(req: ChatCompletionRequest, state: State, request: Request) -> Any:
    """Answer the last user message from the documents, with verified [n] citations (``sources``)."""
    job, notes = to_job(req)
    by_model = collection_of_model(state, req.model)
    if by_model and req.collection and by_model != req.collection:
        raise ServiceError(400, f"the model {req.model!r} names the collection {by_model!r} but 'collection' is "
                           f"{req.collection!r}: give one", "conflicting_collection", param="collection")
    job.collection = by_model or req.collection
    job.where = SearchFilter.parse(req.filter)
    run, stream = await start(state, job, streaming=bool(req.stream))
    model = req.model if by_model else state.settings.llm_model
    ids = {"completion_id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": model}
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        body = sse_events(run, stream, include_usage=include_usage, draft=job.draft, notes=notes,
                          on_answer=state.metrics.observe_answer, **ids)
        return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    answer = await finish(state, run, stream, request)
    return JSONResponse(completion(answer, ids["completion_id"], ids["created"], ids["model"], notes))
