"""The card key belongs to the database, as operators run commands: a subprocess per command, from three
directories against one database (SQLite and PostgreSQL). Each command either uses the database's key or
refuses before changing anything; the database never holds a card under a key it does not know."""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards import custody
from settleguard.cards import key_repository as key_repo
from settleguard.cards.bins import luhn_complete
from settleguard.cards.key_rotation import check_all_open
from settleguard.cards.vault import fingerprint, load_vault, read_vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.config import Settings
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)
VALUE_DAY = "2026-11-19"
ID = "11010519491231002X"  # the factories' legal person 张三
PHONE = "13812345678"
SIM = SimulatedVerifier(Settings().card_verifier_seed)
_serial = itertools.count(1)


def good_pan() -> str:
    while True:
        pan = luhn_complete(f"621226{next(_serial) + 880000:012d}")
        if SIM.status_of(pan) is CardStatus.NORMAL and SIM.verify_four_elements(pan, "x", ID, PHONE).ok:
            return pan


def cli(db: str, *args: str, cwd: Path, key_file: Path | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "COLUMNS": "200"}
    env.pop("SETTLEGUARD_KEY", None)
    env.pop("SETTLEGUARD_KEY_FILE", None)
    if key_file is not None:
        env["SETTLEGUARD_KEY_FILE"] = str(key_file)
    return subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def bind(db: str, merchant: str, pan: str, cwd: Path, key_file: Path | None) -> subprocess.CompletedProcess[str]:
    return cli(db, "card", "bind", merchant, "--pan", pan, "--name", "张三", "--id", ID, "--phone", PHONE,
               cwd=cwd, key_file=key_file)


def snapshot(db: str) -> dict[str, Any]:
    engine = open_engine(db)
    try:
        with engine.connect() as conn:
            return {
                "payouts": sorted(tuple(r) for r in conn.execute(select(t.payouts.c.id, t.payouts.c.status,
                                                                        t.payouts.c.attempt_count))),
                "attempts": sorted(tuple(r) for r in conn.execute(select(t.payout_attempts.c.id))),
                "accounts": sorted(tuple(r) for r in conn.execute(select(
                    t.settlement_accounts.c.id, t.settlement_accounts.c.pan_cipher, t.settlement_accounts.c.status))),
                "keys": {v: (r.fingerprint, r.retired_at is not None) for v, r in key_repo.recorded(conn).items()},
            }
    finally:
        engine.dispose()


def test_three_directories_one_database_each_uses_the_right_key_or_refuses(db_url: str, tmp_path: Path) -> None:
    sqlite = db_url.startswith("sqlite")
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    for d in (a, b, c):
        d.mkdir()
    # The database's key: beside the SQLite file by default; a server database needs SETTLEGUARD_KEY_FILE.
    db_key = tmp_path / "sg.key" if sqlite else tmp_path / "keys" / "sg.key"
    db_key.parent.mkdir(exist_ok=True)
    given = None if sqlite else db_key  # what the right directories set
    engine = open_engine(db_url)
    vault = load_vault(None, db_key)
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 4)
    at = datetime.combine(DAY, time(12), SH)
    import_rows(engine, a, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, 50_000 + i)
                            for i, m in enumerate(ms)], now=datetime(2026, 11, 18, 16, tzinfo=UTC))
    settle(engine, DAY, datetime(2026, 11, 18, 16, tzinfo=UTC))
    with engine.begin() as conn:  # statuses just checked: the send's card refresh leaves them alone
        conn.execute(t.settlement_accounts.update().values(card_status="normal", last_status_check_at=datetime.now(UTC)))
    custody.check(engine, vault)
    engine.dispose()
    fp = fingerprint(base64.urlsafe_b64decode(db_key.read_text().split(":", 1)[1].strip() + "=="))
    before = snapshot(db_url)
    assert before["keys"] == {1: (fp, False)}

    if not sqlite:  # no key path configured for a server database: refused, naming the settings
        out = bind(db_url, ms[0].merchant_no, good_pan(), a, None)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "SETTLEGUARD_KEY_FILE" in out.stderr
        assert "SETTLEGUARD_KEY" in out.stderr
        assert snapshot(db_url) == before

    # c: no key file where it looks -> refused, no key created, nothing changed
    missing = c / "sg.key"
    out = bind(db_url, ms[0].merchant_no, good_pan(), c, missing)
    assert out.returncode == 2, out.stdout + out.stderr
    assert str(missing) in out.stderr
    assert fp in out.stderr
    assert out.stderr.index("错误") < out.stderr.index("Error")
    assert not missing.exists()
    assert snapshot(db_url) == before

    # c: a key of its own -> card bind, payouts send and keys rotate all refuse before changing anything
    wrong = c / "wrong.key"
    load_vault(None, wrong)
    wrong_text = wrong.read_text()
    for args in (("card", "bind", ms[0].merchant_no, "--pan", good_pan(), "--name", "张三", "--id", ID, "--phone",
                  PHONE), ("payouts", "send", "--as-of", VALUE_DAY), ("keys", "rotate")):
        out = cli(db_url, *args, cwd=c, key_file=wrong)
        assert out.returncode == 2, f"{args}: {out.stdout}{out.stderr}"
        assert fp in out.stderr, out.stderr
        assert str(wrong) in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
        assert snapshot(db_url) == before, args
    assert wrong.read_text() == wrong_text
    assert sorted(p.name for p in c.iterdir()) == ["wrong.key"]

    # b: the database's key (SQLite: found beside the database, not in b) -> bind and send work
    pan = good_pan()
    out = bind(db_url, ms[1].merchant_no, pan, b, given)
    assert out.returncode == 0, out.stdout + out.stderr
    out = cli(db_url, "payouts", "send", "--as-of", VALUE_DAY, cwd=b, key_file=given)
    assert out.returncode == 0, out.stdout + out.stderr
    after = snapshot(db_url)
    assert all(s != "created" for _i, s, _n in after["payouts"])  # every payout was sent

    # a: rotate with the database's key, then bind again from a: the new version is used and recorded
    out = cli(db_url, "keys", "rotate", cwd=a, key_file=given)
    assert out.returncode == 0, out.stdout + out.stderr
    out = bind(db_url, ms[2].merchant_no, good_pan(), a, given)
    assert out.returncode == 0, out.stdout + out.stderr
    for d in (a, b):
        assert not [p for p in d.iterdir() if p.suffix == ".key"]

    engine = open_engine(db_url)
    try:
        new = read_vault(None, db_key)
        assert new.current == 2
        assert check_all_open(engine, new) == {2: 4 + 2}  # every card opens with the database's key file
        with engine.connect() as conn:
            keys = key_repo.recorded(conn)
        assert {v: (r.fingerprint, r.retired_at is not None) for v, r in keys.items()} == {
            1: (fp, True), 2: (new.fingerprints()[2], False)}
    finally:
        engine.dispose()
    out = cli(db_url, "payouts", "send", "--as-of", VALUE_DAY, cwd=c, key_file=wrong)  # still refused
    assert out.returncode == 2
