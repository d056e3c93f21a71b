"""``rag bench``: every benchmark in one run, each figure next to its in-run reference, saved as JSON + Markdown."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.bench.answer_bench import bench_answers
from rag.bench.corpus import generate_corpus
from rag.bench.ingest_bench import bench_ingest
from rag.bench.measure import machine
from rag.bench.report import to_markdown
from rag.bench.retrieval_bench import bench_retrieval
from rag.bench.serve_bench import bench_serve
from rag.embedding import get_embedder
from rag.evaluation.gold import load_gold
from rag.generation.answerer import Answerer
from rag.generation.model_files import ensure_model
from rag.retrieval import Retriever
from rag.settings import Settings

BENCH_COLLECTION = "bench"
GOLD_QUESTION = "Who has led ISIS-K since 2020?"


@dataclass
class BenchPlan:
    """What one run measures; ``quick`` is the CI smoke size (well under 3 minutes)."""

    quick: bool
    scales: list[int] = field(default_factory=list)  # synthetic corpus sizes, in chunks
    answer_questions: int = 10
    reference_limit: int = 3000  # texts re-encoded for the raw-embedding reference (an even sample)
    planted_questions: int = 200  # planted questions searched per synthetic corpus
    fresh_scales: bool = False  # re-ingest synthetic corpora from scratch instead of resuming them

    @classmethod
    def preset(cls, quick: bool, scales: list[int] | None = None) -> BenchPlan:
        if quick:
            return cls(quick=True, scales=scales or [600], answer_questions=2, reference_limit=0,
                       planted_questions=60, fresh_scales=True)
        return cls(quick=False, scales=scales or [10_000, 100_000])


def run_bench(settings: Settings, plan: BenchPlan, seeds: Path, gold_path: Path, sources: list[Path],
              out_dir: Path, name: str) -> dict[str, Any]:
    """Run the plan; writes ``out_dir/<name>.json`` and ``.md`` and returns the results."""
    started = time.perf_counter()
    workspace = settings.data_dir / "bench"
    embedder = get_embedder(settings)
    results: dict[str, Any] = {"name": name, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                               "plan": asdict(plan), "ingest": {}, "retrieval": {}}

    seeds_settings = _isolated(settings, workspace / "data-seeds")
    shutil.rmtree(seeds_settings.data_dir, ignore_errors=True)
    results["ingest"]["seeds"] = bench_ingest(seeds_settings, seeds, embedder, plan.reference_limit)
    results["retrieval"]["seeds"] = bench_retrieval(Retriever(seeds_settings, embedder=embedder), load_gold(gold_path))

    for chunks in plan.scales:
        corpus = generate_corpus(workspace / f"corpus-{chunks}", chunks, sources)
        scale_settings = _isolated(settings, workspace / f"data-{chunks}")
        if plan.fresh_scales:
            shutil.rmtree(scale_settings.data_dir, ignore_errors=True)
        label = f"synthetic-{chunks}"
        results["ingest"][label] = bench_ingest(scale_settings, corpus.docs_dir, embedder, plan.reference_limit)
        planted = load_gold(corpus.questions)[: plan.planted_questions]
        results["retrieval"][label] = bench_retrieval(Retriever(scale_settings, embedder=embedder), planted)

    model_path = settings.llm_model_path or ensure_model(settings.model_dir)
    answer_settings = seeds_settings.model_copy(update={"llm_model_path": model_path})
    answerable = [q.question for q in load_gold(gold_path) if q.answerable]
    results["answers"] = bench_answers(Answerer(answer_settings, Retriever(answer_settings, embedder=embedder)),
                                       answerable[: plan.answer_questions])
    results["serve"] = bench_serve(seeds_settings.data_dir, Path(model_path), settings.llm_ctx, settings.llm_threads, GOLD_QUESTION)
    results["seconds"] = round(time.perf_counter() - started, 1)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / f"{name}.md").write_text(to_markdown(results))
    return results


def _isolated(settings: Settings, data_dir: Path) -> Settings:
    """Settings for a benchmark collection of its own: embedded Chroma under ``data_dir``."""
    return settings.model_copy(update={"data_dir": data_dir, "collection": BENCH_COLLECTION,
                                       "chroma_path": None, "chroma_host": None})
