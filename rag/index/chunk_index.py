"""A collection's chunks: the Chroma store (the source of truth) and the BM25 index that follows it.

Every write goes through here, so the lexical side can never miss a change this process made; changes
made by other processes are picked up by ``LexicalIndex`` syncing with the store.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag.errors import EmptyIndex
from rag.index.lexical import LexicalIndex, bm25_text
from rag.index.aliases import AliasTable, table_of
from rag.index.catalog import Catalog
from rag.index.store import ChunkStore


class ChunkIndex:
    """Writes, deletes and the emptiness check for one collection."""

    def __init__(self, store: ChunkStore, lexical: LexicalIndex) -> None:
        self.store = store
        self.lexical = lexical
        self._cards: tuple[tuple[int, str | None], Catalog] | None = None
        self._cards_lock = threading.Lock()
        self._aliases: tuple[tuple[int, str | None], AliasTable] | None = None

    def cards(self) -> Catalog:
        """Every document's card metadata (from its first chunk) and the ids, authors and keys they hold, read again
        only when the store changed (this process's writes at once; other processes' within ``bm25_refresh_seconds``).
        What filters resolve against."""
        return self._catalog()[1]

    def aliases(self) -> AliasTable:
        """The names the collection's documents define, grouped (rebuilt when the store changed)."""
        catalog = self._catalog()
        with self._cards_lock:
            if self._aliases is None or self._aliases[0] != catalog[0]:
                self._aliases = (catalog[0], table_of(catalog[1]))
            return self._aliases[1]

    def card_ids(self) -> frozenset[str]:
        """The ids of the documents' card chunks (each document's last chunk, when it was ingested with one)."""
        return self._catalog()[1].card_ids

    def _catalog(self) -> tuple[tuple[int, str | None], Catalog]:
        version = self.lexical.store_version()
        with self._cards_lock:
            if self._cards is None or self._cards[0] != version:
                self._cards = (version, Catalog(tuple(self.store.documents())))
            return self._cards

    @property
    def collection(self) -> str:
        return self.store.settings.collection

    def write(self, ids: list[str], vectors: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Upsert chunks with their embeddings, and index them for BM25."""
        self.store.upsert(ids, vectors, texts, metadatas)
        self.lexical.add(ids, [bm25_text(t, m) for t, m in zip(texts, metadatas, strict=True)])
        self._cards = None

    def remove(self, ids: Sequence[str]) -> None:
        """Delete chunks from the store and from BM25."""
        if ids:
            self.store.delete_ids(ids)
            self.lexical.remove(ids)
            self._cards = None

    def delete_document(self, doc_id: str) -> int:
        """Remove every chunk of a document; returns how many were removed (no embedding model needed)."""
        ids = self.store.ids_of_doc(doc_id)
        if ids:
            self.remove(ids)
            self.lexical.sync()
        return len(ids)

    def reset(self) -> None:
        """Drop every chunk (store and BM25) and start an empty collection for the configured embedding model."""
        self.store.reset()
        self.lexical.rebuild()
        self._cards = None

    def is_empty(self) -> bool:
        """True when the collection holds no chunk (the count is cached for ``bm25_refresh_seconds``)."""
        return self.lexical.store_count() == 0

    def require_content(self) -> None:
        """Raise ``EmptyIndex`` when there is nothing to search."""
        if self.is_empty():
            raise EmptyIndex(f"the collection {self.collection!r} is empty: add documents first "
                             "(`rag ingest PATH`, or POST /v1/documents on a running service)")
