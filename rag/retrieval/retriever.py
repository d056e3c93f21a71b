"""Dense + BM25 retrieval, fused by score or by rank (rag.retrieval.fusion)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rag.embedding import Embedder
from rag.index.bm25 import BM25Index, doc_of
from rag.index.chunk_index import ChunkIndex
from rag.index.store import previous_chunk_id
from rag.retrieval.filters import SearchFilter
from rag.retrieval.fusion import fuse
from rag.retrieval.passage import Passage
from rag.retrieval.query import asks_about_documents, checked_question
from rag.settings import RetrievalMode, Settings

log = logging.getLogger(__name__)
_SIDE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm25")
EXACT_LIMIT = 10_000  # a filter allowing at most this many chunks is searched exactly against their stored vectors
OVERFETCH_MAX = 1_000  # most neighbours asked of Chroma before a filter falls back to its `where`
CARD_MARGIN = 16  # extra neighbours asked for when document cards are left out


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
    def search(self, query: str, k: int | None = None, mode: RetrievalMode | None = None,
               where: SearchFilter | None = None) -> list[Passage]:
        """Top ``k`` passages for ``query``; ranks start at 1. Raises ``EmptyIndex`` on an empty collection.

        ``where`` limits the search to the documents it lets through, inside both searches (Chroma ``where`` and BM25
        rows), before their top-k cuts; it raises ``InvalidFilter`` when it names what the collection does not have."""
        query = checked_question(query, self.settings.max_question_chars)
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        self.index.require_content()
        docs = self.allowed_docs(where)
        if docs is not None and not docs:
            return []
        # Document cards compete only for questions about documents (who wrote, when published...).
        skip = frozenset() if asks_about_documents(query) else self.index.card_ids()
        pool = max(self.settings.candidate_k, k)
        dense: list[Passage] = []
        lexical: list[tuple[str, float]] = []
        # A name the query writes out is searched under the abbreviation its documents use (rag.index.aliases).
        query = self.index.aliases().abbreviate(query)
        # In hybrid mode BM25 runs on another core while the query is embedded (torch releases the GIL).
        pending = _SIDE.submit(self._lexical, query, pool, docs, skip) if mode == "hybrid" else None
        if mode in ("dense", "hybrid"):
            dense = self._dense(query, pool, docs, skip)
        if pending is not None:
            lexical = pending.result()
        elif mode == "bm25":
            lexical = self._lexical(query, pool, docs, skip)
        if mode == "dense":
            ranked = [(p.chunk_id, p.dense_score or 0.0) for p in dense]
        elif mode == "bm25":
            ranked = lexical
        else:
            ranked = fuse(self.settings.fusion, [[(p.chunk_id, p.dense_score or 0.0) for p in dense], lexical],
                          self.settings.rrf_k)
        return self._materialize(ranked[:k], dense, dict(lexical))

    def preceding_texts(self, passages: list[Passage]) -> dict[tuple[str, int], str]:
        """The text of the chunk before each passage, keyed by (document, chunk index), for the passages whose chunk
        before is not among ``passages``: a chunk that opens "The group has averaged 14 attacks per month" names the
        group only in the chunk before it. One store read."""
        shown = {p.chunk_id for p in passages}
        wanted = [cid for p in passages if (cid := previous_chunk_id(p.chunk_id)) and cid not in shown]
        out: dict[tuple[str, int], str] = {}
        for _, text, meta in self.store.get(list(dict.fromkeys(wanted))) if wanted else []:
            out[(str(meta.get("doc_id", "")), int(meta.get("chunk_index", 0)))] = text
        return out

    def allowed_docs(self, where: SearchFilter | None) -> set[str] | None:
        """The ids of the documents ``where`` lets through (None: no filter, or one every document passes)."""
        if where is None or where.is_empty():
            return None
        cards = self.index.cards()
        docs = where.allowed(cards, self.index.collection)
        return None if len(docs) == len(cards) else docs

    def _lexical(self, query: str, k: int, docs: set[str] | None = None, skip: frozenset[str] = frozenset()) -> list[tuple[str, float]]:
        """BM25 over the query with the other names of anything it names ("ISKP" also finds "ISIS-K" passages, when
        the collection defines both)."""
        return self.lexical.search(self.index.aliases().expand(query), k, docs, skip)

    def _dense(self, query: str, k: int, docs: set[str] | None = None, skip: frozenset[str] = frozenset()) -> list[Passage]:
        """The ``k`` nearest chunks of the documents ``docs`` (None: all), never one of ``skip`` (card ids).

        A Chroma ``where`` clause costs a metadata scan (about 50 ms at 50k chunks, against 4 ms for a plain query), so
        a filter is applied the cheapest exact way: a few allowed chunks are scored directly against their stored
        vectors; many are found by asking Chroma for more neighbours than needed and keeping the allowed ones; only
        when that comes up short does Chroma filter with ``where``. Every way returns the k nearest allowed chunks."""
        vector = self.embedder.embed_query(query)
        if docs is None:
            rows = self._nearest(vector, k, lambda cid, meta: cid not in skip, k + min(len(skip), CARD_MARGIN))
        else:
            # Counted before listed: listing 12k ids costs as much as the search they would shortcut.
            count = self.lexical.count_of(docs)
            if count <= EXACT_LIMIT:
                rows = self._exact(vector, k, [cid for cid in self.lexical.ids_of(docs) if cid not in skip])
            else:
                share = count / max(self.lexical.size(), 1)
                rows = self._nearest_allowed(vector, k, docs, skip, min(int(1.5 * k / share) + k, OVERFETCH_MAX))
                if len(rows) < k:
                    where: dict[str, Any] = {"doc_id": {"$in": sorted(docs)}}
                    if skip:
                        where = {"$and": [where, {"kind": {"$ne": "card"}}]}
                    rows = self.store.query(vector, k, where)
        out = []
        for cid, text, meta, sim in rows[:k]:
            passage = Passage.from_record(cid, text, meta)
            passage.dense_score = sim
            out.append(passage)
        return out

    def _nearest(self, vector: np.ndarray, k: int, keep: Callable[[str, dict[str, Any]], bool], n: int,
                 grow: bool = True) -> list[tuple[str, str, dict[str, Any], float]]:
        """The ``k`` nearest chunks that ``keep`` accepts among Chroma's ``n`` nearest; with ``grow``, ask for twice as
        many until ``k`` are kept or the collection is exhausted."""
        while True:
            got = self.store.query(vector, n)
            rows = [r for r in got if keep(r[0], r[2])]
            if len(rows) >= k or len(got) < n or not grow:
                return rows[:k]
            n *= 2

    def _nearest_allowed(self, vector: np.ndarray, k: int, docs: set[str], skip: frozenset[str],
                         n: int) -> list[tuple[str, str, dict[str, Any], float]]:
        """The ``k`` nearest chunks of ``docs`` among Chroma's ``n`` nearest (fewer when not enough are there). Ids
        first, the document read from the id: only the kept chunks' texts and metadata are fetched (at 117k chunks,
        reading back 276 neighbours' metadata made a filtered search twice as slow as an unfiltered one)."""
        nearest = self.store.nearest_ids(vector, n)
        kept = [(cid, sim) for cid, sim in nearest if cid not in skip and doc_of(cid) in docs][:k]
        by_id = {cid: (text, meta) for cid, text, meta in self.store.get([cid for cid, _ in kept])} if kept else {}
        return [(cid, *by_id[cid], sim) for cid, sim in kept if cid in by_id]

    def _exact(self, vector: np.ndarray, k: int, ids: list[str]) -> list[tuple[str, str, dict[str, Any], float]]:
        """The ``k`` chunks of ``ids`` nearest to ``vector``, scored against their stored vectors (exact)."""
        kept, matrix = self.store.vectors(ids)
        if not kept:
            return []
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(vector) or 1.0)
        sims = matrix @ vector / np.where(norms == 0, 1.0, norms)
        top = np.argsort(-sims, kind="stable")[:k]
        by_id = {cid: (text, meta) for cid, text, meta in self.store.get([kept[i] for i in top])}
        return [(kept[i], *by_id[kept[i]], float(sims[i])) for i in top if kept[i] in by_id]

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
