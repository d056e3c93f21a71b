"""One ``RAG_LLM_TIMEOUT`` bounds a generation, whatever the backend is doing: the openai backend against a local
OpenAI-compatible server that hangs or trickles (the real ``openai`` client over real sockets), and the llama.cpp
backend's prompt evaluation (a stand-in ``Llama`` with a simulated clock: the real model is the ``llm`` lane's).
Every assert counts requests, chunks or tokens, never seconds."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rag.errors import LLMUnavailable
from rag.generation.backends import GenerationStats, Prompt
from rag.settings import Settings

PROMPT = Prompt([{"role": "system", "content": "answer"}, {"role": "user", "content": "Who?"}], "Who?")


class FakeOpenAI:
    """A local chat-completions server: ``hang`` never sends headers; otherwise it streams ``chunks`` deltas, one
    every ``interval`` seconds. Counts requests and the chunks it managed to send."""

    def __init__(self, hang: bool = False, chunks: int = 1, interval: float = 0.0) -> None:
        self.hang, self.chunks, self.interval = hang, chunks, interval
        self.requests = 0
        self.sent = 0
        self.stop = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("content-length", 0)))
                fake.requests += 1
                if fake.hang:
                    fake.stop.wait(60)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    for i in range(fake.chunks):
                        if fake.stop.wait(fake.interval):
                            return
                        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                 "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        fake.sent += 1
                    end = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


@contextmanager
def serving(fake: FakeOpenAI) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        fake.stop.set()
        server.shutdown()
        server.server_close()


def openai_generator(url: str, timeout: float):  # type: ignore[no-untyped-def]
    from rag.generation.backends.openai_compat import OpenAIGenerator

    return OpenAIGenerator(Settings(data_dir=Path("/nonexistent"), llm_backend="openai", llm_base_url=url,
                                    llm_model="m", llm_timeout=timeout))


def test_a_hung_llm_server_is_asked_once() -> None:
    """The openai client retried a timed-out request, so the fallback came after twice RAG_LLM_TIMEOUT."""
    fake = FakeOpenAI(hang=True)
    with serving(fake) as url:
        with pytest.raises(LLMUnavailable, match="timed out"):
            list(openai_generator(url, 1.0).stream(PROMPT, 50, 0.0, GenerationStats()))
        assert fake.requests == 1


def test_a_trickling_llm_server_is_cut_at_the_timeout() -> None:
    """Each chunk came well within the read timeout, so nothing bounded the whole generation."""
    fake = FakeOpenAI(chunks=60, interval=0.2)  # 12 s of tokens against a 1 s timeout
    with serving(fake) as url:
        gen = openai_generator(url, 1.0)
        pieces: list[str] = []
        with pytest.raises(LLMUnavailable, match="timed out"):
            for piece in gen.stream(PROMPT, 100, 0.0, GenerationStats()):
                pieces.append(piece)
        assert 0 < len(pieces) < 30, len(pieces)
        assert fake.requests == 1
        ok = FakeOpenAI(chunks=3)
    with serving(ok) as url:  # a normal answer is unaffected
        assert "".join(openai_generator(url, 5.0).stream(PROMPT, 50, 0.0, GenerationStats())) == "w0 w1 w2 "


# -- llama.cpp: prompt evaluation counts against the timeout --------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StandInLlama:
    """What ``LlamaCppGenerator`` uses of ``llama_cpp.Llama``: evaluating takes 0.25 s (simulated) per 64 tokens."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.input_ids: list[int] = []
        self.n_tokens = 0
        self.evaluated = 0
        self.completions = 0

    @property
    def _input_ids(self):  # type: ignore[no-untyped-def]
        import numpy as np

        return np.asarray(self.input_ids[: self.n_tokens])

    def eval(self, tokens: list[int]) -> None:
        for start in range(0, len(tokens), 64):
            part = tokens[start : start + 64]
            self.clock.now += 0.25
            self.input_ids[self.n_tokens :] = part
            self.n_tokens += len(part)
            self.evaluated += len(part)

    def create_chat_completion(self, messages: list[dict[str, str]], **_: Any) -> Iterator[dict[str, Any]]:
        """Like llama-cpp-python: reuse the cached prefix, evaluate the rest of the prompt, then stream tokens."""
        self.completions += 1
        tokens = PROMPT_TOKENS
        keep = 0
        while keep < min(self.n_tokens, len(tokens) - 1) and self.input_ids[keep] == tokens[keep]:
            keep += 1
        self.n_tokens = keep
        self.eval(tokens[keep:])
        for word in ("Shahab ", "al-Muhajir ", "[1]."):
            self.clock.now += 0.1
            yield {"choices": [{"delta": {"content": word}}]}


PROMPT_TOKENS = list(range(1, 2049))  # 2048 prompt tokens: 8 s of (simulated) evaluation


def llama_generator(monkeypatch: pytest.MonkeyPatch, timeout: float):  # type: ignore[no-untyped-def]
    import rag.generation.backends.llamacpp as llamacpp
    from rag.generation.backends.llamacpp_prefixes import PrefixStates

    clock = Clock()
    monkeypatch.setattr(llamacpp.time, "perf_counter", clock)
    gen = object.__new__(llamacpp.LlamaCppGenerator)
    gen.settings = Settings(data_dir=Path("/nonexistent"), llm_timeout=timeout)
    gen.llm = StandInLlama(clock)
    gen.lock = threading.Lock()
    gen.prefixes = PrefixStates(gen.llm)
    gen._instruction = PROMPT.messages[:-1]  # the fixed instruction is already kept
    gen.tokens = lambda messages: list(PROMPT_TOKENS)  # type: ignore[method-assign]
    return gen


def test_llamacpp_prompt_evaluation_counts_against_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline was checked only after a token, so a long prompt was evaluated to the end first."""
    gen = llama_generator(monkeypatch, timeout=1.0)
    with pytest.raises(LLMUnavailable, match="exceeded"):
        list(gen.stream(PROMPT, 50, 0.0, GenerationStats()))
    assert gen.llm.evaluated < len(PROMPT_TOKENS) // 2, gen.llm.evaluated


def test_llamacpp_within_the_timeout_answers_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = llama_generator(monkeypatch, timeout=60.0)
    stats = GenerationStats()
    assert "".join(gen.stream(PROMPT, 50, 0.0, stats)) == "Shahab al-Muhajir [1]."
    assert gen.llm.evaluated == len(PROMPT_TOKENS) and gen.llm.completions == 1  # each prompt token evaluated once
    assert stats.completion_tokens == 3
