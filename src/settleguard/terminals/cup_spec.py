"""The China UnionPay POS message layout (银联 POS 8583 报文规范) as a pyiso8583 spec, written in the project.

Why a spec of our own: pyiso8583 ships an ASCII and a generic spec, not CUP's. CUP POS messages carry a BCD
MTI and a binary bitmap; numeric fields are BCD (left-aligned, padded), LLVAR/LLLVAR lengths are BCD (one or
two bytes) counting digits for numeric fields and bytes for the others; text fields are ASCII. Before the MTI:
the 5-byte TPDU and the 6-byte application header (both binary, our "h").

Only the fields a POS sends or receives are defined; a message whose bitmap names another field is reported as
undecodable (log_reader), never guessed. Sources: shared/reference/reconciliation-terminals-risk.md §4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

HEADER_BYTES: Final = 11  # TPDU (5) + application header (6)


def _n(digits: int, desc: str, pad: str = "left_pad") -> dict[str, Any]:
    """A fixed numeric field of ``digits`` digits in BCD (odd lengths padded with a leading 0)."""
    return {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": digits, "len_count": "nibbles",
            pad: "0", "desc": desc}


def _llvar_n(max_digits: int, desc: str, len_bytes: int = 1, pad: str = "0") -> dict[str, Any]:
    """A variable numeric field: BCD length in digits, BCD data left-aligned, an odd count padded at the right."""
    return {"data_enc": "b", "len_enc": "bcd", "len_type": len_bytes, "max_len": max_digits,
            "len_count": "nibbles", "right_pad": pad, "desc": desc}


def _text(length: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": length, "desc": desc}


def _lllvar_b(max_bytes: int, desc: str) -> dict[str, Any]:
    """Variable binary data with a two-byte BCD length in bytes (keys, IC data, text we do not read)."""
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 2, "max_len": max_bytes, "desc": desc}


CUP_POS: Final[Mapping[str, Mapping[str, Any]]] = {
    "h": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": HEADER_BYTES, "desc": "TPDU + header"},
    "t": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 2, "desc": "Message type (BCD)"},
    "p": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8, "desc": "Bitmap, primary"},
    "1": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8, "desc": "Bitmap, secondary"},
    "2": _llvar_n(19, "Primary account number", pad="F"),
    "3": _n(6, "Processing code"),
    "4": _n(12, "Amount, transaction (fen)"),
    "11": _n(6, "System trace audit number"),
    "12": _n(6, "Time, local transaction (hhmmss)"),
    "13": _n(4, "Date, local transaction (MMDD)"),
    "14": _n(4, "Date, expiration (YYMM)"),
    "15": _n(4, "Date, settlement (MMDD)"),
    "22": _n(3, "POS entry mode"),
    "23": _n(3, "Card sequence number"),
    "25": _n(2, "POS condition code"),
    "26": _n(2, "POS PIN capture code"),
    "32": _llvar_n(11, "Acquiring institution id"),
    "35": _llvar_n(37, "Track 2 data", pad="F"),
    "36": _llvar_n(104, "Track 3 data", len_bytes=2, pad="F"),
    "37": _text(12, "Retrieval reference number"),
    "38": _text(6, "Authorization code"),
    "39": _text(2, "Response code"),
    "41": _text(8, "Terminal id"),
    "42": _text(15, "Merchant id"),
    "44": {"data_enc": "ascii", "len_enc": "bcd", "len_type": 1, "max_len": 25, "desc": "Additional response"},
    "48": _llvar_n(322, "Additional data (settlement totals)", len_bytes=2),
    "49": _text(3, "Currency code"),
    "52": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8, "desc": "PIN data"},
    "53": _n(16, "Security control information"),
    "54": _lllvar_b(20, "Balance amount"),
    "55": _lllvar_b(255, "IC card data"),
    "60": _llvar_n(17, "Reserved private (60.1 type, 60.2 batch, 60.3 network code)", len_bytes=2),
    "61": _llvar_n(29, "Original message data", len_bytes=2),
    "62": _lllvar_b(512, "Reserved private (keys, terminal info)"),
    "63": _lllvar_b(163, "Reserved private (operator, issuer)"),
    "64": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8, "desc": "MAC"},
}

# Fields that hold card data: dropped (35, 36, 52, 55) or masked (2) as soon as a message is decoded.
SENSITIVE_DROPPED: Final = frozenset({"35", "36", "52", "55"})
# The fields a decoded message keeps (log_reader): what the analysis and the evidence use. Never card data but
# the PAN, masked at once; never keys (62) or the MAC (64).
KEPT_FIELDS: Final = ("2", "3", "4", "11", "37", "38", "39", "41", "42", "44", "48", "49", "60", "61")
assert not SENSITIVE_DROPPED & set(KEPT_FIELDS)
