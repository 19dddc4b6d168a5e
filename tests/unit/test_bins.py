"""The packaged BIN table and the lookup, debit-BIN and Luhn helpers."""

from __future__ import annotations

import pytest
from stdnum import luhn

from settleguard.cards.bins import (
    BinInfo,
    BinTable,
    BinTableError,
    load_packaged_bins,
    luhn_complete,
    luhn_valid,
)

MAJOR_BANKS = ("ICBC", "CCB", "ABC", "BOC", "COMM", "CMB", "PSBC", "CITIC", "CIB", "SPDB", "CMBC", "CEB",
               "SPABANK", "HXBANK", "GDB")


def _pan(prefix: str, length: int) -> str:
    return luhn_complete(prefix + "0" * (length - len(prefix) - 1))


def test_the_packaged_table_covers_the_fifteen_major_banks() -> None:
    assert set(MAJOR_BANKS) <= set(load_packaged_bins().bank_codes())


@pytest.mark.parametrize("bank", MAJOR_BANKS)
def test_every_major_bank_has_several_debit_bins_and_some_credit_bins(bank: str) -> None:
    table = load_packaged_bins()
    debit = table.debit_bins(bank)
    assert len(debit) >= 2
    assert all(r.card_type == "DC" and r.bank_code == bank for r in debit)
    assert all(16 <= r.length <= 19 for r in debit)
    assert any(r.bank_code == bank and r.card_type == "CC" for r in table)


@pytest.mark.parametrize(("prefix", "length", "bank"), [
    ("622202", 19, "ICBC"), ("621226", 19, "ICBC"), ("621700", 19, "CCB"), ("436742", 19, "CCB"),
    ("622848", 19, "ABC"), ("622823", 19, "ABC"), ("621660", 19, "BOC"), ("601382", 19, "BOC"),
    ("622260", 19, "COMM"), ("405512", 17, "COMM"), ("621483", 16, "CMB"), ("622588", 16, "CMB"),
    ("621799", 19, "PSBC"), ("955100", 19, "PSBC"), ("622690", 16, "CITIC"), ("622908", 18, "CIB"),
    ("438589", 18, "CIB"), ("622521", 16, "SPDB"), ("622615", 16, "CMBC"), ("622660", 16, "CEB"),
    ("621626", 19, "SPABANK"), ("622986", 16, "SPABANK"), ("622630", 16, "HXBANK"), ("622568", 19, "GDB"),
    ("621462", 19, "GDB"),
])
def test_well_known_debit_bins_map_to_their_bank_with_the_right_length(prefix: str, length: int,
                                                                       bank: str) -> None:
    info = load_packaged_bins().lookup(_pan(prefix, length))
    assert info is not None
    assert (info.bank_code, info.card_type, info.length, info.bin) == (bank, "DC", length, prefix)


def test_spdb_prefixes_are_not_claimed_by_gdb_as_the_community_dataset_wrongly_does() -> None:
    table = load_packaged_bins()
    for prefix in ("622516", "622517", "622518", "622521", "622522", "622523"):
        info = table.lookup(_pan(prefix, 16))
        assert info is not None
        assert info.bank_code == "SPDB"


def test_credit_card_bins_are_reported_as_credit() -> None:
    info = load_packaged_bins().lookup(_pan("625919", 16))
    assert info is not None
    assert (info.bank_code, info.card_type) == ("PSBC", "CC")


def test_debit_bins_lists_only_that_banks_debit_rows() -> None:
    rows = load_packaged_bins().debit_bins("CIB")
    assert {r.bin for r in rows} >= {"622908", "622909", "438588", "438589"}
    assert load_packaged_bins().debit_bins("NOSUCHBANK") == []


def test_lookup_prefers_the_longest_matching_prefix() -> None:
    table = BinTable([BinInfo("622202", "ICBC", "中国工商银行", "ICBC", "DC", 19),
                      BinInfo("62220212", "XBANK", "某银行", "X Bank", "DC", 19)])
    assert table.lookup(_pan("62220212", 19)).bank_code == "XBANK"  # type: ignore[union-attr]
    assert table.lookup(_pan("62220213", 19)).bank_code == "ICBC"  # type: ignore[union-attr]


def test_lookup_prefers_the_row_whose_length_matches_the_number() -> None:
    table = BinTable([BinInfo("690755", "CMB", "招商银行", "CMB", "DC", 15),
                      BinInfo("690755", "CMB", "招商银行", "CMB", "DC", 18)])
    assert table.lookup(_pan("690755", 18)).length == 18  # type: ignore[union-attr]
    assert table.lookup(_pan("690755", 15)).length == 15  # type: ignore[union-attr]


def test_a_number_of_the_wrong_length_still_names_its_bank_so_callers_can_say_so() -> None:
    info = load_packaged_bins().lookup(_pan("622202", 16))
    assert info is not None
    assert info.bank_code == "ICBC"
    assert info.length == 19


def test_unknown_prefixes_and_non_digits_find_nothing() -> None:
    table = load_packaged_bins()
    assert table.lookup(_pan("123456", 16)) is None
    assert table.lookup("6222 0200 0000 0000 000") is None
    assert table.lookup("") is None


def test_luhn_complete_appends_a_valid_check_digit() -> None:
    assert luhn_complete("622202000000000000") == "6222020000000000000"
    for prefix in ("62284812345678901", "621483000012345", "43858912345678901"):
        pan = luhn_complete(prefix)
        assert pan.startswith(prefix)
        assert len(pan) == len(prefix) + 1
        assert luhn.is_valid(pan)
        assert luhn_valid(pan)
    assert not luhn_valid("6222020000000000001")
    assert not luhn_valid("abc")


def test_luhn_complete_rejects_non_digits() -> None:
    with pytest.raises(ValueError, match="digits"):
        luhn_complete("6222-02")


def test_the_packaged_table_is_read_once() -> None:
    assert load_packaged_bins() is load_packaged_bins()
    assert len(load_packaged_bins()) >= 150


def test_a_table_with_a_duplicate_bin_and_length_is_rejected() -> None:
    row = BinInfo("622202", "ICBC", "中国工商银行", "ICBC", "DC", 19)
    with pytest.raises(BinTableError, match="duplicate"):
        BinTable([row, row])


@pytest.mark.parametrize(("text", "message"), [
    ("bin,bank\n622202,ICBC\n", "expected columns"),
    ("bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n62x202,ICBC,工行,ICBC,DC,19\n", "line 2"),
    ("bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n622202,ICBC,工行,ICBC,XX,19\n", "card_type"),
    ("bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n622202,ICBC,工行,ICBC,DC,25\n", "length"),
])
def test_malformed_csv_rows_are_reported_with_their_line(text: str, message: str) -> None:
    with pytest.raises(BinTableError, match=message):
        BinTable.from_csv_text(text)
