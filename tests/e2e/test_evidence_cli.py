"""`settleguard evidence export|verify` as an operator runs them, on SQLite and PostgreSQL: the bundle holds
what it should, verifies, and one flipped byte or one changed file is detected and named; no full card number
anywhere in it; export and verify count its files alike; its CSVs open in Excel (UTF-8 with a BOM, "中文
english" headers, 元, Beijing time, merchant numbers)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from pathlib import Path

from test_cases_cli import failed_payout, open_case, run


def table(data: bytes) -> list[dict[str, str]]:
    """A CSV member as rows keyed by each column's English name (its header is "中文 english_name")."""
    assert data.startswith(codecs.BOM_UTF8)
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    names = [h.rsplit(" ", 1)[-1] for h in next(reader)]
    return [dict(zip(names, row, strict=True)) for row in reader]


def test_export_verify_and_tamper(db_url: str, tmp_path: Path) -> None:
    f = failed_payout(db_url, tmp_path)
    cid = open_case(f, tmp_path)
    run(f.db, "cases", "contact", str(cid), "--party", "bank_support", "--method", "phone", "--who",
        "工行客服 95588 工号1234", "--said", f"客服核对卡号 {f.pan} 户名不符", cwd=tmp_path)
    out = tmp_path / "case.zip"
    run(f.db, "evidence", "export", str(cid), "--out", str(out), cwd=tmp_path)

    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        members = {n: z.read(n) for n in names}
    assert names == sorted(names)
    for expected in ("manifest.json", "summary.html", "case.json", "bank_responses.json", "attempts.csv",
                     "attempts.json", "payouts.csv", "payout_events.csv", "settlements.csv", "ledger_entries.csv",
                     "ledger_postings.csv", "contacts.csv", "notes.csv", "cards/settlement_accounts.csv",
                     "cards/card_events.csv", "cards/card_verifications.csv", "transactions/2026-11-18.csv"):
        assert expected in names, expected
    manifest = json.loads(members["manifest.json"])
    assert manifest["case_id"] == cid
    assert manifest["generator"].startswith("settleguard ")
    assert [x["name"] for x in manifest["files"]] == sorted(n for n in names if n != "manifest.json")
    # no full card number anywhere: not in the zip's bytes, not in any member, though the bank echoed it and
    # the operator typed it; its mask is there instead
    blob = out.read_bytes()
    assert f.pan.encode() not in blob
    assert all(f.pan.encode() not in data for data in members.values())
    masked = f.pan[:6] + "*" * (len(f.pan) - 10) + f.pan[-4:]
    assert masked in members["contacts.csv"].decode("utf-8-sig")
    assert masked in members["bank_responses.json"].decode()
    summary = members["summary.html"].decode()
    assert summary.index("证据包") < summary.index("Evidence bundle")
    assert "户名不符" in summary
    assert "<script" not in summary
    assert "http" not in summary.replace("http-equiv", "")
    assert "3031" in members["bank_responses.json"].decode()
    payout_rows = table(members["payouts.csv"])
    settled = table(members["settlements.csv"])
    assert [r["payout_id"] for r in payout_rows] == [str(f.payout_id)]
    assert payout_rows[0]["amount_yuan"] == settled[0]["net_yuan"]  # the sale of 1,234.56 less its fee
    assert settled[0]["sale_yuan"] == "1234.56"
    assert payout_rows[0]["settlement_id"] == settled[0]["settlement_id"]
    txn = table(members["transactions/2026-11-18.csv"])
    assert [(r["merchant_no"], r["amount_yuan"], r["kind"]) for r in txn] == [(f.merchant_no, "1234.56", "消费 sale")]

    ok = run(f.db, "evidence", "verify", str(out), "--json", cwd=tmp_path)
    assert json.loads(ok.stdout)["ok"] is True

    # flip one byte inside summary.html's compressed data
    with zipfile.ZipFile(out) as z:
        info = z.getinfo("summary.html")
    raw = bytearray(blob)
    header = 30 + len(info.filename.encode()) + len(info.extra)
    pos = info.header_offset + header + info.compress_size // 2
    raw[pos] ^= 0x01
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    bad = run(f.db, "evidence", "verify", str(flipped), cwd=tmp_path, check=False)
    assert bad.returncode == 1
    assert "summary.html" in bad.stderr
    assert "changed" in bad.stderr

    # change one file (a well-formed zip, one member's content altered)
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(changed, "w") as z:
        for n in names:
            data = members[n]
            if n == "contacts.csv":
                data = data.replace("户名不符".encode(), "户名相符".encode())
            z.writestr(n, data)
    res = run(f.db, "evidence", "verify", str(changed), "--json", cwd=tmp_path, check=False)
    assert res.returncode == 1
    assert json.loads(res.stdout)["changed"] == ["contacts.csv"]


COUNT = re.compile(r"(\d+) 个文件（另有清单 manifest.json）(\d+) files plus manifest.json")
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00")


def test_export_and_verify_count_the_same_files_and_say_what_is_counted(db_url: str, tmp_path: Path) -> None:
    """Issue 18: export said 23 files (the manifest counted), verify 22 (not counted)."""
    f = failed_payout(db_url, tmp_path)
    cid = open_case(f, tmp_path)
    out = tmp_path / "case.zip"
    exported = run(f.db, "evidence", "export", str(cid), "--out", str(out), cwd=tmp_path).stdout
    verified = run(f.db, "evidence", "verify", str(out), cwd=tmp_path).stdout
    with zipfile.ZipFile(out) as z:
        members = len(z.namelist())
    said = [COUNT.search(text) for text in (exported, verified)]
    assert all(said), (exported, verified)
    counts = {int(n) for m in said if m for n in m.groups()}
    assert counts == {members - 1}, (exported, verified)
    meta = json.loads(run(f.db, "evidence", "export", str(cid), "--out", str(out), "--json", cwd=tmp_path).stdout)
    report = json.loads(run(f.db, "evidence", "verify", str(out), "--json", cwd=tmp_path).stdout)
    assert meta["file_count"] == len(meta["files"]) == report["listed"] == report["checked"] == members - 1
    assert "manifest.json" not in meta["files"]

    payout_zip = tmp_path / "payout.zip"
    exported = run(f.db, "evidence", "payout", str(f.payout_id), "--out", str(payout_zip), cwd=tmp_path).stdout
    verified = run(f.db, "evidence", "verify", str(payout_zip), cwd=tmp_path).stdout
    with zipfile.ZipFile(payout_zip) as z:
        members = len(z.namelist())
    said = [COUNT.search(text) for text in (exported, verified)]
    assert all(said)
    assert {int(n) for m in said if m for n in m.groups()} == {members - 1}


def test_the_case_bundles_csvs_open_in_excel_in_yuan_and_beijing_time(db_url: str, tmp_path: Path) -> None:
    """Issue 18: no BOM (mojibake in Excel), amounts in fen, internal merchant ids, UTC times with microseconds."""
    f = failed_payout(db_url, tmp_path)
    cid = open_case(f, tmp_path)
    run(f.db, "cases", "contact", str(cid), "--party", "bank_support", "--method", "phone", "--who", "工行客服",
        "--said", "户名不符", "--at", "2026-11-19T10:15", cwd=tmp_path)
    out = tmp_path / "case.zip"
    run(f.db, "evidence", "export", str(cid), "--out", str(out), cwd=tmp_path)
    with zipfile.ZipFile(out) as z:
        members = {n: z.read(n) for n in z.namelist()}
    csvs = [n for n in members if n.endswith(".csv")]
    assert len(csvs) >= 11
    for name, data in members.items():
        assert data.startswith(codecs.BOM_UTF8) is name.endswith(".csv"), name
    for name in csvs:
        header = next(csv.reader(io.StringIO(members[name].decode("utf-8-sig"))))
        for h in header:
            zh, _, en = h.rpartition(" ")
            assert re.match(r"[\u4e00-\u9fff]", zh), (name, h)
            assert re.fullmatch(r"[a-z][a-z0-9_]*", en), (name, h)
            assert not en.endswith("_fen"), (name, h)
            assert en not in ("merchant_id", "terminal_id", "id"), (name, h)
        for r in table(members[name]):
            for col, v in r.items():
                if col.endswith("_yuan"):
                    assert re.fullmatch(r"-?\d+\.\d\d", v), (name, col, v)
                if (col.endswith("_at") or col == "at") and v:
                    assert TIME.fullmatch(v), (name, col, v)
                if col == "merchant_no" and v:
                    assert v == f.merchant_no, (name, v)
    (contact,) = table(members["contacts.csv"])
    assert contact["at"] == "2026-11-19 10:15:00+08:00"  # typed in local time, shown in local time
    summary = members["summary.html"].decode()
    assert "2026-11-19 10:15:00+08:00" in summary
    assert f"{len(members) - 1} 个文件（另有清单 manifest.json）" in summary
