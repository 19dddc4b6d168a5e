"""What the fee audit knows and finds (pure): a contract's signed rates, a transaction charged other than its
contract, a schedule charging other rates than a contract was signed with, and the audit of one merchant.
The arithmetic over arrays is in fees/compute.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from settleguard.settlement.model import CardType

SAMPLE = 20  # differing transactions kept per merchant as evidence


class AuditRefused(ValueError):
    """The audit was asked for something it cannot do (zh, en)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class ContractRates:
    """The rates of one contract: ppm by card type and the debit cap in fen (None: no cap)."""

    debit_ppm: int
    debit_cap_fen: int | None
    credit_ppm: int
    qr_ppm: int

    @classmethod
    def of(cls, raw: Mapping[str, int | None]) -> ContractRates:
        return cls(int(raw.get("debit_ppm") or 0), None if raw.get("debit_cap_fen") is None
                   else int(raw["debit_cap_fen"] or 0), int(raw.get("credit_ppm") or 0), int(raw.get("qr_ppm") or 0))

    def ppm(self, card: CardType) -> int:
        return {CardType.DEBIT: self.debit_ppm, CardType.CREDIT: self.credit_ppm, CardType.QR: self.qr_ppm}[card]

    def cap(self, card: CardType) -> int | None:
        return self.debit_cap_fen if card is CardType.DEBIT else None


@dataclass(frozen=True)
class Difference:
    """One transaction charged other than its contract says."""

    external_ref: str
    cycle_date: date
    kind: int
    card_type: int
    amount_fen: int
    charged_fen: int
    contracted_fen: int

    @property
    def diff_fen(self) -> int:
        return self.charged_fen - self.contracted_fen


@dataclass(frozen=True)
class RateDrift:
    """A contract whose fee schedule now charges other rates than the contract was signed with: a rate change
    with no contract change behind it (后期上调费率)."""

    effective_from: date | None
    contracted: ContractRates
    charged: ContractRates
    first_day: date | None  # the first audited business day charged at the other rates (None: none seen)


@dataclass
class MerchantAudit:
    """What the audit found for one merchant over the period."""

    merchant_id: int
    merchant_no: str = ""
    name: str = ""
    audited: int = 0           # transactions audited
    transactions: int = 0      # transactions charged other than contracted
    overcharged_fen: int = 0   # sum of what was charged above the contract
    undercharged_fen: int = 0  # sum of what was charged below it
    sample: list[Difference] = field(default_factory=list)
    drifts: list[RateDrift] = field(default_factory=list)

    @property
    def finding(self) -> bool:
        return bool(self.transactions or self.drifts)
