"""What every request handler needs, built once by ``create_app`` and kept on ``app.state.web``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class WebContext:
    engine: Engine
    now: Callable[[], datetime] = utc_now
    auth: AuthSettings = field(default_factory=AuthSettings)
    metrics: HttpMetrics = field(default_factory=HttpMetrics)


def web(request: Request) -> WebContext:
    ctx = request.app.state.web
    assert isinstance(ctx, WebContext)
    return ctx
