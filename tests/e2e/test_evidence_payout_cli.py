"""`settleguard evidence payout` and `evidence verify` as an operator runs them (a subprocess per command), on
SQLite and PostgreSQL: one payout's bundle verifies, names its payout, holds no full card number though the
bank echoed it, a flipped byte is found; an unknown payout is refused in Chinese and English and nothing is
written."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from test_cases_cli import Failed, failed_payout, run


@pytest.fixture
def failed(db_url: str, tmp_path: Path) -> Failed:
    return failed_payout(db_url, tmp_path)


def test_export_verify_and_tamper_a_payouts_bundle(failed: Failed, tmp_path: Path) -> None:
    f = failed
    out = tmp_path / "payout.zip"
    res = run(f.db, "evidence", "payout", str(f.payout_id), "--out", str(out), cwd=tmp_path)
    assert "已导出出款凭证" in res.stdout
    assert "payout evidence written" in res.stdout
    with zipfile.ZipFile(out) as z:
        members = {n: z.read(n) for n in z.namelist()}
    assert {"manifest.json", "summary.html", "payout.json", "attempts.csv", "attempts.json", "payout_events.csv",
            "settlement.csv", "transactions/2026-11-18.csv", "ledger_entries.csv", "ledger_postings.csv", "cards.csv",
            "notices.json", "notices.csv"} == set(members)
    assert json.loads(members["manifest.json"])["payout_id"] == f.payout_id
    masked = f.pan[:6] + "*" * (len(f.pan) - 10) + f.pan[-4:]
    assert f.pan.encode() not in out.read_bytes()
    assert all(f.pan.encode() not in data for data in members.values())
    assert masked in members["attempts.json"].decode()  # the bank's echo of the card number, masked
    assert "3031" in members["attempts.csv"].decode()

    ok = run(f.db, "evidence", "verify", str(out), cwd=tmp_path)
    assert f"出款 payout {f.payout_id}" in ok.stdout
    # export and verify count the same files, and say the manifest is not among them (issue 18: 23 vs 22)
    counted = f"{len(members) - 1} 个文件（另有清单 manifest.json）{len(members) - 1} files plus manifest.json"
    assert counted in res.stdout
    assert counted in ok.stdout
    # the CSVs open in Excel: UTF-8 with a BOM, "中文 english" headers, 元, Beijing time, the merchant's number
    for name, data in members.items():
        assert data.startswith(codecs.BOM_UTF8) is name.endswith(".csv"), name
    rows = list(csv.DictReader(io.StringIO(members["transactions/2026-11-18.csv"].decode("utf-8-sig"))))
    assert [(r["商户编号 merchant_no"], r["金额(元) amount_yuan"], r["交易时间 occurred_at"]) for r in rows] == [
        (f.merchant_no, "1234.56", "2026-11-18 12:00:00+08:00")]
    (attempt,) = csv.DictReader(io.StringIO(members["attempts.csv"].decode("utf-8-sig")))
    assert attempt["金额(元) amount_yuan"] == "1229.87"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00", attempt["请求时间 requested_at"])
    doc = json.loads(run(f.db, "evidence", "verify", str(out), "--json", cwd=tmp_path).stdout)
    assert (doc["ok"], doc["payout_id"], doc["case_id"]) == (True, f.payout_id, None)
    again = tmp_path / "again.zip"
    meta = json.loads(run(f.db, "evidence", "payout", str(f.payout_id), "--out", str(again), "--json",
                          cwd=tmp_path).stdout)
    assert (meta["payout_id"], meta["redacted"], meta["size"]) == (f.payout_id, 2, again.stat().st_size)

    with zipfile.ZipFile(out) as z:
        info = z.getinfo("attempts.json")
    raw = bytearray(out.read_bytes())
    raw[info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2] ^= 0x01
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    bad = run(f.db, "evidence", "verify", str(flipped), cwd=tmp_path, check=False)
    assert bad.returncode == 1
    assert "attempts.json" in bad.stderr


def test_an_unknown_payout_is_refused_and_nothing_written(failed: Failed, tmp_path: Path) -> None:
    out = tmp_path / "none.zip"
    res = run(failed.db, "evidence", "payout", "999999", "--out", str(out), cwd=tmp_path, check=False)
    assert res.returncode == 1
    assert "没有出款 999999" in res.stderr
    assert "no payout 999999" in res.stderr
    assert not out.exists()
    assert not list(tmp_path.glob("none.zip*"))
