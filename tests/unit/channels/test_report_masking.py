"""Card numbers echoed by a bank in a pain.002 or camt.054 never leave the reader: every text it hands on is
masked (plain, grouped, dashed, full-width), in every way of reading; rejections quote file content masked and
bounded. Our own identifiers (OrgnlMsgId, OrgnlPmtInfId) are kept verbatim for matching."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from pan_echo import EchoReturn, EchoTx, camt054_echo, forms, pain002_echo
from settleguard.channels.iso20022.reports import (
    NotificationReport,
    ReportRejected,
    ReportStream,
    StatusReport,
    check_report,
    read_report,
)
from settleguard.masking import has_card_number

PAN = "6217000000000008009"  # not Luhn-valid: masked all the same
LUHN_PAN = "6222021234567890128"
MASK = "621700*********8009"
MSG = "SGB20261118001"
PMT = "SGB20261118001-00001"


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _xsd(dist: str, path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(importlib.metadata.distribution(dist).locate_file(path))))


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a result (dataclasses, tuples), recursively."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _strings(v)


def _no_card_numbers(values: list[Any]) -> list[str]:
    """The strings holding a card number, but for our own payment information id (kept verbatim)."""
    return [s for v in values for s in _strings(v) if s != PMT and (has_card_number(s) or PAN in s)]


def _pain002(tmp_path: Path, version: str) -> Path:
    txs = [EchoTx(f"SG20261118M{i}", "RJCT", PAN, n=i) for i in range(5)]
    txs += [EchoTx("SG20261118M9", "RJCT", LUHN_PAN, code="AC04"), EchoTx("SG20261118M8", "ACSC", PAN, amount="1.00")]
    path = tmp_path / f"pain002.{version}.xml"
    path.write_text(pain002_echo(MSG, [(PMT, txs)], pan=PAN, version=version), encoding="utf-8")
    return path


@pytest.mark.parametrize("version", ["12", "14"])
def test_a_pain002_echoing_a_card_number_everywhere_yields_only_masks(tmp_path: Path, version: str) -> None:
    path = _pain002(tmp_path, version)
    schema = _xsd("pain001", f"pain001/pain002/schemas/pain.002.001.{version}.xsd")
    assert schema.validate(etree.parse(str(path))), schema.error_log  # the bank's file is valid
    assert all(f in path.read_text(encoding="utf-8") for f in forms(PAN))

    report = read_report(path)
    assert isinstance(report, StatusReport)
    assert _no_card_numbers([report.header, report.payment_informations, report.transactions]) == []
    by_key = {t.end_to_end_id: t for t in report.transactions}
    for i in range(5):  # each written form: masked to the same mask (full-width digits stay full-width)
        t = by_key[f"SG20261118M{i}"]
        assert nfkc(t.additional_info) == f"账号{MASK}户名不符; payee account {MASK} name mismatch"
        assert nfkc(t.reason_proprietary or "") == f"账号{MASK}"
    assert by_key["SG20261118M9"].reason_code == "AC04"
    assert "622202*********0128" in by_key["SG20261118M9"].additional_info
    assert by_key["SG20261118M8"].amount_fen == 100
    assert report.header.message_id == f"R{MASK}"
    assert MASK in report.group.reasons[0].additional_info
    # our own identifiers, matched against the pain.001 we sent, stay as they are
    assert (report.group.original_message_id, report.payment_informations[0].original_payment_information_id) == (
        MSG, PMT)

    checked = check_report(path)  # the two-phase read and the single streaming pass hand on the same
    stream = ReportStream(path)
    items = [*checked.items(), *stream.items()]
    assert len(items) == 14
    assert _no_card_numbers([checked.header, checked.payment_informations, stream.header, stream.group, items]) == []


def test_a_camt054_echoing_a_card_number_everywhere_yields_only_masks(tmp_path: Path) -> None:
    entries = [EchoReturn(f"SG20261118M{i}", "1.00", PAN, n=i) for i in range(5)]
    entries.append(EchoReturn(None, "2.00", LUHN_PAN, code=None, debit=True))
    path = tmp_path / "camt054.xml"
    path.write_text(camt054_echo(entries, pan=PAN), encoding="utf-8")
    schema = _xsd("camt053", "camt053/xsd/camt.054.001.08.xsd")
    assert schema.validate(etree.parse(str(path))), schema.error_log

    report = read_report(path)
    assert isinstance(report, NotificationReport)
    assert _no_card_numbers([report.header, report.entries]) == []
    assert len(report.returns) == 5
    for e in report.returns:
        assert e.return_reason is not None
        assert (e.return_reason.code, nfkc(e.return_reason.additional_info)) == ("AC04", f"账号{MASK}已销户")
        assert nfkc(e.account_servicer_ref or "") == MASK
    assert nfkc(report.entries[0].notification_id) == f"T{MASK}"
    assert report.entries[-1].account_servicer_ref == "622202*********0128"
    checked = check_report(path)
    assert _no_card_numbers([checked.header, list(checked.items())]) == []


@pytest.mark.parametrize("field", ["TxSts", "GrpSts", "InstdAmt", "Ccy", "root"])
def test_a_rejection_quotes_the_file_masked_and_bounded(tmp_path: Path, field: str) -> None:
    echo = f"账号{PAN}户名不符" + "x" * 5000
    path = _pain002(tmp_path, "12")
    text = path.read_text(encoding="utf-8")
    if field == "TxSts":
        text = text.replace("<TxSts>RJCT</TxSts>", f"<TxSts>{echo}</TxSts>", 1)
    elif field == "GrpSts":
        text = text.replace("<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>",
                            f"<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId><GrpSts>{echo}</GrpSts>", 1)
    elif field == "InstdAmt":
        text = text.replace('<InstdAmt Ccy="CNY">1.00</InstdAmt>', f'<InstdAmt Ccy="CNY">{PAN}.001</InstdAmt>', 1)
    elif field == "Ccy":
        text = text.replace('<InstdAmt Ccy="CNY">', f'<InstdAmt Ccy="{echo}">', 1)
    else:
        text = text.replace("<Document ", f"<Doc{PAN} ", 1).replace("</Document>", f"</Doc{PAN}>")
    path.write_text(text, encoding="utf-8")
    for read in (read_report, check_report):
        with pytest.raises(ReportRejected) as caught:
            read(path)
        shown = str(caught.value)
        assert PAN not in shown
        assert not has_card_number(shown)
        assert MASK in shown
        assert len(caught.value.reason) <= 401
        assert "x" * 100 not in shown


def test_card_numbers_split_by_comments_or_cdata_are_masked_too(tmp_path: Path) -> None:
    path = _pain002(tmp_path, "12")
    text = path.read_text(encoding="utf-8").replace(
        f"账号{PAN}户名不符", f"账号{PAN[:4]}<!-- x -->{PAN[4:10]}<![CDATA[{PAN[10:]}]]>户名不符", 1)
    path.write_text(text, encoding="utf-8")
    report = read_report(path)
    assert isinstance(report, StatusReport)
    assert _no_card_numbers([report.transactions]) == []
    assert report.transactions[0].additional_info.startswith(f"账号{MASK}户名不符")
