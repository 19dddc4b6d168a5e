"""What every request handler needs, built once by ``create_app`` and kept on ``app.state.web``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from starlette.requests import Request

from settleguard.access.model import LoginLimit
from settleguard.web.metrics import HttpMetrics

API = "/api/v1"  # every API route is under this prefix (in its router, so metrics see full templates)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuthSettings:
    session_ttl: timedelta = timedelta(hours=12)
    login_limit: LoginLimit = field(default_factory=LoginLimit)
    secure_cookies: bool = False  # set the cookie's Secure flag (serve behind HTTPS)
    token_touch_every: timedelta = timedelta(minutes=1)  # last_used_at is written at most this often


READS = frozenset({"GET", "HEAD"})  # requests whose handlers only read: served from the read engine


@dataclass
class WebContext:
    """``engine``: the primary (writes, logins, sessions, tokens). ``read_engine``: where GET and HEAD handlers
    read (a streaming standby, ``read_db``; docs/operations.md 故障切换 Failover); None: the primary."""

    engine: Engine
    now: Callable[[], datetime] = utc_now
    auth: AuthSettings = field(default_factory=AuthSettings)
    metrics: HttpMetrics = field(default_factory=HttpMetrics)
    read_engine: Engine | None = None
    reader: WebContext = field(init=False, repr=False, compare=False)  # this context over the read engine

    def __post_init__(self) -> None:
        read = self.read_engine
        self.reader = self if read is None or read is self.engine else replace(self, engine=read, read_engine=None)


def web(request: Request) -> WebContext:
    """The request's context. A GET or HEAD gets the one over the read engine (the standby when ``read_db`` is
    set): its handler must not write (a standby refuses writes; tests/ha/test_read_standby.py)."""
    ctx = primary(request)
    return ctx.reader if request.method in READS else ctx


def primary(request: Request) -> WebContext:
    """The context over the primary whatever the method: who the caller is (sessions and tokens are touched)."""
    ctx = request.app.state.web
    assert isinstance(ctx, WebContext)
    return ctx
