"""``/api/v1/payouts``: list and filter, show (timeline, diagnosis, guidance), release, cancel.

The list and the detail are ``settleguard payouts list --json`` and ``payouts show --json``
(payouts.repository.listing, payouts.details.detail); release and cancel call payouts.release, so
the ledger entries, status events, audit events and merchant notices are the same as from the CLI.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, StringConstraints

from settleguard import labels
from settleguard.access.model import Action, Principal
from settleguard.diagnosis import Category
from settleguard.payouts import repository as repo
from settleguard.payouts.details import detail
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.release import PayoutActionRefused, cancel, release
from settleguard.web.api_labels import label_field
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.pagination import Page, PageParams, empty, page, page_params

router = APIRouter(prefix=f"{API}/payouts", tags=["payouts 出款"])
PayoutId = Annotated[int, Path(ge=1, le=2**62, description="出款 ID payout id")]


class PayoutItem(BaseModel):
    id: int
    merchant_id: int
    merchant_no: str
    registered_name: str
    cycle_date: date
    value_date: date
    amount_fen: int
    status: str
    category: str | None
    parent_id: int | None
    idempotency_key: str
    attempt_count: int
    last_code: str | None
    last_message: str | None
    next_attempt_at: datetime | None
    updated_at: datetime
    end_to_end_id: str | None
    status_label = label_field("status", labels.PAYOUT_STATUS)
    category_label = label_field("category", labels.CATEGORY)


class PayoutDetail(BaseModel):
    payout: PayoutItem
    events: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    parts: list[dict[str, Any]]
    diagnosis: dict[str, Any] | None = Field(description="最近一次失败的诊断与处理指引 the latest failure's diagnosis "
                                                          "and guidance, in lang")
    diagnosis_en: dict[str, Any] | None


class ReleaseRequest(BaseModel):
    note: str = Field(default="", max_length=500)
    override: bool = Field(default=False, description="覆盖：付到刚失败且未更换的结算卡（须填写原因，记入审计） pay the "
                                                      "card that just failed, unchanged (needs a reason; audited)")
    reason: str = Field(default="", max_length=500, description="覆盖放行的原因 the override's written reason")


class CancelRequest(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ActionResult(BaseModel):
    id: int
    status: str
    status_label = label_field("status", labels.PAYOUT_STATUS)


def _missing(payout_id: int) -> ApiError:
    return not_found(f"出款 {payout_id} ", f"payout {payout_id}", "payout_not_found")


@router.get("", response_model=Page[PayoutItem], responses=responses(401, 403, 422))
def list_payouts(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    paging: Annotated[PageParams, Depends(page_params)],
    status: Annotated[PayoutStatus | None, Query(description="状态 status")] = None,
    merchant_id: Annotated[int | None, Query(ge=1, le=2**62, description="商户 ID merchant id")] = None,
    merchant_no: Annotated[str | None, Query(max_length=32, description="商户编号 merchant number")] = None,
    category: Annotated[Category | None, Query(description="失败分类 failure category")] = None,
) -> dict[str, Any]:
    """出款列表 Payouts by id with their latest diagnosis; a merchant user sees its own only."""
    visible, merchant_id = principal.list_scope(merchant_id)
    if not visible:
        return empty(paging)
    filters: dict[str, Any] = {"status": str(status) if status else None, "merchant_no": merchant_no,
                               "category": str(category) if category else None, "merchant_id": merchant_id}
    with web(request).engine.connect() as conn:
        total = repo.count_listing(conn, **filters)
        rows = repo.listing(conn, limit=paging.limit, offset=paging.offset, **filters) if paging.offset < total else []
    return page(rows, total, paging)


@router.get("/{payout_id}", response_model=PayoutDetail, responses=responses(401, 403, 404, 422))
def show_payout(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    payout_id: PayoutId,
    lang: Annotated[Literal["zh", "en"], Query(description="指引语言 guidance language")] = "zh",
) -> dict[str, Any]:
    """出款详情：状态变化、尝试、拆分、诊断与处理指引 Timeline, attempts, parts, diagnosis and guidance."""
    with web(request).engine.connect() as conn:
        check_owner(principal, Action.READ, repo.owner(conn, payout_id), _missing(payout_id))
        found = detail(conn, payout_id, lang)
    if found is None:
        raise _missing(payout_id)
    return found


def _act(request: Request, principal: Principal, action: Action, payout_id: int) -> None:
    with web(request).engine.connect() as conn:
        check_owner(principal, action, repo.owner(conn, payout_id), _missing(payout_id))


def _refused(exc: PayoutActionRefused) -> ApiError:
    return ApiError(409, "payout_action_refused", exc.zh, exc.en)


@router.post("/{payout_id}/release", response_model=ActionResult, responses=responses(401, 403, 404, 409, 422))
def release_payout(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.PAYOUT_RELEASE))],
    payout_id: PayoutId,
    body: ReleaseRequest | None = None,
) -> ActionResult:
    """放行（仅运营）：挂账出款按当前结算卡以新指令重新出款；待复核出款立即重试 Release (operator only): a held
    payout is paid to the current card with a new instruction; a payout under review is retried now. A payout
    held for a card problem whose card is unchanged since it failed is refused (409) unless ``override`` with a
    ``reason`` (audited)."""
    _act(request, principal, Action.PAYOUT_RELEASE, payout_id)
    ctx = web(request)
    try:
        new = release(ctx.engine, payout_id, principal.username, ctx.now(), body.note if body else "",
                      override=body.override if body else False, reason=body.reason if body else "")
    except PayoutActionRefused as exc:
        raise _refused(exc) from None
    return ActionResult(id=payout_id, status=str(new))


@router.post("/{payout_id}/cancel", response_model=ActionResult, responses=responses(401, 403, 404, 409, 422))
def cancel_payout(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.PAYOUT_CANCEL))],
    payout_id: PayoutId,
    body: CancelRequest,
) -> ActionResult:
    """撤销（仅运营，必须填写原因）：资金转入挂账 Cancel (operator only, with a reason): the money is held.
    Refused (409) while the outcome is unknown."""
    _act(request, principal, Action.PAYOUT_CANCEL, payout_id)
    ctx = web(request)
    try:
        cancel(ctx.engine, payout_id, body.reason, principal.username, ctx.now())
    except PayoutActionRefused as exc:
        raise _refused(exc) from None
    return ActionResult(id=payout_id, status=str(PayoutStatus.CANCELLED))
