"""Native routes: ask, search, documents (list, upload, delete), health, readiness, metrics."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, File, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rag.errors import UnsupportedDocumentType
from rag.generation.followup import Turn
from rag.ingestion.metadata import doc_id_for
from rag.ingestion.readers import SUPPORTED_SUFFIXES
from rag.settings import LLMBackendName, RetrievalMode
from service.answering import AnswerJob, check_question, collect, history_content, start
from service.errors import ServiceError
from service.state import ServiceState

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class HistoryTurn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"question": "Who has led ISIS-K since 2020?"},
        {"question": "Which country is he from?", "backend": "extractive", "history": [
            {"role": "user", "content": "Who has led ISIS-K since 2020?"},
            {"role": "assistant", "content": "Shahab al-Muhajir has led ISIS-K since 2020 [1]."}]},
    ]})
    question: str = Field(description="The question, in plain language.")
    top_k: int | None = Field(None, ge=1, le=20, description="Passages given to the generator.")
    backend: LLMBackendName | None = Field(None, description="Generator backend (must be enabled on the server).")
    mode: RetrievalMode | None = Field(None, description="Retrieval mode.")
    history: list[HistoryTurn] = Field(default_factory=list, description="Earlier turns, oldest first.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"query": "ISIS-K leader since 2020", "k": 3, "mode": "hybrid"}]})
    query: str = Field(description="What to look for.")
    k: int | None = Field(None, ge=1, le=100, description="Passages to return.")
    mode: RetrievalMode | None = None


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


def _document(meta: dict[str, Any], uploads_dir: Path) -> dict[str, Any]:
    source = str(meta.get("source", ""))
    return {
        "doc_id": meta.get("doc_id", ""),
        "title": meta.get("title", ""),
        "author": meta.get("author"),
        "source": source,
        "n_chunks": meta.get("n_chunks"),
        "uploaded": _inside(Path(source), uploads_dir) if source else False,
    }


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def register(app: FastAPI, state: ServiceState) -> None:
    """Add the routes to ``app`` directly (so ``app.routes`` lists every one of them)."""
    settings = state.settings

    # -- answers and search -----------------------------------------------------------------------
    @app.post("/v1/ask", tags=["native"])
    async def ask(req: AskRequest) -> dict[str, Any]:
        """The verified answer with citations, timings and the retrieved passages (``Answer.to_dict()``)."""
        question = check_question(state, req.question, "question")
        history = [Turn(t.role, history_content(t.role, t.content)) for t in req.history]
        job = AnswerJob(question, history, state.resolve_backend(req.backend), req.mode, req.top_k)
        answer = await collect(state, await start(state, job))
        return answer.to_dict()

    @app.post("/v1/search", tags=["native"])
    async def search(req: SearchRequest) -> dict[str, Any]:
        """Ranked passages for a query (no generation; not queued)."""
        query = check_question(state, req.query, "query")
        core = await state.acore()
        passages = await run_in_threadpool(core.retriever.search, query, req.k, req.mode)
        return {"query": query, "mode": req.mode or settings.retrieval_mode, "passages": [p.to_dict() for p in passages]}

    # -- documents ------------------------------------------------------------------------------
    @app.get("/v1/documents", tags=["documents"])
    async def list_documents() -> dict[str, Any]:
        core = await state.acore()
        docs = await run_in_threadpool(core.store.documents)
        return {"documents": [_document(d, state.uploads_dir) for d in docs], "count": len(docs)}

    @app.post("/v1/documents", tags=["documents"], status_code=201)
    async def upload_document(file: UploadFile = File(description="A .txt, .md, .html or .pdf file.")) -> JSONResponse:
        """Store the file under ``<data_dir>/uploads/`` (sanitized name), ingest it, and make it searchable at once.

        The document id comes from the file name: uploading the same name again replaces that document.
        """
        name = safe_filename(file.filename)
        suffix = Path(name).suffix
        if suffix not in SUPPORTED_SUFFIXES:
            raise UnsupportedDocumentType(
                f"unsupported file type {suffix or '(none)'!r} for {file.filename!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
        limit = settings.max_upload_bytes
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise ServiceError(413, f"{file.filename!r} is larger than the upload limit of {limit} bytes", "file_too_large", param="file")
        if not data:
            raise ServiceError(400, f"{file.filename!r} is empty", "empty_file", param="file")
        doc_id = doc_id_for(Path(name), None)
        core = await state.acore()
        async with state.docs_lock:
            report = await run_in_threadpool(_store_and_ingest, state, core, data, name, doc_id)
            await run_in_threadpool(core.retriever.refresh)
        status = "added" if report.added else "updated" if report.updated else "unchanged"
        state.metrics.uploads.labels(status).inc()
        docs = await run_in_threadpool(core.store.documents)
        meta = next((d for d in docs if d.get("doc_id") == doc_id), {"doc_id": doc_id})
        log.info("document uploaded", extra={"doc_id": doc_id, "status": status, "chunks": report.chunks_written})
        body = {**_document(meta, state.uploads_dir), "status": status, "chunks_written": report.chunks_written,
                "filename": name}
        return JSONResponse(body, status_code=201 if status == "added" else 200)

    @app.delete("/v1/documents/{doc_id}", tags=["documents"])
    async def delete_document(doc_id: str) -> dict[str, Any]:
        """Remove a document's chunks (and its uploaded file, if it was uploaded)."""
        core = await state.acore()
        async with state.docs_lock:
            docs = await run_in_threadpool(core.store.documents)
            meta = next((d for d in docs if d.get("doc_id") == doc_id), None)
            removed = await run_in_threadpool(core.ingestor.delete, doc_id)
            if not removed:
                raise ServiceError(404, f"no document {doc_id!r}", "document_not_found", param="doc_id")
            await run_in_threadpool(core.retriever.refresh)
            source = Path(str((meta or {}).get("source", "")))
            if meta and _inside(source, state.uploads_dir) and source.is_file():
                source.unlink(missing_ok=True)
        log.info("document deleted", extra={"doc_id": doc_id, "chunks": removed})
        return {"doc_id": doc_id, "deleted": True, "chunks_removed": removed}

    # -- operations -----------------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests (no key needed)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "Not ready; the body says why."}})
    async def readyz() -> JSONResponse:
        """Readiness: the store answers a heartbeat and the generator is loaded."""
        ready, body = await run_in_threadpool(state.readiness)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        payload, content_type = state.metrics.render()
        return Response(payload, media_type=content_type)


def _store_and_ingest(state: ServiceState, core: Any, data: bytes, name: str, doc_id: str) -> Any:
    """Ingest from memory, then write the file atomically (a failed ingest leaves no file behind)."""
    uploads = state.uploads_dir
    uploads.mkdir(parents=True, exist_ok=True)
    final = uploads / name
    if final.resolve().parent != uploads.resolve():  # unreachable after safe_filename; kept as the last guard
        raise ServiceError(400, f"invalid file name {name!r}", "invalid_filename", param="file")
    report = core.ingestor.ingest_bytes(data, name, doc_id, str(final.resolve()))
    tmp = uploads / f".upload-{uuid.uuid4().hex}{final.suffix}"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return report
