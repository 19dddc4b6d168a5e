"""The console's reconciliation (对账) pages: the day's reconciliation ``/recon`` (latest statement date with data,
or ``?date=``): matched, breaks by type, balance drift; the break queue ``/recon/breaks`` with filters (type,
status, date range); a break ``/recon/breaks/{id}`` with the bank side and our side side by side. Staff only
(action ``recon_read``; a merchant user gets 403). Queries: reconciliation/report_repository.py, as the API's.

A break is resolved with four eyes (差错处理, reconciliation/resolve.py): on its page an operator proposes an
action with a note, another operator approves (the money moves then) or rejects; form posts with the session's
CSRF token (action ``recon_resolve``: operators; support and auditors only read), redirected back with a message,
or the page again with the zh/en refusal (nothing changed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from settleguard.access.model import Action, Principal, Role, may
from settleguard.labels import (
    RECON_ACTION,
    RECON_BREAK_STATUS,
    RECON_BREAK_TYPE,
    RECON_RECEIVABLE_STATUS,
    RECON_RESOLUTION_STATUS,
)
from settleguard.reconciliation import report_repository as repo
from settleguard.reconciliation import resolve
from settleguard.reconciliation.model import DIRECTION_NAMES, STATUS_NAMES
from settleguard.reconciliation.resolve import ResolutionRefused
from settleguard.web.console.common import (
    PAGE,
    Id,
    PageError,
    Staff,
    User,
    check_csrf,
    forbidden,
    not_found,
    render,
    require_action,
)
from settleguard.web.context import web
from settleguard.web.services import container_of, local_zone

router = APIRouter(include_in_schema=False)

# words for codes only these pages show (the break types and statuses are in settleguard.labels)
RULES: Mapping[str, tuple[str, str]] = {
    "e2e": ("按指令号匹配", "by instruction key"), "e2e_split": ("按指令号（分笔记账）", "by instruction key, split"),
    "batch": ("按批次匹配", "by batch"), "amount_date": ("按金额、卡号与日期匹配", "by amount, card and date")}
DIRECTIONS: Mapping[str, tuple[str, str]] = {str(k): v for k, v in DIRECTION_NAMES.items()}
LINE_STATUSES: Mapping[str, tuple[str, str]] = {str(k): v for k, v in STATUS_NAMES.items()}
SOURCES: Mapping[str, tuple[str, str]] = {"camt.053": ("日终对账单 camt.053", "statement camt.053"),
                                          "camt.054": ("借贷通知 camt.054", "notification camt.054"),
                                          "bank_file": ("银行文件", "bank file")}
# what each type of break means and what to do, for the break page
EXPLAIN: Mapping[str, tuple[str, str]] = {
    "bank_only": ("银行扣了款，但我们没有对应的已付出款：核对是否为我方未记录的付款或银行错扣。",
                  "The bank debited money we have no paid payout for: check for a payment we did not record or a "
                  "wrong debit."),
    "ledger_only": ("我们记为已付，但在窗口期内银行没有记账：转查询，不要直接重发。",
                    "We record the payout as paid but the bank booked no debit within the window: inquire; never "
                    "resend blind."),
    "amount_mismatch": ("银行记账金额与出款金额不一致。", "The amount the bank booked differs from the payout's."),
    "duplicate_debit": ("银行对同一笔指令扣款两次：向银行申请退回重复扣款。",
                        "The bank paid one instruction twice: claim the duplicate back from the bank."),
    "reversal": ("付款后银行冲正或退回：资金应转入挂账，如同退票。",
                 "The bank reversed or returned the payment after success: the money goes to held, as for a return."),
    "clearing_long": ("银联清算有、我方无此交易（长款）：核实后补记调整交易，下一周期结算出款。",
                      "The network cleared a transaction we never imported (long): after checking, an adjustment "
                      "transaction is settled and paid next cycle."),
    "clearing_short": ("我方有、银联清算无此交易（短款）：核实后冲正我方交易，下一周期扣回。",
                       "We have a transaction the network did not clear (short): after checking, ours is reversed "
                       "and netted next cycle."),
    "balance_drift": ("期初余额 + 已记账 ≠ 期末余额：对账单本身不平，或缺少流水。",
                      "Opening balance + booked entries ≠ closing balance: the statement does not prove, or lines "
                      "are missing."),
}
TYPES = list(RECON_BREAK_TYPE)  # bank lines (matching.BreakType) and the clearing file (clearing_matching.py)
STATUSES = list(RECON_BREAK_STATUS)


def seconds(at: datetime | date | None, zone: ZoneInfo) -> str:
    """A time as these pages show it: local time (the business zone) to the second; a date as it is."""
    if at is None:
        return "-"
    if isinstance(at, datetime):
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    return at.isoformat()


def _values(request: Request) -> dict[str, Any]:
    zone = local_zone(request)
    return {"at": lambda v: seconds(v, zone), "zone": str(zone), "TYPES_L": RECON_BREAK_TYPE,
            "STATUS_L": RECON_BREAK_STATUS, "RULES": RULES, "DIRECTIONS": DIRECTIONS, "LINE_STATUSES": LINE_STATUSES,
            "SOURCES": SOURCES}


@router.get("/recon")
def recon_day(request: Request, user: Staff, day: Annotated[date | None, Query(alias="date")] = None) -> Response:
    """今日对账：已匹配、按类型的差错、余额差异 The day's reconciliation."""
    require_action(user, Action.RECON_READ)
    with web(request).engine.connect() as conn:
        latest = repo.latest_day(conn)
        on = day or latest
        got = repo.summary(conn, on) if on is not None else None
    by_type: dict[str, dict[str, Any]] = {}
    if got is not None:
        for x in got["breaks"]:
            slot = by_type.setdefault(x["type"], {"open": 0, "cleared": 0, "resolved": 0, "amount_fen": 0})
            slot[x["status"]] = x["count"]
            slot["amount_fen"] += x["amount_fen"]
    return render(request, "recon.html", user, day=on, latest=latest, s=got, by_type=by_type, types=TYPES,
                  **_values(request))


@router.get("/recon/breaks")
def recon_breaks(request: Request, user: Staff,
                 type_: Annotated[str, Query(alias="type", max_length=40)] = "",
                 status: Annotated[Literal["", "open", "cleared", "resolved"], Query()] = "",
                 date_from: Annotated[date | None, Query(alias="from")] = None,
                 date_to: Annotated[date | None, Query(alias="to")] = None,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
    """差错队列 The break queue, newest first, filtered by type, status and date range."""
    require_action(user, Action.RECON_READ)
    if type_ and type_ not in RECON_BREAK_TYPE:
        raise PageError(400, "没有这种差错类型", "no such break type")
    if date_from is not None and date_to is not None and date_from > date_to:
        raise PageError(400, f"起始日期 {date_from} 晚于结束日期 {date_to}", f"from {date_from} is after to {date_to}")
    filters: dict[str, Any] = {"type_": type_ or None, "status": status or None, "date_from": date_from,
                               "date_to": date_to}
    with web(request).engine.connect() as conn:
        total = repo.count_breaks(conn, **filters)
        rows = repo.list_breaks(conn, limit=PAGE, offset=offset, **filters)
    shown = {"type": type_, "status": status, "from": date_from.isoformat() if date_from else "",
             "to": date_to.isoformat() if date_to else ""}
    return render(request, "recon_breaks.html", user, rows=rows, total=total, offset=offset, page_size=PAGE,
                  filters=shown, types=TYPES, statuses=STATUSES, **_values(request))


def _break_page(request: Request, user: Principal, break_id: int, *, status: int = 200, done: str | None = None,
                refused: ResolutionRefused | None = None, form: dict[str, str] | None = None) -> Response:
    with web(request).engine.connect() as conn:
        got = repo.break_detail(conn, break_id)
    if got is None:
        raise not_found()
    brk = got["break"]
    history = [r.as_dict() | {"proposed_at": r.proposed_at, "decided_at": r.decided_at}
               for r in resolve.list_for_break(web(request).engine, break_id)]
    pending = next((r for r in history if r["status"] == str(resolve.Status.PROPOSED)), None)
    can_resolve = may(user.role, Action.RECON_RESOLVE)
    return render(request, "recon_break.html", user, status=status, b=brk, lines=got["bank_lines"],
                  statement=got["statement"], payouts=got["payouts"],
                  detail=brk["detail"] if isinstance(brk["detail"], dict) else {},
                  explain=EXPLAIN.get(str(brk["type"]), ("", "")), history=history, pending=pending,
                  can_propose=can_resolve and pending is None and brk["status"] == "open",
                  can_decide=can_resolve and pending is not None,
                  actions=[str(a) for a in resolve.actions_for(str(brk["type"]))], ACTIONS_L=RECON_ACTION,
                  RES_STATUS_L=RECON_RESOLUTION_STATUS, RECEIVABLE_L=RECON_RECEIVABLE_STATUS,
                  done=DONE.get(done or ""), refused=refused, form=form or {}, **_values(request))


@router.get("/recon/breaks/{break_id}")
def recon_break(request: Request, user: Staff, break_id: Id,
                done: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    """差错详情：银行一侧与我方一侧并列；差错处理（双人复核）A break with the bank side and our side side by side;
    its resolution, proposed by one operator and approved by another."""
    require_action(user, Action.RECON_READ)
    return _break_page(request, user, break_id, done=done)


# --- 差错处理 with four eyes (reconciliation/resolve.py): propose, approve, reject -----------------------------

DONE: Mapping[str, tuple[str, str]] = {
    "proposed": ("已提出处理方案，等待另一名操作员复核", "resolution proposed; another operator must approve it"),
    "approved": ("已批准，差错已处理", "approved; the break is resolved"),
    "rejected": ("已驳回处理方案", "resolution rejected"),
}
_REFUSED_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422}


def _resolve_act(request: Request, user: Principal, break_id: int | Callable[[], int], csrf_token: str, done: str,
                 do: Callable[[Engine, str, datetime], object], form: dict[str, str]) -> Response:
    """Staff, the CSRF token, the role's right to resolve (operators), then ``do``; a refusal shows the break
    page again with its reason (and the form refilled), nothing changed. ``break_id`` may be a lookup, made only
    after the role is checked (a role without the right is refused alike for any id)."""
    if user.role is Role.MERCHANT:
        raise forbidden()
    check_csrf(user, csrf_token)
    require_action(user, Action.RECON_RESOLVE)
    if callable(break_id):
        break_id = break_id()
    ctx = web(request)
    try:
        do(ctx.engine, user.username, ctx.now())
    except ResolutionRefused as exc:
        return _break_page(request, user, break_id, status=_REFUSED_STATUS.get(exc.reason, 409), refused=exc,
                           form=form)
    return RedirectResponse(f"/recon/breaks/{break_id}?done={done}", status_code=303)


Csrf = Annotated[str, Form()]
Note = Annotated[str, Form(max_length=2000)]


@router.post("/recon/breaks/{break_id}/propose")
def propose(request: Request, user: User, break_id: Id, action: Annotated[str, Form(max_length=32)] = "",
            note: Note = "", csrf_token: Csrf = "") -> Response:
    """提出处理方案（须填写说明）Propose a resolution (a note is required)."""
    return _resolve_act(request, user, break_id, csrf_token, "proposed",
                        lambda engine, actor, now: resolve.propose(engine, break_id, action or None, note, actor, now),
                        {"action": action, "note": note})


def _break_of(request: Request, resolution_id: int) -> int:
    found = resolve.get(web(request).engine, resolution_id)
    if found is None:
        raise not_found()
    return found.break_id


@router.post("/recon/resolutions/{resolution_id}/approve")
def approve(request: Request, user: User, resolution_id: Id, note: Note = "", csrf_token: Csrf = "") -> Response:
    """批准（提出人不能批准自己的方案）：按方案记账，差错变为已处理 Approve (not the proposer): the money moves as
    proposed and the break is resolved."""
    zone = container_of(request).tz
    return _resolve_act(request, user, lambda: _break_of(request, resolution_id), csrf_token, "approved",
                        lambda engine, actor, now: resolve.approve(engine, resolution_id, actor, now, tz=zone,
                                                                   note=note), {"decision_note": note})


@router.post("/recon/resolutions/{resolution_id}/reject")
def reject(request: Request, user: User, resolution_id: Id, note: Note = "", csrf_token: Csrf = "") -> Response:
    """驳回处理方案 Reject a proposal (nothing moves)."""
    return _resolve_act(request, user, lambda: _break_of(request, resolution_id), csrf_token, "rejected",
                        lambda engine, actor, now: resolve.reject(engine, resolution_id, actor, now, note),
                        {"decision_note": note})

