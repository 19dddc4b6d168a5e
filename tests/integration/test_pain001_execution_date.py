"""pain.001 never asks a bank to execute in the past (issue 16, item 7): the requested execution date is at
least today's business day in Beijing, also for payouts whose value date has passed; an export never
overwrites a batch file already written."""

from __future__ import annotations

import importlib.metadata
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from sqlalchemy import Engine, func, select

from payout_helpers import VALUE_DAY, make_payouts, status
from settleguard.cards.vault import Vault
from settleguard.channels.base import PayoutInstruction
from settleguard.channels.iso20022.pain001 import Agent, BatchConfig, DebtorAccount, write_pain001
from settleguard.db import tables as t
from settleguard.payouts.files import export_pain001
from settleguard.payouts.model import PayoutStatus

SH = ZoneInfo("Asia/Shanghai")
N = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
XSD = Path(str(importlib.metadata.distribution("sepaxml").locate_file("sepaxml/schemas/pain.001.001.09.xsd")))
CONFIG = BatchConfig(initiating_party="某某收单有限公司",
                     debtor=DebtorAccount("某某收单有限公司备付金户", "110060123456789", Agent(cnaps="102100099996")))


def execution_dates(path: Path) -> list[str]:
    doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    assert etree.XMLSchema(etree.parse(str(XSD))).validate(doc)
    return [p.findtext("p:ReqdExctnDt/p:Dt", namespaces=N) for p in doc.findall(".//p:PmtInf", namespaces=N)]


def instruction(i: int, day: date) -> PayoutInstruction:
    return PayoutInstruction(f"SG20261118M{i}", 10_000 + i, "CNY", f"商户{i}", "6222021234567890123", "ICBC",
                             "personal", day)


def test_the_writer_moves_past_value_dates_to_the_earliest_day_and_keeps_later_ones(tmp_path: Path) -> None:
    created = datetime(2026, 11, 20, 9, 30, tzinfo=SH)
    batch = [instruction(1, date(2026, 11, 17)), instruction(2, date(2026, 11, 19)),
             instruction(3, date(2026, 11, 20)), instruction(4, date(2026, 11, 24))]

    summary = write_pain001(tmp_path / "a.xml", batch, CONFIG, message_id="M1", created_at=created)
    assert execution_dates(tmp_path / "a.xml") == ["2026-11-20", "2026-11-24"]
    assert [g.count for g in summary.groups] == [3, 1]

    write_pain001(tmp_path / "b.xml", batch, CONFIG, message_id="M2", created_at=created,
                  earliest_execution=date(2026, 11, 23))
    assert execution_dates(tmp_path / "b.xml") == ["2026-11-23", "2026-11-24"]


def test_an_export_after_the_value_date_asks_for_the_next_business_day_in_beijing(
    engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    ds = make_payouts(engine, vault, tmp_path, [100_000, 200_000])
    saturday = datetime.combine(date(2026, 11, 21), time(10), SH)  # value date Thursday the 19th has passed
    assert VALUE_DAY < saturday.date()

    res = export_pain001(engine, vault, CONFIG, tmp_path / "late.xml", as_of=saturday.date(),
                         now=saturday.astimezone(UTC))

    assert res.count == 2
    assert execution_dates(tmp_path / "late.xml") == ["2026-11-23"]  # Monday, never Thursday the 19th
    assert {status(engine, d.payout_id) for d in ds} == {PayoutStatus.SUBMITTED}


def test_late_in_the_evening_utc_is_already_tomorrow_in_beijing(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    make_payouts(engine, vault, tmp_path, [100_000])
    now = datetime(2026, 11, 19, 17, 0, tzinfo=UTC)  # 01:00 on Friday the 20th in Beijing

    export_pain001(engine, vault, CONFIG, tmp_path / "b.xml", as_of=date(2026, 11, 20), now=now)

    assert execution_dates(tmp_path / "b.xml") == ["2026-11-20"]


def test_an_export_never_overwrites_a_file_and_claims_nothing_then(engine: Engine, vault: Vault,
                                                                    tmp_path: Path) -> None:
    ds = make_payouts(engine, vault, tmp_path, [100_000])
    out = tmp_path / "batch.xml"
    out.write_bytes(b"<yesterday's batch, not yet uploaded/>")
    now = datetime.combine(VALUE_DAY, time(9), SH) + timedelta(minutes=5)

    with pytest.raises(FileExistsError):
        export_pain001(engine, vault, CONFIG, out, as_of=VALUE_DAY, now=now)

    assert out.read_bytes() == b"<yesterday's batch, not yet uploaded/>"
    assert status(engine, ds[0].payout_id) is PayoutStatus.CREATED
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.payout_attempts)).scalar_one() == 0
