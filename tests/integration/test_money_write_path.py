"""The ledger's set-based write path refuses what does not balance (SQLite and PostgreSQL): an entry
whose postings do not sum to zero, written with INSERT ... SELECT, is found by the grouped check in the
same transaction, and nothing of the transaction is committed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    func,
    literal,
    select,
)

from settleguard.db import tables as t
from settleguard.ledger import repository as ledger
from settleguard.ledger.model import Account, Entry, EntryKind, Posting, UnbalancedEntry, confirm

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_md = MetaData()
rows = Table("sg_test_rows", _md, Column("seq", Integer, primary_key=True), Column("payout_id", Integer),
             Column("merchant_id", Integer), Column("amount_fen", BigInteger), prefixes=["TEMPORARY"])


def _ledger_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (int(c.execute(select(func.count()).select_from(t.ledger_entries)).scalar_one()),
                int(c.execute(select(func.count()).select_from(t.ledger_postings)).scalar_one()))


def _stage(conn: Connection) -> ledger.Rows:
    rows.create(conn)
    conn.execute(rows.insert(), [{"seq": i, "payout_id": 100 + i, "merchant_id": 7, "amount_fen": 1_000 * i}
                                 for i in (1, 2, 3)])
    return ledger.Rows(source=rows, where=rows.c.seq > 0, payout_id=rows.c.payout_id,
                       merchant_id=rows.c.merchant_id, amount_fen=rows.c.amount_fen, order=rows.c.seq)


def _postings(credit: int) -> list[Select[*tuple[Any, ...]]]:
    return [select(literal(str(Account.CLEARING_RECEIVABLE), String), literal(None, Integer), literal(500, Integer)),
            select(literal(str(Account.MERCHANT_PAYABLE), String), literal(7, Integer), literal(-credit, Integer))]


def test_a_balanced_bulk_post_is_written(engine: Engine) -> None:
    with engine.begin() as conn:
        ledger.post_each_from_select(conn, confirm(7, 1, 1), _stage(conn), 3, NOW)
        entry = ledger.post_entry_from_select(conn, EntryKind.SETTLEMENT, "run", _postings(500), NOW,
                                              run_id=1)
    assert _ledger_rows(engine) == (4, 8)
    with engine.connect() as conn:
        assert not [p for p in ledger.check(conn) if "does not balance" in p.message]
        assert conn.execute(select(t.ledger_entries.c.run_id).where(t.ledger_entries.c.id == entry)).scalar() == 1


def test_a_bulk_post_with_an_unbalanced_entry_is_refused(engine: Engine) -> None:
    # Balanced as an Entry (2 - 1 - 1), but a prototype's postings are taken as signs of the row's amount:
    # each entry written would be +a - a - a.
    bad = Entry(EntryKind.CONFIRM, "bad", (Posting(Account.PAYOUT_IN_TRANSIT, 7, 2),
                                           Posting(Account.BANK_PROVISIONS, 7, -1),
                                           Posting(Account.MERCHANT_HELD, 7, -1)), payout_id=1)
    with pytest.raises(UnbalancedEntry), engine.begin() as conn:
        ledger.post_each_from_select(conn, bad, _stage(conn), 3, NOW)
    assert _ledger_rows(engine) == (0, 0)


def test_a_bulk_post_missing_entries_is_refused(engine: Engine) -> None:
    with pytest.raises(UnbalancedEntry), engine.begin() as conn:
        ledger.post_each_from_select(conn, confirm(7, 1, 1), _stage(conn), 4, NOW)  # 3 rows, 4 expected
    assert _ledger_rows(engine) == (0, 0)


def test_a_set_based_entry_that_does_not_sum_to_zero_is_refused(engine: Engine) -> None:
    with pytest.raises(UnbalancedEntry), engine.begin() as conn:
        ledger.post_entry_from_select(conn, EntryKind.SETTLEMENT, "run", _postings(499), NOW)
    with pytest.raises(UnbalancedEntry), engine.begin() as conn:
        ledger.post_entry_from_select(conn, EntryKind.SETTLEMENT, "run", _postings(500)[:1], NOW)
    assert _ledger_rows(engine) == (0, 0)
