"""``/healthz`` and ``/readyz`` for load balancers and orchestrators, and the request id of every request.

- ``GET /healthz``: the process is up and serving; never touches the database (200 always).
- ``GET /readyz``: the database answers and its schema is at the latest migration (200), else 503 with the
  reason; a load balancer sends no traffic to a server that is not ready.

Both are outside /api/v1 and need no login: they say nothing beyond up / ready and the schema revision.

:class:`RequestIdMiddleware` gives every HTTP request an id -- the caller's ``X-Request-ID`` when it is a sane
token (at most 64 characters of letters, digits, ``.``, ``_``, ``-``), else a new one -- binds it to every log
record written while the request is handled (settleguard.logs), answers it in ``X-Request-ID``, and logs one
line per request (method, route, status, milliseconds; not for the health endpoints).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settleguard import __version__
from settleguard.logs import bound, new_id
from settleguard.ops.doctor import readiness

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
_SANE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
LOG = logging.getLogger("settleguard.web.request")

async def healthz(_request: Request) -> JSONResponse:
    """进程存活 The process is up (no database access)."""
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> JSONResponse:
    """可接收流量 Ready: the database answers and the schema is at the latest migration; else 503."""
    engine = request.app.state.web.engine
    ready, facts = await anyio.to_thread.run_sync(readiness, engine)
    body: dict[str, Any] = {"status": "ready" if ready else "not_ready", **facts}
    if not ready:
        body["message_zh"] = "数据库不可用或未迁移到最新版本" if facts.get("database") == "ok" else "数据库不可用"
        body["message_en"] = ("database behind the latest migration" if facts.get("database") == "ok"
                              else "database unreachable")
    return JSONResponse(body, status_code=200 if ready else 503)


def install(app: Starlette) -> None:
    """Add /healthz and /readyz as plain routes: not in the API's OpenAPI (/api/v1), not console pages, no login."""
    app.add_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.add_route("/readyz", readyz, methods=["GET"], include_in_schema=False)


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID when sane, else a new id."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _SANE_ID.fullmatch(text):
                return text
            break
    return new_id()


class RequestIdMiddleware:
    """Binds a request id to the request's log records and answers it in ``X-Request-ID`` (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []),
                                                   (b"x-request-id", rid.encode("ascii"))]}
            await send(message)

        with bound(request_id=rid):
            try:
                await self.app(scope, receive, _send)
            finally:
                path = scope.get("path", "")
                if path not in HEALTH_PATHS:
                    route = getattr(scope.get("route"), "path", None) or "unmatched"
                    LOG.info("http request", extra={"method": scope.get("method", ""), "route": str(route),
                                                    "status": status,
                                                    "ms": round((time.perf_counter() - started) * 1000, 1)})
