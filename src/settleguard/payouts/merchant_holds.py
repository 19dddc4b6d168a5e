"""A frozen merchant's payouts are held, not sent; unfreezing the merchant releases them (issue 19, item 5).

The send path (payouts.service) gives every due payout (created, retry scheduled, released) of a frozen
merchant to :func:`hold_frozen` instead of the bank: it moves through the transition table's only way
(submitted → failed → held, as a hold without a card does) with the category ``risk_or_compliance_block``
and the code :data:`FROZEN_CODE`, and its money is held (merchant_held) — no attempt, nothing sent.

:func:`release_unfrozen` (called by merchants.lifecycle when the merchant is unfrozen, in the same
transaction as the status change and its audit event) releases exactly those holds through
payouts.release (new instruction to the current card, the release's ledger entry and notice); the worker
then pays them like any released payout. A hold for ``risk_or_compliance_block`` from a bank's answer is
not touched: a person releases it (``payouts release``). A merchant an operator put on risk hold (risk.service,
``risk hold``) is held the same way under the code :data:`RISK_HOLD_CODE`; only ``risk release`` by an operator
releases those (:func:`release_risk_held`), never an unfreeze. A closed merchant is paid what is left; the holds
of a merchant closed while frozen stay held until an operator releases them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection

from settleguard.ledger import model as ledger
from settleguard.ledger import repository as ledger_repo
from settleguard.merchants import repository as merchant_repo
from settleguard.merchants.model import MerchantStatus
from settleguard.payouts import repository as repo
from settleguard.payouts.model import PayoutStatus

S = PayoutStatus
RISK = "risk_or_compliance_block"
FROZEN_CODE = "MERCHANT_FROZEN"  # payouts.last_code of a hold made because the merchant is frozen
FROZEN_REASON = "未发送：商户已冻结，出款挂账待解冻 not sent: the merchant is frozen; held until it is unfrozen"
RISK_HOLD_CODE = "RISK_HOLD"  # payouts.last_code of a hold made because an operator put the merchant on risk hold
RISK_HOLD_REASON = "未发送：商户被风控暂停出款，待运营人员解除 not sent: the merchant is on risk hold until an operator releases it"
UNFROZEN_REASON = "商户已解冻，重新出款 the merchant was unfrozen: paid to the current card with a new instruction"


class _Summary(Protocol):
    held: int
    held_fen: int


def hold_frozen(conn: Connection, rows: Sequence[repo.DuePayout], now: datetime,
                summary: _Summary | None = None) -> list[repo.DuePayout]:
    """Hold the payouts of frozen merchants among ``rows`` (in ``conn``'s transaction); the others, to send."""
    frozen = merchant_repo.with_status(conn, [p.merchant_id for p in rows], MerchantStatus.FROZEN) if rows else set()
    # an operator's risk hold (risk.service, table risk_holds): held the same way, under its own code
    risk_held = repo.risk_held_merchants(conn, [p.merchant_id for p in rows]) - frozen if rows else set()
    held = [p for p in rows if p.merchant_id in frozen or p.merchant_id in risk_held]
    if not held:
        return list(rows)
    for code, why, group in ((FROZEN_CODE, FROZEN_REASON, [p for p in held if p.merchant_id in frozen]),
                             (RISK_HOLD_CODE, RISK_HOLD_REASON, [p for p in held if p.merchant_id in risk_held])):
        values: dict[str, object] = {"category": RISK, "last_code": code, "last_message": why, "next_attempt_at": None}
        for target in (S.SUBMITTED, S.FAILED, S.HELD):  # the transition table's only way; no attempt, nothing sent
            repo.change_status(conn, [repo.StatusChange(p.id, target, why, values if target is S.HELD else None)
                                      for p in group], now)
    ledger_repo.post(conn, [ledger.submit(p.merchant_id, p.id, p.amount_fen)
                            for p in held if p.status is S.CREATED and p.parent_id is None]
                     + [ledger.hold(p.merchant_id, p.id, p.amount_fen) for p in held], now)
    if summary is not None:
        summary.held += len(held)
        summary.held_fen += sum(p.amount_fen for p in held)
    return [p for p in rows if p.merchant_id not in frozen and p.merchant_id not in risk_held]


def held_for_freeze(conn: Connection, merchant_id: int) -> list[repo.DuePayout]:
    """The merchant's payouts held because it was frozen (not those a bank's risk answer held)."""
    rows = repo.held_for(conn, [merchant_id], [RISK])
    return [p for p in rows if (repo.one(conn, p.id) or {}).get("last_code") == FROZEN_CODE]


def release_unfrozen(conn: Connection, merchant_id: int, now: datetime) -> list[repo.DuePayout]:
    """Release the merchant's freeze holds (payouts.release), in ``conn``'s transaction; the released payouts."""
    from settleguard.payouts.release import _release  # here: release -> details -> service -> this module

    rows = held_for_freeze(conn, merchant_id)
    if rows:
        _release(conn, rows, UNFROZEN_REASON, now)
    return rows


def release_risk_held(conn: Connection, merchant_id: int, reason: str, now: datetime) -> list[repo.DuePayout]:
    """Release the payouts the merchant's risk hold held (risk.service, when an operator ends the hold), in
    ``conn``'s transaction: payouts.release (new instruction, the release's ledger entry and notice)."""
    from settleguard.payouts.release import _release  # here: release -> details -> service -> this module

    rows = [p for p in repo.held_for(conn, [merchant_id], [RISK])
            if (repo.one(conn, p.id) or {}).get("last_code") == RISK_HOLD_CODE]
    if rows:
        _release(conn, rows, reason[:256], now)
    return rows
