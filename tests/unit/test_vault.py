"""Card numbers are sealed with AES-256-GCM and masked; keys are handled carefully."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from settleguard.cards.vault import Vault, VaultError, load_vault, mask_pan

PAN = "6222021234567890128"


def test_a_sealed_pan_opens_to_the_same_number_and_never_contains_it(tmp_path: Path) -> None:
    v = load_vault(None, tmp_path / "k")
    sealed = v.seal(PAN)
    assert PAN.encode() not in sealed.cipher
    assert v.open(sealed.cipher, sealed.nonce, sealed.key_version) == PAN


def test_every_seal_uses_a_fresh_nonce(tmp_path: Path) -> None:
    v = load_vault(None, tmp_path / "k")
    a, b = v.seal(PAN), v.seal(PAN)
    assert a.nonce != b.nonce
    assert a.cipher != b.cipher


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    v1 = load_vault(None, key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    sealed = v1.seal(PAN)
    v2 = load_vault(None, key_file)  # same key read back
    assert v2.open(sealed.cipher, sealed.nonce, sealed.key_version) == PAN


def test_a_tampered_ciphertext_or_another_key_is_refused(tmp_path: Path) -> None:
    v = load_vault(None, tmp_path / "k")
    s = v.seal(PAN)
    with pytest.raises(VaultError):
        v.open(bytes([s.cipher[0] ^ 1]) + s.cipher[1:], s.nonce, s.key_version)
    other = load_vault(None, tmp_path / "other")
    with pytest.raises(VaultError) as info:
        other.open(s.cipher, s.nonce, s.key_version)
    assert PAN not in str(info.value)


def test_the_environment_key_takes_precedence_and_must_be_32_bytes(tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    v = load_vault(key, tmp_path / "unused")
    assert not (tmp_path / "unused").exists()
    s = v.seal(PAN)
    assert load_vault(key, tmp_path / "unused").open(s.cipher, s.nonce, s.key_version) == PAN
    with pytest.raises(VaultError, match="32 bytes"):
        load_vault(base64.urlsafe_b64encode(b"short").decode(), tmp_path / "unused")


def test_older_key_versions_still_open_after_a_new_current_key(tmp_path: Path) -> None:
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    old = Vault({1: k1}, 1).seal(PAN)
    both = Vault({1: k1, 2: k2}, 2)
    assert both.open(old.cipher, old.nonce, 1) == PAN
    assert both.seal(PAN).key_version == 2


@pytest.mark.parametrize(("pan", "masked"), [
    ("6222021234567890128", "622202*********0128"),
    ("6225880012345678", "622588******5678"),
    ("123", "***"),
])
def test_masking_keeps_the_first_six_and_last_four_digits(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked
