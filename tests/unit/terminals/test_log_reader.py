"""A hostile log never stops the analysis: each bad line is reported with its number (zh/en, bounded) and the
rest is read; card data never leaves the reader unmasked."""

from __future__ import annotations

from pathlib import Path

import pytest

from settleguard.sim.terminal_logs import TEST_PAN, LogWriter, clean_log, encode
from settleguard.terminals import log_reader
from settleguard.terminals.log_reader import MAX_LINE_CHARS, parse_lines, read_log

AT = "2026-12-07T08:30:00+08:00"


def good_lines() -> list[str]:
    return clean_log()


def _hex(fields: dict[str, str]) -> str:
    return encode(fields).hex().upper()


SALE = _hex({"t": "0200", "2": TEST_PAN, "4": "000000001000", "11": "000001", "41": "10000001"})

HOSTILE = {
    "odd hex": f"{AT} TX 10000001 {SALE[:-1]}",
    "truncated": f"{AT} TX 10000001 {SALE[:-6]}",
    "non-hex": f"{AT} TX 10000001 {SALE[:-2]}ZZ",
    "too short": f"{AT} TX 10000001 600003",
    "last byte cut": f"{AT} TX 10000001 {_hex({'t': '0800', '11': '000001'})[:-2]}",
    "bitmap names an undefined field": f"{AT} TX 10000001 6000030000603100000000" + "0800" + "0800000000000000"
                                       + "00" * 6,
    "bad BCD length": f"{AT} TX 10000001 6000030000603100000000" + "0200" + "4000000000000000" + "FF" + "00" * 10,
    "extra bytes": f"{AT} TX 10000001 {SALE}00",
    "no offset": f"2026-12-07T08:30:00 TX 10000001 {SALE}",
    "bad time": f"yesterday TX 10000001 {SALE}",
    "bad direction": f"{AT} XX 10000001 {SALE}",
    "bad terminal": f"{AT} TX 1000-0001 {SALE}",
    "three columns": f"{AT} TX 10000001",
    "binary garbage": "\x00\x01\x02\xff garbage",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_bad_line_is_reported_with_its_number_and_the_rest_is_read(name: str) -> None:
    lines = good_lines()
    read = parse_lines([*lines[:3], HOSTILE[name], *lines[3:]])
    assert len(read.messages) == len(lines)
    assert [b.line for b in read.bad] == [4]
    bad = read.bad[0]
    assert bad.zh
    assert bad.en
    assert len(bad.zh) < 300
    assert len(bad.en) < 300
    assert TEST_PAN not in bad.zh + bad.en


def test_the_absurd_length_line_is_what_it_says() -> None:
    # a 0800 whose last field is cut: build one where field 62 claims 9999 bytes
    head = _hex({"t": "0800", "11": "000001", "62": "AB"})
    absurd = head[:-6] + "9999" + "AB"
    read = parse_lines([f"{AT} TX 10000001 {absurd}"])
    assert read.bad
    assert "62" in read.bad[0].en
    assert "9999" in read.bad[0].en


def test_the_undefined_field_line_names_the_field() -> None:
    read = parse_lines([HOSTILE["bitmap names an undefined field"]])
    assert read.bad[0].en == "the bitmap names field 5, not in the CUP POS spec"


def test_blank_and_comment_lines_are_skipped_and_count_for_line_numbers() -> None:
    read = parse_lines(["", "# 注释 comment", "   ", *good_lines()[:1], "oops"])
    assert len(read.messages) == 1
    assert read.messages[0].line == 4
    assert [b.line for b in read.bad] == [5]


def test_the_pan_is_masked_and_track_pin_and_ic_fields_are_dropped() -> None:
    w = LogWriter()
    w.sale(1_000)
    m = parse_lines(w.lines).messages[0]
    assert m.get("2") == "622202*********3446"
    assert not {"35", "36", "52", "55"} & set(m.fields)
    assert TEST_PAN not in repr(m)
    assert TEST_PAN not in str(m.evidence())


def test_a_10_mb_line_is_skipped_without_being_held_and_the_rest_is_read(tmp_path: Path) -> None:
    lines = good_lines()
    path = tmp_path / "big.log"
    with path.open("w") as f:
        f.write(lines[0] + "\n")
        f.write(f"{AT} TX 10000001 " + "AB" * (5 * 1024 * 1024) + "\n")
        f.write("\n".join(lines[1:]) + "\n")
    read = read_log(path)
    assert len(read.messages) == len(lines)
    assert [b.line for b in read.bad] == [2]
    assert str(MAX_LINE_CHARS) in read.bad[0].en


def test_a_file_over_the_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log"
    path.write_text("\n".join(good_lines()))
    monkeypatch.setattr(log_reader, "MAX_FILE_BYTES", 100)
    with pytest.raises(log_reader.LogTooLarge):
        read_log(path)


def test_bad_lines_beyond_the_limit_are_counted_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_reader, "MAX_BAD_LINES", 3)
    read = parse_lines(["x"] * 10)
    assert len(read.bad) == 3
    assert read.bad_total == 10
