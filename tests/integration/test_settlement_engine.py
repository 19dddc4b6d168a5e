"""The settlement run on SQLite and PostgreSQL: it agrees with the pure reference computation, is
idempotent, carries non-positive balances, stays set-based, dates payouts on China business days and
refuses late transactions (settlement/engine.py, imports/transactions.py)."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, func, select

from conftest import NOW, count_statements
from factories import Merchant, Txn, import_rows, make_merchants, ref, write_csv
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.imports.transactions import ImportRejected, import_transactions
from settleguard.ledger import repository as ledger_repo
from settleguard.ledger.model import Account
from settleguard.merchants.repository import ensure_fee_schedules, fee_schedules
from settleguard.payouts.model import idempotency_key
from settleguard.settlement.calendar import is_business_day
from settleguard.settlement.engine import settle
from settleguard.settlement.model import (
    DEFAULT_SCHEDULES,
    CardType,
    CutOffs,
    Cycle,
    TxnKind,
    cycle_date,
    totals,
    value_date,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHEDULES = {s.code: s for s in DEFAULT_SCHEDULES}
DUMPED = ("settlement_runs", "settlements", "ledger_entries", "ledger_postings", "payouts", "payout_events")


def local(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), SHANGHAI)


def sale(m: Merchant, at: datetime, amount: int, card: CardType = CardType.CREDIT,
         kind: TxnKind = TxnKind.SALE) -> Txn:
    return Txn(ref(), m.merchant_no, m.terminal_no, at, kind, card, amount)


def dump(engine: Engine, names: tuple[str, ...] = DUMPED) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {n: sorted(tuple(r) for r in conn.execute(select(t.metadata.tables[n]))) for n in names}


def settlement_of(engine: Engine, merchant_id: int, day: date) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(t.settlements).where(t.settlements.c.merchant_id == merchant_id,
                                                       t.settlements.c.cycle_date == day)).first()
    return dict(row._mapping) if row else None


def payouts_of(engine: Engine, merchant_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(t.payouts).where(t.payouts.c.merchant_id == merchant_id).order_by(t.payouts.c.cycle_date))]


def unbalanced_entries(engine: Engine) -> list[tuple[int, int]]:
    lp = t.ledger_postings
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(lp.c.entry_id, func.sum(lp.c.amount_fen)).group_by(lp.c.entry_id)
            .having(func.sum(lp.c.amount_fen) != 0))]


def ledger_problems(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return ledger_repo.check(conn)


# --- the engine agrees with the pure reference computation ---------------------------------------------

_example_day = itertools.count()
kinds = st.sampled_from(list(TxnKind))
cards = st.sampled_from(list(CardType))
amounts = st.one_of(
    st.integers(1, 20_000),  # everyday tickets
    st.integers(390_000, 410_000),  # around the debit caps (small-micro 400,000 fen, standard 400,000 fen)
    st.integers(1, 10**10),  # up to 100 million yuan
)
seconds_of_day = st.one_of(
    st.integers(0, 86_399),
    st.integers(22 * 3600, 86_399),  # after one or both cut-offs: the next business day
    st.sampled_from([22 * 3600 - 1, 22 * 3600, 23 * 3600 - 1, 23 * 3600]),  # on the cut-offs
)
txn_specs = st.tuples(kinds, cards, amounts, seconds_of_day, st.booleans())
merchant_specs = st.tuples(st.sampled_from(list(Cycle)), st.sampled_from(sorted(SCHEDULES)),
                           st.lists(txn_specs, min_size=1, max_size=12))


# No shrink phase: shrinking replays hundreds of database examples (minutes). The falsifying example is
# still printed; add Phase.shrink locally to minimise it.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(specs=st.lists(merchant_specs, min_size=1, max_size=4))
def test_each_settlement_equals_the_pure_reference_totals_and_the_ledger_balances(
    engine: Engine, vault: Vault, tmp_path: Path,
    specs: list[tuple[Cycle, str, list[tuple[TxnKind, CardType, int, int, bool]]]],
) -> None:
    day = date(2026, 1, 5) + timedelta(days=3 * (next(_example_day) % 110))
    cutoffs = CutOffs(timezone="Asia/Shanghai")
    rows: list[Txn] = []
    expected: dict[tuple[int, date], list[tuple[TxnKind, CardType, int]]] = defaultdict(list)
    merchants: list[Merchant] = []
    with engine.begin() as conn:
        for cycle, schedule, _ in specs:
            merchants += make_merchants(conn, vault, 1, cycle=cycle, schedule=schedule)
    for m, (_, _, txns) in zip(merchants, specs, strict=True):
        for kind, card, amount, second, as_utc in txns:
            at = local(day, 0) + timedelta(seconds=second)
            if as_utc:
                at = at.astimezone(UTC)
            rows.append(Txn(ref(), m.merchant_no, m.terminal_no, at, kind, card, amount))
            expected[(m.id, cycle_date(at, m.cycle, cutoffs))].append((kind, card, amount))
    with engine.connect() as conn:
        platform_before = ledger_repo.totals(conn)  # the database is shared by the examples
    result = import_rows(engine, tmp_path, rows, now=NOW, cutoffs=cutoffs)
    days = sorted({d for _, d in expected})
    assert result.cycle_dates == days

    runs = {d: settle(engine, d, NOW) for d in days}

    carried = {m.id: 0 for m in merchants}
    for d in days:
        run_txns = [r for (mid, dd), rs in expected.items() if dd == d for r in rs]
        fees = sum(SCHEDULES[m.schedule].fee(k, c, a) for m in merchants for k, c, a in expected.get((m.id, d), []))
        gross = sum(a for k, _, a in run_txns if k is TxnKind.SALE)
        taken_back = sum(a for k, _, a in run_txns if k is not TxnKind.SALE)
        run = runs[d]
        assert run.txn_count == len(run_txns)
        assert run.fee_fen == fees
        assert run.net_fen == gross - taken_back - fees
        payouts_made = 0
        for m in merchants:
            txns = expected.get((m.id, d))
            row = settlement_of(engine, m.id, d)
            if txns is None:
                assert row is None
                continue
            ref_totals = totals(txns, SCHEDULES[m.schedule])
            assert row is not None
            assert (row["txn_count"], row["sale_fen"], row["void_fen"], row["refund_fen"], row["reversal_fen"],
                    row["fee_fen"], row["net_fen"]) == (
                ref_totals.txn_count, ref_totals.sale_fen, ref_totals.void_fen, ref_totals.refund_fen,
                ref_totals.reversal_fen, ref_totals.fee_fen, ref_totals.net_fen)
            assert (row["cycle"], row["value_date"]) == (str(m.cycle), value_date(d, m.cycle))
            payable = carried[m.id] + ref_totals.net_fen
            payout = [p for p in payouts_of(engine, m.id) if p["cycle_date"] == d]
            if payable > 0:
                assert [(p["amount_fen"], p["status"], p["idempotency_key"], p["value_date"]) for p in payout] == [
                    (payable, "created", idempotency_key(d.strftime("%Y%m%d"), m.id), value_date(d, m.cycle))]
                carried[m.id] = 0
                payouts_made += 1
            else:
                assert payout == []
                carried[m.id] = payable
        assert (run.payouts_created, run.carried_merchants) == (payouts_made, run.merchants_settled - payouts_made)

    # merchant_payable is kept per merchant; fee_income and clearing_receivable are
    # platform accounts, posted once per run.
    all_net = all_fee = 0
    with engine.connect() as conn:
        for m in merchants:
            bal = ledger_repo.balances(conn, m.id)
            settled_net = sum(totals(rs, SCHEDULES[m.schedule]).net_fen
                              for (mid, _), rs in expected.items() if mid == m.id)
            all_net += settled_net
            all_fee += sum(totals(rs, SCHEDULES[m.schedule]).fee_fen
                           for (mid, _), rs in expected.items() if mid == m.id)
            assert bal.get(Account.MERCHANT_PAYABLE, 0) == settled_net
            assert bal.get(Account.FEE_INCOME, 0) == 0
        platform = ledger_repo.totals(conn)
    def moved(account: Account) -> int:
        return platform.get(str(account), 0) - platform_before.get(str(account), 0)

    assert moved(Account.FEE_INCOME) == all_fee
    assert moved(Account.CLEARING_RECEIVABLE) == -(all_net + all_fee)
    assert unbalanced_entries(engine) == []
    assert ledger_problems(engine) == []


def test_the_importer_uses_the_fee_schedules_stored_in_the_database(engine: Engine) -> None:
    # the property above compares against the packaged schedules; make sure those are what is stored
    with engine.begin() as conn:
        ensure_fee_schedules(conn)
        stored = {s.code: dict(s.rates) for s in fee_schedules(conn).values()}
    assert stored == {s.code: dict(s.rates) for s in DEFAULT_SCHEDULES}


# --- idempotency -----------------------------------------------------------------------------------------

def test_settling_the_same_day_twice_changes_nothing(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    day = date(2026, 11, 18)
    with engine.begin() as conn:
        a, b, c = make_merchants(conn, vault, 3)
    import_rows(engine, tmp_path, [
        sale(a, local(day, 10), 123_456), sale(a, local(day, 11), 5_000, CardType.DEBIT),
        sale(b, local(day, 12), 3_000, kind=TxnKind.REFUND),  # net < 0: no payout, carried
        sale(c, local(day, 13), 800_000, CardType.DEBIT), sale(c, local(day, 14), 800_000, CardType.DEBIT,
                                                               TxnKind.VOID),
    ], now=NOW)
    first = settle(engine, day, NOW)
    assert first.merchants_settled == 3
    before = dump(engine)

    again = settle(engine, day, NOW + timedelta(hours=1))

    assert again.run_id == 0
    assert (again.merchants_settled, again.payouts_created, again.txn_count) == (0, 0, 0)
    assert dump(engine) == before


def test_a_day_with_nothing_to_settle_writes_nothing(engine: Engine) -> None:
    before = dump(engine)
    assert settle(engine, date(2026, 11, 18), NOW).run_id == 0
    assert dump(engine) == before


def test_a_merchant_whose_transactions_arrive_after_the_run_is_settled_by_a_second_run_alone(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    day = date(2026, 11, 18)
    with engine.begin() as conn:
        a, b = make_merchants(conn, vault, 2)
    import_rows(engine, tmp_path, [sale(a, local(day, 10), 10_000)], now=NOW)
    settle(engine, day, NOW)
    before = dump(engine)
    import_rows(engine, tmp_path, [sale(b, local(day, 10), 20_000)], now=NOW)

    second = settle(engine, day, NOW)

    assert (second.merchants_settled, second.payouts_created, second.txn_count) == (1, 1, 1)
    after = dump(engine)
    for name in DUMPED:
        assert set(before[name]) <= set(after[name])  # nothing earlier changed
    assert [p["amount_fen"] for p in payouts_of(engine, a.id)] == [10_000 - 60]
    assert [p["amount_fen"] for p in payouts_of(engine, b.id)] == [20_000 - 120]


# --- carry-over --------------------------------------------------------------------------------------------

def test_a_negative_day_is_carried_and_taken_off_the_next_payout(engine: Engine, vault: Vault,
                                                                 tmp_path: Path) -> None:
    mon, tue = date(2026, 11, 16), date(2026, 11, 17)
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    import_rows(engine, tmp_path, [sale(m, local(mon, 10), 5_000, kind=TxnKind.REFUND)], now=NOW)
    first = settle(engine, mon, NOW)
    assert (first.payouts_created, first.carried_merchants, first.net_fen) == (0, 1, -5_000)
    assert payouts_of(engine, m.id) == []
    with engine.connect() as conn:
        assert ledger_repo.balances(conn, m.id)[Account.MERCHANT_PAYABLE] == -5_000

    import_rows(engine, tmp_path, [sale(m, local(tue, 10), 100_000)], now=NOW)  # credit 0.6%: fee 600
    second = settle(engine, tue, NOW)

    tue_net = 100_000 - 600
    assert settlement_of(engine, m.id, tue)["net_fen"] == tue_net  # type: ignore[index]
    assert [(p["cycle_date"], p["amount_fen"]) for p in payouts_of(engine, m.id)] == [(tue, tue_net - 5_000)]
    assert (second.payouts_created, second.payout_fen, second.carried_merchants) == (1, tue_net - 5_000, 0)
    assert ledger_problems(engine) == []


def test_a_merchant_whose_net_is_exactly_zero_gets_no_payout(engine: Engine, vault: Vault,
                                                            tmp_path: Path) -> None:
    day = date(2026, 11, 18)
    with engine.begin() as conn:
        m, v = make_merchants(conn, vault, 2)
    import_rows(engine, tmp_path, [
        sale(m, local(day, 10), 10_000), sale(m, local(day, 11), 9_940, kind=TxnKind.REFUND),  # refund keeps 60
        sale(v, local(day, 10), 10_000), sale(v, local(day, 11), 10_000, kind=TxnKind.VOID),  # void returns 60
    ], now=NOW)

    run = settle(engine, day, NOW)

    for x in (m, v):
        assert settlement_of(engine, x.id, day)["net_fen"] == 0  # type: ignore[index]
        assert payouts_of(engine, x.id) == []
    assert (run.merchants_settled, run.payouts_created, run.carried_merchants) == (2, 0, 2)
    assert ledger_problems(engine) == []


def test_a_negative_day_after_an_unsent_payout_is_carried_without_touching_that_payout(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    d1, d2, d3 = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    import_rows(engine, tmp_path, [
        sale(m, local(d1, 10), 50_000),  # net 49,700
        sale(m, local(d2, 10), 8_000, kind=TxnKind.REFUND),  # net -8,000
        sale(m, local(d3, 10), 20_000),  # net 19,880
    ], now=NOW)
    for d in (d1, d2, d3):
        settle(engine, d, NOW)

    assert [(p["cycle_date"], p["amount_fen"]) for p in payouts_of(engine, m.id)] == [
        (d1, 49_700), (d3, 19_880 - 8_000)]
    assert ledger_problems(engine) == []


# --- set-based ---------------------------------------------------------------------------------------------

def _watch_parameters(engine: Engine) -> list[int]:
    rows: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        rows.append(len(parameters) if executemany else 1)

    return rows


def test_a_settlement_run_executes_the_same_statements_for_ten_or_two_thousand_transactions(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    small_day, big_day = date(2026, 11, 16), date(2026, 11, 17)
    with engine.begin() as conn:
        few = make_merchants(conn, vault, 2)
        many = make_merchants(conn, vault, 25)
    kinds = [TxnKind.SALE] * 7 + [TxnKind.VOID, TxnKind.REFUND, TxnKind.REVERSAL]
    import_rows(engine, tmp_path, [
        sale(few[i % 2], local(small_day, 9) + timedelta(minutes=i), 1_000 + i, CardType(i % 3 + 1), kinds[i % 10])
        for i in range(10)
    ], now=NOW)
    import_rows(engine, tmp_path, [
        sale(many[i % 25], local(big_day, 8) + timedelta(seconds=17 * i), 1_000 + i, CardType(i % 3 + 1),
             kinds[i % 10])
        for i in range(2_000)
    ], now=NOW)

    sql = count_statements(engine)
    params = _watch_parameters(engine)
    small = settle(engine, small_day, NOW)
    small_sql, small_rows = list(sql), sum(params)
    sql.clear()
    params.clear()
    big = settle(engine, big_day, NOW)

    assert (small.txn_count, big.txn_count) == (10, 2_000)
    assert (small.merchants_settled, big.merchants_settled) == (2, 25)
    assert len(sql) == len(small_sql)
    assert sum(params) == small_rows  # and no executemany whose size follows the data
    for stmt in small_sql + sql:
        assert not re.search(r"\bUPDATE\s+\"?transactions\b", stmt, re.IGNORECASE), stmt
        assert not re.search(r"\bDELETE\s+FROM\s+\"?transactions\b", stmt, re.IGNORECASE), stmt
    assert ledger_problems(engine) == []


# --- value dates and cut-offs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cycle", "day", "paid_on"), [
    pytest.param(Cycle.T1, date(2026, 11, 20), date(2026, 11, 23), id="T1-friday-pays-monday"),
    pytest.param(Cycle.T1, date(2026, 11, 18), date(2026, 11, 19), id="T1-wednesday-pays-thursday"),
    # National Day 2026: 10-01..10-07 off, 10-08 (Thursday) is a working day again.
    pytest.param(Cycle.T1, date(2026, 9, 30), date(2026, 10, 8), id="T1-before-national-day"),
    pytest.param(Cycle.T1, date(2026, 9, 24), date(2026, 9, 28), id="T1-before-mid-autumn"),
    # Make-up workdays (调休上班): Sunday 2026-09-20, Saturday 2026-10-10, Saturday 2026-02-14.
    pytest.param(Cycle.T1, date(2026, 9, 19), date(2026, 9, 20), id="T1-saturday-pays-make-up-sunday"),
    pytest.param(Cycle.T1, date(2026, 10, 9), date(2026, 10, 10), id="T1-friday-pays-make-up-saturday"),
    pytest.param(Cycle.T1, date(2026, 2, 14), date(2026, 2, 24), id="T1-spring-festival"),
    pytest.param(Cycle.D0, date(2026, 11, 22), date(2026, 11, 22), id="D0-sunday-pays-sunday"),
    pytest.param(Cycle.D0, date(2026, 10, 1), date(2026, 10, 1), id="D0-holiday-pays-same-day"),
])
def test_value_dates_follow_the_china_business_calendar(engine: Engine, vault: Vault, tmp_path: Path,
                                                        cycle: Cycle, day: date, paid_on: date) -> None:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1, cycle=cycle)
    import_rows(engine, tmp_path, [sale(m, local(day, 12), 10_000)], now=NOW)

    settle(engine, day, NOW)

    assert settlement_of(engine, m.id, day)["value_date"] == paid_on  # type: ignore[index]
    assert [p["value_date"] for p in payouts_of(engine, m.id)] == [paid_on]
    if cycle is Cycle.T1:
        assert is_business_day(paid_on)


def test_the_calendar_knows_2026_make_up_workdays_and_holidays() -> None:
    import chinese_calendar

    assert chinese_calendar.is_workday(date(2026, 9, 20))
    assert date(2026, 9, 20).weekday() == 6
    assert chinese_calendar.is_workday(date(2026, 10, 10))
    assert date(2026, 10, 10).weekday() == 5
    assert not chinese_calendar.is_workday(date(2026, 10, 7))
    assert all(is_business_day(d) == chinese_calendar.is_workday(d)
               for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365)))


@pytest.mark.parametrize(("cycle", "occurred_at", "expected"), [
    pytest.param(Cycle.T1, "2026-11-18T23:00:00+08:00", date(2026, 11, 19), id="T1-23:00-next-day"),
    pytest.param(Cycle.T1, "2026-11-18T22:59:59+08:00", date(2026, 11, 18), id="T1-22:59:59-same-day"),
    pytest.param(Cycle.T1, "2026-11-18T22:59:59.999999+08:00", date(2026, 11, 18), id="T1-last-microsecond"),
    pytest.param(Cycle.T1, "2026-11-18T15:00:00Z", date(2026, 11, 19), id="T1-utc-15:00-is-23:00-local"),
    pytest.param(Cycle.T1, "2026-11-18T14:59:59+00:00", date(2026, 11, 18), id="T1-utc-14:59:59"),
    pytest.param(Cycle.T1, "2026-11-18T09:59:59-05:00", date(2026, 11, 18), id="T1-new-york-22:59:59-shanghai"),
    pytest.param(Cycle.T1, "2026-11-18T10:00:00-05:00", date(2026, 11, 19), id="T1-new-york-23:00-shanghai"),
    pytest.param(Cycle.T1, "2026-11-19T00:00:00+08:00", date(2026, 11, 19), id="T1-midnight"),
    pytest.param(Cycle.T1, "2026-11-18 23:00:00+0800", date(2026, 11, 19), id="T1-space-and-basic-offset"),
    pytest.param(Cycle.T1, "2026-11-20T23:00:00+08:00", date(2026, 11, 21), id="T1-friday-23:00-saturday"),
    pytest.param(Cycle.D0, "2026-11-18T22:00:00+08:00", date(2026, 11, 19), id="D0-22:00-next-day"),
    pytest.param(Cycle.D0, "2026-11-18T21:59:59+08:00", date(2026, 11, 18), id="D0-21:59:59-same-day"),
])
def test_the_cut_off_decides_the_business_day(engine: Engine, vault: Vault, tmp_path: Path, cycle: Cycle,
                                              occurred_at: str, expected: date) -> None:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1, cycle=cycle)
    r = ref()
    res = import_rows(engine, tmp_path, [Txn(r, m.merchant_no, m.terminal_no, occurred_at, "sale", "qr", 5_000)],
                      now=NOW)

    assert res.cycle_dates == [expected]
    assert cycle_date(datetime.fromisoformat(occurred_at.replace("Z", "+00:00")), cycle, CutOffs(timezone="Asia/Shanghai")) == expected
    with engine.connect() as conn:
        stored = conn.execute(select(t.transactions.c.cycle_date).where(t.transactions.c.external_ref == r)).one()
    assert stored[0] == expected
    assert settle(engine, expected, NOW).txn_count == 1
    assert settlement_of(engine, m.id, expected)["value_date"] == value_date(expected, cycle)  # type: ignore[index]


def test_a_friday_sale_after_the_cut_off_is_still_paid_on_monday(engine: Engine, vault: Vault,
                                                                tmp_path: Path) -> None:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    import_rows(engine, tmp_path, [sale(m, local(date(2026, 11, 20), 22, 59, 59), 10_000),
                                   sale(m, local(date(2026, 11, 20), 23), 20_000)], now=NOW)
    settle(engine, date(2026, 11, 20), NOW)
    settle(engine, date(2026, 11, 21), NOW)
    assert [(p["cycle_date"], p["value_date"], p["amount_fen"]) for p in payouts_of(engine, m.id)] == [
        (date(2026, 11, 20), date(2026, 11, 23), 10_000 - 60),
        (date(2026, 11, 21), date(2026, 11, 23), 20_000 - 120),
    ]


# --- late transactions -------------------------------------------------------------------------------------

@pytest.mark.parametrize("late_at", [
    pytest.param(local(date(2026, 11, 18), 9), id="same-calendar-day"),
    pytest.param(local(date(2026, 11, 17), 23, 30), id="previous-evening-after-cut-off"),
])
def test_a_transaction_for_an_already_settled_merchant_day_is_rejected_with_its_line(
    engine: Engine, vault: Vault, tmp_path: Path, late_at: datetime,
) -> None:
    day = date(2026, 11, 18)
    with engine.begin() as conn:
        settled, other = make_merchants(conn, vault, 2)
    import_rows(engine, tmp_path, [sale(settled, local(day, 10), 10_000)], now=NOW)
    settle(engine, day, NOW)
    before = dump(engine, (*DUMPED, "transactions", "imports"))
    late = write_csv(tmp_path / "late.csv", [
        sale(other, local(day, 11), 7_000),  # line 2: another merchant, not settled yet: fine on its own
        sale(settled, local(day + timedelta(days=1), 9), 7_000),  # line 3: a later day: fine on its own
        sale(settled, late_at, 7_000),  # line 4: late
    ])

    with pytest.raises(ImportRejected) as caught:
        import_transactions(engine, late, cutoffs=CutOffs(timezone="Asia/Shanghai"), now=NOW)

    assert caught.value.line == 4
    assert "already settled" in caught.value.reason
    assert settled.merchant_no in caught.value.reason
    assert str(day) in caught.value.reason
    assert dump(engine, (*DUMPED, "transactions", "imports")) == before


def test_a_settled_day_still_accepts_transactions_of_merchants_not_settled_on_it(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    day = date(2026, 11, 18)
    with engine.begin() as conn:
        settled, other = make_merchants(conn, vault, 2)
    import_rows(engine, tmp_path, [sale(settled, local(day, 10), 10_000)], now=NOW)
    settle(engine, day, NOW)

    res = import_rows(engine, tmp_path, [sale(other, local(day, 11), 7_000)], now=NOW)

    assert res.rows == 1
    assert res.cycle_dates == [day]
