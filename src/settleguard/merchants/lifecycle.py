"""Merchant status changes: freeze, unfreeze, close — checked, with a reason, audited in the same transaction.

The allowed moves are ``merchants.model.STATUS_TRANSITIONS`` (closed is final). What a status means:

- frozen: the send path holds the merchant's due payouts (``risk_or_compliance_block``, payouts.merchant_holds)
  instead of sending them; unfreezing releases exactly those holds, in the same transaction as the status
  change and its audit event (the count and amount released are in the event);
- closed: what was imported before the close is settled and paid as usual; the transaction import refuses,
  line by line, the merchant's transactions that happened at or after the close (imports.transactions).

The CLI (``merchants freeze|unfreeze|close``), the API (``PATCH /api/v1/merchants/{id}``) and the console call
:func:`change_status` (by number) or :func:`change_status_of` (by id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, select

from settleguard.audit import service as audit
from settleguard.db import tables as t
from settleguard.merchants import repository as repo
from settleguard.merchants.model import (
    STATUS_NAMES,
    STATUS_TRANSITIONS,
    MerchantStatus,
    Refused,
    StatusAction,
)


class HeldPayout(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def amount_fen(self) -> int: ...


# What unfreezing does to the payouts the freeze held: payouts.merchant_holds.release_unfrozen, handed in by
# the entry point (payouts sit above merchants: a merchant's status gates its payouts, not the other way).
ReleaseHeld = Callable[[Connection, int, datetime], Sequence[HeldPayout]]


class StatusRefused(Refused):
    """A freeze, unfreeze or close refused."""


@dataclass(frozen=True)
class StatusChange:
    merchant_id: int
    merchant_no: str
    from_status: str
    to_status: str
    reason: str
    released: int = 0  # payouts the unfreeze released (payouts.merchant_holds)
    released_fen: int = 0


def change_status_of(engine: Engine, merchant_id: int, action: StatusAction, reason: str, *, actor: str,
                     now: datetime, release_held: ReleaseHeld) -> StatusChange:
    """:func:`change_status` of the merchant with this id."""
    with engine.connect() as conn:
        no = repo.no_of(conn, merchant_id)
    if no is None:
        raise StatusRefused(f"商户 {merchant_id} 不存在", f"no merchant {merchant_id}")
    return change_status(engine, no, action, reason, actor=actor, now=now, release_held=release_held)


def change_status(engine: Engine, merchant_no: str, action: StatusAction, reason: str, *, actor: str,
                  now: datetime, release_held: ReleaseHeld) -> StatusChange:
    """Apply ``action`` to the merchant; :class:`StatusRefused` when it is unknown, the reason is empty,
    or its status does not allow the action. Unfreezing releases the payouts the freeze held (``release_held``,
    in the same transaction)."""
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
        payload: dict[str, object] = {"merchant_no": merchant_no, "from": str(current), "to": str(target),
                                      "reason": reason[:256]}
        released = release_held(conn, row.id, now) if action is StatusAction.UNFREEZE else []
        if action is StatusAction.UNFREEZE:
            payload |= {"released_payouts": [p.id for p in released][:100],
                        "released_fen": sum(p.amount_fen for p in released)}
        audit.record(conn, actor, f"merchant.{action}", ("merchant", row.id), payload, now)
    return StatusChange(row.id, merchant_no, str(current), str(target), reason, len(released),
                        sum(p.amount_fen for p in released))


_ACTION_ZH = {StatusAction.FREEZE: "冻结", StatusAction.UNFREEZE: "解冻", StatusAction.CLOSE: "注销"}
_ACTION_EN = {StatusAction.FREEZE: "frozen", StatusAction.UNFREEZE: "unfrozen", StatusAction.CLOSE: "closed"}
