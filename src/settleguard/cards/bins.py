"""Card BIN (卡BIN) table: which bank issued a card number, and whether it is a debit card.

Settlement cards must be debit cards (借记卡, DC) of a known bank; the bank code also routes
payouts and drives diagnosis. No official UnionPay BIN table is public, so ``bins.csv`` is a
hand-authored table of well-known 6-digit prefixes: the 15 major banks from the shared
reference failure-codes.md §6.3, plus city and rural commercial banks (北京银行, 上海银行, 宁波银行,
南京银行, 江苏银行, 浙商银行, 渤海银行, 恒丰银行, 徽商银行, 广州银行, 北京/上海/深圳/东莞农商行,
江苏/福建农信) from the community dataset that section cites. Rows that dataset gets wrong are left
out: GDB's copy of SPDB's prefixes, the 3–5 digit and 9… legacy prefixes, and prefixes it assigns
to two banks. An operator's full official table (``settleguard bins import``) takes precedence.

The table classes are pure; they satisfy :class:`settleguard.cards.model.BinLookup`, which
:func:`settleguard.cards.checks.check_card` takes. Luhn helpers live in ``cards.model``.
The packaged table is read once.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources

from settleguard.cards.model import CARD_TYPE_NAMES, luhn_complete, luhn_ok

__all__ = ["CARD_TYPES", "BinInfo", "BinTable", "BinTableError", "load_packaged_bins", "luhn_complete",
           "luhn_valid"]

CARD_TYPES = frozenset(CARD_TYPE_NAMES)
_COLUMNS = ("bin", "bank_code", "bank_name_zh", "bank_name_en", "card_type", "length")


class BinTableError(ValueError):
    """A BIN table file that does not have the expected shape."""


@dataclass(frozen=True)
class BinInfo:
    """One row of the BIN table.

    Attributes:
        bin: the issuer prefix, 6 digits for every row of the packaged table.
        bank_code: Alipay-style bank code (ICBC, CCB, ABC, BOC, COMM, CMB, ...).
        bank_name_zh: the bank's Chinese name (中国工商银行).
        bank_name_en: the bank's English name.
        card_type: DC 借记卡, CC 信用卡, SCC 准贷记卡 or PC 预付卡.
        length: the card-number length issued under this prefix (13–19).
    """

    bin: str
    bank_code: str
    bank_name_zh: str
    bank_name_en: str
    card_type: str
    length: int

    @property
    def is_debit(self) -> bool:
        return self.card_type == "DC"


class BinTable:
    """Prefix lookup over a set of :class:`BinInfo` rows."""

    def __init__(self, rows: Iterable[BinInfo]) -> None:
        self._rows: tuple[BinInfo, ...] = tuple(rows)
        self._by_prefix: dict[str, list[BinInfo]] = {}
        for row in self._rows:
            candidates = self._by_prefix.setdefault(row.bin, [])
            if any(c.length == row.length for c in candidates):
                raise BinTableError(f"duplicate BIN {row.bin} with length {row.length}")
            candidates.append(row)
        lengths = {len(p) for p in self._by_prefix}
        self._prefix_lengths = sorted(lengths, reverse=True)

    @classmethod
    def from_csv_text(cls, text: str) -> BinTable:
        """Parse CSV text with the header ``bin,bank_code,bank_name_zh,bank_name_en,card_type,length``."""
        reader = csv.DictReader(io.StringIO(text))
        if tuple(reader.fieldnames or ()) != _COLUMNS:
            raise BinTableError(f"expected columns {','.join(_COLUMNS)}, got {reader.fieldnames}")
        rows: list[BinInfo] = []
        for line_no, rec in enumerate(reader, start=2):
            prefix, card_type, length = rec["bin"].strip(), rec["card_type"].strip(), rec["length"].strip()
            if not prefix.isdigit() or not 3 <= len(prefix) <= 10:
                raise BinTableError(f"line {line_no}: BIN must be 3-10 digits, got {prefix!r}")
            if card_type not in CARD_TYPES:
                raise BinTableError(f"line {line_no}: card_type must be one of {sorted(CARD_TYPES)}")
            if not length.isdigit() or not 13 <= int(length) <= 19 or int(length) <= len(prefix):
                raise BinTableError(f"line {line_no}: length must be 13-19 and longer than the BIN")
            rows.append(BinInfo(prefix, rec["bank_code"].strip(), rec["bank_name_zh"].strip(),
                                rec["bank_name_en"].strip(), card_type, int(length)))
        return cls(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[BinInfo]:
        return iter(self._rows)

    def lookup(self, pan: str) -> BinInfo | None:
        """The row for a card number: the longest matching prefix, preferring the row whose
        length equals the number's length.

        If a prefix matches but no row for it has the number's length, the longest matching
        row is still returned, so callers can tell "wrong length for this bank" (compare
        ``info.length`` with ``len(pan)``) from "unknown bank" (``None``).
        """
        if not pan.isdigit():
            return None
        fallback: BinInfo | None = None
        for n in self._prefix_lengths:
            if n >= len(pan):
                continue
            candidates = self._by_prefix.get(pan[:n])
            if not candidates:
                continue
            for row in candidates:
                if row.length == len(pan):
                    return row
            if fallback is None:
                fallback = candidates[0]
        return fallback

    def debit_bins(self, bank_code: str) -> list[BinInfo]:
        """The bank's debit-card (DC) rows, in table order."""
        return [r for r in self._rows if r.bank_code == bank_code and r.card_type == "DC"]

    def bank_codes(self) -> list[str]:
        """Every bank code in the table, in first-seen order."""
        return list(dict.fromkeys(r.bank_code for r in self._rows))

    def bank_name_zh(self, bank_code: str) -> str | None:
        """The Chinese name of a bank code, or None if the table does not know it."""
        for r in self._rows:
            if r.bank_code == bank_code:
                return r.bank_name_zh
        return None


@functools.cache
def load_packaged_bins() -> BinTable:
    """The BIN table shipped with settleguard (``settleguard/cards/bins.csv``), read once."""
    text = resources.files("settleguard.cards").joinpath("bins.csv").read_text(encoding="utf-8")
    return BinTable.from_csv_text(text)


def luhn_valid(pan: str) -> bool:
    """Whether a card number passes the Luhn check (a strong hint, not proof, of a typo-free number)."""
    return luhn_ok(pan)


def layered_bins(operator_rows: Sequence[BinInfo], packaged: BinTable) -> BinTable:
    """One table of the operator's rows and the packaged rows: the longest prefix wins across both,
    and on an equal prefix only the operator's rows count."""
    if not operator_rows:
        return packaged
    prefixes = {r.bin for r in operator_rows}
    return BinTable([*operator_rows, *(r for r in packaged if r.bin not in prefixes)])
