"""The web application: the API under /api/v1 (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs)
and Prometheus metrics at /metrics. ``settleguard serve`` runs it with uvicorn (docs/api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import Engine

from settleguard import __version__
from settleguard.access.model import Action, Principal
from settleguard.bootstrap import Container
from settleguard.cases import repository as case_repo
from settleguard.cases.model import ACTIVE
from settleguard.db.engine import create
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.model import PayoutStatus
from settleguard.web import (
    api_auth,
    api_cards,
    api_cases,
    api_day,
    api_diagnose,
    api_docs,
    api_evidence,
    api_merchants,
    api_notifications,
    api_payout_evidence,
    api_payouts,
    api_recon,
    api_risk,
    api_settlements,
    api_terminals,
    errors,
    health,
)
from settleguard.web.auth import require
from settleguard.web.context import API, AuthSettings, WebContext
from settleguard.web.metrics import CONTENT_TYPE, MetricsMiddleware, business_lines

SERVER_POOL = 20  # pooled PostgreSQL connections kept per server process; as many again under a burst
REQUEST_THREADS = 16  # worker threads per server process for request handlers (at most SERVER_POOL)

DESCRIPTION = """结算卫士 API — settleguard's REST API.

认证 Authentication: `Authorization: Bearer <token>` (`settleguard users token`) or the session cookie
from `POST /api/v1/auth/login` (then every write needs the `X-CSRF-Token` header).
错误 Errors: `{"error": {"code", "message_zh", "message_en"}}`. 列表 Lists: `{"items", "total", "limit", "offset"}`.
"""


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # Request handlers do their database work in a pool of worker threads (FastAPI: anyio's, 40 by default).
    # They share one interpreter lock, so beyond a few threads more only add switching; under a burst 40
    # runnable threads made each request cost more CPU and the process fell further behind.
    anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
    yield


def create_app(container: Container | Engine, *, now: Callable[[], datetime] | None = None,
               auth: AuthSettings | None = None) -> FastAPI:
    """The ASGI application over the composition root's migrated engine, vault, verifier, settings and time
    zone (settleguard.bootstrap), kept on ``app.state.container``. ``now`` is the clock (default the
    container's). A bare engine is wrapped in a container over it (settings from the environment; tests)."""
    if not isinstance(container, Container):
        container = Container(given_engine=container)
    ctx = WebContext(container.engine, now or container.now, auth or AuthSettings(),
                     read_engine=container.read_engine)  # GET handlers read there (read_db: a standby)
    app = FastAPI(title="settleguard 结算卫士", version=__version__, description=DESCRIPTION,
                  openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None, lifespan=_lifespan)
    app.state.web = ctx
    app.state.container = container
    errors.install(app)
    app.add_middleware(MetricsMiddleware, metrics=ctx.metrics)
    app.add_middleware(health.RequestIdMiddleware)  # X-Request-ID, request id in every log record (outermost)
    health.install(app)  # /healthz, /readyz: no login, outside /api/v1 and the console (issue 23)

    for module in (api_auth, api_payouts, api_diagnose, api_merchants, api_cards, api_settlements, api_cases,
                   api_evidence, api_payout_evidence, api_notifications, api_recon, api_risk):
        app.include_router(module.router)  # routers carry the full /api/v1/... prefix themselves
    app.include_router(api_terminals.router)  # terminal health and heartbeats (issue 21)
    app.include_router(api_day.router)  # today's cycle, 日终自动运行 (issue 23 item 7)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["metrics 监控"],
             responses=errors.responses(401, 403))
    def metrics(request: Request, principal: Annotated[Principal, Depends(require(Action.METRICS))]) -> PlainTextResponse:
        """Prometheus 文本格式指标 Prometheus text: payouts by status, money held, open cases, HTTP requests."""
        with ctx.engine.connect() as conn:
            payouts = payout_repo.counts_by_status(conn)
            cases = case_repo.counts_by_status(conn)
        lines = (business_lines(payouts, cases, [str(s) for s in ACTIVE], [str(s) for s in PayoutStatus])
                 + ctx.metrics.lines())
        return PlainTextResponse("\n".join(lines) + "\n", media_type=CONTENT_TYPE)

    from settleguard.web import console

    console.install(app, ctx)  # the HTML console and merchant portal, outside /api/v1 (docs/console.md)
    api_docs.install(app)  # /api/v1/docs with Swagger UI from /static (no CDN)
    return app


def server_engine(url: str) -> Engine:
    """The engine of a server process (the database is already migrated). On PostgreSQL its pool keeps
    ``SERVER_POOL`` connections, more than the ``REQUEST_THREADS`` that use them: a connection beyond the pool
    is opened and closed per request (a new PostgreSQL backend each time)."""
    return create(url, pool_size=SERVER_POOL)

