"""Wiring, in one place: the store, embedder, BM25 index, retriever, ingestor, generators and answerer of one
collection, built on first use and shared. The CLI, the service, eval and bench all get their parts here.

Parts are built lazily, so a command pays only for what it uses (``rag delete`` never loads the embedding
model), and exactly once per ``Components`` (one ``LexicalIndex`` per collection per process).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from rag.embedding import Embedder, get_embedder, model_identity
from rag.generation.answerer import Answerer
from rag.generation.backends import Generator
from rag.generation.generators import Generators
from rag.index.chunk_index import ChunkIndex
from rag.index.lexical import LexicalIndex
from rag.index.store import ChunkStore
from rag.ingestion.pipeline import Ingestor
from rag.retrieval import Retriever
from rag.settings import Settings

T = TypeVar("T")


class Components:
    """The library's parts for one collection. Pass ``embedder`` to share a loaded model, ``generators`` to inject
    ready-made generators by name (tests use a scripted ``FakeGenerator``)."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None,
                 generators: Mapping[str, Generator] | None = None) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._parts: dict[str, object] = {}
        if embedder is not None:
            self._parts["embedder"] = embedder
        self._generator_overrides = dict(generators or {})

    def _part(self, name: str, build: Callable[[], T]) -> T:
        found = self._parts.get(name)
        if found is None:
            with self._lock:
                found = self._parts.get(name)
                if found is None:
                    found = self._parts[name] = build()
        return found  # type: ignore[return-value]

    def built(self, name: str) -> bool:
        """True when the part called ``name`` exists already (readiness uses it to avoid blocking)."""
        return name in self._parts

    @property
    def store(self) -> ChunkStore:
        return self._part("store", lambda: ChunkStore(self.settings))

    @property
    def embedder(self) -> Embedder:
        return self._part("embedder", lambda: get_embedder(self.settings))

    @property
    def index(self) -> ChunkIndex:
        return self._part("index", lambda: ChunkIndex(self.store, LexicalIndex(self.settings, self.store)))

    def check_model(self) -> None:
        """Refuse (``EmbeddingModelMismatch``) when the collection's vectors come from another embedding model than the
        configured one. Parts that embed (retriever, ingestor) check first; ``rag delete`` and the like never load it."""
        self._part("model_checked", lambda: self.store.bind_model(model_identity(self.settings), lambda: self.embedder.dimension) or True)

    @property
    def retriever(self) -> Retriever:
        return self._part("retriever", lambda: self.check_model() or Retriever(self.settings, self.index, self.embedder))

    @property
    def ingestor(self) -> Ingestor:
        return self._part("ingestor", lambda: self.check_model() or Ingestor(self.settings, self.index, self.embedder))

    @property
    def generators(self) -> Generators:
        return self._part("generators", lambda: Generators(self.settings, lambda: self.embedder, self._generator_overrides))

    @property
    def answerer(self) -> Answerer:
        return self._part("answerer", lambda: Answerer(self.settings, self.retriever, self.generators))
