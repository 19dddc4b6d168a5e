"""A negative payable balance (refunds above sales, carried to the next settlement) is explained where it is shown
(issue 18, item 4): `ledger check` and the demo summary. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Engine
from test_import_transactions import CUT, NOW, _write, shop  # noqa: F401  (shop is a fixture)
from typer.testing import CliRunner

from settleguard.cli.main import app as cli
from settleguard.imports.transactions import import_transactions
from settleguard.ledger import repository as ledger_repo
from settleguard.settlement.engine import settle

REFUNDS = ("N1,898330154990002,20000001,2026-11-20T10:00:00+08:00,sale,debit,1000\n"
           "N2,898330154990002,20000001,2026-11-20T11:00:00+08:00,refund,debit,3500\n"
           "N3,898330154990001,10000001,2026-11-20T11:00:00+08:00,sale,debit,9000\n")


def test_ledger_check_explains_a_negative_payable_balance_as_carried_over(
    shop: Engine, tmp_path: Path, db_url: str  # noqa: F811
) -> None:
    import_transactions(shop, _write(tmp_path, REFUNDS), cutoffs=CUT, now=NOW)
    settle(shop, date(2026, 11, 20), NOW)
    with shop.connect() as conn:
        assert ledger_repo.carried_negative(conn) == (1, -2505)  # the sale kept its 5 fen fee
    out = CliRunner().invoke(cli, ["--db", db_url, "ledger", "check"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())  # as read, whatever the terminal's width
    assert "账务平衡" in text
    assert "其中 1 个商户退款多于消费，净额为负（合计 -¥25.05），结转到下一结算日抵扣" in text
    assert "1 merchant(s) refunded more than they sold; their negative net (-¥25.05) is carried" in text
