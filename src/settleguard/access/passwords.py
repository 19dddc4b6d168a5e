"""Password hashing with argon2id (argon2-cffi's PasswordHasher, RFC 9106 defaults).

Only the PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) is stored. ``verify`` never
raises for a wrong password or a damaged hash; ``check_dummy`` spends the same time for an unknown
username, so a login does not reveal which usernames exist.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for a mismatch or a damaged hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash after a login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy() -> str:
    return _HASHER.hash("settleguard: no such user")


def check_dummy(password: str) -> None:
    """Verify ``password`` against a fixed hash and discard the answer (unknown users)."""
    verify(_dummy(), password)
