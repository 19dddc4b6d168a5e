"""Merchant statements (对账单, issue 20 item 4) on SQLite and PostgreSQL: the xlsx read back with openpyxl (sheets,
zh/en headers, money as numbers formatted 元, local times to the second) and the CSV (UTF-8 with a BOM, one file
in sections) both reconcile to the settlements, the payouts and the ledger to the fen; a negative day is carried
and explained; held money names its diagnosis; bad input is refused naming what was typed and writes nothing;
the portal and the console download it (a merchant only its own); random transactions add up (hypothesis)."""

from __future__ import annotations

import codecs
import csv
import io
import tracemalloc
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update
from test_web_console import World, sign_in, world  # noqa: F401 - the fixture is used by name

from conftest import NOW
from factories import Merchant, Txn, import_rows, make_merchants, ref
from payout_helpers import NAME_MISMATCH, OK, ScriptedBank
from settleguard import labels
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.ledger import repository as ledger_repo
from settleguard.ledger.model import Account
from settleguard.payouts.service import send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import STANDARD, CardType, TxnKind
from settleguard.settlement.model import totals as settlement_totals
from settleguard.statements import repository as st_repo
from settleguard.statements.model import MAX_DAYS, StatementRefused, line_net, totals_of
from settleguard.statements.service import export, load, snapshot

Z = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 11, 1), date(2026, 11, 30)
MONEY = "#,##0.00"


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), Z)


@dataclass
class Story:
    engine: Engine
    m: Merchant
    held_key: str
    paid_key: str


@pytest.fixture
def story(engine: Engine, vault: Vault, tmp_path: Path) -> Story:
    """One T+1 merchant: a refund-only day before the period (carried in), a day in it whose refund exceeds its
    sale (carried on), a day paid with what was carried taken off, a day held (户名不符), and a day after the
    period; another merchant's sales on the same days that must not show."""
    with engine.begin() as conn:
        m, other = make_merchants(conn, vault, 2)
    k = m.terminal_no
    rows = [
        Txn(ref(), m.merchant_no, k, at(date(2026, 10, 30), 10), TxnKind.REFUND, CardType.DEBIT, 4_000),
        Txn(ref(), m.merchant_no, k, at(date(2026, 11, 16), 10, 5, 7), TxnKind.SALE, CardType.DEBIT, 1_000),
        Txn(ref(), m.merchant_no, k, at(date(2026, 11, 16), 11), TxnKind.REFUND, CardType.DEBIT, 3_500),
        Txn(ref(), m.merchant_no, k, at(date(2026, 11, 17), 9), TxnKind.SALE, CardType.CREDIT, 50_000),
        Txn(ref(), m.merchant_no, k, at(date(2026, 11, 17), 9, 30), TxnKind.VOID, CardType.CREDIT, 2_000),
        Txn(ref(), m.merchant_no, k, at(date(2026, 11, 17), 14), TxnKind.REVERSAL, CardType.QR, 700),
        Txn(ref(), m.merchant_no, k, at(date(2026, 11, 17), 15), TxnKind.SALE, CardType.QR, 700),
        Txn(ref(), m.merchant_no, k, at(date(2026, 11, 18), 12), TxnKind.SALE, CardType.QR, 123_456),
        Txn(ref(), m.merchant_no, k, at(date(2026, 12, 1), 12), TxnKind.SALE, CardType.QR, 99_999),
        *(Txn(ref(), other.merchant_no, other.terminal_no, at(d, 12), TxnKind.SALE, CardType.QR, 5_000)
          for d in (date(2026, 11, 16), date(2026, 11, 18))),
    ]
    import_rows(engine, tmp_path, rows, now=NOW)
    for d in (date(2026, 10, 30), date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), date(2026, 12, 1)):
        settle(engine, d, NOW)
    with engine.connect() as conn:
        keys = dict(conn.execute(select(t.payouts.c.cycle_date, t.payouts.c.idempotency_key)
                                 .where(t.payouts.c.merchant_id == m.id)).all())
    paid, held = keys[date(2026, 11, 17)], keys[date(2026, 11, 18)]
    send_due(engine, ScriptedBank(sends={paid: [OK], held: [NAME_MISMATCH]}), vault, as_of=date(2026, 11, 19),
             now=at(date(2026, 11, 19), 9))
    return Story(engine, m, held, paid)


def _db_facts(engine: Engine, mid: int) -> dict[str, Any]:
    s, p = t.settlements, t.payouts
    in_period = (s.c.merchant_id == mid, s.c.cycle_date >= START, s.c.cycle_date <= END)
    with engine.connect() as conn:
        net, fee, sale, n = conn.execute(select(func.sum(s.c.net_fen), func.sum(s.c.fee_fen), func.sum(s.c.sale_fen),
                                                func.sum(s.c.txn_count)).where(*in_period)).one()
        before = conn.execute(select(func.sum(s.c.net_fen)).where(s.c.merchant_id == mid,
                                                                  s.c.cycle_date < START)).scalar_one()
        payouts = {r.idempotency_key: (r.amount_fen, r.status, r.category) for r in conn.execute(
            select(p).where(p.c.merchant_id == mid, p.c.cycle_date >= START, p.c.cycle_date <= END))}
        held = ledger_repo.balances(conn, mid).get(Account.MERCHANT_HELD, 0)
    return {"net": int(net), "fee": int(fee), "sale": int(sale), "count": int(n), "before": int(before),
            "payouts": payouts, "held": int(held)}


def _fen(v: float | int) -> int:
    return round(v * 100)


def _summary(ws: Any) -> dict[str, tuple[Any, Any]]:
    """The summary's label → (count, amount) rows of the totals block."""
    out = {}
    for row in ws.iter_rows(min_row=1, max_row=30, values_only=True):
        if isinstance(row[0], str) and len(row) > 2:
            out[row[0].split(" ", 1)[0]] = (row[1], row[2])
    return out


def test_xlsx_and_csv_reconcile_to_settlements_payouts_and_ledger(story: Story, tmp_path: Path) -> None:
    s, m = story, story.m
    facts = _db_facts(s.engine, m.id)
    out = tmp_path / "st.xlsx"
    res = export(s.engine, m.merchant_no, START, END, "xlsx", out, now=NOW, zone=Z)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["汇总 Summary", "交易明细 Transactions", "出款 Payouts"]

    # Transactions: zh/en headers, the merchant's 7 lines of the period in time order, money as numbers in 元
    tx = wb["交易明细 Transactions"]
    rows = list(tx.iter_rows(values_only=True))
    assert rows[0] == ("业务日 cycle_date", "交易时间 occurred_at", "终端编号 terminal_no", "参考号 external_ref",
                       "交易类型 kind", "卡类型 card_type", "金额(元) amount_yuan", "手续费(元) fee_yuan", "净额(元) net_yuan")
    lines, total = rows[1:-1], rows[-1]
    assert len(lines) == facts["count"] == 7
    assert lines[0][1] == at(date(2026, 11, 16), 10, 5, 7).replace(tzinfo=None)  # Beijing time to the second
    assert [r[4] for r in lines[:3]] == ["消费 sale", "退货 refund", "消费 sale"]
    assert {r[2] for r in lines} == {m.terminal_no}
    assert sum(_fen(r[8]) for r in lines) == _fen(total[8]) == facts["net"]  # lines = total = settlements
    assert sum(_fen(r[7]) for r in lines) == _fen(total[7]) == facts["fee"]
    cell = tx.cell(row=2, column=7)
    assert (cell.number_format, tx.cell(row=2, column=2).number_format) == (MONEY, "yyyy-mm-dd hh:mm:ss")
    assert isinstance(cell.value, int | float)
    assert tx.cell(row=2, column=1).number_format == "yyyy-mm-dd"

    # Summary: totals = settlements; carried in = the October refund day; payouts and carry add up to the fen
    sm = wb["汇总 Summary"]
    summary = _summary(sm)
    assert _fen(summary["净额"][1]) == facts["net"]
    assert summary["净额"][0] == 7
    assert _fen(summary["手续费"][1]) == facts["fee"]
    assert _fen(summary["消费"][1]) == facts["sale"]
    carried_in, created = _fen(summary["期初结转"][1]), _fen(summary["本期结算出款"][1])
    assert carried_in == facts["before"] == -4_000
    top = sum(a for a, _s, _c in facts["payouts"].values())
    assert created == top
    assert _fen(summary["期末结转"][1]) == carried_in + facts["net"] - created
    assert _fen(summary["当前挂账余额"][1]) == facts["held"] == facts["payouts"][s.held_key][0]
    head = next(r for r in range(1, 30) if sm.cell(row=r, column=1).value == "项目 item")
    block = range(head + 1, next(r for r in range(head, 60) if sm.cell(row=r, column=1).value is None))
    assert len(block) >= 10
    for r in block:
        if sm.cell(row=r, column=3).value is not None:
            assert sm.cell(row=r, column=3).number_format == MONEY, r
    text = "\n".join(" ".join(str(c) for c in row if c is not None) for row in sm.iter_rows(values_only=True))
    assert "退款多于消费" in text
    assert "refunds above sales" in text
    assert "上期结转负余额" in text  # the paid day: payout = net less what was carried in
    assert f"{m.merchant_no}" in text
    assert "Asia/Shanghai" in text

    # Payouts: every payout of the period, status and reason as labels, zh first
    po = wb["出款 Payouts"]
    prow = {r[0]: r for r in po.iter_rows(min_row=2, values_only=True) if str(r[0]).startswith("SG")}
    assert {k: _fen(r[4]) for k, r in prow.items()} == {k: a for k, (a, _s, _c) in facts["payouts"].items()}
    amount, status, category = facts["payouts"][s.held_key]
    assert prow[s.held_key][5] == labels.zh_en(labels.PAYOUT_STATUS, status) == "挂账 held"
    zh, en = labels.pair(labels.CATEGORY, category)
    assert prow[s.held_key][7].startswith(f"{zh}：")
    assert f" {en}: " in prow[s.held_key][7]
    assert prow[s.paid_key][5] == "出款成功 succeeded"
    assert prow[s.paid_key][7] is None
    assert s.held_key in text
    assert zh in text

    # the CSV: one file, UTF-8 with a BOM, the same sections and the same figures
    cout = tmp_path / "st.csv"
    export(s.engine, m.merchant_no, START, END, "csv", cout, now=NOW, zone=Z)
    raw = cout.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    sections = [i for i, r in enumerate(table) if r and r[0].startswith("【")]
    assert [table[i][0] for i in sections] == ["【汇总 Summary】", "【交易明细 Transactions】", "【出款 Payouts】"]
    tx_rows = table[sections[1] + 2: sections[2] - 2]
    assert len(tx_rows) == 7
    assert tx_rows[0][1] == "2026-11-16 10:05:07+08:00"
    assert sum(int(r[8].replace(".", "")) for r in tx_rows) == facts["net"]
    assert table[sections[2] - 2][8] == f"{facts['net'] / 100:.2f}"
    assert res.statement.lines_written == 7
    assert res.to_dict()["net_fen"] == facts["net"]


def test_bad_input_is_refused_naming_what_was_typed_and_writes_nothing(story: Story, tmp_path: Path) -> None:
    out = tmp_path / "none.xlsx"
    cases = [
        ("898100058129999", START, END, ("「898100058129999」", "'898100058129999'")),
        ("6222021234567890128", START, END, ("622202*********0128", "622202*********0128")),  # a card typed: masked
        (story.m.merchant_no, END, START, ("2026-11-30", "2026-11-01")),
        (story.m.merchant_no, START, START + timedelta(days=MAX_DAYS), ("367", "366")),
        ("' OR 1=1 --", START, END, ("' OR 1=1 --", "' OR 1=1 --")),
    ]
    for merchant_no, start, end, (in_zh, in_en) in cases:
        with pytest.raises(StatementRefused) as got:
            export(story.engine, merchant_no, start, end, "xlsx", out, now=NOW, zone=Z)
        assert in_zh in got.value.zh
        assert in_en in got.value.en
        assert not out.exists()
        assert not list(tmp_path.glob(".none.xlsx*"))
    # a whole year (366 days) is allowed
    export(story.engine, story.m.merchant_no, date(2025, 12, 1), date(2026, 11, 30), "csv", tmp_path / "y.csv", now=NOW,
           zone=Z)


def test_csv_keeps_a_hostile_shop_name_text(story: Story, tmp_path: Path) -> None:
    with story.engine.begin() as conn:
        conn.execute(update(t.merchants).where(t.merchants.c.id == story.m.id)
                     .values(registered_name='=HYPERLINK("http://x","y")'))
    out = tmp_path / "h.csv"
    export(story.engine, story.m.merchant_no, START, END, "csv", out, now=NOW, zone=Z)
    text = out.read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    assert ",=HYPERLINK" not in text
    assert "\n=HYPERLINK" not in text
    xout = tmp_path / "h.xlsx"
    export(story.engine, story.m.merchant_no, START, END, "xlsx", xout, now=NOW, zone=Z)
    ws = openpyxl.load_workbook(xout)["汇总 Summary"]
    assert ws.cell(row=3, column=2).data_type == "s"  # a string, never a formula


# --- download from the portal and the console ---------------------------------------------------------


def test_portal_and_console_download_a_merchants_own_statement(world: World) -> None:  # noqa: F811
    a, b = world.held_a, world.paid_b
    query = "?from=2026-11-01&to=2026-11-30"
    mera = sign_in(world, "mera")
    page = mera.get(f"/m/{a.merchant.id}")
    assert f'action="/m/{a.merchant.id}/statement"' in page.text
    assert "下载对账单" in page.text
    got = mera.get(f"/m/{a.merchant.id}/statement{query}&format=xlsx")
    assert got.status_code == 200, got.text[:500]
    assert got.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert f"statement_{a.merchant.merchant_no}_20261101_20261130.xlsx" in got.headers["content-disposition"]
    assert got.headers["cache-control"] == "no-store"
    wb = openpyxl.load_workbook(io.BytesIO(got.content))
    keys = [r[0] for r in wb["出款 Payouts"].iter_rows(min_row=2, values_only=True)]
    assert a.key in keys
    assert b.key not in keys
    assert mera.get(f"/m/{b.merchant.id}/statement{query}").status_code == 404  # another merchant's: not there
    assert mera.get(f"/merchants/{b.merchant.id}/statement{query}").status_code == 404

    bad = mera.get(f"/m/{a.merchant.id}/statement?from=2026-13-01&to=2026-11-30")
    assert bad.status_code == 422
    assert "2026-13-01" in bad.text
    assert "YYYY-MM-DD" in bad.text
    late = mera.get(f"/m/{a.merchant.id}/statement?from=2026-11-30&to=2026-11-01")
    assert late.status_code == 422
    assert "晚于" in late.text
    assert "is after" in late.text
    fmt = mera.get(f"/m/{a.merchant.id}/statement{query}&format=pdf")
    assert fmt.status_code == 422
    assert "pdf" in fmt.text

    for who in ("supp", "oper"):
        c = sign_in(world, who)
        assert f'action="/merchants/{a.merchant.id}/statement"' in c.get(f"/merchants/{a.merchant.id}").text
        got = c.get(f"/merchants/{a.merchant.id}/statement{query}&format=csv")
        assert got.status_code == 200
        assert got.content.startswith(codecs.BOM_UTF8)
        assert got.headers["content-type"].startswith("text/csv")
        body = got.content.decode("utf-8-sig")
        assert a.key in body
        assert "挂账 held" in body
    assert sign_in(world, "oper").get(f"/merchants/999999/statement{query}").status_code == 404
    anon = world.client().get(f"/m/{a.merchant.id}/statement{query}")
    assert anon.status_code == 303
    assert anon.headers["location"].startswith("/login")


# --- large periods stream --------------------------------------------------------------------------------


def test_a_large_period_streams_in_bounded_memory(sqlite_engine: Engine, vault: Vault, tmp_path: Path) -> None:
    """Peak Python memory of an export does not grow with the number of lines (xlsx constant_memory, streamed
    rows): 6,000 lines cost about what 500 do."""
    with sqlite_engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    peaks = []
    for n, day in ((500, date(2026, 11, 2)), (5_500, date(2026, 11, 3))):
        import_rows(sqlite_engine, tmp_path, [
            Txn(ref(), m.merchant_no, m.terminal_no, at(day, 8) + timedelta(seconds=i), TxnKind.SALE, CardType.QR,
                100 + i) for i in range(n)], now=NOW)
        settle(sqlite_engine, day, NOW)
        tracemalloc.start()
        res = export(sqlite_engine, m.merchant_no, date(2026, 11, 2), day, "xlsx", tmp_path / f"{n}.xlsx", now=NOW,
                     zone=Z)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert res.statement.lines_written == (500 if n == 500 else 6_000)
    assert peaks[1] < 2 * peaks[0] + 1_000_000, peaks
    assert peaks[1] < 8_000_000, peaks


# --- property: statement totals are the sums of their lines ---------------------------------------------

KINDS = st.sampled_from(list(TxnKind))
CARDS = st.sampled_from(list(CardType))
LINE = st.tuples(KINDS, CARDS, st.integers(min_value=1, max_value=5_000_000))


@given(st.lists(LINE, max_size=60))
def test_totals_are_the_sums_of_the_lines(rows: list[tuple[TxnKind, CardType, int]]) -> None:
    lines = [(int(k), a, STANDARD.fee(k, c, a)) for k, c, a in rows]
    tot = totals_of(lines)
    assert tot.count == len(lines)
    assert tot.net_fen == sum(line_net(k, a, f) for k, a, f in lines)
    assert tot.net_fen == tot.sale_fen - tot.void_fen - tot.refund_fen - tot.reversal_fen - tot.fee_fen
    assert tot.fee_fen == sum(f for _k, _a, f in lines)
    ref_totals = settlement_totals(rows, STANDARD)
    assert (tot.sale_fen, tot.void_fen, tot.refund_fen, tot.reversal_fen, tot.fee_fen) == (
        ref_totals.sale_fen, ref_totals.void_fen, ref_totals.refund_fen, ref_totals.reversal_fen, ref_totals.fee_fen)


DAYS = st.lists(st.lists(LINE, min_size=1, max_size=6), min_size=1, max_size=4)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(DAYS)
def test_random_days_reconcile_in_the_database(engine: Engine, vault: Vault, tmp_path: Path,
                                               days: list[list[tuple[TxnKind, CardType, int]]]) -> None:
    """Random transactions over a few days, imported and settled: the statement's totals = the sum of its streamed
    lines = the settlements; each day's carry follows in + net − payout; the payouts are the settlement run's."""
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    first = date(2026, 11, 2)
    rows = [Txn(ref(), m.merchant_no, m.terminal_no, at(first + timedelta(days=d), 10) + timedelta(seconds=i), k, c, a)
            for d, day in enumerate(days) for i, (k, c, a) in enumerate(day)]
    import_rows(engine, tmp_path, rows, now=NOW)
    last = first + timedelta(days=len(days) - 1)
    for d in range(len(days)):
        settle(engine, first + timedelta(days=d), NOW)
    with snapshot(engine) as conn:
        stmt = load(conn, m.merchant_no, first, last, now=NOW, zone=Z)
        lines = [(int(r.kind), int(r.amount_fen), int(r.fee_fen))
                 for r in st_repo.transaction_lines(conn, m.id, first, last)]
    assert stmt.totals.key() == totals_of(lines).key()
    assert stmt.totals.key() == stmt.settled.key()
    assert stmt.totals.net_fen == sum(line_net(*x) for x in lines)
    balance = stmt.carried_in_fen
    assert balance == 0
    for d in stmt.days:
        assert d["carried_in_fen"] == balance
        expected = max(0, balance + int(d["net_fen"]))  # the run pays only a positive balance
        assert int(d["payout_fen"]) == expected
        balance = balance + int(d["net_fen"]) - expected
        assert d["carried_out_fen"] == balance
    assert stmt.carried_out_fen == balance <= 0
    assert stmt.carried_in_fen + stmt.totals.net_fen == stmt.payout_fen + stmt.carried_out_fen
