"""No full card number anywhere: run the demo and the card commands, then scan the SQLite file and its WAL,
every file written, stdout and stderr, and (on PostgreSQL) every table's text, for any generated PAN. Then a
bank that echoes full card numbers in every field of every format it answers in (pain.002, camt.054, its HTTP
JSON API), in every written form, and the same scan over the database, the CLI, evidence zips and the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine, select

from factories import Txn, import_rows, make_merchants, ref
from pan_echo import EchoReturn, EchoTx, camt054_echo, forms, http_answer, pain002_echo
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.cards.bins import luhn_complete
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind
from settleguard.sim.generator import generate_merchants
from settleguard.web.app import create_app

MERCHANTS, SEED = 60, 11
ID, PHONE = "11010519491231002X", "13812345678"


def run(db: str, *args: str, cwd: Path, log: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "scan.key"), "COLUMNS": "160"}
    env.pop("SETTLEGUARD_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    log.extend([proc.stdout, proc.stderr])
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def leaks(blob: bytes, pans: list[str]) -> list[str]:
    """Masks of the card numbers found in ``blob`` as ASCII digits or UTF-16 (SQLite may store either)."""
    found = []
    for pan in pans:
        if pan.encode() in blob or pan.encode("utf-16-le") in blob or pan.encode("utf-16-be") in blob:
            found.append(pan[:6] + "…" + pan[-4:])
    return found


def test_no_full_card_number_in_the_database_files_outputs_or_logs(db_url: str, tmp_path: Path) -> None:
    sims = generate_merchants(MERCHANTS, SEED)
    pans = [m.pan for m in sims]
    sim = SimulatedVerifier(Settings().card_verifier_seed)
    new = next(p for p in (luhn_complete(f"621226{i:012d}") for i in range(900000, 999999))
               if sim.status_of(p) is CardStatus.NORMAL and sim.verify_four_elements(p, "x", ID, PHONE).ok)
    pans.append(new)
    personal = next(m for m in sims if m.kind == "personal")
    log: list[str] = []
    work = tmp_path / "work"
    work.mkdir()
    run(db_url, "demo", "--merchants", str(MERCHANTS), "--days", "2", "--seed", str(SEED), "--data-dir",
        str(work / "days"), cwd=work, log=log)
    run(db_url, "card", "bind", personal.merchant_no, "--pan", new, "--name", personal.holder_name, "--id",
        personal.id_number, "--phone", PHONE, cwd=work, log=log)
    run(db_url, "card", "bind", personal.merchant_no, "--pan", new[:-1] + "x", "--name", personal.holder_name,
        "--id", personal.id_number, "--phone", PHONE, cwd=work, log=log, check=False)
    run(db_url, "card", "status-check", "--all", cwd=work, log=log)
    for m in sims[:10]:
        run(db_url, "card", "show", m.merchant_no, cwd=work, log=log)
        run(db_url, "card", "show", m.merchant_no, "--json", cwd=work, log=log)
    run(db_url, "card", "check", sims[0].pan, "--json", cwd=work, log=log, check=False)
    run(db_url, "payouts", "list", "--json", "--limit", "100000", cwd=work, log=log)
    run(db_url, "keys", "rotate", cwd=work, log=log)

    outputs = "\n".join(log)
    # `card check PAN` and `card bind --pan` echo nothing but the mask.
    assert leaks(outputs.encode(), pans) == []
    assert personal.merchant_no in outputs  # the scan reads what the commands printed

    files = [p for p in work.rglob("*") if p.is_file()]
    if db_url.startswith("sqlite"):
        db_file = Path(db_url.removeprefix("sqlite:///"))
        files += [p for p in db_file.parent.glob(db_file.name + "*") if p.is_file()]
        assert any(p.name.endswith("-wal") or p.name == db_file.name for p in files)
    assert files
    for path in files:
        blob = path.read_bytes()
        assert leaks(blob, pans) == [], path
    if db_url.startswith("sqlite"):  # the scan reads the database's content
        assert any(personal.merchant_no.encode() in p.read_bytes() for p in files if p.name.startswith(db_file.name))

    # Every column of every table, as text (PostgreSQL files are not ours to read).
    eng = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    meta = MetaData()
    meta.reflect(eng)
    dump: list[str] = []
    with eng.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                dump.append(json.dumps([v.hex() if isinstance(v, bytes | memoryview) else str(v) for v in row],
                                       ensure_ascii=False))
    eng.dispose()
    text_dump = "\n".join(dump)
    assert leaks(text_dump.encode(), pans) == []
    assert personal.pan[:6] + "*" * 9 + personal.pan[-4:] in text_dump  # masks are there


@pytest.mark.parametrize("pan", ["6222021234567890128", "6212 2600 0000 0000 008"])
def test_errors_and_reprs_of_card_objects_show_only_the_mask(pan: str) -> None:
    from settleguard.cards.model import normalize_pan
    from settleguard.cards.service import BindRequest
    from settleguard.cards.verifier_sim import SimulatedVerifier as Sim

    digits = normalize_pan(pan)
    req = BindRequest("898100058120001", pan, "张三", ID, PHONE)
    answers = Sim(1).verify_four_elements(digits, "张三", ID, PHONE), Sim(1).inquire_status(digits)
    text_ = repr(req) + str(req) + "".join(repr(a) for a in answers)
    assert digits not in text_
    assert pan not in text_


# --------------------------------------------------------------------------- a bank that echoes card numbers

OTHER = "6217000000000008009"  # a number the bank adds of its own (not Luhn-valid, masked all the same)
DAY2 = date(2026, 11, 19)  # the second business day: its payouts go out through the HTTP bank


class _EchoingBank(ThreadingHTTPServer):
    """The bank's JSON API on 127.0.0.1: answers every payout and inquiry echoing the account in every field;
    3031 (name mismatch) for the keys in ``refuse``, success for the others."""

    def __init__(self, refuse: set[str]) -> None:
        refused = refuse

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key, acct = body["req_sn"], body.get("acct_no") or OTHER
                answer = (http_answer(key, acct, n=len(key)) if key in refused
                          else http_answer(key, acct, code="0000", status="SUCCESS", n=len(key) + 1))
                answer["ret_msg"] = f"{answer['ret_msg']} 参考 {forms(OTHER)[len(key) % 5]}"
                data = json.dumps(answer, ensure_ascii=len(key) % 2 == 0).encode()  # also as \\u escapes
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def _cli(db: str, *args: str, cwd: Path, log: list[str], code: int = 0,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "200",
            **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600)
    log.extend([proc.stdout, proc.stderr])
    assert proc.returncode == code, f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _all_forms_leaks(blob: str, pans: list[str]) -> list[str]:
    return [p[:6] + "…" + p[-4:] for p in pans if any(f in blob for f in forms(p))]


def test_bank_echoes_of_full_card_numbers_in_every_field_leave_no_full_card_number(db_url: str,
                                                                                    tmp_path: Path) -> None:
    from test_payout_cli import SEND_AT, VALUE_DAY, setup  # the payout commands' fixture: 6 payouts created

    work, bank_dir = tmp_path / "work", tmp_path / "bank"  # the bank's side holds full numbers: not scanned
    work.mkdir()
    bank_dir.mkdir()
    engine, vault, payouts = setup(db_url, work, 6)
    log: list[str] = []
    pans = [p.pan for p in payouts] + [OTHER]

    # 1. the file channel: a pain.001 out, a pain.002 back echoing every account everywhere
    batch = bank_dir / "batch.xml"
    res = json.loads(_cli(db_url, "payouts", "export", "--out", str(batch), "--as-of", str(VALUE_DAY), "--json",
                          cwd=work, log=log).stdout)
    with engine.connect() as conn:
        refs = dict(conn.execute(select(t.payout_attempts.c.idempotency_key, t.payout_attempts.c.batch_ref)).all())
    pmt_id = refs[payouts[0].key].split("|", 1)[1]
    rejected, paid = payouts[:4], payouts[4:]
    txs = [EchoTx(p.key, "RJCT", p.pan, code="AC01" if i == 3 else None, n=i) for i, p in enumerate(rejected)]
    txs += [EchoTx(p.key, "ACSC", p.pan, amount=f"{p.amount / 100:.2f}", n=4) for p in paid]
    pain002 = bank_dir / "pain002.xml"
    pain002.write_text(pain002_echo(res["message_id"], [(pmt_id, txs)], pan=OTHER), encoding="utf-8")
    _cli(db_url, "returns", "import", str(pain002), cwd=work, log=log)

    # a hostile copy whose refusal would quote a card number
    hostile = bank_dir / "hostile.xml"
    hostile.write_text(pain002.read_text(encoding="utf-8").replace("<TxSts>ACSC</TxSts>",
                                                                   f"<TxSts>账号{payouts[4].pan}</TxSts>", 1),
                       encoding="utf-8")
    _cli(db_url, "returns", "import", str(hostile), cwd=work, log=log, code=2)

    # 2. camt.054: the first paid payout comes back (AC04), the other is booked; both echo accounts everywhere
    camt = bank_dir / "camt054.xml"
    camt.write_text(camt054_echo([EchoReturn(paid[0].key, f"{paid[0].amount / 100:.2f}", paid[0].pan, n=1),
                                  EchoReturn(paid[1].key, f"{paid[1].amount / 100:.2f}", paid[1].pan, code=None,
                                             debit=True, n=3)], pan=OTHER), encoding="utf-8")
    _cli(db_url, "returns", "import", str(camt), cwd=work, log=log)

    # 3. the HTTP channel: two more merchants' payouts of the next day, one refused, one paid, both echoed
    with engine.begin() as conn:
        more = make_merchants(conn, vault, 2)
    at = datetime.combine(DAY2, time(12), ZoneInfo("Asia/Shanghai"))
    import_rows(engine, work, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, 50_000 + i)
                               for i, m in enumerate(more)], now=SEND_AT + timedelta(hours=12))
    settle(engine, DAY2, SEND_AT + timedelta(hours=12))
    with engine.begin() as conn:
        conn.execute(t.settlement_accounts.update().values(card_status="normal",
                                                           last_status_check_at=datetime.now(UTC)))
        keys = dict(conn.execute(select(t.payouts.c.merchant_id, t.payouts.c.idempotency_key)
                                 .where(t.payouts.c.merchant_id.in_([m.id for m in more]))).all())
    pans += [m.pan for m in more]
    server = _EchoingBank({keys[more[0].id]})
    try:
        _cli(db_url, "payouts", "send", "--as-of", str(DAY2 + timedelta(days=1)), cwd=work, log=log,
             env={"SETTLEGUARD_CHANNEL": "http", "SETTLEGUARD_BANK_URL": server.url})
    finally:
        server.stop()

    # what the bank sent did arrive (the scan below reads real answers)
    with engine.connect() as conn:
        rows = conn.execute(select(t.payouts.c.id, t.payouts.c.status, t.payouts.c.merchant_id)).all()
        messages = "\n".join(m or "" for (m,) in conn.execute(select(t.payout_attempts.c.message)))
    statuses = {int(i): str(s) for i, s, _m in rows}
    merchant_of = {int(i): int(m) for i, _s, m in rows}
    assert [statuses[p.id] for p in rejected] == ["held"] * 4
    assert statuses[paid[0].id] == "held"  # returned, then held
    assert statuses[paid[1].id] == "succeeded"
    assert "户名不符" in messages
    assert "621700*********8009" in messages

    # 4. everything a person reads: the CLI, evidence zips, the API (operator and auditor)
    _cli(db_url, "payouts", "list", "--json", "--limit", "1000", cwd=work, log=log)
    _cli(db_url, "payouts", "list", cwd=work, log=log)
    sent_by_http = [pid for pid, mid in merchant_of.items() if mid in {m.id for m in more}]
    assert len(sent_by_http) == 2
    for pid in (rejected[0].id, rejected[3].id, paid[0].id, paid[1].id, *sent_by_http):
        _cli(db_url, "payouts", "show", str(pid), "--json" if pid % 2 else "--lang=zh", cwd=work, log=log)
    for p in (rejected[0], paid[0]):
        _cli(db_url, "evidence", "payout", str(p.id), "--out", str(work / f"payout-{p.id}.zip"), cwd=work, log=log)
    api = create_app(engine)
    for name, role in (("oper", Role.OPERATOR), ("audi", Role.AUDITOR)):
        add_user(engine, username=name, password="correct-horse-battery", role=role, merchant_no=None,
                 display_name=name, now=SEND_AT, actor="test")
        token = issue_token(engine, username=name, name="scan", now=SEND_AT, actor="test").token
        client = TestClient(api)
        client.headers["Authorization"] = f"Bearer {token}"
        listing = client.get("/api/v1/payouts", params={"limit": 200})
        assert listing.status_code == 200
        log.append(listing.text)
        for pid in statuses:
            one = client.get(f"/api/v1/payouts/{pid}")
            assert one.status_code == 200
            log.append(one.text)

    outputs = "\n".join(log)
    assert _all_forms_leaks(outputs, pans) == []
    assert "621700*********8009" in outputs  # the scan reads the bank's echoes, masked
    assert "文件被拒绝" in outputs  # the hostile file was refused (its echo masked)

    zips = list(work.glob("payout-*.zip"))
    assert len(zips) == 2
    for z in zips:
        with zipfile.ZipFile(z) as archive:
            for name in archive.namelist():
                assert _all_forms_leaks(archive.read(name).decode("utf-8", "replace"), pans) == [], (z, name)
    files = [p for p in work.rglob("*") if p.is_file()]
    if db_url.startswith("sqlite"):
        db_file = Path(db_url.removeprefix("sqlite:///"))
        files += [p for p in db_file.parent.glob(db_file.name + "*") if p.is_file()]
    for path in files:
        blob = path.read_bytes()
        assert [p for p in pans for f in forms(p) if f.encode() in blob or f.encode("utf-16-le") in blob
                or f.encode("utf-16-be") in blob] == [], path

    meta = MetaData()
    meta.reflect(engine)
    dump: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                dump.append(json.dumps([v.hex() if isinstance(v, bytes | memoryview) else str(v) for v in row],
                                       ensure_ascii=False))
    engine.dispose()
    text_dump = "\n".join(dump)
    assert _all_forms_leaks(text_dump, pans) == []
    assert "621700*********8009" in text_dump
