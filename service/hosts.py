"""Who may address this server, and which web pages may change it.

A server on localhost without a key is reachable from any web page the user visits: a page can POST a multipart
form to it (a "simple" request: no CORS preflight), and a page whose name is re-pointed at 127.0.0.1 (DNS
rebinding) can read its answers. Two checks close that, before auth and before any route runs:

* **Host**: a request must be addressed to a loopback name or address (``localhost``, ``127.0.0.0/8``, ``::1``) or to
  a name in ``RAG_ALLOWED_HOSTS`` (``rag.example.com``; ``.example.com`` for it and its subdomains; ``*`` for any).
  Refused with 400 ``host_not_allowed``. The probes (``/healthz``, ``/readyz``) are exempt: load balancers and
  orchestrators call them by IP address.
* **Origin**: a browser names the page behind a request in ``Origin``. A state-changing request (POST, PUT, PATCH,
  DELETE) whose Origin is neither this server itself (the web page at ``/``) nor listed in ``RAG_CORS_ORIGINS`` is
  refused with 403 ``origin_not_allowed``. Clients that are not browsers (curl, SDKs) send no Origin and pass.

CORS headers are sent only for the origins in ``RAG_CORS_ORIGINS`` (Starlette's ``CORSMiddleware``, added by
``service.app`` only when that list is not empty).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response

LOOPBACK_NAMES = frozenset({"localhost"})
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOST_ALLOWED = "rag.host_allowed"  # scope["state"] key: the Host check passed (readiness shows details only then)


def split_host(value: str) -> str:
    """The host name of a ``Host`` header value (``[::1]:8080`` -> ``::1``), lower case, without a trailing dot."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        value = value.rsplit(":", 1)[0]
    return value.rstrip(".")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL or Origin value, lower case (``null`` and junk stay as they are)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return url.strip().lower()
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class HostOriginMiddleware:
    """The Host allow-list on every request but the probes, and the Origin check on state-changing ones."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = (), cors_origins: Iterable[str] = ()) -> None:
        self.app = app
        names = [h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip()]
        self.any_host = "*" in names
        self.hosts = frozenset(n for n in names if not n.startswith("."))
        self.suffixes = tuple(n for n in names if n.startswith("."))
        self.origins = frozenset(origin_of(o) for o in cors_origins if o.strip())

    def host_allowed(self, host: str) -> bool:
        return (self.any_host or is_loopback(host) or host in self.hosts
                or any(host.endswith(s) or host == s[1:] for s in self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        raw_host = headers.get("host", "")
        allowed = not raw_host or self.host_allowed(split_host(raw_host))
        scope.setdefault("state", {})[HOST_ALLOWED] = allowed
        if not allowed and scope.get("path") not in PROBE_PATHS:
            message = (f"this server does not answer to the host name {split_host(raw_host)!r}: add it to RAG_ALLOWED_HOSTS "
                       "(requests to names that are not configured are refused, against DNS rebinding)")
            await error_response(400, message, code="host_not_allowed")(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is not None and scope.get("method") in STATE_CHANGING and not self._origin_allowed(origin, raw_host):
            message = (f"cross-origin request refused: the web page at {origin!r} may not change this server; "
                       "add its origin to RAG_CORS_ORIGINS to allow it")
            await error_response(403, message, code="origin_not_allowed")(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str, raw_host: str) -> bool:
        normalized = origin_of(origin)
        if normalized in self.origins:
            return True
        netloc = urlsplit(normalized).netloc
        return bool(netloc) and bool(raw_host) and netloc == raw_host.strip().lower()  # the server's own page
