"""Importing transaction files: layouts, encodings, whole-file rejection, idempotency."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.imports.transactions import MAX_REPORTED, ImportRejected, import_transactions
from settleguard.merchants import repository as merchants_repo
from settleguard.merchants.model import MerchantKind, NewMerchant
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CutOffs, Cycle

NOW = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
CUT = CutOffs(timezone="Asia/Shanghai")
HEADER = "external_ref,merchant_no,terminal_no,occurred_at,kind,card_type,amount_fen\n"


def _merchant(no: str, cycle: Cycle, terminals: tuple[str, ...]) -> NewMerchant:
    return NewMerchant(no, MerchantKind.PERSONAL, "王五水果店", "王五", "水果店", "5499", "杭州", cycle, "standard",
                       "王五", "personal", "6222021234567890128", "ICBC", "中国工商银行", "DC", terminals)


@pytest.fixture
def shop(engine: Engine, vault: Vault) -> Iterator[Engine]:
    with engine.begin() as conn:
        merchants_repo.add_merchants(conn, [
            _merchant("898330154990001", Cycle.T1, ("10000001", "10000002")),
            _merchant("898330154990002", Cycle.D0, ("20000001",)),
        ], vault, NOW)
    return engine


def _count(engine: Engine, table: t.Table = t.transactions) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def _write(tmp_path: Path, body: str, name: str = "tx.csv", encoding: str = "utf-8", header: str = HEADER) -> Path:
    p = tmp_path / name
    p.write_bytes((header + body).encode(encoding))
    return p


GOOD = (
    "R001,898330154990001,10000001,2026-11-20T09:15:00+08:00,sale,debit,12345\n"
    "R002,898330154990001,10000002,2026-11-20T12:00:00+08:00,sale,credit,880000\n"
    "R003,898330154990001,10000001,2026-11-20T23:10:00+08:00,sale,qr,990\n"
    "R004,898330154990002,20000001,2026-11-20T22:30:00+08:00,refund,qr,500\n"
)


def test_a_good_file_is_imported_with_fees_and_business_days(shop: Engine, tmp_path: Path) -> None:
    res = import_transactions(shop, _write(tmp_path, GOOD), cutoffs=CUT, now=NOW)
    assert (res.rows, res.already_imported, res.encoding) == (4, False, "utf-8")
    assert res.cycle_dates == [date(2026, 11, 20), date(2026, 11, 21)]
    with shop.connect() as c:
        rows = {r.external_ref: r for r in c.execute(select(t.transactions))}
    assert rows["R001"].fee_fen == 62  # 123.45 yuan at 0.5% = 0.617 -> 0.62
    assert rows["R002"].fee_fen == 5280  # 8800 yuan credit at 0.6%
    assert rows["R003"].cycle_date == date(2026, 11, 21)  # after the 23:00 T+1 cut-off
    assert rows["R004"].cycle_date == date(2026, 11, 21)  # after the 22:00 D+0 cut-off
    assert rows["R004"].fee_fen == 0  # refunds keep the fee
    assert rows["R001"].occurred_at == datetime(2026, 11, 20, 1, 15, tzinfo=UTC)


def test_reimporting_the_same_file_changes_nothing(shop: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    first = import_transactions(shop, path, cutoffs=CUT, now=NOW)
    again = import_transactions(shop, path, cutoffs=CUT, now=NOW)
    assert again.already_imported
    assert again.import_id == first.import_id
    assert _count(shop) == 4
    assert _count(shop, t.imports) == 1


def test_a_gbk_file_with_chinese_headers_and_yuan_amounts_is_read(shop: Engine, tmp_path: Path) -> None:
    header = "交易参考号,商户编号,终端编号,交易时间,交易类型,卡类型,交易金额,商户名称\n"
    body = ("G1,898330154990001,10000001,2026-11-20T10:00:00+08:00,消费,借记卡,123.45,王五水果店\n"
            "G2,898330154990001,10000001,2026-11-20T10:05:00+08:00,撤销,借记卡,0.5,王五水果店\n")
    path = _write(tmp_path, body, encoding="gbk", header=header)
    res = import_transactions(shop, path, cutoffs=CUT, now=NOW)
    assert res.encoding == "gbk"
    with shop.connect() as c:
        amounts = dict(c.execute(select(t.transactions.c.external_ref, t.transactions.c.amount_fen)).all())
    assert amounts == {"G1": 12345, "G2": 50}


def test_a_utf8_file_with_a_byte_order_mark_is_read(shop: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + GOOD).encode())
    assert import_transactions(shop, path, cutoffs=CUT, now=NOW).rows == 4


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("R9,898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,debit,12.5", "amount_fen"),
        ("R9,898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,debit,0", "greater than zero"),
        ("R9,898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,debit,-5", "amount_fen"),
        ("R9,898330154990009,10000001,2026-11-20T10:00:00+08:00,sale,debit,100", "unknown merchant"),
        ("R9,898330154990001,20000001,2026-11-20T10:00:00+08:00,sale,debit,100", "terminal"),
        ("R9,898330154990001,10000001,2026/11/20 10:00:00,sale,debit,100", "2026-11-20 12:03:11"),
        ("R9,898330154990001,10000001,2026-02-30T10:00:00+08:00,sale,debit,100", "not a real date"),
        ("R9,898330154990001,10000001,2026-11-20T10:00:00+08:00,purchase,debit,100", "column kind"),
        ("R9,898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,amex,100", "column card_type"),
        ("R 9,898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,debit,100", "external_ref"),
        ("R001,898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,debit,100", "repeats line 2"),
        ("R9,898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,debit", "malformed CSV"),
    ],
)
def test_one_bad_row_rejects_the_whole_file_naming_its_line(
    shop: Engine, tmp_path: Path, bad_line: str, message: str
) -> None:
    path = _write(tmp_path, GOOD + bad_line + "\n")
    with pytest.raises(ImportRejected) as info:
        import_transactions(shop, path, cutoffs=CUT, now=NOW)
    assert info.value.line == 6
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert _count(shop) == 0
    assert _count(shop, t.imports) == 0


def test_a_missing_column_is_reported_on_the_header_line(shop: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "R1,898330154990001,2026-11-20T10:00:00+08:00,sale,debit,100\n",
                  header="external_ref,merchant_no,occurred_at,kind,card_type,amount_fen\n")
    with pytest.raises(ImportRejected, match="missing column") as info:
        import_transactions(shop, path, cutoffs=CUT, now=NOW)
    assert info.value.line == 1


def test_an_empty_file_and_a_header_only_file_are_rejected(shop: Engine, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ImportRejected, match="empty file"):
        import_transactions(shop, empty, cutoffs=CUT, now=NOW)
    with pytest.raises(ImportRejected, match="no transactions"):
        import_transactions(shop, _write(tmp_path, ""), cutoffs=CUT, now=NOW)


def test_bytes_that_are_neither_utf8_nor_gbk_are_rejected(shop: Engine, tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(HEADER.encode() + b"R1,\xff\xfe\xff\xfe,10000001,2026-11-20T10:00:00+08:00,sale,debit,1\n")
    with pytest.raises(ImportRejected):
        import_transactions(shop, path, cutoffs=CUT, now=NOW)
    assert _count(shop) == 0


def test_a_reference_already_imported_from_another_file_is_rejected(shop: Engine, tmp_path: Path) -> None:
    import_transactions(shop, _write(tmp_path, GOOD, "a.csv"), cutoffs=CUT, now=NOW)
    overlap = "N1,898330154990001,10000001,2026-11-20T11:00:00+08:00,sale,debit,100\n" + GOOD.splitlines()[1] + "\n"
    with pytest.raises(ImportRejected, match="already imported") as info:
        import_transactions(shop, _write(tmp_path, overlap, "b.csv"), cutoffs=CUT, now=NOW)
    assert info.value.line == 3
    assert _count(shop) == 4
    assert _count(shop, t.imports) == 1


def test_transactions_for_an_already_settled_day_are_rejected(shop: Engine, tmp_path: Path) -> None:
    import_transactions(shop, _write(tmp_path, GOOD, "a.csv"), cutoffs=CUT, now=NOW)
    settle(shop, date(2026, 11, 20), NOW)
    late = "L1,898330154990001,10000001,2026-11-20T11:00:00+08:00,sale,debit,100\n"
    with pytest.raises(ImportRejected, match="already settled") as info:
        import_transactions(shop, _write(tmp_path, late, "late.csv"), cutoffs=CUT, now=NOW)
    assert info.value.line == 2
    assert _count(shop) == 4


def test_a_failure_in_the_middle_of_the_insert_leaves_nothing_behind(
    shop: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the parameter builder dies after the first chunk was inserted."""
    from settleguard.imports import transactions as importer

    body = "".join(f"F{i},898330154990001,10000001,2026-11-20T10:{i // 60 % 60:02d}:{i % 60:02d}+08:00,sale,debit,100\n"
                   for i in range(1000))
    real_chunks = importer._sqlite_chunks

    def dying_chunks(p: object):  # type: ignore[no-untyped-def]
        gen = real_chunks(p)  # type: ignore[arg-type]
        yield next(gen)
        raise OSError("disk went away")

    monkeypatch.setattr(importer, "_CHUNK", 100)
    if shop.dialect.name == "sqlite":
        monkeypatch.setattr(importer, "_sqlite_chunks", dying_chunks)
    else:
        real_copy = importer._insert_postgres

        def dying_copy(conn, p, import_id, progress):  # type: ignore[no-untyped-def]
            real_copy(conn, p, import_id, progress)
            raise OSError("connection lost after COPY")

        monkeypatch.setattr(importer, "_insert_postgres", dying_copy)
    path = _write(tmp_path, body)
    with pytest.raises(OSError, match="went away|connection lost"):
        import_transactions(shop, path, cutoffs=CUT, now=NOW)
    assert _count(shop) == 0
    assert _count(shop, t.imports) == 0
    monkeypatch.undo()
    assert import_transactions(shop, path, cutoffs=CUT, now=NOW).rows == 1000


# Issue 18 (items 8, 9): the file's own column names, zh then en, what was typed; times without an offset in the
# configured zone; Excel files named as such; every bad row reported.

ZH_HEADER = "交易参考号,商户编号,终端编号,交易时间,交易类型,卡类型,交易金额\n"


def test_an_error_names_the_column_as_the_files_header_does_zh_then_en_with_the_value(
    shop: Engine, tmp_path: Path
) -> None:
    body = ("G1,898330154990001,10000001,2026-11-20 10:00:00,消费,借记卡,12.50\n"
            "G2,898330154990001,10000001,2026/11/20 10:05,消费,借记卡,3.00\n")
    path = _write(tmp_path, body, header=ZH_HEADER)
    with pytest.raises(ImportRejected) as info:
        import_transactions(shop, path, cutoffs=CUT, now=NOW)
    text = str(info.value)
    assert info.value.line == 3
    assert "列 交易时间" in text
    assert "column 交易时间" in text
    assert "occurred_at" not in text
    assert text.index("须为日期时间") < text.index("must be a date and time")
    assert "'2026/11/20 10:05'" in text
    assert _count(shop) == 0


def test_a_missing_column_is_named_in_chinese_and_english(shop: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "", header="交易参考号,商户编号,终端编号,交易类型,卡类型,交易金额\n")
    with pytest.raises(ImportRejected, match="缺少列") as info:
        import_transactions(shop, path, cutoffs=CUT, now=NOW)
    assert "交易时间 occurred_at" in str(info.value)


@pytest.mark.parametrize(("zone", "utc_hour"), [("Asia/Shanghai", 1), ("UTC", 9)])
def test_times_without_an_offset_are_local_time_in_the_configured_zone(
    shop: Engine, tmp_path: Path, zone: str, utc_hour: int
) -> None:
    body = ("L1,898330154990001,10000001,2026-11-20 09:15:00,sale,debit,100\n"
            "L2,898330154990001,10000001,2026-11-20T09:15:00.5,sale,debit,100\n")
    import_transactions(shop, _write(tmp_path, body), cutoffs=CutOffs(timezone=zone), now=NOW)
    with shop.connect() as c:
        times = dict(c.execute(select(t.transactions.c.external_ref, t.transactions.c.occurred_at)).all())
    assert times["L1"] == datetime(2026, 11, 20, utc_hour, 15, tzinfo=UTC)
    assert times["L2"] == datetime(2026, 11, 20, utc_hour, 15, 0, 500_000, tzinfo=UTC)


def test_a_file_mixing_times_with_and_without_an_offset_reads_each_as_written(
    shop: Engine, tmp_path: Path
) -> None:
    body = ("M1,898330154990001,10000001,2026-11-20 09:15:00,sale,debit,100\n"
            "M2,898330154990001,10000001,2026-11-20T09:15:00Z,sale,debit,100\n")
    import_transactions(shop, _write(tmp_path, body), cutoffs=CUT, now=NOW)
    with shop.connect() as c:
        times = dict(c.execute(select(t.transactions.c.external_ref, t.transactions.c.occurred_at)).all())
    assert times == {"M1": datetime(2026, 11, 20, 1, 15, tzinfo=UTC), "M2": datetime(2026, 11, 20, 9, 15, tzinfo=UTC)}


def test_an_impossible_local_time_is_refused_at_its_line(shop: Engine, tmp_path: Path) -> None:
    body = "X1,898330154990001,10000001,2026-11-20 09:15:00+08:00,sale,debit,100\n" \
           "X2,898330154990001,10000001,2026-02-30 10:00:00,sale,debit,100\n"
    with pytest.raises(ImportRejected, match="not a real date and time") as info:
        import_transactions(shop, _write(tmp_path, body), cutoffs=CUT, now=NOW)
    assert info.value.line == 3


def test_an_xlsx_workbook_is_read_like_its_csv_with_local_times_and_sheet_row_numbers(
    shop: Engine, tmp_path: Path
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["交易参考号", "商户编号", "终端编号", "交易时间", "交易类型", "卡类型", "交易金额"])
    naive = datetime(2026, 11, 20, 9, 15)  # noqa: DTZ001  (an Excel cell has no zone)
    ws.append(["X1", 898330154990001, "10000001", naive, "消费", "借记卡", 123.45])
    ws.append(["X2", "898330154990001", "10000002", "2026-11-20T12:00:00+08:00", "sale", "credit", 8800])
    ws.append([None] * 7)  # trailing empty rows are not transactions
    xlsx = tmp_path / "tx.xlsx"
    wb.save(xlsx)
    res = import_transactions(shop, xlsx, cutoffs=CUT, now=NOW)
    assert (res.rows, res.encoding) == (2, "xlsx")
    with shop.connect() as c:
        rows = {r.external_ref: r for r in c.execute(select(t.transactions))}
    assert rows["X1"].occurred_at == datetime(2026, 11, 20, 1, 15, tzinfo=UTC)  # a cell without a zone: Beijing
    assert (rows["X1"].amount_fen, rows["X2"].amount_fen) == (12345, 880000)

    ws.delete_rows(4)
    ws.append(["X3", "898330154990001", "10000001", "2026/11/20", "消费", "借记卡", 1])
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    with pytest.raises(ImportRejected, match="列 交易时间") as info:
        import_transactions(shop, bad, cutoffs=CUT, now=NOW)
    assert info.value.line == 4  # the sheet's row number


def test_an_old_excel_file_or_a_zip_is_named_as_such_with_how_to_fix_it(shop: Engine, tmp_path: Path) -> None:
    xls = tmp_path / "tx.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    with pytest.raises(ImportRejected) as info:
        import_transactions(shop, xls, cutoffs=CUT, now=NOW)
    for part in ("这是旧版 Excel", "另存为", "this is an Excel file", "save it as CSV"):
        assert part in str(info.value)
    archive = tmp_path / "tx.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("tx.csv", HEADER + GOOD)
    with pytest.raises(ImportRejected, match="zip") as info:
        import_transactions(shop, archive, cutoffs=CUT, now=NOW)
    assert "请先解压" in str(info.value)
    assert _count(shop) == 0


def test_a_bad_file_reports_every_bad_row_up_to_a_limit_with_the_total_and_writes_nothing(
    shop: Engine, tmp_path: Path
) -> None:
    good = "R{i},898330154990001,10000001,2026-11-20T10:00:00+08:00,sale,debit,100\n"
    lines = []
    for i in range(300):
        if i % 2:
            lines.append(good.format(i=i))
        elif i % 3 == 0:
            lines.append(f"R{i},898330154990009,10000001,2026-11-20T10:00:00+08:00,sale,debit,100\n")
        else:
            lines.append(f"R{i},898330154990001,10000001,2026-11-20T10:00:00+08:00,purchase,debit,-{i}\n")
    path = _write(tmp_path, "".join(lines))
    with pytest.raises(ImportRejected) as info:
        import_transactions(shop, path, cutoffs=CUT, now=NOW)
    exc = info.value
    assert exc.rows == 150  # every even row is bad; the two-problem rows count once
    assert len(exc.problems) == MAX_REPORTED
    assert [n for n, _ in exc.problems] == sorted(n for n, _ in exc.problems)
    assert exc.line == exc.problems[0][0] == 2
    text = str(exc)
    for part in ("150 行有错误", "150 bad rows", f"first {MAX_REPORTED} shown", "unknown merchant", "column kind",
                 "greater than zero"):
        assert part in text
    assert "terminal" not in text  # an unknown merchant is not reported again as its terminal
    assert _count(shop) == 0
    assert _count(shop, t.imports) == 0
