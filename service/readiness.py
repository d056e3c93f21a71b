"""Readiness: can this process answer now? The store answers a heartbeat and the generator is loaded and ready.

Never blocks on a component that is still loading: it reports "loading" instead.
"""

from __future__ import annotations

from typing import Any

from rag.errors import RagError
from service.state import ServiceState


def store_check(state: ServiceState, body: dict[str, Any]) -> tuple[bool, str]:
    if not state.components.built("store"):
        if state.core_loading:
            return False, "loading the embedding model and opening the store"
        try:
            state.core()
        except RagError as exc:
            return False, str(exc)
    store = state.components.store
    if not store.heartbeat():
        return False, f"the Chroma store at {store.location} does not answer a heartbeat"
    try:
        chunks = store.count()
    except Exception as exc:  # noqa: BLE001 - a store that answers heartbeats but not queries
        return False, f"the store does not answer: {type(exc).__name__}"
    body["chunks"] = chunks
    return True, "ok" if chunks else "ok (the index is empty: upload or ingest documents)"


def generator_check(state: ServiceState) -> tuple[bool, str]:
    backend = state.settings.llm_backend
    generators = state.components.generators
    if backend in generators.errors:
        return False, generators.errors[backend]
    if not generators.loaded(backend) and (generators.loading or not state.warm.is_set()):
        return False, f"loading the {backend} backend"
    try:
        ok = generators.get(backend).ready()
    except RagError as exc:
        return False, str(exc)
    return ok, "ok" if ok else f"the {backend} backend is not ready"


def readiness(state: ServiceState) -> tuple[bool, dict[str, Any]]:
    """(ready, report naming what is not ready)."""
    body: dict[str, Any] = {}
    store_ok, store_msg = store_check(state, body)
    gen_ok, gen_msg = generator_check(state)
    ready = store_ok and gen_ok
    body.update({"checks": {"store": store_msg, "generator": gen_msg}, "backend": state.settings.llm_backend,
                 "generation": {"in_flight": state.queue.in_flight, "capacity": state.queue.capacity},
                 "status": "ready" if ready else "not ready"})
    return ready, body
