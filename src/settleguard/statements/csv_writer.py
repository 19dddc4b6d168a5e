"""A statement as ONE CSV file, UTF-8 with a BOM (Excel reads a CSV without one in the system's ANSI code page
and shows the Chinese as mojibake; evidence bundles write theirs the same way, evidence/pack.py), with three
sections in the order of the workbook's sheets, each opened by a line ``【汇总 Summary】`` and separated by a
blank line. One file rather than a zip of three: it opens with a double click and the summary stays next to
its lines; a program splits it at the section lines. Money is 元 with two decimals and no thousands separator
(``1234.56``, a number to Excel), instants the local time with its offset to the second
(``2026-11-18 10:15:03+08:00``), dates ``2026-11-18``; a text cell that Excel would take for a formula
(``=``, ``+``, ``-``, ``@``) starts with ``'``. Lines are written as they are read from the database."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from settleguard.evidence.columns import local_time
from settleguard.evidence.pack import encoding_of
from settleguard.money import fen_to_yuan
from settleguard.statements import sheets
from settleguard.statements.sheets import Cell, Row, Yuan

FORMULA_START = frozenset("=+-@\t\r")


def _text(v: Cell, zone: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, Yuan):
        return fen_to_yuan(v.fen)
    if isinstance(v, datetime):
        return local_time(v, zone)
    if isinstance(v, date):
        return v.isoformat()
    text = str(v)
    # text from outside (a shop's name, a transaction reference) that Excel would run as a formula is kept text
    return "'" + text if not isinstance(v, int) and text[:1] in FORMULA_START else text


def section_line(name: str) -> str:
    return f"【{name}】"


def write(path: Path, st: Any, lines: Iterable[Any], terminals: Mapping[int, str]) -> None:
    parts: list[tuple[str, Iterator[Row]]] = [
        (sheets.SUMMARY, sheets.summary(st)), (sheets.TRANSACTIONS, sheets.transactions(st, lines, terminals)),
        (sheets.PAYOUTS, sheets.payouts(st))]
    with path.open("w", encoding=encoding_of("statement.csv"), newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        for i, (name, rows) in enumerate(parts):
            if i:
                w.writerow([])
            w.writerow([section_line(name)])
            for _kind, cells in rows:
                w.writerow([_text(v, st.zone) for v in cells])
