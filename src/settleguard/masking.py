"""Masking of card numbers in text that comes from outside (pure).

Banks echo account numbers in free text (``账号6217…8009户名不符``), in account fields of status reports,
in notification narratives and in HTTP answers; a webhook receiver or a file can do the same. Every such
text passes :func:`mask_card_numbers` once, where it enters settleguard, before it is stored, logged or
shown: any run of 13 or more digits — Luhn-valid or not, ASCII or full-width, written in one piece or in
groups separated by up to three spaces or dashes — keeps its first 6 and last 4 digits and loses the rest to
``*``. (A card number has 13–19 digits; a longer run may hold one glued to other digits, so it is masked
too.) Shorter runs — amounts, dates, error codes, phone numbers — are left as they are.

:func:`bounded` cuts an outside text to a length before it is echoed in an error or stored.
"""

from __future__ import annotations

import re

MIN_DIGITS = 13
# A digit, then 12 or more digits each optionally preceded by up to three separators. ``\d`` is Unicode-aware, so
# full-width digits (６２１７…) count. The look-arounds stop a match from starting or ending inside a longer
# run of digits.
_SEP = r"[ \-\u00a0\u3000\u2010-\u2015\uff0d]"
_RUN = re.compile(rf"(?<!\d)\d(?:{_SEP}{{0,3}}\d){{{MIN_DIGITS - 1},}}(?!\d)")
_NOT_DIGIT = re.compile(r"\D")


def _mask_digits(digits: str) -> str:
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def _replace(m: re.Match[str]) -> str:
    return _mask_digits(_NOT_DIGIT.sub("", m.group(0)))


def mask_card_numbers(text: str) -> str:
    """``text`` with every card-number-like digit run masked (first 6 and last 4 kept)."""
    if len(text) < MIN_DIGITS:
        return text
    return _RUN.sub(_replace, text)


def mask_optional(text: str | None) -> str | None:
    """:func:`mask_card_numbers` for a value that may be missing."""
    return None if text is None else mask_card_numbers(text)


def has_card_number(text: str) -> bool:
    """True when ``text`` holds a digit run that :func:`mask_card_numbers` would mask."""
    return _RUN.search(text) is not None


def bounded(text: str, limit: int = 200) -> str:
    """``text`` masked and cut to ``limit`` characters (an ellipsis marks the cut); control characters other
    than tab and newline are shown as ``\\xNN`` so that binary input cannot flood or garble a terminal."""
    cut = text[: limit + 1]
    head = cut[:limit]
    # nearly every text is printable as a whole: one C-level check instead of a Python loop per character
    shown = head if head.isprintable() else "".join(
        c if c in "\t\n" or c.isprintable() else f"\\x{ord(c):02x}" for c in head)
    return mask_card_numbers(shown) + ("…" if len(cut) > limit else "")
