"""``settleguard keys rotate``: a new card-number key, and every stored card re-encrypted under it.

Steps: (1) the key file is checked against the database (cards.custody); (2) the new key file (the
old versions and the new one, or only the new one) is written to ``<key file>.tmp`` (mode 0600);
(3) in one database transaction every settlement account and webhook secret sealed under another
version is opened and sealed again under the new one (each UPDATE guarded by the old version), the
new version's fingerprint is recorded in ``card_keys`` and the old versions are marked retired;
(4) only after the commit, the temporary file is renamed over the key file. A failure before the
commit removes the temporary file and leaves the key file and the database as they were; a crash
between the commit and the rename leaves ``<key file>.tmp``, which the next command names.

Other processes keep the keys they loaded: stop payout runs while rotating.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from settleguard.cards import key_repository as key_repo
from settleguard.cards import repository as repo
from settleguard.cards.vault import (
    KeyFileMissing,
    Vault,
    VaultError,
    new_key_line,
    parse_key_lines,
    read_vault,
)

BATCH = 1000


def _resealed(vault: Vault, rows: Iterable[tuple[int, bytes, bytes, int]], what: str
              ) -> list[tuple[int, bytes, bytes, int, int]]:
    """``(id, cipher, nonce, version)`` rows opened and sealed again under the vault's current key:
    ``(id, cipher, nonce, new version, old version)``; one that does not open stops the rotation."""
    out = []
    for row_id, cipher, nonce, version in rows:
        try:
            clear = vault.open(cipher, nonce, version)
        except VaultError as exc:
            raise RotationError(f"{what} {row_id}: {exc}") from None
        s = vault.seal(clear)
        out.append((row_id, s.cipher, s.nonce, s.key_version, version))
    return out


class RotationError(RuntimeError):
    """The keys cannot be rotated (for example, the key comes from the environment)."""


@dataclass(frozen=True)
class RotationResult:
    old_versions: tuple[int, ...]
    new_version: int
    reencrypted: int
    dropped_versions: tuple[int, ...]


def _write_tmp(tmp: Path, lines: list[str]) -> None:
    tmp.unlink(missing_ok=True)  # left by a run that died before its commit (custody passed: not needed)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{line}\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())


def _lines(key_file: Path) -> list[str]:
    return [line.strip() for line in key_file.read_text().splitlines() if line.strip()]


def rotate_keys(engine: Engine, key_file: Path, *, env_key: str | None = None, keep_old: bool = False,
                progress: Callable[[int], None] | None = None,
                total: Callable[[int], None] | None = None, actor: str = "operator",
                now: datetime | None = None) -> RotationResult:
    """Add a key version, re-encrypt every card under it and record it in one transaction, then replace
    the key file; nothing is left behind when it fails."""
    from settleguard.cards.custody import KeyCustodyError, check

    if env_key:
        raise RotationError("密钥来自环境变量 SETTLEGUARD_KEY，无法轮换；请改用密钥文件 (SETTLEGUARD_KEY_FILE)。"
                            "The key comes from SETTLEGUARD_KEY and cannot be rotated; use a key file instead.")
    at = now or datetime.now(UTC)
    try:
        old = read_vault(None, key_file)
        check(engine, old, at)  # the key file must be this database's
    except KeyFileMissing:
        raise RotationError(f"密钥文件不存在，未轮换：{key_file}；轮换不会新建密钥（新数据库用 settleguard keys init）。"
                            f"Key file not found, nothing rotated: {key_file}; rotation never creates a key "
                            f"(a new database: settleguard keys init).") from None
    except (KeyCustodyError, VaultError) as exc:
        raise RotationError(str(exc)) from None
    lines = _lines(key_file)
    old_versions = tuple(sorted(old.fingerprints()))
    with engine.connect() as conn:
        recorded = key_repo.recorded(conn)
    new_version = max([*old_versions, *recorded]) + 1
    new_line = new_key_line(new_version)
    vault = parse_key_lines([*lines, new_line], str(key_file))
    if vault.current != new_version:
        raise RotationError(f"{key_file}: the new key version {new_version} is not the current one")
    tmp = key_file.with_name(key_file.name + ".tmp")
    _write_tmp(tmp, [*lines, new_line] if keep_old else [new_line])
    done = 0
    try:
        with engine.begin() as conn:
            key_repo.lock(conn)
            if new_version in key_repo.recorded(conn):
                raise RotationError(f"密钥版本 {new_version} 已被另一次轮换登记 key version {new_version} was recorded by "
                                    "another rotation meanwhile")
            if total:
                total(repo.count_sealed(conn, not_version=new_version))
            after_id = 0
            while True:
                rows = repo.sealed_pans(conn, not_version=new_version, after_id=after_id, limit=BATCH)
                if not rows:
                    break
                after_id = rows[-1][0]
                repo.reseal(conn, _resealed(vault, rows, "settlement account"))
                done += len(rows)
                if progress:
                    progress(len(rows))
            key_repo.reseal_secrets(conn, _resealed(vault, key_repo.sealed_secrets(conn, not_version=new_version),
                                                    "webhook secret of merchant"))
            key_repo.record(conn, {new_version: vault.fingerprints()[new_version]}, at)
            key_repo.retire(conn, [v for v in key_repo.recorded(conn) if v != new_version], at)

            from settleguard.audit import service as audit  # versions and counts only, never key material

            audit.record(conn, actor, "operator.keys_rotate", None, {
                "old_versions": list(old_versions), "new_version": new_version, "reencrypted": done,
                "keep_old": keep_old, "fingerprint": vault.fingerprints()[new_version]}, at)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, key_file)  # only now: the database holds the new version
    return RotationResult(old_versions, new_version, done, () if keep_old else old_versions)


def check_all_open(engine: Engine, vault: Vault) -> dict[int, int]:
    """Open every stored card with ``vault``; returns accounts per key version (raises VaultError)."""
    with engine.connect() as conn:
        after_id = 0
        while True:
            rows = repo.sealed_pans(conn, not_version=-1, after_id=after_id, limit=BATCH)
            if not rows:
                break
            after_id = rows[-1][0]
            for _id, cipher, nonce, version in rows:
                vault.open(cipher, nonce, version)
        return repo.key_versions(conn)
