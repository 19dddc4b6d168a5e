"""Terminals bound to merchants (SQLite and PostgreSQL): add, move (移机), replace (换机), retire (撤机), each with
an event and an audit record; the transaction import reports rows from an unknown or retired terminal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.imports.transactions import ImportRejected
from settleguard.merchants import terminals
from settleguard.merchants.terminals import TerminalRefused
from settleguard.settlement.model import CardType, TxnKind

BJ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def _terms(engine: Engine, merchant_id: int) -> dict[str, tuple[str | None, str | None, str]]:
    tm = t.terminals
    with engine.connect() as conn:
        return {r.terminal_no: (r.serial_no, r.address, r.status) for r in conn.execute(
            select(tm).where(tm.c.merchant_id == merchant_id))}


def test_add_move_replace_retire_keep_the_history_and_are_audited(engine: Engine, vault: Vault) -> None:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    no = m.merchant_no
    terminals.add(engine, no, serial="SNT-0001", terminal_no="N0000001", model="PAX A920", address="北京朝阳路1号",
                  actor="op", now=NOW)
    with pytest.raises(TerminalRefused, match="SNT-0001"):
        terminals.add(engine, no, serial="SNT-0001", terminal_no="N0000002", model="PAX A920", address="x",
                      actor="op", now=NOW)
    with pytest.raises(TerminalRefused, match="原因"):
        terminals.move(engine, no, "N0000001", address="北京海淀路2号", reason="", actor="op", now=NOW)
    terminals.move(engine, no, "N0000001", address="北京海淀路2号", reason="店铺搬迁 shop moved", actor="op", now=NOW)
    terminals.replace(engine, no, "N0000001", serial="SNT-0002", reason="故障 broken", actor="op", now=NOW)
    terminals.replace(engine, no, "N0000001", serial="SNT-0003", new_terminal_no="N0000009", reason="升级 upgrade",
                      actor="op", now=NOW)
    terminals.retire(engine, no, "N0000009", reason="停业 closed shop", actor="op", now=NOW)
    with pytest.raises(TerminalRefused, match="撤机"):
        terminals.retire(engine, no, "N0000009", reason="again", actor="op", now=NOW)
    got = _terms(engine, m.id)
    assert got["N0000001"] == ("SNT-0002", "北京海淀路2号", "retired")
    assert got["N0000009"] == ("SNT-0003", "北京海淀路2号", "retired")
    te = t.terminal_events
    with engine.connect() as conn:
        events = [(r.action, r.old_serial_no, r.new_serial_no, r.old_address, r.new_address) for r in conn.execute(
            select(te).where(te.c.merchant_id == m.id).order_by(te.c.id))]
        audited = [k for (k,) in conn.execute(select(t.audit_events.c.kind).where(
            t.audit_events.c.subject_id == str(m.id), t.audit_events.c.kind.like("terminal.%")))]
    assert events == [
        ("add", None, "SNT-0001", None, "北京朝阳路1号"),
        ("move", None, None, "北京朝阳路1号", "北京海淀路2号"),
        ("replace", "SNT-0001", "SNT-0002", "北京海淀路2号", "北京海淀路2号"),
        ("retire", "SNT-0002", None, "北京海淀路2号", None),
        ("replace", "SNT-0002", "SNT-0003", None, "北京海淀路2号"),
        ("retire", "SNT-0003", None, "北京海淀路2号", None),
    ]
    assert sorted(audited) == sorted(["terminal.add", "terminal.move", "terminal.replace", "terminal.replace",
                                      "terminal.retire"])


def test_the_import_reports_rows_from_a_retired_or_unknown_terminal(engine: Engine, vault: Vault,
                                                                     tmp_path: Path) -> None:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    retired_at = NOW
    terminals.retire(engine, m.merchant_no, m.terminal_no, reason="撤机 retired", actor="op", now=retired_at)
    before = retired_at - timedelta(hours=1)
    after = retired_at + timedelta(minutes=5)
    rows = [Txn(ref(), m.merchant_no, m.terminal_no, before.astimezone(BJ), TxnKind.SALE, CardType.DEBIT, 100),
            Txn(ref(), m.merchant_no, m.terminal_no, after.astimezone(BJ), TxnKind.SALE, CardType.DEBIT, 100),
            Txn(ref(), m.merchant_no, "ZZ999999", before.astimezone(BJ), TxnKind.SALE, CardType.DEBIT, 100)]
    with pytest.raises(ImportRejected) as exc:
        import_rows(engine, tmp_path, rows, now=NOW + timedelta(hours=1))
    text = str(exc.value)
    assert "第 3 行" in text or "line 3" in text
    assert "终端已撤机" in text
    assert "terminal retired" in text
    assert m.terminal_no in text
    assert "ZZ999999" in text
    assert "终端未登记" in text
    assert "第 2 行" not in text
    assert "line 2:" not in text
    # the rows from before the retirement are accepted
    import_rows(engine, tmp_path, rows[:1], now=NOW + timedelta(hours=1))
