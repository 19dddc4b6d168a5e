"""``settleguard keys rotate``: a new card-number key, every stored card re-encrypted under it, in committed
batches, resumable after a crash at any point.

A rotation is a row of ``card_key_rotations`` (migration 0024) that moves through four phases; the next
``keys rotate`` (or ``keys rotate --resume``) after a crash reads it and finishes the same rotation:

1. ``new_key`` — the row is committed first (new version N = the highest known + 1). Then, under the
   ``card_keys`` lock, the key file is rewritten (atomically: a temporary file, fsync, rename) to hold the old
   versions AND version N, and in the same transaction N's fingerprint is recorded in ``card_keys`` and the row
   moves on. A crash after the file was written and before the commit leaves a key file with a newer version
   that every process accepts (cards/custody.py records newer versions of a matching file); the next run finds
   N in the file and uses it.
2. ``reencrypting`` — batches of :data:`BATCH` settlement cards, then webhook secrets, each opened and sealed
   again under N and committed with the row's count. Meanwhile the key file holds both versions, so every
   process that loads it opens every card, whichever version it is under.
3. the old versions are retired in one transaction, after re-encrypting under the same lock whatever another
   process sealed under an old version meanwhile; phase ``finishing`` (or ``done`` with ``--keep-old`` or an
   external store).
4. ``finishing`` — the key file is rewritten to hold only N; then ``done``.

Before a rotation starts, every sealed value is opened with the current key (a read-only pass): a value the
key cannot open refuses the rotation before anything changes.

A key from the environment or a key command (an external store settleguard cannot write) is rotated in two
runs: ``keys rotate --new-key-out FILE`` starts the rotation and writes FILE (0600: the old versions and the
new one, in the key file's format) for the operator to put in the store; once the store returns version N,
``keys rotate`` re-encrypts, retires and finishes. The operator then removes the retired versions from the store
(keeping them is harmless: a retired version may be held). Each step is in the audit trail (versions,
fingerprints and counts only). Other processes keep the keys they loaded: stop payout runs while rotating.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from settleguard.cards import key_repository as key_repo
from settleguard.cards import repository as repo
from settleguard.cards.key_source import FILE, KeySource, key_lines, vault_of
from settleguard.cards.vault import (
    KeyFileMissing,
    Vault,
    VaultError,
    new_key_line,
    parse_key_lines,
    same_fingerprint,
    write_new_file,
)

BATCH = 1000
Hook = Callable[[str], None]
# the points a rotation passes, in order, each given to ``hook`` (fault-injection tests crash there)
STEPS = ("started", "key_written", "new_key_recorded", "batch", "reencrypted", "retired", "key_file_rewritten",
         "done")


class RotationError(RuntimeError):
    """The keys cannot be rotated (for example, the key comes from the environment without --new-key-out)."""


class RotationPending(RotationError):
    """The new key must be put in the external store (the environment, the KMS behind the key command) first."""

    def __init__(self, message: str, *, rotation_id: int, new_version: int, fingerprint: str | None,
                 key_out: Path | None, written: bool) -> None:
        super().__init__(message)
        self.rotation_id, self.new_version, self.fingerprint = rotation_id, new_version, fingerprint
        self.key_out, self.written = key_out, written


@dataclass(frozen=True)
class RotationResult:
    old_versions: tuple[int, ...]
    new_version: int
    reencrypted: int  # sealed values re-encrypted by the whole rotation (every run)
    dropped_versions: tuple[int, ...]  # removed from the key file
    rotation_id: int = 0
    resumed: bool = False
    runs: int = 1
    remove_from_store: tuple[int, ...] = ()  # external store: retired versions the operator may now delete


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


def _version_of(line: str) -> int:
    return int(line.partition(":")[0])


_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_tmp(key_file: Path) -> None:
    """Remove the temporary files a killed rewrite of ``key_file`` left (they hold key material)."""
    with contextlib.suppress(OSError):
        for p in key_file.parent.iterdir():
            m = _TMP.match(p.name)
            if m and m["name"] == key_file.name and not _alive(int(m["pid"])):
                p.unlink(missing_ok=True)


def replace_key_file(key_file: Path, lines: list[str]) -> None:
    """Replace ``key_file`` with ``lines`` atomically (mode 0600): a temporary file, fsynced, renamed over it,
    the directory fsynced; the key file never exists half-written and is never missing."""
    tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, key_file)
        dfd = os.open(key_file.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        tmp.unlink(missing_ok=True)


def _audit(conn: Connection, actor: str, kind: str, rotation_id: int, payload: dict[str, Any], now: datetime) -> None:
    from settleguard.audit import (
        service as audit,  # versions, fingerprints and counts only, never key material
    )

    audit.record(conn, actor, kind, ("key_rotation", rotation_id), payload, now)


def _load(source: KeySource) -> tuple[list[str], Vault]:
    try:
        lines = key_lines(source)
        return lines, vault_of(source, lines)
    except KeyFileMissing:
        raise RotationError(f"密钥文件不存在，未轮换：{source.key_file}；轮换不会新建密钥（新数据库用 settleguard keys "
                            f"init）。Key file not found, nothing rotated: {source.key_file}; rotation never creates a "
                            f"key (a new database: settleguard keys init).") from None
    except VaultError as exc:
        raise RotationError(f"卡号密钥无法读取 the card key cannot be read: {source.describe()}\n{exc}") from None


def _check(engine: Engine, vault: Vault, at: datetime) -> None:
    from settleguard.cards.custody import KeyCustodyError, check

    try:
        check(engine, vault, at)  # the key must be this database's
    except (KeyCustodyError, VaultError) as exc:
        raise RotationError(str(exc)) from None


def external_procedure(source: KeySource) -> str:
    """What to do to rotate a key settleguard cannot write (zh, then en)."""
    return (f"密钥来自 {source.describe()}，settleguard 无法改写该密钥存储。请按以下步骤轮换：\n"
            "  1. settleguard keys rotate --new-key-out 新密钥文件路径（写出旧版本加新版本的密钥文件，0600）；\n"
            "  2. 把该文件的内容放入密钥存储（KMS；环境变量 SETTLEGUARD_KEY 可用空格或换行分隔多行），使其返回新版本；\n"
            "  3. 再次运行 settleguard keys rotate：重新加密每张卡、停用旧版本；之后可从存储中删除旧版本，并销毁该文件。\n"
            f"The key comes from {source.describe()}; settleguard cannot rewrite that store. To rotate:\n"
            "  1. settleguard keys rotate --new-key-out NEW_KEY_FILE (writes the old versions and the new one, 0600);\n"
            "  2. put that file's content in the store (the KMS; SETTLEGUARD_KEY takes the lines separated by spaces "
            "or newlines) so that it returns the new version;\n"
            "  3. run settleguard keys rotate again: every card is re-encrypted and the old versions retired; then "
            "remove the old versions from the store and destroy the file.")


def _preflight(engine: Engine, vault: Vault, batch: int) -> None:
    """Open every sealed value with ``vault`` (read-only); RotationError naming the first that does not open."""
    with engine.connect() as conn:
        after = 0
        while rows := repo.sealed_pans(conn, not_version=-1, after_id=after, limit=batch):
            after = rows[-1][0]
            _opened(vault, rows, "settlement account")
        after = 0
        while rows := key_repo.secrets_page(conn, not_version=-1, after_merchant=after, limit=batch):
            after = rows[-1][0]
            _opened(vault, rows, "webhook secret of merchant")


def _opened(vault: Vault, rows: Iterable[tuple[int, bytes, bytes, int]], what: str) -> None:
    for row_id, cipher, nonce, version in rows:
        try:
            vault.open(cipher, nonce, version)
        except VaultError as exc:
            raise RotationError(f"{what} {row_id}: {exc}; 未开始轮换 no rotation started") from None


def _start(engine: Engine, vault: Vault, keep_old: bool, store: str, actor: str, at: datetime) -> key_repo.RotationRow:
    with engine.begin() as conn:
        key_repo.lock(conn)
        if key_repo.unfinished_rotation(conn) is not None:
            raise RotationError("另一次密钥轮换刚刚开始；再次运行 settleguard keys rotate 以完成它。Another key rotation "
                                "started meanwhile; run settleguard keys rotate again to finish it.")
        held = sorted(vault.fingerprints())
        new_version = max([*held, *key_repo.recorded(conn)]) + 1
        total = key_repo.count_not_under(conn, new_version)
        rid = key_repo.start_rotation(conn, new_version=new_version, old_versions=held, keep_old=keep_old,
                                      store=store, total=total, actor=actor, now=at)
        _audit(conn, actor, "card.key_rotation_started", rid, {
            "old_versions": held, "new_version": new_version, "keep_old": keep_old, "store": store,
            "to_reencrypt": total}, at)
        return key_repo.rotation(conn, rid)


def _record_new(conn: Connection, rot: key_repo.RotationRow, vault: Vault, actor: str, at: datetime) -> None:
    """Record version N (held by ``vault``) in card_keys and move the rotation to re-encrypting."""
    n = rot.new_version
    fp = vault.fingerprints()[n]
    rows = key_repo.recorded(conn)
    if n in rows and not same_fingerprint(rows[n].fingerprint, fp):
        raise RotationError(f"密钥版本 {n} 在数据库中登记的指纹与密钥不符 key version {n} is recorded with another "
                            f"fingerprint ({rows[n].fingerprint}) than the key's ({fp})")
    if n not in rows:
        key_repo.record(conn, {n: fp}, at)
    key_repo.update_rotation(conn, rot.id, at, phase="reencrypting", fingerprint=fp,
                             total=key_repo.count_not_under(conn, n))
    _audit(conn, actor, "card.key_rotation_new_key", rot.id, {"new_version": n, "fingerprint": fp}, at)


def _new_key_file(engine: Engine, rot: key_repo.RotationRow, source: KeySource, actor: str, at: datetime,
                  step: Hook) -> tuple[list[str], Vault]:
    """The key file gains version N (old versions kept) and N is recorded; under the card_keys lock."""
    key_file = source.key_file
    assert key_file is not None
    with engine.begin() as conn:
        key_repo.lock(conn)
        cur = key_repo.rotation(conn, rot.id)
        lines, vault = _load(source)  # re-read under the lock: another run may have written it
        if cur.phase != "new_key":
            return lines, vault
        if rot.new_version not in vault.fingerprints():
            if cur.fingerprint is not None:
                raise RotationError(
                    f"轮换 #{rot.id} 的新密钥版本 {rot.new_version}（指纹 {cur.fingerprint}）已写出，但密钥文件 {key_file} "
                    f"中没有它；请把含该版本的密钥放回。The new key version {rot.new_version} of rotation #{rot.id} "
                    f"(fingerprint {cur.fingerprint}) was written out, but the key file {key_file} does not hold "
                    f"it; put the key holding it back.")
            lines = [*lines, new_key_line(rot.new_version)]
            vault = parse_key_lines(lines, str(key_file))
            if vault.current != rot.new_version:
                raise RotationError(f"{key_file}: the new key version {rot.new_version} is not the current one")
            replace_key_file(key_file, lines)
            step("key_written")
        _record_new(conn, cur, vault, actor, at)
    return lines, vault


def _new_key_external(engine: Engine, rot: key_repo.RotationRow, source: KeySource, lines: list[str],
                      key_out: Path | None, actor: str, at: datetime, step: Hook) -> None:
    """Write the new key file for the operator to put in the store; always raises :class:`RotationPending`."""
    n = rot.new_version

    def pending(written: bool, fp: str | None, zh: str, en: str) -> RotationPending:
        return RotationPending(f"{zh}\n{en}", rotation_id=rot.id, new_version=n, fingerprint=fp, key_out=key_out,
                               written=written)

    put = (f"把 {key_out} 的内容放入密钥存储（{source.describe()}），使其返回版本 {n}，然后再次运行 settleguard keys "
           "rotate；完成后销毁该文件。", f"Put the content of {key_out} in the key store ({source.describe()}) so "
           f"that it returns version {n}, then run settleguard keys rotate again; destroy the file afterwards.")
    if key_out is None:
        fp = f"（指纹 fingerprint {rot.fingerprint}）" if rot.fingerprint else ""
        raise pending(False, rot.fingerprint,
                      f"等待密钥存储返回新版本 {n}{fp}：轮换 #{rot.id} 尚未完成。请把 --new-key-out 写出的文件内容放入密钥存储后"
                      "再运行；若该文件已丢失，用 --new-key-out 新路径 重新写出。",
                      f"waiting for the key store to return the new version {n}: rotation #{rot.id} is not finished. "
                      "Put the content of the file --new-key-out wrote in the store and run again; if that file is "
                      "lost, write it again with --new-key-out NEW_PATH.")
    if key_out.exists():
        try:
            out = parse_key_lines([x for x in key_out.read_text().splitlines() if x.strip()], str(key_out))
        except (OSError, VaultError) as exc:
            raise RotationError(f"{key_out} 已存在且不是本次轮换的新密钥文件，未覆盖 exists and is not this rotation's new "
                                f"key file; not overwritten: {exc}") from None
        found = out.fingerprints().get(n)
        if found is None or (rot.fingerprint is not None and not same_fingerprint(found, rot.fingerprint)):
            raise RotationError(f"{key_out} 已存在且不是轮换 #{rot.id} 的新密钥文件，未覆盖。{key_out} exists and is not "
                                f"the new key file of rotation #{rot.id}; not overwritten.")
        if rot.fingerprint is None:  # written by a run that died before it recorded the fingerprint
            with engine.begin() as conn:
                key_repo.update_rotation(conn, rot.id, at, fingerprint=found)
        raise pending(False, found, f"新密钥文件已写出（版本 {n}，指纹 {found}）。{put[0]}", f"The new key file is "
                      f"written (version {n}, fingerprint {found}). {put[1]}")
    with engine.begin() as conn:
        key_repo.lock(conn)
        cur = key_repo.rotation(conn, rot.id)
        if cur.phase != "new_key":
            raise RotationError("另一次运行已推进该轮换；请再次运行。Another run moved this rotation on; run again.")
        new_lines = [*lines, new_key_line(n)]
        vault = parse_key_lines(new_lines, str(key_out))
        fp = vault.fingerprints()[n]
        try:
            write_new_file(key_out, new_lines)
        except OSError as exc:
            raise RotationError(f"无法写出新密钥文件 cannot write the new key file {key_out}: "
                                f"{type(exc).__name__}: {exc.strerror or exc}") from None
        step("key_written")
        key_repo.update_rotation(conn, rot.id, at, fingerprint=fp)
        _audit(conn, actor, "card.key_rotation_key_out", rot.id, {"new_version": n, "fingerprint": fp}, at)
    raise pending(True, fp, f"已写出新密钥文件 {key_out}（0600，版本 {n}，指纹 {fp}）。{put[0]}",
                  f"New key file written: {key_out} (0600, version {n}, fingerprint {fp}). {put[1]}")


def _reseal_batch(conn: Connection, vault: Vault, n: int, batch: int, after_card: int, after_merchant: int
                  ) -> tuple[int, int, int]:
    """One batch: cards first, then webhook secrets; (count, next card cursor, next merchant cursor)."""
    rows = repo.sealed_pans(conn, not_version=n, after_id=after_card, limit=batch)
    if rows:
        repo.reseal(conn, _resealed(vault, rows, "settlement account"))
        return len(rows), rows[-1][0], after_merchant
    sec = key_repo.secrets_page(conn, not_version=n, after_merchant=after_merchant, limit=batch)
    if sec:
        key_repo.reseal_secrets(conn, _resealed(vault, sec, "webhook secret of merchant"))
        return len(sec), after_card, sec[-1][0]
    return 0, after_card, after_merchant


def _reencrypt(engine: Engine, rot: key_repo.RotationRow, vault: Vault, batch: int, at: datetime,
               progress: Callable[[int], None] | None, total: Callable[[int], None] | None, step: Hook) -> None:
    n = rot.new_version
    if total:
        with engine.connect() as conn:
            total(key_repo.count_not_under(conn, n))
    after_card = after_merchant = 0
    while True:
        with engine.begin() as conn:
            key_repo.lock(conn)
            done, after_card, after_merchant = _reseal_batch(conn, vault, n, batch, after_card, after_merchant)
            if done:
                key_repo.update_rotation(conn, rot.id, at, add_done=done)
        if not done:
            return
        if progress:
            progress(done)
        step("batch")


def _retire(engine: Engine, rot: key_repo.RotationRow, vault: Vault, source: KeySource, batch: int, actor: str,
            at: datetime) -> str:
    """Re-encrypt what was sealed under an old version meanwhile, retire the old versions; the next phase."""
    n = rot.new_version
    with engine.begin() as conn:
        key_repo.lock(conn)
        late = 0
        after_card = after_merchant = 0
        while True:
            done, after_card, after_merchant = _reseal_batch(conn, vault, n, batch, after_card, after_merchant)
            if not done:
                break
            late += done
        rows = key_repo.recorded(conn)
        retired = sorted(v for v, r in rows.items() if v != n and r.retired_at is None)
        key_repo.retire(conn, retired, at)
        phase = "finishing" if source.kind == FILE and not rot.keep_old else "done"
        key_repo.update_rotation(conn, rot.id, at, add_done=late, phase=phase,
                                 finished_at=at if phase == "done" else None)
        cur = key_repo.rotation(conn, rot.id)
        _audit(conn, actor, "card.key_rotation_retired", rot.id, {
            "new_version": n, "retired_versions": retired, "reencrypted": cur.done, "late": late}, at)
        if phase == "done":
            _audit_done(conn, cur, (), actor, at)
    return phase


def _audit_done(conn: Connection, rot: key_repo.RotationRow, dropped: tuple[int, ...], actor: str,
                at: datetime) -> None:
    from settleguard.audit import service as audit  # versions and counts only, never key material

    audit.record(conn, actor, "operator.keys_rotate", None, {
        "rotation": rot.id, "old_versions": list(rot.old_versions), "new_version": rot.new_version,
        "reencrypted": rot.done, "keep_old": rot.keep_old, "fingerprint": rot.fingerprint,
        "dropped_versions": list(dropped), "runs": rot.runs, "store": rot.store}, at)


def _finish_file(engine: Engine, rot: key_repo.RotationRow, source: KeySource, actor: str, at: datetime,
                 step: Hook) -> tuple[int, ...]:
    """The key file keeps only version N; then the rotation is done. Returns the versions dropped."""
    key_file = source.key_file
    assert key_file is not None
    lines, vault = _load(source)
    if rot.new_version not in vault.fingerprints():
        raise RotationError(f"{key_file} 中没有新版本 {rot.new_version}，未改写 does not hold the new version "
                            f"{rot.new_version}; not rewritten")
    keep = [line for line in lines if _version_of(line) == rot.new_version]
    dropped = tuple(sorted(v for v in vault.fingerprints() if v != rot.new_version))
    if keep != lines:
        replace_key_file(key_file, keep)
    step("key_file_rewritten")
    with engine.begin() as conn:
        key_repo.lock(conn)
        key_repo.update_rotation(conn, rot.id, at, phase="done", finished_at=at)
        cur = key_repo.rotation(conn, rot.id)
        _audit_done(conn, cur, dropped or rot.old_versions, actor, at)
    return dropped or rot.old_versions


def rotate_keys(engine: Engine, key_file: Path | None, *, env_key: str | None = None, keep_old: bool = False,
                progress: Callable[[int], None] | None = None,
                total: Callable[[int], None] | None = None, actor: str = "operator",
                now: datetime | None = None, source: KeySource | None = None, new_key_out: Path | None = None,
                resume_only: bool = False, hook: Hook | None = None, batch: int = BATCH) -> RotationResult:
    """Start a rotation (or finish the unfinished one) and run it to the end; see the module docstring.

    ``source`` (default: ``env_key`` or ``key_file``) is where the key comes from; ``new_key_out`` is where
    the new key file goes when that is an external store (:class:`RotationPending` until the store returns the
    new version). ``resume_only`` refuses to start a new rotation. ``hook`` is called at each of :data:`STEPS`.
    """
    src = source or KeySource(env_key=env_key, key_file=key_file)
    at = now or datetime.now(UTC)
    step = hook or (lambda _name: None)
    if src.kind == FILE and src.key_file is not None:
        _sweep_tmp(src.key_file)
    lines, vault = _load(src)
    with engine.connect() as conn:
        rot = key_repo.unfinished_rotation(conn)
        rows = key_repo.recorded(conn)
    resumed = rot is not None
    if rot is None:
        if resume_only:
            raise RotationError("没有未完成的密钥轮换，未做任何更改 no key rotation in progress; nothing changed")
        if src.external and new_key_out is None:
            raise RotationError(external_procedure(src))
        _check(engine, vault, at)
        _preflight(engine, vault, batch)
        rot = _start(engine, vault, keep_old, src.kind, actor, at)
        step("started")
    else:
        held = vault.fingerprints().get(rot.new_version)
        if rot.phase == "new_key" and held and rot.fingerprint and rot.new_version not in rows \
                and not same_fingerprint(held, rot.fingerprint):
            raise RotationError(
                f"密钥存储返回的版本 {rot.new_version} 指纹为 {held}，而轮换 #{rot.id} 写出的新密钥指纹为 {rot.fingerprint}："
                f"请放入 --new-key-out 写出的文件内容。未做任何更改。The key store returns version {rot.new_version} "
                f"with fingerprint {held}, but rotation #{rot.id} wrote a new key with fingerprint {rot.fingerprint}: "
                "put the content of the file --new-key-out wrote in the store. Nothing was changed.")
        _check(engine, vault, at)
        with engine.begin() as conn:
            key_repo.update_rotation(conn, rot.id, at, add_runs=1)
            _audit(conn, actor, "card.key_rotation_resumed", rot.id, {
                "phase": rot.phase, "new_version": rot.new_version, "reencrypted": rot.done}, at)
    if rot.phase == "new_key":
        if rot.new_version in vault.fingerprints():
            with engine.begin() as conn:
                key_repo.lock(conn)
                if key_repo.rotation(conn, rot.id).phase == "new_key":
                    _record_new(conn, rot, vault, actor, at)
        elif src.kind == FILE:
            lines, vault = _new_key_file(engine, rot, src, actor, at, step)
        else:
            _new_key_external(engine, rot, src, lines, new_key_out, actor, at, step)
        step("new_key_recorded")
    with engine.connect() as conn:
        rot = key_repo.rotation(conn, rot.id)
    if rot.phase == "reencrypting":
        if vault.current != rot.new_version:
            raise RotationError(f"{src.describe()}: 新版本 {rot.new_version} 不是当前版本（当前 {vault.current}）：新版本须是最后"
                                f"一行 the new version {rot.new_version} is not the current one ({vault.current}): it "
                                "must be the last line")
        _reencrypt(engine, rot, vault, batch, at, progress, total, step)
        step("reencrypted")
        _retire(engine, rot, vault, src, batch, actor, at)
        step("retired")
        with engine.connect() as conn:
            rot = key_repo.rotation(conn, rot.id)
    dropped: tuple[int, ...] = ()
    if rot.phase == "finishing":
        if src.kind == FILE:
            dropped = _finish_file(engine, rot, src, actor, at, step)
        else:  # started from the key file, resumed from an external store: the operator trims the store
            with engine.begin() as conn:
                key_repo.update_rotation(conn, rot.id, at, phase="done", finished_at=at)
                _audit_done(conn, key_repo.rotation(conn, rot.id), (), actor, at)
    step("done")
    with engine.connect() as conn:
        rot = key_repo.rotation(conn, rot.id)
    remove = () if src.kind == FILE or rot.keep_old else tuple(
        v for v in sorted(vault.fingerprints()) if v != rot.new_version)
    return RotationResult(rot.old_versions, rot.new_version, rot.done, dropped, rot.id, resumed, rot.runs, remove)


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
