"""Documents kept by the service: list, upload (stored under ``<data_dir>/uploads/`` and ingested), delete.

Validation comes from the library (``check_supported``, ``check_size``): the service restates nothing.
Methods are blocking; routes call them in a worker thread, one change at a time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any

from rag.components import Components
from rag.ingestion.metadata import doc_id_for
from rag.ingestion.readers import check_size, check_supported
from service.errors import ServiceError

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None) -> str:
    """The last path component of an uploaded name, reduced to ``[A-Za-z0-9._-]`` (no traversal, no hidden files).

    The extension is split off first, so it survives a stem with nothing usable in it (``отчёт.md``); such a
    stem becomes ``upload-<hash of the original>``, so two different names never share one stored file.
    """
    base = unicodedata.normalize("NFKC", name or "").replace("\\", "/").rsplit("/", 1)[-1].strip("._ ")
    stem, suffix = os.path.splitext(base)
    clean = _UNSAFE.sub("_", stem).strip("._ ")[:MAX_NAME_CHARS]
    if not clean:
        clean = f"upload-{hashlib.sha256(stem.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}" if stem else "upload"
    return clean + _UNSAFE.sub("_", suffix).lower()


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


class DocumentService:
    """The documents of one collection, as the HTTP API shows them."""

    def __init__(self, components: Components, uploads_dir: Path) -> None:
        self.components = components
        self.uploads_dir = uploads_dir

    def describe(self, meta: dict[str, Any]) -> dict[str, Any]:
        source = str(meta.get("source", ""))
        return {
            "doc_id": meta.get("doc_id", ""),
            "title": meta.get("title", ""),
            "author": meta.get("author"),
            "source": source,
            "n_chunks": meta.get("n_chunks"),
            "uploaded": _inside(Path(source), self.uploads_dir) if source else False,
        }

    def list(self) -> list[dict[str, Any]]:
        return [self.describe(d) for d in self.components.store.documents()]

    def find(self, doc_id: str) -> dict[str, Any] | None:
        return next((d for d in self.components.store.documents() if d.get("doc_id") == doc_id), None)

    def upload(self, filename: str | None, data: bytes) -> dict[str, Any]:
        """Ingest from memory, then keep the file (written atomically: a failed ingest leaves no file behind).

        The document id comes from the file name: uploading the same name again replaces that document.
        """
        name = safe_filename(filename)
        check_supported(name)
        check_size(name, len(data), self.components.settings.max_upload_bytes)
        doc_id = doc_id_for(Path(name), None)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        final = self.uploads_dir / name
        if final.resolve().parent != self.uploads_dir.resolve():  # unreachable after safe_filename; the last guard
            raise ServiceError(400, f"invalid file name {name!r}", "invalid_filename", param="file")
        report = self.components.ingestor.ingest_bytes(data, name, doc_id, str(final.resolve()))
        tmp = self.uploads_dir / f".upload-{uuid.uuid4().hex}{final.suffix}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        self.components.retriever.refresh()
        status = "added" if report.added else "updated" if report.updated else "unchanged"
        log.info("document uploaded", extra={"doc_id": doc_id, "status": status, "chunks": report.chunks_written})
        return {**self.describe(self.find(doc_id) or {"doc_id": doc_id}), "status": status,
                "chunks_written": report.chunks_written, "filename": name}

    def delete(self, doc_id: str) -> dict[str, Any]:
        """Remove a document's chunks, and its uploaded file if it was uploaded here."""
        meta = self.find(doc_id)
        removed = self.components.index.delete_document(doc_id)
        if not removed:
            raise ServiceError(404, f"no document {doc_id!r}", "document_not_found", param="doc_id")
        self.components.retriever.refresh()
        source = Path(str((meta or {}).get("source", "")))
        if meta and _inside(source, self.uploads_dir) and source.is_file():
            source.unlink(missing_ok=True)
        log.info("document deleted", extra={"doc_id": doc_id, "chunks": removed})
        return {"doc_id": doc_id, "deleted": True, "chunks_removed": removed}
