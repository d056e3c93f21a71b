"""What the service lets in and what it gives away, in-process over the seeded collection with a scripted
generator: text that is not Unicode, foreign Hosts and Origins, CORS, public readiness, server paths and URLs in
responses, and generation left running for a client that went away."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from rag.generation.backends.fake import FakeGenerator
from tests.fixtures.api import LEADER_DOC, LEADER_Q
from tests.fixtures.fake import cite

JSON = {"Content-Type": "application/json"}


def chat(question: str = LEADER_Q, **extra: Any) -> dict[str, Any]:
    return {"model": "rag", "messages": [{"role": "user", "content": question}], **extra}


# -- item 10: text that is not Unicode ---------------------------------------------------------------
@pytest.mark.parametrize(("path", "body"), [
    ("/v1/search", rb'{"query": "\ud800"}'),
    ("/v1/search", rb'{"query": "who leads \udfff ISIS-K", "mode": "dense"}'),
    ("/v1/ask", rb'{"question": "\ud800 who?"}'),
    ("/v1/chat/completions", rb'{"model": "x", "messages": [{"role": "user", "content": "\ud83d"}]}'),
    ("/v1/chat/completions", rb'{"model": "x", "stream": true, "messages": [{"role": "user", "content": "who? \ud83d"}]}'),
    ("/v1/chat/completions", rb'{"model": "x", "messages": [{"role": "user", "content": "Who leads it \ud800"},'
                             rb' {"role": "assistant", "content": "x"}, {"role": "user", "content": "and since when?"}]}'),
    ("/v1/chat/completions", rb'{"model": "x", "stream": true, "messages": [{"role": "assistant", "content": "\udc00"},'
                             rb' {"role": "user", "content": "and since when?"}]}'),
])
def test_a_lone_surrogate_is_a_400_not_a_500(app_with: Any, path: str, body: bytes) -> None:
    fake = FakeGenerator()
    client = app_with(fake)
    res = client.post(path, content=body, headers=JSON)
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert error["type"] == "invalid_request_error" and "unicode" in error["message"].lower(), error
    assert fake.prompts == []


# -- item 12: Host allow-list, foreign Origins, CORS -------------------------------------------------
NOTE = b"The harbour master of Port Quill is Ada Brennock.\n"


def upload(client: Any, name: str = "poison.txt", **headers: str) -> Any:
    return client.post("/v1/documents", files={"file": (name, NOTE, "text/plain")}, headers=headers)


def test_a_foreign_host_is_refused(app_with: Any) -> None:
    """DNS rebinding: a page on evil.example re-pointed at 127.0.0.1 sends ``Host: evil.example``."""
    client = app_with(FakeGenerator())
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example"):
        for method, path, kw in (("GET", "/v1/documents", {}), ("POST", "/v1/search", {"json": {"query": "Quill"}})):
            res = client.request(method, path, headers={"Host": host}, **kw)
            assert res.status_code == 400, (host, path, res.text)
            error = res.json()["error"]
            assert error["code"] == "host_not_allowed" and "RAG_ALLOWED_HOSTS" in error["message"]
    for host in ("127.0.0.1:8080", "localhost", "LOCALHOST:1", "[::1]:8080", "127.0.0.2"):
        assert client.get("/v1/models", headers={"Host": host}).status_code == 200, host
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8080"}).status_code == 200  # probes come by IP


def test_configured_host_names_are_allowed(app_with: Any) -> None:
    client = app_with(FakeGenerator(), allowed_hosts=["rag.example.com", ".corp.example"])
    for host in ("rag.example.com", "rag.example.com:443", "a.corp.example", "corp.example", "localhost:8080"):
        assert client.get("/v1/models", headers={"Host": host}).status_code == 200, host
    assert client.get("/v1/models", headers={"Host": "example.com"}).status_code == 400


def test_a_cross_site_upload_is_refused_and_changes_nothing(app_with: Any, tmp_path: Path) -> None:
    """Any web page the user visits could POST a multipart form to localhost (no preflight): foreign Origins are
    refused on every state-changing route; same-origin requests (the web page) and clients without Origin pass."""
    client = app_with(FakeGenerator(), data_dir=tmp_path / "data")  # its own collection: uploads must not touch the seeds
    assert upload(client, "first.txt").status_code == 201  # no Origin (curl, SDKs): allowed
    before = client.get("/v1/documents").json()["documents"]
    for origin in ("https://evil.example", "null", "http://127.0.0.1:9999", "http://localhost.evil.example"):
        res = upload(client, Origin=origin)
        assert res.status_code == 403, (origin, res.text)
        assert res.json()["error"]["code"] == "origin_not_allowed" and "RAG_CORS_ORIGINS" in res.json()["error"]["message"]
        res = client.delete(f"/v1/documents/{before[0]['doc_id']}", headers={"Origin": origin})
        assert res.status_code == 403, res.text
        res = client.post("/v1/search", json={"query": "Quill"}, headers={"Origin": origin})
        assert res.status_code == 403, res.text
    assert client.get("/v1/documents").json()["documents"] == before
    assert "access-control-allow-origin" not in client.get("/v1/models", headers={"Origin": "https://evil.example"}).headers
    same = client.post("/v1/search", json={"query": "Quill"}, headers={"Origin": "http://127.0.0.1:8080", "Host": "127.0.0.1:8080"})
    assert same.status_code == 200, same.text


def test_cors_only_for_configured_origins(app_with: Any) -> None:
    client = app_with(FakeGenerator([cite("al-Muhajir", "Shahab al-Muhajir [{n}].")]), cors_origins=["https://app.example"])
    preflight = client.options("/v1/chat/completions", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "https://app.example"
    res = client.post("/v1/chat/completions", json=chat(), headers={"Origin": "https://app.example"})
    assert res.status_code == 200 and res.headers["access-control-allow-origin"] == "https://app.example"
    evil = client.options("/v1/chat/completions", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in evil.headers
    assert upload(client, Origin="https://evil.example").status_code == 403


# -- item 13: readiness for load balancers, HEAD -----------------------------------------------------
def test_readyz_is_public_without_details_when_a_key_is_set(app_with: Any) -> None:
    client = app_with(FakeGenerator(), api_key=SecretStr("k-7d1e"))
    bare = client.get("/readyz")
    assert bare.status_code == 200 and bare.json() == {"status": "ready"}  # no counts, no component messages
    assert client.get("/readyz", headers={"Authorization": "Bearer wrong"}).json() == {"status": "ready"}
    full = client.get("/readyz", headers={"Authorization": "Bearer k-7d1e"}).json()
    assert full["status"] == "ready" and full["checks"]["store"] == "ok" and full["chunks"] > 0
    assert client.get("/readyz", headers={"Host": "10.0.0.7:8080"}).json() == {"status": "ready"}  # a probe by IP
    assert client.get("/v1/models").status_code == 401


def test_head_is_allowed_where_get_is_public(app_with: Any) -> None:
    client = app_with(FakeGenerator())
    for path in ("/", "/healthz", "/readyz"):
        res = client.head(path)
        assert res.status_code == 200 and res.content == b"", (path, res.status_code)


# -- item 14: no server paths or URLs in responses -----------------------------------------------------
def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_responses_name_sources_relative_to_what_was_ingested(app_with: Any, tmp_path: Path) -> None:
    from tests.fixtures.paths import SEEDS

    client = app_with(FakeGenerator([cite("al-Muhajir", "Shahab al-Muhajir has led ISIS-K since 2020 [{n}].")]))
    data_dir = str(client.app.state.rag.settings.data_dir)  # type: ignore[attr-defined]
    bodies = {
        "search": client.post("/v1/search", json={"query": LEADER_Q}).json(),
        "ask": client.post("/v1/ask", json={"question": LEADER_Q}).json(),
        "chat": client.post("/v1/chat/completions", json=chat()).json(),
        "documents": client.get("/v1/documents").json(),
    }
    for name, body in bodies.items():
        leaks = [s for s in _strings(body) if str(SEEDS) in s or data_dir in s or s.startswith("/")]
        assert not leaks, (name, leaks[:3])
    passage = bodies["search"]["passages"][0]
    assert passage["source"] == passage["doc_id"] == LEADER_DOC
    assert (SEEDS / passage["source"]).is_file()  # relative to the ingested folder
    assert {s["source"] for s in bodies["chat"]["sources"]} == {LEADER_DOC}
    assert {c["source"] for c in bodies["ask"]["citations"]} == {LEADER_DOC}

    uploads = app_with(FakeGenerator(), data_dir=tmp_path / "data")
    added = upload(uploads, "port-notes.txt").json()
    assert added["source"] == added["filename"] == "port-notes.txt", added  # the upload's name
    (listed,) = uploads.get("/v1/documents").json()["documents"]
    assert listed["source"] == "port-notes.txt" and listed["uploaded"] is True
    (found,) = uploads.post("/v1/search", json={"query": "harbour master Quill", "k": 1}).json()["passages"]
    assert found["source"] == "port-notes.txt"


def test_fallback_reason_does_not_name_the_llm_server(app_with: Any) -> None:
    from rag.bench.processes import free_port

    port = free_port()  # nothing listens there: the openai backend fails at once
    client = app_with(FakeGenerator(), llm_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout=5.0)
    body = client.post("/v1/chat/completions", json=chat(backend="openai")).json()
    assert body["backend"] == "extractive" and body["fallback_reason"], body
    assert str(port) not in body["fallback_reason"] and "http" not in body["fallback_reason"], body["fallback_reason"]
    assert str(port) not in json.dumps(body)


# -- item 20: a client that went away stops its generation -----------------------------------------------
class CountingFake(FakeGenerator):
    """A slow scripted generator that counts the pieces it produced and says when the first few are out."""

    def __init__(self, words: int, delay: float) -> None:
        super().__init__([" ".join(f"word{i}" for i in range(words)) + " [1]."], delay=delay)
        self.produced = 0
        self.started = threading.Event()

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        for piece in super().stream(*args, **kwargs):
            self.produced += 1
            if self.produced == 3:
                self.started.set()
            yield piece


def _request_then_leave(app: Any, path: str, body: dict[str, Any], leave: threading.Event) -> list[dict[str, Any]]:
    """Drive the ASGI app as a server does for a client that sends ``body`` and disconnects once ``leave`` is set."""
    import asyncio

    payload = json.dumps(body).encode()
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        messages = [{"type": "http.request", "body": payload, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.to_thread(leave.wait, 60)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(payload)).encode())],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {}}
        await app(scope, receive, send)

    asyncio.run(main())
    return sent


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/chat/completions"])
def test_a_disconnected_plain_request_stops_generating(app_with: Any, path: str) -> None:
    """Before: the whole generation ran for a client that had gone (here 200 more tokens); now it stops within one."""
    fake = CountingFake(words=200, delay=0.02)
    client = app_with(fake)
    state = client.app.state.rag  # type: ignore[attr-defined]
    body = {"question": LEADER_Q} if path == "/v1/ask" else chat()
    leave = threading.Event()
    watcher = threading.Thread(target=lambda: (fake.started.wait(60), leave.set()))
    watcher.start()
    _request_then_leave(client.app, path, body, leave)
    watcher.join()
    deadline = time.monotonic() + 120
    while state.queue.in_flight and time.monotonic() < deadline:  # the slot is freed when the worker stops
        time.sleep(0.01)
    assert 3 <= fake.produced < 50, fake.produced
    assert client.post(path, json=body).status_code == 200  # the model is free for the next request
