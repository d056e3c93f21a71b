"""The generator interface."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass
class GenerationStats:
    """Filled in by a generator while it streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_ms: float = 0.0


class Generator(Protocol):
    name: str

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        """Yield text pieces as they are generated; raise LLMUnavailable on failure."""
        ...

    def ready(self) -> bool:
        """True when the backend can take a request now."""
        ...
