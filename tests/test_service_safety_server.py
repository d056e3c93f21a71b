"""What only a real `rag serve` (uvicorn, real sockets) shows: public probes and HEAD under a key, and a 413 that
always arrives for an oversized body instead of a connection reset."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.servers import rag_server, seeded_data_dir, wait_ready

pytestmark = pytest.mark.server
KEY = "probe-key-81c2"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = seeded_data_dir(tmp_path_factory, "safety-server")
    with rag_server(data_dir, {"RAG_API_KEY": KEY, "RAG_LLM_BACKEND": "extractive"}) as base:
        wait_ready(base, {"Authorization": f"Bearer {KEY}"})
        yield base


def test_probes_and_head_without_the_key(url: str) -> None:
    """A load balancer routing on /readyz gets its answer without the key (and nothing more); HEAD works."""
    bare = httpx.get(f"{url}/readyz")
    assert bare.status_code == 200 and bare.json() == {"status": "ready"}
    full = httpx.get(f"{url}/readyz", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert full["checks"] == {"store": "ok", "generator": "ok"} and full["chunks"] > 50
    for path in ("/", "/healthz", "/readyz"):
        res = httpx.head(f"{url}{path}")
        assert res.status_code == 200 and res.content == b"", (path, res.status_code)
    assert httpx.get(f"{url}/v1/models").status_code == 401


def _post(url: str, body: bytes, headers: dict[str, str]) -> int | str:
    """POST with the standard library, as the issue's reproduction did: the status, or the connection error's name."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as res:
            return int(res.status)
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read())["error"]["code"]
        return f"{exc.code} {detail}"
    except (urllib.error.URLError, ConnectionError) as exc:
        return type(getattr(exc, "reason", exc)).__name__


@pytest.mark.parametrize(("size", "headers", "expected"), [
    (2_000_000, {"Authorization": f"Bearer {KEY}"}, "413 request_too_large"),
    (8_000_000, {"Authorization": f"Bearer {KEY}"}, "413 request_too_large"),
    (2_000_000, {}, "401 invalid_api_key"),  # refused before the body is read, for another reason
])
def test_an_oversized_body_always_gets_its_answer(url: str, size: int, headers: dict[str, str], expected: str) -> None:
    body = json.dumps({"model": "x", "messages": [{"role": "user", "content": "x" * size}]}).encode()
    outcomes = [_post(f"{url}/v1/chat/completions", body, headers) for _ in range(10)]
    assert outcomes == [expected] * 10, outcomes
    assert httpx.get(f"{url}/healthz").status_code == 200
