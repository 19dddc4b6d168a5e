"""``settleguard keys rotate``: a new card-number key, and every stored card re-encrypted under it.

Steps: (1) a new key version is appended to the key file (``<version>:<base64>`` lines, mode
0600, written to a temporary file and renamed into place), so the old keys stay readable;
(2) in one database transaction every settlement account sealed under another version is
opened and sealed again under the new one (the UPDATE is guarded by the old version); (3) only
after the commit, the older keys are dropped from the file unless ``keep_old`` is set. A crash
before (3) leaves a file with both keys, which still opens every card; a crash before the
commit leaves every card under the old key and a new, unused key version.

Other processes keep the keys they loaded: stop payout runs while rotating.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from settleguard.cards import repository as repo
from settleguard.cards.vault import Vault, VaultError, load_vault

BATCH = 1000


class RotationError(RuntimeError):
    """The keys cannot be rotated (for example, the key comes from the environment)."""


@dataclass(frozen=True)
class RotationResult:
    old_versions: tuple[int, ...]
    new_version: int
    reencrypted: int
    dropped_versions: tuple[int, ...]


def _write_key_file(key_file: Path, lines: list[str]) -> None:
    tmp = key_file.with_name(key_file.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{line}\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, key_file)


def _lines(key_file: Path) -> list[str]:
    return [line.strip() for line in key_file.read_text().splitlines() if line.strip()]


def rotate_keys(engine: Engine, key_file: Path, *, env_key: str | None = None, keep_old: bool = False,
                progress: Callable[[int], None] | None = None,
                total: Callable[[int], None] | None = None, actor: str = "operator",
                now: datetime | None = None) -> RotationResult:
    """Add a key version, re-encrypt every card under it in one transaction, then retire the old keys."""
    if env_key:
        raise RotationError("密钥来自环境变量 SETTLEGUARD_KEY，无法轮换；请改用密钥文件 (SETTLEGUARD_KEY_FILE)。"
                            "The key comes from SETTLEGUARD_KEY and cannot be rotated; use a key file instead.")
    load_vault(None, key_file)  # checks the file (and creates it on a first run)
    lines = _lines(key_file)
    old_versions = tuple(int(line.partition(":")[0]) for line in lines)
    new_version = max(old_versions) + 1
    material = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    _write_key_file(key_file, [*lines, f"{new_version}:{material}"])
    vault = load_vault(None, key_file)
    if vault.current != new_version:
        raise RotationError(f"{key_file}: the new key version {new_version} is not the current one")
    done = 0
    with engine.begin() as conn:
        if total:
            total(repo.count_sealed(conn, not_version=new_version))
        after_id = 0
        while True:
            rows = repo.sealed_pans(conn, not_version=new_version, after_id=after_id, limit=BATCH)
            if not rows:
                break
            after_id = rows[-1][0]
            resealed = []
            for account_id, cipher, nonce, version in rows:
                try:
                    pan = vault.open(cipher, nonce, version)
                except VaultError as exc:
                    raise RotationError(f"settlement account {account_id}: {exc}") from None
                s = vault.seal(pan)
                resealed.append((account_id, s.cipher, s.nonce, s.key_version, version))
            repo.reseal(conn, resealed)
            done += len(rows)
            if progress:
                progress(len(rows))
        from datetime import UTC

        from settleguard.audit import service as audit  # versions and counts only, never key material

        audit.record(conn, actor, "operator.keys_rotate", None, {
            "old_versions": list(old_versions), "new_version": new_version, "reencrypted": done,
            "keep_old": keep_old}, now or datetime.now(UTC))
    dropped: tuple[int, ...] = ()
    if not keep_old:
        _write_key_file(key_file, [line for line in _lines(key_file) if line.startswith(f"{new_version}:")])
        dropped = old_versions
    return RotationResult(old_versions, new_version, done, dropped)


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
