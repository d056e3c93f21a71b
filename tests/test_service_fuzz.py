"""Schemathesis against the running server's /openapi.json: no generated request may get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.fixtures.api import LEADER_Q
from tests.fixtures.servers import rag_server, seeded_data_dir, wait_ready

pytestmark = pytest.mark.server
EXAMPLES_PER_OPERATION = 25  # per generation mode (valid and invalid data); the whole file takes well under a minute


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # The extractive backend answers chat calls in well under a second, which keeps the run short.
    data_dir = seeded_data_dir(tmp_path_factory, "fuzz-server")
    with rag_server(data_dir, {"RAG_LLM_BACKEND": "extractive", "RAG_MAX_UPLOAD_BYTES": "100000"}) as url:
        wait_ready(url)
        yield url


def test_no_generated_request_gets_a_server_error(fuzz_url: str) -> None:
    # The schema is loaded from the live server (schemathesis.pytest's lazy loader does not support this pytest).
    schema = schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/chat/completions", "POST /v1/ask", "POST /v1/search",
                                               "POST /v1/documents", "DELETE /v1/documents/{doc_id}", "GET /v1/models"}
    failures: list[str] = []
    calls = 0
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                nonlocal calls
                calls += 1
                response = case.call(base_url=fuzz_url, timeout=60)
                if response.status_code >= 500:
                    failures.append(f"{response.status_code} {response.text[:300]}\n  {case.as_curl_command()}")

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (e.g. GET /v1/models has no parameters)
                assert mode == GenerationMode.NEGATIVE, op.label
    assert calls >= len(operations) * 5
    assert not failures, "\n".join(failures[:10])


def test_fuzzing_left_the_server_healthy(fuzz_url: str) -> None:
    assert httpx.get(f"{fuzz_url}/readyz", timeout=30).status_code == 200
    res = httpx.post(f"{fuzz_url}/v1/search", json={"query": LEADER_Q, "k": 3}, timeout=60)
    assert res.status_code == 200 and any("Muhajir" in p["text"] for p in res.json()["passages"])
