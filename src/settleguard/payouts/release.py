"""Releasing held payouts and cancelling payouts.

A held payout (挂账) is released when what held it is fixed:

- the merchant binds a new card (``card_rebound`` / ``card_bound`` card events) or the bank
  says the card is back to normal (``status_changed`` to ``normal``): every payout of the
  merchant held for a card reason (card_info_error, card_status_abnormal) is released;
- the merchant's active card is no longer the one the payout was held on (the card was
  re-bound while the payout was in flight, and the event was read before the hold): released
  on the next cycle, so a hold never waits for an event that already went by;
- an operator releases it (any category, risk holds included: a person decided).

A released payout is paid to the merchant's *current* card with a new instruction under a new
key (payouts.model.instruction_key): never to the old card, never as a resend of the old
instruction. Release and its ledger entry (Dr merchant_held / Cr payout_in_transit) are one
transaction; the worker sends released payouts like any due payout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from settleguard.audit import service as audit
from settleguard.cards import repository as card_repo
from settleguard.cards.service import reactivate_for_override
from settleguard.config import DEFAULT_TIMEZONE
from settleguard.db import tables as t
from settleguard.db.horizon import committed_horizon
from settleguard.diagnosis import Diagnosis
from settleguard.ledger import model as ledger
from settleguard.ledger import repository as ledger_repo
from settleguard.notify.outbox import PayoutNotice, notify_payouts
from settleguard.payouts import repository as repo
from settleguard.payouts.details import current_reason
from settleguard.payouts.model import CANCELLABLE, IN_TRANSIT, PayoutStatus
from settleguard.payouts.policy import CARD_HOLDS

S = PayoutStatus
CARD_EVENTS_CURSOR = "card_events"
RELEASING_EVENTS = ("card_bound", "card_rebound", "status_changed")


class PayoutActionRefused(ValueError):
    """An operator's action that the payout's status does not allow; nothing changed."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


class SameCardRefused(PayoutActionRefused):
    """A release of a payout held for a card problem to the very card that failed (unchanged since): refused
    unless an operator overrides it with a written reason; bulk release skips it."""


def _release(conn: Connection, rows: Sequence[repo.DuePayout], reason: str, now: datetime,
             failed: Diagnosis | None = None, *, tz: str = DEFAULT_TIMEZONE) -> None:
    """``failed``: the diagnosis of the card failure a release to the same card (an override) pays into again;
    the notice then tells the merchant what to do instead of "nothing to do". ``tz``: the business time zone
    of the notice (the worker passes the configured one)."""
    repo.change_status(conn, [
        repo.StatusChange(p.id, S.RELEASED, reason, {"instruction_no": p.instruction_no + 1, "attempt_count": 0,
                                                     "next_attempt_at": None})
        for p in rows], now)
    ledger_repo.post(conn, [ledger.release(p.merchant_id, p.id, p.amount_fen) for p in rows], now)
    # the merchants' notices (notify.outbox), in the same transaction as the release
    notify_payouts(conn, [PayoutNotice(p, "released", failed, p.amount_fen) for p in rows], now, tz=tz)


def _restores(kind: str, payload: object) -> bool:
    if kind in ("card_bound", "card_rebound"):
        return True
    if isinstance(payload, dict):
        new = payload.get("to") or payload.get("new_status") or payload.get("card_status") or payload.get("status")
        return new == "normal"
    return False


@dataclass
class ReleaseSummary:
    events: int = 0
    released: int = 0
    released_fen: int = 0


def release_for_card_events(engine: Engine, now: datetime, batch: int = 500, *,
                            tz: str = DEFAULT_TIMEZONE) -> ReleaseSummary:
    """Release the card-held payouts of merchants whose card was re-bound or restored, and those
    held on a card that is no longer the merchant's active one.

    Reads card_events after the worker's cursor, up to the committed horizon (db.horizon: an event
    committed late on PostgreSQL is not skipped); the cursor moves in the same transaction as the
    releases, so each event is acted on once even if the worker dies.
    """
    out = ReleaseSummary()
    with engine.begin() as conn:
        rows = repo.held_off_current_card(conn, sorted(CARD_HOLDS))
        if rows:
            _release(conn, rows, "已换新卡，重新出款 the merchant has a new card: paid to it with a new "
                                 "instruction", now, tz=tz)
    out.released += len(rows)
    out.released_fen += sum(p.amount_fen for p in rows)
    e = t.card_events
    upto = committed_horizon(engine, "card_events")  # no later commit can appear below it (db.horizon)
    if upto is None:  # card writers busy for now: read the events next cycle
        return out
    while True:
        with engine.begin() as conn:
            after = repo.cursor(conn, CARD_EVENTS_CURSOR)
            events = conn.execute(select(e.c.id, e.c.merchant_id, e.c.kind, e.c.payload)
                                  .where(e.c.id > after, e.c.id <= upto).order_by(e.c.id).limit(batch)).all()
            if not events:
                return out
            merchants = sorted({ev.merchant_id for ev in events
                                if ev.kind in RELEASING_EVENTS and _restores(ev.kind, ev.payload)})
            rows = repo.held_for(conn, merchants, sorted(CARD_HOLDS)) if merchants else []
            if rows:
                _release(conn, rows, "结算卡已更新，重新出款 card re-bound or restored: paid to the current card "
                                     "with a new instruction", now, tz=tz)
            repo.set_cursor(conn, CARD_EVENTS_CURSOR, int(events[-1].id), now)
            out.events += len(events)
            out.released += len(rows)
            out.released_fen += sum(p.amount_fen for p in rows)


def same_card(conn: Connection, p: repo.DuePayout) -> int | None:
    """The card ``p`` (held) would be paid to again if released, when that is the very card it was held for,
    unchanged since: held for a card reason on a card that is still the merchant's current one (active, not
    reported normal again since the hold; or marked unusable, with nothing bound after it). None otherwise."""
    row = repo.one(conn, p.id)
    failed_on = repo.held_on(conn, [p.id]).get(p.id)
    if row is None or row["category"] not in CARD_HOLDS or failed_on is None:
        return None
    if p.account_id is None:  # no active card: is the newest one the card that failed?
        newest = card_repo.unusable_cards(conn, [p.merchant_id]).get(p.merchant_id)
        return failed_on if newest is not None and newest.id == failed_on else None
    if p.account_id != failed_on:
        return None
    held = repo.last_event_to(conn, p.id, S.HELD)
    restored = held is not None and card_repo.restored_since(conn, failed_on, held["created_at"])
    return None if restored else failed_on


def release(engine: Engine, payout_id: int, actor: str, now: datetime, note: str = "", *, override: bool = False,
            reason: str = "", tz: str = DEFAULT_TIMEZONE) -> PayoutStatus:
    """An operator releases one payout: held -> released (new instruction to the current card),
    or needs_review -> retry_scheduled (due now, same instruction). Returns the new status.

    A payout held for a card problem is not released to the card that failed, unchanged since
    (:func:`same_card`: e.g. the merchant's re-binding failed verification): :class:`SameCardRefused`, unless
    ``override`` with a written ``reason``: the card is made usable again if it was marked unusable
    (cards.service.reactivate_for_override), the release is audited as ``operator.payout_release_override``,
    and the merchant's notice says what to do about the card instead of "nothing to do"."""
    reason = reason.strip()
    if override and not reason:
        raise PayoutActionRefused("覆盖放行必须填写原因", "an override release needs a written reason")
    with engine.begin() as conn:
        found = repo.by_ids(conn, [payout_id], lock=True)
        if not found:
            raise PayoutActionRefused(f"没有出款 {payout_id}", f"no payout {payout_id}")
        p = found[0]
        why = f"人工放行 released by {actor}" + (f": {note}" if note else "")
        if p.status is S.HELD:
            card = same_card(conn, p)
            failed = None
            if card is not None:
                failed = current_reason(conn, p.id, S.HELD, repo.history(conn, p.id)[1])
                if not override:
                    zh, en = (failed.meaning_zh, failed.meaning_en) if failed is not None else ("", "")
                    raise SameCardRefused(
                        f"该出款因结算卡问题挂账（{zh}），商户的结算卡自失败以来没有更换，也未恢复正常：放行会再次付到同一张卡。"
                        "请让商户换绑新卡；确需付到这张卡，请使用覆盖放行并填写原因",
                        f"this payout is held for a card problem ({en}) and the merchant's card has not changed, nor "
                        "been reported normal, since it failed: a release would pay the same card again. Have the "
                        "merchant bind a new card, or override with a written reason")
                if p.account_id is None:
                    reactivate_for_override(conn, card, payout_id=p.id, reason=reason, actor=actor, now=now)
                    p = repo.by_ids(conn, [payout_id], lock=True)[0]
                why = f"人工覆盖放行到原卡 override release to the same card by {actor}: {reason}"
            if p.account_id is None:
                raise PayoutActionRefused("商户没有可用的结算卡，请先绑定新卡", "the merchant has no usable card; bind one first")
            _release(conn, [p], why[:256], now, failed if card is not None else None, tz=tz)
            payload: dict[str, object] = {"from": str(p.status), "to": str(S.RELEASED), "note": note,
                                          "amount_fen": p.amount_fen}
            if card is not None:
                payload |= {"override": True, "reason": reason, "account_id": card,
                            "category": failed.category.value if failed is not None else None}
            audit.record(conn, actor, "operator.payout_release_override" if card is not None
                         else "operator.payout_release", ("payout", p.id), payload, now)
            return S.RELEASED
        if p.status is S.NEEDS_REVIEW:
            repo.change_status(conn, [repo.StatusChange(p.id, S.RETRY_SCHEDULED, why, {"next_attempt_at": now})], now,
                               actor=actor)
            audit.record(conn, actor, "operator.payout_release", ("payout", p.id),
                         {"from": str(p.status), "to": str(S.RETRY_SCHEDULED), "note": note,
                          "amount_fen": p.amount_fen}, now)
            return S.RETRY_SCHEDULED
        raise PayoutActionRefused(f"状态为 {p.status} 的出款不能放行（只有挂账或待复核的可以）",
                                  f"a payout in status {p.status} cannot be released (only held or needs_review)")


def cancel(engine: Engine, payout_id: int, reason: str, actor: str, now: datetime) -> None:
    """An operator cancels a payout with a reason; its money moves to merchant_held.

    Refused while the outcome is unknown (submitted, result_unknown, inquiry): the bank may
    have paid; inquire first.
    """
    if not reason.strip():
        raise PayoutActionRefused("撤销必须填写原因", "a cancellation needs a reason")
    with engine.begin() as conn:
        found = repo.by_ids(conn, [payout_id], lock=True)
        if not found:
            raise PayoutActionRefused(f"没有出款 {payout_id}", f"no payout {payout_id}")
        p = found[0]
        if p.status not in CANCELLABLE:
            raise PayoutActionRefused(
                f"状态为 {p.status} 的出款不能撤销" + ("（结果未明，请先查询）" if p.status in IN_TRANSIT else ""),
                f"a payout in status {p.status} cannot be cancelled"
                + (" (outcome unknown: inquire first)" if p.status in IN_TRANSIT else ""))
        repo.change_status(conn, [repo.StatusChange(p.id, S.CANCELLED, f"撤销 cancelled by {actor}: {reason}",
                                                    {"next_attempt_at": None})], now, actor=actor)
        audit.record(conn, actor, "operator.payout_cancel", ("payout", p.id),
                     {"from": str(p.status), "reason": reason, "amount_fen": p.amount_fen}, now)
        source = None
        if p.status is S.CREATED:
            source = ledger.Account.PAYOUT_IN_TRANSIT if p.parent_id is not None else ledger.Account.MERCHANT_PAYABLE
        elif p.status in IN_TRANSIT:
            source = ledger.Account.PAYOUT_IN_TRANSIT
        if source is not None:
            ledger_repo.post(conn, [ledger.cancel(p.merchant_id, p.id, p.amount_fen, source)], now)
