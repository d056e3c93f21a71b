"""Native answer routes: ``POST /v1/ask`` (the full answer object) and ``POST /v1/search`` (ranked passages)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from rag.generation.followup import Turn
from rag.settings import LLMBackendName, RetrievalMode
from service.answering import AnswerJob, finish, start
from service.openai_schema import history_content
from service.routes import get_state
from service.state import ServiceState

router = APIRouter(tags=["native"])
State = Annotated[ServiceState, Depends(get_state)]


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


@router.post("/v1/ask")
async def ask(req: AskRequest, state: State, request: Request) -> dict[str, Any]:
    """The verified answer with citations, timings and the retrieved passages (``Answer.to_dict()``)."""
    history = [Turn(t.role, history_content(t.role, t.content)) for t in req.history]
    run, stream = await start(state, AnswerJob(req.question, history, req.backend, req.mode, req.top_k), streaming=False)
    answer = await finish(state, run, stream, request)
    return answer.to_dict()


@router.post("/v1/search")
async def search(req: SearchRequest, state: State) -> dict[str, Any]:
    """Ranked passages for a query (no generation; not queued)."""
    core = await state.acore()
    passages = await run_in_threadpool(core.retriever.search, req.query, req.k, req.mode)
    return {"query": req.query.strip(), "mode": req.mode or state.settings.retrieval_mode, "passages": [p.to_dict() for p in passages]}
