"""web/passwords.py: argon2id hashes, verification that never raises, rehash detection."""

from __future__ import annotations

from argon2 import PasswordHasher

from settleguard.access import passwords


def test_a_hash_is_argon2id_salted_and_verifies_only_the_right_password() -> None:
    h1 = passwords.hash_password("correct-horse")
    h2 = passwords.hash_password("correct-horse")
    assert h1.startswith("$argon2id$")
    assert "correct-horse" not in h1
    assert h1 != h2  # a fresh salt each time
    assert passwords.verify(h1, "correct-horse")
    assert passwords.verify(h2, "correct-horse")
    assert not passwords.verify(h1, "correct-horsE")
    assert not passwords.verify(h1, "")


def test_a_damaged_hash_is_a_mismatch_not_an_error() -> None:
    h = passwords.hash_password("correct-horse")
    tampered = h[:-4] + ("AAAA" if not h.endswith("AAAA") else "BBBB")
    assert not passwords.verify(tampered, "correct-horse")
    assert not passwords.verify("not a hash", "correct-horse")
    assert not passwords.verify("", "correct-horse")


def test_hashes_with_weaker_parameters_or_garbage_need_a_rehash() -> None:
    assert not passwords.needs_rehash(passwords.hash_password("correct-horse"))
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("correct-horse")
    assert passwords.verify(weak, "correct-horse")
    assert passwords.needs_rehash(weak)
    assert passwords.needs_rehash("garbage")

