"""Every API error is JSON ``{"error": {"code": "...", "message_zh": "...", "message_en": "..."}}``
with a stable ``code`` — raised errors, unknown routes (404), wrong methods (405), validation errors
(422, with ``details``) and unhandled exceptions (500, no internals)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("settleguard.web")


class ApiError(Exception):
    """An error answered as JSON with ``status``, a stable ``code`` and a zh/en message."""

    def __init__(self, status: int, code: str, zh: str, en: str, *, headers: Mapping[str, str] | None = None,
                 details: Any = None) -> None:
        super().__init__(f"{code}: {en}")
        self.status, self.code, self.zh, self.en = status, code, zh, en
        self.headers = dict(headers or {})
        self.details = details


def body(code: str, zh: str, en: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message_zh": zh, "message_en": en}
    if details is not None:
        err["details"] = details
    return {"error": err}


def response(exc: ApiError) -> JSONResponse:
    return JSONResponse(body(exc.code, exc.zh, exc.en, exc.details), status_code=exc.status, headers=exc.headers)


# Errors raised in many places, by name.
def unauthenticated() -> ApiError:
    return ApiError(401, "unauthenticated", "需要登录或 API 令牌", "authentication required: log in or send a Bearer token",
                    headers={"WWW-Authenticate": "Bearer"})


def invalid_credentials() -> ApiError:
    return ApiError(401, "invalid_credentials", "令牌或会话无效、已过期或已撤销",
                    "the token or session is invalid, expired or revoked", headers={"WWW-Authenticate": "Bearer"})


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", "当前角色无权执行此操作", "your role may not do this")


def not_found(what_zh: str, what_en: str, code: str = "not_found") -> ApiError:
    return ApiError(404, code, f"{what_zh}不存在", f"{what_en} not found")


_STATUS = {
    400: ("bad_request", "请求无效", "bad request"),
    401: ("unauthenticated", "需要登录", "authentication required"),
    403: ("forbidden", "无权访问", "forbidden"),
    404: ("not_found", "请求的资源不存在", "not found"),
    405: ("method_not_allowed", "不支持该请求方法", "method not allowed"),
    406: ("not_acceptable", "无法提供所请求的格式", "not acceptable"),
    413: ("too_large", "请求体过大", "request body too large"),
    415: ("unsupported_media_type", "不支持的内容类型", "unsupported media type"),
}


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, zh, en = _STATUS.get(exc.status_code, (f"http_{exc.status_code}", "请求失败", "request failed"))
    return JSONResponse(body(code, zh, en), status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
               for e in exc.errors()]
    return JSONResponse(body("validation_failed", "请求参数不正确", "the request is not valid", details), status_code=422)


def _api(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return response(exc)


def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(body("internal_error", "服务器内部错误，已记录", "internal server error (logged)"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unhandled)


class ErrorDetail(BaseModel):
    code: str
    message_zh: str
    message_en: str
    details: Any = None


class ErrorResponse(BaseModel):
    """The error shape, for the OpenAPI document."""

    error: ErrorDetail


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses."""
    return {s: {"model": ErrorResponse} for s in statuses}
