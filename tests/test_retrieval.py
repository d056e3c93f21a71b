"""Retrieval quality on the seeds, modes, and the search command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import EmptyIndex
from rag.evaluation.gold import load_gold
from rag.evaluation.retrieval_eval import evaluate_retrieval
from tests.fixtures.cli import run_cli
from tests.fixtures.paths import GOLD, SEEDS
from tests.fixtures.seeded import make_settings

GOLD_QUESTION = "Who has led ISIS-K since 2020?"


def test_gold_question_rank_one_in_hybrid(retriever) -> None:  # type: ignore[no-untyped-def]
    top = retriever.search(GOLD_QUESTION, k=5, mode="hybrid")
    assert "Shahab al-Muhajir" in top[0].text
    assert top[0].doc_id == "002_2399800fba452946.txt"
    assert [p.rank for p in top] == [1, 2, 3, 4, 5]
    assert top[0].score >= top[1].score


def test_results_carry_provenance(retriever) -> None:  # type: ignore[no-untyped-def]
    for mode in ("dense", "bm25", "hybrid"):
        for p in retriever.search("Dragonfly TerrorismTracker attacks per month", k=3, mode=mode):
            source = (SEEDS / p.source).read_text(encoding="utf-8")  # relative to the ingested folder
            assert " ".join(source[p.start : p.end].split()) == " ".join(p.text.split())
            assert p.title and p.doc_id and p.chunk_id.startswith(p.doc_id)


def test_gold_passage_in_top5_for_95_percent(retriever) -> None:  # type: ignore[no-untyped-def]
    gold = load_gold(GOLD)
    run = evaluate_retrieval(retriever, gold, "hybrid")
    assert len(run.per_question) >= 20
    summary = run.summary()
    missed = [q["id"] for q in run.per_question if not q["metrics"]["hit@5"]]
    assert summary["hit@5"] >= 0.95, f"hit@5={summary['hit@5']:.3f}, missed {missed}"


def test_hybrid_beats_or_matches_each_single_mode(retriever) -> None:  # type: ignore[no-untyped-def]
    gold = load_gold(GOLD)
    hit5 = {m: evaluate_retrieval(retriever, gold, m).summary()["hit@5"] for m in ("dense", "bm25", "hybrid")}
    assert hit5["hybrid"] >= max(hit5["dense"], hit5["bm25"])


def test_bm25_index_is_persisted_and_reused(seeded_settings, embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.components import Components

    fresh = Components(seeded_settings, embedder=embedder).retriever  # its own BM25 index, loaded from disk
    assert (seeded_settings.bm25_dir / "manifest.json").is_file()
    stats = fresh.lexical.sync(save=False)
    assert (stats.added, stats.removed) == (0, 0), "the saved BM25 index was not in step with the store"
    assert len(fresh.bm25()) == fresh.store.count()
    assert fresh.search("Taliban", mode="bm25")


def test_empty_index_is_a_clear_error(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.components import Components

    with pytest.raises(EmptyIndex, match="rag ingest"):
        Components(make_settings(tmp_path), embedder=embedder).retriever.search("anything")


@pytest.mark.slow  # runs `rag` 6 times in fresh processes (~10 s each: torch and the embedding model load every time)
def test_cli_search_json_and_modes(tmp_path: Path) -> None:
    assert run_cli(["ingest", str(SEEDS)], tmp_path).returncode == 0
    for mode in ("dense", "bm25", "hybrid"):
        res = run_cli(["search", GOLD_QUESTION, "-k", "3", "--mode", mode, "--json"], tmp_path)
        assert res.returncode == 0, res.stderr
        rows = json.loads(res.stdout)
        assert len(rows) == 3 and {"text", "score", "rank", "doc_id", "title", "start", "end"} <= set(rows[0])
    bad = run_cli(["search", "x", "--mode", "fuzzy"], tmp_path)
    message = " ".join(bad.stderr.replace("│", " ").split())  # typer's error box, unwrapped
    assert bad.returncode == 2 and "'fuzzy' is not one of 'dense', 'bm25', 'hybrid'" in message, bad.stderr
    empty = run_cli(["search", "x"], tmp_path / "empty")
    assert empty.returncode == 1 and "empty" in empty.stderr and "Traceback" not in empty.stderr


def test_a_passage_bm25_ranks_far_ahead_stays_in_the_top_five(retriever) -> None:  # type: ignore[no-untyped-def]
    """Seeds s04: BM25 ranks the NATO sentence first by a wide margin, dense misses it; rank fusion put it sixth,
    under passages both lists hold at middling ranks. Score fusion keeps it."""
    question = "Which country does NATO believe is assisting the Taliban in Afghanistan?"
    assert "Russia is assisting the Taliban" in retriever.search(question, k=1, mode="bm25")[0].text
    top = retriever.search(question, k=5, mode="hybrid")
    assert any("Russia is assisting the Taliban" in p.text for p in top), [p.text[:60] for p in top]
