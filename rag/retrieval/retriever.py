"""Dense + BM25 retrieval fused by reciprocal rank fusion."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from rag.embedding import Embedder
from rag.index.bm25 import BM25Index
from rag.index.chunk_index import ChunkIndex
from rag.retrieval.passage import Passage
from rag.retrieval.query import checked_question
from rag.settings import RetrievalMode, Settings

log = logging.getLogger(__name__)
_SIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm25")


def rrf_fuse(rankings: list[list[str]], k: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


class Retriever:
    """Searches one collection: dense through Chroma, BM25 through the index's ``LexicalIndex``."""

    def __init__(self, settings: Settings, index: ChunkIndex, embedder: Embedder) -> None:
        self.settings = settings
        self.index = index
        self.store = index.store
        self.lexical = index.lexical
        self.embedder = embedder

    def bm25(self) -> BM25Index:
        """The BM25 index in step with the store (checked at most every ``bm25_refresh_seconds``)."""
        return self.lexical.current()

    def refresh(self) -> BM25Index:
        """Bring BM25 in step with the store now (after another process changed it)."""
        self.lexical.sync()
        return self.lexical.current()

    # -- search ---------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, mode: RetrievalMode | None = None) -> list[Passage]:
        """Top ``k`` passages for ``query``; ranks start at 1. Raises ``EmptyIndex`` on an empty collection."""
        query = checked_question(query, self.settings.max_question_chars)
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        self.index.require_content()
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
        return self.lexical.search(query, k)

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
