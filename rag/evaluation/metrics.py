"""Deterministic metrics for retrieval, answers, abstention, citations and latency."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from rag.evaluation.text_match import contains_quote

RETRIEVAL_KS = (1, 3, 5, 10)


def relevance(passages: Sequence[str], quotes: Sequence[str]) -> list[bool]:
    """A passage is relevant when it contains any gold quote."""
    return [any(contains_quote(p, q) for q in quotes) for p in passages]


def retrieval_metrics(passages: Sequence[str], quotes: Sequence[str], ks: Sequence[int] = RETRIEVAL_KS) -> dict[str, float]:
    """hit@k, recall@k (share of gold quotes found in the top k), MRR and nDCG@10 for one question."""
    rel = relevance(passages, quotes)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hit@{k}"] = float(any(rel[:k]))
        found = sum(any(contains_quote(p, q) for p in passages[:k]) for q in quotes)
        out[f"recall@{k}"] = found / len(quotes) if quotes else 0.0
    first = next((i for i, r in enumerate(rel, start=1) if r), None)
    out["mrr"] = 1.0 / first if first else 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(rel[:10], start=1) if r)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(quotes), 10) + 1))
    out["ndcg@10"] = min(dcg / ideal, 1.0) if ideal else 0.0
    return out


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p50 = median of odd-sized lists)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float]:
    """Precision and recall of a boolean prediction (e.g. 'abstained' against 'unanswerable')."""
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    pp, ap = sum(predicted), sum(actual)
    return (tp / pp if pp else 1.0, tp / ap if ap else 1.0)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance a positive scores above a negative (ties count half); 0.5 if undefined."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return 0.5
    ordered = sorted(neg)
    wins = sum(bisect.bisect_left(ordered, p) + 0.5 * (bisect.bisect_right(ordered, p) - bisect.bisect_left(ordered, p)) for p in pos)
    return wins / (len(pos) * len(neg))
