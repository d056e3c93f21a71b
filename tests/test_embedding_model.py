"""The collection remembers which embedding model made its vectors; another model is refused, never mixed in (issue 13, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.components import Components
from rag.embedding import model_identity, packaged_model_path
from rag.errors import EmbeddingModelMismatch
from rag.index.store import _chroma_settings
from tests.fixtures.cli import run_cli
from tests.fixtures.seeded import make_settings


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    (folder / "ferry.txt").write_text("Ferry times\n\nThe Zorblax ferry leaves Quillon at dawn every Tuesday.\n", encoding="utf-8")
    return folder


def test_the_model_is_recorded_and_another_one_is_refused(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "data")
    parts = Components(settings, embedder=embedder)
    parts.ingestor.ingest_paths([_folder(tmp_path)])
    assert parts.store.collection.metadata["embed_model"] == model_identity(settings) == "packaged:all-MiniLM-L6-v2"
    assert parts.store.collection.metadata["embed_dim"] == 384
    ids = sorted(parts.store.all_ids())

    other = tmp_path / "other-model"
    other.mkdir()
    changed = Components(settings.model_copy(update={"embed_model_path": other}))  # its model is never loaded
    for build in (lambda: changed.ingestor, lambda: changed.retriever, lambda: changed.answerer):
        with pytest.raises(EmbeddingModelMismatch) as refused:
            build()
        message = str(refused.value)
        assert "packaged:all-MiniLM-L6-v2" in message and str(other) in message and "rag ingest --reindex" in message
    assert not changed.built("embedder"), "the check must not load the configured model"
    # Commands that need no model still work, and nothing was changed by the refusals.
    assert sorted(changed.store.all_ids()) == ids and [d["doc_id"] for d in changed.store.documents()] == ["ferry.txt"]
    assert Components(settings, embedder=embedder).retriever.search("Zorblax ferry", k=1)[0].doc_id == "ferry.txt"


def test_a_collection_from_before_models_were_recorded_is_checked_by_vector_size(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    import chromadb

    settings = make_settings(tmp_path / "data")
    settings.chroma_dir.mkdir(parents=True)
    # What an older version created: a cosine collection with no model recorded, here holding 768-d vectors.
    legacy = chromadb.PersistentClient(path=str(settings.chroma_dir), settings=_chroma_settings()).get_or_create_collection(
        settings.collection, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    meta = {"doc_id": "old", "title": "Old", "source": "/gone/old.txt", "chunk_index": 0, "n_chunks": 1, "start": 0, "end": 3}
    legacy.upsert(ids=["old::0123456789ab::00000/00001"], embeddings=[[1 / 768**0.5] * 768], documents=["old"], metadatas=[meta])
    fresh = Components(settings, embedder=embedder)
    with pytest.raises(EmbeddingModelMismatch, match="768"):
        fresh.retriever  # noqa: B018
    assert fresh.store.count() == 1


@pytest.mark.slow  # four fresh `rag` processes (~10 s each)
def test_cli_refuses_a_changed_model_and_reindexes_on_request(tmp_path: Path) -> None:
    folder, data = _folder(tmp_path), tmp_path / "data"
    assert run_cli(["ingest", str(folder)], data).returncode == 0
    alias = tmp_path / "same-weights-other-path"
    alias.symlink_to(packaged_model_path(), target_is_directory=True)
    env = {"RAG_EMBED_MODEL_PATH": str(alias)}
    refused = run_cli(["ingest", str(folder)], data, env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "packaged:all-MiniLM-L6-v2" in refused.stderr and str(alias) in refused.stderr and "--reindex" in refused.stderr
    assert run_cli(["search", "Zorblax ferry", "--mode", "dense"], data, env=env).returncode == 1
    redone = run_cli(["ingest", "--reindex", str(folder)], data, env=env)
    assert redone.returncode == 0, redone.stderr
    found = run_cli(["search", "Zorblax ferry", "--mode", "dense", "--json"], data, env=env)
    assert found.returncode == 0 and "ferry.txt" in found.stdout, found.stderr
