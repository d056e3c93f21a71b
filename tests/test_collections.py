"""Collections side by side in one store: `--collection` on the CLI, `rag:<name>` models and a `collection` field in
the API, `rag collections` to list and delete. Two collections that hold the same question never answer from each
other's documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.components import Components
from rag.errors import CollectionError
from rag.generation.backends.fake import FakeGenerator
from rag.index.collections import check_collection_name, uploads_dir
from rag.settings import Settings
from service.app import create_app
from tests.fixtures.api import assert_error
from tests.fixtures.cli import invoke
from tests.fixtures.fake import LOCAL
from tests.fixtures.seeded import make_settings

QUESTION = "Who keeps the Gannet Point light?"
KEEPERS = {"alpha": "Marta Quill", "beta": "Tomas Brann"}


def _docs(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "keeper.md").write_text(f"# The light\n\nBy Ana Ruiz\n\nThe keeper of the Gannet Point light is {KEEPERS[name]}. "
                                      "The light flashes white every seven seconds.\n", encoding="utf-8")
    (folder / f"{name}-harbour.md").write_text(f"# Harbour notes {name}\n\nThe {name} harbour opens at dawn; the ferry "
                                              "leaves at noon for the islands.\n", encoding="utf-8")
    return folder


@pytest.fixture
def two(tmp_path: Path, embedder) -> tuple[Settings, Components]:  # type: ignore[no-untyped-def]
    """A store holding collections alpha and beta (the same question, different answers); the parts of alpha."""
    settings = make_settings(tmp_path / "data", collection="alpha")
    alpha = Components(settings, embedder=embedder)
    for name in KEEPERS:
        alpha.for_collection(name).ingestor.ingest_paths([_docs(tmp_path / name, name)])
    return settings, alpha


def test_collection_names_follow_chromas_rule() -> None:
    for good in ("rag", "eval-seeds", "reports_2024.v2"):
        assert check_collection_name(good) == good
    for bad in ("ab", "-x-", "a..b", "has space", "x" * 513, "émile"):
        with pytest.raises(CollectionError, match="invalid collection name"):
            check_collection_name(bad)


def test_two_collections_never_see_each_others_documents(two: tuple[Settings, Components]) -> None:
    settings, alpha = two
    beta = alpha.for_collection("beta")
    assert beta.embedder is alpha.embedder and beta.generators is alpha.generators  # the models are shared ...
    assert beta.store is not alpha.store and beta.settings.bm25_dir != settings.bm25_dir  # ... nothing else
    for name, parts in (("alpha", alpha), ("beta", beta)):
        for mode in ("dense", "bm25", "hybrid"):
            passages = parts.retriever.search(QUESTION, k=10, mode=mode)
            text = " ".join(p.text for p in passages)
            other = next(k for k in KEEPERS if k != name)
            assert KEEPERS[name] in text and KEEPERS[other] not in text, (name, mode)
            assert not any(other in p.doc_id for p in passages)
    assert {i.name: (i.documents, i.chunks) for i in alpha.collections.info()} == {"alpha": (2, 4), "beta": (2, 4)}


@pytest.fixture
def service(two: tuple[Settings, Components]) -> Iterator[tuple[TestClient, FakeGenerator]]:
    """The service over that store (alpha is its configured collection); its model names the keeper it was shown."""
    settings, alpha = two
    fake = FakeGenerator([_keeper_reply])
    app = create_app(settings, Components(settings, embedder=alpha.embedder, generators={"llamacpp": fake}))
    with TestClient(app, base_url=LOCAL) as client:
        yield client, fake


def _keeper_reply(prompt) -> str:  # type: ignore[no-untyped-def]
    for c in prompt.context:
        for keeper in KEEPERS.values():
            if keeper in c.passage.text:
                return f"The keeper is {keeper} [{c.n}]."
    return "I don't know: the documents do not contain the answer."


def test_models_name_collections_and_choose_where_chat_answers(service: tuple[TestClient, FakeGenerator]) -> None:
    client, fake = service
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["rag:alpha", "rag:beta"]
    assert client.get("/v1/models/rag:beta").status_code == 200
    for model, keeper in (("rag:alpha", "Marta Quill"), ("rag:beta", "Tomas Brann"), ("anything", "Marta Quill")):
        res = client.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": QUESTION}]})
        assert res.status_code == 200, res.text
        body = res.json()
        assert keeper in body["choices"][0]["message"]["content"], (model, body)
        assert body["model"] == (model if model.startswith("rag:") else Settings().llm_model)
        other = next(k for k in KEEPERS.values() if k != keeper)
        assert all(other not in c.passage.text for c in fake.prompts[-1].context)
    res = client.post("/v1/chat/completions", json={"model": "any", "collection": "beta",
                                                    "messages": [{"role": "user", "content": QUESTION}]})
    assert "Tomas Brann" in res.json()["choices"][0]["message"]["content"]
    assert_error(client.post("/v1/chat/completions", json={"model": "rag:nope", "messages": [{"role": "user", "content": "x?"}]}),
                 404, "no collection 'nope'")
    assert_error(client.post("/v1/chat/completions", json={"model": "rag:beta", "collection": "alpha",
                                                           "messages": [{"role": "user", "content": "x?"}]}), 400, "give one")


def test_native_routes_take_a_collection(service: tuple[TestClient, FakeGenerator], two: tuple[Settings, Components]) -> None:
    client, _ = service
    settings, _ = two
    beta = client.post("/v1/search", json={"query": QUESTION, "collection": "beta"}).json()
    assert beta["collection"] == "beta" and "Tomas Brann" in beta["passages"][0]["text"]
    alpha = client.post("/v1/ask", json={"question": QUESTION}).json()
    assert "Marta Quill" in alpha["answer"] and all("beta" not in p["doc_id"] for p in alpha["passages"])
    listed = client.get("/v1/documents", params={"collection": "beta"}).json()
    assert sorted(d["doc_id"] for d in listed["documents"]) == ["beta-harbour.md", "keeper.md"]
    assert_error(client.post("/v1/search", json={"query": "x", "collection": "nope"}), 404, "nope")
    assert_error(client.post("/v1/search", json={"query": "x", "collection": "no way"}), 400, "invalid collection name")
    assert_error(client.get("/v1/documents", params={"collection": "nope"}), 404, "nope")
    # An upload may start a collection; its file is kept apart from the default collection's uploads.
    res = client.post("/v1/documents", data={"collection": "gamma", "author": "Ana Ruiz", "date": "2020-05-01",
                                             "metadata": json.dumps({"topic": "lights"})},
                      files={"file": ("keeper.md", b"# Gamma light\n\nThe keeper of the Gannet Point light is Ewan Moss.\n")})
    assert res.status_code == 201, res.text
    assert res.json()["authors"] == ["Ana Ruiz"] and res.json()["metadata"] == {"topic": "lights"}
    stored = uploads_dir(settings, "gamma") / "keeper.md"
    assert stored.is_file() and json.loads(stored.with_name("keeper.md.meta.json").read_text())["topic"] == "lights"
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["rag:alpha", "rag:beta", "rag:gamma"]
    gamma = client.post("/v1/search", json={"query": QUESTION, "collection": "gamma", "where": {"topic": "lights"}}).json()
    assert [p["doc_id"] for p in gamma["passages"]] == ["keeper.md"]
    assert "Ewan Moss" not in json.dumps(client.post("/v1/search", json={"query": QUESTION, "k": 10}).json())
    assert_error(client.post("/v1/documents", data={"date": "someday"}, files={"file": ("x.md", b"# X\n\nText here.\n")}),
                 400, "someday")
    assert_error(client.post("/v1/documents", data={"metadata": "[1, 2]"}, files={"file": ("x.md", b"# X\n\nText.\n")}),
                 400, "metadata")


def test_cli_collections_list_search_and_delete_with_confirmation(two: tuple[Settings, Components], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings, _ = two

    def run(args: list[str], input: str | None = None):  # type: ignore[no-untyped-def]
        return invoke(args, settings.data_dir, monkeypatch, input)

    listed = run(["collections", "--json"])
    search = run(["search", QUESTION, "--collection", "beta", "--json", "-k", "3"])
    missing = run(["search", QUESTION, "--collection", "gamma"])
    kept = run(["collections", "delete", "beta"], input="n\n")
    after_no = run(["collections", "--json"])
    deleted = run(["collections", "delete", "beta"], input="y\n")
    unknown = run(["collections", "delete", "beta", "--yes"])
    forced = run(["collections", "delete", "alpha", "--yes"])
    after = run(["collections", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {c["name"]: c["documents"] for c in json.loads(listed.stdout)} == {"alpha": 2, "beta": 2}
    assert search.exit_code == 0 and "Tomas Brann" in json.loads(search.stdout)[0]["text"]
    assert missing.exit_code == 1 and "no collection 'gamma'" in missing.stderr
    assert kept.exit_code == 1 and "not deleted" in kept.stderr
    assert {c["name"] for c in json.loads(after_no.stdout)} == {"alpha", "beta"}
    assert deleted.exit_code == 0 and "deleted collection beta: 4 chunks" in deleted.stdout
    assert not (settings.data_dir / "bm25" / "beta").exists()
    assert unknown.exit_code == 1 and "no collection 'beta'" in unknown.stderr
    assert forced.exit_code == 0 and json.loads(after.stdout) == []
