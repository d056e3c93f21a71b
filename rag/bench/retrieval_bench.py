"""Search latency per mode against the bare query embedding, and hit@5 on gold questions."""

from __future__ import annotations

from typing import Any

from rag.bench.measure import ratio, summarize_ms, timed
from rag.evaluation.gold import GoldQuestion
from rag.evaluation.metrics import retrieval_metrics
from rag.retrieval import Retriever
from rag.settings import RetrievalMode

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
    return out
