"""Native answer routes: ``POST /v1/ask`` (the full answer object) and ``POST /v1/search`` (ranked passages)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rag.errors import InvalidFilter
from rag.generation.followup import Turn
from rag.retrieval.filters import SearchFilter
from rag.settings import LLMBackendName, Prefer, RetrievalMode
from service.answering import AnswerJob, finish, start
from service.openai_schema import history_content
from service.routes import get_state
from service.state import ServiceState

router = APIRouter(tags=["native"])
State = Annotated[ServiceState, Depends(get_state)]


class HistoryTurn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class Filtered(BaseModel):
    """Which collection, and which of its documents, a request may draw on. ``filter`` and the top-level fields
    combine (a field may not be given in both)."""

    collection: str | None = Field(None, description="The collection (default: the server's; GET /v1/models lists them as rag:<name>).")
    filter: dict[str, Any] | None = Field(None, description='Only documents that pass: {"doc": ..., "author": ..., "since": "2021-01-01", "until": ..., "where": {"key": "value"}}.')
    doc: str | list[str] | None = Field(None, description="Only these document ids.")
    author: str | list[str] | None = Field(None, description="Only documents by these authors (a surname is enough).")
    since: str | None = Field(None, description="Only documents dated on or after this date (2021, 2021-03, 2021-03-14).")
    until: str | None = Field(None, description="Only documents dated on or before this date.")
    where: dict[str, Any] | None = Field(None, description="Only documents whose metadata keys have these values.")

    def search_filter(self) -> SearchFilter | None:
        return combined_filter(self.filter, {k: getattr(self, k) for k in ("doc", "author", "since", "until", "where")})


def combined_filter(nested: dict[str, Any] | None, top: dict[str, Any]) -> SearchFilter | None:
    """One filter from a ``filter`` object and top-level fields; a field given in both is a 400."""
    merged = dict(nested or {})
    for key, value in top.items():
        if value is None:
            continue
        if key in merged:
            raise InvalidFilter(f"filter field {key!r} is given twice (at the top level and in 'filter')")
        merged[key] = value
    return SearchFilter.parse(merged) if merged else None


class AskRequest(Filtered):
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
    prefer: Prefer | None = Field(None, description="When sources disagree: newest (lead with the newest source) or all (every value side by side); default RAG_PREFER.")


class SearchRequest(Filtered):
    model_config = ConfigDict(json_schema_extra={"examples": [{"query": "ISIS-K leader since 2020", "k": 3, "mode": "hybrid"}]})
    query: str = Field(description="What to look for.")
    k: int | None = Field(None, ge=1, le=100, description="Passages to return.")
    mode: RetrievalMode | None = None


@router.post("/v1/ask")
async def ask(req: AskRequest, state: State, request: Request) -> dict[str, Any]:
    """The verified answer with citations, timings and the retrieved passages (``Answer.to_dict()``)."""
    history = [Turn(t.role, history_content(t.role, t.content)) for t in req.history]
    job = AnswerJob(req.question, history, req.backend, req.mode, req.top_k, where=req.search_filter(), collection=req.collection,
                    prefer=req.prefer)
    run, stream = await start(state, job, streaming=False)
    answer = await finish(state, run, stream, request)
    return answer.to_dict()


@router.post("/v1/search")
async def search(req: SearchRequest, state: State) -> dict[str, Any]:
    """Ranked passages for a query (no generation; not queued), only from the documents the filter lets through."""
    where = req.search_filter()
    core = await state.acore(req.collection)
    passages = await run_in_threadpool(core.retriever.search, req.query, req.k, req.mode, where)
    return {"query": req.query.strip(), "mode": req.mode or state.settings.retrieval_mode,
            "collection": core.settings.collection, **({"filter": where.to_dict()} if where else {}),
            "passages": [p.to_dict() for p in passages]}
