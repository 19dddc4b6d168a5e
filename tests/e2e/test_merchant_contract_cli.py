"""Contracts and terminals through the command line (a subprocess per command), on SQLite and PostgreSQL:
``merchants contract change`` refuses without a reason, keeps the history; ``merchants terminals retire`` makes
the transaction import report the terminal's later rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_merchants_cli import run

from merchant_files import micro, write_csv


def test_contract_change_and_terminal_retire_through_the_cli(db_url: str, tmp_path: Path) -> None:
    shop = micro(41)
    run(db_url, "merchants", "import", str(write_csv(tmp_path / "m.csv", [shop])), cwd=tmp_path)
    no = shop["merchant_no"]
    refused = run(db_url, "merchants", "contract", "change", no, "--effective", "2099-01-01", "--credit-rate", "0.7",
                  cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert "原因" in refused.stderr + refused.stdout
    out = json.loads(run(db_url, "merchants", "contract", "change", no, "--effective", "2099-01-01", "--credit-rate",
                         "0.7", "--reason", "涨价 rate rise", "--json", cwd=tmp_path).stdout)
    assert out["old"]["credit_rate"] == "0.6%"
    assert out["new"]["credit_rate"] == "0.7%"
    shown = json.loads(run(db_url, "merchants", "contract", "show", no, "--json", cwd=tmp_path).stdout)["contracts"]
    assert [(c["effective_from"], c["reason"]) for c in shown] == [("2026-11-01", "入网 onboarding"),
                                                                   ("2099-01-01", "涨价 rate rise")]

    run(db_url, "merchants", "terminals", "retire", no, shop["terminal_no"], "--reason", "撤机 returned", cwd=tmp_path)
    after = (datetime.now(UTC) + timedelta(seconds=30)).isoformat(timespec="seconds")  # after the retirement
    txns = tmp_path / "t.csv"
    txns.write_text("external_ref,merchant_no,terminal_no,occurred_at,kind,card_type,amount_fen\n"
                    f"R1,{no},{shop['terminal_no']},{after},sale,debit,1000\n", encoding="utf-8")
    bad = run(db_url, "import", "transactions", str(txns), cwd=tmp_path, check=False)
    assert bad.returncode != 0
    assert "终端已撤机" in bad.stdout + bad.stderr
