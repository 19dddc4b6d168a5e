"""The inbox (收件目录) on SQLite and PostgreSQL: files dropped into a directory are recognised by content, imported
through each domain's importer in dependency order and moved to done/ or rejected/ with the reason beside them; a
file dropped twice changes nothing; a file still being written waits; a crash between the commit and the move
imports nothing twice; the worker's first step and ``settleguard inbox scan|list`` run the same code."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from merchant_files import csv_text, micro
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.inbox import repository as inbox_repo
from settleguard.inbox import service
from settleguard.inbox.service import Imported, Importers, InboxConfig, IngestSummary, ingest
from settleguard.reconciliation import clearing
from settleguard.settlement.model import CutOffs
from settleguard.sim import bank_statement as bs
from settleguard.sim import clearing_file as cf
from settleguard.sim.generator import (
    SimMerchant,
    generate_merchants,
    generate_transactions,
    write_merchants_csv,
    write_transactions_csv,
)

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 3, 0, tzinfo=ZONE).astimezone(UTC)
PAN = "6222021234567890128"


def importers(vault: Vault, **over: Any) -> Importers:
    return Importers(tz=TZ, cutoffs=CutOffs(timezone=TZ), vault=vault, **over)


def scan(engine: Engine, inbox: Path, vault: Vault, now: datetime = NOW, **kw: Any) -> IngestSummary:
    over = kw.pop("overrides", {})
    return ingest(engine, [inbox], now=now, importers=importers(vault, overrides=over), tz=TZ, quiet_seconds=5, **kw)


def aged(path: Path, seconds: float = 60) -> Path:
    """A file written a while ago (past the quiet period)."""
    at = time.time() - seconds
    os.utime(path, (at, at))
    return path


def drop(inbox: Path, name: str, data: bytes | str, age: float = 60) -> Path:
    p = inbox / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return aged(p, age)


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def arrivals(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return inbox_repo.arrivals(conn)


def left_in(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir() if p.name not in ("done", "rejected", service.LOCK_NAME))


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    d = tmp_path / "inbox"
    d.mkdir()
    return d


@pytest.fixture
def merchants() -> list[SimMerchant]:
    return generate_merchants(3, 11)


def day_files(tmp_path: Path, ms: list[SimMerchant]) -> tuple[Path, Path]:
    m = tmp_path / "src" / "merchants.csv"
    m.parent.mkdir(exist_ok=True)
    write_merchants_csv(ms, m, DAY - timedelta(days=30), 11)
    tx = tmp_path / "src" / "pos-20261120.csv"
    write_transactions_csv(generate_transactions(ms, DAY, 11), tx, encoding="gbk")
    return m, tx


def _inn_txns(ms: list[SimMerchant]) -> list[cf.ClearingTxn]:
    at = datetime(2026, 11, 20, 11, 0, tzinfo=ZONE)
    return [cf.ClearingTxn(ms[0].merchant_no, ms[0].terminal_nos[0], f"00010{i}", at, 10_000 + i, 38)
            for i in range(1, 4)]


def test_a_day_s_files_are_imported_in_dependency_order_and_moved_to_done(
        engine: Engine, vault: Vault, inbox: Path, tmp_path: Path, merchants: list[SimMerchant]) -> None:
    m, tx = day_files(tmp_path, merchants)
    # the transaction file arrives first, yet the merchants it names are registered before it is imported
    shutil.copy(tx, inbox / tx.name)
    aged(inbox / tx.name, 120)
    shutil.copy(m, inbox / "入网.csv")
    aged(inbox / "入网.csv", 60)
    inn = cf.write_inn(inbox, DAY, _inn_txns(merchants))
    aged(inn)
    rd = aged(cf.write_rd(inbox, DAY, _inn_txns(merchants)))
    st = bs.Statement(DAY, "STMT-0001-20261120", 5_000_000, [bs.Entry("B1120N00001", 12_345, False, DAY, "SGX")])
    drop(inbox, "statement.xml", bs.camt053_xml(st))
    drop(inbox, "tms.csv", "serialNo,tid,modelName,battery\nSNX1,99999999,A920,80\n")  # another acquirer's

    s = scan(engine, inbox, vault)

    assert (s.done, s.rejected, s.duplicate, s.waiting) == (6, 0, 0, 0), [(a.name, a.reason_en) for a in s.arrivals]
    got = {a.kind: a for a in arrivals(engine)}
    assert [a.kind for a in s.arrivals] == ["merchants", "tms", "transactions", "clearing_inn", "clearing_rd",
                                            "camt053"]
    assert got["merchants"].summary["registered"] == 3
    assert got["transactions"].summary["rows"] > 0
    assert DAY in got["transactions"].business_days
    assert got["clearing_inn"].business_days == (DAY,)
    assert got["clearing_rd"].business_days == (DAY,)
    assert got["camt053"].business_days == (DAY,)
    assert all(a.status == "done" and a.reason_zh is None and a.moved_to for a in got.values())
    assert left_in(inbox) == []
    assert sorted(p.name for p in (inbox / "done").iterdir()) == sorted(
        ["入网.csv", tx.name, inn.name, rd.name, "statement.xml", "tms.csv"])
    rows = count(engine, t.transactions)

    # the same files again, under the same and other names: nothing changes, each lies in done/ with its reason
    shutil.copy(tmp_path / "src" / tx.name, inbox / tx.name)
    aged(inbox / tx.name)
    shutil.copy(tmp_path / "src" / tx.name, inbox / "again.csv")
    aged(inbox / "again.csv")
    again = scan(engine, inbox, vault, now=NOW + timedelta(hours=1))
    assert (again.done, again.duplicate) == (0, 2)
    assert count(engine, t.transactions) == rows
    assert count(engine, t.imports) == 2
    reason = (inbox / "done" / f"{tx.stem}.2.csv.reason.txt").read_text(encoding="utf-8")
    assert reason.index("与") < reason.index("the same content")
    assert tx.name in reason
    assert (inbox / "done" / "again.csv").exists()
    assert (inbox / "done" / "again.csv.reason.txt").exists()
    assert left_in(inbox) == []


def test_a_file_imported_by_hand_before_is_a_duplicate_and_changes_nothing(
        engine: Engine, vault: Vault, inbox: Path) -> None:
    st = bs.Statement(DAY, "STMT-0001-20261120", 5_000_000, [bs.Entry("B1120N00001", 12_345, False, DAY, "SGX")])
    p = drop(inbox, "s.xml", bs.camt053_xml(st))
    from settleguard.reconciliation.service import import_statement_file

    import_statement_file(engine, p, now=NOW, tz=TZ)
    s = scan(engine, inbox, vault)
    assert s.duplicate == 1
    assert s.arrivals[0].reason_zh
    assert "imported before" in (s.arrivals[0].reason_en or "")
    assert count(engine, t.bank_statements) == 1


def test_pain002_and_a_camt054_return_from_an_exported_pain001_are_applied_in_order(
        engine: Engine, vault: Vault, inbox: Path, tmp_path: Path) -> None:
    from test_payout_files import config, export, groups

    from payout_helpers import VALUE_DAY, make_payouts
    from unit.channels.samples import Detail, Pmt, Tx, camt054, pain002
    from unit.channels.samples import Entry as NtryEntry

    ds = make_payouts(engine, vault, tmp_path, [100_000, 120_000])
    (tmp_path / "out").mkdir()
    res = export(engine, vault, tmp_path / "out" / "batch.xml", config())
    pmt = groups(engine, res.message_id)
    amount = f"{ds[0].amount // 100}.{ds[0].amount % 100:02d}"
    # the return (退票) is older than the status report, yet applied after it: pain.002 before camt.054
    drop(inbox, "return.xml", camt054([NtryEntry(amount, details=[Detail(ds[0].key, amount, "AC04", ["销户"])])]),
         age=120)
    drop(inbox, "answer.xml", pain002([Pmt(pmt[d.key], txs=[Tx(d.key, "ACSC")]) for d in ds],
                                      original_message=res.message_id))
    s = scan(engine, inbox, vault, now=datetime(2026, 11, 19, 12, 0, tzinfo=ZONE))
    got = [(a.kind, a.status, a.summary.get("applied"), a.summary.get("returned")) for a in s.arrivals]
    assert got == [("pain002", "done", 2, 0), ("camt054", "done", 1, 1)], [a.reason_en for a in s.arrivals]
    a = s.arrivals[0]
    assert len(a.business_days) == 1
    assert a.business_days[0] >= VALUE_DAY - timedelta(days=3)
    with engine.connect() as conn:
        held = conn.execute(select(t.payouts.c.status).where(t.payouts.c.id == ds[0].payout_id)).scalar_one()
    assert held == "held"


BAD_TXN = ("参考号,商户号,终端号,交易时间,交易类型,卡类型,金额\n"
           "R1,898330154990001,10000001,2026-11-20 10:00:00,消费,借记卡,1.00\n"
           "R2,898330154990001,10000001,2026-11-20 10:00:00,消费,借记卡,十块\n")


def _malformed(merchants: list[SimMerchant]) -> dict[str, tuple[str, bytes, list[str]]]:
    """name -> (kind, content, words the reason must hold: the place)."""
    inn_line = cf.inn_line(_inn_txns(merchants)[0])
    at = clearing._STARTS[clearing.F_AMOUNT]  # noqa: SLF001 - the amount field, letters instead of digits
    broken_inn = (inn_line[:at] + "ABCDEFGHIJKL" + inn_line[at + 12:]).encode("ascii") + b"\r\n"
    st = bs.Statement(DAY, "STMT-1", 100, [bs.Entry("B1", 50, False, DAY, "SGX")])
    camt = bs.camt053_xml(st).replace("<Amt Ccy=\"CNY\">0.50</Amt>", "<Amt Ccy=\"CNY\">abc</Amt>")
    assert "abc" in camt
    return {
        "t.csv": ("transactions", BAD_TXN.encode("utf-8"), ["3"]),
        "m.csv": ("merchants", csv_text([micro(1), micro(2, legal_person_id="110101")]).encode("utf-8"),
                  ["第 3 行", "身份证号"]),
        "p.xml": ("pain002", b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12">'
                  b"<CstmrPmtStsRpt><GrpHdr><MsgId>X</MsgId></GrpHdr>", ["GrpHdr/CreDtTm", "p.xml:1"]),
        "s.xml": ("camt053", camt.encode("utf-8"), ["Amt"]),
        cf.inn_name(DAY, owner="ACQ01"): ("clearing_inn", broken_inn, ["第 1 行", "line 1"]),
        "rd.txt": ("clearing_rd", cf.rd_text(DAY, _inn_txns(merchants)).replace("清算日期：20261120", "清算日期：2026")
                   .encode("gbk"), ["清算日期"]),
        "tms.csv": ("tms", b"serialNo,tid,modelName,battery\nSN1,10000001,A920,999\n", ["battery"]),
        "bank.csv": ("bank_file", "流水号,交易日期,金额,借贷标志,状态\nB1,2026-13-45,1.00,借,成功\n".encode("gbk"),
                     ["2"]),
    }


def test_malformed_files_of_each_kind_are_rejected_naming_the_place(
        engine: Engine, vault: Vault, inbox: Path, merchants: list[SimMerchant]) -> None:
    bad = _malformed(merchants)
    for name, (_, data, _) in bad.items():
        drop(inbox, name, data)
    s = scan(engine, inbox, vault)
    assert (s.rejected, s.done) == (len(bad), 0), "\n".join(f"{a.name} {a.status} {a.reason_en}" for a in s.arrivals)
    by_name = {a.name: a for a in s.arrivals}
    for name, (kind, _, words) in bad.items():
        a = by_name[name]
        assert (a.kind, a.status) == (kind, "rejected"), name
        assert a.reason_zh
        assert a.reason_en
        assert a.business_days == ()
        for w in words:
            assert w in a.reason_zh + a.reason_en, (name, w, a.reason_en)
        text = (inbox / "rejected" / f"{name}.reason.txt").read_text(encoding="utf-8")
        assert text.startswith("文件 ")
        assert "\n\nFile " in text
        assert a.reason_en.splitlines()[0][:40] in text
        assert (inbox / "rejected" / name).exists()
    assert str(inbox) not in "".join(f"{a.reason_zh}{a.reason_en}" for a in s.arrivals)  # names, not full paths
    assert count(engine, t.imports) == 0
    assert count(engine, t.bank_statements) == 0
    assert left_in(inbox) == []


def test_hostile_files_are_rejected_with_a_reason_and_never_followed(
        engine: Engine, vault: Vault, inbox: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("serialNo,tid,modelName\nSN1,1,A\n")
    (inbox / "link.csv").symlink_to(secret)
    os.mkfifo(inbox / "pipe.csv")
    drop(inbox, "empty.csv", b"")
    drop(inbox, "junk.bin", os.urandom(4096).replace(b"\n", b"\x00") + b"\x00")
    drop(inbox, "big.csv", b"a,b\n" * 5000)
    drop(inbox, f"card {PAN}\nname.csv", b"a,b,c\n1,2,3\n")
    drop(inbox, "-rf", b"hello\n")
    raw = os.path.join(os.fsencode(inbox), b"bad\xff.csv")  # a name that is not UTF-8
    with open(raw, "wb") as f:
        f.write(b"hello\n")
    aged(Path(os.fsdecode(raw)))
    s = scan(engine, inbox, vault, max_bytes=10_000)
    assert (s.rejected, s.done) == (8, 0)
    assert "bad\\xdcff.csv" in [a.name for a in s.arrivals]
    assert "card 622202*********0128\\nname.csv" in [a.name for a in s.arrivals]
    reasons = {a.name: f"{a.reason_zh} | {a.reason_en}" for a in s.arrivals}
    assert "符号链接" in reasons["link.csv"]
    assert "not a regular file" in reasons["pipe.csv"]
    assert "空文件" in reasons["empty.csv"]
    assert "binary" in reasons["junk.bin"]
    assert "too large" in reasons["big.csv"]
    odd = next(n for n in reasons if n.startswith("card"))
    assert PAN not in odd
    assert "622202" in odd
    assert secret.exists()
    assert (inbox / "rejected" / "link.csv").is_symlink()
    names = os.listdir(inbox / "rejected")
    assert all("\n" not in n and not n.startswith("-") for n in names)
    assert all(PAN not in (inbox / "rejected" / n).read_text(encoding="utf-8") for n in names if n.endswith(".txt"))
    assert left_in(inbox) == []


def test_a_file_still_being_written_is_not_taken(engine: Engine, vault: Vault, inbox: Path) -> None:
    st = bs.Statement(DAY, "STMT-0001-20261120", 5_000_000, [bs.Entry("B1120N00001", 12_345, False, DAY, "SGX")])
    xml = bs.camt053_xml(st)
    drop(inbox, "s.xml.part", xml)  # the convention: write as .part (or .tmp), then rename
    drop(inbox, "fresh.xml", xml, age=0)  # just written: within the quiet period
    s = scan(engine, inbox, vault)
    assert (s.taken, s.waiting) == (0, 1)
    assert arrivals(engine) == []
    assert left_in(inbox) == ["fresh.xml", "s.xml.part"]
    os.replace(inbox / "s.xml.part", inbox / "s.xml")
    aged(inbox / "fresh.xml")
    s = scan(engine, inbox, vault)
    assert (s.done, s.duplicate) == (1, 1)  # the same content twice: one import, one duplicate


def test_a_crash_between_the_commit_and_the_move_imports_nothing_twice(
        engine: Engine, vault: Vault, inbox: Path, tmp_path: Path, merchants: list[SimMerchant],
        monkeypatch: pytest.MonkeyPatch) -> None:
    m, tx = day_files(tmp_path, merchants)
    shutil.copy(m, inbox / m.name)
    aged(inbox / m.name)
    assert scan(engine, inbox, vault).done == 1
    shutil.copy(tx, inbox / tx.name)
    aged(inbox / tx.name)
    real = service._move

    def crash(src: Path, *a: Any) -> str:
        raise OSError("power cut")  # the process dies after the import's commit, before the move

    monkeypatch.setattr(service, "_move", crash)
    with pytest.raises(OSError, match="power cut"):
        scan(engine, inbox, vault)
    rows, imports = count(engine, t.transactions), count(engine, t.imports)
    assert rows > 0
    assert left_in(inbox) == [tx.name]
    monkeypatch.setattr(service, "_move", real)
    s = scan(engine, inbox, vault, now=NOW + timedelta(minutes=1))
    assert (s.finished_moves, s.done, s.duplicate) == (1, 0, 0)
    assert (count(engine, t.transactions), count(engine, t.imports)) == (rows, imports)
    got = [a for a in arrivals(engine) if a.kind == "transactions"]
    assert len(got) == 1
    assert got[0].status == "done"
    assert got[0].moved_to == f"done/{tx.name}"
    assert left_in(inbox) == []
    assert (inbox / "done" / tx.name).exists()


def test_a_crash_after_the_import_s_commit_before_its_row_is_recorded_is_finished_as_done(
        engine: Engine, vault: Vault, inbox: Path) -> None:
    st = bs.Statement(DAY, "STMT-0001-20261120", 5_000_000, [bs.Entry("B1120N00001", 12_345, False, DAY, "SGX")])
    drop(inbox, "s.xml", bs.camt053_xml(st))
    from settleguard.reconciliation.service import import_statement_file

    def import_then_die(engine: Engine, path: Path, now: datetime, rec: Any) -> Imported:
        import_statement_file(engine, path, now=now, tz=TZ)
        raise KeyboardInterrupt  # the process is killed right after the import's commit

    with pytest.raises(KeyboardInterrupt):
        scan(engine, inbox, vault, overrides={"camt053": import_then_die})
    with engine.connect() as conn:
        assert conn.execute(select(t.inbox_files.c.status)).scalar_one() == "processing"
    assert arrivals(engine) == []  # an unfinished row is not an arrival
    s = scan(engine, inbox, vault)
    assert (s.done, s.duplicate) == (1, 0)
    a = arrivals(engine)
    assert len(a) == 1
    assert a[0].status == "done"
    assert a[0].business_days == (DAY,)
    assert count(engine, t.bank_statements) == 1


def test_a_rejected_file_dropped_again_after_a_fix_is_imported(
        engine: Engine, vault: Vault, inbox: Path, tmp_path: Path, merchants: list[SimMerchant]) -> None:
    m, tx = day_files(tmp_path, merchants)
    shutil.copy(tx, inbox / tx.name)
    aged(inbox / tx.name)
    s = scan(engine, inbox, vault)
    assert s.rejected == 1
    assert "商户" in (s.arrivals[0].reason_zh or "")
    shutil.copy(m, inbox / m.name)
    shutil.copy(tx, inbox / tx.name)  # the same content, dropped again once its merchants are in
    aged(inbox / m.name)
    aged(inbox / tx.name)
    s = scan(engine, inbox, vault, now=NOW + timedelta(hours=1))
    assert s.done == 2
    assert (inbox / "rejected" / tx.name).exists()
    assert (inbox / "done" / tx.name).exists()


def test_the_worker_s_first_step_is_the_inbox(engine: Engine, vault: Vault, inbox: Path) -> None:
    from settleguard import worker
    from settleguard.channels.simulator import SimulatedBank

    assert worker.STEPS[0].name == "inbox"
    st = bs.Statement(DAY, "STMT-0001-20261120", 5_000_000, [bs.Entry("B1120N00001", 12_345, False, DAY, "SGX")])
    drop(inbox, "s.xml", bs.camt053_xml(st))
    drop(inbox, "junk.txt", "hello\n")
    cfg = InboxConfig((inbox,), importers(vault), quiet_seconds=5)
    summary = worker.cycle(engine, SimulatedBank(1), vault, None, as_of=DAY, now=NOW, tz=TZ,
                           steps=worker.STEPS[:1], inbox=cfg)
    got = summary.steps["inbox"]
    assert isinstance(got, IngestSummary)
    assert (got.done, got.rejected) == (1, 1)
    assert worker.cycle(engine, SimulatedBank(1), vault, None, as_of=DAY, now=NOW, tz=TZ,
                        steps=worker.STEPS[:1]).steps["inbox"] is None  # no inbox configured: nothing


def test_cli_inbox_scan_and_list(db_url: str, tmp_path: Path, vault: Vault) -> None:
    from settleguard.cli.main import app as cli

    inbox = tmp_path / "cli-inbox"
    inbox.mkdir()
    st = bs.Statement(DAY, "STMT-0001-20261120", 5_000_000, [bs.Entry("B1120N00001", 12_345, False, DAY, "SGX")])
    drop(inbox, "s.xml", bs.camt053_xml(st))
    drop(inbox, "junk.txt", "hello\n")
    env = {"SETTLEGUARD_INBOX_QUIET_SECONDS": "1", "SETTLEGUARD_KEY_FILE": str(tmp_path / "k.key")}
    run = CliRunner()
    out = run.invoke(cli, ["--db", db_url, "inbox", "scan", "--dir", str(inbox), "--json"], env=env)
    assert out.exit_code == 1, out.output  # a file was refused
    got = json.loads(out.output)
    assert (got["done"], got["rejected"]) == (1, 1)
    out = run.invoke(cli, ["--db", db_url, "inbox", "scan", "--dir", str(inbox)], env=env)
    assert out.exit_code == 0
    assert "已导入 imported 0" in out.output
    today = datetime.now(ZONE).date().isoformat()
    out = run.invoke(cli, ["--db", db_url, "inbox", "list", "--date", today, "--json"], env=env)
    assert out.exit_code == 0, out.output
    files = json.loads(out.output)["files"]
    assert {(f["kind_zh"], f["status_en"]) for f in files} == {("银行对账单 camt.053", "imported"),
                                                              ("未识别", "rejected")}
    assert all(f["received_at"].endswith("+08:00") for f in files)
    out = run.invoke(cli, ["--db", db_url, "inbox", "list", "--date", "2026-11-20", "--json"], env=env)
    assert [f["name"] for f in json.loads(out.output)["files"]] == ["s.xml"]  # the statement covers that day
    out = run.invoke(cli, ["--db", db_url, "inbox", "list", "--date", today], env=env)
    assert "已拒绝" in out.output
    assert "北京时间" in out.output

