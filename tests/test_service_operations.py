"""Operations and limits of a real `rag serve`: health, readiness, metrics, bad input, errors, auth, keys in logs,
and the generation queue (429s, overload, disconnects)."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.api import LEADER_DOC, LEADER_Q, assert_answers, assert_error, chat
from tests.fixtures.servers import free_port, rag_server, seeded_data_dir, wait_ready

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def url(api_server: tuple[str, Path]) -> str:
    return api_server[0]


# -- operations ---------------------------------------------------------------------------------
def test_health_and_readiness(url: str) -> None:
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = wait_ready(url)
    assert ready["status"] == "ready" and ready["checks"] == {"store": "ok", "generator": "ok"}
    assert ready["chunks"] > 50 and ready["generation"] == {"in_flight": 0, "capacity": 16}


def test_readyz_is_503_with_a_reason_when_the_store_is_down(tmp_path: Path) -> None:
    env = {"RAG_CHROMA_HOST": "127.0.0.1", "RAG_CHROMA_PORT": str(free_port()), "RAG_CHROMA_TIMEOUT": "1",
           "RAG_LLM_BACKEND": "extractive"}
    with rag_server(tmp_path / "data", env) as down:
        deadline = time.monotonic() + 60
        while True:
            res = httpx.get(f"{down}/readyz", timeout=30)
            assert res.status_code == 503
            if "loading" not in res.json()["checks"]["store"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "chroma" in res.json()["checks"]["store"].lower(), res.text
        assert res.json()["checks"]["generator"].startswith("ok")
        assert httpx.get(f"{down}/healthz").status_code == 200
        assert_error(httpx.post(f"{down}/v1/search", json={"query": "anything"}, timeout=60), 503, "chroma")
        assert_error(chat(down, LEADER_Q, timeout=60), 503, "chroma")


def test_a_broken_model_is_503_but_extractive_answers_still_work(tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = seeded_data_dir(tmp_path_factory, "broken-model")
    broken = data_dir.parent / "broken.gguf"
    broken.write_bytes(b"not a model")
    with rag_server(data_dir, {"RAG_LLM_MODEL_PATH": str(broken)}) as bad:
        deadline = time.monotonic() + 120
        while True:
            res = httpx.get(f"{bad}/readyz", timeout=30)
            assert res.status_code == 503
            if "loading" not in json.dumps(res.json()["checks"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert res.json()["checks"]["store"] == "ok" and "model" in res.json()["checks"]["generator"], res.text
        err = assert_error(chat(bad, LEADER_Q, timeout=60), 503, "model")
        assert err["code"] == "model_unavailable" and err["type"] == "server_error"
        ok = chat(bad, LEADER_Q, backend="extractive", timeout=60)
        assert ok.status_code == 200 and "Muhajir" in ok.json()["choices"][0]["message"]["content"]


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input_gets_clear_4xx(url: str) -> None:
    post = lambda path, **kw: httpx.post(f"{url}{path}", timeout=60, **kw)  # noqa: E731
    headers = {"Content-Type": "application/json"}
    # Malformed JSON: OpenAI routes answer 400, native ones 422; both in the one error shape.
    assert_error(post("/v1/chat/completions", content=b'{"messages": [', headers=headers), 400, "json")
    assert_error(post("/v1/ask", content=b"{not json", headers=headers), 422, "json")
    assert_error(post("/v1/search", content=b"", headers=headers), 422)
    msgs = lambda *m: {"model": "x", "messages": list(m)}  # noqa: E731
    cases: list[tuple[dict[str, Any], str]] = [
        (msgs({"role": "user", "content": ""}), "empty"),
        (msgs({"role": "user", "content": "   \n"}), "empty"),
        (msgs({"role": "user", "content": "why? " * 1000}), "limit is 4000"),
        (msgs({"role": "tool", "content": "hi"}), "role"),
        (msgs({"role": "function", "content": "hi"}), "role"),
        (msgs({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}), "last message"),
        (msgs({"role": "system", "content": "be brief"}), "last message"),
        (msgs({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}), "text"),
        (msgs({"role": "user", "content": 42}), "content"),
        (msgs({"role": "user"}), "empty"),
        ({"model": "x", "messages": []}, "messages"),
        ({"model": "x"}, "messages"),
        ({"model": "x", "messages": "Who?"}, "messages"),
        ({**msgs({"role": "user", "content": "Who?"}), "n": 3}, "n"),
        ({**msgs({"role": "user", "content": "Who?"}), "backend": "gpt9"}, "backend"),
        ({**msgs({"role": "user", "content": "Who?"}), "backend": "openai"}, "not enabled"),
        ({**msgs({"role": "user", "content": "Who?"}), "top_k": 0}, "top_k"),
        ({**msgs({"role": "user", "content": "Who?"}), "mode": "psychic"}, "mode"),
    ]
    for body, word in cases:
        err = assert_error(post("/v1/chat/completions", json=body), 400, word)
        assert err["type"] == "invalid_request_error"
    assert_error(post("/v1/chat/completions", content=b'["a list"]', headers=headers), 400)
    assert_error(post("/v1/ask", json={"question": ""}), 400, "empty")
    assert_error(post("/v1/ask", json={"question": "x" * 4001}), 400, "limit")
    assert_error(post("/v1/ask", json={"question": "Who?", "history": [{"role": "tool", "content": "x"}]}), 422, "role")
    assert_error(post("/v1/ask", json={"question": "Who?", "top_k": 1000}), 422, "top_k")
    assert_error(post("/v1/search", json={"query": " "}), 400, "empty")
    assert_error(post("/v1/search", json={"query": "x", "k": 0}), 422, "k")
    assert_error(post("/v1/search", json={"query": "x", "mode": "psychic"}), 422, "mode")
    assert_error(post("/v1/chat/completions", content=b"x" * 1_100_000, headers=headers), 413, "larger than the limit")
    assert_error(httpx.get(f"{url}/v1/nowhere"), 404, "not found")
    assert_error(httpx.put(f"{url}/v1/ask", json={}), 405, "not allowed")
    assert_error(httpx.get(f"{url}/v1/models/not-our-model"), 404, "not-our-model")


def test_unexpected_errors_become_a_json_500_without_details(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from rag.settings import Settings
    from service.app import create_app

    app = create_app(Settings(data_dir=tmp_path))  # not started: no component is loaded

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    res = TestClient(app, base_url="http://127.0.0.1").get("/v1/boom")
    err = assert_error(res, 500, "internal server error")
    assert err["type"] == "server_error" and "secret" not in res.text


def test_metrics_count_requests_and_stage_latencies(url: str) -> None:
    # The requests counted below are made here, so the test stands alone in its module (any order, -k, -x).
    httpx.get(f"{url}/healthz")
    assert_error(chat(url, "   "), 400)
    assert_error(httpx.delete(f"{url}/v1/documents/no-such-doc"), 404)
    assert_error(httpx.get(f"{url}/v1/nowhere"), 404)
    assert httpx.post(f"{url}/v1/ask", json={"question": LEADER_Q, "backend": "extractive"}, timeout=120).status_code == 200
    assert_answers(chat(url, LEADER_Q).json(), "muhajir", LEADER_DOC)  # the default backend: the real model
    res = httpx.get(f"{url}/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    text = res.text
    assert re.search(r'rag_http_requests_total\{method="GET",route="/healthz",status="200"\} [1-9]', text)
    assert re.search(r'rag_http_requests_total\{method="POST",route="/v1/chat/completions",status="400"\} [1-9]', text)
    assert re.search(r'rag_http_requests_total\{method="DELETE",route="/v1/documents/\{doc_id:path\}",status="404"\} [1-9]', text)
    for stage in ("retrieve", "generate", "verify", "total"):
        assert re.search(rf'rag_answer_stage_seconds_count\{{stage="{stage}"\}} ([2-9]|\d\d)', text), stage
    assert re.search(r'rag_http_request_duration_seconds_count\{method="GET",route="/healthz"\} [1-9]', text)
    assert re.search(r'rag_answers_total\{abstained="false",backend="llamacpp"\} [1-9]', text)
    assert "rag_generation_in_flight 0.0" in text and "rag_generation_capacity 16.0" in text
    assert 'route="unmatched"' in text  # the 404 above, without a per-path label


# -- auth -------------------------------------------------------------------------------------------
API_KEY = "test-key-5f2c81d0"


def _route_requests() -> list[tuple[str, str]]:
    """(method, concrete path) for every route of the app, found by walking app.routes and the routers it includes."""
    from fastapi.routing import APIRoute
    from starlette.routing import BaseRoute, Mount, Route

    from rag.settings import Settings
    from service.app import create_app

    app = create_app(Settings(data_dir=Path("/nonexistent-never-opened"), api_key=API_KEY))  # type: ignore[arg-type]
    out: list[tuple[str, str]] = []

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                out.append(("GET", prefix + route.path + "/app.js"))
            elif isinstance(route, (APIRoute, Route)):
                path = re.sub(r"\{[^}]+\}", "some-id", prefix + route.path)
                for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                    out.append((method, path))
            elif hasattr(route, "original_router"):  # FastAPI keeps an included APIRouter as one entry
                walk(route.original_router.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
            else:
                raise AssertionError(f"a route of an unknown kind: {route!r}")

    walk(app.routes, "")
    return out


def test_api_key_guards_every_route_but_probes_and_page(tmp_path_factory: pytest.TempPathFactory) -> None:
    routes = _route_requests()
    paths = {p for _, p in routes}
    assert {"/v1/chat/completions", "/v1/models", "/v1/ask", "/v1/search", "/v1/documents", "/v1/documents/some-id",
            "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/", "/static/app.js"} <= paths
    public = {"/healthz", "/readyz", "/", "/static/app.js"}
    data_dir = seeded_data_dir(tmp_path_factory, "auth-server")
    with rag_server(data_dir, {"RAG_API_KEY": API_KEY, "RAG_LLM_BACKEND": "extractive"}) as url:
        checked = 0
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {API_KEY}"}):
                res = httpx.request(method, f"{url}{path}", headers=headers, timeout=30)
                if path in public:
                    assert res.status_code != 401, (method, path)
                    continue
                assert res.status_code == 401, (method, path, res.status_code)
                assert res.headers["www-authenticate"].startswith("Bearer"), res.headers
                assert res.json()["error"]["type"] == "authentication_error"
                checked += 1
        assert checked >= 3 * 12
        assert httpx.get(f"{url}/healthz").status_code == 200
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and "html" in page.headers["content-type"]
        good = {"Authorization": f"Bearer {API_KEY}"}
        assert httpx.get(f"{url}/v1/models", headers=good).status_code == 200
        assert httpx.get(f"{url}/openapi.json", headers=good).status_code == 200
        res = httpx.post(f"{url}/v1/chat/completions", headers=good, timeout=120,
                         json={"model": "x", "messages": [{"role": "user", "content": LEADER_Q}]})
        assert res.status_code == 200 and "Muhajir" in res.json()["choices"][0]["message"]["content"]
        log_text = "".join(p.read_text() for p in data_dir.parent.glob("serve-*.log"))
    assert "wrong-key" not in log_text and API_KEY not in log_text
    assert "status=401" in log_text


def test_keys_never_reach_the_logs_even_at_debug(tmp_path_factory: pytest.TempPathFactory) -> None:
    """RAG_API_KEY and RAG_LLM_API_KEY stay out of DEBUG JSON logs, whatever clients do with them."""
    key, wrong, llm_key = (f"{name}-{secrets.token_hex(16)}" for name in ("apikey", "wrongkey", "llmkey"))
    data_dir = seeded_data_dir(tmp_path_factory, "key-log-server")
    env = {"RAG_API_KEY": key, "RAG_LOG_LEVEL": "DEBUG", "RAG_LOG_JSON": "true", "RAG_LLM_BACKEND": "extractive",
           # The openai backend is enabled per request against a dead server: its client's DEBUG logs are checked too.
           "RAG_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "RAG_LLM_API_KEY": llm_key, "RAG_LLM_TIMEOUT": "2"}
    bearer = {"Authorization": f"Bearer {key}"}
    with rag_server(data_dir, env) as url:
        port = url.rsplit(":", 1)[1]
        wait_ready(url, bearer)
        question = {"model": "x", "messages": [{"role": "user", "content": LEADER_Q}]}
        expected = [
            (200, "GET", "/v1/models", bearer, None),
            (200, "POST", "/v1/chat/completions", bearer, question),
            (200, "POST", "/v1/chat/completions", bearer, {**question, "backend": "openai"}),  # falls back
            (200, "POST", "/v1/chat/completions", bearer, {**question, "stream": True}),
            (200, "GET", f"/readyz?api_key={key}", bearer, None),
            (200, "GET", f"/healthz?token={key}", bearer, None),
            (404, "GET", f"/v1/nowhere?api_key={key}", bearer, None),
            (400, "POST", "/v1/chat/completions", bearer, {"model": "x", "messages": [{"role": "user", "content": ""}]}),
            (401, "GET", "/v1/models", {"Authorization": f"Bearer {wrong}"}, None),
            (401, "POST", "/v1/ask", {"Authorization": f"Bearer {wrong}"}, {"question": LEADER_Q}),
            (401, "GET", "/v1/models", {}, None),
            (401, "GET", f"/v1/models?api_key={key}", {}, None),
            (401, "GET", f"/v1/documents?key={wrong}&access_token={key}", {}, None),
            (401, "GET", "/v1/models", {"Authorization": f"Basic {key}"}, None),
            (401, "GET", "/v1/models", {"X-API-Key": key}, None),
            (401, "GET", "/v1/models", {"Authorization": f"Bearer  {key}x"}, None),
        ]
        for status, method, path, headers, body in expected:
            res = httpx.request(method, f"{url}{path}", headers=headers, json=body, timeout=120)
            assert res.status_code == status, (method, path, res.status_code, res.text)
            assert key not in res.text and wrong not in res.text and llm_key not in res.text, (path, res.text)
        fallback = httpx.post(f"{url}/v1/chat/completions", headers=bearer, json={**question, "backend": "openai"}, timeout=120)
        assert fallback.json()["fallback_reason"], fallback.text  # the openai client really ran (and failed)
    log_text = (data_dir.parent / f"serve-{port}.log").read_text()
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert sum(1 for r in lines if r["level"] == "debug") >= 3, log_text[-2000:]  # DEBUG really was on
    assert sum(1 for r in lines if r.get("status") == 401) == sum(1 for e in expected if e[0] == 401)
    for secret in (key, wrong, llm_key):
        assert secret not in log_text


# -- generation queue ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_queue_url(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[str]:
    data_dir = seeded_data_dir(tmp_path_factory, "queue-server")
    with rag_server(data_dir, {"RAG_LLM_MODEL_PATH": str(model_path), "RAG_GENERATION_QUEUE_SIZE": "1"}) as url:
        wait_ready(url)
        yield url


def _in_flight(url: str) -> int:
    return int(httpx.get(f"{url}/readyz", timeout=30).json()["generation"]["in_flight"])


@pytest.mark.llm
def test_full_queue_answers_429_with_retry_after(small_queue_url: str) -> None:
    url = small_queue_url
    barrier = threading.Barrier(4)

    def run(_: int) -> httpx.Response:
        barrier.wait()
        return chat(url, LEADER_Q)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(run, i) for i in range(4)]
        done: list[httpx.Response] = []
        for fut in as_completed(futures):
            done.append(fut.result())
            if len(done) == 3:
                # The three refusals came back at once, while the admitted request still generates:
                # retrieval is not queued, and the slot is still taken.
                assert _in_flight(url) == 1
                assert httpx.post(f"{url}/v1/search", json={"query": LEADER_Q}, timeout=60).status_code == 200
                assert_error(chat(url, LEADER_Q, backend="extractive"), 429, "busy")
    statuses = sorted(r.status_code for r in done)
    assert statuses == [200, 429, 429, 429], statuses
    for res in done:
        if res.status_code == 429:
            err = assert_error(res, 429, "busy")
            assert err["type"] == "rate_limit_error" and int(res.headers["retry-after"]) >= 1
        else:
            assert_answers(res.json(), "muhajir", LEADER_DOC)
    assert _in_flight(url) == 0


@pytest.mark.llm
def test_overload_through_the_load_generator(small_queue_url: str, figure) -> None:  # type: ignore[no-untyped-def]
    """Eight chats and four searches at once against one generation slot, counted by ``rag.bench.load``."""
    from rag.bench.load import run_load
    from tests.fixtures.load import chat_questions, search_questions

    chats, searches = 8, 4
    report = run_load(small_queue_url, search_questions(), chats + searches, chats + searches, chats / (chats + searches),
                      chat_questions=chat_questions())
    data = report.to_dict()
    figure("overload chat statuses", data["kinds"]["chat"]["statuses"])
    figure("overload 429 max latency (ms)", data["kinds"]["chat"]["rejected_max_ms"])
    assert data["kinds"]["chat"]["statuses"] == {"200": 1, "429": chats - 1}, data
    assert data["kinds"]["search"]["statuses"] == {"200": searches}, data  # searches are not queued
    assert report.rejected_without_retry_after == 0 and report.server_errors == 0 and report.transport_errors == 0, data
    assert report.wrong == 0, data
    # Refused at once: every 429 came back before the admitted chat had its answer.
    assert data["kinds"]["chat"]["rejected_max_ms"] < data["kinds"]["chat"]["p50_ms"], data
    assert _in_flight(small_queue_url) == 0


@pytest.mark.llm
def test_client_disconnect_mid_stream_frees_the_slot(small_queue_url: str) -> None:
    url = small_queue_url
    body = {"model": "x", "stream": True, "messages": [{"role": "user", "content": LEADER_Q}]}
    deltas = 0
    with httpx.Client(timeout=600) as client, client.stream("POST", f"{url}/v1/chat/completions", json=body) as res:
        assert res.status_code == 200
        for line in res.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                deltas += 1
                if deltas == 2:
                    assert _in_flight(url) == 1
                    break  # leave mid-answer: the connection closes here
    deadline = time.monotonic() + 120
    while _in_flight(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _in_flight(url) == 0, "the disconnected stream kept its generation slot"
    # The model lock was released too: the next request (queue size 1) gets the model and completes.
    res = chat(url, LEADER_Q)
    assert res.status_code == 200, res.text
    assert_answers(res.json(), "muhajir", LEADER_DOC)

