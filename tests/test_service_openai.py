"""The OpenAI-compatible routes through the official `openai` client, against a real `rag serve` with the real model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from rag.generation.answer import ABSTENTION
from tests.fixtures.api import LEADER_DOC, LEADER_Q
from tests.fixtures.servers import rag_server, seeded_data_dir, wait_ready

pytestmark = [pytest.mark.server, pytest.mark.llm]
MODEL_ID = "qwen2.5-1.5b-instruct"  # Settings.llm_model's default
VERIFIED = "\n\nVerified answer: "  # the delta that follows a draft verification changed


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[str]:
    data_dir = seeded_data_dir(tmp_path_factory, "openai-server")
    with rag_server(data_dir, {"RAG_LLM_MODEL_PATH": str(model_path)}) as base:
        wait_ready(base)
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed", timeout=600, max_retries=0)


def _comparable(text: str) -> str:
    return re.sub(r"[\s.]+", "", text)


def test_models_list_one_model_per_collection(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["rag:rag"]  # the one collection, named as the model that answers from it
    assert models.data[0].object == "model" and models.data[0].owned_by
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID  # the LLM's name answers from the configured collection
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_completion_answers_with_sources(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": LEADER_Q}])
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-") and resp.model == MODEL_ID
    choice = resp.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content or ""
    assert "Shahab al-Muhajir" in content
    extra = resp.model_extra or {}
    assert extra["abstained"] is False and extra["backend"] in ("llamacpp", "extractive")
    sources = extra["sources"]
    assert sources and LEADER_DOC in {s["doc_id"] for s in sources}
    for s in sources:
        assert f"[{s['n']}]" in content
        assert set(s) == {"n", "doc_id", "title", "source", "quote", "start", "end", "score", "passage", "passage_start"}
        assert s["quote"] and s["end"] > s["start"] and s["title"]
    assert resp.to_dict()["sources"] == sources
    if extra["backend"] == "llamacpp":
        assert resp.usage and resp.usage.completion_tokens > 3 and resp.usage.prompt_tokens > 50
        assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


@pytest.mark.parametrize("draft", [True, False])
def test_streaming_sends_deltas_then_sources_usage_and_done(client: openai.OpenAI, draft: bool) -> None:
    stream = client.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": [{"type": "text", "text": LEADER_Q}]}],
        stream=True, stream_options={"include_usage": True}, extra_body={"stream_draft": draft},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL_ID for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    contents = [c.choices[0].delta.content for c in with_choices if c.choices[0].delta.content]
    if draft:
        assert len(contents) > 3, "draft tokens should arrive as several deltas"
    else:  # verified sentences only: the stream is exactly the verified answer
        assert "".join(contents) == (with_choices[-1].model_extra or {})["answer"]
    final = with_choices[-1]
    assert final.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    # sources only on the final chunk
    assert [c for c in chunks if "sources" in (c.model_extra or {})] == [final]
    extra = final.model_extra or {}
    assert LEADER_DOC in {s["doc_id"] for s in extra["sources"]}
    assert "Muhajir" in extra["answer"] and extra["abstained"] is False
    streamed = "".join(contents)
    assert "Muhajir" in streamed
    # the usage chunk comes last, with no choices
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.total_tokens == usage_chunk.usage.prompt_tokens + usage_chunk.usage.completion_tokens
    if extra["backend"] == "llamacpp":
        assert usage_chunk.usage.completion_tokens > 3
    assert all(c.usage is None for c in chunks[:-1])


def _raw_stream(url: str, body: dict[str, Any]) -> list[str]:
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as res:
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
        return [line[len("data: "):] for line in res.iter_lines() if line.startswith("data: ")]


def test_a_streamed_answer_ends_on_what_verification_kept(url: str) -> None:
    """End to end with the real model, whatever it drafts: a client that shows the stream as it comes ends up showing
    the verified answer, either as the draft itself or as the one "Verified answer" delta sent last. (That delta is
    pinned deterministically, with a scripted model, in test_answer_stream_fake.py.)"""
    # The packaged model tends to stream "The capital of Peru is Lima [4].", which verification rejects.
    events = _raw_stream(url, {"model": "x", "stream": True, "messages": [{"role": "user", "content": "What is the capital of Peru?"}]})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "usage" not in chunks[0]  # no include_usage: no usage fields at all
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["abstained"] is True and final["answer"] == ABSTENTION and final["sources"] == []
    shown = "".join(deltas).rsplit(VERIFIED, 1)[-1]  # what is on screen once the stream ended
    assert _comparable(shown) == _comparable(ABSTENTION), deltas
    content = [i for i, d in enumerate(deltas) if d]
    verified = [i for i, d in enumerate(deltas) if d.startswith(VERIFIED)]
    assert verified in ([], content[-1:]), deltas  # at most one, and the last content delta before the final chunk


def test_stream_sends_no_verified_delta_when_nothing_changed(url: str) -> None:
    body = {"model": "x", "stream": True, "backend": "extractive", "messages": [{"role": "user", "content": LEADER_Q}]}
    events = _raw_stream(url, body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"].get("content") or "" for c in chunks]
    assert not any("Verified answer" in d for d in deltas)
    assert _comparable("".join(deltas)) == _comparable(chunks[-1]["answer"])
    assert chunks[-1]["backend"] == "extractive" and chunks[-1]["sources"][0]["doc_id"] == LEADER_DOC


def test_multi_turn_history_resolves_the_follow_up(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL_ID, messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": LEADER_Q},
        {"role": "assistant", "content": "Shahab al-Muhajir has led ISIS-K since 2020 [1]."},
        {"role": "user", "content": "How many fighters does his group have?"},
    ])
    content = resp.choices[0].message.content or ""
    abstained = (resp.model_extra or {})["abstained"]
    assert abstained or "2,000" in content or "2000" in content, content  # never another group's number


def test_errors_use_the_openai_error_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as bad_role:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}])  # type: ignore[list-item,misc]
    assert "role" in bad_role.value.message and bad_role.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "  "}])
    assert "empty" in empty.value.message
    with pytest.raises(openai.BadRequestError) as last:
        client.chat.completions.create(model=MODEL_ID, stream=True, messages=[{"role": "assistant", "content": "hi"}])
    assert "last message" in last.value.message
