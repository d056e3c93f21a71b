"""The answer object shared by the CLI, the service and the evaluation harness."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rag.retrieval import Passage

ABSTENTION = "I don't know: the documents do not contain the answer."
# Answer.timings keys, in pipeline order (milliseconds); metrics, eval and bench all read these names.
STAGES = ("retrieve_ms", "context_ms", "generate_ms", "first_token_ms", "verify_ms", "first_sentence_ms", "total_ms")


@dataclass
class Citation:
    """A passage an answer sentence rests on; ``n`` is its number in the answer's [n] markers."""

    n: int
    doc_id: str
    title: str
    source: str
    chunk_id: str
    quote: str
    start: int
    end: int
    score: float


@dataclass
class Answer:
    """A verified answer with its citations and per-stage timings (milliseconds)."""

    question: str
    answer: str
    citations: list[Citation]
    abstained: bool
    backend: str
    confidence: float = 0.0  # calibrated probability that the answer (or the abstention) is right
    standalone_question: str = ""
    raw_answer: str = ""
    fallback_reason: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    signals: dict[str, float] = field(default_factory=dict)  # what the confidence was computed from
    notes: list[str] = field(default_factory=list)  # what verification changed, and why
    # When sources disagree: each value the answer states, with its citation number, source and date (see
    # rag.generation.conflicts.Side), ordered as ``prefer`` asks.
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, with_passages: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not with_passages:
            data.pop("passages")
        return data
