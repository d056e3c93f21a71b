"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, OpenAI) as the generator."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator

from rag.errors import LLMUnavailable, ModelError
from rag.generation.backends.base import GenerationStats, Prompt
from rag.settings import Settings
from rag.verification.judge import NO_WORDS, YES_WORDS, Check, check_messages, yes_probability

READY_TIMEOUT_S = 2.0
log = logging.getLogger(__name__)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def _without_urls(text: str, base_url: str | None) -> str:
    """``text`` with every URL (and the configured server address) replaced by ``<LLM server>``."""
    text = _URL.sub("<LLM server>", text)
    if base_url:
        host = re.sub(r"^[a-z]+://", "", base_url, flags=re.IGNORECASE).split("/", 1)[0]
        if host:
            text = text.replace(host, "<LLM server>")
    return text


class OpenAIGenerator:
    name = "openai"

    def __init__(self, settings: Settings) -> None:
        import openai

        if not settings.llm_base_url:
            raise ModelError("the openai backend needs RAG_LLM_BASE_URL (e.g. http://127.0.0.1:8080/v1)")
        self.settings = settings
        self._errors = (openai.APIError, openai.APIConnectionError, openai.APITimeoutError)
        self._timeouts = (openai.APITimeoutError,)
        self.client = openai.OpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout=settings.llm_timeout,
            max_retries=0,  # a retry would wait a second RAG_LLM_TIMEOUT before the fallback: one timeout means one
        )

    def ready(self) -> bool:
        """The server answers, or accepted the connection but is busy generating.

        llama_cpp.server answers ``GET /v1/models`` only between generations (one lock for both), so a
        read timeout means "busy", not "down"; a refused or failed connection means down.
        """
        import openai

        try:
            self.client.with_options(timeout=READY_TIMEOUT_S, max_retries=0).models.list()
            return True
        except openai.APITimeoutError:
            return True
        except self._errors:
            return False

    def judge(self, checks: list[Check]) -> list[float] | None:
        """P(yes) per check from the server's ``top_logprobs`` of the first answer token; None when it sends none."""
        import math

        out = []
        for check in checks:
            try:
                response = self.client.chat.completions.create(
                    model=self.settings.llm_model, messages=check_messages(check),  # type: ignore[arg-type]
                    max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=10,
                )
            except self._errors as exc:
                raise self._failure(exc) from exc
            choice = response.choices[0] if response.choices else None
            content = choice.logprobs.content if choice is not None and choice.logprobs is not None else None
            if not content:
                return None
            top = {t.token: math.exp(t.logprob) for t in content[0].top_logprobs or []}
            out.append(yes_probability(sum(top.get(w, 0.0) for w in YES_WORDS), sum(top.get(w, 0.0) for w in NO_WORDS)))
        return out

    def stream(self, prompt: Prompt, max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        """The server's pieces, all within one ``RAG_LLM_TIMEOUT`` from the request: the client's read timeout
        bounds the wait for the response to start (it is never retried), and a watchdog closes the stream at the
        deadline however steadily the server trickles tokens."""
        import httpx

        timeout = self.settings.llm_timeout
        started = time.perf_counter()
        pieces = 0
        expired = threading.Event()
        watchdog: threading.Timer | None = None
        response = None
        try:
            response = self.client.chat.completions.create(
                model=self.settings.llm_model,
                messages=prompt.messages,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                stream_options={"include_usage": True},
            )

            def expire(stream=response) -> None:  # type: ignore[no-untyped-def]
                expired.set()
                stream.close()  # the blocked read in the generating thread fails at once

            watchdog = threading.Timer(max(0.0, started + timeout - time.perf_counter()), expire)
            watchdog.daemon = True
            watchdog.start()
            finished = False
            for chunk in response:
                if expired.is_set():
                    break
                if chunk.usage:
                    stats.prompt_tokens = chunk.usage.prompt_tokens
                    stats.completion_tokens = chunk.usage.completion_tokens
                if not chunk.choices:
                    continue
                finished = finished or chunk.choices[0].finish_reason is not None
                piece = chunk.choices[0].delta.content
                if piece:
                    if not stats.first_token_ms:
                        stats.first_token_ms = (time.perf_counter() - started) * 1000
                    pieces += 1
                    yield piece
            if expired.is_set():
                raise self._timed_out()
            if not stats.completion_tokens:  # servers that ignore include_usage: one piece is about one token
                stats.completion_tokens = pieces
            if not finished:  # e.g. llama_cpp.server with interrupt_requests cut the stream for another request
                log.warning("LLM server ended the stream without a finish reason", extra={"url": self.settings.llm_base_url})
                raise LLMUnavailable("the LLM server ended the stream without a finish reason")
        except self._timeouts as exc:
            raise self._timed_out() from exc
        except (*self._errors, httpx.HTTPError, httpx.StreamError) as exc:  # httpx errors surface raw mid-stream
            if expired.is_set():
                raise self._timed_out() from exc
            raise self._failure(exc) from exc
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if response is not None:
                response.close()

    def _timed_out(self) -> LLMUnavailable:
        log.warning("LLM server timed out", extra={"url": self.settings.llm_base_url, "timeout_s": self.settings.llm_timeout})
        return LLMUnavailable(f"the LLM server timed out after {self.settings.llm_timeout:g}s (RAG_LLM_TIMEOUT)")

    def _failure(self, exc: Exception) -> LLMUnavailable:
        """The error answers carry (as ``fallback_reason``): what failed, never where; the URL goes to the log only."""
        log.warning("LLM server failed", extra={"url": self.settings.llm_base_url, "error": f"{type(exc).__name__}: {exc}"})
        return LLMUnavailable(f"the LLM server failed: {_without_urls(type(exc).__name__ + ': ' + str(exc), self.settings.llm_base_url)}")
