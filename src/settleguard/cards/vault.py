"""Card-number encryption (AES-256-GCM) and masking.

A PAN is stored only as ciphertext (a fresh 96-bit nonce per record, the key version as
associated data) and as a mask (first 6, last 4). The key comes from ``SETTLEGUARD_KEY``
(url-safe base64 of 32 bytes) or from a key file created with mode 0600 on first use.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class VaultError(RuntimeError):
    """The key is missing, malformed, or a ciphertext does not decrypt."""


def mask_pan(pan: str) -> str:
    """First 6 and last 4 digits, the rest as '*': 6222021234567890123 -> 622202*********0123."""
    if len(pan) < 10:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


@dataclass(frozen=True)
class Sealed:
    cipher: bytes
    nonce: bytes
    key_version: int


class Vault:
    """Encrypts and decrypts PANs with one current key (and older versions for rotation)."""

    def __init__(self, keys: dict[int, bytes], current: int) -> None:
        for v, k in keys.items():
            if len(k) != 32:
                raise VaultError(f"key version {v} is {len(k)} bytes; AES-256 needs 32")
        if current not in keys:
            raise VaultError(f"current key version {current} missing")
        self._keys = {v: AESGCM(k) for v, k in keys.items()}
        self.current = current

    def seal(self, pan: str) -> Sealed:
        nonce = secrets.token_bytes(12)
        aad = f"pan:v{self.current}".encode()
        return Sealed(self._keys[self.current].encrypt(nonce, pan.encode(), aad), nonce, self.current)

    def open(self, cipher: bytes, nonce: bytes, key_version: int) -> str:
        aead = self._keys.get(key_version)
        if aead is None:
            raise VaultError(f"no key for version {key_version}")
        try:
            return aead.decrypt(nonce, cipher, f"pan:v{key_version}".encode()).decode()
        except Exception as exc:
            raise VaultError("card number ciphertext does not decrypt with this key") from exc


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except Exception as exc:
        raise VaultError(f"{where}: not base64") from exc
    if len(raw) != 32:
        raise VaultError(f"{where}: key must be 32 bytes, got {len(raw)}")
    return raw


def load_vault(key: str | None, key_file: Path) -> Vault:
    """The vault for ``key`` (env) or ``key_file``; creates the file (0600) if missing.

    Key file format: lines ``<version>:<base64 key>``; the last line is the current key.
    """
    if key:
        return Vault({1: _decode_key(key, "SETTLEGUARD_KEY")}, 1)
    if not key_file.exists():
        material = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"1:{material}\n")
    keys: dict[int, bytes] = {}
    current = 0
    for n, line in enumerate(key_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        ver, _, material = line.partition(":")
        if not ver.isdigit():
            raise VaultError(f"{key_file}:{n}: expected '<version>:<key>'")
        keys[int(ver)] = _decode_key(material, f"{key_file}:{n}")
        current = int(ver)
    if not keys:
        raise VaultError(f"{key_file}: no key")
    return Vault(keys, current)
