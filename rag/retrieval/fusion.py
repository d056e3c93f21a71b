"""Fusing the dense and BM25 result lists into one ranking.

Two ways, chosen by the ``fusion`` setting:

- ``rrf`` (reciprocal rank fusion) scores a passage by its ranks alone: 1/(k + rank) summed over the lists. A passage
  BM25 puts far ahead of everything else counts no more than one it ranks first by a hair, and a passage only one
  list holds is easily buried under passages both lists hold at middling ranks.
- ``dbsf`` (distribution-based score fusion) keeps the scores: each list's scores are scaled by that list's own
  spread (mean ± 3 standard deviations maps to 0..1), so BM25's unbounded scores and cosine similarities become
  comparable, then a passage's scaled scores are summed. A clear winner of one list keeps its lead.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from rag.settings import Fusion

SPREAD = 3.0  # standard deviations either side of the mean that map to 0..1 in score fusion


def rrf_fuse(rankings: Sequence[Sequence[str]], k: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return _ordered(scores)


def dbsf_fuse(scored: Sequence[Sequence[tuple[str, float]]]) -> list[tuple[str, float]]:
    """Distribution-based score fusion: each list's scores scaled to 0..1 by its mean ± 3σ, then summed per id.

    A list with one score, or with all scores equal, gives each of its ids 0.5: it says they are found, not how well."""
    scores: dict[str, float] = {}
    for ranking in scored:
        values = [score for _, score in ranking]
        if not values:
            continue
        mean = statistics.fmean(values)
        sigma = statistics.pstdev(values) if len(values) > 1 else 0.0
        low, width = mean - SPREAD * sigma, 2 * SPREAD * sigma
        for cid, score in ranking:
            scaled = 0.5 if width == 0 else min(max((score - low) / width, 0.0), 1.0)
            scores[cid] = scores.get(cid, 0.0) + scaled
    return _ordered(scores)


def fuse(method: Fusion, scored: Sequence[Sequence[tuple[str, float]]], rrf_k: int) -> list[tuple[str, float]]:
    """Fuse lists of (id, score), each best first, by ``method``."""
    if method == "rrf":
        return rrf_fuse([[cid for cid, _ in ranking] for ranking in scored], rrf_k)
    return dbsf_fuse(scored)


def _ordered(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Best first; ties by id, so a ranking never depends on dict order."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
