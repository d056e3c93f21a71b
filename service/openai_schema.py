"""OpenAI's chat wire format, in one module: request and response models and the converters
``request -> AnswerJob``, ``answer -> ChatCompletion`` and ``run -> SSE chunks``.

Responses follow OpenAI's schema, so the official ``openai`` client works, plus a few extension fields:
``sources`` (the verified citations), ``abstained``, ``backend``, ``fallback_reason`` (and ``answer`` on the last
stream chunk). ``fallback_reason`` is null unless the extractive backend answered because the configured
generator failed; then ``backend`` is ``"extractive"``. ``notes`` lists request parts that were ignored.

Requests accept what current clients send: ``developer`` messages (treated like ``system``: the service's
grounding prompt is fixed), ``tool``/``function`` messages and ``tools``/``functions`` fields (ignored, with a
note), content as a string or a list of text parts, and any unknown extra field (ignored).

Streaming and verification: by default a stream carries only verified sentences. The answer is generated, then
each sentence is checked against its passage and sent, with its final citation, as soon as it passes; a sentence
that fails is never shown (an answer with none left streams the abstention). The final chunk carries ``answer``,
``abstained``, ``confidence`` and ``sources``. ``"stream_draft": true`` streams the unverified draft token by token
instead; then, when the verified text differs from the draft (ignoring whitespace and periods), one more content
delta ``"\\n\\nVerified answer: <text>"`` comes before the final chunk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.errors import RagError
from rag.generation.answer import Answer
from rag.generation.followup import Turn
from rag.generation.run import AnswerRun
from rag.settings import LLMBackendName, Prefer, RetrievalMode
from service.answering import AnswerJob
from service.errors import ServiceError, classify_rag_error, error_body
from service.queue import EventStream

log = logging.getLogger(__name__)
VERIFIED_PREFIX = "\n\nVerified answer: "
IGNORED_ROLES = ("tool", "function")
INSTRUCTION_ROLES = ("system", "developer")
IGNORED_FIELDS = ("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls", "response_format")


# -- request --------------------------------------------------------------------------------------
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(description="Only 'text' parts are supported.")
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
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
    stream_draft: bool = Field(False, description="Extension: stream the unverified draft as generated (default: verified sentences only).")
    filter: dict[str, Any] | None = Field(None, description='Extension: only documents that pass, e.g. {"author": "Koneska", "since": "2021-01-01", "where": {"topic": "x"}} (openai client: extra_body={"filter": ...}).')
    collection: str | None = Field(None, description="Extension: the collection to answer from (or name it as the model: rag:<name>).")
    prefer: Prefer | None = Field(None, description="Extension: when sources disagree, newest (lead with the newest source) or all (every value side by side); default RAG_PREFER.")


# -- response -------------------------------------------------------------------------------------
class Source(BaseModel):
    n: int
    doc_id: str
    title: str
    source: str
    quote: str
    start: int
    end: int
    score: float
    passage: str = Field("", description="The cited passage's text, so a client can show the quote in its context.")
    passage_start: int = Field(0, description="The passage's offset in the document: the quote is "
                                              "passage[start - passage_start:end - passage_start] (whitespace collapsed).")


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


class AnswerExtensions(BaseModel):
    sources: list[Source] = Field(description="Extension: the passages the answer's [n] markers point at.")
    abstained: bool = Field(description="Extension: true when the documents do not contain the answer.")
    confidence: float = Field(description="Extension: calibrated probability that the answer (or abstention) is right.")
    conflicts: list[dict[str, Any]] = Field(default_factory=list, description="Extension: when sources disagree, each value the answer states with its citation number, source and date (newest first unless prefer=all).")
    backend: str = Field(description="Extension: the backend that produced the answer (extractive after a fallback).")
    fallback_reason: str | None = Field(None, description="Extension: why the requested backend was not used (null unless it fell back).")
    notes: list[str] = Field(default_factory=list, description="Extension: parts of the request that were ignored.")


class ChatCompletion(AnswerExtensions):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """A stream event. ``usage`` is present (null until the last event) only when the client asked for it; the
    final chunk also carries the answer extensions and ``answer`` (the verified text)."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- converters -----------------------------------------------------------------------------------
def message_text(message: ChatMessage, index: int) -> str:
    """The text of a message: a string, or its text parts joined (other part types are refused)."""
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


def history_content(role: str, text: str) -> str:
    """An assistant turn echoed back by a client that kept our streamed text: keep only the verified answer."""
    if role == "assistant" and VERIFIED_PREFIX.strip() in text:
        return text.rsplit(VERIFIED_PREFIX.strip(), 1)[1].strip()
    return text


def to_job(req: ChatCompletionRequest) -> tuple[AnswerJob, list[str]]:
    """Messages -> (question + history, notes on what was ignored). Instructions are ignored: the grounding prompt is fixed."""
    notes = [f"ignored field {name!r}: the service answers from documents only" for name in IGNORED_FIELDS
             if (req.model_extra or {}).get(name) is not None]
    conversation: list[tuple[int, ChatMessage]] = []
    for i, m in enumerate(req.messages):
        if m.role in IGNORED_ROLES:
            notes.append(f"ignored messages[{i}] with role {m.role!r}")
        elif m.role not in INSTRUCTION_ROLES:
            conversation.append((i, m))
    if not conversation or conversation[-1][1].role != "user":
        raise ServiceError(400, "the last message must have role 'user' (earlier messages are the conversation history)",
                           "last_message_not_user", param="messages")
    last_index, last = conversation[-1]
    history = [Turn(m.role, history_content(m.role, message_text(m, i))) for i, m in conversation[:-1]]
    return AnswerJob(message_text(last, last_index), history, req.backend, req.mode, req.top_k, bool(req.stream and req.stream_draft),
                     prefer=req.prefer), notes


def sources(answer: Answer) -> list[Source]:
    # A Citation holds only its quote; the passage around it is among the answer's retrieved passages (by chunk id).
    by_chunk = {p.chunk_id: p for p in answer.passages}
    out: list[Source] = []
    for c in answer.citations:
        p = by_chunk.get(c.chunk_id)
        out.append(Source(n=c.n, doc_id=c.doc_id, title=c.title, source=c.source, quote=c.quote, start=c.start, end=c.end,
                          score=c.score, passage=p.text if p else "", passage_start=p.start if p else c.start))
    return out


def usage(answer: Answer) -> Usage:
    return Usage(prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                 total_tokens=answer.prompt_tokens + answer.completion_tokens)


def extensions(answer: Answer, notes: list[str]) -> dict[str, Any]:
    return AnswerExtensions(sources=sources(answer), abstained=answer.abstained, confidence=answer.confidence, conflicts=answer.conflicts, backend=answer.backend,
                            fallback_reason=answer.fallback_reason, notes=notes).model_dump()


def completion(answer: Answer, completion_id: str, created: int, model: str, notes: list[str]) -> dict[str, Any]:
    """The non-streaming response body."""
    return ChatCompletion(
        id=completion_id, created=created, model=model,
        choices=[Choice(index=0, message=ResponseMessage(content=answer.answer), finish_reason="stop")],
        usage=usage(answer), **extensions(answer, notes),
    ).model_dump()


def _sse(data: BaseModel | dict[str, Any] | str) -> str:
    """One SSE event. Models are dumped with only the fields set on purpose (a delta has just what changed)."""
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n"


async def sse_events(run: AnswerRun, stream: EventStream[str], *, completion_id: str, created: int, model: str,
                     include_usage: bool, draft: bool, notes: list[str], on_answer: Callable[[Answer], None]) -> AsyncIterator[str]:
    """The run as ``chat.completion.chunk`` SSE events, ending with ``[DONE]``; failures are reported in-band."""

    def chunk(delta: Delta, finish_reason: str | None = None, **extra: Any) -> ChatCompletionChunk:
        fields: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                                  "system_fingerprint": None,
                                  "choices": [ChunkChoice(index=0, delta=delta, finish_reason=finish_reason, logprobs=None)]}
        if include_usage:
            fields["usage"] = None
        return ChatCompletionChunk(**fields, **extra)

    done = False
    try:
        yield _sse(chunk(Delta(role="assistant", content="")))
        sent = 0
        async for piece in stream.events():  # draft pieces, or whole verified sentences
            if piece:
                yield _sse(chunk(Delta(content=piece if draft or not sent else " " + piece)))
                sent += 1
        answer = run.answer()
        on_answer(answer)
        if draft and run.changed_by_verification:
            yield _sse(chunk(Delta(content=VERIFIED_PREFIX + answer.answer)))
        yield _sse(chunk(Delta(), "stop", answer=answer.answer, **extensions(answer, notes)))
        if include_usage:
            yield _sse(ChatCompletionChunk(id=completion_id, object="chat.completion.chunk", created=created, model=model,
                                           system_fingerprint=None, choices=[], usage=usage(answer)))
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
            log.info("stream stopped before the end (client disconnected?)", extra={"id": completion_id, "streamed_chars": len(run.streamed)})
        stream.cancel()  # a client that went away (CancelledError here) frees the model after the current token
