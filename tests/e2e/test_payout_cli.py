"""The payout commands as an operator runs them (a subprocess per command, SQLite and PostgreSQL):
payouts list/show/release/cancel/export, returns import, channels status, worker --once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards.vault import Vault, load_vault
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.diagnosis import classify
from settleguard.ledger import repository as ledger_repo
from settleguard.payouts.circuit import BreakerPolicy
from settleguard.payouts.service import Options, send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind
from unit.channels.samples import Pmt, Tx, pain002

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)
VALUE_DAY = date(2026, 11, 19)
SEND_AT = datetime.combine(VALUE_DAY, time(9), SH).astimezone(UTC)
A = "allinpay"
ANSWERS = {
    "ok": BankOutcome(OutcomeStatus.SUCCEEDED, "0000", "交易成功", "{}", scheme=A),
    "name": BankOutcome(OutcomeStatus.FAILED, "3031", "账号户名不符", "{}", scheme=A),
    "timeout": BankOutcome(OutcomeStatus.UNKNOWN, "TIMEOUT", "交易通讯超时，请发起查询交易", "", scheme=A),
    "revoked": BankOutcome(OutcomeStatus.FAILED, "0002", "交易已撤销", "{}", scheme=A),
    "cutover": BankOutcome(OutcomeStatus.FAILED, "3024", "日期切换正在处理", "{}", retryable=True, scheme=A),
}


class Bank:
    """Answers each key as told (default: paid)."""

    name = "e2e"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        return ANSWERS[self.answers.get(instruction.idempotency_key, "ok")]

    def inquire(self, idempotency_key: str) -> BankOutcome:
        return ANSWERS["timeout"]


@dataclass(frozen=True)
class P:
    id: int
    key: str
    pan: str
    merchant_no: str
    amount: int


def cli(db: str, *args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == code, f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def setup(db: str, cwd: Path, n: int) -> tuple[Engine, Vault, list[P]]:
    engine = open_engine(db)
    vault = load_vault(None, cwd / "e2e.key")
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, n)
    at = datetime.combine(DAY, time(12), SH)
    import_rows(engine, cwd, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, 100_000 + i)
                              for i, m in enumerate(ms)], now=SEND_AT - timedelta(hours=12))
    settle(engine, DAY, SEND_AT - timedelta(hours=12))
    with engine.begin() as conn:  # statuses just checked: the worker's card refresh leaves them alone
        conn.execute(t.settlement_accounts.update().values(card_status="normal",
                                                           last_status_check_at=datetime.now(UTC)))
    out = []
    with engine.connect() as conn:
        for m in ms:
            pid, key, amount = conn.execute(select(t.payouts.c.id, t.payouts.c.idempotency_key, t.payouts.c.amount_fen)
                                            .where(t.payouts.c.merchant_id == m.id)).one()
            out.append(P(pid, key, m.pan, m.merchant_no, amount))
    return engine, vault, out


def js(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def db_state(db: str) -> tuple[dict[int, str], dict[int, list[str]], list[Any]]:
    """(status per payout, batch refs per payout, ledger problems), read directly (CLI starts are slow)."""
    engine = open_engine(db)
    try:
        with engine.connect() as conn:
            statuses = {int(i): str(s) for i, s in conn.execute(select(t.payouts.c.id, t.payouts.c.status))}
            refs: dict[int, list[str]] = {}
            for pid, ref_ in conn.execute(select(t.payout_attempts.c.payout_id, t.payout_attempts.c.batch_ref)
                                          .order_by(t.payout_attempts.c.id)):
                refs.setdefault(int(pid), []).append(ref_)
            problems = ledger_repo.check(conn)
    finally:
        engine.dispose()
    return statuses, refs, problems


def test_list_show_release_cancel_and_worker_once(db_url: str, tmp_path: Path) -> None:
    engine, vault, (held, paid, unknown, review) = setup(db_url, tmp_path, 4)
    send_due(engine, Bank({held.key: "name", unknown.key: "timeout", review.key: "revoked"}), vault,
             as_of=VALUE_DAY, now=SEND_AT)
    engine.dispose()

    rows = js(cli(db_url, "payouts", "list", "--json", cwd=tmp_path))
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {held.id, paid.id, unknown.id, review.id}
    for r in rows:
        assert {"id", "merchant_id", "amount_fen", "status", "category", "end_to_end_id"} <= r.keys()
    assert (by_id[held.id]["status"], by_id[held.id]["category"], by_id[held.id]["end_to_end_id"],
            by_id[held.id]["amount_fen"]) == ("held", "card_info_error", held.key, held.amount)
    assert (by_id[paid.id]["status"], by_id[paid.id]["category"]) == ("succeeded", None)
    assert by_id[unknown.id]["status"] == "result_unknown"
    assert by_id[review.id]["status"] == "needs_review"
    bad = cli(db_url, "payouts", "list", "--status", "lost", cwd=tmp_path, code=2)
    assert "未知状态" in bad.stderr
    assert bad.stderr.index("未知状态") < bad.stderr.index("unknown status")

    shown = js(cli(db_url, "payouts", "show", str(held.id), "--json", cwd=tmp_path))
    assert [e["to_status"] for e in shown["events"]] == ["created", "submitted", "failed", "held"]
    (att,) = shown["attempts"]
    assert (att["idempotency_key"], att["code"], att["category"], att["rule_id"], att["decision"]) == (
        held.key, "3031", "card_info_error", "allinpay.3031", "hold")
    assert shown["diagnosis"]["category"] == "card_info_error"
    assert shown["diagnosis"]["guidance"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in shown["diagnosis"]["guidance"][0])  # zh by default
    text = cli(db_url, "payouts", "show", str(held.id), cwd=tmp_path).stdout
    for want in ("挂账 held", "状态变化 timeline", "尝试 attempts", "诊断与处理", "3031", "账号户名不符"):
        assert want in text
    en_first = classify("allinpay", "3031", "账号户名不符").to_dict("en")["guidance"][0]
    zh_first = shown["diagnosis"]["guidance"][0]
    assert text.index(zh_first[:12]) < text.index(en_first[:24])  # guidance in Chinese, then English

    refused = cli(db_url, "payouts", "cancel", str(unknown.id), "--reason", "商户要求", cwd=tmp_path, code=1)
    assert "请先查询" in refused.stderr
    assert "inquire first" in refused.stderr
    cli(db_url, "payouts", "cancel", str(held.id), cwd=tmp_path, code=2)  # --reason is required
    blank = cli(db_url, "payouts", "cancel", str(held.id), "--reason", "  ", cwd=tmp_path, code=1)
    assert "撤销必须填写原因" in blank.stderr

    # the card that failed is unchanged: refused, then released only as an override with a reason (issue 16)
    same = cli(db_url, "payouts", "release", str(held.id), "--actor", "ops:li", cwd=tmp_path, code=1)
    assert "换绑新卡" in same.stderr
    assert "override" in same.stderr
    released = cli(db_url, "payouts", "release", str(held.id), "--actor", "ops:li", "--note", "户名已更正",
                   "--override", "--reason", "银行确认户名已更正", cwd=tmp_path)
    assert "released" in released.stdout
    cancelled = cli(db_url, "payouts", "cancel", str(review.id), "--reason", "商户已注销", cwd=tmp_path)
    assert "已撤销" in cancelled.stdout
    listed = cli(db_url, "payouts", "list", "--status", "released", cwd=tmp_path).stdout
    assert "已放行待出款 released" in listed
    assert str(held.id) in listed

    worker = cli(db_url, "worker", "--once", "--json", cwd=tmp_path)
    cycle = json.loads(worker.stdout.strip().splitlines()[-1])
    assert {"sent", "inquired", "released", "succeeded", "held"} <= cycle.keys()
    assert cycle["sent"] >= 1, json.dumps(cycle, ensure_ascii=False)  # the released payout, under a new key
    assert cycle["inquired"] >= 1  # the unknown one is asked about before anything else
    after = {r["id"]: r for r in js(cli(db_url, "payouts", "list", "--json", cwd=tmp_path))}
    assert after[held.id]["end_to_end_id"] == f"{held.key}R1"  # a new instruction
    assert after[review.id]["status"] == "cancelled"
    assert db_state(db_url)[2] == []

    everything = text + listed + worker.stdout + json.dumps(rows, ensure_ascii=False)
    for p in (held, paid, unknown, review):
        assert p.pan not in everything


def test_channels_status_shows_an_open_circuit_and_its_alert(db_url: str, tmp_path: Path) -> None:
    engine, vault, ps = setup(db_url, tmp_path, 3)
    opts = Options(breaker=BreakerPolicy(threshold=2, window=timedelta(minutes=5), cool_down=timedelta(minutes=10)))
    send_due(engine, Bank({p.key: "cutover" for p in ps}), vault, as_of=VALUE_DAY, now=SEND_AT, opts=opts)
    engine.dispose()

    out = js(cli(db_url, "channels", "status", "--json", cwd=tmp_path))
    (icbc,) = [b for b in out["banks"] if b["bank_code"] == "ICBC"]
    assert (icbc["state"], icbc["failures"], icbc["waiting"]) == ("open", 2, 3)
    assert datetime.fromisoformat(icbc["opened_at"]) == SEND_AT
    assert datetime.fromisoformat(icbc["probe_after"]) == SEND_AT + timedelta(minutes=10)
    assert [a["kind"] for a in out["alerts"]] == ["circuit_open"]
    text = cli(db_url, "channels", "status", cwd=tmp_path).stdout
    assert "已暂停 paused" in text  # a label, not the circuit state "open" (issue 18)
    assert "ICBC" in text
    assert "银行熔断暂停 bank paused (circuit open)" in text


def test_export_a_pain001_import_its_report_once_and_reject_a_hostile_file(db_url: str, tmp_path: Path) -> None:
    engine, _vault, (ok, rejected) = setup(db_url, tmp_path, 2)
    engine.dispose()
    no_dir = cli(db_url, "payouts", "export", "--format", "pain.001", "--out", str(tmp_path / "nope" / "b.xml"),
                 "--as-of", str(VALUE_DAY), cwd=tmp_path, code=2)
    assert "未做任何更改" in no_dir.stderr
    assert "nothing changed" in no_dir.stderr
    assert set(db_state(db_url)[0].values()) == {"created"}

    out = tmp_path / "batch.xml"
    res = js(cli(db_url, "payouts", "export", "--format", "pain.001", "--out", str(out), "--as-of", str(VALUE_DAY),
                 "--json", cwd=tmp_path))
    assert (res["count"], res["total_fen"], res["path"]) == (2, ok.amount + rejected.amount, str(out))
    assert out.stat().st_mode & 0o777 == 0o600
    statuses, refs, _ = db_state(db_url)
    assert set(statuses.values()) == {"submitted"}
    (ref_,) = refs[ok.id]
    assert ref_.startswith(res["message_id"] + "|")

    report = tmp_path / "pain002.xml"
    report.write_text(pain002([Pmt(ref_.split("|", 1)[1], txs=[Tx(ok.key, "ACSC"), Tx(rejected.key, "RJCT", "AC04")])],
                              original_message=res["message_id"]), encoding="utf-8")
    first = js(cli(db_url, "returns", "import", str(report), "--json", cwd=tmp_path))
    assert (first["kind"], first["statuses"], first["applied"], first["already_imported"]) == ("pain.002", 2, 2, False)
    assert (first["succeeded"], first["held"]) == (1, 1)
    statuses = db_state(db_url)[0]
    assert statuses == {ok.id: "succeeded", rejected.id: "held"}
    again = cli(db_url, "returns", "import", str(report), cwd=tmp_path)
    assert "已导入过" in again.stdout

    hostile = tmp_path / "hostile.xml"
    hostile.write_text(report.read_text(encoding="utf-8").replace(
        "<Document", '<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<Document', 1), encoding="utf-8")
    bad = cli(db_url, "returns", "import", str(hostile), cwd=tmp_path, code=2)
    assert "文件被拒绝" in bad.stderr
    assert "nothing changed" in bad.stderr
    after, _, problems = db_state(db_url)
    assert (after, problems) == (statuses, [])
    for proc in (no_dir, again, bad):
        assert ok.pan not in proc.stdout + proc.stderr


@pytest.mark.parametrize("args", [("payouts", "release", "999999"), ("payouts", "cancel", "999999", "--reason", "x"),
                                  ("payouts", "show", "999999")])
def test_actions_on_a_missing_payout_exit_1(sqlite_url: str, tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = cli(sqlite_url, *args, cwd=tmp_path, code=1)  # the database is created and migrated on first use
    assert "没有出款 999999" in proc.stderr
    assert "no payout 999999" in proc.stderr


def test_returns_import_refuses_reports_not_ours_warns_on_unknown_references_and_status_shows_overdue_files(
    db_url: str, tmp_path: Path,
) -> None:
    """Exit codes of ``returns import``: 2 refused (OrgnlMsgId not ours, nothing in it ours), 1 applied with
    references we never sent (listed, alert and case); ``channels status`` lists file payouts without an answer
    past their due time (issue 16, item 3)."""
    from settleguard.channels.iso20022.pain001 import Agent, BatchConfig, DebtorAccount
    from settleguard.payouts.files import export_pain001

    engine, vault, (ok, replaced, other) = setup(db_url, tmp_path, 3)
    platform = DebtorAccount("某某收单有限公司备付金户", "110060123456789", Agent(cnaps="102100099996"))
    sent_at = datetime.now(UTC) - timedelta(days=30)  # long past two business days
    res = export_pain001(engine, vault, BatchConfig(initiating_party="某某收单有限公司", debtor=platform),
                         tmp_path / "batch.xml", as_of=VALUE_DAY, now=sent_at)
    with engine.connect() as conn:
        pmt = conn.execute(select(t.payout_attempts.c.batch_ref)).scalars().first().split("|", 1)[1]
    engine.dispose()

    def report(name: str, txs: list[Tx], message: str = res.message_id) -> str:
        path = tmp_path / name
        path.write_text(pain002([Pmt(pmt, txs=txs)], original_message=message), encoding="utf-8")
        return str(path)

    theirs = cli(db_url, "returns", "import", report("theirs.xml", [Tx(ok.key, "ACSC")], "SGB-NOT-OURS"),
                 cwd=tmp_path, code=2)
    assert "SGB-NOT-OURS" in theirs.stderr
    assert "不是我们发出的" in theirs.stderr
    nothing = cli(db_url, "returns", "import", report("none.xml", [Tx("SG20261118M999999", "ACSC")]), cwd=tmp_path,
                  code=2)
    assert "未导入" in nothing.stderr
    assert "SG20261118M999999" in nothing.stderr
    assert set(db_state(db_url)[0].values()) == {"submitted"}

    pan = "6217000010001234567"
    mixed = report("mixed.xml", [Tx(ok.key, "ACSC"), Tx("SG20261118M999999", "RJCT", "AC04", info=[f"账号{pan}"],
                                                         amount="1000.00")])
    warned = cli(db_url, "returns", "import", mixed, cwd=tmp_path, code=1)
    assert "已处理 applied 1" in warned.stdout
    assert "从未发出" in warned.stderr
    assert "never sent" in warned.stderr
    assert "SG20261118M999999" in warned.stderr
    assert "¥1,000.00" in warned.stderr
    assert pan not in warned.stdout + warned.stderr
    assert db_state(db_url)[0] == {ok.id: "succeeded", replaced.id: "submitted", other.id: "submitted"}

    out = js(cli(db_url, "channels", "status", "--json", cwd=tmp_path))
    assert {a["kind"] for a in out["alerts"]} == {"unknown_reference"}
    (late,) = out["file_answers_overdue"]
    assert (late["message_id"], late["payouts"], late["flagged"]) == (res.message_id, 2, 0)
    cli(db_url, "worker", "--once", cwd=tmp_path)  # flags them: a case each, one alert
    text = cli(db_url, "channels", "status", cwd=tmp_path).stdout
    assert "文件出款超期未回执" in text
    assert res.message_id in text
    assert "已开工单 flagged 2" in text
    assert "文件出款超期未回执 file answer overdue" in text
