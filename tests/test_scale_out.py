"""Scale-out: two `rag serve` workers sharing one `chroma run` server and one OpenAI-compatible model server.

The setup documented under "Larger deployments" in the README, run for real: worker A takes the uploads,
worker B serves searches and answers from the same Chroma collection. B's BM25 cache lives in its own data dir
and follows Chroma every RAG_BM25_REFRESH_SECONDS; dense search reads Chroma directly. The model server runs with
``--interrupt_requests False`` (see tests.fixtures.servers.llama_server): its default cuts one worker's stream short when the
other worker's request arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.fixtures.paths import SEEDS
from tests.fixtures.servers import LLAMA_ALIAS, chroma_server, llama_server, rag_server, wait_for

pytestmark = [pytest.mark.server, pytest.mark.llm]

QUESTION = "Who has led ISIS-K since 2020?"
LEADER_DOC = "002_2399800fba452946.txt"  # Arkadiusz Legieć, "Prospects for ISIS in Afghanistan"
LEADER_TEXT = "Shahab al-Muhajir"
REFRESH_SECONDS = 1.0
VISIBLE_WITHIN = 60.0  # seconds a change made through A may take to show on B (refresh + BM25 sync, 2 busy cores)


@dataclass
class Cluster:
    """Base URLs of the running processes and the workers' data dirs."""

    chroma_port: int
    llm_url: str
    a: str
    b: str
    a_dir: Path
    b_dir: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[Cluster]:
    """Chroma server + llama_cpp.server + workers A and B, each worker with its own empty data dir."""
    root = tmp_path_factory.mktemp("scale-out")
    with chroma_server(root / "chroma-server") as port, llama_server(model_path) as llm_url:
        env = {
            "RAG_CHROMA_HOST": "127.0.0.1",
            "RAG_CHROMA_PORT": str(port),
            "RAG_LLM_BACKEND": "openai",
            "RAG_LLM_BASE_URL": llm_url,
            "RAG_LLM_MODEL": LLAMA_ALIAS,
            "RAG_LLM_TIMEOUT": "300",  # the model server is shared with other work on 2 cores: never fall back on slowness
            "RAG_BM25_REFRESH_SECONDS": str(REFRESH_SECONDS),
        }
        (root / "a").mkdir()
        (root / "b").mkdir()
        with rag_server(root / "a" / "data", env) as a, rag_server(root / "b" / "data", env) as b:
            yield Cluster(port, llm_url, a, b, root / "a" / "data", root / "b" / "data")


def wait_ready(url: str, within: float = 300) -> dict[str, Any]:
    """The `/readyz` body once ``url`` reports ready (store and generator)."""
    body, _ = wait_for(lambda: (r.json() if (r := httpx.get(f"{url}/readyz", timeout=10)).status_code == 200 else None),
                       within, f"{url} ready", interval=0.5)
    return body


def search(url: str, query: str, mode: str = "hybrid", k: int = 5) -> list[dict[str, Any]]:
    """The passages `/v1/search` on ``url`` returns."""
    res = httpx.post(f"{url}/v1/search", json={"query": query, "k": k, "mode": mode}, timeout=60)
    assert res.status_code == 200, res.text
    return list(res.json()["passages"])


def upload(url: str, path: Path) -> dict[str, Any]:
    """Upload ``path`` through `/v1/documents` on ``url``; the new document's record."""
    with path.open("rb") as fh:
        res = httpx.post(f"{url}/v1/documents", files={"file": (path.name, fh, "text/plain")}, timeout=300)
    assert res.status_code == 201, res.text
    return dict(res.json())


def leader_passage(passages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The Legieć passage naming the ISIS-K leader, if ``passages`` hold it."""
    return next((p for p in passages if p["doc_id"] == LEADER_DOC and LEADER_TEXT in p["text"]), None)


def test_two_workers_share_chroma_and_model_server(cluster: Cluster, figure: Callable[[str, object], None]) -> None:
    started = time.monotonic()
    a, b = cluster.a, cluster.b
    figures: dict[str, float] = {}
    seeds = sorted(SEEDS.glob("*.txt"))
    leader_file = SEEDS / LEADER_DOC
    assert len(seeds) == 5 and leader_file in seeds

    # Four documents through A; B answers searches over them, which builds B's BM25 cache from Chroma.
    for path in seeds:
        if path != leader_file:
            assert upload(a, path)["status"] == "added"
    wait_ready(b)
    before = search(b, QUESTION, mode="bm25")
    assert before and leader_passage(before) is None
    assert (cluster.b_dir / "bm25").is_dir(), "worker B keeps its BM25 cache in its own data dir"

    # The fifth (the Legieć analysis) through A: B must find the passage by dense (Chroma), then by BM25 (its cache).
    t0 = time.monotonic()
    uploaded = upload(a, leader_file)
    figures["upload_s"] = time.monotonic() - t0
    assert uploaded["doc_id"] == LEADER_DOC and uploaded["chunks_written"] > 0
    t0 = time.monotonic()
    hit, figures["visible_hybrid_s"] = wait_for(lambda: leader_passage(search(b, QUESTION)), VISIBLE_WITHIN, "passage on B (hybrid)")
    assert hit["rank"] <= 3
    wait_for(lambda: leader_passage(search(b, QUESTION, mode="bm25")), VISIBLE_WITHIN, "passage on B (bm25)")
    figures["visible_bm25_s"] = time.monotonic() - t0

    docs = httpx.get(f"{b}/v1/documents", timeout=30).json()
    assert docs["count"] == 5
    assert {d["doc_id"] for d in docs["documents"]} == {p.name for p in seeds}
    # The uploaded files live in A's data dir only; B sees their metadata through Chroma.
    assert sorted(p.name for p in (cluster.a_dir / "uploads").iterdir()) == [p.name for p in seeds]
    assert not (cluster.b_dir / "uploads").exists()

    # An answer on B, generated by the shared model server, cites the Legieć document.
    t0 = time.monotonic()
    res = httpx.post(f"{b}/v1/ask", json={"question": QUESTION}, timeout=600)
    figures["ask_s"] = time.monotonic() - t0
    assert res.status_code == 200, res.text
    answer = res.json()
    assert answer["backend"] == "openai" and answer["fallback_reason"] is None, answer
    assert "Muhajir" in answer["answer"] and not answer["abstained"], answer["answer"]
    assert LEADER_DOC in {c["doc_id"] for c in answer["citations"]}, answer["citations"]
    assert answer["completion_tokens"] > 3
    figures["ask_generate_ms"] = answer["timings"]["generate_ms"]
    figures["ask_first_token_ms"] = answer["timings"]["first_token_ms"]
    figures["ask_total_ms"] = answer["timings"]["total_ms"]

    # Both workers answer at the same time through the one model server (A natively, B through the official
    # openai client): the server queues the two streams, and neither is cut short or falls back to extractive.
    client = OpenAI(base_url=f"{b}/v1", api_key="unused", timeout=600, max_retries=0)
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        on_a = pool.submit(httpx.post, f"{a}/v1/ask", json={"question": QUESTION}, timeout=600)
        on_b = pool.submit(client.chat.completions.create, model="rag", messages=[{"role": "user", "content": QUESTION}])
        res_a, chat = on_a.result(), on_b.result()
    figures["concurrent_pair_s"] = time.monotonic() - t0
    assert res_a.status_code == 200, res_a.text
    answer_a = res_a.json()
    assert answer_a["backend"] == "openai" and answer_a["fallback_reason"] is None, answer_a
    assert "Muhajir" in answer_a["answer"] and LEADER_DOC in {c["doc_id"] for c in answer_a["citations"]}, answer_a
    extra = chat.model_extra or {}
    assert extra["backend"] == "openai", extra
    assert "Muhajir" in (chat.choices[0].message.content or ""), chat
    assert LEADER_DOC in {src["doc_id"] for src in extra["sources"]}, extra["sources"]

    # Delete through A: B stops returning the document's chunks, in both modes, and keeps returning k passages.
    res = httpx.delete(f"{a}/v1/documents/{LEADER_DOC}", timeout=120)
    assert res.status_code == 200 and res.json()["chunks_removed"] == uploaded["chunks_written"], res.text
    t0 = time.monotonic()

    def gone(mode: str) -> list[dict[str, Any]] | None:
        passages = search(b, QUESTION, mode=mode)
        return passages if len(passages) == 5 and all(p["doc_id"] != LEADER_DOC for p in passages) else None

    wait_for(lambda: gone("hybrid"), VISIBLE_WITHIN, "deletion on B (hybrid)")
    wait_for(lambda: gone("bm25"), VISIBLE_WITHIN, "deletion on B (bm25)")
    figures["deleted_s"] = time.monotonic() - t0
    assert httpx.get(f"{b}/v1/documents", timeout=30).json()["count"] == 4
    assert not (cluster.a_dir / "uploads" / leader_file.name).exists()

    # Server mode: neither worker opened an embedded Chroma store.
    for data_dir in (cluster.a_dir, cluster.b_dir):
        assert not (data_dir / "chroma").exists(), f"{data_dir} holds an embedded Chroma folder"

    figures["test_s"] = time.monotonic() - started
    for name, value in figures.items():
        figure(name, round(value, 2))


def test_replaced_document_reaches_other_workers_bm25(cluster: Cluster) -> None:
    """A document re-uploaded through A with new text (same number of chunks) is found by B's BM25 too."""
    old = b"Field notes. The zebracorn migration was observed near the river in spring."
    new = b"Field notes. The quasarwing migration was observed near the river in spring."

    def post(body: bytes) -> httpx.Response:
        return httpx.post(f"{cluster.a}/v1/documents", files={"file": ("field-notes.txt", body, "text/plain")}, timeout=120)

    assert post(old).status_code in (200, 201)
    wait_for(lambda: [p for p in search(cluster.b, "zebracorn", mode="bm25") if p["doc_id"] == "field-notes.txt"] or None,
             VISIBLE_WITHIN, "first version on B (bm25)")
    res = post(new)
    assert res.status_code == 200 and res.json()["status"] == "updated", res.text
    try:
        # Same chunk count, new ids: the store's (count, newest id) version tells B to sync.
        wait_for(lambda: [p for p in search(cluster.b, "quasarwing", mode="bm25") if p["doc_id"] == "field-notes.txt"] or None,
                 10 * REFRESH_SECONDS, "new version on B (bm25)")
        assert not [p for p in search(cluster.b, "zebracorn", mode="bm25") if p["doc_id"] == "field-notes.txt"]
    finally:
        httpx.delete(f"{cluster.a}/v1/documents/field-notes.txt", timeout=120)
