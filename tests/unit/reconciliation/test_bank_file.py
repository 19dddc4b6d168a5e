"""Bank 代付结果 / 账户明细 files through TOML profiles: encodings, summary line, flags, masking."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from tests.unit.reconciliation.bank_files import HEADER, ROWS, csv_text, fixed_text, write_csv

from settleguard.reconciliation.bank_file import ProfileError, load_profile, parse_profile, read_bank_file
from settleguard.reconciliation.model import Direction, EntryStatus, StatementRejected

SHA = "ab" * 32


def read(path: Path, profile: str = "generic") -> object:
    return read_bank_file(path, load_profile(profile), SHA)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_a_bank_file_with_a_summary_line_reads_in_every_encoding(tmp_path: Path, encoding: str) -> None:
    st = read_bank_file(write_csv(tmp_path, csv_text(), encoding), load_profile("generic"), SHA)
    assert (st.statement_id, st.account) == (f"generic:{SHA[:16]}", "110060*****2345")
    got = [(ln.entry_ref, ln.amount_fen, ln.direction, ln.status, ln.booking_date, ln.end_to_end_id)
           for ln in st.lines]
    day = date(2026, 12, 6)
    assert got == [("B0001", 123456, Direction.DEBIT, EntryStatus.BOOKED, day, "SG20261206M1"),
                   ("B0002", 10000, Direction.DEBIT, EntryStatus.INFO, day, "SG20261206M2"),
                   ("B0003", 44, Direction.DEBIT, EntryStatus.PENDING, day, "SG20261206M3"),
                   ("B0004", 50000, Direction.CREDIT, EntryStatus.BOOKED, day, None)]
    assert "户名不符" in st.lines[1].raw
    assert "621700*********4874" in st.lines[1].raw
    assert all("6217002710000684874" not in ln.raw for ln in st.lines)


@pytest.mark.parametrize(("summary", "zh"), [("合计,笔数:5,金额:1835.00", "汇总笔数 5"),
                                             ("合计,笔数:4,金额:1835.01", "汇总金额 183501")])
def test_a_summary_that_disagrees_with_the_detail_is_refused_naming_the_line(tmp_path: Path, summary: str,
                                                                            zh: str) -> None:
    with pytest.raises(StatementRejected) as info:
        read(write_csv(tmp_path, csv_text(summary=summary), "gbk"))
    assert info.value.where == "第 6 行 line 6"
    assert zh in info.value.zh


@pytest.mark.parametrize(("row", "zh"), [
    ("B0009,2026-12-06,110060001012345,,1.00,X,成功,", "借贷标志无法识别"),
    ("B0009,2026-12-06,110060001012345,,1.001,D,成功,", "两位小数"),
    ("B0009,06.12.2026,110060001012345,,1.00,D,成功,", "日期格式错误"),
    ("B0009,2026-12-06,110060001012345,,1.00,D,作废,", "状态无法识别"),
    ("B0001,2026-12-06,110060001012345,,1.00,D,成功,", "流水号重复"),
    ("B0009,2026-12-06,110060001012345,,1.00,D,成功", "列数"),
])
def test_a_bad_line_refuses_the_whole_file_naming_it(tmp_path: Path, row: str, zh: str) -> None:
    with pytest.raises(StatementRejected) as info:
        read(write_csv(tmp_path, csv_text([*ROWS, row], summary=None), "utf-8"))
    assert info.value.where == "第 6 行 line 6"
    assert zh in info.value.zh


def test_the_fixed_width_example_profile_reads_and_checks_its_total_line(tmp_path: Path) -> None:
    path = tmp_path / "detail.txt"
    path.write_bytes(fixed_text().encode("gbk"))
    st = read(path, "fixed_example")
    assert [(ln.entry_ref, ln.amount_fen, ln.direction, ln.status, ln.end_to_end_id) for ln in st.lines] == [
        ("F0001", 12345, Direction.DEBIT, EntryStatus.BOOKED, "SG20261206M1"),
        ("F0002", 655, Direction.DEBIT, EntryStatus.PENDING, "SG20261206M2"),
        ("F0003", 1000, Direction.CREDIT, EntryStatus.BOOKED, None)]
    path.write_bytes(fixed_text(total=14001).encode("gbk"))
    with pytest.raises(StatementRejected, match="line 4"):
        read(path, "fixed_example")
    path.write_bytes(fixed_text().rsplit("\n", 1)[0].encode("gbk"))  # the profile requires its summary line
    with pytest.raises(StatementRejected, match="TOTAL"):
        read(path, "fixed_example")


def test_a_file_that_is_neither_utf8_nor_gbk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\xfe\xfa\x80\x80\n")
    with pytest.raises(StatementRejected, match="UTF-8"):
        read(path)


def test_profiles_are_checked() -> None:
    with pytest.raises(ProfileError, match="columns"):
        parse_profile({"format": "csv"}, "x")
    with pytest.raises(ProfileError, match="unknown"):
        parse_profile({"columns": {"amount": "金额", "colour": "x"}}, "x")
    with pytest.raises(ProfileError, match="direction"):
        parse_profile({"columns": {"amount": "金额"}}, "x")
    with pytest.raises(ProfileError, match="no such"):
        load_profile("no-such-bank")
    assert parse_profile({"columns": {"amount": "金额"}, "amount": {"negative_is_debit": True}}, "x").name == "x"
