"""Ingestion throughput against the bare embedding model on the same texts (the pipeline's overhead)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rag.bench.measure import peak_rss_mb
from rag.components import Components
from rag.ingestion.pipeline import embed_text
from rag.settings import Settings
from rag.index.store import ChunkStore


def embedded_texts(store: ChunkStore, settings: Settings, limit: int) -> list[str]:
    """The exact texts the pipeline embedded (title + chunk), an even sample of at most ``limit``."""
    rows = [(t, m) for page in store.pages(("documents", "metadatas")) for t, m in zip(page.texts, page.metadatas, strict=True)]
    step = max(1, len(rows) // limit) if limit else 1
    sample = rows[::step][:limit] if limit else rows
    return [embed_text(str(m.get("title", "")), t, settings) for t, m in sample]


def bench_ingest(components: Components, docs: Path, reference_limit: int = 0) -> dict[str, Any]:
    """Ingest ``docs`` (resuming whatever an earlier run left), then encode the same texts with the raw model.

    The ratio compares chunks/s of this run's writes with chunks/s of ``SentenceTransformer.encode`` at the
    same batch size and thread count; an already complete collection reports only the reference.
    """
    settings, embedder, ingestor = components.settings, components.embedder, components.ingestor
    embedder.embed(["warm up"])
    started = time.perf_counter()
    report = ingestor.ingest_paths([docs], progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    rss = peak_rss_mb()
    texts = embedded_texts(ingestor.store, settings, reference_limit)
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=settings.embed_batch_size, normalize_embeddings=True,
                          convert_to_numpy=True, show_progress_bar=False)
    raw_seconds = time.perf_counter() - started
    pipeline_rate = report.chunks_written / seconds if report.chunks_written else 0.0
    raw_rate = len(texts) / raw_seconds if raw_seconds else 0.0
    return {
        "documents": len(report.added) + len(report.updated),
        "documents_skipped": len(report.unchanged),
        "chunks_written": report.chunks_written,
        "chunks_total": ingestor.store.count(),
        "seconds": round(seconds, 2),
        "pipeline_chunks_per_s": round(pipeline_rate, 2),
        "reference": "SentenceTransformer.encode on the same texts",
        "reference_texts": len(texts),
        "raw_chunks_per_s": round(raw_rate, 2),
        "ratio": round(pipeline_rate / raw_rate, 3) if raw_rate and pipeline_rate else None,
        "target": ">= 0.85",
        "process_peak_rss_mb": rss,  # VmHWM so far: flat from 10k to 100k chunks means ingestion streams
        "torch_threads": settings.torch_threads,
        "batch_size": settings.embed_batch_size,
    }
