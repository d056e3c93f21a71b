"""The HTTP routes, one router per domain: OpenAI-compatible chat, answers, documents, operations."""

from __future__ import annotations

from fastapi import Request

from service.state import ServiceState


def get_state(request: Request) -> ServiceState:
    """FastAPI dependency: the service state of the app serving this request."""
    state: ServiceState = request.app.state.rag
    return state
