"""The operator's BIN table (atomic, idempotent import; precedence over the packaged table) and key
rotation (every card re-encrypted under the new key, none left under the old), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from factories import make_merchants
from settleguard.cards import repository as repo
from settleguard.cards.bin_import import BinImportRejected, import_bins
from settleguard.cards.bins import luhn_complete
from settleguard.cards.key_rotation import RotationError, check_all_open, rotate_keys
from settleguard.cards.vault import Vault, VaultError, load_vault
from settleguard.db import tables as t
from settleguard.reference import bins_repository as bins_repo
from settleguard.reference.bins_repository import binding_bins

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
HEADER = "bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n"
ICBC_PAN = luhn_complete("622202" + "1" * 12)  # packaged: 622202 ICBC DC 19


def write(path: Path, *lines: str, encoding: str = "utf-8") -> Path:
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines), encoding=encoding)
    return path


def test_the_operator_table_wins_on_an_equal_prefix_and_the_longest_prefix_wins_across_both(
        engine: Engine, tmp_path: Path) -> None:
    with engine.connect() as conn:
        assert binding_bins(conn).lookup(ICBC_PAN).bank_code == "ICBC"  # type: ignore[union-attr]
    res = import_bins(engine, write(tmp_path / "bins.csv",
                                    "622202,TESTBK,测试银行,Test Bank,DC,19",  # same prefix as packaged ICBC
                                    "6222,SHORTBK,短前缀银行,Short Bank,DC,19",  # shorter than packaged 622202
                                    "62270012,LONGBK,长前缀银行,Long Bank,CC,16"), now=NOW)  # longer than 622700
    assert (res.rows, res.added, res.removed, res.unchanged, res.banks) == (3, 3, 0, False, 3)
    with engine.connect() as conn:
        bins = binding_bins(conn)
    assert bins.lookup(ICBC_PAN).bank_code == "TESTBK"  # type: ignore[union-attr]
    assert bins.lookup(luhn_complete("622208" + "2" * 12)).bank_code == "ICBC"  # type: ignore[union-attr]
    assert bins.lookup(luhn_complete("622299" + "2" * 12)).bank_code == "SHORTBK"  # type: ignore[union-attr]
    long_card = bins.lookup(luhn_complete("62270012" + "3" * 7))
    assert long_card is not None
    assert (long_card.bank_code, long_card.card_type) == ("LONGBK", "CC")
    assert bins.lookup(luhn_complete("622700" + "3" * 12)).bank_code == "CCB"  # type: ignore[union-attr]


def test_a_bad_row_rejects_the_whole_file_and_keeps_the_previous_table(engine: Engine, tmp_path: Path) -> None:
    good = write(tmp_path / "good.csv", "622202,TESTBK,测试银行,Test Bank,DC,19", "955880,ICBC,工行,ICBC,DC,19")
    import_bins(engine, good, now=NOW)
    bad_type = write(tmp_path / "bad1.csv", "622202,NEWBK,新银行,New Bank,DC,19", "621700,CCB,建行,CCB,DC,19",
                     "621799,CCB,建行,CCB,XX,19")
    with pytest.raises(BinImportRejected, match="line 4: card_type"):
        import_bins(engine, bad_type, now=NOW)
    bad_bank = write(tmp_path / "bad2.csv", "622202,NEWBK,新银行,New Bank,DC,19", "621700,,建行,CCB,DC,19")
    with pytest.raises(BinImportRejected, match=r"bad2.csv:3: bank_code is empty"):
        import_bins(engine, bad_bank, now=NOW)
    with pytest.raises(BinImportRejected, match="line 2: length"):
        import_bins(engine, write(tmp_path / "bad3.csv", "622202,NEWBK,新银行,New Bank,DC,12"), now=NOW)
    (tmp_path / "bad4.csv").write_text("bin,bank\n622202,X\n", encoding="utf-8")
    with pytest.raises(BinImportRejected, match="expected columns"):
        import_bins(engine, tmp_path / "bad4.csv", now=NOW)
    with engine.connect() as conn:
        assert sorted((r.bin, r.bank_code) for r in bins_repo.db_bins(conn)) == [("622202", "TESTBK"), ("955880", "ICBC")]


def test_importing_the_same_table_again_changes_nothing_and_a_new_table_replaces_it(
        engine: Engine, tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", "622202,TESTBK,测试银行,Test Bank,DC,19", "955880,ICBC,工行,ICBC,DC,19")
    import_bins(engine, first, now=NOW)
    with engine.connect() as conn:
        stamp = conn.execute(select(t.card_bins.c.imported_at)).scalars().all()
    again = import_bins(engine, write(tmp_path / "gbk.csv", "955880,ICBC,工行,ICBC,DC,19",
                                      "622202,TESTBK,测试银行,Test Bank,DC,19", encoding="gbk"),
                        now=datetime(2026, 11, 21, tzinfo=UTC))
    assert again.unchanged is True
    with engine.connect() as conn:
        assert conn.execute(select(t.card_bins.c.imported_at)).scalars().all() == stamp
    second = import_bins(engine, write(tmp_path / "b.csv", "955880,ICBC,工行,ICBC,DC,19"), now=NOW)
    assert (second.unchanged, second.added, second.removed) == (False, 0, 1)
    with engine.connect() as conn:
        assert [r.bin for r in bins_repo.db_bins(conn)] == ["955880"]


def test_rotation_reencrypts_every_card_under_the_new_key_and_retires_the_old(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    key_file = tmp_path / "test.key"  # the file behind the `vault` fixture
    with engine.begin() as conn:
        ms = make_merchants(conn, vault, 25)
    before = {m.id: m.pan for m in ms}
    done: list[int] = []
    res = rotate_keys(engine, key_file, progress=done.append)
    assert (res.old_versions, res.new_version, res.reencrypted, res.dropped_versions) == ((1,), 2, 25, (1,))
    assert sum(done) == 25
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert [line.split(":")[0] for line in key_file.read_text().splitlines()] == ["2"]

    new = load_vault(None, key_file)
    assert new.current == 2
    assert check_all_open(engine, new) == {2: 25}
    a = t.settlement_accounts
    with engine.connect() as conn:
        for mid, cipher, nonce, version in conn.execute(select(a.c.merchant_id, a.c.pan_cipher, a.c.pan_nonce,
                                                               a.c.key_version)):
            assert version == 2
            assert new.open(cipher, nonce, version) == before[mid]
            with pytest.raises(VaultError):
                vault.open(cipher, nonce, 1)  # the old key opens nothing any more
    again = rotate_keys(engine, key_file, keep_old=True)
    assert (again.new_version, again.reencrypted, again.dropped_versions) == (3, 25, ())
    both = load_vault(None, key_file)
    assert check_all_open(engine, both) == {3: 25}
    assert [line.split(":")[0] for line in key_file.read_text().splitlines()] == ["2", "3"]


def test_a_card_the_keys_cannot_open_stops_the_rotation_and_changes_nothing(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.cards import custody
    from settleguard.cards import key_repository as key_repo

    with engine.begin() as conn:
        make_merchants(conn, vault, 3)
    custody.check(engine, vault)  # the database records the key
    with engine.begin() as conn:
        make_merchants(conn, load_vault(None, tmp_path / "stranger.key"), 1)  # sealed behind custody's back
    key_file = tmp_path / "test.key"
    before = key_file.read_text()
    with pytest.raises(RotationError, match="settlement account"):
        rotate_keys(engine, key_file)
    with engine.connect() as conn:
        assert repo.key_versions(conn) == {1: 4}
        assert list(key_repo.recorded(conn)) == [1]
    assert key_file.read_text() == before  # nothing left behind: the old key file, no new version
    assert sorted(p.name for p in tmp_path.iterdir() if "test.key" in p.name) == ["test.key"]


def test_a_key_from_the_environment_cannot_be_rotated(engine: Engine, tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(RotationError, match="SETTLEGUARD_KEY"):
        rotate_keys(engine, tmp_path / "unused.key", env_key=key)
    assert not (tmp_path / "unused.key").exists()
