"""Bearer-key authentication for every route except the probes and the web page.

A pure ASGI middleware (not a dependency) so that nothing can be added later without it:
routes, the OpenAPI document and the docs pages are all covered. The key is compared with
``hmac.compare_digest`` and never logged.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response

# Reachable without the key: the probes (load balancers route on /readyz; without the key it says only ready or not),
# the page (it asks for the key) and its static files.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
REALM = 'Bearer realm="rag"'
AUTHENTICATED = "rag.authenticated"  # scope["state"] key: the request carried the valid key


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or path == "/static"


def bearer_token(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class APIKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        valid = token is not None and hmac.compare_digest(token.encode("utf-8"), self._key)
        scope.setdefault("state", {})[AUTHENTICATED] = valid
        if valid or is_public(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        if token is None:
            message = "this endpoint needs an API key: send the header 'Authorization: Bearer <key>'"
            challenge = REALM
        else:
            message = "the API key is not valid"
            challenge = f'{REALM}, error="invalid_token"'
        response = error_response(401, message, "authentication_error", "invalid_api_key", headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)
