"""Search latency per mode against the bare query embedding, and hit@5 on gold questions."""

from __future__ import annotations

from typing import Any

from rag.bench.measure import ratio, summarize_ms, timed
from rag.evaluation.gold import GoldQuestion
from rag.evaluation.metrics import retrieval_metrics
from rag.retrieval import Retriever
from rag.retrieval.filters import SearchFilter
from rag.settings import RetrievalMode

FILTER_EVERY = 10  # the filtered search lets one document in this many through
MODES: tuple[RetrievalMode, ...] = ("dense", "bm25", "hybrid")
K = 5


def bench_retrieval(retriever: Retriever, gold: list[GoldQuestion]) -> dict[str, Any]:
    """For each mode: p50/p95 over the gold questions, ratio to the query-embedding p50, hit@5."""
    questions = [q for q in gold if q.answerable]
    retriever.search(questions[0].question, k=K)  # load BM25, warm caches
    chunks = retriever.store.count()
    embed_ms = [timed(lambda q=q: retriever.embedder.embed_query(q.question))[1] for q in questions]
    reference = summarize_ms(embed_ms)
    out: dict[str, Any] = {"chunks": chunks, "questions": len(questions), "query_embedding": reference, "modes": {}}
    for mode in MODES:
        latencies, hits = [], []
        for q in questions:
            passages, ms = timed(lambda q=q: retriever.search(q.question, k=K, mode=mode))
            latencies.append(ms)
            hits.append(retrieval_metrics([p.text for p in passages], [e.quote for e in q.evidence], ks=(K,))[f"hit@{K}"])
        stats = summarize_ms(latencies)
        out["modes"][mode] = {**stats, "ratio_p50": ratio(stats["p50_ms"], reference["p50_ms"]), f"hit@{K}": round(sum(hits) / len(hits), 3)}
    out["filtered"] = bench_filtered(retriever, questions, out["modes"]["hybrid"]["p50_ms"])
    return out


def bench_filtered(retriever: Retriever, questions: list[GoldQuestion], unfiltered_p50: float) -> dict[str, Any]:
    """Hybrid search limited to a tenth of the documents (always including the question's own), against the same
    search unfiltered in this run (target: p50 ratio <= 1.2); ``leaks`` counts passages outside the filter."""
    docs = sorted({str(d["doc_id"]) for page in retriever.store.pages(include=["metadatas"]) for d in page.metadatas})
    share = docs[:: FILTER_EVERY]
    latencies, hits, leaks = [], [], 0
    for q in questions:
        allowed = sorted(set(share) | {e.doc_id for e in q.evidence})
        where = SearchFilter.parse({"doc": allowed})
        passages, ms = timed(lambda q=q, where=where: retriever.search(q.question, k=K, mode="hybrid", where=where))
        latencies.append(ms)
        leaks += sum(p.doc_id not in allowed for p in passages)
        hits.append(retrieval_metrics([p.text for p in passages], [e.quote for e in q.evidence], ks=(K,))[f"hit@{K}"])
    stats = summarize_ms(latencies)
    return {**stats, "documents": len(docs), "allowed": len(share) + 1, "ratio_to_unfiltered": ratio(stats["p50_ms"], unfiltered_p50),
            f"hit@{K}": round(sum(hits) / len(hits), 3), "leaks": leaks}
