"""``GET /api/v1/cases/{id}/evidence``: a case's evidence bundle (证据包, docs/cases.md) as a zip — the
bytes ``settleguard evidence export`` writes (evidence.builder), with ``manifest.json`` of SHA-256 hashes
that ``settleguard evidence verify`` checks. Staff only, like the case itself. A payout's own bundle, which
merchants may download too: web/api_payout_evidence.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from settleguard.access.model import Action, Principal
from settleguard.cases import repository as case_repo
from settleguard.evidence.builder import NoSuchCase, build, zip_bytes
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.services import services

router = APIRouter(prefix=f"{API}/cases", tags=["evidence 证据包"])


def _missing(case_id: int) -> ApiError:
    return not_found(f"工单 {case_id} ", f"case {case_id}", "case_not_found")


@router.get("/{case_id}/evidence", response_class=Response,
            responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "证据包 zip the evidence bundle"}, **responses(401, 403, 404, 422)})
def case_evidence(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_READ))],
                  case_id: Annotated[int, Path(ge=1, le=2**62, description="工单 ID case id")]) -> Response:
    """下载工单证据包 Download the case's evidence bundle (zip: summary.html, case.json, bank answers, attempts,
    payouts, settlements, transactions, ledger, masked card history, contacts, notes, manifest.json)."""
    ctx = web(request)
    with ctx.engine.connect() as conn:
        check_owner(principal, Action.CASE_READ, case_repo.owner(conn, case_id), _missing(case_id))
    try:
        bundle = build(ctx.engine, case_id, ctx.now(), tz=services(request).timezone)
    except NoSuchCase:
        raise _missing(case_id) from None
    return Response(zip_bytes(bundle), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="case-{case_id}-evidence.zip"', "Cache-Control": "no-store"})
