"""Bank statement lines as settleguard keeps them, whatever file they came from (pure: no I/O, no clock).

中文：对账的数据模型。camt.053 / camt.054 / 国内银行代付结果、账户明细文件读出来都归一成
:class:`BankLine`（一条银行记账）与 :class:`Statement`（一份对账单：余额、汇总、明细）。
金额一律为整数“分”，借贷方向单列，冲正（RvslInd / 冲退）单列；状态只有 BOOK（已记账）、
PDNG（未决）、INFO（仅供参考）。``raw`` 是原始元素或行，已屏蔽卡号并截断。

The later slices (matching, breaks, balance proof) read these; keep them explicit and small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

RAW_LIMIT = 2000  # characters of the original element or line kept with a bank line
CURRENCY = "CNY"


class Direction(StrEnum):
    DEBIT = "DBIT"  # money left the account (a payout paid)
    CREDIT = "CRDT"


class EntryStatus(StrEnum):
    BOOKED = "BOOK"
    PENDING = "PDNG"
    INFO = "INFO"


class Source(StrEnum):
    CAMT053 = "camt.053"
    CAMT054 = "camt.054"
    BANK_FILE = "bank_file"


DIRECTION_NAMES = {Direction.DEBIT: ("借", "debit"), Direction.CREDIT: ("贷", "credit")}
STATUS_NAMES = {EntryStatus.BOOKED: ("已记账", "booked"), EntryStatus.PENDING: ("未决", "pending"),
                EntryStatus.INFO: ("仅供参考", "information")}


class StatementRejected(ValueError):
    """A statement file refused as a whole; nothing from it is stored.

    ``where`` names the element (camt) or the line (bank file); texts are zh then en, already masked by
    the reader that raises it."""

    def __init__(self, path: str, where: str, zh: str, en: str) -> None:
        self.path, self.where, self.zh, self.en = path, where, zh, en
        super().__init__(f"{path}: {where}: {zh} {en}")


@dataclass(frozen=True, slots=True)
class BankLine:
    """One booking (or one transaction of a batch booking) on a bank statement."""

    source: Source
    statement_id: str
    entry_ref: str  # unique within the statement: NtryRef (or the entry's position), /k for its k-th TxDtls
    amount_fen: int  # always positive; the direction says which way
    direction: Direction
    status: EntryStatus
    booking_date: date | None
    value_date: date | None
    acct_svcr_ref: str | None = None
    end_to_end_id: str | None = None
    pmt_inf_id: str | None = None
    batch_count: int | None = None
    batch_total_fen: int | None = None
    currency: str = CURRENCY
    reversal: bool = False
    raw: str = ""

    @property
    def signed_fen(self) -> int:
        return self.amount_fen if self.direction is Direction.CREDIT else -self.amount_fen


@dataclass(frozen=True, slots=True)
class Balance:
    """A Bal element: OPBD (opening booked), CLBD (closing booked) or PRCD (previous closing), signed fen."""

    code: str
    amount_fen: int
    on: date | None


@dataclass(frozen=True, slots=True)
class Summary:
    """TxsSummry as the bank stated it (None where an element was absent)."""

    entries: int | None = None
    entries_sum_fen: int | None = None
    net_fen: int | None = None  # signed: credits minus debits
    credits: int | None = None
    credits_sum_fen: int | None = None
    debits: int | None = None
    debits_sum_fen: int | None = None


@dataclass(slots=True)
class Statement:
    """One statement (camt.053 Stmt), notification (camt.054 Ntfctn) or bank file, with its lines."""

    source: Source
    statement_id: str
    account: str
    lines: list[BankLine] = field(default_factory=list)
    balances: dict[str, Balance] = field(default_factory=dict)
    summary: Summary | None = None
    created_at: str | None = None

    def balance(self, code: str) -> int | None:
        b = self.balances.get(code)
        return None if b is None else b.amount_fen

    def totals(self) -> StatementTotals:
        return totals(self.lines)

    def balance_difference(self) -> int | None:
        """OPBD + booked entries - CLBD (0 when the statement proves itself), None without both balances."""
        opening, closing = self.balance("OPBD"), self.balance("CLBD")
        if opening is None or closing is None:
            return None
        booked = sum(ln.signed_fen for ln in self.lines if ln.status is EntryStatus.BOOKED)
        return opening + booked - closing


@dataclass(frozen=True, slots=True)
class StatementTotals:
    lines: int
    booked: int
    pending: int
    info: int
    debit_fen: int
    credit_fen: int
    debits: int
    credits: int


def totals(lines: list[BankLine]) -> StatementTotals:
    """Counts and sums of booked and other lines (sums over booked lines only)."""
    booked = [ln for ln in lines if ln.status is EntryStatus.BOOKED]
    debits = [ln.amount_fen for ln in booked if ln.direction is Direction.DEBIT]
    credits = [ln.amount_fen for ln in booked if ln.direction is Direction.CREDIT]
    return StatementTotals(
        lines=len(lines), booked=len(booked), pending=sum(ln.status is EntryStatus.PENDING for ln in lines),
        info=sum(ln.status is EntryStatus.INFO for ln in lines), debit_fen=sum(debits), credit_fen=sum(credits),
        debits=len(debits), credits=len(credits))


_DECIMAL_RE = re.compile(r"^[0-9]{1,18}(?:\.[0-9]{1,20})?$")  # ASCII digits only, no sign, no exponent


def decimal_to_fen(text: str) -> int:
    """A non-negative yuan amount (``1234.5``) as exact integer fen; ValueError (zh en) otherwise.

    More than two decimals is refused unless the extra digits are zeros (``1.230`` is 123 fen)."""
    text = text.strip()
    if not _DECIMAL_RE.match(text):
        raise ValueError(f"金额格式错误 not a non-negative decimal amount: '{text[:40]}'")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise ValueError(f"金额格式错误 not a decimal amount: '{text[:40]}'") from None
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"金额超过两位小数 amount has fractions of a fen: '{text[:40]}'")
    return int(fen)
