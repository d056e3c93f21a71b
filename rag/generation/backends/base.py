"""The generator interface: a prompt in, text pieces out as they are generated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rag.generation.prompt import ContextPassage


@dataclass(frozen=True)
class Prompt:
    """What a generator is asked: the chat messages, and the question and numbered passages they were built from."""

    messages: list[dict[str, str]]
    question: str
    context: list[ContextPassage] = field(default_factory=list)


@dataclass
class GenerationStats:
    """Filled in by a generator while it streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_ms: float = 0.0


class Generator(Protocol):
    name: str

    def stream(self, prompt: Prompt, max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        """Yield text pieces as they are generated; raise LLMUnavailable on failure."""
        ...

    def ready(self) -> bool:
        """True when the backend can take a request now."""
        ...
