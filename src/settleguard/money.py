"""Money in integer fen (分) and the one fee rounding rule.

Every amount in settleguard is an ``int`` number of fen. Rates are integers in parts per
million (ppm): 0.38% = 3800 ppm, 0.5% = 5000 ppm, 0.6% = 6000 ppm. The fee on one
transaction is::

    fee_fen = min(cap_fen, (amount_fen * rate_ppm + 500_000) // 1_000_000)

that is, the exact product rounded half up to the fen (四舍五入到分), then capped.
The same formula is used in Python, in the vectorised importer and in tests, so the
three can never disagree.
"""

from __future__ import annotations

import re
from decimal import Decimal

PPM = 1_000_000
_YUAN_RE = re.compile(r"^(-?)(\d{1,15})(?:\.(\d{1,2}))?$")


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in fen."""


def fee_fen(amount_fen: int, rate_ppm: int, cap_fen: int | None = None) -> int:
    """Fee for one transaction of ``amount_fen`` at ``rate_ppm``, rounded half up, capped.

    >>> fee_fen(10_000, 6000)          # 100.00 yuan at 0.6%
    60
    >>> fee_fen(1_000_000_00, 5000, 2000)  # 1,000,000 yuan debit, capped at 20 yuan
    2000
    """
    if amount_fen < 0:
        raise MoneyError(f"amount must not be negative: {amount_fen}")
    if rate_ppm < 0:
        raise MoneyError(f"rate must not be negative: {rate_ppm}")
    fee = (amount_fen * rate_ppm + PPM // 2) // PPM
    if cap_fen is not None and fee > cap_fen:
        return cap_fen
    return fee


def yuan_to_fen(text: str) -> int:
    """Parse a yuan amount with at most two decimals ("123.4", "5", "-0.01") exactly."""
    m = _YUAN_RE.match(text.strip())
    if not m:
        raise MoneyError(f"not a yuan amount with at most 2 decimals: {text!r}")
    sign, whole, frac = m.groups()
    fen = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    return -fen if sign else fen


def fen_to_yuan(fen: int) -> str:
    """Format fen as a yuan string with two decimals: 123456 -> "1234.56"."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}{q}.{r:02d}"


def fen_to_decimal(fen: int) -> Decimal:
    """Fen as an exact Decimal number of yuan (for XML and display)."""
    return Decimal(fen).scaleb(-2)


def format_yuan(fen: int) -> str:
    """Human display with thousands separators: 123456789 -> "¥1,234,567.89"."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}¥{q:,}.{r:02d}"


def rate_to_ppm(percent: str) -> int:
    """Parse a percentage such as "0.38" (meaning 0.38%) into ppm exactly."""
    d = Decimal(percent.strip().rstrip("%"))
    ppm = d * 10_000
    if ppm != ppm.to_integral_value() or ppm < 0:
        raise MoneyError(f"rate {percent!r}% is not a whole number of ppm")
    return int(ppm)
