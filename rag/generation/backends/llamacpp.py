"""The default generator: llama.cpp in-process, one model per process, generation serialized."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import LLMUnavailable, ModelError
from rag.generation.backends.base import GenerationStats, Prompt
from rag.generation.backends.llamacpp_prefixes import PrefixStates, common_prefix
from rag.verification.judge import NO_WORDS, YES_WORDS, Check, check_messages, fixed_parts, yes_probability
from rag.generation.model_files import ensure_model, verify_model
from rag.settings import Settings

log = logging.getLogger(__name__)
PROMPT_BATCH = 256  # prompt tokens evaluated between two deadline checks (n_batch: no slower than llama.cpp alone)


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
        self.model_path = path
        self._formatter = _chat_formatter(self.llm)
        self._judge_ready = set()
        # Saved prefix states sit next to the model file, so every process using that model shares them.
        self.prefixes = PrefixStates(self.llm, _writable(path.parent / "states") or settings.model_dir / "states")
        self._yes = _first_token_ids(self.llm, YES_WORDS)
        self._no = _first_token_ids(self.llm, NO_WORDS)
        # Free the model before interpreter teardown; llama-cpp's own finalizer fails once modules are gone.
        atexit.register(self.llm.close)
        log.info("llm loaded", extra={"path": str(path), "seconds": round(time.perf_counter() - started, 2)})

    def ready(self) -> bool:
        return True

    def tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt tokens llama-cpp-python's chat completion builds for ``messages`` (same template)."""
        result = self._formatter(messages=messages)
        return list(self.llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True))

    def fixed_prefix(self, messages_a: list[dict[str, str]], messages_b: list[dict[str, str]]) -> list[int]:
        """The tokens two prompts with the same fixed part share: that fixed part, whatever the template."""
        a, b = self.tokens(messages_a), self.tokens(messages_b)
        return a[: common_prefix(a, b)]

    def warm(self, prefixes: list[tuple[list[int], bool]]) -> None:
        """Evaluate and save fixed prefixes ((tokens, keep on disk)) so later prompts start after them."""
        with self.lock:
            for tokens, persist in prefixes:
                self.prefixes.add(tokens, persist)

    def warm_judge(self) -> None:
        """Make the claim check's fixed instruction ready (evaluated once per model file, then loaded from disk). The
        claim-less check's is made on its first use: answers ask it only when the confidence model reads it."""
        with self.lock:
            self._ensure_judge(answers=False)

    def _ensure_judge(self, answers: bool) -> None:
        if answers not in self._judge_ready:
            self.prefixes.add(self.fixed_prefix(*fixed_parts(answers)), persist=True)
            self._judge_ready.add(answers)

    def judge(self, checks: list[Check]) -> list[float]:
        """P(yes) for each check, read from the next-token logits after the judge prompt."""
        if not checks:
            return []
        with self.lock:
            out = []
            for check in checks:
                self._ensure_judge(answers=check.claim is None)
                logits = self.prefixes.eval_suffix(self.tokens(check_messages(check)))
                top = logits.max()
                out.append(yes_probability(float(np.exp(logits[self._yes] - top).sum()), float(np.exp(logits[self._no] - top).sum())))
            return out

    _judge_ready: set[bool]  # the kinds of check (claim-less or not) whose fixed prefix is ready

    def _keep_instruction(self, leading: list[dict[str, str]]) -> None:
        """Save the answer instruction (everything before the last message) as a fixed prefix, once."""
        if leading and leading != self._instruction:
            self._instruction = leading
            ends = [{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]
            self.prefixes.add(self.fixed_prefix(leading + ends[0], leading + ends[1]))

    _instruction: list[dict[str, str]] | None = None

    def stream(self, prompt: Prompt, max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        with self.lock:  # waiting here is queueing, not generating: the deadline starts once we hold the model
            started = time.perf_counter()
            deadline = started + self.settings.llm_timeout
            self._keep_instruction(prompt.messages[:-1])
            tokens = self.tokens(prompt.messages)
            self.prefixes.restore_for(tokens)
            try:
                self._evaluate_prompt(tokens, deadline)
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

    def _evaluate_prompt(self, tokens: list[int], deadline: float) -> None:
        """Evaluate the prompt (all but its last token) in batches, checking the deadline between them.

        llama.cpp evaluates a whole prompt inside its first step with no way to stop it, so a long prompt on a busy
        CPU could take far longer than ``RAG_LLM_TIMEOUT`` before the first token was even checked. Evaluated here,
        the cache holds all but the last token, which ``create_chat_completion`` then reuses (it keeps the longest
        common prefix and evaluates only the rest).
        """
        keep = min(common_prefix(self.prefixes.cached(), tokens), len(tokens) - 1)
        self.llm.n_tokens = keep
        for start in range(keep, len(tokens) - 1, PROMPT_BATCH):
            if time.perf_counter() > deadline:
                raise LLMUnavailable(f"prompt evaluation exceeded {self.settings.llm_timeout:.0f}s")
            self.llm.eval(tokens[start : min(start + PROMPT_BATCH, len(tokens) - 1)])
        if time.perf_counter() > deadline:
            raise LLMUnavailable(f"prompt evaluation exceeded {self.settings.llm_timeout:.0f}s")

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def _writable(folder: Path) -> Path | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return folder
    except OSError:
        return None


def _chat_formatter(llm: Any) -> Any:
    """The GGUF's own chat template, as llama-cpp-python applies it in ``create_chat_completion``."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ModelError("the model file has no chat template")
    eos = llm.detokenize([llm.token_eos()]).decode("utf-8", "ignore")
    bos = llm.detokenize([llm.token_bos()]).decode("utf-8", "ignore") if llm.token_bos() >= 0 else ""
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, stop_token_ids=[llm.token_eos()])


def _first_token_ids(llm: Any, words: tuple[str, ...]) -> list[int]:
    """The ids of the first token of each spelling ("yes", " Yes"...), without duplicates."""
    return sorted({int(llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0]) for w in words})
