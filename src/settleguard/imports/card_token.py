"""Card tokens: a stable, keyed, irreversible name for a card number, so that transactions of one card can be
linked (risk: the same card at one terminal many times a day) without keeping the card number.

``card_token`` = the first 32 hex characters of HMAC-SHA256(token key, normalised card number). The token key is
derived with HKDF-SHA256 from the card key (cards/vault.py) and handed in by the caller (the CLI passes the
vault it opened); it never leaves memory and is never the vault's key itself. The card number is never stored.

Normalised: spaces removed; a masked number (``622202******0123``) keeps its mask with ``*`` for ``x``/``X``, so a
masked number has another token than the full one (a file gives one or the other consistently).

中文：卡标识（card_token）是卡号的不可逆带密钥摘要（HMAC-SHA256，密钥由卡号主密钥经 HKDF 派生），
只用于关联同一张卡的交易；卡号本身从不存储。
"""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from settleguard.cards.vault import Vault

TOKEN_INFO = b"settleguard card token v1"
TOKEN_HEX = 32


def token_key(vault: Vault) -> bytes:
    """The token key: HKDF-SHA256 over key material the vault derives from its card key.

    The input is the vault's keyed hash of a fixed label under its lowest key version (the original key), so
    tokens stay the same after a key rotation for as long as that version is held (docs/import.md)."""
    ikm = bytes.fromhex(vault.keyed_hash("settleguard card token ikm v1", min(vault.versions)))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=TOKEN_INFO).derive(ikm)


def normalise(card: str) -> str:
    return card.replace(" ", "").replace("x", "*").replace("X", "*")


def card_token(card: str, key: bytes) -> str:
    """The token of one card number (see the module docstring)."""
    return hmac.new(key, normalise(card).encode(), hashlib.sha256).hexdigest()[:TOKEN_HEX]


def card_tokens(cards: pa.ChunkedArray | pa.Array, key: bytes) -> pa.Array:
    """The token of every value (null where the value is empty), hashing each distinct value once: the column is
    dictionary-encoded (C++), and only its distinct values are normalised and hashed in Python."""
    encoded = pc.dictionary_encode(cards)
    if isinstance(encoded, pa.ChunkedArray):
        chunks = encoded.unify_dictionaries().chunks  # one dictionary shared by every chunk
    else:
        chunks = [encoded]
    if not chunks:
        return pa.array([], pa.string())
    values = chunks[0].dictionary.to_pylist()
    table = pa.array([hmac.digest(key, normalise(v).encode(), "sha256").hex()[:TOKEN_HEX] if v else None
                      for v in values], pa.string())
    return pa.concat_arrays([pc.take(table, c.indices) for c in chunks])
