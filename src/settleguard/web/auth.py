"""Authentication and authorisation for the API (FastAPI dependencies): a thin layer over access/, which
holds the users, tokens, sessions, the login and the rules (access/model.py ``decide``, ``owner_verdict``).

- ``Authorization: Bearer <token>`` (machine clients; ``settleguard users token``), or the
  ``sg_session`` cookie set by ``POST /api/v1/auth/login`` (browsers; HttpOnly, SameSite=Lax).
- No credentials: 401 ``unauthenticated``; a bad, revoked or expired token or session, or a disabled
  user: 401 ``invalid_credentials``; a role without the action: 403 ``forbidden``; a merchant user
  asking for another merchant's resource: 404, as if it did not exist (access/model.py ``owner_verdict``).
- CSRF: a state-changing request (not GET/HEAD/OPTIONS) authenticated by the cookie must carry the
  header ``X-CSRF-Token`` equal to the session's token (returned by the login), else 403
  ``csrf_failed``. Bearer requests carry no ambient credentials and need no CSRF token.
- Login rate limit: 5 failures per username and 20 per client address within 15 minutes
  (access/model.py ``LoginLimit``); beyond that 429 ``too_many_attempts`` with ``Retry-After``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from settleguard.access import service as access
from settleguard.access.model import Action, Principal, Verdict, may, owner_verdict
from settleguard.access.service import Login
from settleguard.web.context import WebContext, primary
from settleguard.web.errors import ApiError, forbidden, invalid_credentials, unauthenticated

SESSION_COOKIE = "sg_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def authenticate(request: Request) -> Principal:
    """The caller of this request, or 401; checks the CSRF header of cookie-authenticated writes."""
    ctx = primary(request)  # tokens and sessions are read and touched on the primary, also for a GET
    now = ctx.now()
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise invalid_credentials()
        caller = access.token_principal(ctx.engine, value.strip(), now, ctx.auth.token_touch_every)
        if caller is None:
            raise invalid_credentials()
        return caller
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        caller = access.session_principal(ctx.engine, cookie, now)
        if caller is None:
            raise invalid_credentials()
        csrf = caller.csrf_token or ""
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise ApiError(403, "csrf_failed", f"缺少或错误的 {CSRF_HEADER} 请求头（登录时返回的 csrf_token）",
                               f"missing or wrong {CSRF_HEADER} header (the csrf_token returned by the login)")
        return caller
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
    merchant caller's; 403 when the role may not do ``action`` (access/model.py ``owner_verdict``)."""
    verdict = owner_verdict(principal, action, owner_merchant_id)
    if verdict is Verdict.DENY:
        raise forbidden()
    if verdict is Verdict.HIDE:
        raise missing


# --- login and logout ---------------------------------------------------------------------------


def login(ctx: WebContext, username: str, password: str, client: str) -> Login:
    """Check a username and password (rate-limited, access/service.py ``login``) and open a session."""
    try:
        return access.login(ctx.engine, username=username, password=password, client=client, now=ctx.now(),
                            limit=ctx.auth.login_limit, session_ttl=ctx.auth.session_ttl)
    except access.LoginRefused as exc:
        if exc.retry_after is not None:
            seconds = exc.retry_after
            raise ApiError(429, "too_many_attempts", f"登录失败次数过多，请 {seconds} 秒后再试",
                           f"too many failed logins; try again in {seconds} s",
                           headers={"Retry-After": str(seconds)}) from None
        raise ApiError(401, "login_failed", "用户名或密码错误", "wrong username or password") from None


def logout(ctx: WebContext, request: Request) -> bool:
    """End the session of this request's cookie; False when there was none."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False
    return access.logout(ctx.engine, cookie)
