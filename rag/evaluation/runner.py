"""One evaluation run: ingest the set's documents, score retrieval and answers, gate, report."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any, get_args

from rag.evaluation.answer_eval import in_process_asker, remote_asker, run_answers, summarize
from rag.evaluation.config import EvalConfig, EvalSet, check_gate
from rag.evaluation.gold import GoldQuestion, Split, load_gold
from rag.evaluation.retrieval_eval import evaluate_retrieval
from rag.components import Components
from rag.settings import LLMBackendName, RetrievalMode, Settings


def eval_settings(settings: Settings, eval_set: EvalSet, **overrides: Any) -> Settings:
    """The set gets its own collection so evaluation never mixes with the user's documents. Every confidence signal
    is measured (``judge_answers`` on unless set), so a report's dev rows can fit a model that reads any of them."""
    judge_answers = True if settings.judge_answers is None else settings.judge_answers
    return settings.model_copy(update={"collection": f"eval-{eval_set.name}", "judge_answers": judge_answers, **overrides})


def prepare_collection(components: Components, eval_set: EvalSet, progress: bool = False) -> None:
    """Ingest the set's documents (idempotent: unchanged files are skipped)."""
    components.ingestor.ingest_paths([eval_set.docs], prune=True, progress=progress)


def sample(gold: list[GoldQuestion], limit: int | None) -> list[GoldQuestion]:
    """An evenly spread, stratified sample: answerable and unanswerable questions in proportion, at least
    two unanswerable ones (when the set has them) so abstention metrics mean something; ``None`` keeps all."""
    if not limit or limit >= len(gold):
        return gold
    unanswerable = [q for q in gold if not q.answerable]
    answerable = [q for q in gold if q.answerable]
    n_un = min(len(unanswerable), max(round(limit * len(unanswerable) / len(gold)), min(2, limit // 2)))
    picked = _spread(answerable, limit - n_un) + _spread(unanswerable, n_un)
    order = {q.id: i for i, q in enumerate(gold)}
    return sorted(picked, key=lambda q: order[q.id])


def _spread(items: list[GoldQuestion], n: int) -> list[GoldQuestion]:
    if n <= 0 or not items:
        return []
    step = len(items) / n
    return [items[int(i * step)] for i in range(min(n, len(items)))]


def run_eval(settings: Settings, config: EvalConfig, eval_set: EvalSet, *, backend: LLMBackendName | None, mode: RetrievalMode | None,
             url: str | None, limit: int | None, retrieval_only: bool, name: str | None, progress: bool,
             split: Split | None = None) -> dict[str, Any]:
    """Run retrieval (in-process) and answer metrics; returns the full report with gate failures.

    ``split`` keeps only dev or test questions (the collection always holds every document)."""
    gold = sample([q for q in load_gold(eval_set.gold) if split is None or q.split == split], limit)
    mode = mode or settings.retrieval_mode
    summary: dict[str, float] = {}
    report: dict[str, Any] = {
        "name": name or f"{eval_set.name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}",
        "set": eval_set.name,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "config": {"gold": str(eval_set.gold), "docs": str(eval_set.docs), "backend": "-" if retrieval_only else (
            "remote" if url else backend or settings.llm_backend), "mode": mode, "limit": limit, "url": url,
            "chunk_size": settings.chunk_size, "context_sentences": settings.context_sentences, "answer_top_k": settings.answer_top_k,
            "split": split or "all", "claim_threshold": settings.claim_threshold, "min_confidence": settings.min_confidence},
        "questions": [],
    }
    failures: list[str] = []
    if not url:
        components = Components(eval_settings(settings, eval_set))
        prepare_collection(components, eval_set, progress)
        retrieval = evaluate_retrieval(components.retriever, gold, mode)
        summary.update(retrieval.summary())
        report["retrieval"] = retrieval.per_question
        if not limit and not split:  # a sample's or a split's retrieval numbers are not gated; the full set is
            failures += check_gate(summary, config.gate.get("retrieval", {}))
        if not retrieval_only:
            rows = run_answers(gold, in_process_asker(components.answerer, backend, mode), progress)
    elif not retrieval_only:
        rows = run_answers(gold, remote_asker(url, settings.api_key.get_secret_value() if settings.api_key else None), progress)
    if not retrieval_only:
        answer_summary = summarize(rows)
        summary.update({k: v for k, v in answer_summary.items() if k != "questions"})
        summary["questions"] = answer_summary["questions"]
        report["questions"] = rows
        failures += check_gate(summary, config.gate.get("sample" if limit or split else "answer", {}))
    report["summary"] = summary
    report["gate_failures"] = failures
    return report


def run_ablation(settings: Settings, eval_set: EvalSet, chunk_sizes: list[int]) -> dict[str, Any]:
    """Retrieval metrics for each mode and chunk size, each chunk size in a throwaway index."""
    gold = load_gold(eval_set.gold)
    rows: list[dict[str, Any]] = []
    from rag.embedding import get_embedder

    embedder = get_embedder(settings)
    for size in chunk_sizes:
        tmp = Path(tempfile.mkdtemp(prefix="rag-ablation-"))
        try:
            s = settings.model_copy(update={"data_dir": tmp, "chroma_host": None, "chunk_size": size,
                                            "chunk_overlap": min(settings.chunk_overlap, size // 4), "collection": "ablation"})
            components = Components(s, embedder=embedder)
            report = components.ingestor.ingest_paths([eval_set.docs])
            for mode in get_args(RetrievalMode):
                summary = evaluate_retrieval(components.retriever, gold, mode).summary()
                rows.append({"chunk_size": size, "chunks": report.chunks_written, "mode": mode, **summary})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"set": eval_set.name, "rows": rows}


def ablation_markdown(ablation: dict[str, Any]) -> str:
    cols = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10", "search_p50_ms"]
    lines = [f"# Retrieval ablation ({ablation['set']})", "", "| chunk size | chunks | mode | " + " | ".join(cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]
    for r in ablation["rows"]:
        lines.append(f"| {r['chunk_size']} | {r['chunks']} | {r['mode']} | " + " | ".join(f"{r[c]:.3f}" if c != "search_p50_ms" else f"{r[c]:.1f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"
