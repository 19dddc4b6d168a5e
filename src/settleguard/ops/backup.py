"""Backups that restore (备份与恢复): create, verify and restore one archive; the worker's daily backup.

``create_backup`` takes a consistent snapshot while the worker and server keep writing:

- SQLite: the online backup API (``sqlite3.Connection.backup``: one step under a WAL read transaction) into
  a temporary file, switched to journal mode DELETE so that the file stands alone;
- PostgreSQL: a REPEATABLE READ, READ ONLY transaction exports its snapshot (``pg_export_snapshot``) and
  ``pg_dump -Fc --snapshot`` dumps the current schema from exactly that snapshot, while the manifest's counts,
  totals and audit head are read in the same transaction: the numbers and the dump agree.

The archive (layout in ops/backup_manifest.py) is written under a temporary name, fsynced and renamed; the
card key is never read and never inside it (the manifest names its fingerprints only).

``verify_backup`` and ``restore_backup`` first check the archive byte for byte (the tar is rebuilt from its
members and must hash to the file's bytes, the manifest must match ``manifest.sha256``, the dump its SHA-256),
then restore (a scratch database for verify: an SQLite temporary file, or a PostgreSQL database created on
the server and dropped after) and run the same checks: SQLite ``PRAGMA integrity_check``, row counts, ledger
totals, audit head and key fingerprints against the manifest, ``ledger check`` and ``audit verify``.

PostgreSQL tools get the password through ``PGPASSWORD`` in a minimal environment, never on the command line.
"""

from __future__ import annotations

import glob
import hashlib
import io
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from settleguard import __version__
from settleguard.audit import model as audit_model
from settleguard.audit import repository as audit_repo
from settleguard.audit import service as audit_service
from settleguard.cards import key_repository as key_repo
from settleguard.db.engine import create, current_revision, head_revision, normalise_url, upgrade
from settleguard.hashing import sha256_file
from settleguard.ledger import repository as ledger_repo
from settleguard.masking import bounded
from settleguard.ops import backup_manifest as bm

CHUNK = 1 << 20
LOG = logging.getLogger(__name__)
NAME_RE = re.compile(r"^settleguard-backup-(\d{8})-(\d{8}T\d{6}Z)\.tar$")
SIDECAR = ".manifest.json"  # beside each archive: a copy of its manifest
TOOL_TIMEOUT = 6 * 3600  # seconds a pg_dump / pg_restore may run


class BackupRefused(RuntimeError):
    """Nothing was done: the request cannot be carried out as asked (exit 2)."""

    def __init__(self, zh: str, en: str, detail: str = "") -> None:
        super().__init__(f"{zh}\n{en}" + (f"\n{detail}" if detail else ""))
        self.zh, self.en, self.detail = zh, en, detail


class BackupFailed(RuntimeError):
    """Taking the backup failed (a tool failed, the disk is full); no archive was left behind."""

    def __init__(self, zh: str, en: str, detail: str = "") -> None:
        super().__init__(f"{zh}\n{en}" + (f"\n{detail}" if detail else ""))
        self.zh, self.en, self.detail = zh, en, detail


@dataclass(frozen=True)
class BackupPolicy:
    """The worker's daily backup: where archives go and how many are kept (Settings backup_dir, backup_keep)."""

    directory: Path
    keep: int = 7


@dataclass(frozen=True)
class Created:
    path: Path
    manifest: bm.Manifest
    archive_sha256: str


@dataclass
class Report:
    """The checks of a verify or restore, in order; ``ok`` when every one passed."""

    path: Path
    manifest: bm.Manifest | None = None
    checks: list[bm.Check] = field(default_factory=list)
    target: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, c: bm.Check) -> bool:
        self.checks.append(c)
        return c.ok


@dataclass(frozen=True)
class DailySummary:
    """The worker's backup step: the archive made, the old ones deleted, the day skipped (it had one), or why
    the backup failed (logged; the cycle carries on and ``doctor`` sees the backup age)."""

    created: Path | None = None
    deleted: tuple[Path, ...] = ()
    skipped: str = ""
    failed: str = ""


def archive_name(business_day: date, now: datetime) -> str:
    return f"settleguard-backup-{business_day:%Y%m%d}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.tar"


# --- reading a database: what the manifest records -------------------------------------------------


def _tables(conn: Connection) -> list[str]:
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    return [str(n) for (n,) in conn.exec_driver_sql(sql)]


def observe(conn: Connection) -> bm.Observed:
    """Row counts of every table, ledger totals, audit head, key fingerprints, schema revision."""
    from alembic.runtime.migration import MigrationContext

    quote = conn.dialect.identifier_preparer.quote
    names = _tables(conn)
    counts = {n: int(conn.exec_driver_sql(f"SELECT count(*) FROM {quote(n)}").scalar_one()) for n in names}
    head = audit_repo.last(conn) if "audit_events" in counts else None
    keys = key_repo.recorded(conn) if "card_keys" in counts else {}
    return bm.Observed(
        row_counts=counts,
        ledger_totals=ledger_repo.totals(conn) if "ledger_postings" in counts else {},
        audit_head_id=head.id if head else 0, audit_head_hash=head.hash if head else audit_model.GENESIS,
        card_keys=tuple(bm.KeyFingerprint(v, r.fingerprint, r.retired_at is not None) for v, r in sorted(keys.items())),
        schema_revision=MigrationContext.configure(conn).get_current_revision())


def _current_key(keys: tuple[bm.KeyFingerprint, ...]) -> str | None:
    live = [k for k in keys if not k.retired]
    return max(live, key=lambda k: k.version).fingerprint if live else None


# --- files --------------------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    return sha256_file(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.type = size, mtime, 0o600, tarfile.REGTYPE
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _write_archive(out_dir: Path, name: str, manifest: bm.Manifest, dump: Path, mtime: int) -> tuple[Path, str]:
    """The archive written under a temporary name, fsynced, renamed into place; (path, its SHA-256)."""
    final = out_dir / name
    tmp = out_dir / f".{name}.{secrets.token_hex(4)}.partial"
    mbytes = manifest.to_bytes()
    dline = bm.digest_line(mbytes)
    try:
        # 0600: the archive holds the whole database (card numbers encrypted, everything else in clear)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
                tf.addfile(_member(bm.MANIFEST_NAME, len(mbytes), mtime), io.BytesIO(mbytes))
                tf.addfile(_member(bm.DIGEST_NAME, len(dline), mtime), io.BytesIO(dline))
                with dump.open("rb") as f:
                    tf.addfile(_member(manifest.dump_name, dump.stat().st_size, mtime), f)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, final)
        _fsync_dir(out_dir)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    sidecar = out_dir / f"{name}{SIDECAR}"  # a copy for people and `doctor` (last backup age); verify uses the inner one
    tmp_side = out_dir / f".{sidecar.name}.{secrets.token_hex(4)}.partial"
    with os.fdopen(os.open(tmp_side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(mbytes)
    os.replace(tmp_side, sidecar)
    return final, _sha256_file(final)


class _HashSink:
    """A write-only file that only hashes what is written (the tar rebuilt in verify)."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b: bytes) -> int:
        self.h.update(b)
        self.n += len(b)
        return len(b)

    def tell(self) -> int:
        return self.n

    def flush(self) -> None:
        return None


class _Tee:
    """Read from ``src``, hashing and copying to ``out`` what is read."""

    def __init__(self, src: IO[bytes], out: IO[bytes]) -> None:
        self.src, self.out, self.h = src, out, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        b = self.src.read(n)
        self.h.update(b)
        self.out.write(b)
        return b


def _shown(texts: list[str]) -> str:
    """Names and messages from a hostile archive, as they may be echoed: masked, bounded, at most five."""
    return ", ".join(bounded(t, 80) for t in texts[:5])


@dataclass
class Opened:
    manifest: bm.Manifest
    dump: Path


def open_archive(path: Path, work: Path, report: Report) -> Opened | None:
    """Check the archive byte for byte and extract its dump into ``work``; None (with the failed check in
    ``report``) when it is damaged. BackupRefused when there is no such file."""
    if not path.is_file():
        raise BackupRefused(f"找不到备份文件 {path}", f"no backup file at {path}")
    try:
        with tarfile.open(path, mode="r:") as tf:
            members: list[tarfile.TarInfo] = []
            while len(members) <= 3 and (member := tf.next()) is not None:  # a hostile tar may hold millions
                members.append(member)
            names = [m.name for m in members]
            if len(members) != 3 or names[:2] != [bm.MANIFEST_NAME, bm.DIGEST_NAME] \
                    or names[2] not in bm.DUMP_NAMES.values() or not all(m.isreg() for m in members) \
                    or members[0].size > bm.MAX_MANIFEST_BYTES or members[1].size > 200:
                report.add(bm.check("archive", False, f"成员 members {_shown(names)}；应为 expected "
                                                      f"{bm.MANIFEST_NAME}, {bm.DIGEST_NAME}, dump.sqlite|dump.pgc"))
                return None
            mfile, dfile, dumpf = (tf.extractfile(m) for m in members)
            if mfile is None or dfile is None or dumpf is None:  # not regular files (checked above)
                return None
            mbytes, dline = mfile.read(), dfile.read()
            dump_path = work / names[2]
            sink = _HashSink()
            with dump_path.open("wb") as out, tarfile.open(fileobj=cast(IO[bytes], sink), mode="w",
                                                            format=tarfile.PAX_FORMAT) as rebuilt:
                rebuilt.addfile(_member(bm.MANIFEST_NAME, len(mbytes), int(members[0].mtime)), io.BytesIO(mbytes))
                rebuilt.addfile(_member(bm.DIGEST_NAME, len(dline), int(members[1].mtime)), io.BytesIO(dline))
                tee = _Tee(dumpf, out)
                rebuilt.addfile(_member(names[2], members[2].size, int(members[2].mtime)), cast(IO[bytes], tee))
    except (tarfile.TarError, OSError, EOFError) as exc:
        report.add(bm.check("archive", False, f"无法读取 cannot read: {_shown([str(exc)])}"))
        return None
    if sink.h.hexdigest() != _sha256_file(path) or sink.n != path.stat().st_size:
        report.add(bm.check("archive", False, "文件与其成员重建的结果不一致（有字节被改动）"
                                              " the file differs from the archive rebuilt from its members "
                                              "(bytes were changed)"))
        return None
    report.add(bm.check("archive", True))
    if bm.digest_line(mbytes) != dline:
        report.add(bm.check("manifest", False, "manifest.json 与 manifest.sha256 不符 manifest.json does not match "
                                               "manifest.sha256"))
        return None
    try:
        manifest = bm.parse(mbytes)
    except bm.ManifestError as exc:
        report.add(bm.check("manifest", False, f"{exc.zh} {exc.en}"))
        return None
    report.manifest = manifest
    report.add(bm.check("manifest", True))
    got = tee.h.hexdigest()
    ok = got == manifest.dump_sha256 and members[2].size == manifest.dump_bytes and names[2] == manifest.dump_name
    report.add(bm.check("dump_sha256", ok, "" if ok else f"清单 manifest {manifest.dump_sha256} / 实际 actual {got}"))
    return Opened(manifest, dump_path) if ok else None


# --- PostgreSQL tools ---------------------------------------------------------------------------------


def _pg_tool(name: str) -> str:
    def version(p: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/bin/", p)
        return tuple(int(x) for x in m.groups() if x) if m else (0,)

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version, reverse=True)
    which = shutil.which(name)
    if found:
        return found[0]
    if which:
        return which
    raise BackupRefused(f"找不到 {name}（PostgreSQL 客户端工具）", f"{name} (PostgreSQL client tools) not found",
                        "请安装 postgresql-client。Install postgresql-client.")


def _pg_conn(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments (no password) and the environment carrying the password."""
    q = dict(url.query)
    host = url.host or (q.get("host") if isinstance(q.get("host"), str) else None)
    args = []
    if host:
        args += ["-h", str(host)]
    if url.port:
        args += ["-p", str(url.port)]
    if url.username:
        args += ["-U", url.username]
    env = {"PGCONNECT_TIMEOUT": "10", "LC_ALL": "C.UTF-8"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    for key, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                     ("sslkey", "PGSSLKEY")):
        if isinstance(q.get(key), str):
            env[var] = str(q[key])
    return args, env


def _run(argv: list[str], env: dict[str, str], what_zh: str, what_en: str) -> str:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupFailed(f"{what_zh}失败", f"{what_en} failed", str(exc)[:2000]) from exc
    if done.returncode != 0:
        raise BackupFailed(f"{what_zh}失败（退出码 {done.returncode}）", f"{what_en} failed (exit {done.returncode})",
                           done.stderr[-2000:])
    return done.stdout


def _pg_dump(url: URL, schema: str, out: Path, snapshot: str | None = None) -> None:
    args, env = _pg_conn(url)
    argv = [_pg_tool("pg_dump"), "-Fc", "-n", schema, "-f", str(out), *args]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    _run([*argv, "--", str(url.database)], env, "pg_dump 导出", "pg_dump")


def _pg_restore(url: URL, dump: Path, work: Path) -> None:
    """Restore into ``url``'s database with the dump's schema already there (its CREATE SCHEMA left out)."""
    args, env = _pg_conn(url)
    tool = _pg_tool("pg_restore")
    toc = _run([tool, "-l", str(dump)], env, "pg_restore 读取目录", "pg_restore --list")
    keep = [line for line in toc.splitlines() if " SCHEMA - " not in line and " - SCHEMA " not in line]
    listing = work / f"toc-{secrets.token_hex(4)}.list"
    listing.write_text("\n".join(keep) + "\n", encoding="utf-8")
    _run([tool, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "-L", str(listing),
          "-d", str(url.database), *args, str(dump)], env, "pg_restore 恢复", "pg_restore")


def _q(name: str) -> str:
    """A PostgreSQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _admin(url: URL) -> Engine:
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _with_search_path(url: URL, schema: str) -> URL:
    q = {k: v for k, v in url.query.items() if k != "options"}
    return url.set(query={**q, "options": f"-csearch_path={schema}"})


@contextmanager
def _scratch_pg(server: URL) -> Iterator[URL]:
    """A database created on ``server`` for one verify or restore, dropped after (WITH (FORCE))."""
    name = f"sg_scratch_{secrets.token_hex(6)}"
    admin = _admin(server)
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name, query={k: v for k, v in server.query.items() if k != "options"})
        finally:
            with admin.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _restore_pg_same_schema(target: URL, schema: str, dump: Path, work: Path) -> None:
    admin = _admin(target)
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
    finally:
        admin.dispose()
    _pg_restore(target, dump, work)


def _restore_pg(dump: Path, manifest: bm.Manifest, target: URL, target_schema: str, work: Path) -> None:
    """Restore into ``target_schema`` of ``target``; a dump of another schema goes through a scratch database
    where its schema is renamed and dumped again (pg_restore cannot rename a schema)."""
    source_schema = manifest.pg_schema or "public"
    if source_schema == target_schema:
        _restore_pg_same_schema(target, target_schema, dump, work)
        return
    with _scratch_pg(target) as scratch:
        _restore_pg_same_schema(scratch, source_schema, dump, work)
        admin = _admin(scratch)
        try:
            with admin.connect() as c:
                c.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_q(target_schema)} CASCADE")
                c.exec_driver_sql(f"ALTER SCHEMA {_q(source_schema)} RENAME TO {_q(target_schema)}")
        finally:
            admin.dispose()
        renamed = work / f"renamed-{secrets.token_hex(4)}.pgc"
        _pg_dump(scratch, target_schema, renamed)
        _restore_pg_same_schema(target, target_schema, renamed, work)


# --- create -----------------------------------------------------------------------------------------------


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupRefused("只能备份 SQLite 数据库文件", "only an SQLite database file can be backed up",
                            f"URL: {url.render_as_string(hide_password=True)}")
    return Path(url.database)


def _snapshot_sqlite(src: Path, dst: Path) -> bm.Observed:
    source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)  # one step: a consistent snapshot under one read transaction (WAL)
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()
    eng = create_engine(f"sqlite:///{dst}", poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return observe(conn)
    finally:
        eng.dispose()


def create_backup(engine: Engine, out_dir: Path, *, now: datetime, business_day: date,
                  actor: str = "backup") -> Created:
    """One archive of ``engine``'s database in ``out_dir`` (see the module docstring); recorded in the audit
    trail as ``backup.created`` (after the snapshot: the archive's head is the event before)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise BackupRefused(f"目录不存在：{out_dir}", f"no such directory: {out_dir}")
    url = engine.url
    dialect = engine.dialect.name
    name = archive_name(business_day, now)
    work = Path(tempfile.mkdtemp(prefix=".sgbackup-", dir=out_dir))
    try:
        dump = work / bm.DUMP_NAMES[dialect]
        schema: str | None = None
        if dialect == "sqlite":
            obs = _snapshot_sqlite(_sqlite_file(url), dump)
        elif dialect == "postgresql":
            with engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
                    schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
                    obs = observe(conn)
                    _pg_dump(url, schema, dump, snapshot)  # the same snapshot, while the transaction is open
        else:
            raise BackupRefused(f"不支持的数据库 {dialect}", f"unsupported database {dialect}")
        manifest = bm.Manifest(
            created_at=now.astimezone(UTC).isoformat().replace("+00:00", "Z"), business_day=business_day.isoformat(),
            dialect=dialect, pg_schema=schema, schema_revision=obs.schema_revision,
            dump_name=bm.DUMP_NAMES[dialect], dump_sha256=_sha256_file(dump), dump_bytes=dump.stat().st_size,
            row_counts=obs.row_counts, ledger_totals=obs.ledger_totals, audit_head_id=obs.audit_head_id,
            audit_head_hash=obs.audit_head_hash, card_keys=obs.card_keys, key_fingerprint=_current_key(obs.card_keys),
            app_version=__version__)
        path, sha = _write_archive(out_dir, name, manifest, dump, int(now.timestamp()))
    except OSError as exc:
        raise BackupFailed("写入备份失败", "writing the backup failed", str(exc)) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with engine.begin() as conn:
        audit_service.record(conn, actor, "backup.created", ("backup", name), {
            "file": name, "sha256": sha, "dump_sha256": manifest.dump_sha256, "business_day": manifest.business_day,
            "audit_head_id": manifest.audit_head_id, "rows": sum(manifest.row_counts.values())}, now)
    return Created(path, manifest, sha)


# --- checks of a restored database ------------------------------------------------------------------------


def check_restored(engine: Engine, manifest: bm.Manifest, report: Report) -> None:
    """Integrity (SQLite), the manifest's numbers, then (migrated to this program's head if behind) ledger check
    and audit verify. A restored database that cannot be read fails the check that was reading it."""
    stage = "integrity"
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                rows = [str(r) for (r,) in conn.exec_driver_sql("PRAGMA integrity_check")]
                report.add(bm.check("integrity", rows == ["ok"], "; ".join(rows[:5]) if rows != ["ok"] else ""))
            stage = "row_counts"
            obs = observe(conn)
        for c in bm.compare(manifest, obs):
            report.add(c)
        stage = "ledger_check"
        if current_revision(engine) != head_revision(engine):
            upgrade(engine)  # ledger check and audit verify read this program's schema
        with engine.connect() as conn:
            problems = ledger_repo.check(conn)
        report.add(bm.check("ledger_check", not problems, "; ".join(p.message for p in problems[:5])))
        stage = "audit_verify"
        verdict = audit_service.verify(engine)
        p = verdict.problem
        report.add(bm.check("audit_verify", verdict.ok, "" if p is None else f"#{p.event_id} {p.zh} {p.en}"))
    except Exception as exc:  # noqa: BLE001 - reported as the failed check, never a traceback
        report.add(bm.check(stage, False, f"{type(exc).__name__}: {str(exc)[:300]}"))


# --- verify -----------------------------------------------------------------------------------------------


def verify_backup(path: Path, *, server_url: str | None = None, work_dir: Path | None = None) -> Report:
    """Check ``path`` byte for byte, restore it into a scratch database and run the checks. A PostgreSQL
    backup needs ``server_url`` (a PostgreSQL URL: the scratch database is created on that server)."""
    report = Report(Path(path))
    with tempfile.TemporaryDirectory(prefix="sgverify-", dir=work_dir) as tmp:
        work = Path(tmp)
        opened = open_archive(Path(path), work, report)
        if opened is None:
            return report
        m = opened.manifest
        if m.dialect == "sqlite":
            engine = create(f"sqlite:///{opened.dump}")
            try:
                report.add(bm.check("restore", True, "SQLite 临时文件 temporary file"))
                check_restored(engine, m, report)
            finally:
                engine.dispose()
            return report
        server = _pg_server(server_url)
        with _scratch_pg(server) as scratch:
            schema = m.pg_schema or "public"
            try:
                _restore_pg_same_schema(scratch, schema, opened.dump, work)
            except BackupFailed as exc:
                report.add(bm.check("restore", False, f"{exc.zh} {exc.en} {exc.detail}"))
                return report
            report.add(bm.check("restore", True, f"临时数据库 scratch database {scratch.database}"))
            engine = create(_with_search_path(scratch, schema).render_as_string(hide_password=False))
            try:
                check_restored(engine, m, report)
            finally:
                engine.dispose()
    return report


def _pg_server(server_url: str | None) -> URL:
    url = make_url(normalise_url(server_url)) if server_url else None
    if url is None or url.get_backend_name() != "postgresql":
        raise BackupRefused("PostgreSQL 备份需要一个 PostgreSQL 服务器来建立临时数据库",
                            "a PostgreSQL backup needs a PostgreSQL server for its scratch database",
                            "用 --db postgresql://... 指定服务器。Name the server with --db postgresql://...")
    return url


# --- restore ----------------------------------------------------------------------------------------------


def _sqlite_tables(path: Path) -> list[str]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [str(n) for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"目标文件不是 SQLite 数据库：{path}", f"the target is not an SQLite database: {path}",
                            str(exc)) from exc
    finally:
        conn.close()


def _refuse_non_empty(where: str, tables: list[str]) -> BackupRefused:
    shown = ", ".join(sorted(tables)[:8]) + (" ..." if len(tables) > 8 else "")
    return BackupRefused(f"目标数据库不是空的（{len(tables)} 张表），未做任何更改；确认覆盖请加 --force",
                         f"the target database is not empty ({len(tables)} tables); nothing was changed; "
                         f"add --force to replace it", f"{where}: {shown}")


def restore_backup(path: Path, target_url: str, *, force: bool = False, now: datetime,
                   work_dir: Path | None = None, actor: str = "backup") -> Report:
    """Restore ``path`` into ``target_url`` (refused when the target holds any table, unless ``force``), then run
    the checks there. The archive is checked first; a damaged one changes nothing. The source database is
    never opened."""
    url = make_url(normalise_url(target_url))
    report = Report(Path(path), target=url.render_as_string(hide_password=True))
    with tempfile.TemporaryDirectory(prefix="sgrestore-", dir=work_dir) as tmp:
        work = Path(tmp)
        opened = open_archive(Path(path), work, report)
        if opened is None:
            return report
        m = opened.manifest
        backend = url.get_backend_name()
        if backend != m.dialect:
            raise BackupRefused(f"备份来自 {m.dialect}，目标是 {backend}：不能跨数据库恢复",
                                f"the backup is of {m.dialect} and the target is {backend}: no cross-database restore")
        if m.dialect == "sqlite":
            target = _sqlite_file(url)
            if not target.parent.is_dir():
                raise BackupRefused(f"目录不存在：{target.parent}", f"no such directory: {target.parent}")
            tables = _sqlite_tables(target)
            if tables and not force:
                raise _refuse_non_empty(str(target), tables)
            source = sqlite3.connect(opened.dump)
            dest = sqlite3.connect(target, timeout=30)
            try:
                source.backup(dest)  # replaces the target's whole content, through its own journal
            finally:
                dest.close()
                source.close()
            report.add(bm.check("restore", True, str(target)))
            engine = create(url.render_as_string(hide_password=False))
        else:
            engine = create(url.render_as_string(hide_password=False))
            try:
                with engine.connect() as conn:
                    schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
                    tables = _tables(conn) if schema else []
            finally:
                engine.dispose()
            if not schema:
                raise BackupRefused("目标数据库的 search_path 中没有存在的模式", "no schema of the target's search_path "
                                    "exists", report.target or "")
            if tables and not force:
                raise _refuse_non_empty(f"{report.target} schema {schema}", tables)
            if tables:
                admin = _admin(url)
                try:
                    with admin.connect() as c:
                        c.exec_driver_sql(f"DROP SCHEMA {_q(str(schema))} CASCADE")
                        c.exec_driver_sql(f"CREATE SCHEMA {_q(str(schema))}")
                finally:
                    admin.dispose()
            try:
                _restore_pg(opened.dump, m, url, str(schema), work)
            except BackupFailed as exc:
                report.add(bm.check("restore", False, f"{exc.zh} {exc.en} {exc.detail}"))
                return report
            report.add(bm.check("restore", True, f"{report.target} schema {schema}"))
            engine = create(url.render_as_string(hide_password=False))
        try:
            check_restored(engine, m, report)
            if report.ok:
                with engine.begin() as conn:
                    audit_service.record(conn, actor, "backup.restored", ("backup", path.name), {
                        "file": path.name, "dump_sha256": m.dump_sha256, "created_at": m.created_at,
                        "audit_head_id": m.audit_head_id}, now)
        finally:
            engine.dispose()
    return report


# --- the worker's daily backup -------------------------------------------------------------------------------


def archives(directory: Path) -> list[Path]:
    """The backups in ``directory`` written by settleguard, oldest first (by their names)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if NAME_RE.match(p.name) and p.is_file()), key=lambda p: p.name)


def daily_backup(engine: Engine, policy: BackupPolicy, *, business_day: date, now: datetime) -> DailySummary:
    """One backup per business day into ``policy.directory`` (none if today's exists), then the oldest beyond
    ``policy.keep`` deleted. Only files named like settleguard's archives are ever deleted."""
    directory = policy.directory
    day = f"{business_day:%Y%m%d}"
    if any(NAME_RE.match(p.name).group(1) == day for p in archives(directory)):  # type: ignore[union-attr]
        return DailySummary(skipped=day)
    with suppress(OSError):
        directory.mkdir(parents=True, exist_ok=True)  # else refused by create_backup: no such directory
    try:
        created = create_backup(engine, directory, now=now, business_day=business_day, actor="worker")
    except (BackupFailed, BackupRefused, OSError) as exc:
        LOG.error("每日备份失败，下一轮重试 daily backup failed; retried next cycle: %s", str(exc)[:2000])
        return DailySummary(failed=str(exc)[:2000])
    old = archives(directory)
    doomed = old[: max(0, len(old) - policy.keep)]
    for p in doomed:
        for f in (p, p.with_name(p.name + SIDECAR)):
            with suppress(FileNotFoundError):
                f.unlink()
    return DailySummary(created=created.path, deleted=tuple(doomed))


def summary_json(report: Report) -> dict[str, Any]:
    m = report.manifest
    return {"file": str(report.path), "ok": report.ok, "target": report.target,
            "manifest": None if m is None else m.to_dict(), "checks": [c.to_dict() for c in report.checks]}
