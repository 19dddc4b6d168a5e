"""Card-number encryption (AES-256-GCM) and masking.

A PAN is stored only as ciphertext (a fresh 96-bit nonce per record, the key version as
associated data) and as a mask (first 6, last 4). The key comes from ``SETTLEGUARD_KEY``
(url-safe base64 of 32 bytes) or from a key file (lines ``<version>:<base64>``, mode 0600).

The key belongs to the database: each key version's :func:`fingerprint` (an HMAC-SHA256 keyed with
the key over a fixed label, never the key) is recorded in ``card_keys`` and checked by
cards/custody.py before a command reads or writes a card. :func:`read_vault` never creates a key;
:func:`create_key_file` does, explicitly (``settleguard keys init``, an empty database, tests).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class VaultError(RuntimeError):
    """The key is missing, malformed, or a ciphertext does not decrypt."""


class KeyFileMissing(VaultError):
    """The key file does not exist (and nothing may create it here)."""

    def __init__(self, key_file: Path) -> None:
        super().__init__(f"密钥文件不存在 key file not found: {key_file}")
        self.key_file = key_file


FINGERPRINT_LABEL = b"settleguard card key fingerprint v1"
IDENTITY_LABEL = b"settleguard identity hash key v1"  # derives the key of Vault.keyed_hash
ENV_SOURCE = "SETTLEGUARD_KEY"  # Vault.source of a key from the environment


def fingerprint(key: bytes) -> str:
    """The key's fingerprint: HMAC-SHA256 keyed with the key over a fixed label, hex (64 characters).

    It identifies a key without revealing it; comparing two keys' fingerprints says whether they
    are the same key."""
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def same_fingerprint(a: str, b: str) -> bool:
    return hmac.compare_digest(a.lower(), b.lower())


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

    def __init__(self, keys: dict[int, bytes], current: int, source: str = "") -> None:
        for v, k in keys.items():
            if len(k) != 32:
                raise VaultError(f"key version {v} is {len(k)} bytes; AES-256 needs 32")
        if current not in keys:
            raise VaultError(f"current key version {current} missing")
        self._keys = {v: AESGCM(k) for v, k in keys.items()}
        self._fingerprints = {v: fingerprint(k) for v, k in keys.items()}
        self._hash_keys = {v: hmac.new(k, IDENTITY_LABEL, hashlib.sha256).digest() for v, k in keys.items()}
        self.current = current
        self.source = source  # where the keys came from: the key file's path, SETTLEGUARD_KEY or "command"

    @property
    def versions(self) -> tuple[int, ...]:
        """The key versions this vault holds."""
        return tuple(sorted(self._keys))

    def keyed_hash(self, value: str, version: int | None = None) -> str:
        """HMAC-SHA256 of ``value`` (hex) under a key derived from key ``version`` (default: the current one).

        For personal data kept only to be compared, never read back (a resident ID number: duplicates);
        without the key the hash cannot be reversed by trying every possible number."""
        key = self._hash_keys.get(self.current if version is None else version)
        if key is None:
            raise VaultError(f"no key for version {version}")
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def fingerprints(self) -> dict[int, str]:
        """Each key version's fingerprint (never the key)."""
        return dict(self._fingerprints)

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


def new_key_line(version: int = 1) -> str:
    """A fresh random key as a key-file line ``<version>:<base64>``."""
    return f"{version}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"


def write_new_file(path: Path, lines: list[str]) -> None:
    """Write ``lines`` to a new file ``path`` with mode 0600 (fsynced); refuses if ``path`` exists.

    The content goes to a temporary file first and is linked into place, so ``path`` never exists
    half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # FileExistsError if another process created it meanwhile
    finally:
        tmp.unlink(missing_ok=True)


def create_key_file(key_file: Path) -> None:
    """Create ``key_file`` (mode 0600) with one new key, version 1; refuses if it exists."""
    if key_file.exists():
        raise VaultError(f"密钥文件已存在，未覆盖 key file exists, not overwritten: {key_file}")
    write_new_file(key_file, [new_key_line(1)])


def load_vault(key: str | None, key_file: Path) -> Vault:
    """The vault for ``key`` (env) or ``key_file``, creating the file (0600) if it is missing.

    For tests and throw-away vaults only: commands go through cards/custody.py, which never creates
    a key except on an empty database.
    """
    if not key and not key_file.exists():
        create_key_file(key_file)
    return read_vault(key, key_file)


def read_vault(key: str | None, key_file: Path) -> Vault:
    """The vault for ``key`` (env) or ``key_file``; never creates anything (:class:`KeyFileMissing`).

    Key file format: lines ``<version>:<base64 key>``; the last line is the current key.
    """
    if key:
        if ":" in key:  # "<version>:<base64>" entries (a rotation with the key in the environment)
            return parse_key_lines(key.replace(",", " ").split(), ENV_SOURCE)
        return Vault({1: _decode_key(key, ENV_SOURCE)}, 1, ENV_SOURCE)
    if not key_file.exists():
        raise KeyFileMissing(key_file)
    return parse_key_lines(key_file.read_text().splitlines(), str(key_file))


def parse_key_lines(lines: list[str], where: str, *, source: str | None = None) -> Vault:
    """The vault of key-file ``lines`` (``<version>:<base64 key>``; the last line is the current key); errors
    name ``where`` and the line number, never the key material. ``source``: the vault's source (default
    ``where``)."""
    keys: dict[int, bytes] = {}
    current = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        ver, _, material = line.partition(":")
        if not ver.strip().isdigit():
            raise VaultError(f"{where}:{n}: expected '<version>:<key>'")
        keys[int(ver)] = _decode_key(material, f"{where}:{n}")
        current = int(ver)
    if not keys:
        raise VaultError(f"{where}: no key")
    return Vault(keys, current, where if source is None else source)


@dataclass(frozen=True)
class KeyComparison:
    """A vault's key versions against the fingerprints a database recorded (pure)."""

    mismatched: tuple[int, ...] = ()  # recorded with another fingerprint
    missing: tuple[int, ...] = ()     # recorded, still in use, not in the vault
    unknown: tuple[int, ...] = ()     # in the vault, never recorded

    @property
    def matches(self) -> bool:
        return not (self.mismatched or self.missing or self.unknown)


def compare_keys(recorded: dict[int, tuple[str, bool]], held: dict[int, str]) -> KeyComparison:
    """``recorded``: version -> (fingerprint, retired); ``held``: the vault's version -> fingerprint."""
    return KeyComparison(
        mismatched=tuple(sorted(v for v, fp in held.items() if v in recorded
                                and not same_fingerprint(recorded[v][0], fp))),
        missing=tuple(sorted(v for v, (_fp, retired) in recorded.items() if not retired and v not in held)),
        unknown=tuple(sorted(v for v in held if v not in recorded)),
    )
