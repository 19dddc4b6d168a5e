"""Small datasets for tests, built fast: merchants with bound cards and terminals, transaction CSVs.

Merchant numbers, terminal numbers and card numbers are unique for the whole test session (a
module-level serial), so tests and hypothesis examples can keep adding merchants to one database.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, select

from settleguard.cards.bins import luhn_complete
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.imports.csv_layout import REQUIRED
from settleguard.imports.transactions import ImportResult, import_transactions
from settleguard.merchants.model import MerchantKind, NewMerchant
from settleguard.merchants.repository import add_merchants
from settleguard.settlement.model import CardType, CutOffs, Cycle, TxnKind

HEADER: tuple[str, ...] = (*REQUIRED, "amount_fen")
"""The transaction CSV columns in the order :func:`write_csv` writes them."""

_serial = itertools.count(1)
CREATED_AT = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Merchant:
    """A merchant created by :func:`make_merchants`.

    Attributes:
        id: database id.
        merchant_no: 15 digits ('898' + region '1000' + MCC '5812' + 4-digit serial).
        terminal_no: the merchant's one POS terminal (8 characters).
        pan: the bound settlement card in clear (19 digits, ICBC BIN, Luhn-valid).
        cycle: T1 or D0.
        schedule: fee schedule code.
    """

    id: int
    merchant_no: str
    terminal_no: str
    pan: str
    cycle: Cycle
    schedule: str


@dataclass(frozen=True)
class Txn:
    """One CSV row. ``kind`` and ``card_type`` may be enum members or the text written to the file."""

    external_ref: str
    merchant_no: str
    terminal_no: str
    occurred_at: datetime | str
    kind: TxnKind | str
    card_type: CardType | str
    amount_fen: int | str

    def cells(self) -> list[str]:
        at = self.occurred_at.isoformat() if isinstance(self.occurred_at, datetime) else self.occurred_at
        kind = self.kind.label if isinstance(self.kind, TxnKind) else self.kind
        card = self.card_type.label if isinstance(self.card_type, CardType) else self.card_type
        return [self.external_ref, self.merchant_no, self.terminal_no, at, kind, card, str(self.amount_fen)]


def make_merchants(
    conn: Connection,
    vault: Vault,
    n: int,
    *,
    cycle: Cycle = Cycle.T1,
    schedule: str = "standard",
    now: datetime = CREATED_AT,
) -> list[Merchant]:
    """Register ``n`` merchants (one card, one terminal each) through merchants.repository.add_merchants."""
    serials = [next(_serial) for _ in range(n)]
    new = []
    for s in serials:
        if s > 9999:
            raise ValueError("factories: more than 9,999 merchants in one session")
        new.append(NewMerchant(
            merchant_no=f"89810005812{s:04d}",
            kind=MerchantKind.PERSONAL,
            registered_name=f"测试小吃店{s}号",
            legal_person="张三",
            business="餐饮",
            mcc="5812",
            city="北京",
            cycle=cycle,
            fee_schedule=schedule,
            holder_name="张三",
            account_kind="personal",
            pan=luhn_complete(f"622202{s:012d}"),
            bank_code="ICBC",
            bank_name="中国工商银行",
            card_type="DC",
            terminal_nos=(f"T{s:07d}",),
        ))
    add_merchants(conn, new, vault, now)
    ids = dict(conn.execute(
        select(t.merchants.c.merchant_no, t.merchants.c.id).where(
            t.merchants.c.merchant_no.in_([m.merchant_no for m in new]))
    ).all())
    return [Merchant(int(ids[m.merchant_no]), m.merchant_no, m.terminal_nos[0], m.pan, cycle, schedule) for m in new]


def write_csv(
    path: Path,
    rows: Iterable[Txn | Sequence[str]],
    encoding: str = "utf-8",
    header: Sequence[str] | None = None,
) -> Path:
    """Write a transaction file in the import layout (imports/csv_layout.py); returns ``path``."""
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(header) if header is not None else list(HEADER))
        for r in rows:
            w.writerow(r.cells() if isinstance(r, Txn) else list(r))
    return path


_file_serial = itertools.count(1)
CREATED_AT = datetime(2026, 11, 1, tzinfo=UTC)


def import_rows(engine: Engine, directory: Path, rows: Iterable[Txn], *, now: datetime,
                cutoffs: CutOffs | None = None) -> ImportResult:
    """Write ``rows`` to a fresh CSV file in ``directory`` and import it."""
    path = write_csv(directory / f"txns-{next(_file_serial)}.csv", rows)
    return import_transactions(engine, path, cutoffs=cutoffs or CutOffs(timezone="Asia/Shanghai"), now=now)


_ref_serial = itertools.count(1)
CREATED_AT = datetime(2026, 11, 1, tzinfo=UTC)


def ref() -> str:
    """A transaction reference unique for the session."""
    return f"R{next(_ref_serial):011d}"
