"""The fee audit (费率稽核, issue 22 item 4) on SQLite and PostgreSQL: every transaction's fee recomputed from the
contract in force on its business day; planted over- and undercharges found exactly, to the fen; a rate raised
in the fee schedule with no contract change behind it is a finding from the first day it was charged; a clean
import has no finding (the import and the audit share one fee formula)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from factories import Txn, import_rows, make_merchants, ref
from merchant_files import micro, write_csv
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.fees.audit import run
from settleguard.fees.model import AuditRefused
from settleguard.fees.rates import monthly_rates
from settleguard.merchants.contracts import change
from settleguard.merchants.onboarding import import_merchants
from settleguard.money import fee_fen
from settleguard.settlement.model import CardType, TxnKind

BJ = ZoneInfo("Asia/Shanghai")
BEFORE = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
AFTER = datetime(2027, 1, 5, 2, 0, tzinfo=UTC)
DAYS = [date(2026, 12, d) for d in range(1, 11)]
KINDS = [TxnKind.SALE, TxnKind.SALE, TxnKind.SALE, TxnKind.VOID, TxnKind.REFUND, TxnKind.REVERSAL]


def _rows(merchants: list, draw_amounts: list[int]) -> list[Txn]:
    out = []
    for i, amount in enumerate(draw_amounts):
        m = merchants[i % len(merchants)]
        d = DAYS[i % len(DAYS)]
        out.append(Txn(ref(), m.merchant_no, m.terminal_no, datetime(d.year, d.month, d.day, 11, tzinfo=BJ),
                       KINDS[i % len(KINDS)], list(CardType)[i % 3], amount))
    return out


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(amounts=st.lists(st.integers(min_value=1, max_value=3_000_000), min_size=12, max_size=40),
       change_day=st.integers(min_value=2, max_value=9), new_credit=st.integers(min_value=1, max_value=150),
       planted=st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(min_value=-500,
                                                                                          max_value=500)),
                        max_size=6))
def test_the_audit_finds_exactly_the_planted_differences_to_the_fen(
        engine: Engine, vault: Vault, tmp_path: Path, amounts: list[int], change_day: int, new_credit: int,
        planted: list[tuple[int, int]]) -> None:
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 3)
    # one merchant changes its credit rate from a day in the period: its rows are priced by two contracts
    change(engine, ms[0].merchant_no, effective=DAYS[change_day - 1].isoformat(), credit_rate=f"{new_credit / 100:g}",
           reason="合同续签 renewal", actor="alice", now=BEFORE)
    import_rows(engine, tmp_path, _rows(ms, amounts), now=AFTER)
    ours = {m.id for m in ms}  # hypothesis reuses the database across examples: this example's merchants only

    def audit() -> dict[int, list[int]]:
        return {a.merchant_id: [a.overcharged_fen, a.undercharged_fen, a.transactions]
                for a in run(engine, DAYS[0], DAYS[-1]) if a.merchant_id in ours}

    assert audit() == {}  # the import charged every contract exactly
    tx = t.transactions
    with engine.connect() as conn:
        keys = conn.execute(select(tx.c.cycle_date, tx.c.merchant_id, tx.c.external_ref)
                            .where(tx.c.merchant_id.in_(ours)).order_by(tx.c.external_ref)).all()
    want: dict[int, list[int]] = {}
    changed: dict[tuple, int] = {}
    for pick, delta in planted:
        if delta == 0:
            continue
        key = tuple(keys[pick % len(keys)])
        changed[key] = changed.get(key, 0) + delta
    with engine.begin() as conn:
        for (day, mid, xref), delta in changed.items():
            conn.execute(update(tx).where(tx.c.cycle_date == day, tx.c.merchant_id == mid, tx.c.external_ref == xref)
                         .values(fee_fen=tx.c.fee_fen + delta))
    for (_, mid, _), delta in changed.items():
        if delta:
            w = want.setdefault(mid, [0, 0, 0])
            w[0] += max(delta, 0)
            w[1] += max(-delta, 0)
            w[2] += 1
    assert audit() == want


def test_a_rate_raised_in_the_schedule_without_a_contract_is_found_from_the_day_it_was_charged(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    row = micro(811)
    import_merchants(engine, write_csv(tmp_path / "m.csv", [row]), vault=vault, now=BEFORE, actor="carol")
    with engine.connect() as conn:
        mid, sid, term = conn.execute(select(t.merchants.c.id, t.merchants.c.fee_schedule_id, t.terminals.c.terminal_no)
                                      .join(t.terminals, t.terminals.c.merchant_id == t.merchants.c.id)
                                      .where(t.merchants.c.merchant_no == row["merchant_no"])).one()
    day = [Txn(ref(), row["merchant_no"], term, datetime(2026, 12, 1, 10, tzinfo=BJ), TxnKind.SALE, CardType.CREDIT,
               100_000)]
    import_rows(engine, tmp_path, day, now=AFTER)
    with engine.begin() as conn:  # someone raises the credit rate in the schedule itself: 0.6 % -> 0.78 %
        conn.execute(update(t.fee_rates).where(t.fee_rates.c.schedule_id == sid,
                                               t.fee_rates.c.card_type == int(CardType.CREDIT)).values(rate_ppm=7800))
    later = [Txn(ref(), row["merchant_no"], term, datetime(2026, 12, 2, 10, tzinfo=BJ), TxnKind.SALE, CardType.CREDIT,
                 100_000) for _ in range(3)]
    import_rows(engine, tmp_path, later, now=AFTER)
    (a,) = run(engine, date(2026, 12, 1), date(2026, 12, 2))
    assert a.merchant_id == mid
    assert a.transactions == 3
    assert a.overcharged_fen == 3 * (fee_fen(100_000, 7800) - fee_fen(100_000, 6000))
    assert a.undercharged_fen == 0
    (drift,) = a.drifts
    assert (drift.contracted.credit_ppm, drift.charged.credit_ppm, drift.first_day) == (6000, 7800, date(2026, 12, 2))
    months = monthly_rates(engine, row["merchant_no"], months=1, today=date(2026, 12, 31))
    (credit,) = [r for r in months if r.card_type == int(CardType.CREDIT)]
    assert credit.contracted_ppm == 6000
    assert credit.effective_ppm == round((fee_fen(100_000, 6000) + 3 * fee_fen(100_000, 7800)) * 1e6 / 400_000)
    assert not credit.matches


def test_the_cli_reports_json_exit_codes_and_refuses_bad_periods_in_chinese_first(
        db_url: str, tmp_path: Path, vault: Vault, engine: Engine) -> None:
    from settleguard.cli.main import app

    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, datetime(2026, 12, 3, 9, tzinfo=BJ),
                                       TxnKind.SALE, CardType.DEBIT, 50_000)], now=AFTER)
    env = {"SETTLEGUARD_DB": db_url, "SETTLEGUARD_KEY_FILE": str(tmp_path / "k.key"), "COLUMNS": "160"}
    runner = CliRunner()
    clean = runner.invoke(app, ["fees", "audit", "--from", "2026-12-01", "--to", "2026-12-31", "--json"], env=env)
    assert (clean.exit_code, json.loads(clean.output)) == (0, [])
    tx = t.transactions
    with engine.begin() as conn:
        conn.execute(update(tx).where(tx.c.merchant_id == m.id).values(fee_fen=tx.c.fee_fen + 12))
    found = runner.invoke(app, ["fees", "audit", "--from", "2026-12-01", "--to", "2026-12-31", "--json"], env=env)
    assert found.exit_code == 1
    (item,) = json.loads(found.output)
    assert {k: item[k] for k in ("merchant_no", "overcharged_fen", "undercharged_fen", "transactions")} == {
        "merchant_no": m.merchant_no, "overcharged_fen": 12, "undercharged_fen": 0, "transactions": 1}
    assert item["differences"][0]["charged_fen"] - item["differences"][0]["contracted_fen"] == 12
    table = runner.invoke(app, ["fees", "audit", "--from", "2026-12-01", "--to", "2026-12-31"], env=env)
    assert table.exit_code == 1
    assert "多收 overcharged" in table.output
    assert "¥0.12" in table.output
    bad = runner.invoke(app, ["fees", "audit", "--from", "2026-12-31", "--to", "2026-12-01"], env=env)
    assert bad.exit_code == 2
    text = bad.output + (bad.stderr if bad.stderr_bytes is not None else "")
    assert text.index("早于开始日期") < text.index("before the start date")
    with pytest.raises(AuditRefused, match="366"):
        run(engine, date(2025, 1, 1), date(2026, 12, 31))
    with pytest.raises(AuditRefused, match="不存在"):
        run(engine, date(2026, 12, 1), date(2026, 12, 2), merchant_no="NOPE")


def test_a_merchant_switched_to_a_dearer_schedule_with_no_contract_is_found(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.merchants.repository import switch_schedule

    row = micro(812)
    import_merchants(engine, write_csv(tmp_path / "m.csv", [row]), vault=vault, now=BEFORE, actor="carol")
    with engine.connect() as conn:
        term = conn.execute(select(t.terminals.c.terminal_no).join(t.merchants, t.merchants.c.id ==
                                                                   t.terminals.c.merchant_id)
                            .where(t.merchants.c.merchant_no == row["merchant_no"])).scalar_one()
    with engine.begin() as conn:  # the back office moves the merchant to a dearer schedule, no contract change
        assert switch_schedule(conn, row["merchant_no"], 1000) == (6000, 7000)
    import_rows(engine, tmp_path, [Txn(ref(), row["merchant_no"], term, datetime(2026, 12, 7, 10, tzinfo=BJ),
                                       TxnKind.SALE, CardType.CREDIT, 200_000)], now=AFTER)
    found = [a for a in run(engine, date(2026, 12, 7), date(2026, 12, 7)) if a.merchant_no == row["merchant_no"]]
    (a,) = found
    assert (a.transactions, a.overcharged_fen) == (1, fee_fen(200_000, 7000) - fee_fen(200_000, 6000))
    (drift,) = a.drifts
    assert (drift.contracted.credit_ppm, drift.charged.credit_ppm, drift.first_day) == (6000, 7000, date(2026, 12, 7))


def test_a_contract_superseded_before_the_period_is_not_reported_as_a_rate_change(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    row = micro(813)
    import_merchants(engine, write_csv(tmp_path / "m.csv", [row]), vault=vault, now=BEFORE, actor="carol")
    change(engine, row["merchant_no"], effective="2026-12-05", credit_rate="0.55", reason="续签 renewal", actor="a",
           now=BEFORE)
    with engine.connect() as conn:
        first_schedule, term = conn.execute(
            select(t.fee_contracts.c.schedule_id, t.terminals.c.terminal_no)
            .join(t.merchants, t.merchants.c.id == t.fee_contracts.c.merchant_id)
            .join(t.terminals, t.terminals.c.merchant_id == t.merchants.c.id)
            .where(t.merchants.c.merchant_no == row["merchant_no"]).order_by(t.fee_contracts.c.effective_from)).first()
    import_rows(engine, tmp_path, [Txn(ref(), row["merchant_no"], term, datetime(2026, 12, 8, 10, tzinfo=BJ),
                                       TxnKind.SALE, CardType.CREDIT, 100_000)], now=AFTER)
    with engine.begin() as conn:  # the old contract's (shared) schedule is edited after the merchant left it
        conn.execute(update(t.fee_rates).where(t.fee_rates.c.schedule_id == first_schedule,
                                               t.fee_rates.c.card_type == int(CardType.CREDIT)).values(rate_ppm=9000))
    ours = [a for a in run(engine, date(2026, 12, 8), date(2026, 12, 8)) if a.merchant_no == row["merchant_no"]]
    assert ours == []  # charged 0.55 % as its contract in force says; the old contract is not in force then
    before = [a for a in run(engine, date(2026, 12, 1), date(2026, 12, 8)) if a.merchant_no == row["merchant_no"]]
    (a,) = before  # a period the old contract was in force: its schedule's edit is a finding
    assert [(d.contracted.credit_ppm, d.charged.credit_ppm) for d in a.drifts] == [(6000, 9000)]
    assert a.transactions == 0
