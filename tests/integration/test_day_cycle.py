"""The day's cycle against a database (SQLite and PostgreSQL): settle once after the cut-off when the transaction
file arrived, pain.001 at a pay time once, statements and clearing files reconciled once, late files alerted once,
claims that a second worker cannot take, pay times gating the worker's sends, and ``settleguard day status``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards.vault import Vault
from settleguard.channels.iso20022.pain001 import Agent, BatchConfig, DebtorAccount
from settleguard.channels.simulator import SimulatedBank
from settleguard.daycycle import model as m
from settleguard.daycycle import repository as repo
from settleguard.daycycle.service import DayConfig, day_status, run_day
from settleguard.db import tables as t
from settleguard.inbox import repository as inbox_repo
from settleguard.settlement.model import CardType, CutOffs, TxnKind
from settleguard.worker import CycleContext, _send

TZ = "Asia/Shanghai"
Z = ZoneInfo(TZ)
DAY = date(2026, 12, 3)  # a Thursday; its payouts' value date is Friday 2026-12-04
VALUE = date(2026, 12, 4)
CUTOFFS = CutOffs(23, 22, timezone=TZ)
EXPECTED = {"transactions": time(2), "clearing_inn": time(9), "camt053": time(10)}
BATCH = BatchConfig(initiating_party="结算卫士", debtor=DebtorAccount("结算卫士备付金", "1100000000000000001",
                                                                    Agent(bank_code="ICBC")))


def at(d: date, h: int, mi: int = 0) -> datetime:
    return datetime.combine(d, time(h, mi), Z)


def config(**kw: object) -> DayConfig:
    schedule = m.Schedule(expected=EXPECTED, settle_latest=time(6), **kw)  # type: ignore[arg-type]
    return DayConfig(schedule, CUTOFFS)


def arrive(engine: Engine, kind: str | None, days: list[date], when: datetime, status: str = "done", name: str = "",
           reason: tuple[str, str] | None = None) -> int:
    """An inbox arrival, as the inbox records it (inbox.repository.record)."""
    with engine.begin() as conn:
        return inbox_repo.record(conn, directory="/inbox", name=name or f"{kind}.dat", stored_name=name or f"{kind}.dat",
                                 sha256=f"{kind}{when.timestamp()}".ljust(64, "0")[:64], size=10, kind=kind,
                                 status=status, reason=reason, received_at=when, processed_at=when, days=days)


def day_with_sales(engine: Engine, vault: Vault, tmp_path: Path, n: int = 3) -> None:
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, n)
    import_rows(engine, tmp_path, [Txn(ref(), x.merchant_no, x.terminal_no, at(DAY, 12), TxnKind.SALE, CardType.QR,
                                       10_000 + i) for i, x in enumerate(ms)], now=at(DAY, 22), cutoffs=CUTOFFS)


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def runs(engine: Engine) -> list[tuple[date, str, str, str]]:
    r = t.day_cycle_runs
    with engine.connect() as conn:
        return [tuple(x) for x in conn.execute(select(r.c.business_day, r.c.action, r.c.key, r.c.status)
                                               .where(r.c.action != "start").order_by(r.c.id))]  # type: ignore[misc]


def test_a_day_is_settled_once_after_its_cut_off_and_never_without_its_file(engine: Engine, vault: Vault,
                                                                              tmp_path: Path) -> None:
    day_with_sales(engine, vault, tmp_path)
    cfg = config()
    run_day(engine, cfg, vault=vault, now=at(DAY, 22, 30))
    assert count(engine, t.settlement_runs) == 0  # no transaction file yet (the import above was by hand)
    a = arrive(engine, "transactions", [DAY], at(DAY, 22, 40))
    run_day(engine, cfg, vault=vault, now=at(DAY, 22, 50))
    assert count(engine, t.settlement_runs) == 0  # before the cut-off (23:00)
    s = run_day(engine, cfg, vault=vault, now=at(DAY, 23, 1))
    assert s.ran == [{"action": "settle", "day": DAY.isoformat(), "key": f"a{a}", "status": "done"}]
    assert count(engine, t.settlement_runs) == 1
    assert count(engine, t.payouts) == 3
    again = run_day(engine, cfg, vault=vault, now=at(DAY, 23, 5))
    assert again.ran == []
    assert count(engine, t.settlement_runs) == 1
    st = day_status(engine, cfg, at(DAY + timedelta(days=1), 1), DAY)
    assert st["settled"] is True
    assert [(r["action"], r["status"]) for r in st["runs"]] == [("settle", "done")]
    assert "结算商户 3 户" in st["runs"][0]["what_zh"]


def test_late_files_are_alerted_once_and_a_day_without_its_file_is_not_settled(engine: Engine, vault: Vault,
                                                                                tmp_path: Path) -> None:
    day_with_sales(engine, vault, tmp_path)
    cfg = config()
    run_day(engine, cfg, vault=vault, now=at(DAY, 20))  # the cycle starts on DAY: DAY's files are watched
    arrive(engine, "camt053", [DAY], at(DAY + timedelta(days=1), 8))
    s = run_day(engine, cfg, vault=vault, now=at(DAY + timedelta(days=1), 10, 30))
    with engine.connect() as conn:
        keys = {k for (k,) in conn.execute(select(t.ops_alerts.c.dedupe_key))}
    assert {f"day:{DAY}:transactions", f"day:{DAY}:clearing_inn", f"day:{DAY}:settle"} <= keys
    assert f"day:{DAY}:camt053" not in keys
    assert s.alerts >= 3
    assert count(engine, t.settlement_runs) == 0
    n = count(engine, t.ops_alerts)
    assert run_day(engine, cfg, vault=vault, now=at(DAY + timedelta(days=1), 11)).alerts == 0
    assert count(engine, t.ops_alerts) == n
    st = day_status(engine, cfg, at(DAY + timedelta(days=1), 11), DAY)
    states = {f["kind"]: f["state"] for f in st["files"]}
    assert states == {"transactions": "late", "clearing_inn": "late", "camt053": "arrived"}
    assert {a["kind"] for a in st["alerts"]} == {"file_late", "day_not_settled"}
    assert all("迟到" in a["kind_zh"] or "未结算" in a["kind_zh"] for a in st["alerts"])


def test_the_file_channel_writes_one_pain001_per_pay_time(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    day_with_sales(engine, vault, tmp_path)
    arrive(engine, "transactions", [DAY], at(DAY, 22, 40))
    out = tmp_path / "outbox"
    cfg = DayConfig(m.Schedule(expected=EXPECTED, pay_times=(time(9, 30), time(15)), pay_to_file=True), CUTOFFS,
                    outbox=out, batch=BATCH)
    run_day(engine, cfg, vault=vault, now=at(VALUE, 9))  # settles; not yet a pay time
    assert not out.exists() or list(out.iterdir()) == []
    s = run_day(engine, cfg, vault=vault, now=at(VALUE, 9, 31))
    assert [(r["action"], r["key"]) for r in s.ran] == [("pay", "09:30")]
    files = sorted(out.glob("pain001-*.xml"))
    assert [f.name for f in files] == ["pain001-20261204-0930.xml"]
    assert files[0].read_text(encoding="utf-8").count("<CdtTrfTxInf>") == 3
    assert run_day(engine, cfg, vault=vault, now=at(VALUE, 9, 40)).ran == []
    assert len(list(out.glob("pain001-*.xml"))) == 1
    with engine.connect() as conn:
        assert {s for (s,) in conn.execute(select(t.payouts.c.status))} == {"submitted"}
    afternoon = run_day(engine, cfg, vault=vault, now=at(VALUE, 15, 1))
    assert [(r["action"], r["key"]) for r in afternoon.ran] == [("pay", "15:00")]
    assert len(list(out.glob("pain001-*.xml"))) == 1  # nothing left to pay: no second file
    assert not m.send_open(cfg.schedule, at(VALUE, 9, 45), TZ, lambda d: True)


def test_statements_and_clearing_files_are_reconciled_once_each(engine: Engine, vault: Vault) -> None:
    cfg = config()
    a = arrive(engine, "camt053", [VALUE], at(VALUE + timedelta(days=1), 7))
    c = arrive(engine, "clearing_rd", [DAY], at(VALUE, 8))
    s = run_day(engine, cfg, vault=vault, now=at(VALUE + timedelta(days=1), 7, 5))
    assert sorted((r["action"], r["key"], r["status"]) for r in s.ran) == [("clearing", f"a{c}", "done"),
                                                                          ("recon", f"a{a}", "done")]
    assert count(engine, t.recon_runs) == 1
    assert run_day(engine, cfg, vault=vault, now=at(VALUE + timedelta(days=1), 7, 10)).ran == []
    assert count(engine, t.recon_runs) == 1
    b = arrive(engine, "camt053", [VALUE], at(VALUE + timedelta(days=1), 8))  # a new statement for the day
    s = run_day(engine, cfg, vault=vault, now=at(VALUE + timedelta(days=1), 8, 5))
    assert [(r["action"], r["key"]) for r in s.ran] == [("recon", f"a{b}")]
    assert count(engine, t.recon_runs) == 2
    with engine.connect() as conn:
        summary = json.loads(conn.execute(select(t.day_cycle_runs.c.summary).where(
            t.day_cycle_runs.c.action == "clearing")).scalar_one())
    assert summary == {"no_inn": True}  # an RD summary before its INN detail


def test_a_claim_is_taken_once_a_failed_one_again(engine: Engine) -> None:
    now = datetime(2026, 12, 4, 1, tzinfo=UTC)
    with engine.begin() as conn:
        assert repo.claim(conn, DAY, "settle", "a1", now)
    with engine.begin() as conn:  # a second worker
        assert not repo.claim(conn, DAY, "settle", "a1", now, stale_before=now - timedelta(minutes=30))
    with engine.begin() as conn:
        repo.fail(conn, DAY, "settle", "a1", now, "boom")
    with engine.begin() as conn:
        assert repo.claim(conn, DAY, "settle", "a1", now + timedelta(minutes=1))
    with engine.begin() as conn:  # running for an hour: its worker is taken for dead
        assert repo.claim(conn, DAY, "settle", "a1", now + timedelta(hours=2), stale_before=now + timedelta(hours=1))
    with engine.connect() as conn:
        assert conn.execute(select(t.day_cycle_runs.c.attempts)).scalar_one() == 3


def test_pay_times_gate_the_worker_s_new_sends_inquiries_still_run(engine: Engine, vault: Vault,
                                                                    tmp_path: Path) -> None:
    day_with_sales(engine, vault, tmp_path)
    arrive(engine, "transactions", [DAY], at(DAY, 22, 40))
    cfg = config(pay_times=(time(9, 30),), pay_window=timedelta(minutes=60))
    bank = SimulatedBank(7, card_fault_rates=(), attempt_fault_rates=())
    run_day(engine, cfg, vault=vault, now=at(VALUE, 8))

    def send(now: datetime, day: DayConfig | None) -> int:
        from settleguard.cards.service import CardSettings
        from settleguard.notify.delivery import DeliverySettings
        from settleguard.payouts.service import DEFAULT_OPTIONS

        ctx = CycleContext(engine, bank, vault, None, VALUE, now, TZ, DEFAULT_OPTIONS, CardSettings(timezone=TZ),
                           DeliverySettings(), day=day)
        return _send(ctx).sent

    assert send(at(VALUE, 8, 30), cfg) == 0  # before the pay time: nothing new goes out
    assert send(at(VALUE, 9, 40), cfg) == 3  # within the window
    with engine.connect() as conn:
        assert {s for (s,) in conn.execute(select(t.payouts.c.status))} == {"succeeded"}


def test_without_a_day_cycle_the_worker_sends_whenever_due(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.cards.service import CardSettings
    from settleguard.notify.delivery import DeliverySettings
    from settleguard.payouts.service import DEFAULT_OPTIONS
    from settleguard.settlement.engine import settle

    day_with_sales(engine, vault, tmp_path)
    settle(engine, DAY, at(DAY, 23, 30))
    bank = SimulatedBank(7, card_fault_rates=(), attempt_fault_rates=())
    ctx = CycleContext(engine, bank, vault, None, VALUE, at(VALUE, 3), TZ, DEFAULT_OPTIONS, CardSettings(timezone=TZ),
                       DeliverySettings())
    assert _send(ctx).sent == 3


def test_day_status_cli_shows_the_cycle_in_chinese_then_english(sqlite_url: str, tmp_path: Path) -> None:
    from settleguard.cli.main import app
    from settleguard.db.engine import open_engine

    engine = open_engine(sqlite_url)
    arrive(engine, "transactions", [DAY], at(DAY, 23, 30), name="pos-20261203.csv")
    arrive(engine, "pain002", [DAY], at(DAY, 23, 40), status="rejected", name="bad.xml")
    arrive(engine, None, [], at(DAY, 23, 45), status="rejected", name="junk.bin",
           reason=("二进制内容，不是文本、XML 或 Excel 文件", "binary content: not a text, XML or Excel file"))
    engine.dispose()
    env = {"SETTLEGUARD_DB": sqlite_url, "SETTLEGUARD_KEY_FILE": str(tmp_path / "k.key"),
           "SETTLEGUARD_INBOX_DIRS": json.dumps([str(tmp_path / "in")]), "COLUMNS": "200"}
    runner = CliRunner()
    out = runner.invoke(app, ["day", "status", "--date", DAY.isoformat()], env=env)
    assert out.exit_code == 0, out.output
    text = "".join(out.output.split())  # Rich wraps at the console's width (fixed when first imported)
    assert "今日结算周期Today'scycle" in text
    assert "营业日businessday2026-12-03" in text
    assert "自动运行开启on" in text
    assert "交易文件transactionfile" in text
    assert "已到arrived" in text
    assert "银行对账单camt.053" in text
    assert "缺失missing" in text
    assert "pos-20261203.csv" in text
    assert "已拒收rejected" in text
    assert "北京时间" in text
    assert "12-0323:45:00junk.bin·未识别notrecognised·已拒收rejected" in text  # refused before its kind was known;
    # an arrival's Beijing time to the second (23:45 Beijing on DAY)
    assert "原因reason:二进制内容，不是文本、XML或Excel文件binarycontent" in text  # and why, zh then en
    js = runner.invoke(app, ["day", "status", "--date", DAY.isoformat(), "--json"], env=env)
    body = json.loads(js.output)
    assert body["enabled"] is True
    assert body["business_day"] == "2026-12-03"
    assert {f["kind"]: f["state"] for f in body["files"]}["transactions"] == "arrived"
    bad = runner.invoke(app, ["day", "status"], env={**env, "SETTLEGUARD_DAY_PAY_TIMES": '["9:3x"]'})
    assert bad.exit_code == 2
    assert "day_pay_times" in bad.output
    assert "时:分" in bad.output


def test_doctor_names_the_day_s_late_files_when_the_day_runs_itself(engine: Engine, db_url: str, vault: Vault,
                                                                    tmp_path: Path) -> None:
    """``settleguard doctor`` (through the composition root, the day cycle on with an inbox) warns of each expected
    file that is late, naming it and its business day; without the day cycle there is no such check."""
    from settleguard.bootstrap import Container
    from settleguard.config import Settings
    from settleguard.ops.doctor import run_checks
    from settleguard.ops.doctor_model import Status

    cfg = config()
    run_day(engine, cfg, vault=vault, now=at(DAY, 20))  # the cycle starts on DAY: DAY's files are watched
    arrive(engine, "transactions", [DAY], at(DAY, 23, 30))
    arrive(engine, "camt053", [DAY], at(DAY + timedelta(days=1), 8))
    on = Container(Settings(db=db_url, inbox_dirs=[tmp_path / "in"], key_file=tmp_path / "k.key"), given_engine=engine)
    found = {c.code: c for c in run_checks(on.doctor_input(), now=lambda: at(DAY + timedelta(days=1), 9, 30),
                                           engine=engine)}
    day_files = found["day_files"]
    assert day_files.status == Status.WARN
    late = {(x["day"], x["kind"]) for x in day_files.facts["late"]}
    assert (str(DAY), "clearing_inn") in late  # due 09:00 the next morning
    assert (str(DAY), "transactions") not in late
    assert (str(DAY), "camt053") not in late
    assert "银联清算明细 INN迟到" in day_files.zh
    assert "UnionPay clearing detail INN of 2026-12-03 late" in day_files.en
    early = {c.code: c for c in run_checks(on.doctor_input(), now=lambda: at(DAY + timedelta(days=1), 8, 30),
                                           engine=engine)}
    assert (str(DAY), "clearing_inn") not in {(x["day"], x["kind"]) for x in early["day_files"].facts.get("late", [])}
    off = Container(Settings(db=db_url, key_file=tmp_path / "k.key"), given_engine=engine)
    assert "day_files" not in {c.code for c in run_checks(off.doctor_input(), now=lambda: at(DAY, 9), engine=engine)}
