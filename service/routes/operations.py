"""Operations routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.readiness import readiness
from service.routes import get_state
from service.state import ServiceState

router = APIRouter(tags=["operations"])
State = Annotated[ServiceState, Depends(get_state)]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests (no key needed)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready; the body says why."}})
async def readyz(state: State) -> JSONResponse:
    """Readiness: the store answers a heartbeat and the generator is loaded."""
    ready, body = await run_in_threadpool(readiness, state)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(state: State) -> Response:
    """Prometheus text format."""
    payload, content_type = state.metrics.render()
    return Response(payload, media_type=content_type)
