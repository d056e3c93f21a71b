"""OpenAI-compatible routes: ``POST /v1/chat/completions`` (plain and streaming) and ``GET /v1/models``.

Responses follow OpenAI's schema, so the official ``openai`` client works, plus a few extra fields:
``sources`` (the verified citations), ``abstained``, ``backend`` and ``fallback_reason`` (and ``answer`` on the last
stream chunk). ``fallback_reason`` is null unless the answer came from the extractive fallback instead of the
configured generator (e.g. the LLM server was down or timed out); then ``backend`` is ``"extractive"``.

Streaming and verification: tokens are streamed as the model writes them, but the answer is only
verified afterwards. When the verified text differs from what was streamed (ignoring whitespace and
periods), one more content delta ``"\\n\\nVerified answer: <text>"`` is sent before the final chunk, so
a plain OpenAI client that only concatenates deltas still ends with the verified answer; the final
chunk carries ``answer`` (verified text), ``abstained`` and ``sources``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from enum import Enum
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.errors import RagError
from rag.generation.answer import Answer
from rag.generation.followup import Turn
from rag.settings import LLMBackendName, RetrievalMode
from service.answering import VERIFIED_PREFIX, AnswerJob, check_question, collect, comparable, history_content, start
from service.errors import ServiceError, classify_rag_error, error_body
from service.state import ServiceState

log = logging.getLogger(__name__)


# -- request schema -------------------------------------------------------------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(description="Only 'text' parts are supported.")
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request. Sampling parameters are accepted and ignored (answers are deterministic and verified).

    Extensions: ``backend``, ``mode`` and ``top_k`` choose the generator, retrieval mode and passages per request.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "rag", "messages": [{"role": "user", "content": "Who has led ISIS-K since 2020?"}]},
        {"model": "rag", "stream": True, "stream_options": {"include_usage": True}, "messages": [
            {"role": "user", "content": "Who has led ISIS-K since 2020?"},
            {"role": "assistant", "content": "Shahab al-Muhajir has led ISIS-K since 2020 [1]."},
            {"role": "user", "content": "Which country is he from?"}]},
    ]})
    model: str | None = Field(None, description="Any string; the service answers with its configured model.")
    messages: list[ChatMessage] = Field(min_length=1, description="Earlier messages are history; the last must be from the user.")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is produced.")
    backend: LLMBackendName | None = Field(None, description="Extension: generator backend for this request.")
    mode: RetrievalMode | None = Field(None, description="Extension: retrieval mode (dense, bm25, hybrid).")
    top_k: int | None = Field(None, ge=1, le=20, description="Extension: passages given to the generator.")


# -- response schema (documentation; responses are built as dicts) --------------------------------
class Source(BaseModel):
    n: int
    doc_id: str
    title: str
    source: str
    quote: str
    start: int
    end: int
    score: float


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None
    sources: list[Source] = Field(description="Extension: the passages the answer's [n] markers point at.")
    abstained: bool = Field(description="Extension: true when the documents do not contain the answer.")
    backend: str = Field(description="Extension: the backend that produced the answer (extractive after a fallback).")
    fallback_reason: str | None = Field(None, description="Extension: why the requested backend was not used (null unless it fell back).")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- helpers --------------------------------------------------------------------------------------
def message_text(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if part.type != "text":
            raise ServiceError(400, f"messages[{index}].content[{j}]: only text content parts are supported, not {part.type!r}",
                               "unsupported_content", param=f"messages[{index}].content")
        texts.append(part.text or "")
    return "\n".join(texts)


def to_job(state: ServiceState, req: ChatCompletionRequest) -> AnswerJob:
    """Messages -> question + history. System messages are ignored: the service's grounding prompt is fixed."""
    conversation = [(i, m) for i, m in enumerate(req.messages) if m.role != "system"]
    if not conversation or conversation[-1][1].role != "user":
        raise ServiceError(400, "the last message must have role 'user' (earlier messages are the conversation history)",
                           "last_message_not_user", param="messages")
    last_index, last = conversation[-1]
    question = check_question(state, message_text(last, last_index), f"messages[{last_index}].content")
    history = [Turn(m.role, history_content(m.role, message_text(m, i))) for i, m in conversation[:-1]]
    return AnswerJob(question, history, state.resolve_backend(req.backend), req.mode, req.top_k)


def sources(answer: Answer) -> list[dict[str, Any]]:
    return [{"n": c.n, "doc_id": c.doc_id, "title": c.title, "source": c.source, "quote": c.quote,
             "start": c.start, "end": c.end, "score": c.score} for c in answer.citations]


def usage(answer: Answer) -> dict[str, int]:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens}


def _sse(data: dict[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n"


# -- routes ---------------------------------------------------------------------------------------
def register(app: FastAPI, state: ServiceState) -> None:
    """Add the routes to ``app`` directly (so ``app.routes`` lists every one of them)."""
    settings = state.settings
    tags: list[str | Enum] = ["OpenAI-compatible"]

    def model_card() -> dict[str, Any]:
        return {"id": settings.llm_model, "object": "model", "created": int(state.started_at), "owned_by": "rag"}

    @app.get("/v1/models", tags=tags, response_model=ModelList)
    async def list_models() -> dict[str, Any]:
        """The one model this service answers with (requests may name any model)."""
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}", tags=tags, response_model=ModelCard)
    async def retrieve_model(model_id: str) -> dict[str, Any]:
        if model_id != settings.llm_model:
            raise ServiceError(404, f"the model {model_id!r} does not exist; this server answers with {settings.llm_model!r}",
                               "model_not_found", param="model")
        return model_card()

    @app.post(
        "/v1/chat/completions",
        tags=tags,
        response_model=ChatCompletion,
        responses={200: {"content": {"text/event-stream": {"description": "chat.completion.chunk events when stream is true"}}}},
    )
    async def chat_completions(req: ChatCompletionRequest) -> Any:
        """Answer the last user message from the documents, with verified [n] citations (``sources``)."""
        job = to_job(state, req)
        stream = await start(state, job)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            body = _stream(state, stream, completion_id, created, include_usage)
            return StreamingResponse(body, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        answer = await collect(state, stream)
        return JSONResponse({
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": settings.llm_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.answer, "refusal": None},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage(answer),
            "system_fingerprint": None,
            "sources": sources(answer),
            "abstained": answer.abstained,
            "backend": answer.backend,
            "fallback_reason": answer.fallback_reason,
        })

    async def _stream(state: ServiceState, stream: Any, completion_id: str, created: int, include_usage: bool) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": settings.llm_model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
            if include_usage:
                data["usage"] = None
            data.update(extra)
            return data

        streamed = ""
        answer: Answer | None = None
        done = False
        try:
            yield _sse(chunk({"role": "assistant", "content": ""}))
            async for event in stream.events():
                if event.kind == "token" and event.text:
                    streamed += event.text
                    yield _sse(chunk({"content": event.text}))
                elif event.answer is not None:
                    answer = event.answer
            if answer is None:  # pragma: no cover - Answerer.stream always ends with an answer
                raise RagError("no answer was produced")
            state.metrics.observe_answer(answer)
            if comparable(answer.answer) != comparable(streamed):
                yield _sse(chunk({"content": VERIFIED_PREFIX + answer.answer}))
            yield _sse(chunk({}, "stop", sources=sources(answer), answer=answer.answer, abstained=answer.abstained,
                             backend=answer.backend, fallback_reason=answer.fallback_reason))
            if include_usage:
                yield _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": settings.llm_model,
                            "system_fingerprint": None, "choices": [], "usage": usage(answer)})
            yield _sse("[DONE]")
            done = True
        except RagError as exc:  # headers are sent: report in-band, as OpenAI does
            _, type_, code = classify_rag_error(exc)
            yield _sse(error_body(str(exc), type_, code))
            yield _sse("[DONE]")
        except Exception:
            log.exception("streaming failed")
            yield _sse(error_body("internal server error while streaming (details are in the server log)", "server_error", "internal_error"))
            yield _sse("[DONE]")
        finally:
            if not done and not stream.finished.is_set():
                log.info("stream stopped before the end (client disconnected?)", extra={"id": completion_id, "streamed_chars": len(streamed)})
            stream.cancel()  # a client that went away (CancelledError here) frees the model after the current token

