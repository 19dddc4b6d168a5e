"""``GET /api/v1/merchants/{id}``: the merchant, its settlement cards (masked only) and its payouts
by status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from settleguard.cards import repository as card_repo
from settleguard.merchants import repository as merchant_repo
from settleguard.payouts import repository as payout_repo
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import not_found, responses
from settleguard.web.model import Action, Principal

router = APIRouter(prefix=f"{API}/merchants", tags=["merchants 商户"])


@router.get("/{merchant_id}", responses=responses(401, 403, 404, 422))
def show_merchant(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    merchant_id: Annotated[int, Path(ge=1, le=2**62, description="商户 ID merchant id")],
) -> dict[str, Any]:
    """商户、结算卡（仅掩码）与各状态出款 The merchant, its cards (masked) and payouts by status; a merchant user
    sees its own merchant only."""
    missing = not_found(f"商户 {merchant_id} ", f"merchant {merchant_id}", "merchant_not_found")
    with web(request).engine.connect() as conn:
        m = merchant_repo.by_id(conn, merchant_id)
        check_owner(principal, Action.READ, None if m is None else merchant_id, missing)
        accounts = card_repo.accounts_of(conn, merchant_id)
        counts = payout_repo.counts_by_status(conn, merchant_id)
    cards = [{"id": a.id, "masked": a.pan_masked, "status": a.status, "card_status": a.card_status,
              "bank_code": a.bank_code, "bank_name": a.bank_name, "card_type": a.card_type,
              "holder_name": a.holder_name, "account_kind": a.account_kind, "bound_at": a.bound_at,
              "replaced_at": a.replaced_at, "verified_at": a.verified_at,
              "last_status_check_at": a.last_status_check_at} for a in accounts]
    return {"merchant": m, "cards": cards,
            "payouts": {s: {"count": n, "amount_fen": fen} for s, (n, fen) in sorted(counts.items())},
            "held_fen": counts.get("held", (0, 0))[1]}
