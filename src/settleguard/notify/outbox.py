"""Writing payout notices to the outbox in the caller's transaction.

``notify_payout`` is called by the payout flow (payouts.service, payouts.files, payouts.release)
inside the transaction that holds, returns, releases or pays the payout: the notice exists if and
only if the change committed. The dedupe key ``payout:<id>:<cause>`` makes it one notice per payout
per cause. A delivery row is queued for each channel of the merchant's preferences; with none
configured the notice stays in the outbox (the portal shows it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from settleguard.diagnosis import Diagnosis, UnknownScheme, classify
from settleguard.notify import repository as repo
from settleguard.notify.model import DEFAULT_STEPS, Notice, dedupe_key
from settleguard.notify.render import texts

TIMEZONE = ZoneInfo("Asia/Shanghai")


class PayoutLike(Protocol):
    """What a notice needs of a payout (payouts.repository.DuePayout has it)."""

    @property
    def id(self) -> int: ...
    @property
    def merchant_id(self) -> int: ...
    @property
    def account_id(self) -> int | None: ...
    @property
    def instruction_no(self) -> int: ...
    @property
    def key(self) -> str: ...


def diagnosis_of(scheme: str | None, code: str | None, message: str | None) -> Diagnosis:
    """classify(), falling back to scheme-less matching for a scheme the classifier does not know."""
    try:
        return classify(scheme, code or None, message or None)
    except UnknownScheme:
        return classify(None, code or None, message or None)


def build_notice(conn: Connection, payout: PayoutLike, kind: str, diagnosis: Diagnosis | None, amount_fen: int,
                 now: datetime, *, code: str = "", message: str = "") -> Notice:
    merchant_no, name = repo.merchant_facts(conn, payout.merchant_id)
    steps_zh, steps_en = DEFAULT_STEPS.get(kind, ((), ()))
    if diagnosis is not None:
        steps_zh, steps_en = diagnosis.guidance_zh, diagnosis.guidance_en
    return Notice(
        kind=kind, merchant_no=merchant_no, merchant_name=name, amount_fen=amount_fen, payout_id=payout.id,
        payout_key=payout.key, card_masked=repo.card_mask(conn, payout.account_id, payout.merchant_id),
        category=None if diagnosis is None else diagnosis.category.value,
        rule=None if diagnosis is None else diagnosis.rule,
        meaning_zh="" if diagnosis is None else diagnosis.meaning_zh,
        meaning_en="" if diagnosis is None else diagnosis.meaning_en,
        steps_zh=tuple(steps_zh), steps_en=tuple(steps_en), bank_code=code[:32], bank_message=message[:512],
        created_at=now.astimezone(TIMEZONE).isoformat(timespec="seconds"))


def notify_payout(conn: Connection, payout: PayoutLike, category: str, diagnosis: Diagnosis | None, amount_fen: int,
                  now: datetime, *, code: str = "", message: str = "") -> bool:
    """Write the notice of ``category`` (a taxonomy category, or no_card / returned / released / paid)
    for ``payout`` in the caller's transaction and queue its deliveries; False if that cause was
    already notified (nothing written)."""
    notice = build_notice(conn, payout, category, diagnosis, amount_fen, now, code=code, message=message)
    zh, en = texts(notice)
    key = dedupe_key(payout.id, category, payout.instruction_no)
    nid = repo.add_notice(conn, merchant_id=payout.merchant_id, kind=category, dedupe_key=key,
                          payload={"zh": zh, "en": en, **notice.facts()}, now=now)
    if nid is None:
        return False
    prefs = repo.preferences(conn, payout.merchant_id)
    if prefs is not None:
        repo.enqueue(conn, nid, prefs.targets(), now)
    return True


def notify_answer(conn: Connection, payout: PayoutLike, action: str, category: str, scheme: str | None, code: str,
                  message: str, now: datetime, amount_fen: int) -> bool:
    """The payout flow's hook for a bank answer: a hold (挂账) is told with its diagnosis; a payout
    paid after a hold and release (instruction_no > 0) is told as paid. Anything else: nothing."""
    if action == "hold":
        return notify_payout(conn, payout, category, diagnosis_of(scheme, code, message), amount_fen, now,
                             code=code, message=message)
    if action == "confirm" and payout.instruction_no > 0:
        return notify_payout(conn, payout, "paid", None, amount_fen, now)
    return False
