"""The LLM-free backend: the retrieved sentence closest to the question, cited. Also the fallback when an LLM fails."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rag.embedding import Embedder
from rag.generation.answer import ABSTENTION
from rag.generation.backends.base import GenerationStats, Prompt
from rag.generation.prompt import ContextPassage
from rag.text import content_terms, split_sentences

LEXICAL_WEIGHT = 0.3
MIN_WORDS = 4  # shorter "sentences" are headings and fragments


def extractive_answer(question: str, context: list[ContextPassage], embedder: Embedder, min_score: float) -> tuple[str, float]:
    """``("sentence [n]", score)`` for the sentence closest to the question, or the abstention below ``min_score``."""
    candidates: list[tuple[int, str]] = []
    for c in context:
        for start, end in split_sentences(c.passage.text):
            sentence = " ".join(c.passage.text[start:end].split())
            if len(sentence.split()) >= MIN_WORDS:
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


class ExtractiveGenerator:
    """A generator that writes nothing of its own: one cited sentence from the passages, or the abstention."""

    name = "extractive"

    def __init__(self, embedder: Embedder, min_score: float) -> None:
        self.embedder = embedder
        self.min_score = min_score

    def ready(self) -> bool:
        return True

    def stream(self, prompt: Prompt, max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        text, _ = extractive_answer(prompt.question, prompt.context, self.embedder, self.min_score)
        yield text
