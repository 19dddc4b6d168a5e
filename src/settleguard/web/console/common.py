"""What every console and portal page needs: the templates, the language (zh by default, ``?lang=en``
or the ``sg_lang`` cookie), the signed-in user from the session cookie (else a redirect to /login),
the CSRF check of form posts, and the 403/404 pages."""

from __future__ import annotations

import hmac
import inspect
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from settleguard.access import service as access
from settleguard.access.model import Action, Principal, Role, Verdict, may, owner_verdict
from settleguard.config import DEFAULT_TIMEZONE
from settleguard.web.auth import SESSION_COOKIE
from settleguard.web.console import labels
from settleguard.web.context import primary
from settleguard.web.services import local_zone

LANG_COOKIE = "sg_lang"
LANGS = ("zh", "en")
DEFAULT_ZONE = ZoneInfo(DEFAULT_TIMEZONE)  # only where no request is at hand; pages use local_zone(request)
_LONG_DIGITS = re.compile(r"\d{12,19}")


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """An HTML error page (403, 404, ...) with a zh/en message."""

    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(f"{status}: {en}")
        self.status, self.zh, self.en = status, zh, en


def forbidden() -> PageError:
    return PageError(403, "当前角色无权访问此页面或执行此操作", "your role may not see this page or do this")


def not_found() -> PageError:
    return PageError(404, "页面不存在", "page not found")


def csrf_failed() -> PageError:
    return PageError(403, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试",
                     "the form is stale or not ours (CSRF check failed); reload the page and try again")


# --- formatting -------------------------------------------------------------------------------------


def yuan(fen: int | None) -> str:
    """Integer fen as yuan with thousands separators: 1234567 -> '12,345.67'."""
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def local_time(at: datetime | date | None, zone: ZoneInfo = DEFAULT_ZONE) -> str:
    """A time as pages show it, in the business time zone (the app's container: Beijing time by default)."""
    if at is None:
        return "-"
    if isinstance(at, datetime):
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return at.isoformat()


@pass_context
def _when(context: Context, at: datetime | date | None) -> str:
    """The ``when`` filter of templates: :func:`local_time` in the zone of the app serving the page."""
    request = context.get("request")
    return local_time(at, local_zone(request) if isinstance(request, Request) else DEFAULT_ZONE)


def redact(text: object) -> str:
    """Mask any run of 12-19 digits (a card or account number) in bank text: first 6 and last 4 kept."""
    return _LONG_DIGITS.sub(lambda m: m.group(0)[:6] + "*" * (len(m.group(0)) - 10) + m.group(0)[-4:], str(text or ""))


def both(zh: str, en: str) -> Markup:
    """A heading in both languages, Chinese first."""
    return Markup('{} <span class="en">{}</span>').format(zh, en)


def pct(part: int, whole: int) -> str:
    return "-" if not whole else f"{100 * part / whole:.1f}%"


ENV = Environment(loader=PackageLoader("settleguard.web", "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(yuan=yuan, when=_when, redact=redact)
ENV.globals.update(both=both, pct=pct, labels=labels, label=labels.label)


# --- language, user -----------------------------------------------------------------------------


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return str(asked)
    kept = request.cookies.get(LANG_COOKIE)
    return kept if kept in LANGS else "zh"


def current_user(request: Request) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    ctx = primary(request)  # the session is read and touched on the primary, also for a GET
    return access.session_principal(ctx.engine, cookie, ctx.now())


def page_user(request: Request) -> Principal:
    """The signed-in user of a page request, or a redirect to /login (a FastAPI dependency)."""
    user = current_user(request)
    if user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return user


def staff_user(request: Request) -> Principal:
    """A signed-in operator, support or auditor user; a merchant user gets the 403 page."""
    user = page_user(request)
    if user.role is Role.MERCHANT:
        raise forbidden()
    return user


def check_owner(user: Principal, owner_merchant_id: int | None) -> None:
    """404 page when the resource does not exist or is another merchant's (for a merchant user): the API's
    owner check (access/model.py ``owner_verdict``), answered as pages."""
    verdict = owner_verdict(user, Action.READ, owner_merchant_id)
    if verdict is Verdict.DENY:
        raise forbidden()
    if verdict is Verdict.HIDE:
        raise not_found()


def check_csrf(user: Principal, sent: str) -> None:
    expected = user.csrf_token or ""
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise csrf_failed()


def require_action(user: Principal, action: Action) -> None:
    if not may(user.role, action):
        raise forbidden()


def safe_next(path: str | None, default: str) -> str:
    """A local path to go to after the login (never another site)."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return default


def home_of(user: Principal) -> str:
    return "/m" if user.role is Role.MERCHANT else "/"


# --- rendering --------------------------------------------------------------------------------------


# Scripts only from /static (the JSON island of the dashboard is data, not script); htmx adds a <style>
# element; no framing (clickjacking), forms post only here; pages with merchants' data are not cached.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(request: Request, template: str, user: Principal | None, status: int = 200, **values: Any) -> HTMLResponse:
    lang = lang_of(request)
    page = ENV.get_template(template).render(request=request, user=user, lang=lang, T=_translator(lang),
                                             path=request.url.path, **values)
    out = HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)
    asked = request.query_params.get("lang")
    if asked in LANGS:
        out.set_cookie(LANG_COOKIE, str(asked), max_age=365 * 86400, samesite="lax", path="/")
    return out


def _translator(lang: str) -> Any:
    def t(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    return t


def inline_json(value: Any) -> Markup:
    """JSON safe inside a <script type="application/json"> element."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


ENV.filters["inline_json"] = inline_json


def install_handlers(app: FastAPI) -> None:
    def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        target = "/login?next=" + quote(exc.next_path, safe="/")
        if request.headers.get("HX-Request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    def error_page(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return render(request, "error.html", current_user(request), status=exc.status, error=exc)

    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(PageError, error_page)
    _html_for_pages(app, StarletteHTTPException, lambda exc: int(getattr(exc, "status_code", 500)))
    _html_for_pages(app, RequestValidationError, lambda exc: 400)  # a malformed id or filter in a page's URL


def is_page(request: Request) -> bool:
    """A console or portal page request (not the API, metrics or static files)."""
    path = request.url.path
    return not (path.startswith(("/api/", "/static/")) or path == "/metrics")


_PAGE_ERRORS = {
    400: ("请求参数不正确，请检查链接", "the link's parameters are not valid"),
    404: ("页面不存在", "page not found"),
    405: ("不支持该请求方法", "method not allowed"),
}


def _html_for_pages(app: FastAPI, kind: type[Exception], status_of: Callable[[Exception], int]) -> None:
    """Answer ``kind`` errors on page requests with the HTML error page; API requests keep the JSON
    handler of web/errors.py, which this wraps."""
    api_handler = app.exception_handlers[kind]

    async def handler(request: Request, exc: Exception) -> Response:
        status = status_of(exc)
        if is_page(request) and status in _PAGE_ERRORS:
            zh, en = _PAGE_ERRORS[status]
            return render(request, "error.html", current_user(request), status=status, error=PageError(status, zh, en))
        out = api_handler(request, exc)
        return await out if inspect.isawaitable(out) else out

    app.add_exception_handler(kind, handler)


# The parameters of the staff pages' routes (routes_cases, routes_ops, routes_merchants): the signed-in staff
# member, any signed-in user, a row id, a page's length.
Staff = Annotated[Principal, Depends(staff_user)]
User = Annotated[Principal, Depends(page_user)]
Id = Annotated[int, Path(ge=1, le=2**62)]
PAGE = 50
