"""References read from bank files, made safe to store: masked and bounded, except our own batch ids.

Banks echo card numbers in any field, so every reference is masked (settleguard.masking). Our own
PmtInfId / MsgId (``SGB`` + 20 digits, payouts/files.py) would be masked too (a 20-digit run), and then
could never be matched against the pain.001 we sent: exactly that shape is kept verbatim (it cannot hold a
card number: 20 digits is no PAN length, and a PAN inside it would not be at a digit-run boundary).
"""

from __future__ import annotations

import re

from settleguard.masking import bounded, mask_card_numbers

REF_LIMIT = 64
_OWN_BATCH_ID = re.compile(r"SGB[0-9]{20}")


def safe_ref(text: str | None) -> str | None:
    """A reference to store and show: None for empty, ours verbatim, anything else masked and bounded."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if _OWN_BATCH_ID.fullmatch(text):
        return text
    return bounded(mask_card_numbers(text), REF_LIMIT)
