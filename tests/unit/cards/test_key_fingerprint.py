"""Key fingerprints and their comparison with what a database recorded (cards/vault.py, pure parts)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

import pytest

from settleguard.cards.vault import (
    FINGERPRINT_LABEL,
    KeyComparison,
    KeyFileMissing,
    compare_keys,
    create_key_file,
    fingerprint,
    read_vault,
)


def test_a_fingerprint_is_a_keyed_hash_of_a_fixed_label_never_the_key() -> None:
    key = secrets.token_bytes(32)
    fp = fingerprint(key)
    assert fp == hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()
    assert len(fp) == 64
    assert key.hex() not in fp
    assert fingerprint(key) == fp
    assert fingerprint(secrets.token_bytes(32)) != fp


def test_comparison_names_mismatched_missing_and_unknown_versions() -> None:
    assert compare_keys({1: ("aa", False)}, {1: "AA"}).matches
    assert compare_keys({1: ("aa", True), 2: ("bb", False)}, {2: "bb"}).matches  # a retired version may be gone
    assert compare_keys({1: ("aa", False)}, {1: "cc"}) == KeyComparison(mismatched=(1,))
    assert compare_keys({1: ("aa", True), 2: ("bb", False)}, {1: "aa"}) == KeyComparison(missing=(2,))
    assert compare_keys({1: ("aa", False)}, {1: "aa", 2: "bb"}) == KeyComparison(unknown=(2,))


def test_reading_a_vault_never_creates_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileMissing):
        read_vault(None, tmp_path / "none.key")
    assert not (tmp_path / "none.key").exists()
    create_key_file(tmp_path / "k.key")
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    assert read_vault(None, tmp_path / "k.key").source == str(tmp_path / "k.key")
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]  # no temporary file left
