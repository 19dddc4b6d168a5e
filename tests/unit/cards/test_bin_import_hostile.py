"""``bins import`` on hostile files (issue 16, item 7): binary, oversized and one-huge-field files are refused
with a short message (values cut to 200 characters), never a traceback or a megabyte of echo."""

from __future__ import annotations

from pathlib import Path

import pytest

from settleguard.cards.bin_import import MAX_BYTES, BinImportRejected, read_bin_file

HEADER = b"bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n"
GOOD = HEADER + "622202,ICBC,中国工商银行,Industrial and Commercial Bank of China,DC,19\n".encode()


def refused(path: Path) -> str:
    with pytest.raises(BinImportRejected) as info:
        read_bin_file(path)
    message = str(info.value)
    assert len(message) < len(str(path)) + 400, len(message)
    return message


def test_a_nul_filled_file_is_refused_as_binary(tmp_path: Path) -> None:
    (tmp_path / "nul.csv").write_bytes(b"\0" * 200_000)
    assert "binary file" in refused(tmp_path / "nul.csv")


def test_a_sparse_file_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    with path.open("wb") as fh:
        fh.truncate(MAX_BYTES + (50 << 20))
    assert "not a BIN table" in refused(path)


def test_a_huge_header_is_echoed_bounded(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_bytes(b"bin," + b"x" * 100_000 + b"\n1,2\n")
    assert "expected columns" in refused(tmp_path / "header.csv")


def test_a_field_beyond_the_csv_limit_is_a_refusal_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "ok.csv").write_bytes(GOOD)
    assert [r.bin for r in read_bin_file(tmp_path / "ok.csv")] == ["622202"]
    (tmp_path / "field.csv").write_bytes(GOOD + b"622848,ABC," + b"y" * 1_000_000 + b",x,DC,19\n")
    assert "field" in refused(tmp_path / "field.csv")


def test_a_card_number_in_a_bad_bin_is_masked(tmp_path: Path) -> None:
    (tmp_path / "pan.csv").write_bytes(HEADER + b"6222021234567890123,ICBC,x,y,DC,19\n")
    message = refused(tmp_path / "pan.csv")
    assert "6222021234567890123" not in message
    assert "622202*********0123" in message
