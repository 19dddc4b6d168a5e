"""Authentication and authorisation for the API (FastAPI dependencies).

- ``Authorization: Bearer <token>`` (machine clients; ``settleguard users token``), or the
  ``sg_session`` cookie set by ``POST /api/v1/auth/login`` (browsers; HttpOnly, SameSite=Lax).
- No credentials: 401 ``unauthenticated``; a bad, revoked or expired token or session, or a disabled
  user: 401 ``invalid_credentials``; a role without the action: 403 ``forbidden``; a merchant user
  asking for another merchant's resource: 404, as if it did not exist (web/model.py ``decide``).
- CSRF: a state-changing request (not GET/HEAD/OPTIONS) authenticated by the cookie must carry the
  header ``X-CSRF-Token`` equal to the session's token (returned by the login), else 403
  ``csrf_failed``. Bearer requests carry no ambient credentials and need no CSRF token.
- Login rate limit: 5 failures per username and 20 per client address within 15 minutes
  (web/model.py ``LoginLimit``); beyond that 429 ``too_many_attempts`` with ``Retry-After``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from settleguard.audit import service as audit
from settleguard.web import passwords
from settleguard.web import repository as repo
from settleguard.web.context import WebContext, web
from settleguard.web.errors import ApiError, forbidden, invalid_credentials, unauthenticated
from settleguard.web.model import Action, Principal, Role, Verdict, decide, may, retry_after
from settleguard.web.users import digest

SESSION_COOKIE = "sg_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _principal(user: repo.UserRow, via: str, csrf: str | None = None) -> Principal:
    return Principal(user.id, user.username, Role(user.role), user.merchant_id, via, user.display_name, csrf)


def authenticate(request: Request) -> Principal:
    """The caller of this request, or 401; checks the CSRF header of cookie-authenticated writes."""
    ctx = web(request)
    now = ctx.now()
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise invalid_credentials()
        with ctx.engine.connect() as conn:
            found = repo.user_for_token(conn, digest(value.strip()))
        if found is None:
            raise invalid_credentials()
        user, token_id, last_used = found
        every = ctx.auth.token_touch_every
        if last_used is None or last_used < now - every:
            with ctx.engine.begin() as conn:
                repo.touch_token(conn, token_id, now, every)
        return _principal(user, "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with ctx.engine.connect() as conn:
            session = repo.user_for_session(conn, digest(cookie), now)
        if session is None:
            raise invalid_credentials()
        user, csrf = session
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise ApiError(403, "csrf_failed", f"缺少或错误的 {CSRF_HEADER} 请求头（登录时返回的 csrf_token）",
                               f"missing or wrong {CSRF_HEADER} header (the csrf_token returned by the login)")
        return _principal(user, "session", csrf)
    raise unauthenticated()


Caller = Annotated[Principal, Depends(authenticate)]


def require(action: Action) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, if its role may do ``action`` at all (else 403)."""

    # async: it does no I/O, so FastAPI runs it on the event loop instead of sending it to a worker thread
    async def dependency(principal: Caller) -> Principal:
        if not may(principal.role, action):
            raise forbidden()
        return principal

    dependency.__name__ = f"require_{action.value}"
    return dependency


def check_owner(principal: Principal, action: Action, owner_merchant_id: int | None, missing: ApiError) -> None:
    """Raise ``missing`` (404) when the resource does not exist or belongs to another merchant than a
    merchant caller's; 403 when the role may not do ``action``."""
    verdict = decide(principal.role, action, user_merchant_id=principal.merchant_id,
                     owner_merchant_id=owner_merchant_id, scoped=True)
    if verdict is Verdict.DENY:
        raise forbidden()
    if verdict is Verdict.HIDE or owner_merchant_id is None:
        raise missing


# --- login and logout ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    principal: Principal
    session_id: str  # for the cookie; the database keeps its SHA-256
    csrf_token: str


def _too_many(seconds: int) -> ApiError:
    return ApiError(429, "too_many_attempts", f"登录失败次数过多，请 {seconds} 秒后再试",
                    f"too many failed logins; try again in {seconds} s", headers={"Retry-After": str(seconds)})


def login(ctx: WebContext, username: str, password: str, client: str) -> Login:
    """Check a username and password (rate-limited) and open a session."""
    now = ctx.now()
    limit = ctx.auth.login_limit
    since = now - limit.window
    with ctx.engine.connect() as conn:
        by_user = repo.recent_failures(conn, username=username, since=since, limit=limit.per_username)
        by_client = repo.recent_failures(conn, client=client, since=since, limit=limit.per_client)
        found = repo.password_hash_of(conn, username)
    waits = [w for w in (retry_after(by_user, limit.per_username, limit.window, now),
                         retry_after(by_client, limit.per_client, limit.window, now)) if w is not None]
    if waits:
        raise _too_many(max(waits))
    if found is None:
        passwords.check_dummy(password)  # the same time as for a real user
        ok = False
    else:
        ok = passwords.verify(found[1], password) and not found[0].disabled
    if not ok or found is None:
        with ctx.engine.begin() as conn:
            repo.add_login_failure(conn, username=username, client=client, now=now)
            repo.purge_failures(conn, now - 2 * limit.window)
        raise ApiError(401, "login_failed", "用户名或密码错误", "wrong username or password")
    user, stored = found
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    rehash = passwords.hash_password(password) if passwords.needs_rehash(stored) else None
    with ctx.engine.begin() as conn:
        repo.clear_failures(conn, username)
        repo.delete_expired_sessions(conn, now)
        repo.add_session(conn, session_sha256=digest(session_id), user_id=user.id, csrf_token=csrf, now=now,
                         expires_at=now + ctx.auth.session_ttl)
        if rehash is not None:
            repo.set_password_hash(conn, user.id, rehash)
        audit.record(conn, user.username, "user.login", ("user", user.id), {"client": client}, now)
    return Login(_principal(user, "session", csrf), session_id, csrf)


def logout(ctx: WebContext, request: Request) -> bool:
    """End the session of this request's cookie; False when there was none."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False
    with ctx.engine.begin() as conn:
        return repo.delete_session(conn, digest(cookie))
