"""The single-pass reader (ReportStream) used to apply big reports: same items as the full read, the
same refusals, the message element checked, amounts parsed fast but exactly as parse_amount does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.channels.iso20022.reports import (
    ReportRejected,
    ReportStream,
    StatusReport,
    _plain_amount,
    file_sha256,
    parse_amount,
    read_report,
)

from .samples import Entry, Pmt, Tx, camt054, pain002

MIXED = [
    Pmt("SGB20261118001-00001", txs=[
        Tx("SG20261118M1", "ACSC", amount="123.45"),
        Tx("SG20261118M2", "RJCT", code="AC04", info=["账户已销户", "account closed"]),
        Tx("SG20261118M3", "RJCT", prtry="3031", info=["账号户名不符"]),
        Tx("SG20261118M4", "ACSP", amount="7"),
    ]),
    Pmt("SGB20261118001-00002", status="ACSC", txs=[Tx("SG20261119M5", None), Tx("SG20261119M6", "ACCP")]),
]


def write(tmp_path: Path, text: str, name: str = "report.xml", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["UTF-8", "GBK"])
def test_one_pass_gives_exactly_what_the_full_read_gives(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, pain002(MIXED, group_status="PART", encoding=encoding), encoding=encoding.lower())
    full = read_report(path)
    assert isinstance(full, StatusReport)
    stream = ReportStream(path)
    assert (stream.kind, stream.version) == ("pain.002", "pain.002.001.12")
    items = list(stream.items())
    assert tuple(items) == full.transactions
    assert stream.count == 6
    assert stream.header == full.header
    assert stream.payment_informations == full.payment_informations
    assert stream.sha256 == full.sha256 == file_sha256(path)
    with pytest.raises(RuntimeError):
        list(stream.items())  # read once


def test_the_current_payment_information_is_the_one_of_the_item_just_read(tmp_path: Path) -> None:
    stream = ReportStream(write(tmp_path, pain002(MIXED, group_status="PART")))
    seen = [(t.end_to_end_id, stream.current_payment_information) for t in stream.items()]
    assert all(p is not None and p.original_payment_information_id == t_pmt
               for (_, p), t_pmt in zip(seen, ["SGB20261118001-00001"] * 4 + ["SGB20261118001-00002"] * 2,
                                        strict=True))
    assert seen[4][1] is not None
    assert seen[4][1].status == "ACSC"


def test_a_late_error_is_raised_after_the_items_before_it(tmp_path: Path) -> None:
    """Single pass: items come before the bad element is reached, so the caller must apply them in
    one transaction; the error still names the line and element."""
    text = pain002(MIXED, group_status="PART").replace("<TxSts>ACCP</TxSts>", "<TxSts>PAID</TxSts>")
    stream = ReportStream(write(tmp_path, text))
    items = stream.items()
    got = [next(items) for _ in range(5)]
    with pytest.raises(ReportRejected) as exc:
        next(items)
    assert [t.end_to_end_id for t in got] == ["SG20261118M1", "SG20261118M2", "SG20261118M3", "SG20261118M4",
                                              "SG20261119M5"]
    assert exc.value.element == "TxSts"
    assert exc.value.line is not None


@pytest.mark.parametrize("text", [
    pain002(MIXED).replace("CstmrPmtStsRpt", "CstmrCdtTrfInitn"),  # a pain.001 body in a pain.002 namespace
    pain002(MIXED).replace("CstmrPmtStsRpt", "BkToCstmrDbtCdtNtfctn"),
    '<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.12"/>\n',
])
def test_the_message_element_under_document_must_match_the_namespace(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    for read in (ReportStream, read_report):
        with pytest.raises(ReportRejected) as exc:
            read(path)
        assert str(path) in str(exc.value)
        assert exc.value.element in ("CstmrCdtTrfInitn", "BkToCstmrDbtCdtNtfctn", "CstmrPmtStsRpt")


def test_a_camt054_streams_too(tmp_path: Path) -> None:
    path = write(tmp_path, camt054([Entry("10.00", cd="DBIT")]))
    stream = ReportStream(path)
    assert stream.kind == "camt.054"
    assert [e.amount_fen for e in stream.items()] == [1000]  # type: ignore[union-attr]


def test_a_dtd_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    text = pain002(MIXED).replace("<Document", '<!DOCTYPE Document [<!ENTITY x "ACSC">]>\n<Document', 1)
    with pytest.raises(ReportRejected) as exc:
        ReportStream(write(tmp_path, text))
    assert exc.value.element in ("DOCTYPE", "ENTITY")


@given(st.text(alphabet="0123456789.-+ e٣१", max_size=22), st.sampled_from(["CNY", "USD", None]))
def test_the_fast_amount_path_agrees_with_parse_amount_or_defers_to_it(text: str, ccy: str | None) -> None:
    fast = _plain_amount(text, ccy)
    if fast is not None:
        assert fast == parse_amount(text, ccy)


@pytest.mark.parametrize("text", ["١٢.٠٠", "१०", "12.3٤"])
def test_only_ascii_digits_are_amounts(text: str) -> None:
    assert _plain_amount(text, "CNY") is None
    with pytest.raises(ValueError, match="金额格式错误"):
        parse_amount(text, "CNY")
