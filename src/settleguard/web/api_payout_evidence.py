"""``GET /api/v1/payouts/{id}/evidence``: one payout's evidence bundle (出款凭证, docs/payouts.md) as a zip —
the bytes ``settleguard evidence payout`` writes (evidence.payout), with ``manifest.json`` of SHA-256 hashes
that ``settleguard evidence verify`` checks. Whoever may read the payout may download it: staff, and a
merchant user for its own merchant's payouts only (another merchant's payout is answered 404, exactly as
``GET /api/v1/payouts/{id}``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from settleguard.access.model import Action, Principal
from settleguard.evidence.pack import zip_bytes
from settleguard.evidence.payout import NoSuchPayout, build_payout
from settleguard.payouts import repository as payout_repo
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.services import services

router = APIRouter(prefix=f"{API}/payouts", tags=["evidence 证据包"])


def _missing(payout_id: int) -> ApiError:
    return not_found(f"出款 {payout_id} ", f"payout {payout_id}", "payout_not_found")


@router.get("/{payout_id}/evidence", response_class=Response,
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "出款凭证 zip the payout's evidence bundle"},
                       **responses(401, 403, 404, 422)})
def payout_evidence(request: Request, principal: Annotated[Principal, Depends(require(Action.READ))],
                    payout_id: Annotated[int, Path(ge=1, le=2**62, description="出款 ID payout id")]) -> Response:
    """下载出款凭证 Download the payout's evidence bundle (zip: summary.html, payout.json, status events,
    attempts with bank answers and diagnoses, parts, settlement, the cycle's transactions, ledger, masked
    cards, notices, manifest.json)."""
    ctx = web(request)
    with ctx.engine.connect() as conn:
        check_owner(principal, Action.READ, payout_repo.owner(conn, payout_id), _missing(payout_id))
    try:
        bundle = build_payout(ctx.engine, payout_id, ctx.now(), tz=services(request).timezone)
    except NoSuchPayout:
        raise _missing(payout_id) from None
    return Response(zip_bytes(bundle), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="payout-{payout_id}-evidence.zip"',
        "Cache-Control": "no-store"})
