"""SQL of the operator's BIN table (``card_bins``) and the table in force: the operator's rows over the
packaged ones (cards/bins.py). Card binding (cards.service) and merchant onboarding (merchants.onboarding)
both read it; ``settleguard bins import`` (cards.bin_import) replaces it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from settleguard.cards.bins import BinInfo, BinTable, layered_bins, load_packaged_bins
from settleguard.db import tables as t


def db_bins(conn: Connection) -> list[BinInfo]:
    b = t.card_bins
    return [BinInfo(r.bin, r.bank_code, r.bank_name_zh, r.bank_name_en, r.card_type, int(r.length))
            for r in conn.execute(select(b.c.bin, b.c.bank_code, b.c.bank_name_zh, b.c.bank_name_en,
                                         b.c.card_type, b.c.length).order_by(b.c.bin, b.c.length))]


def replace_bins(conn: Connection, rows: Sequence[BinInfo], now: datetime) -> None:
    """Replace the whole operator BIN table with ``rows`` (in the caller's transaction)."""
    b = t.card_bins
    conn.execute(delete(b))
    chunk = 5000
    for start in range(0, len(rows), chunk):
        conn.execute(insert(b), [
            {"bin": r.bin, "length": r.length, "bank_code": r.bank_code, "bank_name_zh": r.bank_name_zh,
             "bank_name_en": r.bank_name_en, "card_type": r.card_type, "imported_at": now}
            for r in rows[start:start + chunk]
        ])


def binding_bins(conn: Connection) -> BinTable:
    """The BIN table binding uses: the operator's imported table over the packaged one."""
    return layered_bins(db_bins(conn), load_packaged_bins())
