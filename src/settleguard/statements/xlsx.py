"""A statement as an .xlsx workbook, written with XlsxWriter in constant_memory mode: each row goes to a
temporary file as soon as it is written, so a year of a busy merchant's lines costs no more memory than a
day's. Sheets 汇总 Summary, 交易明细 Transactions (continued on further sheets past Excel's 1,048,576 rows),
出款 Payouts. Money is a number formatted ``#,##0.00`` (元), dates ``yyyy-mm-dd``, instants the local time
of the business zone to the second (``yyyy-mm-dd hh:mm:ss``; the zone is named on the summary)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]  # ships no type hints

from settleguard.statements import sheets
from settleguard.statements.sheets import Cell, Row, Yuan

MONEY = "#,##0.00"
DAY = "yyyy-mm-dd"
TIME = "yyyy-mm-dd hh:mm:ss"
MAX_ROWS = 1_048_576
WIDTHS = {sheets.SUMMARY: [44, 14, 16, 10, 14, 14, 14, 14, 14, 14, 14, 14, 14, 60],
          sheets.TRANSACTIONS: [12, 20, 12, 20, 14, 12, 16, 14, 16],
          sheets.PAYOUTS: [26, 26, 12, 12, 16, 22, 10, 60, 20]}


class _Book:
    def __init__(self, path: Path, zone: Any) -> None:
        self.wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                                  "strings_to_formulas": False, "strings_to_urls": False})
        self.zone = zone
        self.f = {
            "money": self.wb.add_format({"num_format": MONEY}),
            "day": self.wb.add_format({"num_format": DAY}),
            "time": self.wb.add_format({"num_format": TIME}),
            "header": self.wb.add_format({"bold": True, "bg_color": "#EEEEEE", "text_wrap": True}),
            "title": self.wb.add_format({"bold": True, "font_size": 13}),
            "total": self.wb.add_format({"bold": True}),
            "total_money": self.wb.add_format({"bold": True, "num_format": MONEY}),
        }

    def sheet(self, name: str, widths: list[int]) -> Any:
        ws = self.wb.add_worksheet(name)
        for i, w in enumerate(widths):
            ws.set_column(i, i, w)
        return ws

    def cell(self, ws: Any, r: int, c: int, v: Cell, bold: bool) -> None:
        if v is None or v == "":
            return
        if isinstance(v, Yuan):
            ws.write_number(r, c, v.fen / 100, self.f["total_money" if bold else "money"])
        elif isinstance(v, datetime):
            ws.write_datetime(r, c, v.astimezone(self.zone).replace(tzinfo=None), self.f["time"])
        elif isinstance(v, date):
            ws.write_datetime(r, c, v, self.f["day"])
        elif isinstance(v, int):
            ws.write_number(r, c, v, self.f["total"] if bold else None)
        else:
            ws.write_string(r, c, v, self.f["total"] if bold else None)

    def row(self, ws: Any, r: int, row: Row) -> None:
        kind, cells = row
        if kind == "header":
            ws.set_row(r, 32)
            for c, v in enumerate(cells):
                ws.write_string(r, c, str(v), self.f["header"])
        elif kind == "title":
            ws.write_string(r, 0, str(cells[0]), self.f["title"])
        else:
            for c, v in enumerate(cells):
                self.cell(ws, r, c, v, kind == "total")


def write(path: Path, st: Any, lines: Iterable[Any], terminals: Mapping[int, str]) -> None:
    book = _Book(path, st.zone)
    ws = book.sheet(sheets.SUMMARY, WIDTHS[sheets.SUMMARY])
    for r, row in enumerate(sheets.summary(st)):
        book.row(ws, r, row)

    part, r = 1, 0
    ws = book.sheet(sheets.TRANSACTIONS, WIDTHS[sheets.TRANSACTIONS])
    header: Row | None = None
    for row in sheets.transactions(st, lines, terminals):
        if row[0] == "header":
            header = row
            ws.freeze_panes(1, 0)
        if r == MAX_ROWS:  # a new sheet, headed again, for the lines Excel cannot hold on one
            part += 1
            ws = book.sheet(f"{sheets.TRANSACTIONS} ({part})", WIDTHS[sheets.TRANSACTIONS])
            ws.freeze_panes(1, 0)
            assert header is not None
            book.row(ws, 0, header)
            r = 1
        book.row(ws, r, row)
        r += 1

    ws = book.sheet(sheets.PAYOUTS, WIDTHS[sheets.PAYOUTS])
    ws.freeze_panes(1, 0)
    for r, row in enumerate(sheets.payouts(st)):
        book.row(ws, r, row)
    book.wb.close()
