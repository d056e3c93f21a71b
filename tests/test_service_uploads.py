"""Uploads through the API in-process (FastAPI TestClient, real Chroma and embedding model, a fresh data dir):
ids per file name, collisions refused, parsing outside the documents lock (issue 13, items 1 and 18)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import rag.ingestion.pipeline as pipeline
from rag.components import Components
from service.app import create_app
from tests.fixtures.api import assert_error
from tests.fixtures.seeded import make_settings


@pytest.fixture
def client(tmp_path: Path, embedder) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "data", llm_backend="extractive")
    # TestClient's default host name, "testserver", is not one the service answers to (the Host allow-list)
    with TestClient(create_app(settings, Components(settings, embedder=embedder)), base_url="http://127.0.0.1") as c:
        yield c


def _upload(client: TestClient, name: str, text: str) -> dict:  # type: ignore[type-arg]
    res = client.post("/v1/documents", files={"file": (name, text.encode(), "text/plain")})
    assert res.status_code in (200, 201), res.text
    return res.json()


def _search(client: TestClient, query: str) -> list[str]:
    res = client.post("/v1/search", json={"query": query, "k": 3, "mode": "bm25"})
    assert res.status_code == 200, res.text
    return [p["doc_id"] for p in res.json()["passages"]]


def test_similar_upload_names_are_separate_documents_and_files(client: TestClient, tmp_path: Path) -> None:
    """`My Report.md` and `My_Report.md`, `Report.md` and `report.txt` never replace each other, and deleting each
    removes its own file: nothing is left behind in uploads/."""
    uploads = tmp_path / "data" / "uploads"
    texts = {"My Report.md": "Spaced\n\nThe zorblax ferry leaves at dawn.\n",
             "My_Report.md": "Underscored\n\nThe quillon tower is painted teal.\n",
             "Report.md": "Capital\n\nThe vantaa orchard grows blue pears.\n",
             "report.txt": "Lower\n\nThe kessel bridge opened in 1911.\n"}
    made = {name: _upload(client, name, text) for name, text in texts.items()}
    assert all(m["status"] == "added" for m in made.values())
    ids = {name: m["doc_id"] for name, m in made.items()}
    assert len(set(ids.values())) == 4 and ids["My_Report.md"] == "My_Report.md" and ids["report.txt"] == "report.txt"
    assert sorted(p.name for p in uploads.iterdir()) == sorted(m["filename"] for m in made.values())
    for name, word in (("My Report.md", "zorblax"), ("My_Report.md", "quillon"), ("Report.md", "vantaa"), ("report.txt", "kessel")):
        assert _search(client, word)[0] == ids[name]
        assert (uploads / made[name]["filename"]).read_text() == texts[name]
    assert _upload(client, "My Report.md", texts["My Report.md"])["status"] == "unchanged"  # the same name again
    for doc_id in ids.values():
        assert client.delete(f"/v1/documents/{doc_id}").status_code == 200
    assert list(uploads.iterdir()) == [] and client.get("/v1/documents").json()["count"] == 0


def test_an_upload_may_not_take_the_id_of_an_ingested_file(client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.md").write_text("Ingested notes\n\nThe harbour master is Ada Quill.\n")
    (folder / "sub" / "deep.md").write_text("Deep notes\n\nThe branch line closed in 1964.\n")
    parts: Components = client.app.state.rag.components  # type: ignore[attr-defined]
    parts.ingestor.ingest_paths([folder])
    before = sorted(parts.store.all_ids())
    res = client.post("/v1/documents", files={"file": ("notes.md", b"Uploaded notes\n\nSomething else.\n", "text/markdown")})
    assert_error(res, 409, "notes.md", "already belongs")
    assert sorted(parts.store.all_ids()) == before and not (tmp_path / "data" / "uploads" / "notes.md").exists()
    # Ids of files in subfolders hold a slash: DELETE takes them as they are.
    assert client.delete("/v1/documents/sub/deep.md").status_code == 200
    assert [d["doc_id"] for d in client.get("/v1/documents").json()["documents"]] == ["notes.md"]


def test_uploads_are_parsed_outside_the_documents_lock(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading and chunking a document runs before the documents lock is taken: a slow or hostile file cannot hold
    up other uploads and deletes (issue 13, item 18)."""
    state = client.app.state.rag  # type: ignore[attr-defined]
    seen: list[bool] = []
    real = pipeline.read_document

    def spy(data: bytes, name: str):  # type: ignore[no-untyped-def]
        seen.append(state.docs_lock.locked())
        return real(data, name)

    monkeypatch.setattr(pipeline, "read_document", spy)
    _upload(client, "lock.txt", "Lock test\n\nThe zorblax ferry leaves at dawn.\n")
    assert seen == [False]


def test_an_html_element_bomb_upload_is_refused_quickly(client: TestClient) -> None:
    started = time.perf_counter()
    res = client.post("/v1/documents", files={"file": ("bomb.html", b"<div>" * 200_000, "text/html")})
    assert_error(res, 400, "bomb.html", "elements")
    assert time.perf_counter() - started < 5
    assert client.get("/v1/documents").json()["count"] == 0
