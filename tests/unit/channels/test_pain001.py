"""pain.001.001.09 batches: valid against the official XSD, exact amounts, streamed, all-or-nothing."""

from __future__ import annotations

import importlib.metadata
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from settleguard.channels.base import PayoutInstruction
from settleguard.channels.iso20022.pain001 import (
    NS,
    Agent,
    BatchConfig,
    DebtorAccount,
    Pain001Error,
    write_pain001,
)
from settleguard.money import yuan_to_fen

from .memory import peak_rss_kib

XSD_PATH = Path(str(importlib.metadata.distribution("sepaxml").locate_file("sepaxml/schemas/pain.001.001.09.xsd")))
N = {"p": NS}
PAN = "6222021234567890123"
CREATED = datetime(2026, 11, 18, 9, 30, tzinfo=timezone(timedelta(hours=8)))
PLATFORM = DebtorAccount("某某收单有限公司备付金户", "110060123456789", Agent(cnaps="102100099996", name="中国工商银行"))
CORPORATE = DebtorAccount("某某收单有限公司对公户", "310066000000001", Agent(bank_code="BOCOM"))


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_PATH)))


def config(**kw: object) -> BatchConfig:
    base: dict[str, object] = {"initiating_party": "某某收单有限公司", "debtor": PLATFORM,
                               "creditor_agents": {"CCB": Agent(cnaps="105100000017", name="中国建设银行")}}
    base.update(kw)
    return BatchConfig(**base)  # type: ignore[arg-type]


def instruction(i: int, amount_fen: int = 12_345, *, bank: str = "ICBC", day: date = date(2026, 11, 18),
                kind: str = "personal", account: str = PAN) -> PayoutInstruction:
    return PayoutInstruction(f"SG20261118M{i}", amount_fen, "CNY", f"商户{i}有限公司", account, bank, kind, day)


def parse(path: Path) -> etree._ElementTree:
    return etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))


def test_a_batch_validates_against_the_official_xsd_and_carries_every_field(tmp_path: Path,
                                                                              schema: etree.XMLSchema) -> None:
    batch = [instruction(1, 100, bank="CCB"), instruction(2, 99_999_999_99, bank="ICBC"),
             instruction(3, 1, day=date(2026, 11, 19))]
    out = tmp_path / "batch.xml"
    summary = write_pain001(out, batch, config(), message_id="SGB20261118001", created_at=CREATED)
    doc = parse(out)
    assert schema.validate(doc), schema.error_log
    assert doc.getroot().tag == f"{{{NS}}}Document"
    assert doc.findtext(".//p:GrpHdr/p:MsgId", namespaces=N) == "SGB20261118001"
    assert doc.findtext(".//p:GrpHdr/p:CreDtTm", namespaces=N) == "2026-11-18T09:30:00+08:00"
    assert doc.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=N) == "3"
    assert doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=N) == "100000001.00"
    assert summary.count == 3
    assert summary.total_fen == 100 + 99_999_999_99 + 1
    pmts = doc.findall(".//p:PmtInf", namespaces=N)
    assert [p.findtext("p:ReqdExctnDt/p:Dt", namespaces=N) for p in pmts] == ["2026-11-18", "2026-11-19"]
    assert [p.findtext("p:NbOfTxs", namespaces=N) for p in pmts] == ["2", "1"]
    assert [p.findtext("p:CtrlSum", namespaces=N) for p in pmts] == ["100000000.99", "0.01"]
    first = pmts[0]
    assert first.findtext("p:Dbtr/p:Nm", namespaces=N) == PLATFORM.name
    assert first.findtext("p:DbtrAcct/p:Id/p:Othr/p:Id", namespaces=N) == PLATFORM.account_number
    assert first.findtext("p:DbtrAgt/p:FinInstnId/p:ClrSysMmbId/p:MmbId", namespaces=N) == "102100099996"
    assert first.findtext("p:DbtrAgt/p:FinInstnId/p:ClrSysMmbId/p:ClrSysId/p:Cd", namespaces=N) == "CNAPS"
    txs = doc.findall(".//p:CdtTrfTxInf", namespaces=N)
    assert [t.findtext("p:PmtId/p:EndToEndId", namespaces=N) for t in txs] == [b.idempotency_key for b in batch]
    ccb, icbc = txs[0], txs[1]
    assert ccb.find("p:Amt/p:InstdAmt", namespaces=N).get("Ccy") == "CNY"
    assert ccb.findtext("p:Amt/p:InstdAmt", namespaces=N) == "1.00"
    assert ccb.findtext("p:CdtrAgt/p:FinInstnId/p:ClrSysMmbId/p:MmbId", namespaces=N) == "105100000017"
    assert icbc.findtext("p:CdtrAgt/p:FinInstnId/p:Othr/p:Id", namespaces=N) == "ICBC"
    assert icbc.findtext("p:Cdtr/p:Nm", namespaces=N) == "商户2有限公司"
    assert icbc.findtext("p:CdtrAcct/p:Id/p:Othr/p:Id", namespaces=N) == PAN
    assert icbc.findtext("p:RmtInf/p:Ustrd", namespaces=N) == "商户结算款 settlement 20261118"


def test_one_payment_information_per_debtor_account_and_execution_date(tmp_path: Path,
                                                                         schema: etree.XMLSchema) -> None:
    batch = [instruction(i, 1000 + i, kind="corporate" if i % 3 == 0 else "personal",
                         day=date(2026, 11, 18) + timedelta(days=i % 2)) for i in range(12)]
    cfg = config(debtor_for=lambda ins: CORPORATE if ins.account_kind == "corporate" else PLATFORM)
    summary = write_pain001(tmp_path / "b.xml", batch, cfg, message_id="M1", created_at=CREATED)
    doc = parse(tmp_path / "b.xml")
    assert schema.validate(doc), schema.error_log
    assert len(summary.groups) == 4
    pmts = doc.findall(".//p:PmtInf", namespaces=N)
    assert len(pmts) == 4
    for group, pmt in zip(summary.groups, pmts, strict=True):
        keys = [t.findtext("p:PmtId/p:EndToEndId", namespaces=N) for t in pmt.findall("p:CdtTrfTxInf", namespaces=N)]
        assert tuple(keys) == group.end_to_end_ids
        assert pmt.findtext("p:PmtInfId", namespaces=N) == group.payment_information_id
        assert pmt.findtext("p:DbtrAcct/p:Id/p:Othr/p:Id", namespaces=N) == group.debtor.account_number
        assert pmt.findtext("p:ReqdExctnDt/p:Dt", namespaces=N) == group.execution_date.isoformat()
        by_key = {b.idempotency_key: b for b in batch}
        assert {(by_key[k].account_kind == "corporate") for k in keys} == {group.debtor == CORPORATE}
        assert {by_key[k].value_date for k in keys} == {group.execution_date}
    assert sorted(k for g in summary.groups for k in g.end_to_end_ids) == sorted(b.idempotency_key for b in batch)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.integers(min_value=1, max_value=10**16), min_size=1, max_size=30))
def test_amounts_round_trip_exactly_and_control_sums_add_up(tmp_path: Path, schema: etree.XMLSchema,
                                                            amounts: list[int]) -> None:
    batch = [instruction(i, a, day=date(2026, 11, 18) + timedelta(days=i % 3)) for i, a in enumerate(amounts)]
    out = tmp_path / "h.xml"
    write_pain001(out, batch, config(), message_id="H", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    doc = parse(out)
    assert schema.validate(doc), schema.error_log
    texts = [t.findtext("p:Amt/p:InstdAmt", namespaces=N) for t in doc.findall(".//p:CdtTrfTxInf", namespaces=N)]
    assert all(t is not None and "e" not in t.lower() and t.count(".") == 1 and len(t.split(".")[1]) == 2
               for t in texts)
    back = {t.findtext("p:PmtId/p:EndToEndId", namespaces=N): yuan_to_fen(t.findtext("p:Amt/p:InstdAmt", namespaces=N))
            for t in doc.findall(".//p:CdtTrfTxInf", namespaces=N)}
    assert back == {b.idempotency_key: b.amount_fen for b in batch}
    assert yuan_to_fen(doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=N)) == sum(amounts)
    for pmt in doc.findall(".//p:PmtInf", namespaces=N):
        inner = [yuan_to_fen(x.text) for x in pmt.findall("p:CdtTrfTxInf/p:Amt/p:InstdAmt", namespaces=N)]
        assert yuan_to_fen(pmt.findtext("p:CtrlSum", namespaces=N)) == sum(inner)
        assert int(pmt.findtext("p:NbOfTxs", namespaces=N)) == len(inner)


@pytest.mark.parametrize(("bad", "message"), [
    (instruction(1, 0), "amount"),
    (instruction(1, -5), "amount"),
    (PayoutInstruction("SG1", 100, "USD", "张三", PAN, "ICBC", "personal", date(2026, 11, 18)), "currency"),
    (PayoutInstruction("X" * 36, 100, "CNY", "张三", PAN, "ICBC", "personal", date(2026, 11, 18)), "EndToEndId"),
    (PayoutInstruction("SG 1", 100, "CNY", "张三", PAN, "ICBC", "personal", date(2026, 11, 18)), "EndToEndId"),
    (PayoutInstruction("SG1", 100, "CNY", " ", PAN, "ICBC", "personal", date(2026, 11, 18)), "creditor name"),
    (PayoutInstruction("SG1", 100, "CNY", "张三", "", "ICBC", "personal", date(2026, 11, 18)), "account number"),
    (PayoutInstruction("SG1", 100, "CNY", "张三", "1" * 35, "ICBC", "personal", date(2026, 11, 18)), "account number"),
])
def test_an_invalid_instruction_rejects_the_batch_and_writes_nothing(tmp_path: Path, bad: PayoutInstruction,
                                                                     message: str) -> None:
    out = tmp_path / "bad.xml"
    with pytest.raises(Pain001Error, match=message) as exc:
        write_pain001(out, [instruction(7), bad], config(), message_id="M", created_at=CREATED)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    assert PAN not in str(exc.value)


def test_a_duplicate_end_to_end_id_rejects_the_batch(tmp_path: Path) -> None:
    with pytest.raises(Pain001Error, match="duplicate"):
        write_pain001(tmp_path / "d.xml", [instruction(1), instruction(1, 200)], config(), message_id="M",
                      created_at=CREATED)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_when_writing_fails(tmp_path: Path) -> None:
    out = tmp_path / "keep.xml"
    out.write_text("earlier batch", encoding="utf-8")

    def explode(ins: PayoutInstruction) -> str:
        raise RuntimeError("remittance text unavailable")

    with pytest.raises(RuntimeError):
        write_pain001(out, [instruction(1)], config(remittance=explode), message_id="M", created_at=CREATED)
    assert out.read_text(encoding="utf-8") == "earlier batch"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.xml"]


def test_naive_times_empty_batches_and_bad_bank_codes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Pain001Error, match="timezone"):
        write_pain001(tmp_path / "x.xml", [instruction(1)], config(), message_id="M",
                      created_at=datetime(2026, 11, 18, 9, 0))  # noqa: DTZ001 - the naive time under test
    with pytest.raises(Pain001Error, match="empty"):
        write_pain001(tmp_path / "x.xml", [], config(), message_id="M", created_at=CREATED)
    with pytest.raises(Pain001Error, match="12"):
        Agent(cnaps="10510000")
    with pytest.raises(Pain001Error):
        Agent()


def test_reprs_do_not_show_full_account_numbers(tmp_path: Path) -> None:
    summary = write_pain001(tmp_path / "r.xml", [instruction(1)], config(), message_id="M", created_at=CREATED)
    assert PAN not in repr(summary)
    assert PAN not in repr(instruction(1))
    assert PLATFORM.account_number not in repr(PLATFORM)


WRITE = """
from datetime import UTC, date, datetime
from pathlib import Path
from settleguard.channels.base import PayoutInstruction
from settleguard.channels.iso20022.pain001 import Agent, BatchConfig, DebtorAccount, write_pain001
cfg = BatchConfig("收单", DebtorAccount("备付金户", "110060123456789", Agent(cnaps="102100099996")))
batch = [PayoutInstruction(f"SG20261118M{{i}}", 10_000 + i, "CNY", "商户有限公司", "6222021234567890123", "ICBC",
                           "personal", date(2026, 11, 18)) for i in range({n})]
write_pain001(Path({path!r}), batch, cfg, message_id="BIG", created_at=datetime(2026, 11, 18, tzinfo=UTC))
"""


@pytest.mark.slow
def test_a_large_batch_is_streamed_not_built_in_memory(tmp_path: Path, schema: etree.XMLSchema) -> None:
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    rss_small = peak_rss_kib(WRITE.format(path=str(small), n=2_000))
    rss_large = peak_rss_kib(WRITE.format(path=str(large), n=100_000))
    grown_file_kib = (large.stat().st_size - small.stat().st_size) // 1024
    assert grown_file_kib > 30_000
    # The instructions themselves must be in memory (about 0.5 KiB each); a tree of the document would
    # add several times the file's size on top.
    assert rss_large - rss_small < grown_file_kib, (rss_small, rss_large, grown_file_kib)
    assert schema.validate(parse(small)), schema.error_log
