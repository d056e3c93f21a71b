"""What the service lets in and what it gives away, in-process over the seeded collection with a scripted
generator: text that is not Unicode, foreign Hosts and Origins, CORS, public readiness, server paths and URLs in
responses, and generation left running for a client that went away."""

from __future__ import annotations

from typing import Any

import pytest

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
