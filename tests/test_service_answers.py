"""The native answer routes (/v1/ask, /v1/search) and many chats at once, against a real `rag serve` with the real model.

The answer path with a scripted model (SSE framing, errors, 429s) is pinned in-process in test_answer_stream_fake.py;
the OpenAI-compatible routes through the `openai` client are in test_service_openai.py.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.api import LEADER_DOC, LEADER_Q, assert_answers, chat
from tests.fixtures.servers import wait_ready

pytestmark = pytest.mark.server

# (question, expected text in the answer (lowercase), cited doc) answered by the extractive backend.
EXTRACTIVE = [
    (LEADER_Q, "muhajir", LEADER_DOC),
    ("How many attacks per month has IS-K averaged since the Taliban took control?", "14 attacks", "004_1dece5685c29ddfe.txt"),
    ("How many fighters does IS-K have?", "2,000", LEADER_DOC),
    ("What is the capital of Peru?", None, None),  # abstains
]
# Answered by the real model (see tests/test_answering.py).
REAL = [
    (LEADER_Q, "muhajir", LEADER_DOC),
    ("What was the final death toll of the March 2017 attack on the military hospital in Kabul?", "38", "000_bc66558d9afb2305.txt"),
    ("How many attacks per month has IS-K averaged since the Taliban took control?", "14", "004_1dece5685c29ddfe.txt"),
]


@pytest.fixture(scope="module")
def url(api_server: tuple[str, Path]) -> str:
    return api_server[0]


def test_ask_returns_the_answer_object(url: str) -> None:
    res = httpx.post(f"{url}/v1/ask", json={"question": LEADER_Q, "backend": "extractive"}, timeout=120)
    assert res.status_code == 200, res.text
    data = res.json()
    assert "Muhajir" in data["answer"] and not data["abstained"] and data["backend"] == "extractive"
    assert data["citations"][0]["doc_id"] == LEADER_DOC and data["citations"][0]["quote"]
    assert {"retrieve_ms", "generate_ms", "verify_ms", "total_ms"} <= set(data["timings"])
    assert data["passages"] and data["passages"][0]["text"]

    followup = httpx.post(f"{url}/v1/ask", timeout=120, json={
        "question": "Which country is he from?", "backend": "extractive", "mode": "hybrid", "top_k": 4,
        "history": [{"role": "user", "content": LEADER_Q}, {"role": "assistant", "content": data["answer"]}]})
    assert followup.status_code == 200, followup.text
    assert "Context:" in followup.json()["standalone_question"]


def test_search_returns_ranked_passages(url: str) -> None:
    # Dense alone ranks the Muhajir chunk 5th (hybrid 1st: tests/test_retrieval.py); every mode must hold it in 5.
    for mode in ("hybrid", "bm25", "dense"):
        res = httpx.post(f"{url}/v1/search", json={"query": LEADER_Q, "k": 5, "mode": mode}, timeout=60)
        assert res.status_code == 200, res.text
        passages = res.json()["passages"]
        assert len(passages) == 5 and [p["rank"] for p in passages] == [1, 2, 3, 4, 5]
        assert any("Shahab al-Muhajir" in p["text"] for p in passages)
        assert {"doc_id", "title", "source", "start", "end", "score"} <= set(passages[0])


# -- concurrency ------------------------------------------------------------------------------------
def test_sixteen_concurrent_chat_requests_all_complete_correctly(url: str) -> None:
    wait_ready(url)
    jobs: list[tuple[str, str | None, str | None, str | None]] = [
        (q, exp, doc, "extractive") for q, exp, doc in (EXTRACTIVE * 4)[:13]]
    jobs += [(q, exp, doc, None) for q, exp, doc in REAL]  # the default backend: the real model
    assert len(jobs) == 16
    barrier = threading.Barrier(len(jobs))

    def run(job: tuple[str, str | None, str | None, str | None]) -> tuple[Any, httpx.Response]:
        barrier.wait()
        return job, chat(url, job[0], job[3])

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    for (question, expected, doc_id, backend), res in results:
        assert res.status_code == 200, (question, res.text)
        data = res.json()
        assert data["backend"] in ((backend,) if backend else ("llamacpp", "extractive")), data
        assert_answers(data, expected, doc_id)
    assert sum(1 for _, r in results if r.json()["backend"] == "llamacpp") >= 2
    assert httpx.get(f"{url}/readyz").json()["generation"]["in_flight"] == 0
