"""Chroma access: one collection of chunks, embedded or through a ``chroma run`` server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import EmbeddingModelMismatch, StoreUnavailable
from rag.index.lock import hold_store, release
from rag.settings import Settings

log = logging.getLogger(__name__)
GET_PAGE = 5000  # rows per collection.get() page when scanning everything
VECTOR_CACHE_SIZE = 20_000  # chunk vectors kept for filtered dense search (about 1.5 KiB each at 384-d)
ID_SEP = "::"
MODEL_KEY, DIM_KEY = "embed_model", "embed_dim"  # collection metadata: the embedding model of its vectors
REINDEX_HINT = ("re-index with `rag ingest --reindex PATH...` (drops this collection's chunks and embeds the documents "
                "again with the configured model), or set RAG_EMBED_MODEL_PATH back")


def chunk_id(doc_id: str, content_hash: str, index: int, total: int) -> str:
    """Deterministic chunk id ``doc::hash::index/total``.

    Re-ingesting the same content upserts instead of duplicating, and whether a document is
    stored completely can be told from ids alone (a run killed midway leaves fewer than total).
    """
    return f"{doc_id}{ID_SEP}{content_hash[:12]}{ID_SEP}{index:05d}/{total:05d}"


def parse_chunk_id(cid: str) -> tuple[str, str, int, int]:
    doc_id, short_hash, position = cid.rsplit(ID_SEP, 2)
    index, total = position.split("/")
    return doc_id, short_hash, int(index), int(total)


def previous_chunk_id(cid: str) -> str | None:
    """The id of the chunk before ``cid`` in its document (None for a document's first chunk)."""
    doc_id, short_hash, index, total = parse_chunk_id(cid)
    return f"{doc_id}{ID_SEP}{short_hash}{ID_SEP}{index - 1:05d}/{total:05d}" if index > 0 else None


@dataclass(frozen=True)
class ChunkPage:
    """One page of a scan: parallel lists (empty when the field was not asked for)."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    embeddings: np.ndarray | None = None


@dataclass(frozen=True)
class DocState:
    """What the store holds for one document, derived from chunk ids alone."""

    doc_id: str
    ids: list[str]

    def is_complete(self, content_hash: str) -> bool:
        """All chunks of exactly this content version are stored, and nothing else."""
        parsed = [parse_chunk_id(cid) for cid in self.ids]
        if not parsed or any(h != content_hash[:12] for _, h, _, _ in parsed):
            return False
        total = parsed[0][3]
        return len(self.ids) == total and {i for _, _, i, _ in parsed} == set(range(total))


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _http_client(settings: Settings) -> Any:
    """A Chroma ``HttpClient`` whose every call is bounded by ``settings.chroma_timeout``.

    chromadb (1.5) builds its httpx session with ``timeout=None`` and has no setting for it, so a server
    that accepts connections but never answers (frozen, overloaded, half-open) would hang callers forever.
    The client's constructor already makes untimed calls (tenant and database checks), so the server is
    first asked for a heartbeat with the timeout; then the session's timeout is set for everything after.
    """
    import chromadb
    import httpx

    host, port, timeout = settings.chroma_host or "127.0.0.1", settings.chroma_port, settings.chroma_timeout
    httpx.get(f"http://{host}:{port}/api/v2/heartbeat", timeout=timeout).raise_for_status()
    client = chromadb.HttpClient(host=host, port=port, settings=_chroma_settings())
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout)
    else:  # pragma: no cover - a chromadb upgrade changed its internals
        log.warning("cannot bound Chroma server calls with a timeout", extra={"chromadb_client": type(client).__name__})
    return client


def open_client(settings: Settings) -> tuple[Any, Path | None]:
    """A Chroma client for the configured store, and the lock this process now holds on it (None in server mode).

    Embedded: this process holds the folder until it exits (rag.index.lock); a second process is refused here."""
    import chromadb

    lock_path = None if settings.server_mode else hold_store(settings.chroma_dir)
    if settings.server_mode:
        return _http_client(settings), lock_path
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=_chroma_settings()), lock_path


def store_location(settings: Settings) -> str:
    return f"http://{settings.chroma_host}:{settings.chroma_port}" if settings.server_mode else str(settings.chroma_dir)


class ChunkStore:
    """The chunk collection. All writes pass explicit embeddings (Chroma must never embed itself)."""

    def __init__(self, settings: Settings) -> None:
        from cachetools import LRUCache

        self.settings = settings
        self.lock_path: Path | None = None
        self._vector_cache: LRUCache[str, np.ndarray] = LRUCache(maxsize=VECTOR_CACHE_SIZE)
        self._vector_lock = threading.Lock()
        try:
            self.client, self.lock_path = open_client(settings)
            self.collection = self._open()
        except StoreUnavailable:
            raise
        except Exception as exc:  # chromadb raises many types for connection failures
            raise StoreUnavailable(f"cannot open Chroma collection {settings.collection!r} at {self.location}: {exc}") from exc

    def _open(self) -> Any:
        from rag.embedding import model_identity

        # The configured model is recorded when the collection is created (an existing one keeps its record).
        return self.client.get_or_create_collection(
            self.settings.collection, metadata={"hnsw:space": "cosine", MODEL_KEY: model_identity(self.settings)},
            embedding_function=None,
        )

    # -- the embedding model of the vectors -------------------------------------------------------
    def model(self) -> tuple[str | None, int | None]:
        """(model identity, dimension) recorded for this collection's vectors (None: not recorded)."""
        meta = self.collection.metadata or {}
        return meta.get(MODEL_KEY), meta.get(DIM_KEY)

    def bind_model(self, name: str, dimension: Callable[[], int]) -> None:
        """Refuse to go on when the vectors come from another model than ``name``; record ``name`` and its dimension.

        The identities are compared first, so a mismatch is found without loading the configured model
        (``dimension`` loads it). A collection from before models were recorded is checked by its vectors' size.
        """
        stored, stored_dim = self.model()
        label = f"{stored} ({stored_dim}-d)" if stored_dim else str(stored)
        if stored is not None and stored != name:
            raise EmbeddingModelMismatch(f"collection {self.settings.collection!r} holds vectors of the embedding model "
                                         f"{label}, but the configured model is {name}: {REINDEX_HINT}")
        dim = dimension()
        have = stored_dim if stored_dim is not None else self._vector_size()
        if have is not None and have != dim:
            raise EmbeddingModelMismatch(f"collection {self.settings.collection!r} holds {have}-d vectors of another embedding "
                                         f"model ({stored or 'not recorded'}), but the configured model {name} makes {dim}-d ones: {REINDEX_HINT}")
        if (stored, stored_dim) != (name, dim):
            self.record_model(name, dim)

    def record_model(self, name: str, dimension: int | None) -> None:
        """Record the embedding model of this collection's vectors (a restore records the backup's)."""
        meta = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
        meta[MODEL_KEY] = name
        if dimension is not None:
            meta[DIM_KEY] = dimension
        self.collection.modify(metadata=meta)

    def _vector_size(self) -> int | None:
        got = self.collection.get(limit=1, include=["embeddings"])
        embeddings = got.get("embeddings")
        return len(embeddings[0]) if embeddings is not None and len(embeddings) else None

    def reset(self) -> None:
        """Drop the collection (every chunk and its model record) and create it empty for the configured model."""
        self.client.delete_collection(self.settings.collection)
        self.collection = self._open()
        with self._vector_lock:
            self._vector_cache.clear()

    def release(self) -> None:
        """Let another process open the embedded folder (this object must not be used afterwards)."""
        if self.lock_path is not None:
            release(self.lock_path)
            self.lock_path = None

    @property
    def location(self) -> str:
        return store_location(self.settings)

    def count(self) -> int:
        return int(self.collection.count())

    def version(self) -> tuple[int, str | None]:
        """(chunk count, id of the newest chunk): changes whenever chunks are added or replaced.

        Chroma keeps rows in insertion order and a changed document gets new ids (they carry its content
        hash), so a replacement with the same number of chunks still moves the newest id.
        """
        count = self.count()
        if not count:
            return 0, None
        ids = self.collection.get(include=[], limit=1, offset=count - 1)["ids"]
        return count, (ids[0] if ids else None)

    def heartbeat(self) -> bool:
        try:
            self.client.heartbeat()
            return True
        except Exception:
            return False

    def upsert(self, ids: list[str], embeddings: np.ndarray, texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        self.collection.upsert(ids=ids, embeddings=embeddings.tolist(), documents=texts, metadatas=metadatas)

    def delete_ids(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), GET_PAGE):
            self.collection.delete(ids=list(ids[start : start + GET_PAGE]))

    def pages(self, include: Sequence[str] = (), where: dict[str, Any] | None = None) -> Iterator[ChunkPage]:
        """Every chunk (matching ``where``) in pages of ``GET_PAGE`` rows; ``include`` names the fields to fetch
        (``documents``, ``metadatas``, ``embeddings``). The one scan behind export, BM25 sync and listing."""
        offset = 0
        while True:
            got = self.collection.get(include=list(include), where=where, limit=GET_PAGE, offset=offset)  # type: ignore[arg-type]
            ids = list(got["ids"])
            embeddings = got.get("embeddings")
            yield ChunkPage(ids, list(got.get("documents") or []), [dict(m) for m in got.get("metadatas") or []],
                            np.asarray(embeddings, dtype=np.float32) if embeddings is not None and len(ids) else None)
            if len(ids) < GET_PAGE:
                return
            offset += GET_PAGE

    def all_ids(self) -> list[str]:
        return [cid for page in self.pages() for cid in page.ids]

    def doc_states(self) -> dict[str, DocState]:
        by_doc: dict[str, list[str]] = {}
        for cid in self.all_ids():
            by_doc.setdefault(parse_chunk_id(cid)[0], []).append(cid)
        return {d: DocState(d, ids) for d, ids in by_doc.items()}

    def ids_of_doc(self, doc_id: str) -> list[str]:
        return list(self.collection.get(where={"doc_id": doc_id}, include=[])["ids"])

    def documents(self, where: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One metadata record per document (from its first chunk), of the documents matching ``where``."""
        first: dict[str, Any] = {"chunk_index": 0}
        docs = [m for page in self.pages(("metadatas",), where={"$and": [first, where]} if where else first) for m in page.metadatas]
        return sorted(docs, key=lambda m: m.get("doc_id", ""))

    def update_metadata(self, ids: Sequence[str], changes: dict[str, Any]) -> None:
        """Set ``changes`` in the metadata of chunks ``ids`` (text and vectors untouched)."""
        for start in range(0, len(ids), GET_PAGE):
            got = self.collection.get(ids=list(ids[start : start + GET_PAGE]), include=["metadatas"])
            if got["ids"]:
                self.collection.update(ids=list(got["ids"]), metadatas=[{**m, **changes} for m in got["metadatas"] or []])

    def vectors(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The stored embeddings of chunks ``ids``: (the ids found, in order; their vectors as rows), kept in a bounded
        cache: a chunk id names one content and one model's vector (a re-index resets the cache)."""
        with self._vector_lock:
            missing = [cid for cid in ids if cid not in self._vector_cache]
        for start in range(0, len(missing), GET_PAGE):
            got = self.collection.get(ids=list(missing[start : start + GET_PAGE]), include=["embeddings"])
            with self._vector_lock:
                for cid, vec in zip(got["ids"], got["embeddings"] if got["embeddings"] is not None else [], strict=True):
                    self._vector_cache[cid] = np.asarray(vec, dtype=np.float32)
        with self._vector_lock:
            found = [(cid, self._vector_cache[cid]) for cid in ids if cid in self._vector_cache]
        if not found:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [cid for cid, _ in found], np.vstack([vec for _, vec in found])

    def get(self, ids: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        by_id = {i: (i, t, m) for i, t, m in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)}
        return [by_id[i] for i in ids if i in by_id]

    def nearest_ids(self, embedding: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest chunk ids with their cosine similarity, without their texts and metadata: reading
        those back is most of a query's cost when many neighbours are asked for (a filter's overfetch)."""
        if k <= 0:
            return []
        res = self.collection.query(query_embeddings=[embedding.tolist()], n_results=k, include=["distances"])
        return [(i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]

    def query(self, embedding: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, str, dict[str, Any], float]]:
        """Nearest chunks as (id, text, metadata, cosine similarity); fewer than ``k`` when the collection is smaller.
        ``where`` (a Chroma metadata filter) is applied inside the search: the k nearest of the matching chunks.

        No count() first: Chroma clamps ``n_results`` itself, and counting costs more than the query at 100k chunks.
        """
        if k <= 0:
            return []
        res = self.collection.query(
            query_embeddings=[embedding.tolist()], n_results=k, where=where, include=["documents", "metadatas", "distances"]
        )
        return [
            (i, t, m, 1.0 - float(d))
            for i, t, m, d in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True)
        ]
