"""``settleguard doctor``: is this installation healthy? Reads facts, judges them with ops/doctor_model.py.

Read-only: the database is opened without migrating it (a database behind the latest revision is a finding,
not something to fix silently), the card key is compared with the recorded fingerprints without recording
anything (cards/custody.py records on first use; here nothing is written), and every check that needs a table
survives its absence (an old schema): it is reported as not checked.

The checks, in order: database reachable, migration at head, card key, disk space beside the SQLite file,
clock (PostgreSQL's clock_timestamp() vs this machine's), worker heartbeat (ops/heartbeat.py), notice
backlog (notification_deliveries pending), payouts stuck in result_unknown / inquiry, circuits open (per
bank), last backup (the newest manifest in the backup directory; ops/backup.py writes them), last bank
statement import (bank_statements).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from settleguard.db import tables as t
from settleguard.ops import doctor_model as m
from settleguard.ops import heartbeat

MANIFEST_MAX_BYTES = 1 << 20  # a manifest larger than this is not read
MANIFESTS_MAX = 2000  # files looked at in the backup directory


@dataclass(frozen=True)
class DoctorInput:
    """What doctor checks against (bootstrap.Container.doctor_input builds it from the settings).

    Attributes:
        db_url: the database (opened without migrating).
        key, key_file: the card key as configured (``key`` wins); ``key_error``: why none could be resolved.
        backup_dir: where backups and their manifests are kept; None: no backup configured.
        thresholds: the doctor_* settings.
    """

    db_url: str
    key: str | None
    key_file: Path | None
    backup_dir: Path | None
    thresholds: m.Thresholds
    key_error: str | None = None
    key_command: str | None = None  # SETTLEGUARD_KEY_COMMAND (cards/key_source.py): run to read the key; after key
    key_command_timeout: float = 10.0
    # the day's expected files late or missing now (daycycle.service.late_files, wired by bootstrap when the day runs
    # itself): rows of day, kind, kind_zh, kind_en, state; None: no such check
    late_files: Callable[[Engine, datetime], Sequence[Mapping[str, Any]]] | None = None


def _first_line(exc: BaseException) -> str:
    from settleguard.masking import bounded

    return bounded(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 300)


def sqlite_dir(url: str) -> Path | None:
    u = make_url(url)
    if u.drivername.startswith("sqlite") and u.database and u.database != ":memory:" \
            and not u.database.startswith("file:"):
        return Path(u.database).resolve().parent
    return None


def _guard(code: str, fn: Callable[[], m.Check]) -> m.Check:
    try:
        return fn()
    except SQLAlchemyError as exc:
        return m.skipped(code, f"数据库错误 {_first_line(exc)}", f"database error {_first_line(exc)}")


def _key(conn: Connection, d: DoctorInput) -> m.Check:
    from settleguard.cards import key_repository as key_repo
    from settleguard.cards.vault import KeyFileMissing, VaultError, compare_keys, read_vault

    if d.key_error is not None:
        return m.card_key(error=d.key_error)
    rows = key_repo.recorded(conn)
    try:
        if d.key_command and not d.key:  # precedence key > key_command > key_file (cards/key_source.py)
            from settleguard.cards.key_source import KeySource, load

            vault = load(KeySource(command=d.key_command, timeout=d.key_command_timeout))
        else:
            vault = read_vault(d.key, d.key_file or Path())
    except KeyFileMissing as exc:
        if not rows and not key_repo.sealed_versions(conn):  # an empty database: created on first use
            return m.card_key(recorded={})
        return m.card_key(error=f"{exc.key_file}: 不存在 not found")
    except VaultError as exc:
        return m.card_key(error=_first_line(exc))
    held = vault.fingerprints()
    cmp = compare_keys({v: (r.fingerprint, r.retired_at is not None) for v, r in rows.items()}, held)
    return m.card_key(recorded={v: r.fingerprint for v, r in rows.items()}, held=held, mismatched=cmp.mismatched,
                      missing=cmp.missing, unknown=cmp.unknown)


def _clock(conn: Connection, system: Callable[[], datetime], th: m.Thresholds) -> m.Check:
    if conn.dialect.name != "postgresql":
        return m.clock(None, th)
    before = system()
    db_now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    after = system()
    mid = before + (after - before) / 2
    return m.clock(mid - db_now, th)


def _worker(conn: Connection, now: datetime, th: m.Thresholds) -> m.Check:
    last = heartbeat.latest(conn)
    if last is None:
        return m.worker(None, now, th)
    return m.worker(last.beat_at, now, th, worker_name=last.worker,
                    alive=heartbeat.count_since(conn, now - th.heartbeat_warn))


def _notify(conn: Connection, now: datetime, th: m.Thresholds) -> m.Check:
    d = t.notification_deliveries
    n, oldest = conn.execute(select(func.count(), func.min(d.c.created_at))
                             .where(d.c.status.in_(["pending", "delivering"]))).one()
    return m.notify_backlog(int(n), oldest, now, th)


def _stuck(conn: Connection, now: datetime, th: m.Thresholds) -> m.Check:
    p = t.payouts
    rows = conn.execute(select(p.c.status, func.count(), func.min(p.c.updated_at))
                        .where(p.c.status.in_(["result_unknown", "inquiry"]), p.c.updated_at < now - th.stuck_warn)
                        .group_by(p.c.status)).all()
    return m.stuck_payouts({str(s): (int(c), o) for s, c, o in rows}, now, th)


def _circuits(conn: Connection) -> m.Check:
    c = t.bank_circuits
    rows = conn.execute(select(c.c.bank_code, c.c.state).where(c.c.state != "closed").order_by(c.c.bank_code)).all()
    return m.circuits([b for b, s in rows if s == "open"], [b for b, s in rows if s != "open"])


def _statements(conn: Connection, now: datetime, th: m.Thresholds) -> m.Check:
    newest = conn.execute(select(func.max(t.bank_statements.c.imported_at))).scalar_one()
    return m.statements(newest, now, th)


def _day_files(late_files: Callable[[Engine, datetime], Sequence[Mapping[str, Any]]], eng: Engine,
               at: datetime) -> m.Check:
    try:
        return m.day_files(late_files(eng, at))
    except SQLAlchemyError as exc:
        return m.skipped("day_files", f"数据库错误 {_first_line(exc)}", f"database error {_first_line(exc)}")
    except ValueError as exc:  # a bad day_* setting (daycycle.model.ScheduleError names it)
        return m.Check("day_files", m.Status.FAIL, f"日终自动运行的设置有误：{_first_line(exc)}",
                       f"the day cycle's settings are wrong: {_first_line(exc)}")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def newest_backup(backup_dir: Path) -> datetime | None:
    """The newest ``created_at`` of the backup manifests (``*manifest*.json``) in ``backup_dir`` or one level
    below it; unreadable or oversized manifests are skipped."""
    if not backup_dir.is_dir():
        return None
    found: list[datetime] = []
    candidates = [*backup_dir.glob("*manifest*.json"), *backup_dir.glob("*/*manifest*.json")][:MANIFESTS_MAX]
    for path in candidates:
        try:
            if path.stat().st_size > MANIFEST_MAX_BYTES:
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        at = _parse_time(data.get("created_at")) if isinstance(data, dict) else None
        if at is not None:
            found.append(at)
    return max(found, default=None)


def _backup(d: DoctorInput, now: datetime) -> m.Check:
    if d.backup_dir is None:
        return m.backup(False, None, now, d.thresholds)
    return m.backup(True, newest_backup(d.backup_dir), now, d.thresholds, where=str(d.backup_dir))


def _disk(d: DoctorInput) -> m.Check:
    where = sqlite_dir(d.db_url)
    if where is None:
        return m.disk(None, "", d.thresholds)
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        return m.skipped("disk", f"{where}: {_first_line(exc)}", f"{where}: {_first_line(exc)}")
    return m.disk(free, str(where), d.thresholds)


def run_checks(d: DoctorInput, *, now: Callable[[], datetime], engine: Engine | None = None) -> list[m.Check]:
    """Every check, in order. ``engine``: an open engine to use (else one is created for ``d.db_url`` and
    disposed of); ``now`` is this machine's clock (timezone-aware)."""
    from settleguard.db.engine import create, current_revision, head_revision, normalise_url

    d = replace(d, db_url=normalise_url(d.db_url))
    th = d.thresholds
    at = now()
    own = engine is None
    eng = engine if engine is not None else create(d.db_url)
    checks: list[m.Check] = []
    try:
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            checks.append(m.database(_first_line(exc)))
            for code in ("migration", "card_key"):
                checks.append(m.skipped(code, "数据库不可达", "database unreachable"))
            checks.append(_disk(d))
            for code in ("clock", "worker", "notify_backlog", "stuck_payouts", "circuits"):
                checks.append(m.skipped(code, "数据库不可达", "database unreachable"))
            checks.append(_backup(d, at))
            checks.append(m.skipped("statements", "数据库不可达", "database unreachable"))
            if d.late_files is not None:
                checks.append(m.skipped("day_files", "数据库不可达", "database unreachable"))
            return checks
        checks.append(m.database(None))
        checks.append(_guard("migration", lambda: m.migration(current_revision(eng), head_revision(eng))))
        with eng.connect() as conn:
            def each(code: str, fn: Callable[[], m.Check]) -> None:
                checks.append(_guard(code, fn))
                if conn.in_transaction():
                    conn.rollback()  # a failed statement must not poison the next check (PostgreSQL)

            each("card_key", lambda: _key(conn, d))
            checks.append(_disk(d))
            each("clock", lambda: _clock(conn, now, th))
            each("worker", lambda: _worker(conn, at, th))
            each("notify_backlog", lambda: _notify(conn, at, th))
            each("stuck_payouts", lambda: _stuck(conn, at, th))
            each("circuits", lambda: _circuits(conn))
            checks.append(_backup(d, at))
            each("statements", lambda: _statements(conn, at, th))
            if d.late_files is not None:
                checks.append(_day_files(d.late_files, eng, at))
    finally:
        if own:
            eng.dispose()
    return checks


def readiness(engine: Engine) -> tuple[bool, dict[str, Any]]:
    """``/readyz``: the database answers and its schema is at the latest revision."""
    from settleguard.db.engine import current_revision, head_revision

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = current_revision(engine), head_revision(engine)
    except Exception as exc:
        return False, {"database": "unreachable", "error": _first_line(exc)}
    return current == head, {"database": "ok", "current": current, "head": head}
