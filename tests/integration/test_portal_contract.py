"""A merchant sees its fee contract in the portal: the rates in force and a later change with its date."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from test_web_console import World, sign_in, world  # noqa: F401 - the fixture is used by name

from conftest import NOW
from factories import Txn, import_rows, ref
from settleguard.db import tables as t
from settleguard.merchants.contracts import change
from settleguard.settlement.model import CardType, TxnKind


def test_the_portal_shows_the_merchants_contract_and_its_changes(world: World) -> None:  # noqa: F811
    a = world.held_a.merchant
    effective = (NOW + timedelta(days=60)).date()
    change(world.engine, a.merchant_no, effective=effective.isoformat(), credit_rate="0.58", reason="续签 renewal",
           actor="oper", now=NOW)
    page = sign_in(world, "mera").get(f"/m/{a.id}")
    assert page.status_code == 200
    assert "费率合同" in page.text
    assert "0.58%" in page.text
    assert "0.6%" in page.text
    assert effective.isoformat() in page.text
    assert "续签 renewal" in page.text


def test_the_portal_shows_the_contracted_and_effective_rate_by_month_and_flags_a_rate_above_it(
        world: World, tmp_path: Path) -> None:  # noqa: F811
    a = world.held_a.merchant
    import_rows(world.engine, tmp_path, [Txn(ref(), a.merchant_no, a.terminal_no, NOW - timedelta(hours=30),
                                             TxnKind.SALE, CardType.CREDIT, 100_000),
                                         Txn(ref(), a.merchant_no, a.terminal_no, NOW - timedelta(hours=29),
                                             TxnKind.SALE, CardType.DEBIT, 100_000)], now=NOW)
    page = sign_in(world, "mera").get(f"/m/{a.id}")
    assert "月度费率" in page.text
    assert "高于合同" not in page.text  # charged as contracted: 0.6 % of 1,000 yuan
    assert "0.6%" in page.text
    tx = t.transactions
    with world.engine.begin() as conn:  # charged above the contract (e.g. a rate raised with no contract change)
        conn.execute(update(tx).where(tx.c.merchant_id == a.id, tx.c.card_type == int(CardType.CREDIT))
                     .values(fee_fen=tx.c.fee_fen + 180))
    page = sign_in(world, "mera").get(f"/m/{a.id}?lang=zh")
    assert "高于合同，请联系客户经理" in page.text
    assert "0.78%" in page.text  # (600 + 180) fen of 100,000 fen
    assert "（封顶 " in page.text
    assert "cap " not in page.text
    en = sign_in(world, "mera").get(f"/m/{a.id}?lang=en").text
    assert "Monthly rates" in en
    assert "（cap " in en
    assert "封顶 " not in en
