"""OpenAI-compatible routes: ``POST /v1/chat/completions`` (plain and streaming) and ``GET /v1/models``.
The wire format and its converters are in ``service.openai_schema``."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from service.answering import finish, start
from service.errors import ServiceError
from service.openai_schema import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList, completion, sse_events, to_job
from service.routes import get_state
from service.state import ServiceState

router = APIRouter(tags=["OpenAI-compatible"])
State = Annotated[ServiceState, Depends(get_state)]


def _model_card(state: ServiceState) -> ModelCard:
    return ModelCard(id=state.settings.llm_model, created=int(state.started_at))


@router.get("/v1/models", response_model=ModelList)
async def list_models(state: State) -> ModelList:
    """The one model this service answers with (requests may name any model)."""
    return ModelList(data=[_model_card(state)])


@router.get("/v1/models/{model_id:path}", response_model=ModelCard)
async def retrieve_model(model_id: str, state: State) -> ModelCard:
    if model_id != state.settings.llm_model:
        raise ServiceError(404, f"the model {model_id!r} does not exist; this server answers with {state.settings.llm_model!r}",
                           "model_not_found", param="model")
    return _model_card(state)


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {"description": "chat.completion.chunk events when stream is true"}}}},
)
async def chat_completions(req: ChatCompletionRequest, state: State, request: Request) -> Any:
    """Answer the last user message from the documents, with verified [n] citations (``sources``)."""
    job, notes = to_job(req)
    run, stream = await start(state, job, streaming=bool(req.stream))
    ids = {"completion_id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()), "model": state.settings.llm_model}
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        body = sse_events(run, stream, include_usage=include_usage, draft=job.draft, notes=notes,
                          on_answer=state.metrics.observe_answer, **ids)
        return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    answer = await finish(state, run, stream, request)
    return JSONResponse(completion(answer, ids["completion_id"], ids["created"], ids["model"], notes))
