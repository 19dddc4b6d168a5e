"""``/api/v1/settlements``: the settled cycles (one row per merchant and cycle date, settlement.engine)
with their totals in fen, filtered and paginated, and one settlement with the payouts it created."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from settleguard.access.model import Action, Principal
from settleguard.settlement import repository as repo
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.pagination import Page, PageParams, empty, page, page_params

router = APIRouter(prefix=f"{API}/settlements", tags=["settlements 结算"])


class SettlementItem(BaseModel):
    id: int
    run_id: int
    merchant_id: int
    merchant_no: str
    registered_name: str
    cycle_date: date
    cycle: str
    value_date: date
    txn_count: int
    sale_fen: int
    void_fen: int
    refund_fen: int
    reversal_fen: int
    fee_fen: int
    net_fen: int
    created_at: datetime


class SettlementPayout(BaseModel):
    id: int
    parent_id: int | None
    value_date: date
    amount_fen: int
    status: str
    category: str | None
    updated_at: datetime


class SettlementDetail(BaseModel):
    settlement: SettlementItem
    payouts: list[SettlementPayout]


def _missing(settlement_id: int) -> ApiError:
    return not_found(f"结算单 {settlement_id} ", f"settlement {settlement_id}", "settlement_not_found")


@router.get("", response_model=Page[SettlementItem], responses=responses(401, 403, 422))
def list_settlements(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    paging: Annotated[PageParams, Depends(page_params)],
    merchant_id: Annotated[int | None, Query(ge=1, le=2**62, description="商户 ID merchant id")] = None,
    cycle_from: Annotated[date | None, Query(description="结算日起（含）cycle date from, inclusive")] = None,
    cycle_to: Annotated[date | None, Query(description="结算日止（含）cycle date to, inclusive")] = None,
) -> dict[str, Any]:
    """结算列表 Settlements by id: sales, voids, refunds, reversals, fees and net in fen; a merchant user sees
    its own only."""
    visible, merchant_id = principal.list_scope(merchant_id)
    if not visible:
        return empty(paging)
    filters: dict[str, Any] = {"merchant_id": merchant_id, "cycle_from": cycle_from, "cycle_to": cycle_to}
    with web(request).engine.connect() as conn:
        total = repo.count_listing(conn, **filters)
        rows = repo.listing(conn, limit=paging.limit, offset=paging.offset, **filters) if paging.offset < total else []
    return page(rows, total, paging)


@router.get("/{settlement_id}", response_model=SettlementDetail, responses=responses(401, 403, 404, 422))
def show_settlement(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    settlement_id: Annotated[int, Path(ge=1, le=2**62, description="结算单 ID settlement id")],
) -> dict[str, Any]:
    """结算单及其出款 A settlement with the payouts it created."""
    with web(request).engine.connect() as conn:
        check_owner(principal, Action.READ, repo.owner(conn, settlement_id), _missing(settlement_id))
        found = repo.by_id(conn, settlement_id)
        payouts = repo.payouts_of(conn, settlement_id)
    if found is None:
        raise _missing(settlement_id)
    return {"settlement": found, "payouts": payouts}
