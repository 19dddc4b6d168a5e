"""Merchant status changes: freeze, unfreeze, close — checked, with a reason, audited in the same transaction.

The allowed moves are ``merchants.model.STATUS_TRANSITIONS`` (closed is final). What a status means for
payouts (a frozen merchant's payouts held, a closed merchant paid out and refusing new transactions) is
built on these statuses elsewhere (issue 19, items 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from settleguard.audit import service as audit
from settleguard.db import tables as t
from settleguard.merchants import repository as repo
from settleguard.merchants.model import STATUS_NAMES, STATUS_TRANSITIONS, MerchantStatus, StatusAction


class StatusRefused(ValueError):
    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class StatusChange:
    merchant_id: int
    merchant_no: str
    from_status: str
    to_status: str
    reason: str


def change_status(engine: Engine, merchant_no: str, action: StatusAction, reason: str, *, actor: str,
                  now: datetime) -> StatusChange:
    """Apply ``action`` to the merchant; :class:`StatusRefused` when it is unknown, the reason is empty,
    or its status does not allow the action."""
    reason = reason.strip()
    if not reason:
        raise StatusRefused("须填写原因（--reason）", "a reason is required (--reason)")
    allowed, target = STATUS_TRANSITIONS[action]
    with engine.begin() as conn:
        m = t.merchants
        row = conn.execute(select(m.c.id, m.c.status).where(m.c.merchant_no == merchant_no)).first()
        if row is None:
            raise StatusRefused(f"商户 {merchant_no} 不存在", f"no merchant {merchant_no}")
        current = MerchantStatus(row.status)
        if current not in allowed or not repo.change_status(conn, row.id, [str(s) for s in allowed], str(target),
                                                            reason, now):
            zh, en = STATUS_NAMES[current]
            raise StatusRefused(f"商户 {merchant_no} 当前状态为“{zh}”，不能{_ACTION_ZH[action]}",
                                f"merchant {merchant_no} is {en}; it cannot be {_ACTION_EN[action]}")
        audit.record(conn, actor, f"merchant.{action}", ("merchant", row.id),
                     {"merchant_no": merchant_no, "from": str(current), "to": str(target), "reason": reason[:256]},
                     now)
    return StatusChange(row.id, merchant_no, str(current), str(target), reason)


_ACTION_ZH = {StatusAction.FREEZE: "冻结", StatusAction.UNFREEZE: "解冻", StatusAction.CLOSE: "注销"}
_ACTION_EN = {StatusAction.FREEZE: "frozen", StatusAction.UNFREEZE: "unfrozen", StatusAction.CLOSE: "closed"}
