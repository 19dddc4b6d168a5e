"""``/api/v1/recon``: reconciliation (对账) for people — a day's summary, the break queue with filters, one break
with both sides (the bank's lines and our payouts with their attempts), and the runs. Read-only; staff only
(action ``recon_read``: operators, support and auditors; a merchant user gets 403). The queries are
reconciliation/report_repository.py; codes stay codes here, each break also carries its zh/en labels."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from settleguard.access.model import Action, Principal
from settleguard.labels import RECON_BREAK_STATUS, RECON_BREAK_TYPE, pair
from settleguard.reconciliation import report_repository as repo
from settleguard.web.auth import require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.pagination import Page, PageParams, page, page_params

router = APIRouter(prefix=f"{API}/recon", tags=["recon 对账"])
BreakId = Annotated[int, Path(ge=1, le=2**62, description="差错 ID break id")]
Reader = Annotated[Principal, Depends(require(Action.RECON_READ))]
# every break type (bank lines: matching.BreakType; the card network's clearing file: clearing_matching.py)
TYPE_PATTERN = "^(" + "|".join(RECON_BREAK_TYPE) + ")$"


class Amount(BaseModel):
    count: int
    amount_fen: int


class TypeStatus(BaseModel):
    type: str
    status: str
    count: int
    amount_fen: int
    type_zh: str
    type_en: str
    status_zh: str
    status_en: str


class StatementDrift(BaseModel):
    id: int
    statement_id: str
    account: str
    source: str
    opening_fen: int | None
    closing_fen: int | None
    booked_net_fen: int
    drift_fen: int | None = Field(description="期初 + 已记账 − 期末（0 为平）opening + booked − closing (0: proves)")
    line_count: int
    imported_at: datetime


class RunItem(BaseModel):
    id: int
    run_date: date
    window_days: int
    started_at: datetime
    finished_at: datetime | None
    lines_considered: int
    matched: int
    breaks_open: int
    breaks_cleared: int
    drift_fen: int | None


class Summary(BaseModel):
    date: dt.date | None = Field(description="对账日期（默认：最近一份有数据的对账单日期）the day (default: the latest "
                                          "statement date with data); null when nothing was imported")
    booked: Amount = Field(description="当日已记账流水 booked bank lines of the day")
    matched: Amount = Field(description="当日已匹配流水 bank lines of the day matched to a payout")
    breaks: list[TypeStatus] = Field(description="当日差错，按类型与状态 the day's breaks by type and status")
    open_breaks: list[TypeStatus] = Field(description="全部未解决差错，按类型 every open break by type")
    statements: list[StatementDrift] = Field(description="当日对账单及余额差异 the day's statements and their drift")
    drift_fen: int = Field(description="当日对账单余额差异合计 the day's total drift")
    run: RunItem | None = Field(description="覆盖当日的最近一次对账运行 the latest run that covered the day (run "
                                            "date on or after it)")


class BreakItem(BaseModel):
    id: int
    type: str
    status: str
    amount_fen: int | None
    end_to_end_id: str | None
    bank_ref: str | None
    booking_date: date | None
    day: date | None = Field(description="差错日期：记账日，无银行流水时为发现它的对账日 the break's date: the booking "
                                         "date, else the date of the run that found it")
    payout_id: int | None
    bank_line_id: int | None
    merchant_id: int | None
    merchant_no: str | None
    registered_name: str | None
    opened_at: datetime
    cleared_at: datetime | None
    type_zh: str
    type_en: str
    status_zh: str
    status_en: str


class BreakOut(BreakItem):
    detail: dict[str, Any]
    run_id: int
    last_run_id: int


class BankLineOut(BaseModel):
    id: int
    source: str
    account: str
    statement_id: str
    entry_ref: str
    acct_svcr_ref: str | None
    end_to_end_id: str | None
    pmt_inf_id: str | None
    batch_count: int | None
    batch_total_fen: int | None
    amount_fen: int
    currency: str
    direction: str
    reversal: bool
    status: str
    booking_date: date | None
    value_date: date | None
    raw: str = Field(description="原始元素或行（卡号已屏蔽）the original element or line (card numbers masked)")
    matched_rule: str | None = Field(description="已匹配时的规则 the rule that matched it, if any")


class AttemptOut(BaseModel):
    id: int
    attempt_no: int
    kind: str
    idempotency_key: str
    channel: str
    amount_fen: int
    requested_at: datetime
    responded_at: datetime | None
    outcome: str | None
    code: str | None
    message: str | None
    batch_ref: str | None


class PayoutSide(BaseModel):
    id: int
    merchant_id: int
    merchant_no: str | None
    registered_name: str | None
    amount_fen: int
    status: str
    cycle_date: date
    value_date: date
    idempotency_key: str
    instruction_no: int
    pan_masked: str | None
    bank_name: str | None
    attempts: list[AttemptOut]


class BreakDetail(BaseModel):
    break_: BreakOut = Field(alias="break", serialization_alias="break")
    bank_lines: list[BankLineOut] = Field(description="银行一侧 the bank side")
    statement: dict[str, Any] | None = Field(description="余额不平时的对账单 the statement of a balance drift")
    payouts: list[PayoutSide] = Field(description="我方一侧：出款与其尝试 our side: payouts and their attempts")

    model_config = {"populate_by_name": True}


def _labelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        tz, te = pair(RECON_BREAK_TYPE, r["type"])
        sz, se = pair(RECON_BREAK_STATUS, r["status"])
        out.append({**r, "type_zh": tz, "type_en": te, "status_zh": sz, "status_en": se})
    return out


def _bad_range(date_from: date | None, date_to: date | None) -> None:
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ApiError(422, "validation_failed", f"起始日期 {date_from} 晚于结束日期 {date_to}（date_from / date_to）",
                       f"date_from {date_from} is after date_to {date_to}",
                       details=[{"loc": ["query", "date_from"], "msg": "after date_to", "type": "value_error"}])


@router.get("/summary", response_model=Summary, responses=responses(401, 403, 422))
def recon_summary(
    request: Request,
    principal: Reader,
    day: Annotated[date | None, Query(alias="date", description="对账日期 YYYY-MM-DD（默认最近一份对账单的日期）the day "
                                                                "(default: the latest statement date with data)")] = None,
) -> dict[str, Any]:
    """对账概况：已匹配、按类型的差错、余额差异 A day's reconciliation: matched, breaks by type, balance drift."""
    with web(request).engine.connect() as conn:
        on = day or repo.latest_day(conn)
        if on is None:
            return {"date": None, "booked": {"count": 0, "amount_fen": 0}, "matched": {"count": 0, "amount_fen": 0},
                    "breaks": [], "open_breaks": [], "statements": [],
                    "drift_fen": 0, "run": None}
        got = repo.summary(conn, on)
    got["breaks"] = _labelled(got["breaks"])
    got["open_breaks"] = _labelled(got["open_breaks"])
    return got


@router.get("/breaks", response_model=Page[BreakItem], responses=responses(401, 403, 422))
def list_breaks(
    request: Request,
    principal: Reader,
    paging: Annotated[PageParams, Depends(page_params)],
    type_: Annotated[str | None, Query(alias="type", pattern=TYPE_PATTERN,
                                       description="差错类型 break type (bank_only, ledger_only, …)")] = None,
    status: Annotated[Literal["open", "cleared", "resolved"] | None, Query(
        description="状态 status: open | cleared | resolved")] = None,
    date_from: Annotated[date | None, Query(description="差错日期起 from (break date, inclusive)")] = None,
    date_to: Annotated[date | None, Query(description="差错日期止 to (inclusive)")] = None,
) -> dict[str, Any]:
    """差错队列（新的在前）The break queue, newest first, filtered by type, status and date range."""
    _bad_range(date_from, date_to)
    filters: dict[str, Any] = {"type_": type_, "status": status, "date_from": date_from,
                               "date_to": date_to}
    with web(request).engine.connect() as conn:
        total = repo.count_breaks(conn, **filters)
        rows = repo.list_breaks(conn, limit=paging.limit, offset=paging.offset, **filters) \
            if paging.offset < total else []
    return page(rows, total, paging)


@router.get("/breaks/{break_id}", response_model=BreakDetail, response_model_by_alias=True,
            responses=responses(401, 403, 404, 422))
def show_break(request: Request, principal: Reader, break_id: BreakId) -> dict[str, Any]:
    """差错详情：银行一侧（流水）与我方一侧（出款与尝试）A break with the bank side (its lines) and our side
    (the payouts and their attempts)."""
    with web(request).engine.connect() as conn:
        got = repo.break_detail(conn, break_id)
    if got is None:
        raise not_found(f"差错 {break_id} ", f"break {break_id}", "break_not_found")
    return got


@router.get("/runs", response_model=Page[RunItem], responses=responses(401, 403, 422))
def list_runs(request: Request, principal: Reader,
              paging: Annotated[PageParams, Depends(page_params)]) -> dict[str, Any]:
    """对账运行记录（新的在前）Reconciliation runs, newest first."""
    with web(request).engine.connect() as conn:
        total = repo.count_runs(conn)
        rows = repo.runs(conn, limit=paging.limit, offset=paging.offset) if paging.offset < total else []
    return page(rows, total, paging)
