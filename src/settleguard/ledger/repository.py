"""SQL for the ledger: posting entries, balances and the invariant check.

The one write path for money: no other module inserts into ``ledger_entries`` or ``ledger_postings``
(tests/unit/test_architecture_money.py). :func:`post` appends entries built in Python (``Entry``
refuses an unbalanced one); the set-based forms for the settlement run and bulk bank reports,
:func:`post_entry_from_select` and :func:`post_each_from_select`, write with INSERT ... SELECT and then
check, in SQL and in the same transaction, that every entry they wrote has at least two postings
summing to zero; otherwise they raise ``UnbalancedEntry`` and the caller's transaction rolls back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    FromClause,
    Integer,
    Select,
    String,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.sql.expression import ColumnElement

from settleguard.db import tables as t
from settleguard.db.types import UTCDateTime
from settleguard.ledger.model import (
    Account,
    Entry,
    EntryKind,
    MerchantPosition,
    Problem,
    UnbalancedEntry,
    check_position,
    unbalanced,
)
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


def _refuse_unbalanced(conn: Connection, new_entries: Select[Any], expected: int) -> None:
    """Raise ``UnbalancedEntry`` unless each of the ``expected`` entries selected by ``new_entries`` (ids)
    has at least two postings summing to zero (one grouped query over the postings just written)."""
    lp = t.ledger_postings
    per = (select(func.count().label("n"), func.coalesce(func.sum(lp.c.amount_fen), 0).label("total"))
           .where(lp.c.entry_id.in_(new_entries)).group_by(lp.c.entry_id).subquery("per"))
    entries, bad = conn.execute(select(
        func.count(), func.coalesce(func.sum(func.abs(per.c.total)), 0) + func.count().filter(per.c.n < 2))).one()
    if int(entries) != expected or int(bad) != 0:
        raise UnbalancedEntry(f"{expected} entr(ies) written: {int(entries)} with postings, "
                              f"{int(bad)} fen/posting(s) out of balance; refused")


def post_entry_from_select(conn: Connection, kind: EntryKind, memo: str,
                           postings: Sequence[Select[*tuple[Any, ...]]], now: datetime, *, run_id: int | None = None) -> int:
    """Append one entry whose postings are the rows of ``postings`` (each a SELECT of account, merchant_id,
    amount_fen; their UNION ALL is inserted in one statement). Returns the entry's id; raises
    ``UnbalancedEntry`` (nothing may be committed then) unless the postings sum to zero."""
    entry_id = int(conn.execute(insert(t.ledger_entries).values(
        kind=str(kind), run_id=run_id, memo=memo, created_at=now,
    ).returning(t.ledger_entries.c.id)).scalar_one())
    eid = literal(entry_id, Integer)
    parts = [p.with_only_columns(eid, *p.selected_columns) for p in postings]
    conn.execute(insert(t.ledger_postings).from_select(
        ["entry_id", "account", "merchant_id", "amount_fen"], parts[0] if len(parts) == 1 else union_all(*parts)))
    _refuse_unbalanced(conn, select(literal(entry_id, Integer)), 1)
    return entry_id


@dataclass(frozen=True)
class Rows:
    """The rows of a set-based posting: one entry per row of ``source`` matching ``where``, for the row's
    payout, merchant and amount, created in ``order``. ``payout_id`` must be unique among the rows."""

    source: FromClause
    where: ColumnElement[bool]
    payout_id: ColumnElement[int]
    merchant_id: ColumnElement[int]
    amount_fen: ColumnElement[int]
    order: ColumnElement[Any]


def post_each_from_select(conn: Connection, prototype: Entry, rows: Rows, expected: int, now: datetime) -> None:
    """One entry like ``prototype`` (built by ledger.model for 1 fen: kind, memo, accounts and signs are
    taken from it) per row of ``rows``, for the row's amount: INSERT ... SELECT, one statement for the
    entries and one per posting of the prototype. Raises ``UnbalancedEntry`` (the caller's transaction
    must roll back) unless ``expected`` entries were written, each with postings summing to zero."""
    e = t.ledger_entries
    now_lit = literal(now, UTCDateTime)
    before = int(conn.execute(select(func.coalesce(func.max(e.c.id), 0))).scalar_one())
    conn.execute(insert(e).from_select(
        ["kind", "merchant_id", "payout_id", "memo", "created_at"],
        select(literal(str(prototype.kind), String), rows.merchant_id, rows.payout_id,
               literal(prototype.memo, String), now_lit).select_from(rows.source).where(rows.where)
        .order_by(rows.order)))
    # The new entries are found again by payout among the ids above ``before``: ids only grow, and a
    # payout is changed by one transaction at a time (the caller's status UPDATE holds its row).
    new = (select(e.c.id, e.c.payout_id).where(e.c.id > before, e.c.kind == str(prototype.kind),
                                                e.c.created_at == now_lit).subquery("new"))
    for posting in prototype.postings:
        sign = 1 if posting.amount_fen > 0 else -1
        conn.execute(insert(t.ledger_postings).from_select(
            ["entry_id", "account", "merchant_id", "amount_fen"],
            select(new.c.id, literal(str(posting.account), String), rows.merchant_id, rows.amount_fen * sign)
            .select_from(new.join(rows.source, rows.payout_id == new.c.payout_id)).where(rows.where)))
    _refuse_unbalanced(conn, select(new.c.id).select_from(new.join(rows.source, rows.payout_id == new.c.payout_id))
                       .where(rows.where), expected)


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
