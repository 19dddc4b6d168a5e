"""``settleguard bins import``: load the operator's official BIN table into the database.

The file has the columns of the packaged ``cards/bins.csv`` (``bin,bank_code,bank_name_zh,
bank_name_en,card_type,length``), UTF-8 (a BOM is accepted) or GBK. The whole file is checked
before anything is written; a bad row rejects the file with its line number and reason. A
good file replaces the previous operator table in one transaction; importing the same content
again changes nothing. Binding then uses the operator's rows over the packaged ones
(:func:`settleguard.reference.bins_repository.binding_bins`).

A file larger than 16 MiB (an official table is well under 1 MiB) or holding control bytes (NUL ...) is
refused before it is parsed; values echoed in errors are cut to 200 characters (masking.bounded).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from settleguard.cards.bins import BinInfo, BinTable, BinTableError
from settleguard.masking import bounded
from settleguard.reference import bins_repository as bins_repo

MAX_BYTES = 16 << 20
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


class BinImportRejected(ValueError):
    """The file was rejected; nothing was imported. The message names the line and the reason."""


@dataclass(frozen=True)
class BinImportResult:
    path: Path
    rows: int
    added: int
    removed: int
    unchanged: bool
    banks: int


def _key(r: BinInfo) -> tuple[str, int]:
    return (r.bin, r.length)


def read_bin_file(path: Path) -> list[BinInfo]:
    """Parse and check an operator BIN file; raises :class:`BinImportRejected` naming the line."""
    with path.open("rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise BinImportRejected(f"{path}: 文件超过 {MAX_BYTES >> 20} MiB，不是卡BIN表 / larger than "
                                f"{MAX_BYTES >> 20} MiB: not a BIN table")
    bad = _CONTROL.search(raw)
    if bad is not None:
        line = raw.count(b"\n", 0, bad.start()) + 1
        raise BinImportRejected(f"{path}:{line}: 二进制文件，不是 CSV 文本 / binary "
                                f"file, not CSV text: byte 0x{raw[bad.start()]:02x} at offset {bad.start()}")
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise BinImportRejected(f"{path}: neither UTF-8 nor GBK text; 文件既不是 UTF-8 也不是 GBK 编码")
    try:
        table = BinTable.from_csv_text(text)
    except (BinTableError, csv.Error) as exc:
        raise BinImportRejected(f"{path}: {bounded(str(exc))}") from None
    rows = list(table)
    for line_no, r in enumerate(rows, start=2):
        for name, value, limit in (("bank_code", r.bank_code, 16), ("bank_name_zh", r.bank_name_zh, 64),
                                   ("bank_name_en", r.bank_name_en, 128)):
            if not value:
                raise BinImportRejected(f"{path}:{line_no}: {name} is empty; {name} 为空")
            if len(value) > limit:
                raise BinImportRejected(f"{path}:{line_no}: {name} longer than {limit} characters")
    if not rows:
        raise BinImportRejected(f"{path}: no rows; 文件没有数据行")
    return rows


def import_bins(engine: Engine, path: Path, *, now: datetime, actor: str = "operator") -> BinImportResult:
    """Replace the operator BIN table with the file's rows, atomically; a no-op for the same content."""
    rows = read_bin_file(path)
    new = {_key(r): r for r in rows}
    with engine.begin() as conn:
        old = {_key(r): r for r in bins_repo.db_bins(conn)}
        unchanged = old == new
        if not unchanged:
            bins_repo.replace_bins(conn, rows, now)
            from settleguard.audit import service as audit

            audit.record(conn, actor, "operator.bins_import", None, {
                "file": path.name, "rows": len(rows), "added": len(new.keys() - old.keys()),
                "removed": len(old.keys() - new.keys())}, now)
    return BinImportResult(path, len(rows), len(new.keys() - old.keys()), len(old.keys() - new.keys()), unchanged,
                           len({r.bank_code for r in rows}))
