"""Dense + BM25 retrieval fused by reciprocal rank fusion."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from rag.embedding import Embedder, get_embedder
from rag.errors import EmptyIndex
from rag.retrieval.bm25 import BM25Index, rrf_fuse
from rag.retrieval.lexical import LexicalIndex
from rag.retrieval.passage import Passage
from rag.settings import RetrievalMode, Settings
from rag.store import ChunkStore

log = logging.getLogger(__name__)
_SIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm25")


class Retriever:
    """Searches one collection; the BM25 side is a ``LexicalIndex`` kept in step with the store."""

    def __init__(self, settings: Settings, store: ChunkStore | None = None, embedder: Embedder | None = None,
                 lexical: LexicalIndex | None = None) -> None:
        self.settings = settings
        self.store = store or ChunkStore(settings)
        self.embedder = embedder or get_embedder(settings)
        self.lexical = lexical or LexicalIndex(settings, self.store)

    def bm25(self) -> BM25Index:
        """The BM25 index in step with the store (checked at most every ``bm25_refresh_seconds``)."""
        return self.lexical.current()

    def refresh(self) -> BM25Index:
        """Bring BM25 in step with the store now (after another process changed it)."""
        self.lexical.sync()
        return self.lexical.current()

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, mode: RetrievalMode | None = None) -> list[Passage]:
        """Top ``k`` passages for ``query``; ranks start at 1."""
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        if self.lexical.store_count() == 0:
            raise EmptyIndex(f"the collection {self.settings.collection!r} is empty: run `rag ingest` first")
        pool = max(self.settings.candidate_k, k)
        dense: list[Passage] = []
        lexical: list[tuple[str, float]] = []
        # In hybrid mode BM25 runs on another core while the query is embedded (torch releases the GIL).
        pending = _SIDE.submit(self._lexical, query, pool) if mode == "hybrid" else None
        if mode in ("dense", "hybrid"):
            dense = self._dense(query, pool)
        if pending is not None:
            lexical = pending.result()
        elif mode == "bm25":
            lexical = self._lexical(query, pool)
        if mode == "dense":
            ranked = [(p.chunk_id, p.dense_score or 0.0) for p in dense]
        elif mode == "bm25":
            ranked = lexical
        else:
            ranked = rrf_fuse([[p.chunk_id for p in dense], [cid for cid, _ in lexical]], self.settings.rrf_k)
        return self._materialize(ranked[:k], dense, dict(lexical))

    def _lexical(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.bm25().search(query, k)

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
