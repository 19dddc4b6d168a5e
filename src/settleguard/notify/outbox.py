"""Writing payout notices to the outbox in the caller's transaction.

``notify_payout`` (or ``notify_payouts`` for many) is called by the payout flow (payouts.service, payouts.files, payouts.release)
inside the transaction that holds, returns, releases or pays the payout: the notice exists if and
only if the change committed. The dedupe key ``payout:<id>:<cause>`` makes it one notice per payout
per cause. A delivery row is queued for each channel of the merchant's preferences; with none
configured the notice stays in the outbox (the portal shows it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from settleguard.diagnosis import Diagnosis, UnknownScheme, classify
from settleguard.notify import repository as repo
from settleguard.notify.model import DEFAULT_STEPS, Channel, Notice, dedupe_key
from settleguard.notify.render import texts_many


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


@dataclass(frozen=True)
class PayoutNotice:
    """One notice to write: ``kind`` (a taxonomy category, or no_card / returned / released / paid)
    about ``payout``, with its diagnosis (None for events) and the bank's code and message."""

    payout: PayoutLike
    kind: str
    diagnosis: Diagnosis | None
    amount_fen: int
    code: str = ""
    message: str = ""


def _notice(item: PayoutNotice, facts: tuple[str, str], card: str | None, now: datetime, tz: str) -> Notice:
    d, p = item.diagnosis, item.payout
    steps_zh, steps_en = DEFAULT_STEPS.get(item.kind, ((), ()))
    if d is not None:  # what a merchant reads of the guidance: never an operations instruction (issue 18)
        steps_zh, steps_en = d.for_merchant("zh"), d.for_merchant("en")
    return Notice(
        kind=item.kind, merchant_no=facts[0], merchant_name=facts[1], amount_fen=item.amount_fen, payout_id=p.id,
        payout_key=p.key, card_masked=card, category=None if d is None else d.category.value,
        rule=None if d is None else d.rule, meaning_zh="" if d is None else d.meaning_zh,
        meaning_en="" if d is None else d.meaning_en, steps_zh=tuple(steps_zh), steps_en=tuple(steps_en),
        bank_code=item.code[:32], bank_message=item.message[:512],
        created_at=now.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds"))


def notify_payouts(conn: Connection, items: Sequence[PayoutNotice], now: datetime, *, tz: str) -> list[bool]:
    """Write the notices ``items`` in the caller's transaction and queue their deliveries; per item,
    False if that cause of that payout was already notified (or repeats an earlier item): nothing
    written for it. Merchants, cards and preferences are read once for all, alike notices are
    rendered once (render.texts_many), and the rows are written with one statement each. ``tz`` is the
    business time zone (config.Settings.timezone, passed down by the caller): the notice's local time."""
    if not items:
        return []
    mids = [i.payout.merchant_id for i in items]
    facts = repo.merchant_facts_many(conn, mids)
    masks = repo.card_masks(conn, [i.payout.account_id for i in items if i.payout.account_id is not None])
    no_account = [i.payout.merchant_id for i in items if i.payout.account_id is None]
    active = repo.active_card_masks(conn, no_account) if no_account else {}
    notices = [_notice(i, facts[i.payout.merchant_id],
                       masks.get(i.payout.account_id) if i.payout.account_id is not None
                       else active.get(i.payout.merchant_id), now, tz) for i in items]
    keys = [dedupe_key(i.payout.id, i.kind, i.payout.instruction_no) for i in items]
    rows = [{"merchant_id": i.payout.merchant_id, "kind": i.kind, "dedupe_key": key,
             "payload": {"zh": zh, "en": en, **n.facts()}}
            for i, key, n, (zh, en) in zip(items, keys, notices, texts_many(notices), strict=True)]
    written = repo.add_notices(conn, rows, now)
    prefs = repo.preferences_many(conn, [i.payout.merchant_id for i, k in zip(items, keys, strict=True)
                                         if k in written])
    queued: list[tuple[int, Sequence[tuple[Channel, str]]]] = []
    out: list[bool] = []
    for i, key in zip(items, keys, strict=True):
        nid = written.pop(key, None)  # popped: a repeated key in ``items`` is written (and told) once
        out.append(nid is not None)
        pref = prefs.get(i.payout.merchant_id)
        if nid is not None and pref is not None:
            queued.append((nid, pref.targets()))
    repo.enqueue_many(conn, queued, now)
    return out


def notify_payout(conn: Connection, payout: PayoutLike, category: str, diagnosis: Diagnosis | None, amount_fen: int,
                  now: datetime, *, tz: str, code: str = "", message: str = "") -> bool:
    """Write the notice of ``category`` (a taxonomy category, or no_card / returned / released / paid)
    for ``payout`` in the caller's transaction and queue its deliveries; False if that cause was
    already notified (nothing written)."""
    return notify_payouts(conn, [PayoutNotice(payout, category, diagnosis, amount_fen, code, message)], now,
                          tz=tz)[0]


def answer_notice(payout: PayoutLike, action: str, category: str, scheme: str | None, code: str, message: str,
                  amount_fen: int) -> PayoutNotice | None:
    """The notice a bank answer calls for: a hold (挂账) is told with its diagnosis; a payout paid
    after a hold and release (instruction_no > 0) is told as paid. Anything else: None."""
    if action == "hold":
        return PayoutNotice(payout, category, diagnosis_of(scheme, code, message), amount_fen, code, message)
    if action == "confirm" and payout.instruction_no > 0:
        return PayoutNotice(payout, "paid", None, amount_fen)
    return None


def notify_answer(conn: Connection, payout: PayoutLike, action: str, category: str, scheme: str | None, code: str,
                  message: str, now: datetime, amount_fen: int, *, tz: str) -> bool:
    """The payout flow's hook for one bank answer (see :func:`answer_notice`)."""
    item = answer_notice(payout, action, category, scheme, code, message, amount_fen)
    return False if item is None else notify_payouts(conn, [item], now, tz=tz)[0]
