"""A scripted generator for tests: replies chosen in advance, streamed word by word through the real seam.

It lets tests pin what otherwise depends on the model's mood: a reply verification will change, a reply it
keeps, a backend failure midway (for the extractive fallback), a slow stream (for queueing and disconnects).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from rag.errors import LLMUnavailable
from rag.generation.backends.base import GenerationStats, Prompt

Reply = str | Callable[[Prompt], str]
DEFAULT_REPLY = "I don't know: the documents do not contain the answer."


class FakeGenerator:
    """Answers each prompt with the next scripted reply (the last one repeats).

    ``fail_after`` raises ``LLMUnavailable`` after that many pieces; ``delay`` sleeps before each piece.
    ``prompts`` records every prompt received, so tests can assert what the model was shown.
    """

    name = "fake"

    def __init__(self, replies: Sequence[Reply] = (DEFAULT_REPLY,), *, fail_after: int | None = None,
                 delay: float = 0.0, is_ready: bool = True) -> None:
        self.replies = list(replies) or [DEFAULT_REPLY]
        self.fail_after = fail_after
        self.delay = delay
        self.is_ready = is_ready
        self.prompts: list[Prompt] = []
        self._lock = threading.Lock()  # like the real model: one generation at a time

    def ready(self) -> bool:
        return self.is_ready

    def stream(self, prompt: Prompt, max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        with self._lock:
            reply = self.replies[min(len(self.prompts), len(self.replies) - 1)]
            self.prompts.append(prompt)
            text = reply(prompt) if callable(reply) else reply
            started = time.perf_counter()
            stats.prompt_tokens = sum(len(m["content"].split()) for m in prompt.messages)
            for i, piece in enumerate(re.findall(r"\S+\s*|\s+", text)):
                if self.fail_after is not None and i >= self.fail_after:
                    raise LLMUnavailable("the fake generator failed on purpose")
                if self.delay:
                    time.sleep(self.delay)
                if not stats.completion_tokens:
                    stats.first_token_ms = (time.perf_counter() - started) * 1000
                stats.completion_tokens += 1
                yield piece
