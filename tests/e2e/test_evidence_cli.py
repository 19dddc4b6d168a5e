"""`settleguard evidence export|verify` as an operator runs them: the bundle holds what it should, verifies,
and one flipped byte or one changed file is detected and named; no full card number anywhere in it."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from test_cases_cli import failed_payout, open_case, run


def test_export_verify_and_tamper(sqlite_url: str, tmp_path: Path) -> None:
    f = failed_payout(sqlite_url, tmp_path)
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
    assert masked in members["contacts.csv"].decode()
    assert masked in members["bank_responses.json"].decode()
    summary = members["summary.html"].decode()
    assert summary.index("证据包") < summary.index("Evidence bundle")
    assert "户名不符" in summary
    assert "<script" not in summary
    assert "http" not in summary.replace("http-equiv", "")
    assert "3031" in members["bank_responses.json"].decode()
    payout_rows = list(csv.DictReader(io.StringIO(members["payouts.csv"].decode())))
    settled = list(csv.DictReader(io.StringIO(members["settlements.csv"].decode())))
    assert [r["id"] for r in payout_rows] == [str(f.payout_id)]
    assert payout_rows[0]["amount_fen"] == settled[0]["net_fen"]  # the sale of 1,234.56 less its fee
    assert int(settled[0]["sale_fen"]) == 123_456
    txn = members["transactions/2026-11-18.csv"].decode().splitlines()
    assert len(txn) == 2
    assert "123456" in txn[1]

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
