"""``card bind|show|status-check``, ``bins import`` and ``keys rotate`` as a user runs them: a subprocess
per command, on a small demo database (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from settleguard.cards.bins import luhn_complete
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.config import Settings

ID = "11010519491231002X"
PHONE = "13812345678"
SIM = SimulatedVerifier(Settings().card_verifier_seed)  # the CLI's default verifier
_serial = itertools.count(1)


def run(db: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "160"}
    env.pop("SETTLEGUARD_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def pick_pan(status: CardStatus, *, verifies: bool) -> str:
    """A Luhn-valid ICBC debit card number the simulated bank gives ``status`` (and a match when ``verifies``)."""
    while True:
        pan = luhn_complete(f"621226{next(_serial) + 770000:012d}")
        if SIM.status_of(pan) is not status:
            continue
        if not verifies or SIM.verify_four_elements(pan, "x", ID, PHONE).ok:
            return pan


def query(db: str, sql: str) -> list[Any]:
    eng = create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with eng.connect() as c:
            return list(c.execute(text(sql)))
    finally:
        eng.dispose()


@pytest.fixture
def demo_db(db_url: str, tmp_path: Path) -> str:
    run(db_url, "demo", "--merchants", "8", "--days", "1", "--seed", "3", "--data-dir", str(tmp_path / "d"),
        cwd=tmp_path)
    return db_url


def personal_merchant(db: str) -> tuple[str, str]:
    (no, person), *_ = query(db, "SELECT merchant_no, legal_person FROM merchants WHERE kind = 'personal' "
                                 "ORDER BY id")
    return str(no), str(person)


def test_bind_show_and_refusals(demo_db: str, tmp_path: Path) -> None:
    merchant, person = personal_merchant(demo_db)
    good, frozen = pick_pan(CardStatus.NORMAL, verifies=True), pick_pan(CardStatus.FROZEN, verifies=False)

    out = run(demo_db, "card", "bind", merchant, "--pan", good, "--name", person, "--id", ID, "--phone", PHONE,
              "--actor", "ops:e2e", "--json", cwd=tmp_path)
    bound = json.loads(out.stdout)
    assert (bound["bound"], bound["rebound"], bound["bank_code"], bound["card_type"]) == (True, True, "ICBC", "DC")
    assert bound["masked"] == good[:6] + "*" * 9 + good[-4:]
    assert good not in out.stdout + out.stderr

    refused = run(demo_db, "card", "bind", merchant, "--pan", frozen, "--name", person, "--id", ID, "--phone", PHONE,
                  cwd=tmp_path, check=False)
    assert refused.returncode == 1
    assert "卡状态异常" in refused.stderr
    assert "B0210" in refused.stderr
    assert refused.stderr.index("错误") < refused.stderr.index("Error")
    assert frozen not in refused.stdout + refused.stderr

    third = run(demo_db, "card", "bind", merchant, "--pan", pick_pan(CardStatus.NORMAL, verifies=True), "--name",
                "欧阳娜娜" if person != "欧阳娜娜" else "司马光", "--id", ID, "--phone", PHONE, "--json", cwd=tmp_path,
                check=False)
    assert third.returncode == 1
    answer = json.loads(third.stdout)
    assert answer["bound"] is False
    assert answer["code"] == "check_failed"
    assert "third_party_account" in [p["code"] for p in answer["problems"]]

    show = run(demo_db, "card", "show", merchant, "--json", cwd=tmp_path)
    shown = json.loads(show.stdout)
    assert [a["status"] for a in shown["accounts"]] == ["active", "replaced"]
    assert shown["accounts"][0]["masked"] == bound["masked"]
    assert [e["kind"] for e in shown["events"]] == ["card_rebound"]
    assert [(v["kind"], v["result"]) for v in reversed(shown["verifications"])] == [
        ("four_elements", "match"), ("status", "normal"), ("four_elements", "card_problem"),
        ("four_elements", "refused")]
    human = run(demo_db, "card", "show", merchant, cwd=tmp_path).stdout
    assert bound["masked"] in human
    assert "replaced" in human
    assert "更换结算卡 card re-bound" in human  # labels, not the code card_rebound (issue 18)
    for pan in (good, frozen):
        assert pan not in show.stdout + human


def test_status_check_marks_bad_cards_unusable_and_only_due_cards_are_asked(demo_db: str, tmp_path: Path) -> None:
    (active,), = query(demo_db, "SELECT count(*) FROM settlement_accounts WHERE status = 'active'")
    first = json.loads(run(demo_db, "card", "status-check", "--json", cwd=tmp_path).stdout)
    assert first["checked"] == active
    assert first["due_only"] is True
    (unusable,), = query(demo_db, "SELECT count(*) FROM settlement_accounts WHERE status = 'unusable'")
    assert first["unusable"] == unusable
    (notes,), = query(demo_db, "SELECT count(*) FROM notifications WHERE kind = 'card_unusable'")
    assert notes == unusable
    again = json.loads(run(demo_db, "card", "status-check", "--due", "--json", cwd=tmp_path).stdout)
    assert again["checked"] == 0
    every = run(demo_db, "card", "status-check", "--all", cwd=tmp_path)
    assert "已查询 inquired" in every.stdout
    assert f"{active - unusable}" in every.stdout


def test_bins_import_and_keys_rotate(demo_db: str, tmp_path: Path) -> None:
    bins = tmp_path / "official.csv"
    bins.write_text("bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n"
                    "621226,TESTBK,测试银行,Test Bank,DC,19\n", encoding="utf-8")
    first = json.loads(run(demo_db, "bins", "import", str(bins), "--json", cwd=tmp_path).stdout)
    assert (first["rows"], first["unchanged"]) == (1, False)
    assert json.loads(run(demo_db, "bins", "import", str(bins), "--json", cwd=tmp_path).stdout)["unchanged"] is True
    bad = tmp_path / "bad.csv"
    bad.write_text("bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n621226,X,x,x,DC,19\n62,Y,y,y,DC,19\n",
                   encoding="utf-8")
    rejected = run(demo_db, "bins", "import", str(bad), cwd=tmp_path, check=False)
    assert rejected.returncode == 2
    assert "line 3" in rejected.stderr
    assert "未导入" in rejected.stderr
    merchant, person = personal_merchant(demo_db)
    bound = json.loads(run(demo_db, "card", "bind", merchant, "--pan", pick_pan(CardStatus.NORMAL, verifies=True),
                           "--name", person, "--id", ID, "--phone", PHONE, "--json", cwd=tmp_path).stdout)
    assert bound["bank_code"] == "TESTBK"  # the operator's table wins over the packaged ICBC row

    (accounts,), = query(demo_db, "SELECT count(*) FROM settlement_accounts")
    rotated = json.loads(run(demo_db, "keys", "rotate", "--json", cwd=tmp_path).stdout)
    assert (rotated["new_version"], rotated["reencrypted"], rotated["dropped_versions"]) == (2, accounts, [1])
    assert query(demo_db, "SELECT DISTINCT key_version FROM settlement_accounts") == [(2,)]
    assert [line.split(":")[0] for line in (tmp_path / "e2e.key").read_text().splitlines()] == ["2"]
    checked = json.loads(run(demo_db, "card", "status-check", "--all", "--json", cwd=tmp_path).stdout)
    assert checked["unanswered"] == 0  # every card still opens with the new key
    assert run(demo_db, "ledger", "check", "--json", cwd=tmp_path).returncode == 0
