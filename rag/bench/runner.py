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
from rag.bench.serve_bench import bench_load, bench_serve
from rag.embedding import get_embedder
from rag.evaluation.gold import load_gold
from rag.components import Components
from rag.generation.model_files import ensure_model
from rag.errors import RagError
from rag.settings import Settings

BENCH_COLLECTION = "bench"
GOLD_QUESTION = "Who has led ISIS-K since 2020?"
PARTS = ("retrieval", "answers", "serve", "load")  # seeds ingestion always runs: the others need its index
LOAD_TYPES = ("factoid", "numeric", "date")  # single-fact questions: one gold document, one short answer


@dataclass
class BenchPlan:
    """What one run measures; ``quick`` is the CI smoke size (well under 3 minutes)."""

    quick: bool
    scales: list[int] = field(default_factory=list)  # synthetic corpus sizes, in chunks
    answer_questions: int = 10
    reference_limit: int = 3000  # texts re-encoded for the raw-embedding reference (an even sample)
    planted_questions: int = 200  # planted questions searched per synthetic corpus
    fresh_scales: bool = False  # re-ingest synthetic corpora from scratch instead of resuming them
    load_requests: int = 200  # mixed search/chat requests against a running service (0 = skip)
    load_concurrency: int = 16
    load_chat_share: float = 0.15
    parts: tuple[str, ...] = PARTS  # which benchmarks to run

    @classmethod
    def preset(cls, quick: bool, scales: list[int] | None = None, parts: tuple[str, ...] = PARTS) -> BenchPlan:
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise RagError(f"unknown benchmark part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
        if quick:
            return cls(quick=True, scales=[600] if scales is None else scales, answer_questions=2, reference_limit=0,
                       planted_questions=60, fresh_scales=True, load_requests=0, parts=parts)
        return cls(quick=False, scales=[10_000, 100_000] if scales is None else scales, parts=parts)


def run_bench(settings: Settings, plan: BenchPlan, seeds: Path, gold_path: Path, sources: list[Path],
              out_dir: Path, name: str) -> dict[str, Any]:
    """Run the plan; writes ``out_dir/<name>.json`` and ``.md`` and returns the results."""
    started = time.perf_counter()
    workspace = settings.data_dir / "bench"
    embedder = get_embedder(settings)
    results: dict[str, Any] = {"name": name, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                               "plan": asdict(plan), "ingest": {}, "retrieval": {}}

    model_path = settings.llm_model_path or ensure_model(settings.model_dir)
    seeds_settings = _isolated(settings, workspace / "data-seeds").model_copy(update={"llm_model_path": model_path})
    shutil.rmtree(seeds_settings.data_dir, ignore_errors=True)
    seeds_index = Components(seeds_settings, embedder=embedder)
    results["ingest"]["seeds"] = bench_ingest(seeds_index, seeds, plan.reference_limit)
    if "retrieval" in plan.parts:
        results["retrieval"]["seeds"] = bench_retrieval(seeds_index.retriever, load_gold(gold_path))

    for chunks in plan.scales if "retrieval" in plan.parts else []:
        corpus = generate_corpus(workspace / f"corpus-{chunks}", chunks, sources)
        scale_settings = _isolated(settings, workspace / f"data-{chunks}")
        if plan.fresh_scales:
            shutil.rmtree(scale_settings.data_dir, ignore_errors=True)
        label = f"synthetic-{chunks}"
        scale = Components(scale_settings, embedder=embedder)
        results["ingest"][label] = bench_ingest(scale, corpus.docs_dir, plan.reference_limit)
        planted = load_gold(corpus.questions)[: plan.planted_questions]
        results["retrieval"][label] = bench_retrieval(scale.retriever, planted)

    answerable = [q.question for q in load_gold(gold_path) if q.answerable]
    if "answers" in plan.parts:
        results["answers"] = bench_answers(seeds_index.answerer, answerable[: plan.answer_questions])
    if {"serve", "load"} & set(plan.parts):
        seeds_index.store.release()  # the servers below open this embedded store: hand it over (rag.index.lock)
    if "serve" in plan.parts:
        results["serve"] = bench_serve(seeds_settings, Path(model_path), GOLD_QUESTION)
    if plan.load_requests and "load" in plan.parts:
        gold = load_gold(gold_path)
        single_fact = [q for q in gold if q.answerable and q.type in LOAD_TYPES]
        results["load"] = bench_load(seeds_settings, Path(model_path), single_fact, single_fact,
                                     plan.load_requests, plan.load_concurrency, plan.load_chat_share)
    results["seconds"] = round(time.perf_counter() - started, 1)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    (out_dir / f"{name}.md").write_text(to_markdown(results))
    return results


def _isolated(settings: Settings, data_dir: Path) -> Settings:
    """Settings for a benchmark collection of its own: embedded Chroma under ``data_dir``."""
    return settings.model_copy(update={"data_dir": data_dir, "collection": BENCH_COLLECTION,
                                       "chroma_path": None, "chroma_host": None})
