"""What one running service holds: the library components (loaded once), the generation queue, metrics.

Components load in a background thread at startup so ``/healthz`` answers at once and ``/readyz``
can say what is still loading or what failed. Requests that need a component wait for it; a
component that failed (e.g. a Chroma server that is down) is retried on the next request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from rag.errors import RagError, StoreUnavailable
from rag.generation.answerer import Answerer
from rag.generation.backends import Generator, get_generator
from rag.ingestion.pipeline import Ingestor
from rag.retrieval import Retriever
from rag.settings import LLMBackendName, Settings
from rag.store import ChunkStore
from service.errors import ServiceError
from service.metrics import Metrics
from service.queue import GenerationQueue

log = logging.getLogger(__name__)
BACKENDS: tuple[LLMBackendName, ...] = ("llamacpp", "openai", "extractive")


@dataclass
class Core:
    """Store, retriever, answerer and ingestor sharing one Chroma client and one embedder."""

    store: ChunkStore
    retriever: Retriever
    answerer: Answerer
    ingestor: Ingestor

    @classmethod
    def build(cls, settings: Settings) -> Core:
        from rag.embedding import get_embedder

        store = ChunkStore(settings)
        embedder = get_embedder(settings)
        retriever = Retriever(settings, store=store, embedder=embedder)
        ingestor = Ingestor(settings, store=store, embedder=embedder, lexical=retriever.lexical)
        return cls(store, retriever, Answerer(settings, retriever), ingestor)


class ServiceState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = GenerationQueue(settings.generation_queue_size)
        self.metrics = Metrics(self.queue)
        self.uploads_dir = Path(settings.data_dir) / "uploads"
        self.docs_lock = asyncio.Lock()  # uploads and deletes change the index one at a time
        self.started_at = time.time()
        self._core: Core | None = None
        self._core_lock = threading.Lock()
        self.core_error: str | None = None
        self._gen_lock = threading.Lock()
        self.generator_error: dict[str, str] = {}
        self._warm = threading.Event()
        self._warm_thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Load components in the background (the server accepts requests meanwhile)."""
        self._warm_thread = threading.Thread(target=self._warm_up, name="warm-up", daemon=True)
        self._warm_thread.start()

    def _warm_up(self) -> None:
        started = time.perf_counter()
        try:
            core = self.core()
            if core.store.count():
                core.retriever.bm25()
            core.retriever.embedder.embed_query("warm up")
        except RagError as exc:
            log.warning("store not ready at startup", extra={"error": str(exc)})
        try:
            self.generator(self.settings.llm_backend)
        except RagError as exc:
            log.warning("generator not ready at startup", extra={"backend": self.settings.llm_backend, "error": str(exc)})
        self._warm.set()
        log.info("service warmed up", extra={"seconds": round(time.perf_counter() - started, 2)})

    def shutdown(self) -> None:
        self.queue.shutdown()

    # -- components -----------------------------------------------------------------------------
    def core(self) -> Core:
        """The components, built on first use (blocking); raises StoreUnavailable/ModelError when they cannot be."""
        if self._core is not None:
            return self._core
        with self._core_lock:
            if self._core is None:
                try:
                    self._core = Core.build(self.settings)
                    self.core_error = None
                except RagError as exc:
                    self.core_error = str(exc)
                    raise
                except Exception as exc:  # e.g. a chromadb error type we do not know: report, never crash
                    self.core_error = f"cannot open the store: {type(exc).__name__}: {exc}"
                    raise StoreUnavailable(self.core_error) from exc
            return self._core

    async def acore(self) -> Core:
        if self._core is not None:
            return self._core
        return await run_in_threadpool(self.core)

    def enabled_backends(self) -> list[LLMBackendName]:
        """Backends a request may choose: the configured one, extractive, and openai when a server is configured."""
        enabled = {self.settings.llm_backend, "extractive"}
        if self.settings.llm_base_url:
            enabled.add("openai")
        return [b for b in BACKENDS if b in enabled]

    def resolve_backend(self, requested: str | None) -> LLMBackendName:
        if requested is None:
            return self.settings.llm_backend
        if requested not in self.enabled_backends():
            raise ServiceError(400, f"backend {requested!r} is not enabled on this server; use one of: "
                                    f"{', '.join(self.enabled_backends())}", "backend_not_enabled", param="backend")
        return requested  # type: ignore[return-value]

    def generator(self, backend: LLMBackendName) -> Generator | None:
        """Load (once) the generator for ``backend``; loads are serialized so a model is never loaded twice."""
        with self._gen_lock:
            try:
                gen = get_generator(backend, self.settings)
            except RagError as exc:
                self.generator_error[backend] = str(exc)
                raise
            self.generator_error.pop(backend, None)
            return gen

    async def agenerator(self, backend: LLMBackendName) -> Generator | None:
        return await run_in_threadpool(self.generator, backend)

    # -- readiness ------------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, report). Never blocks on a component that is still loading."""
        checks: dict[str, str] = {}
        body: dict[str, Any] = {"checks": checks}
        store_ok = gen_ok = False
        core = self._core
        if core is None:
            if self._core_lock.locked():
                checks["store"] = "loading the embedding model and opening the store"
            else:
                try:
                    core = self.core()
                except RagError as exc:
                    checks["store"] = str(exc)
        if core is not None:
            if core.store.heartbeat():
                try:
                    chunks = core.store.count()
                    body["chunks"] = chunks
                    store_ok = True
                    checks["store"] = "ok" if chunks else "ok (the index is empty: upload or ingest documents)"
                except Exception as exc:  # noqa: BLE001 - a store that answers heartbeats but not queries
                    checks["store"] = f"the store does not answer: {type(exc).__name__}"
            else:
                checks["store"] = f"the Chroma store at {core.store.location} does not answer a heartbeat"
        backend = self.settings.llm_backend
        if backend == "extractive":
            gen_ok, checks["generator"] = True, "ok (extractive backend: no model)"
        elif backend in self.generator_error:
            checks["generator"] = self.generator_error[backend]
        elif self._gen_lock.locked() or not self._warm.is_set():
            checks["generator"] = f"loading the {backend} backend"
        else:
            try:
                gen = self.generator(backend)
                gen_ok = bool(gen is not None and gen.ready())
                checks["generator"] = "ok" if gen_ok else f"the {backend} backend is not ready"
            except RagError as exc:
                checks["generator"] = str(exc)
        body["backend"] = backend
        body["generation"] = {"in_flight": self.queue.in_flight, "capacity": self.queue.capacity}
        ready = store_ok and gen_ok
        body["status"] = "ready" if ready else "not ready"
        return ready, body

    # -- unexpected errors ----------------------------------------------------------------------
    async def classify_unexpected(self, exc: Exception) -> tuple[int, str, str, str] | None:
        """An unexpected exception while a Chroma server is down is really 'store unavailable' (503)."""
        core = self._core
        if core is None or not self.settings.server_mode:
            return None
        alive = await run_in_threadpool(core.store.heartbeat)
        if alive:
            return None
        return 503, "server_error", "store_unavailable", f"the Chroma store at {core.store.location} is unavailable"
