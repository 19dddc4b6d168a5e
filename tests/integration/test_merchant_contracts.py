"""Fee contracts with history (SQLite and PostgreSQL): a rate change from a day prices every business day at
the contract in force that day; changes need a reason and cannot re-price imported or settled days; the
history keeps the old and new rates, who and why."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from factories import Txn, import_rows, make_merchants, ref
from merchant_files import micro, write_csv
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.merchants.contracts import ContractRefused, change, history, in_force
from settleguard.merchants.onboarding import import_merchants
from settleguard.money import fee_fen
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind

BJ = ZoneInfo("Asia/Shanghai")
BEFORE = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # when the change is made
AFTER = datetime(2027, 1, 5, 2, 0, tzinfo=UTC)  # when December's transactions are imported and settled
DECEMBER = [date(2026, 12, d) for d in range(1, 32)]
_month = itertools.count()


def _settlement_fees(engine: Engine, merchant_id: int) -> dict[date, int]:
    s = t.settlements
    with engine.connect() as conn:
        return {d: int(f) for d, f in conn.execute(select(s.c.cycle_date, s.c.fee_fen).where(s.c.merchant_id ==
                                                                                         merchant_id))}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(change_day=st.integers(min_value=2, max_value=30), debit=st.integers(min_value=1, max_value=200),
       credit=st.integers(min_value=1, max_value=200), amount=st.integers(min_value=1, max_value=5_000_000))
def test_a_rate_change_mid_month_settles_each_day_at_the_rate_in_force_that_day(
        engine: Engine, vault: Vault, tmp_path: Path, change_day: int, debit: int, credit: int, amount: int) -> None:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)  # standard: debit 0.5 % capped at 20 yuan, credit 0.6 %
    effective = date(2026, 12, change_day)
    new_debit, new_credit = f"{debit / 100:g}", f"{credit / 100:g}"  # 0.01 % .. 2 %
    ch = change(engine, m.merchant_no, effective=effective.isoformat(), debit_rate=new_debit, debit_cap="none",
                credit_rate=new_credit, reason="合同续签 renewal", actor="alice", now=BEFORE)
    assert ch.old[0] == 5000
    rows = [Txn(ref(), m.merchant_no, m.terminal_no, datetime(d.year, d.month, d.day, 12, tzinfo=BJ), TxnKind.SALE,
                card, amount) for d in DECEMBER for card in (CardType.DEBIT, CardType.CREDIT)]
    import_rows(engine, tmp_path, rows, now=AFTER)
    for d in DECEMBER:
        settle(engine, d, AFTER)
    fees = _settlement_fees(engine, m.id)
    for d in DECEMBER:
        if d < effective:
            want = fee_fen(amount, 5000, 2000) + fee_fen(amount, 6000)
        else:
            want = fee_fen(amount, debit * 100) + fee_fen(amount, credit * 100)
        assert fees[d] == want, (d, effective)


def test_a_change_needs_a_reason_a_date_not_in_the_past_and_may_not_reprice_imported_days(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    with pytest.raises(ContractRefused, match="原因"):
        change(engine, m.merchant_no, effective="2026-12-10", debit_rate="0.6", reason=" ", actor="a", now=BEFORE)
    with pytest.raises(ContractRefused, match="早于今天"):
        change(engine, m.merchant_no, effective="2026-11-24", debit_rate="0.6", reason="r", actor="a", now=BEFORE)
    with pytest.raises(ContractRefused, match="相同"):
        change(engine, m.merchant_no, effective="2026-12-10", debit_rate="0.5", reason="r", actor="a", now=BEFORE)
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, datetime(2026, 12, 3, 12, tzinfo=BJ),
                                       TxnKind.SALE, CardType.DEBIT, 10_000)], now=AFTER)
    with pytest.raises(ContractRefused, match="2026-12-03"):  # its fee was computed under the old contract
        change(engine, m.merchant_no, effective="2026-12-02", debit_rate="0.6", reason="r", actor="a", now=BEFORE)
    with engine.connect() as conn:
        assert conn.execute(select(t.fee_contracts.c.id).where(t.fee_contracts.c.merchant_id == m.id)).all() == []
    change(engine, m.merchant_no, effective="2026-12-04", qr_rate="0.3", reason="促销 promotion", actor="bob",
           now=BEFORE)
    with pytest.raises(ContractRefused, match="已有"):
        change(engine, m.merchant_no, effective="2026-12-04", qr_rate="0.31", reason="r", actor="a", now=BEFORE)
    versions = history(engine, m.merchant_no)
    assert len(versions) == 2
    first, second = versions
    assert second.previous == first.rates
    assert (second.effective_from, second.actor, second.reason) == (date(2026, 12, 4), "bob", "促销 promotion")
    assert second.rates == (5000, 2000, 6000, 3000)
    assert in_force(versions, date(2026, 12, 3)) is first
    assert in_force(versions, date(2026, 12, 4)) is second
    with engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(t.audit_events.c.kind).where(
            t.audit_events.c.kind == "merchant.contract_change"))]
    assert kinds


def test_an_imported_merchant_has_its_registration_contract_in_the_history(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    i = 700 + next(_month)
    row = micro(i)
    import_merchants(engine, write_csv(tmp_path / "m.csv", [row]), vault=vault, now=BEFORE, actor="carol")
    (v,) = history(engine, row["merchant_no"])
    assert (v.effective_from, v.actor, v.rates, v.previous) == (date(2026, 11, 1), "carol", (5000, 2000, 6000, 3800),
                                                                None)
    change(engine, row["merchant_no"], effective=(BEFORE + timedelta(days=1)).date().isoformat(), credit_rate="0.55",
           reason="r", actor="dave", now=BEFORE)
    assert [x.actor for x in history(engine, row["merchant_no"])] == ["carol", "dave"]
