"""Operations routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.auth import AUTHENTICATED
from service.hosts import HOST_ALLOWED
from service.readiness import readiness
from service.routes import get_state
from service.state import ServiceState

router = APIRouter(tags=["operations"])
State = Annotated[ServiceState, Depends(get_state)]


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests (no key needed)."""
    return {"status": "ok"}


def may_see_details(request: Request, state: ServiceState) -> bool:
    """Readiness details (chunk count, what is not ready and why) go to requests addressed to an allowed host name
    that carry the key, if one is set; everyone else (a load balancer's probe) gets only ``{"status": ...}``."""
    scope_state = request.scope.get("state", {})
    authorized = not state.settings.auth_enabled or scope_state.get(AUTHENTICATED, False)
    return bool(authorized and scope_state.get(HOST_ALLOWED, True))


@router.api_route("/readyz", methods=["GET", "HEAD"], responses={503: {"description": "Not ready; the body says why."}})
async def readyz(request: Request, state: State) -> JSONResponse:
    """Readiness: the store answers a heartbeat and the generator is loaded (200, else 503). Public, like /healthz;
    the details are shown only with the key (when one is set)."""
    ready, body = await run_in_threadpool(readiness, state)
    if not may_see_details(request, state):
        body = {"status": body["status"]}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(state: State) -> Response:
    """Prometheus text format."""
    payload, content_type = state.metrics.render()
    return Response(payload, media_type=content_type)
