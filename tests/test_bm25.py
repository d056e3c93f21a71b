"""The incremental BM25 index: same scores as a full bm25s build, after any sequence of adds and removes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import bm25s
import numpy as np
import pytest
import Stemmer

from rag.index.bm25 import BM25Index, BM25Params
from tests.fixtures.paths import SEEDS

QUERIES = ["Who has led ISIS-K since 2020?", "Taliban fighters in Nangarhar", "Kabul airport attack August 2021",
           "recruitment of Salafi students", "Haqqani network relations", "drone strike leader killed"]


@pytest.fixture(scope="module")
def passages() -> list[str]:
    """Sentences of the seeds: a few hundred realistic texts."""
    from rag.text import split_sentences

    out = []
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        out += [text[a:b] for a, b in split_sentences(text) if len(text[a:b].split()) > 6]
    assert len(out) > 100
    return out


def reference_scores(texts: dict[str, str], query: str) -> dict[str, float]:
    """bm25s (Lucene variant, the same analysis) built from scratch over ``texts``."""
    ids = sorted(texts)
    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    model.index(bm25s.tokenize([texts[i] for i in ids], stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    q = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
    known = [t for t in dict.fromkeys(q) if t in model.vocab_dict]
    scores = model.get_scores(known) if known else np.zeros(len(ids))
    return {i: float(s) for i, s in zip(ids, scores, strict=True) if s > 0}


def assert_matches_full_build(index: BM25Index, texts: dict[str, str]) -> None:
    assert index.ids == set(texts)
    for query in QUERIES:
        want = reference_scores(texts, query)
        got = dict(index.search(query, k=len(texts)))
        assert set(got) == set(want), query
        for cid, score in want.items():
            assert got[cid] == pytest.approx(score, rel=1e-4), (query, cid)


def test_scores_equal_a_full_rebuild_through_adds_removes_and_merges(passages: list[str]) -> None:
    rng = random.Random(7)
    index = BM25Index(BM25Params(max_segments=4, max_dead_share=0.3))
    live: dict[str, str] = {}
    pool = {f"c{i:04d}": text for i, text in enumerate(passages)}
    order = list(pool)
    rng.shuffle(order)
    for start in range(0, len(order), 23):  # many small segments force merges
        batch = order[start : start + 23]
        index.add(batch, [pool[c] for c in batch])
        live.update({c: pool[c] for c in batch})
        gone = rng.sample(sorted(live), k=5)
        assert index.remove(gone) == 5
        for c in gone:
            del live[c]
    assert len(index.segments) <= 4 + 1
    replaced = sorted(live)[:3]  # re-adding an id replaces it
    index.add(replaced, ["Shahab al-Muhajir replaced text"] * 3)
    live.update({c: "Shahab al-Muhajir replaced text" for c in replaced})
    assert_matches_full_build(index, live)


def test_save_and_load_round_trip_and_a_broken_folder_is_ignored(passages: list[str], tmp_path: Path) -> None:
    index = BM25Index()
    texts = {f"d{i}": t for i, t in enumerate(passages[:120])}
    index.add(list(texts)[:60], list(texts.values())[:60])
    index.save(tmp_path / "bm25")
    index.add(list(texts)[60:], list(texts.values())[60:])
    index.remove(["d1", "d2"])
    del texts["d1"], texts["d2"]
    index.save(tmp_path / "bm25")
    assert len(list((tmp_path / "bm25").glob("seg-*.npz"))) == len(index.segments)
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded is not None
    assert_matches_full_build(loaded, texts)
    # A manifest naming a segment that is not there (a writer killed midway) is not loaded.
    manifest = json.loads((tmp_path / "bm25" / "manifest.json").read_text())
    (tmp_path / "bm25" / f"{manifest['segments'][0]['name']}.npz").unlink()
    assert BM25Index.load(tmp_path / "bm25") is None
    assert BM25Index.load(tmp_path / "nothing") is None


def test_store_changes_by_another_process_are_synced_as_a_difference(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from rag.components import Components
    from tests.fixtures.seeded import make_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    for src in sorted(SEEDS.glob("*.txt"))[:2]:
        shutil.copy(src, docs / src.name)
    settings = make_settings(tmp_path / "data")
    Components(settings, embedder=embedder).ingestor.ingest_paths([docs])
    reader = Components(settings.model_copy(update={"bm25_refresh_seconds": 0}), embedder=embedder).retriever
    before = len(reader.bm25())
    assert before == reader.store.count()
    # Another "process" (its own store handle and index) adds a document.
    shutil.copy(SEEDS / "002_2399800fba452946.txt", docs)
    writer = Components(settings, embedder=embedder)
    report = writer.ingestor.ingest_paths([docs])
    assert report.added == ["002_2399800fba452946.txt"]
    stats = reader.lexical.sync(save=False)
    assert stats.added == report.chunks_written and stats.removed == 0
    assert reader.search("Shahab al-Muhajir", k=1, mode="bm25")[0].doc_id == "002_2399800fba452946.txt"
    writer.index.delete_document("002_2399800fba452946.txt")
    assert reader.lexical.sync(save=False).removed == report.chunks_written
    assert len(reader.bm25()) == before


def test_a_replacement_with_as_many_chunks_is_noticed_without_an_explicit_sync(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.components import Components
    from tests.fixtures.seeded import make_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    note = docs / "note.txt"
    note.write_text("Field notes. The zebracorn migration was observed near the river in spring.")
    settings = make_settings(tmp_path / "data", bm25_refresh_seconds=0)
    Components(settings, embedder=embedder).ingestor.ingest_paths([docs])
    reader = Components(settings, embedder=embedder).retriever
    assert reader.search("zebracorn", k=1, mode="bm25")[0].doc_id == "note.txt"
    note.write_text("Field notes. The quasarwing migration was observed near the river in spring.")
    assert Components(settings, embedder=embedder).ingestor.ingest_paths([docs]).updated == ["note.txt"]
    assert reader.store.count() == 2  # the note and its card, as before: only the newest id tells the reader
    assert reader.search("quasarwing", k=1, mode="bm25")[0].doc_id == "note.txt"
    assert reader.search("zebracorn", k=1, mode="bm25") == []


class _Planted:
    """Pickling this runs ``touch`` on load: what a crafted segment file would do to a reader using pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_segments_are_saved_and_loaded_without_pickle(passages: list[str], tmp_path: Path) -> None:
    """Chunk ids are stored as plain strings: a segment whose ids are pickled objects is never unpickled (issue 13, item 15)."""
    folder = tmp_path / "bm25"
    index = BM25Index()
    index.add([f"c{i}" for i in range(20)], passages[:20])
    index.save(folder)
    seg = next(folder.glob("seg-*.npz"))
    with np.load(seg, allow_pickle=False) as z:  # readable without pickle
        assert [str(i) for i in z["ids"]] == [f"c{i}" for i in range(20)]
        fields = {k: z[k] for k in z.files}
    assert BM25Index.load(folder) is not None and len(BM25Index.load(folder)) == 20  # type: ignore[arg-type]
    marker = tmp_path / "pickle-ran"
    np.savez(seg, **{**fields, "ids": np.array([_Planted(marker)] * 20, dtype=object)})
    assert BM25Index.load(folder) is None  # unreadable: the caller re-syncs from the store
    assert not marker.exists(), "a pickled object in a segment file was executed"
