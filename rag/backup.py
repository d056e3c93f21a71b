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
        model, dimension = store.model()
        fh.write(json.dumps({"format": FORMAT, "collection": store.settings.collection, "chunks": len(rows),
                             "embed_model": model, "embed_dim": dimension}) + "\n")
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(path)
    return len(rows)


def import_collection(store: ChunkStore, path: Path, replace: bool = False) -> int:
    """Load an export into the store. Refuses a non-empty collection unless ``replace``.

    The whole file is read and checked first (every row parses, one embedding size, as many rows as the header
    says): a truncated or corrupt backup is refused with the collection untouched. Then its rows are written, and
    only after that, with ``replace``, the chunks the backup does not hold are deleted.
    """
    if not path.is_file():
        raise RagError(f"export file not found: {path}")
    if store.count() and not replace:
        raise RagError(f"collection {store.settings.collection!r} is not empty; use --replace to overwrite it")
    header = _validate(path)
    _check_model(store, header, path)
    old = set(store.all_ids()) if replace else set()
    written = 0
    batch: list[dict[str, Any]] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            fh.readline()
            for line in fh:
                row = json.loads(line)
                old.discard(row["id"])
                batch.append(row)
                if len(batch) >= IMPORT_BATCH:
                    written += _flush(store, batch)
            written += _flush(store, batch)
    except (OSError, EOFError, json.JSONDecodeError, KeyError) as exc:  # the file changed after it was checked
        raise RagError(f"cannot read export {path} (its rows so far were written, nothing was deleted): {exc}") from exc
    if written != header["chunks"]:
        raise RagError(f"export {path} changed while it was imported: {written} of {header['chunks']} chunks written, nothing deleted")
    store.delete_ids(sorted(old))
    return written


def _check_model(store: ChunkStore, header: dict[str, Any], path: Path) -> None:
    """The backup's vectors must come from the collection's embedding model; an empty collection takes the backup's."""
    model, dimension = header.get("embed_model"), header.get("embed_dim")
    if not model:
        return  # a backup from before models were recorded
    ours, our_dim = store.model()
    if store.count() and ours and (ours, our_dim) != (model, dimension) and our_dim is not None:
        raise RagError(f"export {path} holds vectors of the embedding model {model} ({dimension}-d), but collection "
                       f"{store.settings.collection!r} uses {ours} ({our_dim}-d): import it into an empty collection")
    store.record_model(model, dimension)


def _validate(path: Path) -> dict[str, Any]:
    """The header of a complete, well-formed export; RagError naming the first problem otherwise."""
    dimension: int | None = None
    rows = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            header = json.loads(fh.readline() or "null")
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise RagError(f"{path} is not a {FORMAT} file")
            for number, line in enumerate(fh, start=2):
                row = json.loads(line)
                if not (isinstance(row, dict) and isinstance(row.get("id"), str) and isinstance(row.get("text"), str)
                        and isinstance(row.get("metadata"), dict) and isinstance(row.get("embedding"), list)):
                    raise RagError(f"export {path}, line {number}: not a chunk row (id, text, metadata, embedding)")
                dimension = dimension or len(row["embedding"])
                if len(row["embedding"]) != dimension or not dimension:
                    raise RagError(f"export {path}, line {number}: an embedding of {len(row['embedding'])} numbers among ones of {dimension}")
                rows += 1
    except RagError:
        raise
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RagError(f"cannot read export {path}: {exc}") from exc
    if rows != header.get("chunks"):
        raise RagError(f"export {path} is truncated: {rows} of {header.get('chunks')} chunks")
    return header


def _flush(store: ChunkStore, batch: list[dict[str, Any]]) -> int:
    if not batch:
        return 0
    store.upsert([r["id"] for r in batch], np.asarray([r["embedding"] for r in batch], dtype=np.float32),
                 [r["text"] for r in batch], [r["metadata"] for r in batch])
    n = len(batch)
    batch.clear()
    return n
