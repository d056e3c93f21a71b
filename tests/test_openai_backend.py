"""The openai backend against a real OpenAI-compatible server (llama_cpp.server with the same model)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.llm, pytest.mark.server]


@pytest.fixture(scope="module")
def llama_server(model_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--model_alias", "qwen"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_openai_backend_answers_through_real_server(llm_settings, retriever, llama_server: str) -> None:  # type: ignore[no-untyped-def]
    from rag.generation.answerer import Answerer

    settings = llm_settings.model_copy(update={"llm_backend": "openai", "llm_base_url": llama_server, "llm_model": "qwen"})
    answer = Answerer(settings, retriever).ask("Who has led ISIS-K since 2020?")
    assert answer.backend == "openai" and answer.fallback_reason is None
    assert "Muhajir" in answer.answer and answer.citations[0].doc_id == "002_2399800fba452946"
    assert answer.completion_tokens > 3


def test_unreachable_server_falls_back_to_extractive(llm_settings, retriever) -> None:  # type: ignore[no-untyped-def]
    from rag.generation.answerer import Answerer

    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = llm_settings.model_copy(update={"llm_backend": "openai", "llm_base_url": dead, "llm_timeout": 3.0})
    started = time.monotonic()
    answer = Answerer(settings, retriever).ask("Who has led ISIS-K since 2020?")
    assert time.monotonic() - started < 30
    assert answer.backend == "extractive"
    assert answer.fallback_reason and "failed" in answer.fallback_reason
    assert "Muhajir" in answer.answer and answer.citations
