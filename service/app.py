"""The application factory: routes, error handlers, auth, metrics, the web page; components load in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from rag.components import Components
from rag.settings import Settings
from service.auth import APIKeyMiddleware
from service.errors import install_error_handlers
from service.hosts import HostOriginMiddleware
from service.limits import BodyLimitMiddleware, DrainMiddleware
from service.metrics import HTTPMiddleware
from service.routes import answers, documents, openai, operations
from service.state import ServiceState

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
PLACEHOLDER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rag</title></head>
<body><h1>rag</h1><p>The web page is not installed. The API is at <a href="/docs">/docs</a>
(OpenAI-compatible: <code>/v1/chat/completions</code>).</p></body></html>
"""
UPLOAD_OVERHEAD = 64 * 1024  # multipart framing around an uploaded file
TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False, "auto_configure": False}


class _StaticFiles(StaticFiles):
    """``/static``: 404 (not a crash) when the folder is absent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.directory is None or not Path(self.directory).is_dir():
            raise HTTPException(status_code=404)
        await super().__call__(scope, receive, send)


def json_body_limit(settings: Settings) -> int:
    """JSON bodies: room for a long conversation, far below anything that could hurt the process."""
    return max(1_000_000, settings.max_question_chars * 64)


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    """A FastAPI app over the library. Nothing heavy happens here: models load when the app starts.

    ``components`` (default: built from ``settings``) lets tests inject parts, e.g. a scripted generator.
    """
    state = ServiceState(settings, components)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.start()
        log.info("service starting", extra={"backend": settings.llm_backend, "model": settings.llm_model,
                                            "auth": settings.auth_enabled, "queue": settings.generation_queue_size})
        try:
            yield
        finally:
            state.shutdown()

    app = FastAPI(
        title="rag",
        version="0.1.0",
        summary="Offline-first question answering over your documents, with verified citations.",
        description="OpenAI-compatible chat (`/v1/chat/completions`, `/v1/models`) and a native API. "
                    "When an API key is configured, send `Authorization: Bearer <key>`.",
        lifespan=lifespan,
        telemetry=TELEMETRY_OFF,  # type: ignore[arg-type]
    )
    app.state.rag = state
    install_error_handlers(app)
    for router in (openai.router, answers.router, documents.router, operations.router):
        app.include_router(router)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> Response:
        index = STATIC_DIR / "index.html"
        if index.is_file():
            return FileResponse(index, media_type="text/html")
        return HTMLResponse(PLACEHOLDER_PAGE)

    app.mount("/static", _StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    # Added last = outermost: metrics/catch-all wraps everything, so refusals are counted and logged too; then the
    # drain of unread bodies before any early answer, the Host and Origin checks (service.hosts), CORS (only for configured origins: a preflight carries no key),
    # auth, and the body limit, so a refused or unauthenticated request never gets its body read.
    app.add_middleware(BodyLimitMiddleware, default=json_body_limit(settings),
                       limits={"/v1/documents": settings.max_upload_bytes + UPLOAD_OVERHEAD})
    if settings.auth_enabled:  # the same condition the start-up log reports
        assert settings.api_key is not None
        app.add_middleware(APIKeyMiddleware, api_key=settings.api_key.get_secret_value())
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.add_middleware(HostOriginMiddleware, allowed_hosts=settings.allowed_hosts, cors_origins=settings.cors_origins)
    app.add_middleware(DrainMiddleware)  # whatever refused a request, its answer arrives (service.limits)
    app.add_middleware(HTTPMiddleware, metrics=state.metrics, classify=state.classify_unexpected)
    return app
