"""camt.053 / camt.054 reader: entries, batches, reversal, statuses, balances, TxsSummry, hostile files."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from lxml import etree
from tests.unit.reconciliation.camt_files import (
    NS08,
    PAN,
    bal,
    camt053,
    entry,
    standard_body,
    standard_summary,
    summary,
    tx,
    write,
)

from settleguard.reconciliation.camt import read_camt
from settleguard.reconciliation.model import Direction, EntryStatus, StatementRejected


def _xsd(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(importlib.metadata.distribution("camt053").locate_file(path))))


@pytest.fixture(scope="module")
def schemas() -> dict[str, etree.XMLSchema]:
    return {v: _xsd(f"camt053/xsd/camt.{v}.xsd") for v in ("053.001.08", "053.001.02", "054.001.08")}


def valid(schema: etree.XMLSchema, path: Path) -> None:
    doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    assert schema.validate(doc), schema.error_log


def rejected(path: Path) -> StatementRejected:
    with pytest.raises(StatementRejected) as info:
        read_camt(path)
    return info.value


def test_a_camt053_with_batches_reversal_and_pending_reads_into_bank_lines(tmp_path: Path, schemas: dict) -> None:
    path = write(tmp_path, camt053(standard_body(), txs_summary=standard_summary()))
    valid(schemas["053.001.08"], path)
    [st] = read_camt(path)
    assert (st.statement_id, st.account) == ("STMT-20261206", "110060*****2345")
    assert {c: b.amount_fen for c, b in st.balances.items()} == {"PRCD": 1_000_000, "OPBD": 1_000_000,
                                                                  "CLBD": 949_950}
    assert st.balance_difference() == 0
    by_ref = {ln.entry_ref: ln for ln in st.lines}
    assert sorted(by_ref) == ["E1", "E2/1", "E2/2", "E3", "E4", "E5"]
    assert (by_ref["E1"].amount_fen, by_ref["E1"].end_to_end_id, by_ref["E1"].acct_svcr_ref) == (
        10050, "SGE2E0001", "BANK-E1")
    # a batch booking with TxDtls: one line per transaction, the batch's PmtInfId (ours, verbatim), count, total
    assert [(by_ref[r].amount_fen, by_ref[r].end_to_end_id) for r in ("E2/1", "E2/2")] == [
        (12000, "SGE2E0002"), (18000, "SGE2E0003")]
    assert {(by_ref[r].pmt_inf_id, by_ref[r].batch_count, by_ref[r].batch_total_fen) for r in ("E2/1", "E2/2")} == {
        ("SGB00000000000000000001", 2, 30000)}
    # a batch booking with no TxDtls is valid: one line carrying the batch
    e3 = by_ref["E3"]
    assert (e3.amount_fen, e3.end_to_end_id, e3.pmt_inf_id, e3.batch_count) == (20000, None,
                                                                              "SGB00000000000000000002", 5)
    assert (by_ref["E4"].status, by_ref["E4"].booking_date) == (EntryStatus.PENDING, None)
    e5 = by_ref["E5"]
    assert (e5.reversal, e5.direction, e5.status) == (True, Direction.CREDIT, EntryStatus.BOOKED)
    assert not any(ln.reversal for ln in st.lines if ln is not e5)
    t = st.totals()
    assert (t.lines, t.booked, t.pending, t.debit_fen, t.credit_fen) == (6, 5, 1, 60050, 10000)


def test_a_card_number_in_addtl_ntry_inf_is_masked_in_raw(tmp_path: Path) -> None:
    [st] = read_camt(write(tmp_path, camt053(standard_body())))
    e5 = next(ln for ln in st.lines if ln.entry_ref == "E5")
    assert "AddtlNtryInf" in e5.raw
    assert "621700*********4874" in e5.raw
    assert all(PAN not in ln.raw for ln in st.lines)


def test_the_older_status_form_and_other_versions_are_read(tmp_path: Path, schemas: dict) -> None:
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
    body = "\n".join(entry(r, a, sts=s, details="<NtryDtls>" + tx(f"SGX{r}") + "</NtryDtls>").replace(
        f"<Sts><Cd>{s}</Cd></Sts>", f"<Sts>{s}</Sts>") for r, a, s in (("A", "1.00", "BOOK"), ("B", "2.00", "PDNG"),
                                                                       ("C", "3.00", "INFO")))
    path = write(tmp_path, camt053(body, ns=ns, balances=bal("OPBD", "10.00") + bal("CLBD", "9.00")))
    valid(schemas["053.001.02"], path)
    [st] = read_camt(path)
    assert [(ln.entry_ref, ln.status, ln.end_to_end_id) for ln in st.lines] == [
        ("A", EntryStatus.BOOKED, "SGXA"), ("B", EntryStatus.PENDING, "SGXB"), ("C", EntryStatus.INFO, "SGXC")]
    assert st.balance_difference() == 0


def test_a_camt054_notification_reads(tmp_path: Path, schemas: dict) -> None:
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"
    text = (f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{ns}"><BkToCstmrDbtCdtNtfctn>'
            "<GrpHdr><MsgId>N1</MsgId><CreDtTm>2026-12-07T06:00:00+08:00</CreDtTm></GrpHdr>"
            "<Ntfctn><Id>NTF-1</Id><Acct><Id><Othr><Id>110060001012345</Id></Othr></Id></Acct>"
            + entry("X1", "12.34", details="<NtryDtls>" + tx("SG20261206M7") + "</NtryDtls>")
            + "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>")
    path = write(tmp_path, text)
    valid(schemas["054.001.08"], path)
    [st] = read_camt(path)
    assert (st.source, st.statement_id, st.balances) == ("camt.054", "NTF-1", {})
    assert [(ln.amount_fen, ln.end_to_end_id) for ln in st.lines] == [(1234, "SG20261206M7")]


@pytest.mark.parametrize(("stated", "element"), [
    (summary(6, "755.50", "555.50", "DBIT", 1, "100.00", 4, "655.50"), "TxsSummry/TtlNtries/NbOfNtries"),
    (summary(5, "755.51", "555.50", "DBIT", 1, "100.00", 4, "655.50"), "TxsSummry/TtlNtries/Sum"),
    (summary(5, "755.50", "555.50", "CRDT", 1, "100.00", 4, "655.50"), "TxsSummry/TtlNtries/TtlNetNtry"),
    (summary(5, "755.50", "555.50", "DBIT", 1, "100.00", 4, "655.00"), "TxsSummry/TtlDbtNtries/Sum"),
])
def test_a_txs_summary_that_disagrees_with_the_entries_is_refused_naming_it(
        tmp_path: Path, stated: str, element: str, schemas: dict) -> None:
    path = write(tmp_path, camt053(standard_body(), txs_summary=stated))
    valid(schemas["053.001.08"], path)  # schema-valid: only the content disagrees
    exc = rejected(path)
    assert element in exc.where
    assert "汇总与明细不符" in exc.zh
    assert "TxsSummry" in exc.en


@pytest.mark.parametrize(("change", "element", "zh"), [
    (("100.50", "100.505"), "Ntry/Amt", "两位小数"),
    (('<Amt Ccy="CNY">100.50', '<Amt Ccy="USD">100.50'), "Ntry/Amt", "人民币"),
    (("<Cd>PDNG</Cd>", "<Cd>FUTR</Cd>"), "Ntry/Sts", "BOOK"),
    (("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>3</NbOfTxs>"), "Btch/NbOfTxs", "批量笔数"),
    (('<Amt Ccy="CNY">120.00', '<Amt Ccy="CNY">121.00'), "Ntry/NtryDtls", "明细金额合计"),
    (("<CdtDbtInd>CRDT</CdtDbtInd><RvslInd>", "<CdtDbtInd>X</CdtDbtInd><RvslInd>"), "Ntry/CdtDbtInd", "借贷"),
    (("<Id>STMT-20261206</Id>", ""), "Stmt/Id", "缺少必需元素"),
])
def test_a_bad_element_refuses_the_whole_file_naming_it(tmp_path: Path, change: tuple[str, str], element: str,
                                                         zh: str) -> None:
    text = camt053(standard_body())
    assert change[0] in text
    exc = rejected(write(tmp_path, text.replace(change[0], change[1], 1)))
    assert element in exc.where
    assert zh in exc.zh
    assert "行 line" in exc.where  # the line is named too


def test_malformed_xml_is_refused_naming_the_line(tmp_path: Path) -> None:
    text = camt053(standard_body()).replace("</NtryRef>", "</NtryRefX>", 1)
    exc = rejected(write(tmp_path, text))
    assert "line" in exc.where
    assert "XML" in exc.en


def test_another_message_is_refused(tmp_path: Path) -> None:
    text = camt053(standard_body(), ns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09")
    assert "camt.053" in rejected(write(tmp_path, text)).zh


XXE = ('<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       f'<Document xmlns="{NS08}"><BkToCstmrStmt><GrpHdr><MsgId>&xxe;</MsgId></GrpHdr></BkToCstmrStmt></Document>')
LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                    for i in range(1, 10))
          + f']>\n<Document xmlns="{NS08}"><BkToCstmrStmt>&lol9;</BkToCstmrStmt></Document>')
PADDED_DTD = ('<?xml version="1.0"?>\n' + "<!-- " + "x" * 70_000 + " -->\n"
              f'<!DOCTYPE Document SYSTEM "http://example.invalid/x.dtd">\n<Document xmlns="{NS08}"/>')


@pytest.mark.parametrize("text", [XXE, LAUGHS, PADDED_DTD], ids=["xxe", "billion-laughs", "dtd-after-64k"])
def test_dtds_and_entities_are_refused(tmp_path: Path, text: str) -> None:
    exc = rejected(write(tmp_path, text))
    assert "DTD" in exc.zh
    assert "DTD" in exc.en


def test_a_file_over_the_size_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, camt053(standard_body()))
    with pytest.raises(StatementRejected, match="too large"):
        read_camt(path, max_bytes=100)
