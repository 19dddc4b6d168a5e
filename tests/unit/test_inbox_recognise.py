"""The inbox recognises a dropped file by its content (inbox.model.recognise via inbox.service.recognise_file): every
kind from the files the generators make, hostile heads refused with a reason, names made safe."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from merchant_files import enterprise, micro
from merchant_files import write_csv as write_merchants
from merchant_files import write_xlsx as write_merchants_xlsx
from settleguard.inbox import model
from settleguard.inbox.service import layouts, recognise_file
from settleguard.sim import bank_statement as bs
from settleguard.sim import clearing_file as cf
from settleguard.sim.generator import (
    generate_merchants,
    generate_transactions,
    write_merchants_csv,
    write_transactions_csv,
)
from unit.channels.samples import Detail, Entry, Pmt, Tx, camt054, pain002

DAY = date(2026, 11, 20)
LAYOUTS = layouts()


def kind(path: Path) -> model.Recognition:
    data = path.read_bytes()
    head = data[: model.HEAD_BYTES]
    return recognise_file(path, head, len(data) > len(head), len(data), LAYOUTS)


def _txns() -> list[cf.ClearingTxn]:
    at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    return [cf.ClearingTxn("898330154990001", "10000001", f"00000{i}", at, 10_000 + i, 38) for i in range(1, 4)]


def test_transaction_day_files_from_the_generator_utf8_and_gbk(tmp_path: Path) -> None:
    ms = generate_merchants(3, 7)
    table = generate_transactions(ms, DAY, 7)
    for enc in ("utf-8", "gbk"):
        p = tmp_path / f"day-{enc}.csv"
        write_transactions_csv(table, p, encoding=enc)
        assert kind(p).kind == "transactions", enc


def test_merchant_files_csv_gbk_xlsx_and_the_generator_s(tmp_path: Path) -> None:
    rows = [micro(1), enterprise(2)]
    assert kind(write_merchants(tmp_path / "m.csv", rows)).kind == "merchants"
    assert kind(write_merchants(tmp_path / "m-gbk.csv", rows, encoding="gbk")).kind == "merchants"
    assert kind(write_merchants_xlsx(tmp_path / "m.xlsx", rows)).kind == "merchants"
    p = tmp_path / "sim-merchants.csv"
    write_merchants_csv(generate_merchants(3, 7), p, DAY, 7)
    assert kind(p).kind == "merchants"


def test_iso20022_reports_by_namespace_not_by_name(tmp_path: Path) -> None:
    p2 = tmp_path / "statement.csv"  # a misleading name: content decides
    p2.write_text(pain002([Pmt("P1", txs=[Tx("SG20261120M1")])]), encoding="utf-8")
    r = kind(p2)
    assert r.kind == "pain002"
    assert r.created
    n = tmp_path / "n.xml"
    n.write_text(camt054([Entry("10.00", details=[Detail("SG20261120M1", "10.00")])]), encoding="utf-8")
    assert kind(n).kind == "camt054"
    st = bs.Statement(DAY, "STMT-0001-20261120", 1_000_000, [bs.Entry("B1", 500, False, DAY, "SG20261120M1")])
    s = tmp_path / "s.xml"
    s.write_text(bs.camt053_xml(st), encoding="utf-8")
    assert kind(s).kind == "camt053"


def test_clearing_inn_and_rd_from_the_simulator(tmp_path: Path) -> None:
    inn = cf.write_inn(tmp_path, DAY, _txns())
    assert kind(inn).kind == "clearing_inn"
    rd = cf.write_rd(tmp_path, DAY, _txns(), encoding="gbk")
    assert kind(rd).kind == "clearing_rd"
    renamed = tmp_path / "clearing.txt"
    renamed.write_bytes(inn.read_bytes())
    assert kind(renamed).kind == "clearing_inn"  # by its fixed-width first line, whatever the name


def test_tms_exports_csv_and_json_and_a_bank_result_file(tmp_path: Path) -> None:
    c = tmp_path / "tms.csv"
    c.write_text("serialNo,tid,modelName,battery,lastActiveTime\nSN1,10000001,A920,80,2026-11-20 10:00:00\n")
    assert kind(c).kind == "tms"
    zh = tmp_path / "tms-zh.csv"
    zh.write_text("终端序列号,终端号,终端型号,电量\nSN1,10000001,A920,80\n", encoding="gbk")
    assert kind(zh).kind == "tms"
    j = tmp_path / "tms.json"
    j.write_text('[{"serialNo": "SN1", "tid": "10000001", "modelName": "A920", "battery": 80}]')
    assert kind(j).kind == "tms"
    b = tmp_path / "bank.csv"
    b.write_text("流水号,交易日期,金额,借贷标志,状态,客户流水号\nB1,2026-11-20,100.00,借,成功,SG20261120M1\n",
                 encoding="gbk")
    assert kind(b).kind == "bank_file"


def test_a_broken_file_of_a_kind_is_still_that_kind_so_its_importer_names_the_place(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"  # the transaction header without 交易类型: the importer names the missing column
    p.write_text("参考号,商户号,终端号,交易时间,卡类型,金额\nR1,898330154990001,10000001,2026-11-20 10:00:00,DC,1.00\n")
    assert kind(p).kind == "transactions"


@pytest.mark.parametrize(("data", "words"), [
    (b"", "空文件"),
    (b"\n\r\n  ", "空文件"),
    (b"\x00\x01\x02junk\xff" * 50, "二进制"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "二进制"),
    (b"a,b,c\n1,2,3\n", "无法识别"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>', "DOCTYPE"),
    (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>', "pain.001"),
    (b"<html><body>hello</body></html>", "ISO 20022"),
    (b'{"hello": "world"}', "TMS"),
    (b"PK\x03\x04not really a zip", "Excel"),
    ("\u00e9".encode("latin-1") * 10 + b"\xff\xfe\xfd", "UTF-8"),
])
def test_hostile_or_unknown_heads_are_refused_with_a_reason(tmp_path: Path, data: bytes, words: str) -> None:
    p = tmp_path / "x.dat"
    p.write_bytes(data)
    r = kind(p)
    assert r.kind is None
    assert words in r.reason_zh + r.reason_en
    assert r.reason_en


def test_names_partial_files_and_name_clashes() -> None:
    assert model.is_partial("day.csv.part")
    assert model.is_partial(".hidden")
    assert model.is_partial("x.TMP")
    assert not model.is_partial("day.csv")
    assert model.safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert model.safe_name("a\nb\x00c.csv") == "a_b_c.csv"
    assert model.safe_name("-rf") == "rf"
    assert model.safe_name("x\udcff.csv") == "x_.csv"
    long = model.safe_name("a" * 500 + ".csv")
    assert len(long) <= model.MAX_NAME
    assert long.endswith(".csv")
    assert model.name_problem("ok.csv") is None
    assert model.name_problem("a\nb") is not None
    taken = {"f.csv", "f.2.csv.reason.txt"}
    assert model.free_name("f.csv", taken.__contains__) == "f.3.csv"
    assert model.free_name("g.csv", taken.__contains__) == "g.csv"


def test_a_report_s_business_day_is_its_creation_time_in_the_business_zone() -> None:
    from zoneinfo import ZoneInfo

    z = ZoneInfo("Asia/Shanghai")
    assert model.report_day("2026-11-20T17:30:00Z", lambda at: at.astimezone(z).date()) == date(2026, 11, 21)
    assert model.report_day("2026-11-20T09:00:00", lambda at: at.astimezone(z).date()) == date(2026, 11, 20)
    assert model.report_day("garbage", lambda at: at.date()) is None
