"""One payout's evidence bundle (evidence/payout.py; ``GET /api/v1/payouts/{id}/evidence``, the portal's
link to it) on SQLite and PostgreSQL: what it holds, that it verifies and any changed byte is found, that no
full card number, phone number, webhook secret or webhook token is in it, that it holds only its merchant's
data, and that a merchant user downloads its own payouts' bundles only."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from notify_helpers import set_prefs
from sqlalchemy import Engine, select
from test_payout_lifecycle import OVER_LIMIT
from test_web_api import CLIENT_NOW, PASSWORD, Clock, error_code, login

from conftest import NOW
from payout_helpers import CUT_OVER, NAME_MISMATCH, SEND_AT, VALUE_DAY, Due, LimitedBank, make_payouts, parts
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.cards.vault import Vault
from settleguard.channels.base import BankOutcome
from settleguard.db import tables as t
from settleguard.evidence.builder import verify
from settleguard.evidence.pack import zip_bytes
from settleguard.evidence.payout import NoSuchPayout, build_payout, export_payout
from settleguard.notify.channels import Webhook
from settleguard.notify.delivery import Deliverer
from settleguard.payouts.service import send_due
from settleguard.web.app import create_app

BEIJING = "Asia/Shanghai"  # the business time zone (config.Settings.timezone), passed in
SMS = "13900001111"
HOOK = "https://hooks.example.com/settle"
HOOK_TOKEN = "tok-5f2a9c1e7b"  # noqa: S105  (a made-up token in the merchant's webhook URL)
HOOK_SECRET = "whsec-merchant-a-3e8d"  # noqa: S105


@dataclass
class World:
    engine: Engine
    app: FastAPI
    a: Due  # held: 户名不符, the bank echoes the full card number; SMS and webhook notices
    b: Due  # paid
    c: Due  # split into three parts for the channel's limit, the second part held
    d: Due  # retry scheduled (a system fault): no evidence link in the portal
    tokens: dict[str, str]

    def client(self, who: str | None = None) -> TestClient:
        c = TestClient(self.app, raise_server_exceptions=False)
        if who is not None:
            c.headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return c

    @property
    def pans(self) -> list[str]:
        return [x.merchant.pan for x in (self.a, self.b, self.c, self.d)]


@pytest.fixture
def world(engine: Engine, vault: Vault, tmp_path: Path) -> World:
    a, b, c, d = make_payouts(engine, vault, tmp_path, [123_456, 50_000, 1_000_000, 77_700])
    set_prefs(engine, vault, a.merchant.id, SEND_AT, sms=SMS, webhook=f"{HOOK}?token={HOOK_TOKEN}",
              secret=HOOK_SECRET)
    echoed = BankOutcome(NAME_MISMATCH.status, NAME_MISMATCH.code, NAME_MISMATCH.message,
                         json.dumps({"RET_CODE": "3031", "ERR_MSG": "账号户名不符", "ACCOUNT_NO": a.merchant.pan}),
                         scheme="allinpay")
    bank = LimitedBank({"personal": 400_000}, sends={a.key: [echoed], c.key: [OVER_LIMIT],
                                                     f"{c.key}S2": [NAME_MISMATCH], d.key: [CUT_OVER]})
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    hook = Webhook(client=httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(503))))
    Deliverer(engine, vault, webhook=hook).run(lambda: SEND_AT)  # one try each: SMS logged, webhook 503
    tokens = {}
    for name, role, due in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None),
                            ("audi", Role.AUDITOR, None), ("mera", Role.MERCHANT, a), ("merb", Role.MERCHANT, b),
                            ("merd", Role.MERCHANT, d)):
        add_user(engine, username=name, password=PASSWORD, role=role,
                 merchant_no=None if due is None else due.merchant.merchant_no, display_name=name, now=NOW,
                 actor="test")
        tokens[name] = issue_token(engine, username=name, name="tests", now=NOW, actor="test").token
    return World(engine, create_app(engine, now=Clock(CLIENT_NOW)), a, b, c, d, tokens)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def table(data: bytes) -> list[dict[str, str]]:
    """A CSV member as rows keyed by each column's English name (its header is "中文 english_name")."""
    assert data.startswith(codecs.BOM_UTF8)  # Excel reads UTF-8 only with a BOM
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    names = [h.rsplit(" ", 1)[-1] for h in next(reader)]
    return [dict(zip(names, row, strict=True)) for row in reader]


def masked(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def status_of(engine: Engine, pid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(t.payouts.c.status).where(t.payouts.c.id == pid)).scalar_one())


# --- the bundle ---------------------------------------------------------------------------------


def test_a_held_payouts_bundle_tells_its_story_verifies_and_holds_no_secret(world: World, tmp_path: Path) -> None:
    a = world.a
    assert status_of(world.engine, a.payout_id) == "held"
    out = tmp_path / "a.zip"
    bundle = export_payout(world.engine, a.payout_id, out, CLIENT_NOW, tz=BEIJING)
    blob = out.read_bytes()
    got = members(blob)
    names = list(got)
    assert names == sorted(names)
    assert set(names) == {"manifest.json", "summary.html", "payout.json", "payout_events.csv", "attempts.csv",
                          "attempts.json", "settlement.csv", "transactions/2026-11-18.csv", "ledger_entries.csv",
                          "ledger_postings.csv", "cards.csv", "notices.json", "notices.csv"}  # no parts: not split
    manifest = json.loads(got["manifest.json"])
    assert manifest["payout_id"] == a.payout_id
    assert "case_id" not in manifest
    assert [f["name"] for f in manifest["files"]] == sorted(n for n in names if n != "manifest.json")
    report = verify(out)
    assert report.ok, report
    assert (report.payout_id, report.case_id, report.checked) == (a.payout_id, None, len(names) - 1)
    assert report.listed == report.checked == len(bundle.files)  # what export counts: manifest.json not counted

    # no full card number of any merchant, no phone number, no webhook token or secret: in no member
    for secret in [*world.pans, SMS, HOOK_TOKEN, HOOK_SECRET]:
        assert secret.encode() not in blob, secret
        assert all(secret.encode() not in data for data in got.values()), secret
    assert bundle.redacted >= 2  # the card number the bank echoed, in attempts.csv and attempts.json
    assert masked(a.merchant.pan) in got["attempts.csv"].decode()
    assert masked(a.merchant.pan) in got["attempts.json"].decode()
    assert [r["pan_masked"] for r in table(got["cards.csv"])] == [masked(a.merchant.pan)]
    assert "pan_cipher" not in got["cards.csv"].decode()

    (attempt,) = table(got["attempts.csv"])
    assert (attempt["payout_id"], attempt["code"], attempt["message"]) == (str(a.payout_id), "3031", "账号户名不符")
    assert attempt["diagnosis_category"] == "card_info_error"
    assert attempt["diagnosis_zh"]
    assert attempt["diagnosis_en"]
    (answer,) = json.loads(got["attempts.json"])
    assert answer["diagnosis_zh"]["guidance"]
    assert answer["diagnosis_en"]["guidance"]
    doc = json.loads(got["payout.json"])
    assert (doc["payout"]["id"], doc["payout"]["status"], doc["payout"]["amount_fen"]) == (a.payout_id, "held", a.amount)
    assert doc["diagnosis_zh"]["category"] == "card_info_error"
    assert doc["parts"] == []
    assert doc["settlement"]["net_fen"] == a.amount
    assert [e["to_status"] for e in table(got["payout_events.csv"])] == ["created", "submitted", "failed", "held"]

    # only this merchant's money: the payout's ledger entries and their postings, the merchant's transactions
    entries = table(got["ledger_entries.csv"])
    assert [e["kind"] for e in entries] == ["payout_submit", "payout_hold"]
    assert {e["payout_id"] for e in entries} == {str(a.payout_id)}
    postings = table(got["ledger_postings.csv"])
    assert {p["entry_id"] for p in postings} == {e["entry_id"] for e in entries}
    assert {p["merchant_no"] for p in postings} == {a.merchant.merchant_no}
    assert sum(Decimal(p["amount_yuan"]) for p in postings) == 0
    txns = table(got["transactions/2026-11-18.csv"])
    assert [(r["merchant_no"], r["amount_yuan"]) for r in txns] == [(a.merchant.merchant_no, "1234.56")]
    (settled,) = table(got["settlement.csv"])
    assert (settled["merchant_no"], settled["net_yuan"]) == (a.merchant.merchant_no, yuan(a.amount))

    # the notices about it and every try, the webhook's address without its token
    notices = json.loads(got["notices.json"])
    assert [n["kind"] for n in notices] == ["card_info_error"]
    tries = table(got["notices.csv"])
    assert sorted((x["channel"], x["target"], x["ok"]) for x in tries) == [
        ("sms", "139****1111", "True"), ("webhook", HOOK, "False")]
    assert {x["notification_id"] for x in tries} == {str(notices[0]["id"])}
    assert [x["http_status"] for x in tries if x["channel"] == "webhook"] == ["503"]

    summary = got["summary.html"].decode()
    assert summary.index("出款凭证") < summary.index("Payout evidence")
    assert summary.index("怎么办") < summary.index("What to do")
    for text in ("挂账 held", "账号户名不符", masked(a.merchant.pan), "¥1,229.87", a.key):
        assert text in summary, text
    assert "<script" not in summary
    assert "<a " not in summary
    assert "src=" not in summary


TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+08:00")  # Beijing time, to the second, with its offset
YUAN = re.compile(r"-?\d+\.\d\d")


def yuan(fen: int) -> str:
    return f"{'-' if fen < 0 else ''}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def test_the_csvs_read_in_excel_in_yuan_local_time_and_merchant_and_terminal_numbers(world: World) -> None:
    """Issue 18: no BOM (mojibake in Excel), amounts in fen, internal merchant/terminal ids, UTC times."""
    c = world.c  # split, parts paid and held: every CSV of a payout's bundle has rows
    got = members(zip_bytes(build_payout(world.engine, c.payout_id, CLIENT_NOW, tz=BEIJING)))
    csvs = sorted(n for n in got if n.endswith(".csv"))
    assert {"parts.csv", "attempts.csv", "ledger_postings.csv", "transactions/2026-11-18.csv"} <= set(csvs)
    for name in got:
        assert got[name].startswith(codecs.BOM_UTF8) is name.endswith(".csv"), name
    for name in csvs:
        header = next(csv.reader(io.StringIO(got[name].decode("utf-8-sig"))))
        for h in header:  # "中文 english_name": Chinese first, then the English name
            zh, _, en = h.rpartition(" ")
            assert re.match(r"[\u4e00-\u9fff]", zh), (name, h)
            assert re.fullmatch(r"[a-z][a-z0-9_]*", en), (name, h)
            assert not en.endswith("_fen"), (name, h)
            assert en not in ("merchant_id", "terminal_id", "import_id", "id"), (name, h)
        rows = table(got[name])
        for r in rows:
            for col, v in r.items():
                if col.endswith("_yuan"):
                    assert YUAN.fullmatch(v), (name, col, v)
                if col.endswith("_at") and v:
                    assert TIME.fullmatch(v), (name, col, v)
    (txn,) = table(got["transactions/2026-11-18.csv"])
    assert (txn["merchant_no"], txn["terminal_no"], txn["amount_yuan"], txn["occurred_at"]) == (
        c.merchant.merchant_no, c.merchant.terminal_no, yuan(1_000_000), "2026-11-18 12:00:00+08:00")
    assert (txn["kind"], txn["card_type"]) == ("消费 sale", "扫码 qr")
    parts_ = table(got["parts.csv"])
    assert [r["merchant_no"] for r in parts_] == [c.merchant.merchant_no] * 3
    assert [r["payout_id"] for r in parts_] == [str(p["id"]) for p in parts(world.engine, c.payout_id)]
    # the ids kept point at rows of other files of the bundle
    assert {r["payout_id"] for r in table(got["attempts.csv"])} <= {str(c.payout_id), *(r["payout_id"] for r in parts_)}
    assert {r["account_id"] for r in table(got["attempts.csv"])} <= {r["account_id"] for r in table(got["cards.csv"])}
    (settled,) = table(got["settlement.csv"])
    assert settled["settlement_id"] == str(json.loads(got["payout.json"])["payout"]["settlement_id"])
    # the JSON files keep the raw rows for machines: fen and ids
    assert json.loads(got["payout.json"])["payout"]["amount_fen"] == c.amount


def test_the_bundle_is_deterministic_and_its_manifest_names_the_time(world: World) -> None:
    pid = world.a.payout_id
    first = zip_bytes(build_payout(world.engine, pid, CLIENT_NOW, tz=BEIJING))
    assert zip_bytes(build_payout(world.engine, pid, CLIENT_NOW, tz=BEIJING)) == first
    later = build_payout(world.engine, pid, CLIENT_NOW + timedelta(hours=1), tz=BEIJING)
    before = members(first)
    assert json.loads(later.manifest)["created_at"] != json.loads(before["manifest.json"])["created_at"]
    changed = {n for n, data in later.files.items() if before[n] != data}
    assert changed == {"summary.html"}  # which shows the time it was made


def test_a_split_payouts_bundle_carries_its_parts_and_a_parts_bundle_its_parent(world: World, tmp_path: Path) -> None:
    c = world.c
    ps = parts(world.engine, c.payout_id)
    assert [p["status"] for p in ps] == ["succeeded", "held", "succeeded"]
    got = members(zip_bytes(build_payout(world.engine, c.payout_id, CLIENT_NOW, tz=BEIJING)))
    rows = table(got["parts.csv"])
    assert [r["idempotency_key"] for r in rows] == [f"{c.key}S{i}" for i in (1, 2, 3)]
    assert sum(Decimal(r["amount_yuan"]) for r in rows) * 100 == c.amount
    family = {str(c.payout_id), *(str(p["id"]) for p in ps)}
    assert {r["payout_id"] for r in table(got["attempts.csv"])} == family
    assert {r["payout_id"] for r in table(got["payout_events.csv"])} == family
    assert sorted(e["kind"] for e in table(got["ledger_entries.csv"])) == [
        "payout_confirm", "payout_confirm", "payout_hold", "payout_submit"]
    assert json.loads(got["payout.json"])["diagnosis_en"]["category"] == "limit_exceeded"
    summary = got["summary.html"].decode()
    assert "拆分 Parts" in summary
    assert all(f"{c.key}S{i}" in summary for i in (1, 2, 3))
    for pan in world.pans:
        assert all(pan.encode() not in data for data in got.values())

    held_part = ps[1]["id"]
    out = tmp_path / "part.zip"
    export_payout(world.engine, held_part, out, CLIENT_NOW, tz=BEIJING)
    assert verify(out).payout_id == held_part
    part = members(out.read_bytes())
    assert f"part of payout {c.payout_id}" in part["summary.html"].decode()
    assert json.loads(part["payout.json"])["payout"]["parent_id"] == c.payout_id
    assert "parts.csv" not in part


def test_any_flipped_byte_and_any_changed_file_is_found(world: World, tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    export_payout(world.engine, world.a.payout_id, good, CLIENT_NOW, tz=BEIJING)
    blob = good.read_bytes()
    with zipfile.ZipFile(good) as z:
        infos = z.infolist()
    for info in infos:  # one byte in the middle of each member's compressed data
        raw = bytearray(blob)
        raw[info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2] ^= 0x01
        bad = tmp_path / "bad.zip"
        bad.write_bytes(bytes(raw))
        rep = verify(bad)
        assert not rep.ok, info.filename
        assert info.filename in rep.changed, (info.filename, rep)
    original = members(blob)
    for name in original:
        if name == "manifest.json":
            continue
        altered = tmp_path / "altered.zip"
        with zipfile.ZipFile(altered, "w") as z:
            for n, data in original.items():
                z.writestr(n, data + b" " if n == name else data)
        assert verify(altered).changed == [name]


def test_an_unknown_payout_has_no_bundle(world: World, tmp_path: Path) -> None:
    out = tmp_path / "none.zip"
    with pytest.raises(NoSuchPayout):
        export_payout(world.engine, 999_999, out, CLIENT_NOW, tz=BEIJING)
    assert not out.exists()


# --- the API and the portal ------------------------------------------------------------------------


def test_staff_and_the_owner_download_the_same_bytes_as_the_cli(world: World, tmp_path: Path) -> None:
    pid = world.a.payout_id
    expected = zip_bytes(build_payout(world.engine, pid, CLIENT_NOW, tz=BEIJING))
    for who in ("oper", "supp", "audi", "mera"):
        r = world.client(who).get(f"/api/v1/payouts/{pid}/evidence")
        assert r.status_code == 200, (who, r.text)
        assert r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"] == f'attachment; filename="payout-{pid}-evidence.zip"'
        assert r.headers["cache-control"] == "no-store"
        assert r.content == expected, who
    got = tmp_path / "api.zip"
    got.write_bytes(expected)
    assert verify(got).ok
    assert world.client("merb").get(f"/api/v1/payouts/{world.b.payout_id}/evidence").status_code == 200
    r = world.client().get(f"/api/v1/payouts/{pid}/evidence")
    assert (r.status_code, error_code(r)) == (401, "unauthenticated")


def test_a_merchant_gets_404_for_another_merchants_payout_evidence(world: World) -> None:
    ma = world.client("mera")
    theirs = world.b
    r = ma.get(f"/api/v1/payouts/{theirs.payout_id}/evidence")
    missing = ma.get("/api/v1/payouts/999999/evidence")
    shown = ma.get(f"/api/v1/payouts/{theirs.payout_id}")
    assert (r.status_code, error_code(r)) == (404, "payout_not_found")
    assert (missing.status_code, error_code(missing)) == (404, "payout_not_found")  # as if it did not exist
    assert (shown.status_code, r.json()) == (404, shown.json())  # exactly as the payout itself
    for bit in (theirs.key, theirs.merchant.merchant_no, theirs.merchant.pan):
        assert bit not in r.text
    for pid in (world.a.payout_id, world.c.payout_id):
        r = world.client("merb").get(f"/api/v1/payouts/{pid}/evidence")
        assert (r.status_code, error_code(r)) == (404, "payout_not_found")
    r = world.client("oper").get("/api/v1/payouts/999999/evidence")
    assert (r.status_code, error_code(r)) == (404, "payout_not_found")


def test_the_portal_links_the_evidence_of_held_and_paid_payouts_and_the_link_works(world: World) -> None:
    cases: list[tuple[str, Due, bool]] = [("mera", world.a, True), ("merb", world.b, True), ("merd", world.d, False)]
    for who, due, linked in cases:
        c = TestClient(world.app, raise_server_exceptions=False, follow_redirects=False)
        assert login(c, who).status_code == 200
        page = c.get(f"/m/{due.merchant.id}")
        assert page.status_code == 200
        link = f'href="/api/v1/payouts/{due.payout_id}/evidence"'
        assert (link in page.text) is linked, (who, status_of(world.engine, due.payout_id))
        assert ("下载凭证" in page.text) is linked
        if linked:
            r = c.get(f"/api/v1/payouts/{due.payout_id}/evidence")  # the session cookie, no CSRF for a GET
            assert r.status_code == 200
            assert r.content == zip_bytes(build_payout(world.engine, due.payout_id, CLIENT_NOW, tz=BEIJING))
        other = world.c.payout_id
        r = c.get(f"/api/v1/payouts/{other}/evidence")
        assert r.status_code == 404
    assert status_of(world.engine, world.d.payout_id) == "retry_scheduled"
