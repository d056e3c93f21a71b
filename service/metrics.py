"""Prometheus metrics (a registry per app) and the outermost HTTP middleware: metrics, access log, catch-all."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response

from rag.generation.answer import STAGES

if TYPE_CHECKING:
    from rag.generation.answer import Answer
    from service.queue import GenerationQueue

log = logging.getLogger("service.http")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")


class Metrics:
    """All service metrics, in their own registry so several apps can live in one process."""

    def __init__(self, queue: GenerationQueue) -> None:
        disable_created_metrics()  # no *_created series: they double the output and nobody graphs them
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rag_http_requests", "HTTP requests by method, route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("rag_http_request_duration_seconds", "HTTP request latency (streams: until the last byte).",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.stages = Histogram("rag_answer_stage_seconds", "Answer pipeline latency per stage (retrieve, generate, verify, total...).",
                                ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.answers = Counter("rag_answers", "Answers produced, by backend used and abstention.", ["backend", "abstained"], registry=r)
        self.tokens = Counter("rag_llm_tokens", "Tokens processed by the generator.", ["kind"], registry=r)
        self.rejected = Counter("rag_generation_rejected", "Answer requests refused with 429 (generation queue full).", registry=r)
        self.uploads = Counter("rag_documents_uploaded", "Documents uploaded, by outcome.", ["status"], registry=r)
        in_flight = Gauge("rag_generation_in_flight", "Answer requests admitted and not finished (waiting or generating).", registry=r)
        in_flight.set_function(lambda: queue.in_flight)
        capacity = Gauge("rag_generation_capacity", "Most answer requests admitted at once (RAG_GENERATION_QUEUE_SIZE).", registry=r)
        capacity.set(queue.capacity)

    def observe_answer(self, answer: Answer) -> None:
        for key in STAGES:
            value = answer.timings.get(key)
            if value is not None and (value > 0 or key != "first_token_ms"):
                self.stages.labels(key.removesuffix("_ms")).observe(value / 1000.0)
        self.answers.labels(answer.backend, str(answer.abstained).lower()).inc()
        if answer.prompt_tokens:
            self.tokens.labels("prompt").inc(answer.prompt_tokens)
        if answer.completion_tokens:
            self.tokens.labels("completion").inc(answer.completion_tokens)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_label(scope: Scope) -> str:
    """The matched route's path template (bounded label cardinality), else ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    raw = str(scope.get("path", ""))
    if raw.startswith("/static/"):
        return "/static"
    return "unmatched"


class HTTPMiddleware:
    """Outermost: counts and times every request, logs it (never its headers), and is the catch-all.

    An exception that escapes the app becomes a JSON 500 in the one error shape (or a 503 when the
    vector store turns out to be down), logged with its traceback server-side only.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, classify: Callable[[Exception], Awaitable[tuple[int, str, str, str] | None]]) -> None:
        self.app = app
        self.metrics = metrics
        self.classify = classify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            status = 499
        except Exception as exc:
            known = await self.classify(exc)
            if known is None:
                log.exception("unhandled error", extra={"method": scope.get("method"), "path": scope.get("path")})
            else:
                log.warning("request failed", extra={"method": scope.get("method"), "path": scope.get("path"), "error": known[3]})
            if not response_started:
                if known is not None:
                    status, type_, code, message = known
                else:
                    status, type_, code, message = 500, "server_error", "internal_error", "internal server error (details are in the server log)"
                await error_response(status, message, type_, code)(scope, receive, send)
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope)
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(seconds)
            level = logging.DEBUG if scope.get("path") in QUIET_PATHS and status < 400 else logging.INFO
            log.log(level, "request", extra={"method": method, "path": scope.get("path"), "route": route, "status": status,
                                             "ms": round(seconds * 1000, 1)})
