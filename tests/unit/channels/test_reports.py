"""pain.002 and camt.054 reading: schema-valid samples parse exactly; hostile or broken files are refused whole."""

from __future__ import annotations

import importlib.metadata
import tracemalloc
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from settleguard.channels.iso20022.reports import (
    NotificationReport,
    ReportRejected,
    StatusReport,
    check_report,
    implied_statuses,
    parse_amount,
    read_report,
)
from settleguard.money import fen_to_yuan

from .memory import peak_rss_kib
from .samples import Detail, Entry, Pmt, Tx, camt054, pain002


def _xsd(dist: str, path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(importlib.metadata.distribution(dist).locate_file(path))))


@pytest.fixture(scope="module")
def pain002_schemas() -> dict[str, etree.XMLSchema]:
    return {v: _xsd("pain001", f"pain001/pain002/schemas/pain.002.001.{v}.xsd") for v in ("03", "12", "14")}


@pytest.fixture(scope="module")
def camt054_schema() -> etree.XMLSchema:
    return _xsd("camt053", "camt053/xsd/camt.054.001.08.xsd")


def write(tmp_path: Path, text: str, name: str = "report.xml", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def valid(schema: etree.XMLSchema, path: Path) -> None:
    doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    assert schema.validate(doc), schema.error_log


MIXED = [
    Pmt("SGB20261118001-00001", txs=[
        Tx("SG20261118M1", "ACSC", amount="123.45"),
        Tx("SG20261118M2", "RJCT", code="AC04", info=["账户已销户", "account closed"]),
        Tx("SG20261118M3", "RJCT", prtry="3031", info=["账号户名不符"]),
        Tx("SG20261118M4", "PDNG"),
    ]),
    Pmt("SGB20261118001-00002", status="ACSP", txs=[Tx("SG20261119M5", None), Tx("SG20261119M6", "ACCP")]),
]


@pytest.mark.parametrize("version", ["03", "12", "14"])
def test_a_pain002_of_any_version_parses_into_group_payment_and_transaction_statuses(
        tmp_path: Path, pain002_schemas: dict[str, etree.XMLSchema], version: str) -> None:
    path = write(tmp_path, pain002(MIXED, group_status="PART", version=version))
    valid(pain002_schemas[version], path)
    report = read_report(path)
    assert isinstance(report, StatusReport)
    assert report.header.version == f"pain.002.001.{version}"
    assert report.header.message_id == "BANK-RPT-0001"
    assert report.group.original_message_id == "SGB20261118001"
    assert report.group.status == "PART"
    assert [(p.original_payment_information_id, p.status) for p in report.payment_informations] == [
        ("SGB20261118001-00001", None), ("SGB20261118001-00002", "ACSP")]
    by_key = {t.end_to_end_id: t for t in report.transactions}
    assert list(by_key) == ["SG20261118M1", "SG20261118M2", "SG20261118M3", "SG20261118M4", "SG20261119M5",
                            "SG20261119M6"]
    assert by_key["SG20261118M1"].status == "ACSC"
    assert by_key["SG20261118M1"].amount_fen == 12345
    rejected = by_key["SG20261118M2"]
    assert (rejected.status, rejected.reason_code, rejected.additional_info) == ("RJCT", "AC04",
                                                                               "账户已销户; account closed")
    assert (by_key["SG20261118M3"].reason_code, by_key["SG20261118M3"].reason_proprietary) == (None, "3031")
    assert by_key["SG20261118M4"].status == "PDNG"
    inherited = by_key["SG20261119M5"]
    assert (inherited.status, inherited.status_source) == ("ACSP", "payment_information")
    assert by_key["SG20261119M6"].status_source == "transaction"
    assert by_key["SG20261119M6"].payment_information_id == "SGB20261118001-00002"
    assert len(report.sha256) == 64


def test_a_group_rejection_applies_to_every_transaction_of_the_original_message(
        tmp_path: Path, pain002_schemas: dict[str, etree.XMLSchema]) -> None:
    path = write(tmp_path, pain002([], group_status="RJCT", group_code="AM04", group_info=["备付金账户余额不足"]))
    valid(pain002_schemas["12"], path)
    report = read_report(path)
    assert isinstance(report, StatusReport)
    assert report.transactions == ()
    original = {"P1": ["K1", "K2"], "P2": ["K3"]}
    implied = implied_statuses(report.header, report.payment_informations, original, set())
    assert [(t.end_to_end_id, t.status, t.reason_code, t.additional_info, t.status_source) for t in implied] == [
        ("K1", "RJCT", "AM04", "备付金账户余额不足", "group"), ("K2", "RJCT", "AM04", "备付金账户余额不足", "group"),
        ("K3", "RJCT", "AM04", "备付金账户余额不足", "group")]


def test_a_payment_information_status_applies_to_its_unlisted_transactions_only(tmp_path: Path) -> None:
    pmts = [Pmt("P1", status="RJCT", code="AC02", txs=[Tx("K1", "RJCT", code="AC02")]), Pmt("P2", status="ACSC")]
    report = read_report(write(tmp_path, pain002(pmts, group_status="PART")))
    assert isinstance(report, StatusReport)
    listed = {t.end_to_end_id for t in report.transactions}
    implied = implied_statuses(report.header, report.payment_informations,
                               {"P1": ["K1", "K2"], "P2": ["K3"], "P3": ["K4"]}, listed)
    assert [(t.end_to_end_id, t.status, t.reason_code, t.status_source) for t in implied] == [
        ("K2", "RJCT", "AC02", "payment_information"), ("K3", "ACSC", None, "payment_information")]


@pytest.mark.parametrize(("group", "pmt_status", "tx_status", "element"), [
    ("RJCT", None, "ACSC", "TxSts"),
    ("PART", "RJCT", "ACCP", "TxSts"),
    ("RJCT", "ACSC", "ACSC", "PmtInfSts"),
])
def test_a_transaction_contradicting_a_rejected_level_rejects_the_file(
        tmp_path: Path, group: str, pmt_status: str | None, tx_status: str, element: str) -> None:
    text = pain002([Pmt("P1", status=pmt_status, txs=[Tx("K1", tx_status)])], group_status=group)
    with pytest.raises(ReportRejected, match="contradicts") as exc:
        read_report(write(tmp_path, text))
    assert exc.value.element == element


def test_a_transaction_without_a_status_at_any_level_is_refused(tmp_path: Path) -> None:
    text = pain002([Pmt("P1", txs=[Tx("K1", "ACSC"), Tx("K2", None)])])
    with pytest.raises(ReportRejected, match="no status") as exc:
        read_report(write(tmp_path, text))
    assert exc.value.line == text.splitlines().index(next(x for x in text.splitlines() if "K2" in x)) + 1


def test_a_camt054_gives_debits_and_returns_after_success(tmp_path: Path, camt054_schema: etree.XMLSchema) -> None:
    text = camt054([
        Entry("300.00", cd="DBIT", booking="2026-11-19",
              details=[Detail("SG20261118M1", "100.00"), Detail("SG20261118M7", "200.00")]),
        Entry("123.45", details=[Detail("SG20261118M1", "123.45", return_code="AC04",
                                        return_info=["收款账户已销户", "退票"])]),
        Entry("5.00", cd="CRDT", details=[]),
    ])
    path = write(tmp_path, text)
    valid(camt054_schema, path)
    report = read_report(path)
    assert isinstance(report, NotificationReport)
    assert report.header.kind == "camt.054"
    assert report.header.version == "camt.054.001.08"
    assert [(e.end_to_end_id, e.amount_fen, e.credit_debit, e.is_return) for e in report.entries] == [
        ("SG20261118M1", 10000, "DBIT", False), ("SG20261118M7", 20000, "DBIT", False),
        ("SG20261118M1", 12345, "CRDT", True), (None, 500, "CRDT", False)]
    (ret,) = report.returns
    assert ret.return_reason is not None
    assert ret.return_reason.code == "AC04"
    assert ret.return_reason.additional_info == "收款账户已销户; 退票"
    assert ret.booking_date == date(2026, 11, 23)
    assert ret.entry_status == "BOOK"
    assert ret.notification_id == "NTF-20261123"
    assert report.entries[0].booking_date == date(2026, 11, 19)


def test_a_camt054_of_another_version_and_a_single_detail_without_amount(tmp_path: Path) -> None:
    text = camt054([Entry("88.80", details=[Detail("K9", None, return_code="AC06")])], version="02")
    report = read_report(write(tmp_path, text))
    assert isinstance(report, NotificationReport)
    assert report.header.version == "camt.054.001.02"
    assert [(e.end_to_end_id, e.amount_fen, e.is_return) for e in report.entries] == [("K9", 8880, True)]


@pytest.mark.parametrize("encoding", ["GBK", "UTF-8"])
def test_gbk_and_utf8_files_are_both_read(tmp_path: Path, encoding: str) -> None:
    pain = pain002([Pmt("P1", txs=[Tx("K1", "RJCT", code="AC04", info=["账户已销户，请联系商户重新绑卡"])])],
                   encoding=encoding)
    report = read_report(write(tmp_path, pain, encoding=encoding))
    assert isinstance(report, StatusReport)
    assert report.transactions[0].additional_info == "账户已销户，请联系商户重新绑卡"
    camt = camt054([Entry("1.00", details=[Detail("K1", "1.00", "AC04", ["户名不符退票"])])], encoding=encoding)
    notif = read_report(write(tmp_path, camt, "c.xml", encoding=encoding))
    assert isinstance(notif, NotificationReport)
    assert notif.returns[0].return_reason is not None
    assert notif.returns[0].return_reason.additional_info == "户名不符退票"


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"><CstmrPmtStsRpt><GrpHdr><MsgId>&lol9;</MsgId>
<CreDtTm>2026-11-19T08:00:00</CreDtTm></GrpHdr></CstmrPmtStsRpt></Document>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"><CstmrPmtStsRpt><GrpHdr><MsgId>&xxe;</MsgId>
<CreDtTm>2026-11-19T08:00:00</CreDtTm></GrpHdr></CstmrPmtStsRpt></Document>
"""
EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/evil.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"/>
"""


@pytest.mark.parametrize(("text", "element"), [(BILLION_LAUGHS, "DOCTYPE"), (XXE, "DOCTYPE"),
                                               (EXTERNAL_DTD, "DOCTYPE")])
def test_dtds_and_entities_are_refused(tmp_path: Path, text: str, element: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ReportRejected, match="DTD") as exc:
            read_report(write(tmp_path, text))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.value.element == element
    assert exc.value.line == 2
    assert "root:" not in str(exc.value)  # nothing from /etc/passwd leaks into the message
    assert peak < 5_000_000


def test_a_dtd_hidden_after_a_long_comment_is_still_refused(tmp_path: Path) -> None:
    text = '<?xml version="1.0"?>\n<!--' + "x" * 100_000 + '-->\n' + XXE.split("\n", 1)[1]
    with pytest.raises(ReportRejected, match="DTD") as exc:
        read_report(write(tmp_path, text))
    assert exc.value.element == "DOCTYPE"


def test_an_undeclared_entity_reference_is_malformed(tmp_path: Path) -> None:
    text = pain002([Pmt("P1", txs=[Tx("K1", "RJCT", info=["&xxe;"])])]).replace("&amp;xxe;", "&xxe;")
    with pytest.raises(ReportRejected, match="malformed"):
        read_report(write(tmp_path, text))


def test_a_truncated_file_is_refused_whole_naming_the_line(tmp_path: Path) -> None:
    txs = [Tx(f"K{i}", "ACSC") for i in range(50)]
    text = pain002([Pmt("P1", txs=txs)])
    cut = text[: text.index("K40")]
    with pytest.raises(ReportRejected, match="malformed") as exc:
        read_report(write(tmp_path, cut))
    assert exc.value.line is not None
    assert exc.value.line >= cut.count("\n")
    with pytest.raises(ReportRejected):
        check_report(write(tmp_path, cut, "again.xml"))


@pytest.mark.parametrize(("text", "element"), [
    ('<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>', "Document"),
    ('<?xml version="1.0"?>\n<Document xmlns="urn:example:not-iso"/>', "Document"),
    ('<?xml version="1.0"?>\n<Document/>', "Document"),
    ('<?xml version="1.0"?>\n<Report xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"/>', "Report"),
    ('<?xml version="1.0"?>\n<html><body>502 Bad Gateway</body></html>', "html"),
])
def test_a_wrong_root_or_namespace_is_refused(tmp_path: Path, text: str, element: str) -> None:
    with pytest.raises(ReportRejected, match="not a pain.002 or camt.054") as exc:
        read_report(write(tmp_path, text))
    assert (exc.value.line, exc.value.element) == (2, element)


@pytest.mark.parametrize(("amount", "reason"), [("12.345", "fractions of a fen"), ("-1.00", "decimal amount"),
                                                ("1e3", "decimal amount"), ("", "empty")])
def test_a_bad_amount_rejects_the_file_naming_the_line_and_element(tmp_path: Path, amount: str, reason: str) -> None:
    entries = [Entry("1.00", details=[Detail("K1", "1.00")]), Entry(amount or " ", details=[])]
    text = camt054(entries)
    with pytest.raises(ReportRejected, match=reason) as exc:
        read_report(write(tmp_path, text))
    assert exc.value.element == "Ntry/Amt"
    assert exc.value.line == next(n for n, line in enumerate(text.splitlines(), 1) if "E2" in line)
    pain = pain002([Pmt("P1", txs=[Tx("K1", "ACSC", amount="12.345")])])
    with pytest.raises(ReportRejected, match="fractions of a fen") as exc2:
        read_report(write(tmp_path, pain, "p.xml"))
    assert exc2.value.element == "OrgnlTxRef/Amt/InstdAmt"


def test_other_currencies_and_inconsistent_batch_entries_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportRejected, match="CNY"):
        read_report(write(tmp_path, camt054([Entry("1.00")], ccy="USD")))
    bad_sum = camt054([Entry("3.00", details=[Detail("K1", "1.00"), Detail("K2", "1.00")])])
    with pytest.raises(ReportRejected, match="sum"):
        read_report(write(tmp_path, bad_sum, "s.xml"))
    no_amount = camt054([Entry("2.00", details=[Detail("K1", "1.00"), Detail("K2", None)])])
    with pytest.raises(ReportRejected, match="missing amount"):
        read_report(write(tmp_path, no_amount, "n.xml"))


@pytest.mark.parametrize(("mutate", "element"), [
    (lambda s: s.replace("<OrgnlEndToEndId>K2</OrgnlEndToEndId>", ""), "TxInfAndSts/OrgnlEndToEndId"),
    (lambda s: s.replace("<MsgId>BANK-RPT-0001</MsgId>", ""), "GrpHdr/MsgId"),
    (lambda s: s.replace("<OrgnlPmtInfId>P1</OrgnlPmtInfId>", ""), "OrgnlPmtInfAndSts/OrgnlPmtInfId"),
    (lambda s: s.replace("<TxSts>ACSC</TxSts>", "<TxSts>OKAY</TxSts>"), "TxSts"),
    (lambda s: s.replace("pain.001.001.09", "pacs.008.001.08"), "OrgnlMsgNmId"),
])
def test_a_missing_required_element_or_unknown_code_is_named(tmp_path: Path, mutate: object, element: str) -> None:
    text = pain002([Pmt("P1", txs=[Tx("K1", "RJCT"), Tx("K2", "ACSC")])])
    assert callable(mutate)
    with pytest.raises(ReportRejected) as exc:
        read_report(write(tmp_path, mutate(text)))
    assert exc.value.element == element
    assert exc.value.line is not None


def test_two_phase_reading_checks_first_and_notices_a_changed_file(tmp_path: Path) -> None:
    text = pain002([Pmt("P1", txs=[Tx(f"K{i}", "ACSC" if i % 2 else "RJCT", code=None if i % 2 else "AC01")
                                   for i in range(20)])])
    path = write(tmp_path, text)
    checked = check_report(path)
    assert checked.count == 20
    assert checked.header.group is not None
    full = read_report(path)
    assert isinstance(full, StatusReport)
    assert list(checked.items()) == list(full.transactions)
    assert checked.sha256 == full.sha256
    path.write_text(text.replace("AC01", "AC04"), encoding="utf-8")
    with pytest.raises(ReportRejected, match="changed"):
        list(checked.items())


def test_a_bad_element_late_in_the_file_returns_nothing(tmp_path: Path) -> None:
    txs = [Tx(f"K{i}", "ACSC") for i in range(200)] + [Tx("LAST", "ACSC", amount="-5.00")]
    with pytest.raises(ReportRejected):
        read_report(write(tmp_path, pain002([Pmt("P1", txs=txs)])))
    with pytest.raises(ReportRejected):
        check_report(write(tmp_path, pain002([Pmt("P1", txs=txs)]), "b.xml"))


def _big_report(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        head, tail = pain002([Pmt("P1", txs=[Tx("SPLIT", "ACSC")])]).split(
            "<TxInfAndSts><OrgnlEndToEndId>SPLIT</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>")
        f.write(head)
        for i in range(n):
            f.write(f"<TxInfAndSts><OrgnlEndToEndId>SG20261118M{i}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
                    "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>账户已销户</AddtlInf></StsRsnInf></TxInfAndSts>\n")
        f.write(tail)


PARSE = """
from pathlib import Path
from settleguard.channels.iso20022.reports import check_report
checked = check_report(Path({path!r}))
assert sum(1 for _ in checked.items()) == checked.count == {n}
"""


@pytest.mark.slow
def test_statuses_parse_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    _big_report(small, 5_000)
    _big_report(large, 100_000)
    grown_file_kib = (large.stat().st_size - small.stat().st_size) // 1024
    assert grown_file_kib > 15_000
    rss_small = peak_rss_kib(PARSE.format(path=str(small), n=5_000))
    rss_large = peak_rss_kib(PARSE.format(path=str(large), n=100_000))
    # Holding the tree would grow memory by several times the file's growth; streaming barely grows.
    assert rss_large - rss_small < grown_file_kib / 4, (rss_small, rss_large, grown_file_kib)


@given(st.integers(min_value=0, max_value=10**17))
def test_amount_text_round_trips_to_fen(fen: int) -> None:
    text = fen_to_yuan(fen)
    assert parse_amount(text, "CNY") == fen
    assert parse_amount(text + "000", "CNY") == fen
    if fen % 100 == 0:
        assert parse_amount(str(fen // 100), "CNY") == fen


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=9))
def test_fractions_of_a_fen_are_never_rounded(fen: int, extra: int) -> None:
    with pytest.raises(ValueError, match="fractions"):
        parse_amount(f"{fen_to_yuan(fen)}{extra}", "CNY")
