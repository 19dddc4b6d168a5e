"""`settleguard statements export` as an operator runs it (a subprocess per command), on SQLite and PostgreSQL: the
xlsx and the CSV of a merchant whose payout is held (户名不符) name the held money and why, the CSV has a BOM;
an unknown merchant, a start after the end and a period over 366 days are refused in Chinese then English naming
what was typed, and nothing is written."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import openpyxl
from test_cases_cli import failed_payout, run
from typer.testing import CliRunner

from settleguard.cli.main import app as cli


def test_statements_export_xlsx_csv_and_refusals(db_url: str, tmp_path: Path) -> None:
    f = failed_payout(db_url, tmp_path)  # two merchants settled for 2026-11-18; the first one's payout held
    res = run(f.db, "statements", "export", f.merchant_no, "--from", "2026-11-01", "--to", "2026-11-30", cwd=tmp_path)
    out = tmp_path / f"statement_{f.merchant_no}_20261101_20261130.xlsx"
    assert "已导出对账单" in res.stdout
    assert "statement written" in res.stdout
    assert out.name in res.stdout
    assert "当前挂账 held now ¥1,229.87" in res.stdout  # the sale of 1,234.56 less its fee, held
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["汇总 Summary", "交易明细 Transactions", "出款 Payouts"]
    (payout,) = [r for r in wb["出款 Payouts"].iter_rows(min_row=2, values_only=True) if str(r[0]).startswith("SG")]
    assert payout[5] == "挂账 held"
    assert "银行卡信息错误" in payout[7]
    assert f.pan not in out.read_bytes().decode("latin-1")

    csv_out = tmp_path / "s.csv"
    doc = json.loads(run(f.db, "statements", "export", f.merchant_no, "--from", "2026-11-18", "--to", "2026-11-18",
                         "--format", "csv", "--out", str(csv_out), "--json", cwd=tmp_path).stdout)
    assert (doc["path"], doc["transactions"], doc["held_now_fen"]) == (str(csv_out), 1, 122_987)
    assert csv_out.read_bytes().startswith(codecs.BOM_UTF8)
    assert "1234.56" in csv_out.read_text(encoding="utf-8-sig")

    bad = run(f.db, "statements", "export", "898100058129999", "--from", "2026-11-01", "--to", "2026-11-30", "--out",
              str(tmp_path / "bad.xlsx"), cwd=tmp_path, check=False)
    assert bad.returncode == 1
    assert "错误 没有商户编号为「898100058129999」的商户\nError no merchant with merchant no. '898100058129999'" in bad.stderr
    assert not (tmp_path / "bad.xlsx").exists()
    # the period's refusals in-process (the same command, without a process start each)
    for args, zh, en, code in (
        ([f.merchant_no, "--from", "2026-11-30", "--to", "2026-11-01"], "开始日期 --from 2026-11-30 晚于结束日期 --to 2026-11-01",
         "the start --from 2026-11-30 is after the end --to 2026-11-01", 2),
        ([f.merchant_no, "--from", "2025-01-01", "--to", "2026-11-30"], "共 699 天，超过上限 366 天",
         "has 699 days, more than 366", 2),
        ([f.merchant_no, "--from", "2026/11/01", "--to", "2026-11-30"], "--from 的值「2026/11/01」不是有效日期",
         "--from '2026/11/01' is not a valid date", 2),
    ):
        got = CliRunner().invoke(cli, ["--db", f.db, "statements", "export", *args, "--out", str(tmp_path / "bad.xlsx")])
        err = " ".join(got.output.split())
        assert got.exit_code == code, got.output
        assert zh in err
        assert en in err
        assert err.index("错误") < err.index("Error")
        assert not (tmp_path / "bad.xlsx").exists()
