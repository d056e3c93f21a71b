"""Bounded load against a real `rag serve` (the packaged model), with ``rag.bench.load``.

Mixed search and chat traffic must get no server error and no wrong answer. (An overfull generation queue,
through the same load generator, is checked in tests/test_service_operations.py against its queue-size-1 server.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.bench.load import run_load
from tests.fixtures.load import chat_questions, search_questions
from tests.fixtures.servers import rag_server, seeded_data_dir, wait_ready

pytestmark = [pytest.mark.llm, pytest.mark.server]

LOAD_REQUESTS = 40  # 6 chats: each takes ~5 s on 2 free cores and the model serializes them
LOAD_CONCURRENCY = 16
LOAD_CHAT_SHARE = 0.15


def test_mixed_load_gets_no_server_error_and_no_wrong_answer(tmp_path_factory: pytest.TempPathFactory, model_path: Path,
                                                             figure) -> None:  # type: ignore[no-untyped-def]
    data_dir = seeded_data_dir(tmp_path_factory, "load-server")
    with rag_server(data_dir, {"RAG_LLM_MODEL_PATH": str(model_path)}) as url:
        wait_ready(url)
        report = run_load(url, search_questions(), LOAD_REQUESTS, LOAD_CONCURRENCY, LOAD_CHAT_SHARE,
                          chat_questions=chat_questions())
    data = report.to_dict()
    print(json.dumps(data, indent=1))
    chats, searches = data["kinds"]["chat"], data["kinds"]["search"]
    for kind in ("search", "chat"):
        for key in ("p50_ms", "p95_ms"):
            figure(f"{kind} {key}", data["kinds"][kind][key])
    figure("statuses", data["statuses"])
    figure("5xx / 429 / wrong", (report.server_errors, report.rejected, report.wrong))
    assert chats["sent"] == round(LOAD_REQUESTS * LOAD_CHAT_SHARE) and searches["sent"] + chats["sent"] == LOAD_REQUESTS
    assert report.server_errors == 0 and report.transport_errors == 0, data
    assert report.wrong == 0, data
    assert set(report.statuses) <= {200, 429} and report.rejected_without_retry_after == 0, data
    assert searches["statuses"] == {"200": searches["sent"]}, data  # searches are never queued behind the model
    assert chats["statuses"].get("200", 0) >= 1 and set(chats["backends"]) == {"llamacpp"}, data
