"""Server mode: the same code against a real `chroma run` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.paths import SEEDS
from tests.fixtures.seeded import make_settings
from tests.fixtures.servers import chroma_server as run_chroma


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    with run_chroma(tmp_path / "chroma-server") as port:
        yield port


@pytest.mark.server
def test_ingest_and_search_through_chroma_server(tmp_path: Path, chroma_server: int, embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.components import Components

    settings = make_settings(tmp_path / "data", chroma_host="127.0.0.1", chroma_port=chroma_server)
    ing = Components(settings, embedder=embedder).ingestor
    # The store talks HTTP to that server (chromadb's Client class is the same for both; its API implementation is not).
    chroma = ing.store.client.get_settings()
    assert chroma.chroma_api_impl == "chromadb.api.fastapi.FastAPI", chroma.chroma_api_impl
    assert (chroma.chroma_server_host, int(chroma.chroma_server_http_port)) == ("127.0.0.1", chroma_server)
    report = ing.ingest_paths([SEEDS])
    assert len(report.added) == 5
    assert not (tmp_path / "data" / "chroma").exists(), "server mode must not create an embedded store"
    again = ing.ingest_paths([SEEDS])
    assert again.chunks_written == 0
    top = Components(settings, embedder=embedder).retriever.search("Who has led ISIS-K since 2020?", k=3)
    assert "Shahab al-Muhajir" in top[0].text


@pytest.mark.server
def test_server_and_embedded_give_same_results(tmp_path: Path, chroma_server: int, embedder, retriever) -> None:  # type: ignore[no-untyped-def]
    from rag.components import Components

    settings = make_settings(tmp_path / "data", chroma_host="127.0.0.1", chroma_port=chroma_server)
    remote_parts = Components(settings, embedder=embedder)
    remote_parts.ingestor.ingest_paths([SEEDS])
    remote = remote_parts.retriever
    for q in ("Who has led ISIS-K since 2020?", "How many fighters does IS-K have?"):
        assert [p.chunk_id for p in remote.search(q, k=5, mode="dense")] == [p.chunk_id for p in retriever.search(q, k=5, mode="dense")]
