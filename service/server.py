"""``rag serve``: run the app with uvicorn (logs go through rag.logging_setup, already configured by the CLI)."""

from __future__ import annotations

import logging

from rag.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted. One process, one event loop; generation runs in worker threads."""
    import uvicorn

    from rag.index.lock import hold_store
    from service.app import create_app

    if not settings.server_mode:  # refuse at once (one line) when another process has the embedded store
        hold_store(settings.chroma_dir)
    if host not in ("0.0.0.0", "::", "") and host not in settings.allowed_hosts:
        settings = settings.model_copy(update={"allowed_hosts": [*settings.allowed_hosts, host]})  # the address it binds
    elif host in ("0.0.0.0", "::") and not settings.allowed_hosts:
        log.warning("listening on every interface: requests addressed to a name or address other than a loopback one "
                    "are refused (400) until it is listed in RAG_ALLOWED_HOSTS", extra={"host": host})
    app = create_app(settings)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).addFilter(_drop_color_message)
    if not settings.auth_enabled and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on a non-loopback interface without an API key (set RAG_API_KEY)", extra={"host": host})
    log.info("listening", extra={"url": f"http://{host}:{port}"})
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,  # keep the structured root handler
        access_log=False,  # service.metrics logs each request (without headers, so never the key)
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def _drop_color_message(record: logging.LogRecord) -> bool:
    """uvicorn adds an ANSI-coloured copy of each message as an extra field; the structured line needs only one."""
    record.__dict__.pop("color_message", None)
    return True
