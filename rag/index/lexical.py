"""The BM25 index of one collection, kept in step with the chunk store (Chroma is the source of truth).

One ``LexicalIndex`` is shared by the retriever and the ingestor of a process. The ingestor feeds it the
chunks it writes; any other change to the store (another process or worker, a crash that left the
saved index behind) is found by ``sync``: a diff of chunk ids against the store, which fetches and
indexes only the missing chunks and drops the stale ones. Nothing is ever rebuilt from scratch unless
asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from rag.index.bm25 import BM25Index
from rag.index.lock import bm25_io, bm25_owner
from rag.settings import Settings
from rag.index.store import GET_PAGE, ChunkStore

log = logging.getLogger(__name__)


def bm25_text(text: str, meta: dict[str, Any]) -> str:
    """What BM25 indexes for a chunk: titles carry words users ask with ("the Legieć analysis")."""
    return f"{meta.get('title', '')}\n{text}"


@dataclass
class SyncStats:
    added: int = 0
    removed: int = 0
    seconds: float = 0.0


class LexicalIndex:
    """Thread-safe owner of a collection's BM25 index: load, sync with the store, update, save."""

    def __init__(self, settings: Settings, store: ChunkStore) -> None:
        self.settings = settings
        self.store = store
        self.folder = settings.bm25_dir
        self.owner = bm25_owner(self.folder)  # only the owning process saves the folder (rag.index.lock)
        self._lock = threading.RLock()
        self._index: BM25Index | None = None
        self._version: tuple[int, str | None] = (-1, None)  # the store's (count, newest id) when last asked
        self._synced: tuple[int, str | None] | None = None  # ... and when the index was last synced
        self._checked_at = float("-inf")

    # -- reading --------------------------------------------------------------------------------
    def current(self) -> BM25Index:
        """The index, synced when the store changed (checked at most every ``bm25_refresh_seconds``).

        It changes in place: read it through ``search``, or while holding this object's lock."""
        with self._lock:
            version = self._store_version()
            if self._index is None or version != self._synced or len(self._index) != version[0]:
                self.sync()
            assert self._index is not None
            return self._index

    def search(self, query: str, k: int, docs: Collection[str] | None = None,
               exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, score), read under the lock: uploads, deletes and syncs change the index in place,
        and a search that ran beside them saw half-made changes (IndexError, one id twice). ``docs``: only chunks of
        these documents; ``exclude``: never these chunks (both applied before the top-k cut)."""
        with self._lock:
            return self.current().search(query, k, docs, exclude)

    def ids_of(self, docs: Collection[str]) -> list[str]:
        """The chunk ids of documents ``docs`` (from the index, synced with the store like a search)."""
        with self._lock:
            return self.current().ids_of(docs)

    def count_of(self, docs: Collection[str]) -> int:
        """About how many chunks documents ``docs`` have (``BM25Index.count_of``), cheaper than ``ids_of``."""
        with self._lock:
            return self.current().count_of(docs)

    def size(self) -> int:
        with self._lock:
            return len(self.current())

    def store_count(self) -> int:
        """Chunks in the store, asked at most every ``bm25_refresh_seconds`` (one round trip in server mode)."""
        return self._store_version()[0]

    def store_version(self) -> tuple[int, str | None]:
        """The store's (chunk count, newest id), asked at most every ``bm25_refresh_seconds``: changes with any write."""
        return self._store_version()

    def _store_version(self) -> tuple[int, str | None]:
        now = time.monotonic()
        with self._lock:
            if now - self._checked_at >= self.settings.bm25_refresh_seconds:
                self._version = self.store.version()
                self._checked_at = now
            return self._version

    # -- updating -------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index chunks this process just wrote to the store."""
        with self._lock:
            self._loaded().add(ids, texts)

    def remove(self, ids: Sequence[str]) -> None:
        with self._lock:
            self._loaded().remove(ids)

    def sync(self, save: bool = True) -> SyncStats:
        """Make the index hold exactly the store's chunks, touching only the difference."""
        started = time.perf_counter()
        with self._lock:
            index = self._loaded()
            stored = self.store.all_ids()
            wanted = set(stored)
            stale = [cid for cid in index.ids if cid not in wanted]
            missing = [cid for cid in stored if cid not in index.where]
            stats = SyncStats(removed=index.remove(stale))
            for start in range(0, len(missing), GET_PAGE):
                page = self.store.get(missing[start : start + GET_PAGE])
                index.add([cid for cid, _, _ in page], [bm25_text(text, meta) for _, text, meta in page])
                stats.added += len(page)
            self._version = self._synced = (len(stored), stored[-1] if stored else None)
            self._checked_at = time.monotonic()
            if save:
                self._save(index)
            stats.seconds = time.perf_counter() - started
            if stats.added or stats.removed:
                log.info("bm25 synced", extra={"added": stats.added, "removed": stats.removed,
                                               "chunks": len(index), "seconds": round(stats.seconds, 3)})
            return stats

    def rebuild(self) -> SyncStats:
        """Forget the saved index and index the whole store again (after a restore)."""
        with self._lock:
            self._index = BM25Index()
            return self.sync()

    def save(self) -> None:
        with self._lock:
            if self._index is not None:
                self._save(self._index)

    def _save(self, index: BM25Index) -> None:
        if self.owner:
            with bm25_io(self.folder, exclusive=True):
                index.save(self.folder)

    def _loaded(self) -> BM25Index:
        if self._index is None:
            with bm25_io(self.folder, exclusive=False):
                self._index = BM25Index.load(self.folder) or BM25Index()
        return self._index
