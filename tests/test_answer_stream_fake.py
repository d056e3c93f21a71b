"""The answer path through the real HTTP seam with a scripted generator: SSE framing, the verified-answer delta,
fallback, abstention, citation rendering, error mapping and 429s, pinned deterministically (no model's mood).

Real Chroma and the real embedding model; only the generator is a ``FakeGenerator``. The real-model tests
(``test_service_openai.py``, ``test_answering.py``) stay as the end-to-end layer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rag.components import Components
from rag.embedding import Embedder
from rag.generation.answer import ABSTENTION, STAGES
from rag.generation.backends.fake import FakeGenerator
from rag.settings import Settings
from service.app import create_app
from tests.fixtures.api import LEADER_DOC, LEADER_Q
from tests.fixtures.fake import LOCAL, cite, deltas, sse
from tests.fixtures.paths import SEEDS


def chat(question: str = LEADER_Q, **extra: Any) -> dict[str, Any]:
    return {"model": "rag", "messages": [{"role": "user", "content": question}], **extra}


def test_draft_stream_framing_tokens_final_chunk_usage_and_done(app_with: Any) -> None:
    reply = cite("al-Muhajir", "Shahab al-Muhajir has led ISIS-K since 2020 [{n}].")
    client = app_with(FakeGenerator([reply]))
    chunks = sse(client, chat(stream_options={"include_usage": True}, stream_draft=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = deltas(chunks)
    final, usage = chunks[-2], chunks[-1]
    words = len(final["answer"].split())
    assert words == 8 and len([d for d in text if d]) == words  # one delta per scripted word
    assert final["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    assert "".join(text) == final["answer"]  # unchanged by verification: no extra delta
    assert not any("Verified answer" in d for d in text)
    assert final["abstained"] is False and final["backend"] == "fake" and final["fallback_reason"] is None
    assert [s["doc_id"] for s in final["sources"]] == [LEADER_DOC]
    assert [c for c in chunks if "sources" in c] == [final]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == words
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + words > words
    assert all(c["usage"] is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_field(app_with: Any) -> None:
    client = app_with(FakeGenerator([cite("al-Muhajir", "Shahab al-Muhajir [{n}].")]))
    chunks = sse(client, chat())
    assert all("usage" not in c for c in chunks)


def test_verified_stream_never_shows_a_dropped_sentence(app_with: Any) -> None:
    reply = cite("al-Muhajir", "Shahab al-Muhajir has led ISIS-K since 2020 [{n}]. The moon is made of green cheese [1]. "
                               "He is Iraqi [{n}].")
    client = app_with(FakeGenerator([reply]))
    chunks = sse(client, chat(stream_options={"include_usage": True}))
    text = [d for d in deltas(chunks) if d]
    final = chunks[-2]
    assert len(text) == 2 and "".join(text) == final["answer"]  # one delta per verified sentence, nothing else
    assert "cheese" not in "".join(text) and "Verified answer" not in "".join(text)
    assert text[0].startswith("Shahab al-Muhajir") and text[1].startswith(" He is Iraqi [")
    assert 0.0 <= final["confidence"] <= 1.0 and final["abstained"] is False
    assert chunks[-1]["usage"]["completion_tokens"] == 20  # the whole 20-word draft was generated (one token per word)


def test_draft_stream_sends_the_verified_answer_when_verification_changed_the_draft(app_with: Any) -> None:
    reply = cite("al-Muhajir", "Shahab al-Muhajir has led ISIS-K since 2020 [{n}]. The moon is made of green cheese [1].")
    client = app_with(FakeGenerator([reply]))
    chunks = sse(client, chat(stream_draft=True))
    text = [d for d in deltas(chunks) if d]
    final = chunks[-1]
    assert "cheese" not in final["answer"] and "al-Muhajir" in final["answer"]
    assert text[-1] == "\n\nVerified answer: " + final["answer"]  # the last content delta, right before the final chunk
    assert "cheese" in "".join(text[:-1])  # the draft was streamed as generated


def test_stream_abstains_on_an_unsupported_answer(app_with: Any) -> None:
    client = app_with(FakeGenerator(["The capital of Peru is Lima [1]."]))
    chunks = sse(client, chat("What is the capital of Peru?"))
    final = chunks[-1]
    assert final["abstained"] is True and final["answer"] == ABSTENTION and final["sources"] == []
    assert [d for d in deltas(chunks) if d] == [ABSTENTION]  # the draft's claim is never shown


def test_generator_failure_falls_back_to_extractive(app_with: Any) -> None:
    client = app_with(FakeGenerator(["Shahab al-Muhajir leads it now [1]."], fail_after=2))
    final = sse(client, chat())[-1]
    assert final["backend"] == "extractive" and "failed on purpose" in final["fallback_reason"]
    assert final["sources"][0]["doc_id"] == LEADER_DOC


def test_plain_completion_renders_citations_as_sources(app_with: Any) -> None:
    reply = cite("al-Muhajir", "Since 2020 the group has been led by Shahab al-Muhajir [{n}], an Iraqi.")
    client = app_with(FakeGenerator([reply]))
    res = client.post("/v1/chat/completions", json=chat())
    assert res.status_code == 200, res.text
    body = res.json()
    content = body["choices"][0]["message"]["content"]
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
    (source,) = body["sources"]
    assert f"[{source['n']}]" in content and source["doc_id"] == LEADER_DOC
    assert source["quote"] == "Since 2020, it has been led by the Iraqi Shahab al-Muhajir."
    assert set(source) == {"n", "doc_id", "title", "source", "quote", "start", "end", "score", "passage", "passage_start"}
    assert (SEEDS / source["source"]).read_text()[source["start"]:source["end"]] == source["quote"]  # relative to the seeds
    # The passage around the quote (the web page highlights the quote in it), located by the document offsets.
    at = source["start"] - source["passage_start"]
    assert source["passage"][at:at + len(source["quote"])] == source["quote"] and len(source["passage"]) > len(source["quote"])
    assert body["usage"]["completion_tokens"] == len(content.split()) and body["notes"] == []


def test_the_prompt_the_model_gets_holds_numbered_passages_and_the_question(app_with: Any) -> None:
    fake = FakeGenerator([cite("al-Muhajir", "Shahab al-Muhajir [{n}].")])
    client = app_with(fake)
    assert client.post("/v1/ask", json={"question": LEADER_Q}).status_code == 200
    (prompt,) = fake.prompts
    assert prompt.messages[0]["role"] == "system" and prompt.question == LEADER_Q
    user = prompt.messages[-1]["content"]
    assert user.endswith(f"Question: {LEADER_Q}") and all(f"[{c.n}]" in user for c in prompt.context)


def test_clients_current_message_shapes_are_accepted(app_with: Any) -> None:
    client = app_with(FakeGenerator([cite("al-Muhajir", "Shahab al-Muhajir [{n}].")]))
    res = client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "temperature": 0.2, "some_future_field": {"x": 1},
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function",
                                                                   "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "1", "content": "tool output"},
            {"role": "user", "content": [{"type": "text", "text": "Who has led"}, {"type": "text", "text": "ISIS-K since 2020?"}]},
        ]})
    assert res.status_code == 200, res.text
    body = res.json()
    assert "al-Muhajir" in body["choices"][0]["message"]["content"]
    assert any("tools" in n for n in body["notes"]) and any("messages[3]" in n and "tool" in n for n in body["notes"])


@pytest.mark.parametrize(("body", "status", "code", "words"), [
    (chat("   "), 400, "empty_question", "empty"),
    (chat("x" * 5000), 400, "question_too_long", "limit"),
    ({"model": "rag", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "last_message_not_user", "last message"),
    ({"model": "rag", "messages": []}, 400, "invalid_request", "messages"),
    (chat(backend="openai"), 400, "backend_not_enabled", "not enabled"),
    (chat(backend="gpt"), 400, "invalid_request", "backend"),
    (chat(prefer="oldest"), 400, "invalid_request", "prefer"),
    (chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]), 400,
     "unsupported_content", "text"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_bad_requests_map_to_clear_errors_before_anything_streams(app_with: Any, body: dict[str, Any], status: int,
                                                                   code: str, words: str, stream: bool) -> None:
    fake = FakeGenerator()
    client = app_with(fake)
    res = client.post("/v1/chat/completions", json={**body, "stream": stream})
    assert res.status_code == status, res.text
    error = res.json()["error"]
    assert error["code"] == code and words in error["message"] and error["type"] == "invalid_request_error"
    assert fake.prompts == []


def test_empty_collection_is_a_409(tmp_path: Path, embedder: Embedder) -> None:
    settings = Settings(data_dir=tmp_path)
    app = create_app(settings, Components(settings, embedder=embedder, generators={"llamacpp": FakeGenerator()}))
    with TestClient(app, base_url=LOCAL) as client:
        for path, body in (("/v1/chat/completions", chat()), ("/v1/ask", {"question": LEADER_Q}), ("/v1/search", {"query": "x"})):
            res = client.post(path, json=body)
            assert res.status_code == 409 and res.json()["error"]["code"] == "empty_index", (path, res.text)


def test_a_full_queue_answers_429_with_retry_after(app_with: Any) -> None:
    slow = FakeGenerator([cite("al-Muhajir", "Shahab al-Muhajir has led ISIS-K since 2020 [{n}].")], delay=0.3)
    client = app_with(slow, generation_queue_size=1)
    state = client.app.state.rag  # type: ignore[attr-defined]
    first: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: first.setdefault("res", client.post("/v1/chat/completions", json=chat())))
    worker.start()
    deadline = time.monotonic() + 30
    while state.queue.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    busy = client.post("/v1/chat/completions", json=chat(stream=True))
    worker.join(60)
    assert busy.status_code == 429 and int(busy.headers["Retry-After"]) >= 1, busy.text
    assert busy.json()["error"]["code"] == "queue_full" and busy.json()["error"]["type"] == "rate_limit_error"
    assert first["res"].status_code == 200
    assert client.post("/v1/chat/completions", json=chat()).status_code == 200  # the slot is free again


def test_ask_returns_the_answer_object_from_the_same_run(app_with: Any) -> None:
    client = app_with(FakeGenerator([cite("al-Muhajir", "Shahab al-Muhajir has led ISIS-K since 2020 [{n}].")]))
    body = client.post("/v1/ask", json={"question": LEADER_Q, "top_k": 3}).json()
    assert body["backend"] == "fake" and body["citations"][0]["doc_id"] == LEADER_DOC and len(body["passages"]) == 3
    assert set(body["timings"]) == set(STAGES)
    assert 0 <= body["confidence"] <= 1 and body["signals"]["judged"] == 0.0
    assert body["raw_answer"].startswith("Shahab al-Muhajir")
