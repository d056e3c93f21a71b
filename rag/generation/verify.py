"""Checking a generated answer against its passages: citations, support, re-targeting, abstention.

A small model cites the wrong passage and sometimes answers from world knowledge. Each answer
sentence is kept only when a passage supports it: the words it adds beyond the question must
be in the passage, and every number it states must appear there too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.embedding import Embedder
from rag.generation.answer import ABSTENTION, Citation
from rag.generation.prompt import ContextPassage
from rag.text import CITATION_MARKER_PATTERN, citation_numbers, content_terms, entities, numbers, split_sentences, strip_citations

_ONE_MARKER = CITATION_MARKER_PATTERN.replace("(", "(?:", 1)  # same marker, no capture group
_MARKER_AFTER_STOP = re.compile(rf"([.!?])\s*({_ONE_MARKER}(?:\s*{_ONE_MARKER})*)")
SEMANTIC_MATCH = 0.8
_ABSTAIN_HINTS = (
    "don't know", "do not know", "not contain", "doesn't contain", "does not contain", "no information",
    "cannot answer", "can't answer", "not mentioned", "not provided", "not specified", "unable to answer",
    "does not say", "do not say", "don't say", "not stated",
)


@dataclass
class CheckedSentence:
    text: str
    cited: list[int]
    final: list[int] = field(default_factory=list)
    scores: dict[int, float] = field(default_factory=dict)

    @property
    def supported(self) -> bool:
        return bool(self.final)


@dataclass
class Verification:
    answer: str
    citations: list[Citation]
    abstained: bool
    sentences: list[CheckedSentence]
    notes: list[str] = field(default_factory=list)


def is_abstention(text: str) -> bool:
    low = text.lower().replace("’", "'")
    return any(h in low for h in _ABSTAIN_HINTS)


def split_cited_sentences(text: str) -> list[CheckedSentence]:
    """Answer sentences with the passage numbers cited in (or right after) each one."""
    out: list[CheckedSentence] = []
    text = _MARKER_AFTER_STOP.sub(r" \2\1", text)  # "fact.[3] Next" -> "fact [3]. Next"
    for start, end in split_sentences(text):
        piece = text[start:end]
        leading = re.match(rf"^\s*((?:{_ONE_MARKER}\s*)+)", piece)
        if leading and out:  # markers after the full stop belong to the previous sentence
            out[-1].cited.extend(_numbers_in(leading.group(1)))
            piece = piece[leading.end() :]
        body = " ".join(strip_citations(piece).split())
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        if body:
            out.append(CheckedSentence(body, _numbers_in(piece)))
    return out


def _numbers_in(text: str) -> list[int]:
    return citation_numbers(text)


def windows(passage_text: str) -> list[str]:
    """Windows of two consecutive sentences: support must be local, not stitched across a passage."""
    spans = split_sentences(passage_text) or [(0, len(passage_text))]
    return [passage_text[spans[i][0] : spans[min(i + 1, len(spans) - 1)][1]] for i in range(len(spans))]


def support(sentence: str, question: str, passage_text: str, similarities: list[float] | None = None) -> float:
    """How well one passage supports one answer sentence, in [0, 1].

    The words the sentence adds beyond the question (and every number and name it states) must
    sit together in one window; the lexical score is the share of those new words found in the best
    window. A window whose embedding is at least SEMANTIC_MATCH close to the sentence also
    counts (paraphrase), numbers still required. A sentence that adds nothing to the question
    is no answer and scores 0.
    """
    terms = content_terms(sentence)
    novel = terms - content_terms(question)
    if not novel:
        return 0.0
    claimed_numbers = numbers(sentence) - numbers(question)
    claimed_names = entities(sentence) - content_terms(question)
    best = 0.0
    for i, window in enumerate(windows(passage_text)):
        window_terms = content_terms(window)
        if claimed_numbers - numbers(window) or claimed_names - window_terms:
            continue
        best = max(best, len(novel & window_terms) / len(novel))
        if similarities is not None and similarities[i] >= SEMANTIC_MATCH:
            best = max(best, 1.0)
    return best


def verify(raw: str, question: str, context: list[ContextPassage], threshold: float, embedder: Embedder | None = None) -> Verification:
    """Keep supported sentences, move citations to the passage that supports them, abstain when nothing does."""
    by_n = {c.n: c for c in context}
    sentences = split_cited_sentences(raw)
    notes: list[str] = []
    if not raw.strip() or (is_abstention(raw) and not any(s.cited for s in sentences)):
        return Verification(ABSTENTION, [], True, sentences, ["model abstained"] if raw.strip() else ["empty output"])
    for s in sentences:
        bad = [n for n in s.cited if n not in by_n]
        if bad:
            notes.append(f"dropped out-of-range citation(s) {bad}")
        s.scores = {n: support(s.text, question, c.passage.text) for n, c in by_n.items()}
        valid = [n for n in dict.fromkeys(s.cited) if n in by_n and s.scores[n] >= threshold]
        if not valid and embedder is not None:
            # No cited passage holds the words: a paraphrase may still be supported. Embedding every window
            # costs most of verification, so it is done only for sentences that need it.
            sims = _similarities(s.text, context, embedder)
            s.scores = {n: support(s.text, question, c.passage.text, sims.get(n)) for n, c in by_n.items()}
            valid = [n for n in dict.fromkeys(s.cited) if n in by_n and s.scores[n] >= threshold]
        if valid:
            s.final = valid
        elif s.scores:
            best = max(s.scores, key=lambda n: (s.scores[n], -n))
            if s.scores[best] >= threshold and not is_abstention(s.text):
                s.final = [best]
                if s.cited:
                    notes.append(f"citation {s.cited} moved to [{best}]")
    kept = [s for s in sentences if s.supported and not is_abstention(s.text)]
    if not kept:
        return Verification(ABSTENTION, [], True, sentences, [*notes, "no sentence supported by the passages"])
    if len(kept) < len(sentences):
        notes.append(f"dropped {len(sentences) - len(kept)} unsupported sentence(s)")
    text = " ".join(_with_markers(s.text, s.final) for s in kept)
    return Verification(text, _citations(kept, by_n), False, sentences, notes)


def _with_markers(sentence: str, cited: list[int]) -> str:
    """``"It opened in 1932 [2]."``: markers go before the closing punctuation."""
    markers = "".join(f"[{n}]" for n in cited)
    body, end = (sentence[:-1], sentence[-1]) if sentence[-1:] in ".!?" else (sentence, ".")
    return f"{body.rstrip()} {markers}{end}"


def _similarities(sentence: str, context: list[ContextPassage], embedder: Embedder | None) -> dict[int, list[float]]:
    """Cosine similarity of the sentence to every window of every passage (one embedding batch)."""
    if embedder is None:
        return {}
    per_passage = {c.n: windows(c.passage.text) for c in context}
    flat = [w for ws in per_passage.values() for w in ws]
    sims = (embedder.embed_cached(flat) @ embedder.embed_query(sentence)).tolist() if flat else []
    out: dict[int, list[float]] = {}
    for n, ws in per_passage.items():
        out[n], sims = sims[: len(ws)], sims[len(ws) :]
    return out


def _citations(kept: list[CheckedSentence], by_n: dict[int, ContextPassage]) -> list[Citation]:
    out: dict[int, Citation] = {}
    for s in kept:
        for n in s.final:
            if n in out:
                continue
            p = by_n[n].passage
            q_start, q_end = best_sentence(s.text, p.text)
            out[n] = Citation(
                n=n, doc_id=p.doc_id, title=p.title, source=p.source, chunk_id=p.chunk_id,
                quote=" ".join(p.text[q_start:q_end].split()), start=p.start + q_start, end=p.start + q_end,
                score=round(s.scores.get(n, 0.0), 4),
            )
    return sorted(out.values(), key=lambda c: c.n)


def best_sentence(claim: str, passage_text: str) -> tuple[int, int]:
    """Span of the passage sentence sharing the most content words with ``claim``."""
    spans = split_sentences(passage_text) or [(0, len(passage_text))]
    terms = content_terms(claim)
    return max(spans, key=lambda sp: len(terms & content_terms(passage_text[sp[0] : sp[1]])))
