"""The LLM-free backend: the best-supported sentence from the retrieved passages, cited."""

from __future__ import annotations

import numpy as np

from rag.embedding import Embedder
from rag.generation.answer import ABSTENTION
from rag.generation.prompt import ContextPassage
from rag.text import content_terms, split_sentences

LEXICAL_WEIGHT = 0.3


def extractive_answer(question: str, context: list[ContextPassage], embedder: Embedder, min_score: float) -> tuple[str, float]:
    """``("sentence [n]", score)`` for the sentence closest to the question, or the abstention below ``min_score``."""
    candidates: list[tuple[int, str]] = []
    for c in context:
        for start, end in split_sentences(c.passage.text):
            sentence = " ".join(c.passage.text[start:end].split())
            if len(sentence.split()) >= 4:
                candidates.append((c.n, sentence))
    if not candidates:
        return ABSTENTION, 0.0
    vectors = np.vstack([embedder.embed([question]), embedder.embed_cached([s for _, s in candidates])])
    q_terms = content_terms(question)
    best_score, best = -1.0, candidates[0]
    for (n, sentence), vector in zip(candidates, vectors[1:], strict=True):
        overlap = len(q_terms & content_terms(sentence)) / len(q_terms) if q_terms else 0.0
        score = float(vector @ vectors[0]) + LEXICAL_WEIGHT * overlap
        if score > best_score:
            best_score, best = score, (n, sentence)
    if best_score < min_score:
        return ABSTENTION, best_score
    return f"{best[1]} [{best[0]}]", best_score
