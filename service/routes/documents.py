"""Document routes: list, upload and delete (``service.documents`` does the work)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.documents import DocumentService, upload_fields
from service.routes import get_state
from service.state import ServiceState

router = APIRouter(tags=["documents"])
State = Annotated[ServiceState, Depends(get_state)]


CollectionQuery = Annotated[Optional[str], Query(description="The collection (default: the server's; see GET /v1/models).")]


async def documents(state: State, collection: CollectionQuery = None) -> DocumentService:
    components = await state.acore(collection)
    return DocumentService(components, state.uploads_for(components))


Documents = Annotated[DocumentService, Depends(documents)]


@router.get("/v1/documents")
async def list_documents(docs: Documents) -> dict[str, Any]:
    """Every document with its card: title, authors, date (``date_inferred`` when it is the latest date the text
    states), publisher, source file and user metadata."""
    listed = await run_in_threadpool(docs.list)
    return {"documents": listed, "count": len(listed)}


@router.post("/v1/documents", status_code=201)
async def upload_document(
    state: State,
    file: UploadFile = File(description="A .txt, .md, .html or .pdf file."),
    collection: Optional[str] = Form(None, description="The collection to add it to (created if new; default: the server's)."),
    title: Optional[str] = Form(None, description="The document's title (wins over what the file says)."),
    author: Optional[str] = Form(None, description="Its author(s); several: 'A; B' or 'A and B'."),
    date: Optional[str] = Form(None, description="Its publication date: 2019-03-14, 2019-03 or 2019."),
    publisher: Optional[str] = Form(None, description="Its publisher or site."),
    metadata: Optional[str] = Form(None, description='Any other fields, as a JSON object (e.g. {"topic": "shipping"}); filter on them with where.'),
) -> JSONResponse:
    """Store the file under ``<data_dir>/uploads/`` (sanitized name), ingest it, and make it searchable at once.

    The document id is the stored file name: uploading the same name again replaces that document; a name that
    is the id of an ingested file is refused (409). The file is read and chunked before the documents lock is
    taken, so a slow or hostile file never holds up other uploads and deletes; only the write holds it.
    """
    fields = upload_fields(title, author, date, publisher, metadata)
    components = await state.acore(collection, create=True)
    docs = DocumentService(components, state.uploads_for(components))
    data = await file.read(state.settings.max_upload_bytes + 1)  # one byte over the limit is enough to refuse
    pending = await run_in_threadpool(docs.prepare_upload, file.filename, data, fields)
    async with state.docs_lock:
        body = await run_in_threadpool(docs.store_upload, pending)
    state.metrics.uploads.labels(body["status"]).inc()
    return JSONResponse(body, status_code=201 if body["status"] == "added" else 200)


@router.delete("/v1/documents/{doc_id:path}")  # ids of files in subfolders hold a slash
async def delete_document(doc_id: str, state: State, docs: Documents) -> dict[str, Any]:
    """Remove a document's chunks (and its uploaded file, if it was uploaded)."""
    async with state.docs_lock:
        return await run_in_threadpool(docs.delete, doc_id)
