"""Dense + BM25 retrieval fused by reciprocal rank fusion."""

from __future__ import annotations

import logging
import threading
import time

from rag.embedding import Embedder, get_embedder
from rag.errors import EmptyIndex
from rag.retrieval.bm25 import BM25Index, fingerprint, rrf_fuse
from rag.retrieval.passage import Passage
from rag.settings import RetrievalMode, Settings
from rag.store import ChunkStore

log = logging.getLogger(__name__)


class Retriever:
    """Searches one collection. The BM25 index is loaded or rebuilt once, then reused across queries."""

    def __init__(self, settings: Settings, store: ChunkStore | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store or ChunkStore(settings)
        self.embedder = embedder or get_embedder(settings)
        self._bm25: BM25Index | None = None
        self._bm25_lock = threading.Lock()
        self._checked_at = 0.0
        self._count = -1

    # -- BM25 lifecycle -------------------------------------------------------------------------
    def bm25(self) -> BM25Index:
        """The BM25 index in step with the store; checked against the store at most every few seconds."""
        now = time.monotonic()
        if self._bm25 is not None and now - self._checked_at < self.settings.bm25_refresh_seconds:
            return self._bm25
        with self._bm25_lock:
            count = self.store.count()
            if self._bm25 is None or count != self._count:
                self._bm25 = self._load_or_build()
                self._count = count
            self._checked_at = now
            return self._bm25

    def refresh(self) -> BM25Index:
        """Bring BM25 in step with the store now (after this process changed it)."""
        with self._bm25_lock:
            self._bm25 = self._load_or_build()
            self._count = self.store.count()
            self._checked_at = time.monotonic()
            return self._bm25

    def _load_or_build(self) -> BM25Index:
        ids = self.store.all_ids()
        fp = fingerprint(ids)
        folder = self.settings.bm25_dir
        loaded = BM25Index.load(folder)
        if loaded is not None and loaded.fingerprint == fp:
            return loaded
        index = build_bm25(self.store)
        index.save(folder)
        log.info("bm25 index rebuilt", extra={"chunks": len(index)})
        return index

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, mode: RetrievalMode | None = None) -> list[Passage]:
        """Top ``k`` passages for ``query``; ranks start at 1."""
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        if self.store.count() == 0:
            raise EmptyIndex(f"the collection {self.settings.collection!r} is empty: run `rag ingest` first")
        pool = max(self.settings.candidate_k, k)
        dense: list[Passage] = []
        lexical: list[tuple[str, float]] = []
        if mode in ("dense", "hybrid"):
            dense = self._dense(query, pool)
        if mode in ("bm25", "hybrid"):
            lexical = self.bm25().search(query, pool)
        if mode == "dense":
            ranked = [(p.chunk_id, p.dense_score or 0.0) for p in dense]
        elif mode == "bm25":
            ranked = lexical
        else:
            ranked = rrf_fuse([[p.chunk_id for p in dense], [cid for cid, _ in lexical]], self.settings.rrf_k)
        return self._materialize(ranked[:k], dense, dict(lexical))

    def _dense(self, query: str, k: int) -> list[Passage]:
        vector = self.embedder.embed_query(query)
        out = []
        for cid, text, meta, sim in self.store.query(vector, k):
            passage = Passage.from_record(cid, text, meta)
            passage.dense_score = sim
            out.append(passage)
        return out

    def _materialize(self, ranked: list[tuple[str, float]], dense: list[Passage], lexical: dict[str, float]) -> list[Passage]:
        known = {p.chunk_id: p for p in dense}
        missing = [cid for cid, _ in ranked if cid not in known]
        for cid, text, meta in self.store.get(missing) if missing else []:
            known[cid] = Passage.from_record(cid, text, meta)
        out = []
        for rank, (cid, score) in enumerate((r for r in ranked if r[0] in known), start=1):
            passage = known[cid]
            passage.score, passage.rank = score, rank
            passage.bm25_score = lexical.get(cid)
            out.append(passage)
        return out


def build_bm25(store: ChunkStore) -> BM25Index:
    """Build BM25 from the texts Chroma holds (the llama-index docstore is empty with Chroma)."""
    ids: list[str] = []
    texts: list[str] = []
    for cid, text, meta in store.iter_chunks():
        ids.append(cid)
        # Titles carry words users ask with ("the Legieć analysis").
        texts.append(f"{meta.get('title', '')}\n{text}")
    return BM25Index.build(ids, texts)
