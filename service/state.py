"""What one running service holds: the library's components (wired once, in ``rag.components``), the
generation queue, metrics and the documents lock.

The core components load in a background thread at startup so ``/healthz`` answers at once and ``/readyz``
can say what is still loading or what failed. Requests that need them wait; a part that failed to build
(e.g. a Chroma server that is down) is built again on the next request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from rag.components import Components
from rag.errors import RagError, StoreUnavailable
from rag.settings import Settings
from service.metrics import Metrics
from service.queue import GenerationQueue

log = logging.getLogger(__name__)


class ServiceState:
    def __init__(self, settings: Settings, components: Components | None = None) -> None:
        self.settings = settings
        self.components = components or Components(settings)
        self.queue = GenerationQueue(settings.generation_queue_size)
        self.metrics = Metrics(self.queue)
        self.uploads_dir = Path(settings.data_dir) / "uploads"
        self.docs_lock = asyncio.Lock()  # uploads and deletes change the index one at a time
        self.started_at = time.time()
        self._core_lock = threading.Lock()
        self.core_error: str | None = None
        self.warm = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Load components in the background (the server accepts requests meanwhile)."""
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        started = time.perf_counter()
        try:
            core = self.core()
            if not core.index.is_empty():
                core.retriever.bm25()
            core.embedder.embed_query("warm up")
        except RagError as exc:
            log.warning("store not ready at startup", extra={"error": str(exc)})
        try:
            self.components.generators.get()
        except RagError as exc:
            log.warning("generator not ready at startup", extra={"backend": self.settings.llm_backend, "error": str(exc)})
        self.warm.set()
        log.info("service warmed up", extra={"seconds": round(time.perf_counter() - started, 2)})

    def shutdown(self) -> None:
        self.queue.shutdown()

    # -- components -----------------------------------------------------------------------------
    @property
    def core_loading(self) -> bool:
        return self._core_lock.locked()

    def core(self) -> Components:
        """The components with store, embedder, index, retriever, ingestor and answerer built (blocking).

        Raises StoreUnavailable/ModelError when they cannot be built; the next call tries again.
        """
        c = self.components
        if c.built("answerer") and c.built("ingestor"):
            return c
        with self._core_lock:
            try:
                c.answerer, c.ingestor  # noqa: B018 - building them is the point
                self.core_error = None
            except RagError as exc:
                self.core_error = str(exc)
                raise
            except Exception as exc:  # e.g. a chromadb error type we do not know: report, never crash
                self.core_error = f"cannot open the store: {type(exc).__name__}: {exc}"
                raise StoreUnavailable(self.core_error) from exc
            return c

    async def acore(self) -> Components:
        c = self.components
        if c.built("answerer") and c.built("ingestor"):
            return c
        return await run_in_threadpool(self.core)

    # -- unexpected errors ----------------------------------------------------------------------
    async def classify_unexpected(self, exc: Exception) -> tuple[int, str, str, str] | None:
        """An unexpected exception while a Chroma server is down is really 'store unavailable' (503)."""
        if not self.components.built("store") or not self.settings.server_mode:
            return None
        store = self.components.store
        if await run_in_threadpool(store.heartbeat):
            return None
        return 503, "server_error", "store_unavailable", f"the Chroma store at {store.location} is unavailable"
