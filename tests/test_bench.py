"""`rag bench --quick` as a CI smoke run (no timing asserts) and the synthetic corpus generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.paths import ROOT, SEEDS

SOURCES = [SEEDS, ROOT / "eval" / "collections" / "mini"]


def test_synthetic_corpus_is_deterministic_and_plants_each_fact_once(tmp_path: Path) -> None:
    from rag.bench.corpus import generate_corpus
    from rag.evaluation.gold import load_gold

    a = generate_corpus(tmp_path / "a", 1500, SOURCES, seed=3)
    b = generate_corpus(tmp_path / "b", 1500, SOURCES, seed=3)
    files_a = sorted(p.relative_to(a.docs_dir) for p in a.docs_dir.rglob("*.txt"))
    assert files_a == sorted(p.relative_to(b.docs_dir) for p in b.docs_dir.rglob("*.txt"))
    assert all((a.docs_dir / f).read_bytes() == (b.docs_dir / f).read_bytes() for f in files_a)
    assert len(files_a) == a.documents > 100
    gold = load_gold(a.questions)  # valid gold rows
    assert len(gold) == a.planted >= 10
    corpus_text = "\n".join((a.docs_dir / f).read_text(encoding="utf-8") for f in files_a)
    for q in gold:
        quote = q.evidence[0].quote
        assert corpus_text.count(quote) == 1, quote
        assert q.answers[0] in quote and q.question not in corpus_text
        # the evidence names the document the fact was planted in, under the doc id ingestion gives it
        assert quote in (a.docs_dir / q.evidence[0].doc_id).read_text(encoding="utf-8")
    assert generate_corpus(tmp_path / "a", 1500, SOURCES, seed=3).documents == a.documents  # reused, not rewritten


@pytest.mark.llm
def test_bench_quick_writes_every_figure_with_its_reference(tmp_path: Path, model_path: Path) -> None:
    out = tmp_path / "bench"
    res = run_cli(["bench", "--quick", "--out", str(out), "--name", "smoke"], tmp_path,
                  env={"RAG_LLM_MODEL_PATH": str(model_path)}, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    results = json.loads((out / "smoke.json").read_text())
    md = (out / "smoke.md").read_text()
    for label in ("seeds", "synthetic-600"):
        ingest = results["ingest"][label]
        assert ingest["chunks_written"] > 0 and ingest["raw_chunks_per_s"] > 0 and ingest["ratio"] > 0
        retrieval = results["retrieval"][label]
        assert set(retrieval["modes"]) == {"dense", "bm25", "hybrid"}
        assert all(m["ratio_p50"] > 0 for m in retrieval["modes"].values())
        assert retrieval["filtered"]["leaks"] == 0 and retrieval["filtered"]["ratio_to_unfiltered"] > 0
    # quality, not speed: the planted facts are found among the recombined hard negatives
    assert results["retrieval"]["synthetic-600"]["modes"]["hybrid"]["hit@5"] >= 0.9
    assert results["retrieval"]["seeds"]["modes"]["hybrid"]["hit@5"] >= 0.9
    answers = results["answers"]
    assert answers["questions"] == 2 and answers["stages"]["raw_total_ms"]["p50_ms"] > 0
    assert isinstance(answers["overhead"], float)
    # issue 12 asks for the time to the first verified sentence: it comes after the first token, never after the end
    fs = answers["stages"]["first_sentence_ms"]
    assert answers["stages"]["first_token_ms"]["p50_ms"] < fs["p50_ms"] <= answers["stages"]["total_ms"]["p50_ms"]
    assert answers["ratio_p50"] > 0 and "first verified sentence" in md
    serve = results["serve"]
    assert serve["answer_status"] == 200 and serve["ready_s"] > 0 and serve["peak_rss_after_answer_mb"] > 0
    for heading in ("## Ingestion", "## Retrieval", "## Answers", "## `rag serve`"):
        assert heading in md
    print(md)
