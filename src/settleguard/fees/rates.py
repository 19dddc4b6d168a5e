"""A merchant's contracted and effective fee rate by month and card type (the merchant portal and
``settleguard fees rates``): effective = the month's fees ÷ its sales; contracted = the contract in force on the
month's last business day with transactions. A debit cap makes the effective rate lower than the contract."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from settleguard.fees import repository as repo
from settleguard.fees.model import AuditRefused, ContractRates
from settleguard.money import format_yuan
from settleguard.settlement.model import CardType


@dataclass(frozen=True)
class MonthRate:
    month: str                 # YYYY-MM
    card_type: int
    sales: int                 # sale count
    sale_fen: int
    fee_fen: int               # fees net of those given back (voids, reversals)
    effective_ppm: int | None  # fee ÷ sales, None without sales
    contracted_ppm: int | None
    contracted_cap_fen: int | None

    @property
    def matches(self) -> bool:
        """Whether the month's fees are no more than the contract allows, within per-transaction rounding."""
        if self.effective_ppm is None or self.contracted_ppm is None or not self.sale_fen:
            return True
        tolerance = -(-self.sales * 500_000 // self.sale_fen) + 1  # half a fen a sale, in ppm of the month's sales
        return self.effective_ppm <= self.contracted_ppm + tolerance

    @property
    def contracted_text(self) -> str:
        if self.contracted_ppm is None:
            return "-"
        cap = "" if self.contracted_cap_fen is None else f"（封顶 cap {format_yuan(self.contracted_cap_fen)}）"
        return f"{self.contracted_ppm / 10_000:.4g}%{cap}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "matches": self.matches}


def _month_back(today: date, months: int) -> date:
    y, m = today.year, today.month - (months - 1)
    while m <= 0:
        y, m = y - 1, m + 12
    return date(y, m, 1)


def monthly_rates(engine: Engine, merchant_no: str, *, months: int, today: date) -> list[MonthRate]:
    with engine.connect() as conn:
        mid = repo.merchant_id(conn, merchant_no)
        if mid is None:
            raise AuditRefused(f"商户 {merchant_no[:40]} 不存在", f"no merchant {merchant_no[:40]!r}")
        return rates_of(conn, mid, months=months, today=today)


def rates_of(conn: Any, merchant_id: int, *, months: int, today: date) -> list[MonthRate]:
    """The months of one merchant (a connection in hand: the portal)."""
    contracts = [c for c in repo.contracts_of(conn, merchant_id)]
    now = repo.rates_now(conn, [c.schedule_id for c in contracts])  # signed rates of a contract without a row
    out: list[MonthRate] = []
    for month, card, sales, sale_fen, fee_fen in repo.monthly(conn, merchant_id, _month_back(today, months), today):
        last = date.fromisoformat(f"{month}-28")
        signed = None
        for c in contracts:  # the contract in force at the month's end (the first before them all)
            if signed is None or c.effective_from <= last:
                signed = ContractRates.of(c.rates if c.rates is not None else now[c.schedule_id])
        ct = CardType(card) if card in {int(x) for x in CardType} else None
        out.append(MonthRate(month, card, sales, sale_fen, fee_fen,
                             None if not sale_fen else round(fee_fen * 1_000_000 / sale_fen),
                             None if signed is None or ct is None else signed.ppm(ct),
                             None if signed is None or ct is None else signed.cap(ct)))
    return out
