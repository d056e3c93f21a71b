"""The HTTP service: a thin FastAPI layer over the ``rag`` library (OpenAI-compatible chat, native API, web page)."""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Lazy so `import service` stays cheap (the CLI imports service.server only for `rag serve`).
    if name == "create_app":
        from service.app import create_app

        return create_app
    raise AttributeError(name)
