"""``GET /api/v1/notifications``: the notice delivery log (notify.repository.delivery_log, as
``settleguard notify log``): every try of every delivery, newest first; a merchant user sees its own
merchant's only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from settleguard.access.model import Action, Principal
from settleguard.notify import repository as repo
from settleguard.web.auth import require
from settleguard.web.context import API, web
from settleguard.web.errors import responses
from settleguard.web.pagination import Page, PageParams, empty, page, page_params

router = APIRouter(prefix=f"{API}/notifications", tags=["notifications 通知"])


class DeliveryTry(BaseModel):
    attempt_id: int
    delivery_id: int
    notification_id: int
    merchant_id: int
    merchant_no: str
    kind: str = Field(description="通知类型 notice kind")
    channel: str = Field(description="渠道 webhook | email | sms")
    target: str = Field(description="发送目标 where it was sent")
    attempt_no: int
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None = Field(description="成功、失败或进行中 (null) ok, failed or in progress (null)")
    http_status: int | None
    detail: str | None
    delivery_status: str
    next_attempt_at: datetime | None


@router.get("", response_model=Page[DeliveryTry], responses=responses(401, 403, 422))
def delivery_log(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    paging: Annotated[PageParams, Depends(page_params)],
    merchant_id: Annotated[int | None, Query(ge=1, le=2**62, description="商户 ID merchant id")] = None,
) -> dict[str, Any]:
    """通知发送记录，新的在前 The delivery log, newest first: time, channel, target, result, HTTP status."""
    visible, merchant_id = principal.list_scope(merchant_id)
    if not visible:
        return empty(paging)
    with web(request).engine.connect() as conn:
        total = repo.count_delivery_log(conn, merchant_id)
        rows = repo.delivery_log(conn, merchant_id, paging.limit, paging.offset) if paging.offset < total else []
    return page(rows, total, paging)
