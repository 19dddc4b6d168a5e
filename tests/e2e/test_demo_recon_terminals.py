"""``settleguard demo`` ends with a reconciliation summary and a terminal health summary that find exactly what the
simulated bank, the clearing files, the TMS export and the message logs planted (issue 20 item 7, issue 21 item 6).

One demo subprocess per database (200 merchants × 3 days, as an operator runs it), then ``ledger check`` and the
database itself: every planted break and terminal fault is found with its type and count, and nothing else."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from lxml import etree
from sqlalchemy import select

from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.reconciliation.camt import read_camt
from settleguard.settlement.calendar import next_business_day
from settleguard.sim.bank_statement import Paid, statement_days

BANK_BREAKS = {"ledger_only": 1, "duplicate_debit": 1, "amount_mismatch": 1, "reversal": 1}
DAYS = 3
CLEARING_BREAKS = {"clearing_long": 1, "clearing_short": 1}  # one 长款 and one 短款, in the last day's file
TERMINAL_FINDINGS = {"weak_signal": 1, "firmware_outdated": 1, "no_dns": 1, "silent_no_heartbeat": 1}
ROW = re.compile(r"│\s*(?P<label>[^│]+?)\s*│\s*(?P<planted>[\d,]+)\s*│\s*(?P<found>[\d,]+)\s*│")


def sg(db: str, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"settleguard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_the_demo_finds_exactly_the_planted_breaks_and_terminal_faults(db_url: str, tmp_path: Path) -> None:
    days = tmp_path / "days"
    out = sg(db_url, tmp_path, "demo", "--merchants", "200", "--days", str(DAYS), "--data-dir", str(days)).stdout

    # -- the printed summary: planted → found per type, zh first, and the verdicts
    recon = out[out.index("对账差错 reconciliation breaks"):out.index("终端体检 terminal health")]
    rows = {m["label"]: (int(m["planted"].replace(",", "")), int(m["found"].replace(",", "")))
            for m in ROW.finditer(recon)}
    assert rows == {"账上已付、银行未记账 ledger only": (1, 1), "银行重复扣款 duplicate debit": (1, 1),
                    "金额不符 amount mismatch": (1, 1), "银行冲正 reversal": (1, 1),
                    "长款（银联有、我方无） clearing long: network only": (1, 1),
                    "短款（我方有、银联无） clearing short: ours only": (1, 1)}, recon
    assert recon.count("✓ 与注入的差错完全一致 exactly the planted ones") == 2, recon
    assert "✗" not in recon
    assert re.search(r"迟到记账 late booking：\d{4}-\d\d-\d\d 在途 in transit，\d{4}-\d\d-\d\d 记账后对上 matched\n",
                     recon), recon
    assert "未解释差额为零 ✓ nothing unexplained" in recon
    assert "银行流水账中没有的已付出款" not in recon  # the bank's journal holds every payout the ledger paid

    health = out[out.index("终端体检 terminal health"):]
    assert health.count("✓ 与注入的差错完全一致 exactly the planted ones") == 2, health
    assert "非注入" not in health  # three days: the generated data itself leaves no terminal silent
    for words in ("遥测 telemetry · 信号弱 weak signal", "遥测 telemetry · 固件版本过低 firmware below the minimum",
                  "遥测 telemetry · 未设置 DNS no DNS server", "遥测 telemetry · 终端长时间无心跳 no heartbeat for days",
                  "报文日志 message log · 密钥校验错误 key error (MAC / PIN)",
                  "报文日志 message log · 消费无应答（通讯超时） sale without a response (timeout)",
                  "报文日志 message log · 批结算对账不平 batch settlement not balanced"):
        assert re.search(re.escape(words) + r"\s*│\s*1\s*│", health), (words, health)
    counts = {label: int(n.replace(",", "")) for label, n in
              re.findall(r"│ (终端 terminals|正常 healthy|需关注 needs attention|故障 fault)\s*│\s*([\d,]+)\s*│", health)}
    assert counts["需关注 needs attention"] == 3, health  # weak signal, old firmware, no DNS
    assert counts["故障 fault"] == 1, health  # the silent one
    assert counts["正常 healthy"] == counts["终端 terminals"] - 4 > 0

    # -- the database: open breaks by type are exactly the planted ones; terminal findings likewise
    eng = open_engine(db_url)
    try:
        with eng.connect() as conn:
            breaks = Counter(str(r.type) for r in conn.execute(
                select(t.recon_breaks.c.type).where(t.recon_breaks.c.status == "open")))
            findings = Counter(str(r.code) for r in conn.execute(
                select(t.terminal_findings.c.code).where(t.terminal_findings.c.status == "open")))
    finally:
        eng.dispose()
    assert dict(breaks) == {**BANK_BREAKS, **CLEARING_BREAKS}
    assert dict(findings) == TERMINAL_FINDINGS

    # -- `ledger check` proves the bank balance, naming exactly the four bank breaks
    check = sg(db_url, tmp_path, "ledger", "check", "--json")
    body = json.loads(check.stdout)
    assert body["ok"] is True
    assert body["problems"] == []
    proof = body["bank_balance"]
    assert proof["ok"] is True
    assert proof["unexplained_fen"] == 0
    assert proof["in_transit"] == 0
    assert Counter(b["type"] for b in proof["breaks"]) == Counter(BANK_BREAKS)
    assert proof["drift_fen"] == proof["explained_fen"] != 0

    # -- the files: camt.053.001.08 valid against the official XSD, balances chained day to day
    schema = etree.XMLSchema(etree.parse(str(importlib.metadata.distribution("camt053").locate_file(
        "camt053/xsd/camt.053.001.08.xsd"))))
    statements = sorted((days / "bank").glob("camt053-*.xml"))
    assert len(statements) >= DAYS + 1
    closing = None
    for path in statements:
        doc = etree.parse(str(path))
        assert schema.validate(doc), (path.name, schema.error_log)
        (st,) = read_camt(path)
        assert st.balance_difference() == 0
        if closing is not None:
            assert st.balances["OPBD"].amount_fen == closing
        closing = st.balances["CLBD"].amount_fen
    assert len(list((days / "clearing").glob("INN*"))) == 1
    assert len(list((days / "terminal-logs").glob("*.log"))) == 4

    _the_risk_scan_finds_exactly_the_planted_merchants(out, db_url, days)


RISK_NAMES = {  # each planted pattern's rules, by the names the summary shows (zh then en)
    "same_card_round": ("整数金额占比高 many round amounts", "信用卡交易占比异常高 almost only credit cards",
                        "同一张卡当日多次交易 the same card several times a day",
                        "单笔金额与行业不符 tickets out of line with the MCC"),
    "night_under_limit": ("凌晨交易占比高 many sales between midnight and 5 a.m.",
                          "金额贴近限额 amounts just under a limit"),
    "mcc_ticket": ("单笔金额与行业不符 tickets out of line with the MCC",),
    "silent_then_busy": ("交易额较自身基线激增 volume spike against its own baseline",
                         "交易笔数较自身基线激增 count spike against its own baseline",
                         "沉寂后突然活跃 busy after a long silence"),
}


def _the_risk_scan_finds_exactly_the_planted_merchants(out: str, db_url: str, days: Path) -> None:
    """issue 22 item 7: the demo's risk summary names exactly the planted card-cashing and silent-then-busy merchants
    with the rules that fired (by name), their scores and cases; the database holds exactly their alerts; the output
    shows no card number of the day files (which carry them)."""
    from settleguard.sim.generator import CARD_COLUMN, generate_merchants
    from settleguard.sim.risk_plants import plan

    first = date(2026, 11, 16)
    demo_days = [first + timedelta(days=i) for i in range(DAYS)]
    planted = {p.merchant_no: p for p in plan(generate_merchants(200, 42), demo_days, 42).plants}
    assert sorted(p.pattern for p in planted.values()) == sorted(RISK_NAMES)
    risk = out[out.index("风险扫描 risk scan："):out.index("对账差错 reconciliation breaks")]
    flat = "".join(risk.split())
    assert flat.count("✓商户merchant") == 4, risk
    assert "✓与注入的风险商户完全一致exactlytheplantedmerchants" in flat, risk
    assert "✗" not in risk
    assert "非注入" not in risk
    for no, p in planted.items():
        line = flat[flat.index(f"✓商户merchant{no}"):]
        line = line[:line.index("✓", 1)]
        score = 40 if p.pattern == "mcc_ticket" else (80 if p.pattern == "night_under_limit" else 100)
        assert f"{p.day}评分score{score}，" in line, line
        assert ("工单case#" in line) == (score >= 60), line
        for name in RISK_NAMES[p.pattern]:
            assert "".join(name.split()) in line, (name, line)

    eng = open_engine(db_url)
    try:
        with eng.connect() as conn:
            flagged = {(str(r.merchant_no), r.cycle_date) for r in conn.execute(
                select(t.merchants.c.merchant_no, t.risk_scores.c.cycle_date)
                .join(t.merchants, t.merchants.c.id == t.risk_scores.c.merchant_id))}
            risk_cases = conn.execute(select(t.cases.c.merchant_id).where(t.cases.c.category == "risk_alert")).all()
    finally:
        eng.dispose()
    assert {no for no, _ in flagged} == set(planted)
    assert {d for _, d in flagged} == {demo_days[-1]}
    assert len(risk_cases) == 3

    pans = set()
    for path in days.glob("transactions-*.csv"):
        header, *lines = path.read_bytes().decode("gbk").splitlines()  # UTF-8 files are ASCII here
        col = header.split(",").index(CARD_COLUMN)
        pans |= {line.split(",")[col] for line in lines} - {""}
    assert len(pans) > 1000
    assert not [p for p in pans if p in out]


def test_the_statement_plan_is_deterministic_for_a_seed_and_plants_on_distinct_payouts() -> None:
    day = date(2026, 11, 16)
    paid = [Paid(i, f"K{i:04d}", 10_000 + i, day + timedelta(days=i % 3)) for i in range(1, 40)]
    first, planted = statement_days(paid, seed=7, next_day=next_business_day)
    again, planted_again = statement_days(paid, seed=7, next_day=next_business_day)
    assert first == again
    assert planted == planted_again
    picks = [planted.missing, planted.duplicate, planted.off_by_one, planted.late, planted.reversal]
    assert None not in picks
    assert len({p.payout_id for p in picks if p}) == 5
    assert planted.expected_breaks() == BANK_BREAKS
    other, _ = statement_days(paid, seed=8, next_day=next_business_day)
    assert other != first
    for prev, nxt in zip(first, first[1:], strict=False):
        assert nxt.opening_fen == prev.closing_fen
    assert statement_days([], seed=7, next_day=next_business_day)[0] == []
