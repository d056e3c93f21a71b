"""The default generator: llama.cpp in-process, one model per process, generation serialized."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rag.errors import LLMUnavailable, ModelError
from rag.generation.backends.base import GenerationStats, Prompt
from rag.generation.model_files import ensure_model, verify_model
from rag.settings import Settings

log = logging.getLogger(__name__)


class LlamaCppGenerator:
    """Qwen2.5-Coder-1.5B-Instruct (GGUF) through llama-cpp-python. Not thread-safe, hence the lock."""

    name = "llamacpp"

    def __init__(self, settings: Settings) -> None:
        from llama_cpp import Llama

        self.settings = settings
        if settings.llm_model_path:
            path = Path(settings.llm_model_path)
            verify_model(path)
        else:
            path = ensure_model(settings.model_dir, progress=sys.stderr.isatty())
        started = time.perf_counter()
        try:
            self.llm = Llama(model_path=str(path), n_ctx=settings.llm_ctx, n_threads=settings.llm_threads, n_batch=256, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load model {path}: {exc}") from exc
        self.lock = threading.Lock()
        # Free the model before interpreter teardown; llama-cpp's own finalizer fails once modules are gone.
        atexit.register(self.llm.close)
        log.info("llm loaded", extra={"path": str(path), "seconds": round(time.perf_counter() - started, 2)})

    def ready(self) -> bool:
        return True

    def stream(self, prompt: Prompt, max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        with self.lock:  # waiting here is queueing, not generating: the deadline starts once we hold the model
            started = time.perf_counter()
            deadline = started + self.settings.llm_timeout
            try:
                chunks = self.llm.create_chat_completion(
                    messages=prompt.messages, max_tokens=max_tokens, temperature=temperature, stream=True
                )
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if not piece:
                        continue
                    if not stats.completion_tokens:
                        stats.first_token_ms = (time.perf_counter() - started) * 1000
                    stats.completion_tokens += 1
                    yield piece
                    if time.perf_counter() > deadline:
                        raise LLMUnavailable(f"generation exceeded {self.settings.llm_timeout:.0f}s")
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise LLMUnavailable(f"llama.cpp failed: {exc}") from exc
            finally:
                stats.prompt_tokens = max(int(self.llm.n_tokens) - stats.completion_tokens, 0)

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))
