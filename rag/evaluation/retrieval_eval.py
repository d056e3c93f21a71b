"""Retrieval-only evaluation: needs no LLM, runs in seconds, used by the gate and the ablation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rag.evaluation.gold import GoldQuestion
from rag.evaluation.metrics import mean, percentile, retrieval_metrics
from rag.retrieval import Retriever
from rag.settings import RetrievalMode

EVAL_DEPTH = 10


@dataclass
class RetrievalRun:
    mode: str
    per_question: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        keys = [k for k in self.per_question[0]["metrics"]] if self.per_question else []
        out = {k: mean([q["metrics"][k] for q in self.per_question]) for k in keys}
        latencies = [q["latency_ms"] for q in self.per_question]
        out["search_p50_ms"] = percentile(latencies, 50)
        out["search_p95_ms"] = percentile(latencies, 95)
        out["questions"] = float(len(self.per_question))
        filtered = [q["filter_leaks"] for q in self.per_question if "filter_leaks" in q]
        if filtered:
            out["filter_leaks"] = float(sum(filtered))  # passages outside the filter, over all filtered questions
        return out


def evaluate_retrieval(retriever: Retriever, gold: list[GoldQuestion], mode: RetrievalMode) -> RetrievalRun:
    """Search every answerable gold question and score the ranked passages."""
    run = RetrievalRun(mode=mode)
    for q in gold:
        if not q.answerable:
            continue
        where = q.search_filter()
        started = time.perf_counter()
        passages = retriever.search(q.question, k=EVAL_DEPTH, mode=mode, where=where)
        latency = (time.perf_counter() - started) * 1000
        metrics = retrieval_metrics([p.text for p in passages], [e.quote for e in q.evidence])
        row = {"id": q.id, "question": q.question, "metrics": metrics, "latency_ms": latency,
               "top": [{"doc_id": p.doc_id, "chunk_id": p.chunk_id, "score": p.score} for p in passages[:5]]}
        if where is not None:  # passages from documents outside the filter: must be 0
            allowed = retriever.allowed_docs(where)
            row["filter_leaks"] = sum(allowed is not None and p.doc_id not in allowed for p in passages)
        run.per_question.append(row)
    return run
