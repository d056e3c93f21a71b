"""The openai backend against a real OpenAI-compatible server (llama_cpp.server with the same model)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.servers import LLAMA_ALIAS, free_port
from tests.fixtures.servers import llama_server as run_llama_server

pytestmark = [pytest.mark.llm, pytest.mark.server]


@pytest.fixture(scope="module")
def llama_server(model_path: Path) -> Iterator[str]:
    with run_llama_server(model_path) as url:
        yield url


def test_openai_backend_answers_through_real_server(llm_settings, embedder, llama_server: str) -> None:  # type: ignore[no-untyped-def]
    from rag.components import Components

    settings = llm_settings.model_copy(update={"llm_backend": "openai", "llm_base_url": llama_server, "llm_model": LLAMA_ALIAS})
    answer = Components(settings, embedder=embedder).answerer.ask("Who has led ISIS-K since 2020?")
    assert answer.backend == "openai" and answer.fallback_reason is None
    assert "Muhajir" in answer.answer and answer.citations[0].doc_id == "002_2399800fba452946.txt"
    assert answer.completion_tokens > 3


def test_unreachable_server_falls_back_to_extractive(llm_settings, embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.components import Components

    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = llm_settings.model_copy(update={"llm_backend": "openai", "llm_base_url": dead, "llm_timeout": 3.0})
    answerer = Components(settings, embedder=embedder).answerer
    started = time.monotonic()
    answer = answerer.ask("Who has led ISIS-K since 2020?")
    assert time.monotonic() - started < 30
    assert answer.backend == "extractive"
    assert answer.fallback_reason and "failed" in answer.fallback_reason
    assert "Muhajir" in answer.answer and answer.citations


def test_a_busy_server_is_ready_and_a_dead_one_is_not(llm_settings, llama_server: str) -> None:  # type: ignore[no-untyped-def]
    """llama_cpp.server answers /v1/models only between generations: busy must not read as down."""
    import threading

    from rag.generation.backends import GenerationStats, Prompt
    from rag.generation.backends.openai_compat import OpenAIGenerator

    settings = llm_settings.model_copy(update={"llm_backend": "openai", "llm_base_url": llama_server,
                                               "llm_model": LLAMA_ALIAS, "llm_timeout": 300.0})
    gen = OpenAIGenerator(settings)
    started = threading.Event()
    pieces: list[str] = []

    def long_answer() -> None:
        question = "Count from one to two hundred in words, comma separated."
        prompt = Prompt([{"role": "user", "content": question}], question)
        for piece in gen.stream(prompt, 200, 0.0, GenerationStats()):
            started.set()
            pieces.append(piece)

    worker = threading.Thread(target=long_answer)
    worker.start()
    assert started.wait(120), "the generation did not start"
    busy_checks = [gen.ready() for _ in range(2)]
    worker.join(300)
    assert busy_checks == [True, True]
    assert len(pieces) > 20, "the readiness checks cut the running stream short"
    dead = settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1"})
    assert OpenAIGenerator(dead).ready() is False
