"""`settleguard cases ...` as an operator runs it (a subprocess per command), on SQLite and PostgreSQL: a payout
fails with 户名不符, a case is opened, assigned, the bank contact recorded, noted, waited on, resolved, closed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from test_payout_send import CUT_OVER, NAME_MISMATCH, SEND_AT, VALUE_DAY, ScriptedBank, make_payouts  # noqa: E402

from conftest import NOW  # noqa: E402
from factories import Txn, import_rows, make_merchants, ref  # noqa: E402
from long_output import WIDTHS, assert_fits, assert_whole  # noqa: E402
from settleguard.access.model import Role  # noqa: E402
from settleguard.access.service import add_user  # noqa: E402
from settleguard.cards.vault import load_vault  # noqa: E402
from settleguard.cases import service as case_service  # noqa: E402
from settleguard.channels.base import BankOutcome  # noqa: E402
from settleguard.db import tables as t  # noqa: E402
from settleguard.db.engine import open_engine  # noqa: E402
from settleguard.diagnosis import classify  # noqa: E402
from settleguard.payouts.service import send_due  # noqa: E402
from settleguard.settlement.engine import settle  # noqa: E402
from settleguard.settlement.model import CardType, TxnKind  # noqa: E402


def run(db: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass(frozen=True)
class Failed:
    db: str
    merchant_no: str
    payout_id: int
    pan: str
    other_payout_id: int


def failed_payout(db: str, tmp_path: Path) -> Failed:
    """Two merchants settled; the first one's payout fails with 户名不符 (the bank echoes the full card number in
    its raw answer, as some do), the second one's is paid."""
    engine = open_engine(db)
    vault = load_vault(None, tmp_path / "e2e.key")
    bad, good = make_payouts(engine, vault, tmp_path, [123_456, 50_000])
    raw = json.dumps({"RET_CODE": "3031", "ERR_MSG": "账号户名不符", "ACCOUNT_NO": bad.merchant.pan})
    answer = BankOutcome(NAME_MISMATCH.status, NAME_MISMATCH.code, NAME_MISMATCH.message, raw, scheme="allinpay")
    send_due(engine, ScriptedBank(sends={bad.key: [answer]}), vault, as_of=VALUE_DAY, now=SEND_AT)
    engine.dispose()
    return Failed(db, bad.merchant.merchant_no, bad.payout_id, bad.merchant.pan, good.payout_id)


@pytest.fixture
def failed(db_url: str, tmp_path: Path) -> Failed:
    return failed_payout(db_url, tmp_path)


def open_case(f: Failed, cwd: Path) -> int:
    out = run(f.db, "cases", "open", "--merchant", f.merchant_no, "--payout", str(f.payout_id), "--category",
              "card_info_error", "--title", "户名不符 name mismatch", "--priority", "p2", "--actor", "alice",
              cwd=cwd).stdout
    assert "已开工单 case opened" in out
    return int(out.strip().rsplit(" ", 1)[-1])


def test_case_lifecycle(failed: Failed, tmp_path: Path) -> None:
    f, cwd = failed, tmp_path
    cid = open_case(f, cwd)
    refused = run(f.db, "cases", "open", "--merchant", f.merchant_no, "--payout", str(f.other_payout_id),
                  "--category", "other", "--title", "x", cwd=cwd, check=False)
    assert refused.returncode == 1
    assert "不属于商户" in refused.stderr
    assert "do not belong" in refused.stderr

    engine = open_engine(f.db)  # cases go to staff users only (cases.service.may_be_assigned)
    add_user(engine, username="bob", password="correct horse battery", role=Role.SUPPORT, merchant_no=None,
             display_name="bob", now=NOW, actor="test")
    engine.dispose()
    run(f.db, "cases", "assign", str(cid), "bob", cwd=cwd)
    run(f.db, "cases", "contact", str(cid), "--party", "bank_support", "--method", "phone", "--who",
        "工行客服 95588 工号1234", "--said", "户名与开户名不一致，请商户核对后重新绑卡", "--at", "2026-11-19T10:15",
        "--actor", "bob", cwd=cwd)
    run(f.db, "cases", "note", str(cid), "已短信通知商户", "--actor", "bob", cwd=cwd)
    run(f.db, "cases", "status", str(cid), "waiting_merchant", cwd=cwd)

    show = run(f.db, "cases", "show", str(cid), cwd=cwd).stdout
    for text in ("工单 case", "等待商户 waiting merchant", "工行客服 95588 工号1234", "已短信通知商户", "3031",
                 "账号户名不符", "诊断 diagnosis 银行卡信息错误 card info error", "Diagnosis:", "银行客服 bank support",
                 "电话 phone",
                 "2026-11-19 10:15"):
        assert text in show, text
    assert show.index("诊断 diagnosis") < show.index("Diagnosis:")  # Chinese first
    assert f.pan not in show

    data = json.loads(run(f.db, "cases", "show", str(cid), "--json", cwd=cwd).stdout)
    assert data["case"]["assignee"] == "bob"
    assert data["case"]["status"] == "waiting_merchant"
    assert [p["id"] for p in data["payouts"]] == [f.payout_id]
    assert data["payouts"][0]["diagnosis_zh"]["category"] == "card_info_error"
    assert data["contacts"][0]["at"].startswith("2026-11-19 02:15") or data["contacts"][0]["at"].startswith(
        "2026-11-19T02:15")

    listed = json.loads(run(f.db, "cases", "list", "--assignee", "bob", "--json", cwd=cwd).stdout)
    assert [c["id"] for c in listed] == [cid]
    # p2 = one business day from 2026 (now): the case opened "now", so it is not overdue
    assert json.loads(run(f.db, "cases", "list", "--overdue", "--json", cwd=cwd).stdout) == []

    bad_close = run(f.db, "cases", "close", str(cid), cwd=cwd, check=False)
    assert bad_close.returncode == 1
    assert "cannot go from waiting_merchant to closed" in bad_close.stderr
    assert run(f.db, "cases", "resolve", str(cid), "--resolution", "", cwd=cwd, check=False).returncode == 1
    run(f.db, "cases", "resolve", str(cid), "--resolution", "商户已换卡并重新出款", cwd=cwd)
    run(f.db, "cases", "close", str(cid), cwd=cwd)
    closed = json.loads(run(f.db, "cases", "list", "--status", "closed", "--json", cwd=cwd).stdout)
    assert [(c["id"], c["status"]) for c in closed] == [(cid, "closed")]
    assert run(f.db, "cases", "note", str(cid), "too late", cwd=cwd, check=False).returncode == 1
    assert run(f.db, "cases", "show", "999", cwd=cwd, check=False).returncode == 1


# --- long output (issue 18: 7 payouts of one diagnosis printed the same steps 7 times; titles wrapped over
# nine lines; the panel title was cut with "…") -------------------------------------------------------------


def seven_payouts_case(db: str, tmp_path: Path) -> tuple[int, dict[int, str]]:
    """One merchant, a sale on each of seven business days, settled: seven payouts, each failing with 3024 日期切换
    (the same diagnosis), linked to one case."""
    engine = open_engine(db)
    vault = load_vault(None, tmp_path / "e2e.key")
    with engine.begin() as conn:
        [m] = make_merchants(conn, vault, 1)
    days = [d for d in (date(2026, 11, 9) + timedelta(days=i) for i in range(9)) if d.weekday() < 5]
    assert len(days) == 7
    sh = ZoneInfo("Asia/Shanghai")
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, datetime.combine(d, time(12), sh),
                                       TxnKind.SALE, CardType.QR, 10_000 + i) for i, d in enumerate(days)], now=NOW)
    for d in days:
        settle(engine, d, NOW)
    with engine.connect() as conn:
        keys = dict(conn.execute(select(t.payouts.c.id, t.payouts.c.idempotency_key)
                                 .where(t.payouts.c.merchant_id == m.id)).all())
    assert len(keys) == 7
    send_due(engine, ScriptedBank(sends={k: [CUT_OVER] for k in keys.values()}), vault, as_of=VALUE_DAY, now=SEND_AT)
    cid = case_service.open_case(engine, merchant_no=m.merchant_no, category="system_or_network_fault",
                    title="日期切换期间七笔出款失败，待银行恢复后重发 seven payouts failed during the bank's cut-over",
                    actor="alice", now=SEND_AT, payout_ids=sorted(keys), tz="Asia/Shanghai")
    engine.dispose()
    assert cid is not None
    return cid, keys


def run_at(db: str, width: int, *args: str, cwd: Path) -> str:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": str(width)}
    return subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=True).stdout


def test_cases_show_groups_the_same_guidance_and_wraps_at_80_and_120_columns(db_url: str, tmp_path: Path) -> None:
    cid, keys = seven_payouts_case(db_url, tmp_path)
    ids = sorted(keys)
    d = classify("allinpay", "3024", "日期切换正在处理")
    for width in WIDTHS:
        out = run_at(db_url, width, "cases", "show", str(cid), cwd=tmp_path)
        assert_fits(out, width, max_lines=75 if width == 80 else 55)  # was ~130 lines at 120 columns
        assert "以下 7 笔出款 / these 7 payouts: " + ", ".join(map(str, ids)) in out.replace("\n│ ", " ")
        assert_whole(out, *d.guidance_zh, *d.guidance_en, once=True)  # the steps once, not seven times
        assert_whole(out, "日期切换期间七笔出款失败，待银行恢复后重发 seven payouts failed during the bank's cut-over")
        assert out.index("诊断 diagnosis") < out.index("Diagnosis:")  # Chinese first
        assert_whole(out, *keys.values(), once=True)  # every payout's row, whole (not cropped at the edge)
        assert out.count("3024") == 7  # each payout's last failure
        listed = run_at(db_url, width, "cases", "list", cwd=tmp_path)
        assert_fits(listed, width, max_lines=12)  # one case: its title, then its facts
        assert_whole(listed, "日期切换期间七笔出款失败，待银行恢复后重发 seven payouts failed during the bank's cut-over",
                     "系统或网络故障 system or network fault")
