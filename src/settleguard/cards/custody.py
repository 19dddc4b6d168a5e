"""The card key belongs to the database: a command's key is checked against the database before any card
is read or written.

``card_keys`` (migration 0008) records, per key version, the key's fingerprint (cards.vault.fingerprint:
an HMAC-SHA256 keyed with the key over a fixed label; never the key). :func:`open_vault` loads the key
(``SETTLEGUARD_KEY``, or the key file: ``SETTLEGUARD_KEY_FILE`` or, by default, beside the SQLite file)
and, on first use against a database:

- a database that recorded fingerprints: every version the vault holds must match, and every version
  still in use must be held; newer versions of a file that matches are recorded (a key file shared by
  databases and rotated with ``--keep-old``); otherwise :class:`KeyCustodyError`, nothing changed;
- an empty database (no ``card_keys`` row, nothing sealed): the vault's keys are recorded; a missing key
  file is created (mode 0600) — a fresh install, the demo;
- a database with sealed cards but no ``card_keys`` row (upgraded from before 0008): the key is adopted
  only if it opens a sample of the sealed values of every version, otherwise refused.

A missing key file is never created for a database that holds keys or cards: that is an error naming the
path. ``settleguard keys init`` (:func:`init_key`) creates a key explicitly for a database without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from settleguard.cards import key_repository as key_repo
from settleguard.cards.vault import (
    ENV_SOURCE,
    KeyComparison,
    KeyFileMissing,
    Vault,
    VaultError,
    compare_keys,
    new_key_line,
    parse_key_lines,
    read_vault,
    write_new_file,
)

SAMPLE = 16  # sealed values tried per key version before a key is adopted


class KeyCustodyError(VaultError):
    """The key does not belong to this database (or there is none); nothing was changed."""

    def __init__(self, zh: str, en: str, detail: str = "") -> None:
        super().__init__(f"{zh}\n{en}" + (f"\n{detail}" if detail else ""))
        self.zh, self.en, self.detail = zh, en, detail


def default_key_file(db_url: str) -> Path | None:
    """The key file beside an SQLite database file (``x/settleguard.db`` -> ``x/settleguard.key``);
    None for a server database or an in-memory one."""
    from settleguard.db.engine import normalise_url

    u = make_url(normalise_url(db_url))
    if u.drivername.startswith("sqlite") and u.database and u.database != ":memory:" \
            and not u.database.startswith("file:"):
        return Path(u.database).with_suffix(".key")
    return None


def resolve_key_file(db_url: str, key_file: Path | None) -> Path:
    """``key_file`` if configured, else the default beside the SQLite file; a server database needs one."""
    if key_file is not None:
        return key_file
    found = default_key_file(db_url)
    if found is None:
        raise KeyCustodyError(
            "未配置卡号密钥：该数据库不是 SQLite 文件，无法把密钥放在数据库旁",
            "no card key configured: the database is not an SQLite file, so the key cannot live beside it",
            "请设置 SETTLEGUARD_KEY_FILE（密钥文件路径）或 SETTLEGUARD_KEY（base64 密钥）。"
            "Set SETTLEGUARD_KEY_FILE (the key file's path) or SETTLEGUARD_KEY (the base64 key).")
    return found


def _fix(source: str) -> str:
    where = {ENV_SOURCE: "环境变量 SETTLEGUARD_KEY (environment)",
             "command": "密钥命令 SETTLEGUARD_KEY_COMMAND (key command)"}.get(source, source)
    return (f"查看的密钥 key looked at: {where}\n"
            f"解决办法：使用该数据库的密钥文件（默认在 SQLite 数据库文件旁，如 settleguard.db -> settleguard.key），"
            f"或用 SETTLEGUARD_KEY_FILE / SETTLEGUARD_KEY 指向它；不要新建密钥。未做任何更改。\n"
            f"How to fix: use this database's key file (by default beside the SQLite file, e.g. settleguard.db -> "
            f"settleguard.key), or point SETTLEGUARD_KEY_FILE / SETTLEGUARD_KEY at it; do not create a new key. "
            f"Nothing was changed.")


def _expected(rows: Mapping[int, key_repo.KeyRow]) -> str:
    return "\n".join(f"  数据库记录 recorded: 版本 version {v} 指纹 fingerprint {r.fingerprint}"
                     + (" (已停用 retired)" if r.retired_at else "") for v, r in sorted(rows.items()))


def _held(vault: Vault) -> str:
    return "\n".join(f"  密钥 key held: 版本 version {v} 指纹 fingerprint {fp}"
                     for v, fp in sorted(vault.fingerprints().items()))


def _mismatch(rows: Mapping[int, key_repo.KeyRow], vault: Vault, cmp: KeyComparison) -> KeyCustodyError:
    parts_zh, parts_en = [], []
    if cmp.mismatched:
        vs = ", ".join(map(str, cmp.mismatched))
        parts_zh.append(f"版本 {vs} 的指纹与数据库记录不符")
        parts_en.append(f"version(s) {vs} have another fingerprint than recorded")
    if cmp.missing:
        vs = ", ".join(map(str, cmp.missing))
        parts_zh.append(f"缺少数据库仍在使用的版本 {vs}")
        parts_en.append(f"version(s) {vs}, still in use by the database, are missing")
    if cmp.unknown:
        vs = ", ".join(map(str, cmp.unknown))
        parts_zh.append(f"版本 {vs} 未在数据库中登记")
        parts_en.append(f"version(s) {vs} were never recorded in the database")
    return KeyCustodyError(f"卡号密钥不属于该数据库：{'；'.join(parts_zh)}",
                           f"the card key does not belong to this database: {'; '.join(parts_en)}",
                           f"{_expected(rows)}\n{_held(vault)}\n{_fix(vault.source)}")


def _compare(rows: Mapping[int, key_repo.KeyRow], vault: Vault) -> KeyComparison:
    return compare_keys({v: (r.fingerprint, r.retired_at is not None) for v, r in rows.items()}, vault.fingerprints())


def _audit(conn: Connection, vault: Vault, versions: list[int], how: str, actor: str, now: datetime) -> None:
    from settleguard.audit import service as audit  # versions and fingerprints only, never key material

    fps = vault.fingerprints()
    audit.record(conn, actor, "card.keys_recorded", None, {
        "versions": versions, "fingerprints": {str(v): fps[v] for v in versions}, "how": how,
        "source": vault.source}, now)


def _settle_in(conn: Connection, vault: Vault, now: datetime) -> None:
    """Under the card_keys lock: compare, record newer versions, record an empty database's keys, or adopt."""
    rows = key_repo.recorded(conn)
    if rows:
        cmp = _compare(rows, vault)
        newer = bool(cmp.unknown) and min(cmp.unknown) > max(rows) and not cmp.mismatched and not cmp.missing \
            and any(v in rows for v in vault.fingerprints())
        if not cmp.matches and not newer:
            raise _mismatch(rows, vault, cmp)
        if cmp.unknown:  # a matching key file that gained newer versions (rotated elsewhere with --keep-old)
            fps = vault.fingerprints()
            key_repo.record(conn, {v: fps[v] for v in cmp.unknown}, now)
            _audit(conn, vault, list(cmp.unknown), "newer versions of a matching key file", "system", now)
        return
    sealed = key_repo.sealed_versions(conn)
    for version, n in sorted(sealed.items()):
        if version not in vault.fingerprints():
            raise KeyCustodyError(
                f"数据库中有 {n} 个值用密钥版本 {version} 加密，但数据库未登记密钥指纹，而所给密钥没有版本 {version}",
                f"the database holds {n} values sealed under key version {version} and no recorded fingerprint; "
                f"the key given has no version {version}", f"{_held(vault)}\n{_fix(vault.source)}")
        tried = key_repo.sample(conn, version, SAMPLE)
        bad = 0
        for cipher, nonce in tried:
            try:
                vault.open(cipher, nonce, version)
            except VaultError:
                bad += 1
        if bad:
            raise KeyCustodyError(
                f"所给密钥无法解密该数据库中的卡号（抽查版本 {version} 的 {len(tried)} 个值，{bad} 个无法解密），未登记该密钥",
                f"the key given does not open this database's cards ({bad} of {len(tried)} sampled values under "
                f"version {version} do not decrypt); the key was not recorded", f"{_held(vault)}\n{_fix(vault.source)}")
    key_repo.record(conn, vault.fingerprints(), now)
    _audit(conn, vault, sorted(vault.fingerprints()),
           "adopted: opens the sealed cards" if sealed else "empty database", "system", now)


def check(engine: Engine, vault: Vault, now: datetime | None = None) -> None:
    """Check ``vault`` against the database (see the module docstring); raises :class:`KeyCustodyError`."""
    with engine.connect() as conn:
        rows = key_repo.recorded(conn)
    if rows and _compare(rows, vault).matches:
        return
    with engine.begin() as conn:
        key_repo.lock(conn)
        _settle_in(conn, vault, now or datetime.now(UTC))


def _holds_keys(conn: Connection) -> tuple[dict[int, key_repo.KeyRow], dict[int, int]]:
    return key_repo.recorded(conn), key_repo.sealed_versions(conn)


def _create(engine: Engine, key_file: Path, now: datetime, *, explicit: bool) -> Vault | None:
    """Create ``key_file`` with a new key and record it, if the database has no key; None if it has."""
    line = new_key_line(1)
    vault = parse_key_lines([line], str(key_file))
    created = False
    try:
        with engine.begin() as conn:
            key_repo.lock(conn)
            rows, sealed = _holds_keys(conn)
            if rows or sealed:
                return None
            key_repo.record(conn, vault.fingerprints(), now)
            _audit(conn, vault, [1], "keys init" if explicit else "created for an empty database",
                   "operator" if explicit else "system", now)
            write_new_file(key_file, [line])  # before the commit: a crash here leaves a key, never a lost one
            created = True
    except BaseException as exc:
        if created:  # the database did not record it: nothing may be left behind
            key_file.unlink(missing_ok=True)
        if isinstance(exc, FileExistsError):
            raise KeyCustodyError(f"密钥文件已存在，未覆盖：{key_file}", f"key file exists, not overwritten: {key_file}") \
                from None
        if isinstance(exc, OSError):
            raise KeyCustodyError(f"无法创建密钥文件 {key_file}", f"cannot create the key file {key_file}",
                                  f"{type(exc).__name__}: {exc}") from None
        raise
    return vault


def _missing_file(engine: Engine, key_file: Path) -> KeyCustodyError:
    with engine.connect() as conn:
        rows, sealed = _holds_keys(conn)
    held = f"{_expected(rows)}\n" if rows else f"  数据库中已加密的值 sealed values: {sum(sealed.values())}\n"
    tmp = key_file.with_name(key_file.name + ".tmp")
    hint = (f"发现 {tmp}：上一次密钥轮换可能中断，核对其指纹后改名为 {key_file.name}。Found {tmp}: a key rotation may "
            f"have been interrupted; check its fingerprint and rename it to {key_file.name}.\n") if tmp.exists() else ""
    return KeyCustodyError(
        f"密钥文件不存在：{key_file}；该数据库已有卡号密钥，不会新建密钥",
        f"key file not found: {key_file}; this database already has a card key, so no new key is created",
        f"{held}{hint}{_fix(str(key_file))}")


def open_vault(engine: Engine, *, key: str | None, key_file: Path | None, now: datetime | None = None,
               command: str | None = None, command_timeout: float = 10.0) -> Vault:
    """The vault of ``key`` (SETTLEGUARD_KEY), else of ``command`` (SETTLEGUARD_KEY_COMMAND, cards/key_source.py),
    else of ``key_file``, checked against the database.

    A missing key file is created only when the database has no key and nothing sealed; a command's key never."""
    at = now or datetime.now(UTC)
    if command and not key:
        from settleguard.cards.key_source import KeyCommandError, KeySource, load

        try:
            vault = load(KeySource(command=command, timeout=command_timeout))
        except KeyCommandError as exc:
            raise KeyCustodyError(f"卡号密钥无法读取：{exc.zh}", f"the card key cannot be read: {exc.en}",
                                  f"{exc.detail}\n{_fix('command')}".strip()) from None
        except VaultError as exc:
            raise KeyCustodyError("卡号密钥无法读取", "the card key cannot be read",
                                  f"{exc}\n{_fix('command')}") from None
        check(engine, vault, at)
        return vault
    if not key and key_file is None:
        raise KeyCustodyError("未配置卡号密钥", "no card key configured",
                              "请设置 SETTLEGUARD_KEY_FILE 或 SETTLEGUARD_KEY。Set SETTLEGUARD_KEY_FILE or SETTLEGUARD_KEY.")
    try:
        vault = read_vault(key, key_file or Path())
    except KeyFileMissing as exc:
        created = _create(engine, exc.key_file, at, explicit=False)
        if created is not None:
            return created
        if not exc.key_file.exists():
            raise _missing_file(engine, exc.key_file) from None
        vault = read_vault(None, exc.key_file)  # another process created it for this database just now
    except VaultError as exc:
        raise KeyCustodyError("卡号密钥无法读取", "the card key cannot be read",
                              f"{exc}\n{_fix(ENV_SOURCE if key else str(key_file))}") from None
    check(engine, vault, at)
    return vault


def init_key(engine: Engine, key_file: Path, now: datetime | None = None) -> Vault:
    """``settleguard keys init``: create ``key_file`` and record its key; refuses if the file exists or the
    database already has a key (or sealed cards)."""
    if key_file.exists():
        raise KeyCustodyError(f"密钥文件已存在，未覆盖：{key_file}", f"key file exists, not overwritten: {key_file}",
                              "已有密钥时无需 init；轮换请用 settleguard keys rotate。No init needed when a key exists; "
                              "to replace it use settleguard keys rotate.")
    created = _create(engine, key_file, now or datetime.now(UTC), explicit=True)
    if created is None:
        with engine.connect() as conn:
            rows, sealed = _holds_keys(conn)
        raise KeyCustodyError(
            "该数据库已有卡号密钥（或已加密的卡号），不会新建密钥",
            "this database already has a card key (or sealed card numbers); no new key is created",
            (f"{_expected(rows)}\n" if rows else f"  已加密的值 sealed values: {sum(sealed.values())}\n")
            + _fix(str(key_file)))
    return created
