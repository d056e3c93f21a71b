"""Wiring, in one place: the store, embedder, BM25 index, retriever, ingestor, generators and answerer of one
collection, built on first use and shared. The CLI, the service, eval and bench all get their parts here.
``for_collection(name)`` gives another collection's parts, sharing the models.

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
from rag.index.collections import Collections
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
                 generators: Mapping[str, Generator] | None = None, parent: Components | None = None) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._parts: dict[str, object] = {}
        if embedder is not None:
            self._parts["embedder"] = embedder
        self._generator_overrides = dict(generators or {})
        self._parent = parent  # the components of the configured collection (they own the models)
        self._siblings: dict[str, Components] = {}

    def for_collection(self, name: str | None) -> Components:
        """The parts of collection ``name`` (None: this one), built once and kept. They share this object's embedding
        model and generators (loaded once per process) and nothing else: their own store handle, BM25 index,
        retriever and ingestor, so one collection never sees another's chunks."""
        from rag.index.collections import check_collection_name

        if name is None or name == self.settings.collection:
            return self
        if self._parent is not None:
            return self._parent.for_collection(name)
        check_collection_name(name)
        with self._lock:
            sibling = self._siblings.get(name)
            if sibling is None:
                sibling = self._siblings[name] = Components(self.settings.model_copy(update={"collection": name}), parent=self)
            return sibling

    def for_collection_built(self, name: str) -> bool:
        """True when the parts of collection ``name`` were asked for already (and so it exists, or is being made)."""
        root = self._parent or self
        return name == root.settings.collection or name in root._siblings

    @property
    def collections(self) -> Collections:
        """Every collection of the store: names, counts, deletion."""
        if self._parent is not None:
            return self._parent.collections
        return self._part("collections", lambda: Collections(self.settings))

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
        if self._parent is not None:
            return self._parent.embedder
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
        if self._parent is not None:
            return self._parent.generators
        return self._part("generators", lambda: Generators(self.settings, lambda: self.embedder, self._generator_overrides))

    @property
    def answerer(self) -> Answerer:
        return self._part("answerer", lambda: Answerer(self.settings, self.retriever, self.generators))
