"""SQL for the ledger: posting entries, balances and the invariant check."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from settleguard.db import tables as t
from settleguard.ledger.model import Account, Entry, MerchantPosition, Problem, check_position, unbalanced
from settleguard.payouts.model import PayoutStatus


def post(conn: Connection, entries: Sequence[Entry], now: datetime) -> list[int]:
    """Append balanced entries (validated by Entry itself); returns their ids in order."""
    if not entries:
        return []
    ids = [
        int(r[0])
        for r in conn.execute(
            insert(t.ledger_entries).returning(t.ledger_entries.c.id, sort_by_parameter_order=True),
            [
                {"kind": str(e.kind), "merchant_id": e.merchant_id,
                 "payout_id": e.payout_id, "memo": e.memo, "created_at": now}
                for e in entries
            ],
        )
    ]
    conn.execute(insert(t.ledger_postings), [
        {"entry_id": eid, "account": str(p.account), "merchant_id": p.merchant_id, "amount_fen": p.amount_fen}
        for eid, e in zip(ids, entries, strict=True)
        for p in e.postings
    ])
    return ids


def balances(conn: Connection, merchant_id: int) -> dict[Account, int]:
    """Credit balances (positive = owed to the merchant) of one merchant's accounts."""
    rows = conn.execute(
        select(t.ledger_postings.c.account, func.sum(t.ledger_postings.c.amount_fen))
        .where(t.ledger_postings.c.merchant_id == merchant_id)
        .group_by(t.ledger_postings.c.account)
    ).all()
    return {Account(a): -int(s) for a, s in rows}


def check(conn: Connection) -> list[Problem]:
    """Every entry balances; every merchant's position adds up. Returns the problems."""
    problems: list[Problem] = []
    lp = t.ledger_postings
    bad = conn.execute(
        select(lp.c.entry_id, func.sum(lp.c.amount_fen)).group_by(lp.c.entry_id)
        .having(func.sum(lp.c.amount_fen) != 0).order_by(lp.c.entry_id)
    ).all()
    if bad:
        accounts: dict[int, list[str]] = defaultdict(list)
        for eid, acct, mid in conn.execute(
            select(lp.c.entry_id, lp.c.account, lp.c.merchant_id).where(lp.c.entry_id.in_([b[0] for b in bad]))
        ):
            accounts[eid].append(f"{acct}:{mid}" if mid is not None else acct)
        problems += [unbalanced(eid, accounts[eid], int(total)) for eid, total in bad]

    orphans = conn.execute(
        select(lp.c.entry_id, func.count()).select_from(
            lp.outerjoin(t.ledger_entries, t.ledger_entries.c.id == lp.c.entry_id))
        .where(t.ledger_entries.c.id.is_(None)).group_by(lp.c.entry_id)
    ).all()
    problems += [Problem(("ledger_entries",), f"{n} posting(s) refer to entry {eid}, which does not exist")
                 for eid, n in orphans]

    led: dict[int, dict[str, int]] = defaultdict(dict)
    for mid, acct, total in conn.execute(
        select(lp.c.merchant_id, lp.c.account, func.sum(lp.c.amount_fen))
        .where(lp.c.merchant_id.is_not(None)).group_by(lp.c.merchant_id, lp.c.account)
    ):
        led[int(mid)][acct] = -int(total)
    settled = dict(conn.execute(
        select(t.settlements.c.merchant_id, func.sum(t.settlements.c.net_fen)).group_by(t.settlements.c.merchant_id)
    ).all())
    paid = dict(conn.execute(
        select(t.payouts.c.merchant_id, func.sum(t.payouts.c.amount_fen))
        .where(t.payouts.c.status == str(PayoutStatus.SUCCEEDED)).group_by(t.payouts.c.merchant_id)
    ).all())
    settled_ledger: dict[int, int] = dict(conn.execute(
        select(lp.c.merchant_id, -func.sum(lp.c.amount_fen))
        .join(t.ledger_entries, t.ledger_entries.c.id == lp.c.entry_id)
        .where(t.ledger_entries.c.kind == "settlement", lp.c.account == str(Account.MERCHANT_PAYABLE))
        .group_by(lp.c.merchant_id)
    ).all())
    for mid in sorted(set(led) | set(settled) | set(paid)):
        accts = led.get(mid, {})
        problems += check_position(MerchantPosition(
            merchant_id=mid,
            settled_net_fen=int(settled.get(mid, 0)),
            paid_fen=int(paid.get(mid, 0)),
            held_fen=accts.get(Account.MERCHANT_HELD, 0),
            in_transit_fen=accts.get(Account.PAYOUT_IN_TRANSIT, 0),
            payable_fen=accts.get(Account.MERCHANT_PAYABLE, 0),
            paid_ledger_fen=accts.get(Account.BANK_PROVISIONS, 0),
            settled_ledger_fen=int(settled_ledger.get(mid, 0)),
        ))
    return problems


def totals(conn: Connection) -> dict[str, int]:
    """Credit balance of each account over all merchants (for summaries)."""
    lp = t.ledger_postings
    return {a: -int(s) for a, s in conn.execute(select(lp.c.account, func.sum(lp.c.amount_fen)).group_by(lp.c.account))}


def carried_negative(conn: Connection) -> tuple[int, int]:
    """(merchants, total fen ≤ 0) whose merchant_payable balance is below zero: refunds above sales, carried to
    their next settlement and netted there (docs/settlement.md, carry-over)."""
    lp = t.ledger_postings
    per = (select((-func.sum(lp.c.amount_fen)).label("bal"))
           .where(lp.c.account == str(Account.MERCHANT_PAYABLE), lp.c.merchant_id.is_not(None))
           .group_by(lp.c.merchant_id).subquery())
    n, total = conn.execute(select(func.count(), func.coalesce(func.sum(per.c.bal), 0)).where(per.c.bal < 0)).one()
    return int(n), int(total)
