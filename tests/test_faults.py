"""Dependencies failing under a running `rag serve`: the Chroma server and the OpenAI-compatible LLM server.

Everything is real: `chroma run`, `python -m llama_cpp.server` with the packaged model, `rag serve`. Each
dependency is stopped (and frozen, for Chroma) while the service keeps running, then brought back on the
same port; the service must say so quickly and clearly, never hang, and recover without a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.api import LEADER_DOC, LEADER_Q, assert_error, chat
from tests.fixtures.paths import SEEDS
from tests.fixtures.servers import (LLAMA_ALIAS, free_port, llama_server, rag_server, seeded_data_dir, start_chroma,
                                    wait_for, wait_ready)

pytestmark = pytest.mark.server

LEADER_TEXT = "Shahab al-Muhajir"  # in Legieć's "Prospects for ISIS in Afghanistan"
CHROMA_TIMEOUT_S = 2.0  # RAG_CHROMA_TIMEOUT for these servers
NOT_READY_WITHIN_S = 5.0  # /readyz must report a dead dependency within this
ANSWER_WITHIN_S = 15.0  # any request while a dependency is down or frozen is answered within this
RECOVER_WITHIN_S = 60.0  # ready again after the dependency is back (the first load of the embedder included)
# RAG_LLM_TIMEOUT: far above a real answer on 2 busy cores (seen: 50 s while other model servers ran), so only a
# dead server falls back. A dead server is refused at connect, so the fallback does not wait for this timeout.
LLM_TIMEOUT_S = 300.0


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate one process we started and wait for it to exit (so its port is closed)."""
    proc.terminate()
    proc.wait(timeout=30)


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=ANSWER_WITHIN_S)


def ready_body(url: str) -> dict[str, Any] | None:
    res = readyz(url)
    return res.json() if res.status_code == 200 else None


def not_ready_body(url: str, check: str) -> dict[str, Any] | None:
    """The /readyz body once it is 503 for ``check`` with a reason (not merely still loading)."""
    res = readyz(url)
    if res.status_code != 503 or "loading" in res.json()["checks"][check]:
        return None
    return res.json()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    res = call()
    return res, round(time.monotonic() - started, 2)


def search(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/search", json={"query": LEADER_Q, "k": 5}, timeout=ANSWER_WITHIN_S * 2)


def assert_store_unavailable(url: str) -> dict[str, float]:
    """Search, chat and ask all answer a prompt 503 naming the store; liveness stays 200. Returns the latencies."""
    seconds: dict[str, float] = {}
    calls: dict[str, Callable[[], httpx.Response]] = {
        "search": lambda: search(url),
        "chat": lambda: chat(url, LEADER_Q, timeout=ANSWER_WITHIN_S * 2),
        "ask": lambda: httpx.post(f"{url}/v1/ask", json={"question": LEADER_Q}, timeout=ANSWER_WITHIN_S * 2),
    }
    for name, call in calls.items():
        res, seconds[name] = timed(call)
        err = assert_error(res, 503, "chroma")
        assert err["code"] == "store_unavailable" and err["type"] == "server_error", err
        assert seconds[name] < ANSWER_WITHIN_S, (name, seconds[name])
    assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
    return seconds


def assert_leader_found(url: str) -> None:
    res = search(url)
    assert res.status_code == 200, res.text
    top = res.json()["passages"][0]
    assert top["doc_id"] == LEADER_DOC and LEADER_TEXT in top["text"], top


def test_chroma_server_down_at_start_then_stopped_frozen_and_restarted(tmp_path: Path, figure) -> None:  # type: ignore[no-untyped-def]
    """One `rag serve` through a whole Chroma outage cycle, never restarted."""
    port = free_port()
    chroma_dir = tmp_path / "chroma-server"
    env = {"RAG_CHROMA_HOST": "127.0.0.1", "RAG_CHROMA_PORT": str(port), "RAG_CHROMA_TIMEOUT": str(CHROMA_TIMEOUT_S),
           "RAG_LLM_BACKEND": "extractive"}
    with rag_server(tmp_path / "data", env) as url:
        # 1. Started while Chroma is down: alive, not ready, and /readyz names the store.
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        body, _ = wait_for(lambda: not_ready_body(url, "store"), RECOVER_WITHIN_S, "readyz naming the store")
        assert "chroma" in body["checks"]["store"].lower() and str(port) in body["checks"]["store"], body
        assert_store_unavailable(url)

        chroma = start_chroma(chroma_dir, port)
        try:
            # 2. Chroma starts: ready without restarting the service; ingest the seeds through the API.
            body, seconds = wait_for(lambda: ready_body(url), RECOVER_WITHIN_S, "ready after Chroma started")
            figure("ready after Chroma started (s)", seconds)
            for path in sorted(SEEDS.glob("*.txt")):
                res = httpx.post(f"{url}/v1/documents", files={"file": (path.name, path.read_bytes(), "text/plain")}, timeout=300)
                assert res.status_code == 201, res.text
            assert_leader_found(url)
            assert ready_body(url)["chunks"] > 50  # type: ignore[index]

            # 3. Chroma stops: not ready within seconds, every store-backed request a prompt 503.
            stop(chroma)
            body, seconds = wait_for(lambda: not_ready_body(url, "store"), NOT_READY_WITHIN_S, "not ready after Chroma stopped")
            assert "chroma" in body["checks"]["store"].lower(), body
            figure("readyz 503 after Chroma stopped (s)", seconds)
            figure("503 latency with Chroma stopped (s)", assert_store_unavailable(url))

            # 4. Restarted on the same port and path: ready again, same index, no service restart.
            chroma = start_chroma(chroma_dir, port)
            _, seconds = wait_for(lambda: ready_body(url), RECOVER_WITHIN_S, "ready after Chroma restarted")
            figure("ready after Chroma restarted (s)", seconds)
            assert_leader_found(url)

            # 5. Frozen (accepts connections, never answers): bounded by RAG_CHROMA_TIMEOUT, not a hang.
            os.kill(chroma.pid, signal.SIGSTOP)
            try:
                res, seconds = timed(lambda: readyz(url))
                assert res.status_code == 503 and "chroma" in res.json()["checks"]["store"].lower(), res.text
                assert seconds < NOT_READY_WITHIN_S, seconds
                figure("readyz 503 with Chroma frozen (s)", seconds)
                figure("503 latency with Chroma frozen (s)", assert_store_unavailable(url))
            finally:
                os.kill(chroma.pid, signal.SIGCONT)
            _, seconds = wait_for(lambda: ready_body(url), RECOVER_WITHIN_S, "ready after Chroma thawed")
            figure("ready after Chroma thawed (s)", seconds)
            assert_leader_found(url)
        finally:
            stop(chroma)


def ask(url: str) -> tuple[dict[str, Any], float]:
    """The default backend's verified answer to the gold question (whichever backend produced it)."""
    res, seconds = timed(lambda: httpx.post(f"{url}/v1/ask", json={"question": LEADER_Q}, timeout=LLM_TIMEOUT_S * 2))
    assert res.status_code == 200, res.text
    answer = res.json()
    assert "Muhajir" in answer["answer"] and answer["citations"][0]["doc_id"] == LEADER_DOC, answer
    return answer, seconds


def chat_answer(url: str) -> tuple[dict[str, Any], float]:
    res, seconds = timed(lambda: chat(url, LEADER_Q, timeout=LLM_TIMEOUT_S * 2))
    assert res.status_code == 200, res.text
    data = res.json()
    assert "muhajir" in data["choices"][0]["message"]["content"].lower(), data
    assert data["sources"] and data["sources"][0]["doc_id"] == LEADER_DOC, data
    return data, seconds


def streamed_final_chunk(url: str) -> dict[str, Any]:
    body = {"model": "x", "stream": True, "messages": [{"role": "user", "content": LEADER_Q}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=LLM_TIMEOUT_S * 2) as res:
        assert res.status_code == 200
        chunks = [json.loads(line[6:]) for line in res.iter_lines() if line.startswith("data: {")]
    return next(c for c in reversed(chunks) if c.get("choices") and c["choices"][0]["finish_reason"] == "stop")


@pytest.mark.llm
def test_llm_server_going_away_falls_back_to_extractive_and_recovers(
        tmp_path_factory: pytest.TempPathFactory, model_path: Path, figure) -> None:  # type: ignore[no-untyped-def]
    """`rag serve` with the openai backend while its model server dies and comes back on the same port."""
    data_dir = seeded_data_dir(tmp_path_factory, "llm-fault")
    llm_port = free_port()
    with ExitStack() as stack:
        first_llm = stack.enter_context(ExitStack())
        llm_url = first_llm.enter_context(llama_server(model_path, port=llm_port))
        env = {"RAG_LLM_BACKEND": "openai", "RAG_LLM_BASE_URL": llm_url, "RAG_LLM_MODEL": LLAMA_ALIAS,
               "RAG_LLM_TIMEOUT": str(LLM_TIMEOUT_S)}
        url = stack.enter_context(rag_server(data_dir, env))

        # 1. The model server answers (native API here, the chat API after the recovery below).
        assert wait_ready(url)["checks"]["generator"] == "ok"
        answer, seconds = ask(url)
        assert answer["backend"] == "openai" and answer["fallback_reason"] is None, answer
        figure("ask latency through the LLM server (s)", seconds)

        # 2. The model server dies: not ready, yet answers keep coming (extractive, flagged) without delay.
        first_llm.close()
        body, seconds = wait_for(lambda: not_ready_body(url, "generator"), NOT_READY_WITHIN_S, "not ready after the LLM server died")
        assert "openai" in body["checks"]["generator"] and body["checks"]["store"] == "ok", body
        figure("readyz 503 after the LLM server died (s)", seconds)
        answer, seconds = ask(url)
        assert answer["backend"] == "extractive" and "failed" in answer["fallback_reason"], answer
        assert seconds < ANSWER_WITHIN_S, seconds
        figure("ask latency with the LLM server down (fallback, s)", seconds)
        data, seconds = chat_answer(url)
        assert data["backend"] == "extractive" and "failed" in data["fallback_reason"], data
        assert seconds < ANSWER_WITHIN_S, seconds
        figure("chat latency with the LLM server down (fallback, s)", seconds)
        final = streamed_final_chunk(url)
        assert final["backend"] == "extractive" and "failed" in final["fallback_reason"], final

        # 3. Back on the same port: ready again and answering with the model, the service never restarted.
        stack.enter_context(llama_server(model_path, port=llm_port))
        _, seconds = wait_for(lambda: ready_body(url), RECOVER_WITHIN_S, "ready after the LLM server came back")
        figure("ready after the LLM server came back (s)", seconds)
        data, seconds = chat_answer(url)
        assert data["backend"] == "openai" and data["fallback_reason"] is None, data
        figure("chat latency through the LLM server (s)", seconds)
