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
from rag.errors import RagError, StoreUnavailable, UnknownCollection
from rag.index.collections import check_collection_name, uploads_dir
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
        self.uploads_dir = uploads_dir(settings)  # the configured collection's
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
            generator = self.components.generators.get()
            warm_judge = getattr(generator, "warm_judge", None)
            if callable(warm_judge):  # the judge's instruction, so the first answer does not pay for it
                warm_judge()
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

    def collection(self, name: str | None, create: bool = False) -> Components:
        """The components of collection ``name`` (None: the configured one). Raises ``CollectionError`` for a name
        Chroma would refuse and, unless ``create`` (an upload may start a collection), ``UnknownCollection`` for one
        that does not exist: a misspelt name is an error, never an empty collection made on the fly."""
        if name is None or name == self.settings.collection:
            return self.components
        check_collection_name(name)
        if not create and not self.components.for_collection_built(name):
            names = self.components.collections.names()
            if name not in names:
                raise UnknownCollection(f"no collection {name!r}; collections: {', '.join(names) or '(none)'}")
        return self.components.for_collection(name)

    def collection_names(self) -> list[str]:
        """Every collection of the store, the configured one first (it is listed even while still empty)."""
        names = self.components.collections.names()
        return [self.settings.collection, *(n for n in names if n != self.settings.collection)]

    def uploads_for(self, components: Components) -> Path:
        return uploads_dir(self.settings, components.settings.collection)

    def core(self, collection: str | None = None, create: bool = False) -> Components:
        """The components of a collection with store, embedder, index, retriever, ingestor and answerer built
        (blocking).

        Raises StoreUnavailable/ModelError when they cannot be built; the next call tries again.
        """
        c = self.collection(collection, create)
        if c.built("answerer") and c.built("ingestor"):
            return c
        default = c is self.components  # readiness reports the configured collection only
        with self._core_lock:
            try:
                c.answerer, c.ingestor  # noqa: B018 - building them is the point
                if default:
                    self.core_error = None
            except RagError as exc:
                if default:
                    self.core_error = str(exc)
                raise
            except Exception as exc:  # e.g. a chromadb error type we do not know: report, never crash
                error = f"cannot open the store: {type(exc).__name__}: {exc}"
                if default:
                    self.core_error = error
                raise StoreUnavailable(error) from exc
            return c

    async def acore(self, collection: str | None = None, create: bool = False) -> Components:
        c = self.components
        if collection in (None, self.settings.collection) and c.built("answerer") and c.built("ingestor"):
            return c
        return await run_in_threadpool(self.core, collection, create)

    # -- unexpected errors ----------------------------------------------------------------------
    async def classify_unexpected(self, exc: Exception) -> tuple[int, str, str, str] | None:
        """An unexpected exception while a Chroma server is down is really 'store unavailable' (503)."""
        if not self.components.built("store") or not self.settings.server_mode:
            return None
        store = self.components.store
        if await run_in_threadpool(store.heartbeat):
            return None
        return 503, "server_error", "store_unavailable", f"the Chroma store at {store.location} is unavailable"
