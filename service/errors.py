"""One error shape for every route, OpenAI's: ``{"error": {"message", "type", "code", "param"}}``.

Library errors (``rag.errors``) map to statuses here; nothing else in the service decides them.
A request never gets a traceback: unexpected exceptions are caught by ``service.metrics.HTTPMiddleware``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import (
    CollectionError,
    DocumentConflict,
    DocumentError,
    DocumentTooLarge,
    EmptyDocument,
    EmptyIndex,
    EmptyQuestion,
    InvalidFilter,
    InvalidQuestion,
    LLMUnavailable,
    ModelError,
    QuestionTooLong,
    RagError,
    StoreUnavailable,
    UnknownCollection,
    UnsupportedDocumentType,
)

INVALID = "invalid_request_error"
SERVER = "server_error"

# Most specific first; the first isinstance match wins.
RAG_ERRORS: list[tuple[type[RagError], int, str, str]] = [
    (EmptyQuestion, 400, INVALID, "empty_question"),
    (QuestionTooLong, 400, INVALID, "question_too_long"),
    (InvalidQuestion, 400, INVALID, "invalid_question"),
    (UnsupportedDocumentType, 415, INVALID, "unsupported_media_type"),
    (DocumentTooLarge, 413, INVALID, "file_too_large"),
    (EmptyDocument, 400, INVALID, "empty_file"),
    (DocumentConflict, 409, INVALID, "document_conflict"),
    (DocumentError, 400, INVALID, "invalid_document"),
    (EmptyIndex, 409, INVALID, "empty_index"),
    (InvalidFilter, 400, INVALID, "invalid_filter"),
    (UnknownCollection, 404, "not_found_error", "collection_not_found"),
    (CollectionError, 400, INVALID, "invalid_collection"),
    (StoreUnavailable, 503, SERVER, "store_unavailable"),
    (ModelError, 503, SERVER, "model_unavailable"),
    (LLMUnavailable, 503, SERVER, "llm_unavailable"),
    (RagError, 400, INVALID, "bad_request"),
]

_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: (INVALID, "bad_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: (INVALID, "method_not_allowed"),
    409: (INVALID, "conflict"),
    413: (INVALID, "request_too_large"),
    415: (INVALID, "unsupported_media_type"),
    422: (INVALID, "invalid_request"),
    429: ("rate_limit_error", "queue_full"),
    503: (SERVER, "unavailable"),
}

# Routes that follow OpenAI's conventions (400 for an invalid body rather than FastAPI's 422).
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


class ServiceError(Exception):
    """A deliberate HTTP error with a clear message (raised by route handlers)."""

    def __init__(self, status: int, message: str, code: str | None = None, *, type_: str | None = None,
                 param: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        default_type, default_code = _HTTP_CODES.get(status, (SERVER if status >= 500 else INVALID, "error"))
        self.status = status
        self.message = message
        self.type = type_ or default_type
        self.code = code or default_code
        self.param = param
        self.headers = dict(headers or {})


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def error_response(status: int, message: str, type_: str | None = None, code: str | None = None,
                   param: str | None = None, headers: Mapping[str, str] | None = None) -> JSONResponse:
    default_type, default_code = _HTTP_CODES.get(status, (SERVER if status >= 500 else INVALID, "error"))
    return JSONResponse(error_body(message, type_ or default_type, code or default_code, param), status_code=status,
                        headers=dict(headers or {}))


def classify_rag_error(exc: RagError) -> tuple[int, str, str]:
    """(status, type, code) for a library error."""
    for cls, status, type_, code in RAG_ERRORS:
        if isinstance(exc, cls):
            return status, type_, code
    return 400, INVALID, "bad_request"  # unreachable: RagError is last in the table


def rag_error_response(exc: RagError) -> JSONResponse:
    status, type_, code = classify_rag_error(exc)
    return error_response(status, str(exc) or type(exc).__name__, type_, code)


def _loc(loc: Sequence[Any]) -> str:
    """``("body", "messages", 1, "role")`` -> ``messages[1].role``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """A readable message (and the first offending parameter) from pydantic/FastAPI validation errors."""
    parts: list[str] = []
    first_param: str | None = None
    for err in errors[:3]:
        loc = _loc(err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "json_invalid":
            ctx = err.get("ctx") or {}
            parts.append(f"malformed JSON body: {ctx.get('error', err.get('msg', 'invalid JSON'))}")
            continue
        if kind == "missing" and loc == "":
            parts.append("the request body is missing (send JSON with Content-Type: application/json)")
            continue
        first_param = first_param or (loc or None)
        if kind == "literal_error" and loc.endswith(".role"):
            parts.append(f"{loc}: unsupported role {_short(err.get('input'))}; allowed roles are system, user and assistant")
            continue
        msg = str(err.get("msg", "invalid value"))
        if kind in ("missing",):
            parts.append(f"{loc}: field required")
        elif "input" in err and kind not in ("model_attributes_type", "dict_type", "model_type"):
            parts.append(f"{loc}: {msg} (got {_short(err.get('input'))})" if loc else msg)
        else:
            parts.append(f"{loc}: {msg}" if loc else msg)
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more problem(s)")
    return "; ".join(parts) or "invalid request", first_param


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into the one error shape."""

    async def service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(exc.status, exc.message, exc.type, exc.code, exc.param, exc.headers)

    async def rag_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RagError)
        return rag_error_response(exc)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        if status == 404:
            message = f"not found: {request.method} {request.url.path}"
        elif status == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        elif status == 413 and (not exc.detail or exc.detail == "Content Too Large"):
            message = "the request body is too large"
        else:
            message = str(exc.detail) if exc.detail else "request failed"
        return error_response(status, message, headers=getattr(exc, "headers", None))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = validation_message(exc.errors())
        status = 400 if request.url.path.startswith(OPENAI_PATHS) else 422
        return error_response(status, message, INVALID, "invalid_request", param)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RagError, rag_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
