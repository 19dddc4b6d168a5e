"""Properties of card-number encryption: every number round-trips, two encryptions of one number differ,
the ciphertext never contains the number, and a rotated vault still opens what older keys sealed."""

from __future__ import annotations

import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from settleguard.cards.vault import Vault

KEY1, KEY2 = secrets.token_bytes(32), secrets.token_bytes(32)
pans = st.text(alphabet="0123456789", min_size=13, max_size=19)


@given(pans)
def test_every_card_number_round_trips(pan: str) -> None:
    v = Vault({1: KEY1}, 1)
    s = v.seal(pan)
    assert v.open(s.cipher, s.nonce, s.key_version) == pan
    assert pan.encode() not in s.cipher


@given(pans)
def test_two_encryptions_of_one_number_differ(pan: str) -> None:
    v = Vault({1: KEY1}, 1)
    a, b = v.seal(pan), v.seal(pan)
    assert a.nonce != b.nonce
    assert a.cipher != b.cipher


@settings(max_examples=50)
@given(pans)
def test_a_number_sealed_under_an_old_key_opens_after_a_new_key_and_reseals_under_it(pan: str) -> None:
    old = Vault({1: KEY1}, 1).seal(pan)
    both = Vault({1: KEY1, 2: KEY2}, 2)
    again = both.seal(both.open(old.cipher, old.nonce, old.key_version))
    assert again.key_version == 2
    assert Vault({2: KEY2}, 2).open(again.cipher, again.nonce, again.key_version) == pan
