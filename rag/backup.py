"""Backup and restore of a collection: every chunk with its text, metadata and embedding, as gzipped JSONL."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.index.store import ChunkStore

FORMAT = "rag-export/1"
IMPORT_BATCH = 512


def export_collection(store: ChunkStore, path: Path) -> int:
    """Write the whole collection to ``path`` (sorted by chunk id, so equal collections give equal files)."""
    rows: list[dict[str, Any]] = []
    for page in store.pages(("documents", "metadatas", "embeddings")):
        embeddings = page.embeddings if page.embeddings is not None else []
        for cid, text, meta, emb in zip(page.ids, page.texts, page.metadatas, embeddings, strict=True):
            rows.append({"id": cid, "text": text, "metadata": meta, "embedding": np.asarray(emb, dtype=np.float32).tolist()})
    rows.sort(key=lambda r: r["id"])
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"format": FORMAT, "collection": store.settings.collection, "chunks": len(rows)}) + "\n")
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(path)
    return len(rows)


def import_collection(store: ChunkStore, path: Path, replace: bool = False) -> int:
    """Load an export into the store. Refuses a non-empty collection unless ``replace``."""
    if not path.is_file():
        raise RagError(f"export file not found: {path}")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            if header.get("format") != FORMAT:
                raise RagError(f"{path} is not a {FORMAT} file")
            if store.count() and not replace:
                raise RagError(f"collection {store.settings.collection!r} is not empty; use --replace to overwrite it")
            if replace:
                store.delete_ids(store.all_ids())
            written = 0
            batch: list[dict[str, Any]] = []
            for line in fh:
                batch.append(json.loads(line))
                if len(batch) >= IMPORT_BATCH:
                    written += _flush(store, batch)
            written += _flush(store, batch)
    except (OSError, EOFError, json.JSONDecodeError, KeyError) as exc:
        raise RagError(f"cannot read export {path}: {exc}") from exc
    if written != header.get("chunks"):
        raise RagError(f"export {path} is truncated: {written} of {header.get('chunks')} chunks")
    return written


def _flush(store: ChunkStore, batch: list[dict[str, Any]]) -> int:
    if not batch:
        return 0
    store.upsert([r["id"] for r in batch], np.asarray([r["embedding"] for r in batch], dtype=np.float32),
                 [r["text"] for r in batch], [r["metadata"] for r in batch])
    n = len(batch)
    batch.clear()
    return n
