"""The seeded demo-data generator: merchants, cards, terminals and POS transactions."""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from stdnum import luhn
from stdnum.cn import ric

from settleguard.cards.bins import load_packaged_bins
from settleguard.sim.generator import (
    TRANSACTION_COLUMNS,
    SimMerchant,
    bench_merchant_no,
    bench_terminal_no,
    generate_bench_transactions,
    generate_merchants,
    generate_transactions,
    resident_id_check_digit,
    write_transactions_csv,
)

DAY = date(2026, 11, 18)  # a Wednesday
SATURDAY = date(2026, 11, 21)
MCC_BY_BUSINESS = {"餐饮": "5812", "快餐": "5814", "超市": "5411", "便利店": "5499", "水果店": "5499",
                   "美容美发": "7230", "五金": "5251", "服装": "5651", "药店": "5912"}


@pytest.fixture(scope="module")
def merchants() -> list[SimMerchant]:
    return generate_merchants(2000, seed=42)


@pytest.fixture(scope="module")
def day_table(merchants: list[SimMerchant]) -> pa.Table:
    return generate_transactions(merchants, DAY, seed=42)


def _share(values: list[bool]) -> float:
    return sum(values) / len(values)


# ---------------------------------------------------------------------------------- merchants


def test_generating_2000_merchants_takes_under_three_seconds() -> None:
    started = time.perf_counter()
    generate_merchants(2000, seed=7)
    assert time.perf_counter() - started < 3.0


def test_the_same_seed_gives_the_same_merchants_and_another_seed_does_not(
        merchants: list[SimMerchant]) -> None:
    assert generate_merchants(2000, seed=42) == merchants
    other = generate_merchants(2000, seed=43)
    assert [m.pan for m in other] != [m.pan for m in merchants]


def test_merchant_numbers_are_unique_15_digit_unionpay_style_numbers(merchants: list[SimMerchant]) -> None:
    assert len({m.merchant_no for m in merchants}) == len(merchants)
    for m in merchants:
        assert re.fullmatch(r"898\d{12}", m.merchant_no)
        assert m.merchant_no[7:11] == m.mcc


def test_each_merchant_has_one_to_three_unique_terminals(merchants: list[SimMerchant]) -> None:
    all_terms = [t for m in merchants for t in m.terminal_nos]
    assert len(set(all_terms)) == len(all_terms)
    assert all(1 <= len(m.terminal_nos) <= 3 for m in merchants)
    assert all(len(t) == 8 for t in all_terms)


def test_settlement_cards_are_luhn_valid_debit_cards_of_the_stated_bank(merchants: list[SimMerchant]) -> None:
    table = load_packaged_bins()
    for m in merchants:
        assert luhn.is_valid(m.pan)
        info = table.lookup(m.pan)
        assert info is not None
        assert (info.bank_code, info.card_type, info.length) == (m.bank_code, "DC", len(m.pan))
        assert m.bank_name == info.bank_name_zh
        assert m.card_type == "DC"
    assert len({m.pan for m in merchants}) == len(merchants)
    assert len({m.bank_code for m in merchants}) >= 12


def test_resident_ids_are_valid_with_plausible_birth_dates(merchants: list[SimMerchant]) -> None:
    for m in merchants:
        assert ric.is_valid(m.id_number), m.merchant_no
        assert 1960 <= ric.get_birth_date(m.id_number).year <= 2005


def test_the_resident_id_check_digit_agrees_with_python_stdnum() -> None:
    assert resident_id_check_digit("36042619910101007") == "1"
    for first17 in ("11010519491231002", "44030519900101123", "51012119800615456"):
        assert resident_id_check_digit(first17) == ric.calc_check_digit(first17 + "0")


def test_phone_numbers_are_mainland_mobile_numbers(merchants: list[SimMerchant]) -> None:
    assert all(re.fullmatch(r"1[3-9]\d{9}", m.phone) for m in merchants)


def test_the_mix_of_merchant_kinds_cycles_and_fee_schedules_is_realistic(merchants: list[SimMerchant]) -> None:
    assert 0.80 <= _share([m.kind == "personal" for m in merchants]) <= 0.90
    assert 0.86 <= _share([m.cycle == "T1" for m in merchants]) <= 0.94
    assert {m.cycle for m in merchants} == {"T1", "D0"}
    corporate = [m for m in merchants if m.kind == "corporate"]
    personal = [m for m in merchants if m.kind == "personal"]
    assert all(m.fee_schedule == "standard" and m.account_kind == "corporate" for m in corporate)
    assert all(m.holder_name == m.registered_name and m.registered_name.endswith("有限公司") for m in corporate)
    assert {m.fee_schedule for m in personal} == {"standard", "small_micro"}
    assert all(m.holder_name == m.legal_person and m.account_kind == "personal" for m in personal)


def test_personal_merchants_are_named_like_chinese_sole_traders(merchants: list[SimMerchant]) -> None:
    for m in merchants:
        if m.kind == "personal":
            district, _, shop = m.registered_name.partition(m.legal_person)
            assert district.endswith("区"), m.registered_name
            assert shop, m.registered_name
        assert re.search(r"[\u4e00-\u9fff]", m.legal_person)
        assert re.search(r"[\u4e00-\u9fff]", m.city)


def test_mcc_matches_the_line_of_business(merchants: list[SimMerchant]) -> None:
    assert all(MCC_BY_BUSINESS[m.business] == m.mcc for m in merchants)
    assert set(Counter(m.business for m in merchants)) == set(MCC_BY_BUSINESS)


def test_activity_is_skewed_with_some_very_busy_merchants(merchants: list[SimMerchant]) -> None:
    daily = [m.daily_txn_mean for m in merchants]
    assert 22 <= statistics.mean(daily) <= 30
    assert statistics.median(daily) < statistics.mean(daily)
    assert sum(d >= 100 for d in daily) >= 20


def test_a_merchants_repr_never_shows_the_card_number(merchants: list[SimMerchant]) -> None:
    for m in merchants[:200]:
        for text in (repr(m), str(m), repr([m]), f"{m}"):
            assert m.pan not in text
            assert m.id_number not in text
            assert m.pan[:6] in text
            assert m.pan[-4:] in text


# ---------------------------------------------------------------------------------- transactions


def test_the_table_has_exactly_the_agreed_columns(day_table: pa.Table) -> None:
    assert tuple(day_table.column_names) == TRANSACTION_COLUMNS
    assert [str(t) for t in day_table.schema.types] == ["string"] * 6 + ["int64"]


def test_the_same_inputs_give_the_same_table(merchants: list[SimMerchant], day_table: pa.Table) -> None:
    assert generate_transactions(merchants, DAY, seed=42).equals(day_table)
    assert not generate_transactions(merchants, DAY, seed=43).equals(day_table)


def test_one_day_for_2000_merchants_takes_under_a_second(merchants: list[SimMerchant]) -> None:
    started = time.perf_counter()
    generate_transactions(merchants, SATURDAY, seed=1)
    assert time.perf_counter() - started < 1.0


def test_a_week_for_2000_merchants_has_at_least_300000_rows_with_unique_refs(
        merchants: list[SimMerchant]) -> None:
    week = [generate_transactions(merchants, date(2026, 11, 16) + timedelta(days=d), seed=42) for d in range(7)]
    refs = pa.chunked_array([t["external_ref"] for t in week])
    assert len(refs) >= 300_000
    assert pc.count_distinct(refs).as_py() == len(refs)


def test_ref_start_numbers_a_second_batch_of_the_same_day_after_the_first(merchants: list[SimMerchant]) -> None:
    first = generate_transactions(merchants[:10], DAY, seed=5)
    second = generate_transactions(merchants[:10], DAY, seed=6, ref_start=first.num_rows)
    assert first["external_ref"][0].as_py() == "R20261118000000000"
    assert second["external_ref"][0].as_py() == f"R20261118{first.num_rows:09d}"
    assert not set(first["external_ref"].to_pylist()) & set(second["external_ref"].to_pylist())
    with pytest.raises(ValueError, match="9 digits"):
        generate_transactions(merchants[:10], DAY, seed=5, ref_start=999_999_990)


def test_times_are_iso_8601_with_the_beijing_offset_and_in_order(day_table: pa.Table) -> None:
    times = day_table["occurred_at"].to_pylist()
    assert all(re.fullmatch(r"2026-11-18T\d\d:\d\d:\d\d\+08:00", t) for t in times)
    assert times == sorted(times)
    parsed = datetime.fromisoformat(times[len(times) // 2])
    assert parsed.utcoffset() == timedelta(hours=8)


def test_another_time_zone_gets_its_own_offset(merchants: list[SimMerchant]) -> None:
    table = generate_transactions(merchants[:20], DAY, seed=1, tz="Asia/Kolkata")
    assert all(t.endswith("+05:30") for t in table["occurred_at"].to_pylist())


def test_kinds_and_card_types_come_in_the_specified_shares(day_table: pa.Table) -> None:
    n = day_table.num_rows
    kinds = Counter(day_table["kind"].to_pylist())
    cards = Counter(day_table["card_type"].to_pylist())
    assert set(kinds) == {"sale", "void", "refund", "reversal"}
    assert kinds["sale"] / n == pytest.approx(0.975, abs=0.004)
    assert kinds["void"] / n == pytest.approx(0.012, abs=0.003)
    assert kinds["refund"] / n == pytest.approx(0.008, abs=0.003)
    assert kinds["reversal"] / n == pytest.approx(0.005, abs=0.002)
    assert cards["debit"] / n == pytest.approx(0.45, abs=0.02)
    assert cards["credit"] / n == pytest.approx(0.25, abs=0.02)
    assert cards["qr"] / n == pytest.approx(0.30, abs=0.02)


def _rows_by_business(merchants: list[SimMerchant], table: pa.Table) -> dict[str, list[dict[str, Any]]]:
    business = {m.merchant_no: m.business for m in merchants}
    out: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        out.setdefault(business[str(row["merchant_no"])], []).append(row)
    return out


def test_ticket_sizes_are_realistic_for_each_line_of_business(merchants: list[SimMerchant],
                                                               day_table: pa.Table) -> None:
    assert pc.min(day_table["amount_fen"]).as_py() > 0
    rows = _rows_by_business(merchants, day_table)

    def median_yuan(business: str) -> float:
        return statistics.median(int(r["amount_fen"]) for r in rows[business]) / 100

    assert 30 <= median_yuan("餐饮") <= 150
    assert 10 <= median_yuan("便利店") <= 60
    assert median_yuan("五金") > median_yuan("便利店")
    assert median_yuan("美容美发") > median_yuan("便利店")


def test_cancellations_look_like_sales_but_are_smaller(day_table: pa.Table) -> None:
    rows = day_table.to_pylist()
    sales = [int(r["amount_fen"]) for r in rows if r["kind"] == "sale"]
    cancels = [int(r["amount_fen"]) for r in rows if r["kind"] != "sale"]
    assert statistics.median(cancels) < statistics.median(sales)
    assert statistics.median(cancels) > statistics.median(sales) / 3


def test_restaurants_peak_at_lunch_and_dinner_and_some_sales_fall_after_the_cut_off(
        merchants: list[SimMerchant], day_table: pa.Table) -> None:
    rows = _rows_by_business(merchants, day_table)
    hours = Counter(int(str(r["occurred_at"])[11:13]) for r in rows["餐饮"])
    assert hours[12] > 4 * hours[9]
    assert hours[18] > 4 * hours[15]
    assert hours[3] + hours[4] < hours[12] / 20
    all_hours = Counter(int(t[11:13]) for t in day_table["occurred_at"].to_pylist())
    assert all_hours[23] >= 0.005 * day_table.num_rows
    assert sum(all_hours[h] for h in range(6)) <= 0.05 * day_table.num_rows


def test_weekends_are_busier_for_restaurants_and_shops(merchants: list[SimMerchant], day_table: pa.Table) -> None:
    saturday = generate_transactions(merchants, SATURDAY, seed=42)
    weekday_rows = _rows_by_business(merchants, day_table)
    saturday_rows = _rows_by_business(merchants, saturday)
    for business in ("餐饮", "超市"):
        assert len(saturday_rows[business]) > 1.15 * len(weekday_rows[business])


def test_every_row_names_a_known_merchant_and_one_of_its_terminals(merchants: list[SimMerchant],
                                                                   day_table: pa.Table) -> None:
    terminals = {m.merchant_no: set(m.terminal_nos) for m in merchants}
    for m_no, t_no in zip(day_table["merchant_no"].to_pylist(), day_table["terminal_no"].to_pylist(),
                          strict=True):
        assert t_no in terminals[m_no]


def test_no_merchants_give_an_empty_table_with_the_same_columns() -> None:
    table = generate_transactions([], DAY, seed=1)
    assert table.num_rows == 0
    assert tuple(table.column_names) == TRANSACTION_COLUMNS


# ---------------------------------------------------------------------------------- csv


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_csv_files_have_a_header_and_read_back_unchanged(tmp_path: Path, merchants: list[SimMerchant],
                                                         encoding: str) -> None:
    table = generate_transactions(merchants[:100], DAY, seed=3)
    path = tmp_path / f"txns-{encoding}.csv"
    write_transactions_csv(table, path, encoding=encoding)
    assert path.read_bytes().decode(encoding).splitlines()[0] == ",".join(TRANSACTION_COLUMNS)
    back = pacsv.read_csv(path, read_options=pacsv.ReadOptions(encoding=encoding),
                          convert_options=pacsv.ConvertOptions(
                              column_types={c: pa.string() for c in TRANSACTION_COLUMNS[:-1]}))
    assert back.equals(table.combine_chunks())


def test_gbk_csv_quotes_and_encodes_chinese_values(tmp_path: Path, day_table: pa.Table) -> None:
    table = day_table.slice(0, 3).set_column(4, "kind", pa.array(["消费", "撤销", "退货,部分"]))
    path = tmp_path / "gbk.csv"
    write_transactions_csv(table, path, encoding="gbk")
    text = path.read_bytes().decode("gbk")
    assert "消费" in text
    assert '"退货,部分"' in text


# ---------------------------------------------------------------------------------- benchmark data


def test_bench_rows_use_the_bench_merchant_and_terminal_numbers() -> None:
    table = generate_bench_transactions(200_000, 1_000, DAY, seed=9)
    assert tuple(table.column_names) == TRANSACTION_COLUMNS
    assert table.num_rows == 200_000
    assert pc.count_distinct(table["external_ref"]).as_py() == 200_000
    merchants = set(table["merchant_no"].unique().to_pylist())
    assert merchants <= {bench_merchant_no(i) for i in range(1, 1_001)}
    assert len(merchants) > 900
    for m_no, t_no in zip(table["merchant_no"].to_pylist()[:5000], table["terminal_no"].to_pylist()[:5000],
                          strict=True):
        assert t_no == bench_terminal_no(int(m_no[1:]))
    times = table["occurred_at"].to_pylist()
    assert times == sorted(times)
    assert times[0].startswith("2026-11-18T")
    assert pc.min(table["amount_fen"]).as_py() > 0
    assert generate_bench_transactions(200_000, 1_000, DAY, seed=9).equals(table)


def test_bench_helpers_format_numbers_like_the_real_ones() -> None:
    assert bench_merchant_no(1) == "B00000000000001"
    assert len(bench_merchant_no(1)) == 15
    assert bench_terminal_no(42) == "T0000042"
    assert len(bench_terminal_no(42)) == 8


@pytest.mark.slow
def test_ten_million_bench_rows_take_well_under_thirty_seconds() -> None:
    started = time.perf_counter()
    table = generate_bench_transactions(10_000_000, 100_000, DAY, seed=1)
    assert time.perf_counter() - started < 20.0
    assert table.num_rows == 10_000_000
    assert table["external_ref"][9_999_999].as_py() == "B20261118009999999"
