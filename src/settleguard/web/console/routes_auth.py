"""``/login`` (form) and ``/logout``: the same users, password check, rate limit and session cookie as
``POST /api/v1/auth/login`` (web/auth.py). The login form carries a one-off token that must match a
cookie set with the form (login CSRF); every later form carries the session's CSRF token."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from settleguard.web import auth
from settleguard.web.console.common import check_csrf, current_user, home_of, page_user, render, safe_next
from settleguard.web.context import web
from settleguard.web.errors import ApiError

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "sg_login_csrf"


def _form(request: Request, status: int = 200, error: ApiError | None = None, username: str = "",
          next_path: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    out = render(request, "login.html", None, status=status, login_token=token, error=error, username=username,
                 next_path=next_path)
    out.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/login")
    return out


@router.get("/login")
def login_page(request: Request, next: str = "") -> Response:
    user = current_user(request)
    if user is not None:
        return RedirectResponse(safe_next(next, home_of(user)), status_code=303)
    return _form(request, next_path=next)


@router.post("/login")
def login_post(request: Request, username: Annotated[str, Form(max_length=64)] = "",
               password: Annotated[str, Form(max_length=1024)] = "", login_token: Annotated[str, Form()] = "",
               next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    kept = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not login_token or not kept or not hmac.compare_digest(login_token.encode(), kept.encode()):
        return _form(request, 403, ApiError(403, "csrf_failed", "登录表单已过期，请重新输入",
                                            "the login form expired; enter your details again"), username, next)
    if not username or not password:
        return _form(request, 401, ApiError(401, "login_failed", "请输入用户名和密码", "enter a username and password"),
                     username, next)
    ctx = web(request)
    client = request.client.host if request.client else "unknown"
    try:
        done = auth.login(ctx, username, password, client)
    except ApiError as exc:
        out = _form(request, exc.status, exc, username, next)
        out.headers.update(exc.headers)
        return out
    go = safe_next(next, home_of(done.principal))
    out = RedirectResponse(go, status_code=303)
    out.set_cookie(auth.SESSION_COOKIE, done.session_id, max_age=int(ctx.auth.session_ttl.total_seconds()),
                   httponly=True, samesite="lax", secure=ctx.auth.secure_cookies, path="/")
    out.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return out


@router.post("/logout")
def logout_post(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    user = page_user(request)
    check_csrf(user, csrf_token)
    auth.logout(web(request), request)
    out = RedirectResponse("/login", status_code=303)
    out.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return out
