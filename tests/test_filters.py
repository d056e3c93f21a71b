"""Filters on document id, author, date range and user metadata apply inside dense search (Chroma ``where``) and
BM25 (rows dropped before the top-k cut), so they never leak and never starve the list; a filter that names what the
collection does not have is an error (CLI: one line, exit 1; HTTP: 400), never an empty answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import InvalidFilter
from rag.generation.backends.fake import FakeGenerator
from rag.retrieval.filters import SearchFilter, author_matches
from tests.fixtures.api import assert_error
from tests.fixtures.cli import invoke
from tests.fixtures.fake import cite

KONESKA = "004_1dece5685c29ddfe.txt"
LEGIEC = "002_2399800fba452946.txt"
HOSPITAL = "000_bc66558d9afb2305.txt"  # dated 2017-03-08 (inferred)
MODES = ("dense", "bm25", "hybrid")


def test_filters_parse_strictly() -> None:
    f = SearchFilter.parse({"doc": "a.txt", "author": ["Koneska", "Legieć"], "since": "2021", "until": "2022-06-30",
                            "where": {"Doc Type": "report"}, "topic": ["sea", "ships"]})
    assert f is not None and f.to_dict() == {"doc": ["a.txt"], "author": ["Koneska", "Legieć"], "since": "2021",
                                             "until": "2022-06-30", "where": {"doc_type": "report", "topic": ["sea", "ships"]}}
    assert SearchFilter.parse(f.to_dict()) == f
    assert SearchFilter.parse({}) is None and SearchFilter.parse(None) is None
    assert SearchFilter.from_options(["a.txt"], None, "2021-03", None, ["topic=sea"]) is not None
    for bad, words in [({"since": "yesterday"}, "since"), ({"until": "2021-02-30"}, "until"),
                       ({"since": "2022", "until": "2021"}, "after"), ({"author": {"x": 1}}, "author"),
                       ({"where": ["topic"]}, "where"), ({"author": " "}, "empty"), ({"where": {"since": "x"}}, "own")]:
        with pytest.raises(InvalidFilter, match=words):
            SearchFilter.parse(bad)
    with pytest.raises(InvalidFilter, match="key=value"):
        SearchFilter.from_options(where=["topic"])
    assert author_matches("koneska", "Cvete Koneska") and author_matches("Legiec", "Arkadiusz Legieć")
    assert not author_matches("Kones", "Cvete Koneska")


def test_unknown_documents_authors_and_keys_are_errors(retriever) -> None:  # type: ignore[no-untyped-def]
    for flt, words in [({"doc": "nope.txt"}, "no document 'nope.txt'"), ({"author": "Nobody"}, "Cvete Koneska"),
                       ({"colour": "red"}, "unknown filter field 'colour'"), ({"where": {"topic": "x"}}, "'topic'")]:
        with pytest.raises(InvalidFilter, match=words):
            retriever.search("ISIS-K", where=SearchFilter.parse(flt))


@pytest.mark.parametrize("mode", MODES)
def test_a_filter_never_leaks_and_never_starves(retriever, mode: str) -> None:  # type: ignore[no-untyped-def]
    """The query is about another document (Legieć's): filtered after the cut, the list would be nearly empty."""
    question = "Since 2020 ISIS-K has been led by the Iraqi Shahab al-Muhajir"
    unfiltered = retriever.search(question, k=10, mode=mode)
    assert sum(p.doc_id == HOSPITAL for p in unfiltered) < 5
    for flt in ({"doc": HOSPITAL}, {"until": "2017-12-31", "author": None}):
        passages = retriever.search(question, k=10, mode=mode, where=SearchFilter.parse(flt))
        assert len(passages) == 10, (flt, [p.doc_id for p in passages])
        assert {p.doc_id for p in passages} <= {HOSPITAL, "003_1dbf526cc40aa5d1.txt"}  # both dated 2017 (inferred)


def test_every_way_a_dense_filter_is_applied_gives_the_same_passages(retriever, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A few allowed chunks are scored exactly; many are found among Chroma's nearest ids (the document read from
    the id, texts fetched only for the kept ones); too few there falls back to Chroma's ``where``. Forced here on
    the seeds, each way must return the same k nearest allowed chunks."""
    from rag.retrieval import retriever as module

    question = "Since 2020 ISIS-K has been led by the Iraqi Shahab al-Muhajir"
    where = SearchFilter.parse({"doc": [HOSPITAL, "003_1dbf526cc40aa5d1.txt"]})
    exact = [(p.chunk_id, round(p.dense_score or 0, 5)) for p in retriever.search(question, k=8, mode="dense", where=where)]
    monkeypatch.setattr(module, "EXACT_LIMIT", 0)  # every filter takes the overfetch path
    overfetch = [(p.chunk_id, round(p.dense_score or 0, 5)) for p in retriever.search(question, k=8, mode="dense", where=where)]
    monkeypatch.setattr(module, "OVERFETCH_MAX", 1)  # ... which comes up short: Chroma's where
    fallback = [(p.chunk_id, round(p.dense_score or 0, 5)) for p in retriever.search(question, k=8, mode="dense", where=where)]
    assert len(exact) == 8 and exact == overfetch == fallback
    assert all(cid.split("::")[0] in {HOSPITAL, "003_1dbf526cc40aa5d1.txt"} for cid, _ in exact)


@pytest.mark.parametrize("mode", MODES)
def test_author_and_date_filters_select_the_right_documents(retriever, mode: str) -> None:  # type: ignore[no-untyped-def]
    by_author = retriever.search("Taliban fighters", k=8, mode=mode, where=SearchFilter.parse({"author": "koneska"}))
    assert len(by_author) == 8 and {p.doc_id for p in by_author} == {KONESKA}
    since = retriever.search("ISIS-K fighters", k=20, mode=mode, where=SearchFilter.parse({"since": "2021-01-01"}))
    assert {p.doc_id for p in since} == {KONESKA, LEGIEC}  # 2021-10 and 2021 (inferred); undated documents never pass
    both = retriever.search("ISIS-K fighters", k=5, mode=mode, where=SearchFilter.parse({"since": "2021-06", "author": ["Legieć", "Koneska"]}))
    assert {p.doc_id for p in both} <= {KONESKA, LEGIEC} and len(both) == 5


def test_user_metadata_filters_apply_in_both_searches(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, topic, keeper in (("a.md", "lights", "Marta Quill"), ("b.md", "lights", "Tomas Brann"), ("c.md", "ships", "Ana Ruiz")):
        body = f"---\ntopic: {topic}\nregion: Kell\n---\n# Notes {name}\n\nThe lighthouse keeper at Gannet Point was {keeper}.\n"
        (folder / name).write_text(body, encoding="utf-8")
    parts = components_factory()
    parts.ingestor.ingest_paths([folder])
    for mode in MODES:
        ships = parts.retriever.search("Who was the lighthouse keeper?", k=5, mode=mode, where=SearchFilter.parse({"topic": "Ships"}))
        assert ships and {p.doc_id for p in ships} == {"c.md"}, mode
        lights = parts.retriever.search("Who was the lighthouse keeper?", k=5, mode=mode,
                                        where=SearchFilter.from_options(where=["topic=lights", "region=kell"]))
        assert {p.doc_id for p in lights} == {"a.md", "b.md"}, mode
    with pytest.raises(InvalidFilter, match="region, topic"):
        parts.retriever.search("keeper", where=SearchFilter.parse({"colour": "red"}))


def test_cli_filters_and_their_errors(seeded_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = seeded_settings.data_dir
    ok = invoke(["search", "ISIS-K fighters", "--author", "Koneska", "-k", "4", "--json"], data, monkeypatch)
    bad = [invoke(["search", "x", *args], data, monkeypatch)
           for args in (["--since", "soon"], ["--where", "colour=red"], ["--author", "Nobody"], ["--where", "colour"])]
    assert ok.exit_code == 0, ok.output
    assert {p["doc_id"] for p in json.loads(ok.stdout)} == {KONESKA}
    for res, word in zip(bad, ("since", "colour", "Nobody", "key=value"), strict=True):
        assert res.exit_code == 1, res.output
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith("error:") and word in line, line


def test_api_search_and_ask_take_filters(app_with) -> None:  # type: ignore[no-untyped-def]
    fake = FakeGenerator([cite("attacks per month", "IS-K has averaged 14 attacks per month [{n}].")])
    client = app_with(fake)
    res = client.post("/v1/search", json={"query": "ISIS-K fighters", "k": 6, "author": "Koneska"})
    assert res.status_code == 200, res.text
    assert {p["doc_id"] for p in res.json()["passages"]} == {KONESKA} and len(res.json()["passages"]) == 6
    nested = client.post("/v1/search", json={"query": "ISIS-K fighters", "filter": {"since": "2021-01-01", "until": "2021-12-31"}})
    assert {p["doc_id"] for p in nested.json()["passages"]} <= {KONESKA, LEGIEC}
    ask = client.post("/v1/ask", json={"question": "How many attacks per month has IS-K averaged?", "doc": [KONESKA]})
    assert ask.status_code == 200, ask.text
    assert {p["doc_id"] for p in ask.json()["passages"]} == {KONESKA}
    for path, body, words in [
        ("/v1/search", {"query": "x", "since": "soon"}, ("since",)),
        ("/v1/search", {"query": "x", "filter": {"colour": "red"}}, ("colour",)),
        ("/v1/ask", {"question": "x?", "author": "Nobody"}, ("Nobody",)),
        ("/v1/ask", {"question": "x?", "author": "Koneska", "filter": {"author": "Legiec"}}, ("twice",)),
        ("/v1/search", {"query": "x", "doc": "missing.txt"}, ("missing.txt",)),
    ]:
        err = assert_error(client.post(path, json=body), 400, *words)
        assert err["code"] == "invalid_filter"


def test_chat_takes_a_filter_through_extra_body(app_with) -> None:  # type: ignore[no-untyped-def]
    """The documented way: the openai client's ``extra_body={"filter": ...}``."""
    import openai

    fake = FakeGenerator([cite("Muhajir", "Shahab al-Muhajir has led ISIS-K since 2020 [{n}].")])
    client = app_with(fake)
    api = openai.OpenAI(base_url=f"{client.base_url}/v1", api_key="unused", http_client=client, max_retries=0)
    resp = api.chat.completions.create(model="rag", messages=[{"role": "user", "content": "Who has led ISIS-K since 2020?"}],
                                       extra_body={"filter": {"author": "Koneska"}})
    assert {c.passage.doc_id for c in fake.prompts[-1].context} == {KONESKA}
    assert all(s["doc_id"] == KONESKA for s in resp.model_extra["sources"])
    with pytest.raises(openai.BadRequestError, match="is not a date"):
        api.chat.completions.create(model="rag", messages=[{"role": "user", "content": "Who?"}], stream=True,
                                    extra_body={"filter": {"since": "last week"}})


def test_gold_filtered_questions_retrieve_only_inside_their_filters(retriever) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from rag.evaluation.gold import GoldQuestion, load_gold
    from rag.evaluation.retrieval_eval import evaluate_retrieval
    from tests.fixtures.paths import GOLD

    filtered = [q for q in load_gold(GOLD) if q.type == "filtered"]
    assert len(filtered) >= 5 and all(q.search_filter() is not None for q in filtered)
    summary = evaluate_retrieval(retriever, filtered, "hybrid").summary()
    assert summary["filter_leaks"] == 0 and summary["hit@5"] == 1.0
    row = filtered[0].model_dump()
    for bad in ({**row, "filter": None}, {**row, "filter": {"since": "soon"}}, {**row, "type": "factoid"}):
        with pytest.raises(ValidationError):
            GoldQuestion.model_validate(bad)
