"""Documents kept by the service: list, upload (stored under ``<data_dir>/uploads/`` and ingested), delete.

Validation comes from the library (``check_supported``, ``check_size``): the service restates nothing.
Methods are blocking; routes call them in a worker thread, one change at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.components import Components
from rag.ingestion.metadata import SIDECAR_SUFFIX, card_of_metadata, doc_id_for
from rag.retrieval.passage import public_source
from rag.ingestion.pipeline import UPLOAD, PreparedDocument
from rag.ingestion.readers import check_size, check_supported
from service.errors import ServiceError

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None) -> str:
    """The last path component of an uploaded name, reduced to ``[A-Za-z0-9._-]`` (no traversal, no hidden files).

    A name that is already plain is kept as it is. Any other gets a short hash of the original added
    (``My Report.md`` -> ``My_Report-1f0c5e2a.md``), so two different names never share one stored file or
    document id; the extension is split off first, so it survives a stem with nothing usable in it (``отчёт.md``).
    """
    original = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKC", original).replace("\\", "/").rsplit("/", 1)[-1].strip("._ ")
    stem, suffix = os.path.splitext(base)
    suffix = _UNSAFE.sub("_", suffix).lower()
    clean = _UNSAFE.sub("_", stem).strip("._ ")[:MAX_NAME_CHARS] or "upload"
    if clean + suffix == original:
        return original
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{clean}-{digest}{suffix}"


def _write_atomic(folder: Path, final: Path, data: bytes) -> None:
    tmp = folder / f".upload-{uuid.uuid4().hex}{final.suffix}"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class PendingUpload:
    """An upload read and chunked, not yet written: its stored name, final path, bytes, prepared document and the
    metadata fields the uploader set (kept beside the file as ``NAME.meta.json``, so re-indexing keeps them)."""

    name: str
    final: Path
    data: bytes
    doc: PreparedDocument
    fields: dict[str, Any] | None = None


def upload_fields(title: str | None = None, author: str | None = None, date: str | None = None,
                  publisher: str | None = None, metadata: str | None = None) -> dict[str, Any] | None:
    """An upload's metadata form fields as one mapping (``metadata``: a JSON object of any other keys); None when
    none is set. A malformed ``metadata`` is a 400; dates and values are checked when the card is made."""
    fields: dict[str, Any] = {}
    if metadata is not None and metadata.strip():
        try:
            extra = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise ServiceError(400, f"metadata: not JSON ({exc.msg}); send an object such as {{\"topic\": \"shipping\"}}",
                               "invalid_metadata", param="metadata") from None
        if not isinstance(extra, dict):
            raise ServiceError(400, "metadata: send a JSON object of keys and values", "invalid_metadata", param="metadata")
        fields.update(extra)
    for key, value in (("title", title), ("author", author), ("date", date), ("publisher", publisher)):
        if value is not None and value.strip():
            fields[key] = value.strip()
    return fields or None


class DocumentService:
    """The documents of one collection, as the HTTP API shows them."""

    def __init__(self, components: Components, uploads_dir: Path) -> None:
        self.components = components
        self.uploads_dir = uploads_dir

    def describe(self, meta: dict[str, Any]) -> dict[str, Any]:
        """A document's card (title, authors, date, publisher, user metadata) with its id, size and origin."""
        source = str(meta.get("source", ""))
        return {
            "doc_id": meta.get("doc_id", ""),
            **card_of_metadata(meta, public_source(meta)),  # source: never the server's absolute path
            "n_chunks": meta.get("n_chunks"),
            "uploaded": _inside(Path(source), self.uploads_dir) if source else False,
        }

    def list(self) -> list[dict[str, Any]]:
        return [self.describe(d) for d in self.components.store.documents()]

    def find(self, doc_id: str) -> dict[str, Any] | None:
        return next((d for d in self.components.store.documents() if d.get("doc_id") == doc_id), None)

    def prepare_upload(self, filename: str | None, data: bytes, fields: dict[str, Any] | None = None) -> PendingUpload:
        """Check, read, clean and chunk an upload: the slow half, run before the documents lock is taken.

        The document id is the stored file name: uploading the same name again replaces that document. ``fields``
        (title, author, date, publisher, any other key) win over what the file itself says.
        """
        name = safe_filename(filename)
        check_supported(name)
        check_size(name, len(data), self.components.settings.max_upload_bytes)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        final = self.uploads_dir / name
        if final.resolve().parent != self.uploads_dir.resolve():  # unreachable after safe_filename; the last guard
            raise ServiceError(400, f"invalid file name {name!r}", "invalid_filename", param="file")
        doc = self.components.ingestor.prepare_bytes(data, name, doc_id_for(Path(name), None), str(final.resolve()), UPLOAD,
                                                     fields)
        return PendingUpload(name, final, data, doc, fields)

    def store_upload(self, pending: PendingUpload) -> dict[str, Any]:
        """Write a prepared upload into the index, then keep the file (written atomically: a refused or failed ingest
        leaves no file behind). Run under the documents lock."""
        doc_id, final = pending.doc.doc_id, pending.final
        report = self.components.ingestor.write_prepared(pending.doc)
        _write_atomic(self.uploads_dir, final, pending.data)
        sidecar = final.with_name(final.name + SIDECAR_SUFFIX)
        if pending.fields:  # `rag ingest` of the uploads folder reads it back: the same card, the same content hash
            _write_atomic(self.uploads_dir, sidecar, json.dumps(pending.fields, ensure_ascii=False, default=str).encode())
        else:
            sidecar.unlink(missing_ok=True)
        self.components.retriever.refresh()
        status = "added" if report.added else "updated" if report.updated else "unchanged"
        log.info("document uploaded", extra={"doc_id": doc_id, "status": status, "chunks": report.chunks_written})
        return {**self.describe(self.find(doc_id) or {"doc_id": doc_id}), "status": status,
                "chunks_written": report.chunks_written, "filename": pending.name}

    def upload(self, filename: str | None, data: bytes, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """``prepare_upload`` then ``store_upload`` (callers that hold no lock)."""
        return self.store_upload(self.prepare_upload(filename, data, fields))

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
            source.with_name(source.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
        log.info("document deleted", extra={"doc_id": doc_id, "chunks": removed})
        return {"doc_id": doc_id, "deleted": True, "chunks_removed": removed}
