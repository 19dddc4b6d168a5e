"""The console's merchant pages (商户管理): list ``/merchants`` with search, registration ``/merchants/new``, file
import ``/merchants/import``, merchant page ``/merchants/{id}`` with freeze / unfreeze / close.

Registration and import call merchants.service (the checks, report and audit of ``settleguard merchants
add|import``); the status buttons call merchants.lifecycle. Reading needs a staff role (a merchant user may
see its own merchant page only; another's is 404); registering, importing and status changes need the
operator role (merchant_manage) and the form's CSRF token. ``/merchants/{id}/statement`` downloads the merchant's
statement (对账单) for any role that may read the merchant (the portal's download, routes_portal.statement_download).
The card vault is the console's (web.console.tools), as for the portal's card re-binding. A refused form is shown
again with each problem next to its field and the values kept — except the card and ID numbers, which are never
sent back.
"""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from settleguard.access.model import Action, Principal, may
from settleguard.cards import repository as card_repo
from settleguard.merchants import repository as merchant_repo
from settleguard.merchants import service as onboard
from settleguard.merchants.checks import Rules
from settleguard.merchants.file_layout import FIELDS
from settleguard.merchants.lifecycle import StatusRefused, change_status_of
from settleguard.merchants.model import STATUS_NAMES, MerchantStatus, StatusAction
from settleguard.merchants.onboarding import OnboardingRejected
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.merchant_holds import release_unfrozen
from settleguard.web import dashboard_repository as dash
from settleguard.web.console.common import (
    PAGE,
    Id,
    Staff,
    User,
    check_csrf,
    check_owner,
    render,
    require_action,
)
from settleguard.web.console.routes_portal import statement_download, statement_period
from settleguard.web.console.tools import card_tools
from settleguard.web.context import web
from settleguard.web.services import container_of

router = APIRouter(include_in_schema=False)
SECRET_FIELDS = ("card_no", "legal_person_id", "holder_id")  # never sent back to the browser
FORM_FIELDS = tuple(f for f in onboard.MERCHANT_FIELDS)
TERMINAL_FIELDS = ("terminal_sn", "terminal_no", "terminal_model")
DONE = {"freeze": ("商户已冻结", "merchant frozen"), "unfreeze": ("商户已解冻", "merchant unfrozen"),
        "close": ("商户已注销", "merchant closed")}


def _status_names() -> dict[str, tuple[str, str]]:
    return {str(s): names for s, names in STATUS_NAMES.items()}


@router.get("/merchants")
def merchants_page(request: Request, user: Staff,
                   q: Annotated[str, Query(max_length=64)] = "",
                   status: Annotated[str, Query(max_length=16)] = "",
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    status = status if status in {s.value for s in MerchantStatus} else ""
    with web(request).engine.connect() as conn:
        total, rows = merchant_repo.search(conn, text=q.strip() or None, status=status or None, limit=PAGE,
                                           offset=(page - 1) * PAGE)
    return render(request, "merchants.html", user, rows=rows, total=total, q=q, chosen=status, page=page,
                  pages=max(1, -(-total // PAGE)), statuses=_status_names(),
                  can_manage=may(user.role, Action.MERCHANT_MANAGE))


def _rules(request: Request) -> Rules:
    return Rules(enterprise_legal_person_account=container_of(request).settings.enterprise_legal_person_account)


def _labels() -> dict[str, tuple[str, str]]:
    out = {k: FIELDS.get(k, (k, k)) for k in (*FORM_FIELDS, *TERMINAL_FIELDS)}
    out["terminals"] = ("更多终端", "more terminals")
    return out


def _form_page(request: Request, user: Principal, status: int = 200, values: dict[str, str] | None = None,
               errors: dict[str, list[Any]] | None = None, refused: dict[str, Any] | None = None) -> Response:
    kept = {k: v for k, v in (values or {}).items() if k not in SECRET_FIELDS}
    return render(request, "merchant_new.html", user, status=status, values=kept, errors=errors or {},
                  refused=refused, labels_of=_labels(), can_manage=may(user.role, Action.MERCHANT_MANAGE))


@router.get("/merchants/new")
def new_merchant_page(request: Request, user: Staff) -> Response:
    return _form_page(request, user)


def _terminals(first: tuple[str, str, str], more: str) -> list[onboard.Terminal]:
    """The form's first terminal and one more per line of ``more`` ("序列号,终端号,型号"; commas, colons or tabs)."""
    out = [onboard.Terminal(*first)] if any(x.strip() for x in first) else []
    for line in more.splitlines()[:200]:
        parts = [p.strip() for p in line.replace("，", ",").replace(":", ",").replace("\t", ",").split(",")]
        if any(parts):
            parts = (parts + ["", "", ""])[:3]
            out.append(onboard.Terminal(parts[0], parts[1], parts[2]))
    return out


@router.post("/merchants/new")
async def register_merchant(request: Request, user: Staff) -> Response:
    """Register one merchant from the form (operators; the checks of ``merchants add``)."""
    form = await request.form()
    values = {k: str(form.get(k) or "")[:256] for k in (*FORM_FIELDS, *TERMINAL_FIELDS, "terminals")}
    check_csrf(user, str(form.get("csrf_token") or ""))
    require_action(user, Action.MERCHANT_MANAGE)
    terminals = _terminals((values["terminal_sn"], values["terminal_no"], values["terminal_model"]),
                           str(form.get("terminals") or "")[:20_000])
    ctx, rules, tz = web(request), _rules(request), container_of(request).tz

    def register() -> tuple[bool, int | None]:
        res = onboard.register_one(ctx.engine, {k: values[k] for k in FORM_FIELDS}, terminals,
                                   vault=card_tools(request).vault, now=ctx.now(), rules=rules, actor=user.username,
                                   timezone=tz)
        with ctx.engine.connect() as conn:
            return bool(res.unchanged), merchant_repo.id_of(conn, values["merchant_no"].strip())

    try:
        unchanged, mid = await to_thread.run_sync(register)  # the database work off the event loop
    except OnboardingRejected as exc:
        errors: dict[str, list[Any]] = {}
        for p in exc.problems:
            errors.setdefault(p.field, []).append(p)
        return _form_page(request, user, 422, values, errors, onboard.rejection_view(exc))
    return RedirectResponse(f"/merchants/{mid}?done={'unchanged' if unchanged else 'registered'}", status_code=303)


def _import_page(request: Request, user: Principal, status: int = 200, report: dict[str, Any] | None = None,
                 result: dict[str, Any] | None = None) -> Response:
    return render(request, "merchant_import.html", user, status=status, report=report, result=result,
                  max_mb=onboard.MAX_UPLOAD // (1024 * 1024), can_manage=may(user.role, Action.MERCHANT_MANAGE))


@router.get("/merchants/import")
def import_page(request: Request, user: Staff) -> Response:
    return _import_page(request, user)


def _chunks(upload: UploadFile) -> Any:
    while True:
        block = upload.file.read(1 << 16)
        if not block:
            return
        yield block


@router.post("/merchants/import")
def import_file(request: Request, user: Staff, file: Annotated[UploadFile | None, File()] = None,
                csrf_token: Annotated[str, Form()] = "") -> Response:
    """Import a merchant file (operators): all registered or none, every problem with its line and field."""
    check_csrf(user, csrf_token)
    require_action(user, Action.MERCHANT_MANAGE)
    if file is None or not file.filename:
        report = {"reason": {"zh": "请选择要导入的商户入网表", "en": "choose a merchant file to import"},
                  "problems": [], "total_problems": 0}
        return _import_page(request, user, 422, report=report)
    ctx = web(request)
    name = onboard.safe_filename(file.filename)
    try:
        res = onboard.import_upload(ctx.engine, _chunks(file), file.filename, vault=card_tools(request).vault,
                                    now=ctx.now(), rules=_rules(request), actor=user.username,
                                    timezone=container_of(request).tz)
    except onboard.UploadTooLarge:
        mb = onboard.MAX_UPLOAD // (1024 * 1024)
        report = {"reason": {"zh": f"文件超过 {mb} MB", "en": f"the file is larger than {mb} MB"}, "problems": [],
                  "total_problems": 0}
        return _import_page(request, user, 413, report=report)
    except OnboardingRejected as exc:
        return _import_page(request, user, 422, report=onboard.rejection_view(exc, name))
    return _import_page(request, user, result=onboard.result_view(res, name))


def _merchant_page(request: Request, user: Principal, merchant_id: int, status: int = 200,
                   refused: StatusRefused | None = None, done: str | None = None, reason: str = "") -> Response:
    with web(request).engine.connect() as conn:
        m = merchant_repo.by_id(conn, merchant_id)
        check_owner(user, None if m is None else merchant_id)
        assert m is not None
        full = merchant_repo.by_no(conn, m["merchant_no"]) or {}
        accounts = card_repo.accounts_of(conn, merchant_id)
        counts = payout_repo.counts_by_status(conn, merchant_id)
        total, recent = dash.queue(conn, merchant_id=merchant_id, limit=20)
        merchant_cases = dash.cases_of(conn, merchant_id) if user.merchant_scope is None else []
        history = merchant_repo.status_history(conn, merchant_id)
    current = MerchantStatus(full.get("status") or m["status"])
    actions = []
    if may(user.role, Action.MERCHANT_MANAGE):
        actions = [a for a in StatusAction if current in _allowed(a)]
    return render(request, "merchant.html", user, status=status, m=m, full=full, accounts=accounts,
                  counts=sorted(counts.items()), recent=recent, total=total, cases=merchant_cases,
                  history=[_history_item(h) for h in history], statuses=_status_names(), actions=actions,
                  refused=refused, done=DONE.get(done or "") or _registered(done), reason=reason,
                  period=statement_period(request))


def _registered(done: str | None) -> tuple[str, str] | None:
    return {"registered": ("商户已登记", "merchant registered"),
            "unchanged": ("商户已登记且信息相同，未做更改", "already registered with the same facts; nothing changed")}.get(
        done or "")


def _allowed(action: StatusAction) -> frozenset[MerchantStatus]:
    from settleguard.merchants.model import STATUS_TRANSITIONS

    return STATUS_TRANSITIONS[action][0]


def _history_item(h: dict[str, Any]) -> dict[str, Any]:
    import json

    try:
        payload = json.loads(h["payload"])
    except (TypeError, ValueError):
        payload = {}
    return {"at": h["at"], "actor": h["actor"], "action": str(h["kind"]).removeprefix("merchant."),
            "from": payload.get("from"), "to": payload.get("to"), "reason": payload.get("reason", ""),
            "released": len(payload.get("released_payouts") or []), "released_fen": payload.get("released_fen")}


@router.get("/merchants/{merchant_id}")
def merchant_page(request: Request, user: User, merchant_id: Id,
                  done: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    return _merchant_page(request, user, merchant_id, done=done)


@router.post("/merchants/{merchant_id}/status")
def change_status(request: Request, user: User, merchant_id: Id, action: Annotated[str, Form(max_length=16)] = "",
                  reason: Annotated[str, Form(max_length=256)] = "",
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    """Freeze, unfreeze or close (operators, with a reason) through merchants.lifecycle, as the CLI does."""
    with web(request).engine.connect() as conn:
        check_owner(user, merchant_id if merchant_repo.no_of(conn, merchant_id) is not None else None)
    check_csrf(user, csrf_token)
    require_action(user, Action.MERCHANT_MANAGE)
    ctx = web(request)
    try:
        if action not in {a.value for a in StatusAction}:
            raise StatusRefused("未知操作", f"unknown action {action[:16]!r}")
        change_status_of(ctx.engine, merchant_id, StatusAction(action), reason, actor=user.username, now=ctx.now(),
                         release_held=release_unfrozen)
    except StatusRefused as exc:
        return _merchant_page(request, user, merchant_id, status=409, refused=exc, reason=reason)
    return RedirectResponse(f"/merchants/{merchant_id}?done={action}", status_code=303)


@router.get("/merchants/{merchant_id}/statement")
def merchant_statement(request: Request, user: User, merchant_id: Id,
                       start: Annotated[str, Query(alias="from", max_length=40)] = "",
                       end: Annotated[str, Query(alias="to", max_length=40)] = "",
                       fmt: Annotated[str, Query(alias="format", max_length=10)] = "xlsx") -> Response:
    """Download the merchant's statement (对账单) of business days from..to, as xlsx or csv."""
    with web(request).engine.connect() as conn:
        merchant_no = merchant_repo.no_of(conn, merchant_id)
    check_owner(user, None if merchant_no is None else merchant_id)
    assert merchant_no is not None
    return statement_download(request, merchant_no, start, end, fmt)
