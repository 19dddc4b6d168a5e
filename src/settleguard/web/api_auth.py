"""``POST /api/v1/auth/login``, ``POST /api/v1/auth/logout``, ``GET /api/v1/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from settleguard.access.model import PERMISSIONS, ROLE_ZH, Principal
from settleguard.web import auth
from settleguard.web.context import API, web
from settleguard.web.errors import responses

router = APIRouter(prefix=API, tags=["auth 登录"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    username: str
    display_name: str
    role: str
    role_zh: str
    merchant_id: int | None
    via: str
    permissions: list[str]


class LoginResponse(BaseModel):
    user: Me
    csrf_token: str = Field(description="每个写请求都要放在 X-CSRF-Token 头里 send it as X-CSRF-Token on every write")


def _me(p: Principal) -> Me:
    return Me(username=p.username, display_name=p.display_name, role=str(p.role), role_zh=ROLE_ZH[p.role],
              merchant_id=p.merchant_id, via=p.via, permissions=sorted(str(a) for a in PERMISSIONS[p.role]))


@router.post("/auth/login", response_model=LoginResponse, responses=responses(401, 422, 429))
def login(body: LoginRequest, request: Request, response: Response) -> LoginResponse:
    """登录：设置会话 Cookie（HttpOnly, SameSite=Lax）并返回 CSRF 令牌 Log in: sets the session cookie and
    returns the CSRF token. 5 failures per username in 15 minutes -> 429 with Retry-After."""
    ctx = web(request)
    client = request.client.host if request.client else "unknown"
    done = auth.login(ctx, body.username, body.password, client)
    response.set_cookie(auth.SESSION_COOKIE, done.session_id, max_age=int(ctx.auth.session_ttl.total_seconds()),
                        httponly=True, samesite="lax", secure=ctx.auth.secure_cookies, path="/")
    return LoginResponse(user=_me(done.principal), csrf_token=done.csrf_token)


@router.post("/auth/logout", status_code=204, responses=responses(401, 403))
def logout(principal: auth.Caller, request: Request) -> Response:
    """退出登录：结束会话（需要 X-CSRF-Token）Log out: ends the session (needs X-CSRF-Token)."""
    auth.logout(web(request), request)
    out = Response(status_code=204)
    out.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return out


@router.get("/me", response_model=Me, responses=responses(401))
def me(principal: Annotated[Principal, Depends(auth.authenticate)]) -> Me:
    """当前用户、角色与权限 The caller: user, role and what it may do."""
    return _me(principal)
