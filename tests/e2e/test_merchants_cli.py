"""Onboarding through the command line only, as a user runs it (a subprocess per command), on SQLite and
PostgreSQL: from an empty database to a paid merchant with ``merchants import``, ``import transactions``,
``settle``, ``payouts send`` and ``ledger check``; and the other ``merchants`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from merchant_files import debit_card, enterprise, individual, micro, write_csv

DAY = "2026-11-16"  # a Monday; T+1 merchants are paid on the 17th, D+0 merchants on the 16th


def run(db: str, *args: str, cwd: Path, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _transactions(path: Path, rows: list[tuple[str, str, str, str, int]]) -> Path:
    lines = ["external_ref,merchant_no,terminal_no,occurred_at,kind,card_type,amount_fen"]
    lines += [f"R{i:06d},{m},{t},{DAY}T{h}:00+08:00,sale,{card},{amount}" for i, (m, t, h, card, amount)
              in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_from_an_empty_database_to_a_paid_merchant_with_the_cli_and_files(db_url: str, tmp_path: Path) -> None:
    shop, company, diner = micro(1), enterprise(2), individual(3)
    rows = [shop, company, diner, micro(1, terminal_sn="SN0000001B", terminal_no="10000011")]
    merchants = write_csv(tmp_path / "商户入网.csv", rows)
    out = json.loads(run(db_url, "merchants", "import", str(merchants), "--json", cwd=tmp_path).stdout)
    assert out["registered"] == 3
    assert out["rows"] == 4

    txns = _transactions(tmp_path / "txns.csv", [
        (shop["merchant_no"], shop["terminal_no"], "10:00", "debit", 100_000),  # 0.5 % = 500 fen (cap 2000)
        (shop["merchant_no"], "10000011", "11:00", "credit", 20_000),  # 0.6 % = 120 fen
        (company["merchant_no"], company["terminal_no"], "12:00", "debit", 1_000_000),  # 0.55 %, no cap: 5500
        (diner["merchant_no"], diner["terminal_no"], "13:00", "qr", 50_000),  # 0.38 % = 190 fen
    ])
    assert json.loads(run(db_url, "import", "transactions", str(txns), "--json", cwd=tmp_path).stdout)["rows"] == 4
    settled = json.loads(run(db_url, "settle", "--date", DAY, "--json", cwd=tmp_path).stdout)
    assert settled["merchants_settled"] == 3
    assert settled["fee_fen"] == 500 + 120 + 5500 + 190  # the contracts' rates, the enterprise's without a cap
    for day in (DAY, "2026-11-17"):
        run(db_url, "payouts", "send", "--as-of", day, cwd=tmp_path)
    payouts = json.loads(run(db_url, "payouts", "list", "--json", "--limit", "100", cwd=tmp_path).stdout)
    net = {shop["merchant_no"]: 120_000 - 620, company["merchant_no"]: 1_000_000 - 5500,
           diner["merchant_no"]: 50_000 - 190}
    assert {p["merchant_no"]: p["amount_fen"] for p in payouts} == net
    paid = [p["merchant_no"] for p in payouts if p["status"] == "succeeded"]
    assert paid, payouts  # a merchant registered from the file was paid to its card
    assert json.loads(run(db_url, "ledger", "check", "--json", cwd=tmp_path).stdout) == {"ok": True, "problems": []}
    shown = json.loads(run(db_url, "merchants", "show", company["merchant_no"], "--json", cwd=tmp_path).stdout)
    assert shown["fee_effective_from"] == "2026-11-01"
    assert shown["fee_rates"]["debit"] == {"rate_ppm": 5500, "cap_fen": None}


def test_a_bad_file_prints_each_line_and_field_and_registers_nothing(db_url: str, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", [micro(1)])
    run(db_url, "merchants", "import", str(good), cwd=tmp_path)
    bad = write_csv(tmp_path / "bad.csv", [micro(2), micro(3, mcc="0001"), micro(4, card_no=debit_card(1))])
    proc = run(db_url, "merchants", "import", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "第 3 行 MCC" in proc.stderr
    assert "line 3, MCC" in proc.stderr
    assert "第 4 行 结算卡号/账号" in proc.stderr
    assert "898110058100001" in proc.stderr
    assert debit_card(1) not in proc.stderr + proc.stdout  # the card number is never printed in full
    listed = json.loads(run(db_url, "merchants", "list", "--json", cwd=tmp_path).stdout)
    assert [m["merchant_no"] for m in listed["merchants"]] == [micro(1)["merchant_no"]]


def test_add_show_list_freeze_unfreeze_close(db_url: str, tmp_path: Path) -> None:
    m = micro(7)
    run(db_url, "merchants", "add", "--merchant-no", m["merchant_no"], "--name", m["registered_name"], "--kind", "小微",
        "--legal-person", m["legal_person"], "--id", m["legal_person_id"], "--mcc", "5499", "--city", "上海",
        "--mobile", m["contact_mobile"], "--holder", m["holder_name"], "--holder-id", m["holder_id"], "--bank", "ICBC",
        "--terminal", "SN0000007A:10000070:PAX A920", "--terminal", "SN0000007B:10000071:PAX A910",
        "--effective", "2026-12-01", cwd=tmp_path, stdin=m["card_no"] + "\n")
    shown = run(db_url, "merchants", "show", m["merchant_no"], cwd=tmp_path).stdout
    assert "622200*********0079" in shown or "*" in shown
    assert m["card_no"] not in shown
    assert m["legal_person_id"] not in shown
    assert "110105********" in shown  # the ID number, masked
    data = json.loads(run(db_url, "merchants", "show", m["merchant_no"], "--json", cwd=tmp_path).stdout)
    assert [t["terminal_no"] for t in data["terminals"]] == ["10000070", "10000071"]
    assert m["card_no"] not in json.dumps(data)
    assert "legal_person_id_hash" not in data

    froze = json.loads(run(db_url, "merchants", "freeze", m["merchant_no"], "--reason", "风控核查 risk review", "--json",
                           cwd=tmp_path).stdout)
    assert froze == {"changed": True, "merchant_no": m["merchant_no"], "from": "active", "to": "frozen",
                     "reason": "风控核查 risk review"}
    assert json.loads(run(db_url, "merchants", "list", "--status", "frozen", "--json", cwd=tmp_path).stdout)["total"] == 1
    again = run(db_url, "merchants", "freeze", m["merchant_no"], "--reason", "x", cwd=tmp_path, check=False)
    assert again.returncode == 1
    assert "冻结" in again.stderr
    run(db_url, "merchants", "unfreeze", m["merchant_no"], "--reason", "核查通过 cleared", cwd=tmp_path)
    run(db_url, "merchants", "close", m["merchant_no"], "--reason", "商户申请注销 merchant asked", cwd=tmp_path)
    reopen = run(db_url, "merchants", "unfreeze", m["merchant_no"], "--reason", "x", cwd=tmp_path, check=False)
    assert reopen.returncode == 1
    events = json.loads(run(db_url, "audit", "list", "--json", cwd=tmp_path).stdout)
    kinds = [e["kind"] for e in (events if isinstance(events, list) else events["events"])]
    assert {"merchant.register", "merchant.freeze", "merchant.unfreeze", "merchant.close"} <= set(kinds)
    assert json.loads(run(db_url, "audit", "verify", "--json", cwd=tmp_path).stdout)["ok"] is True
