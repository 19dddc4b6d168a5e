"""Daily RANGE partitions of ``transactions`` on PostgreSQL (migration 0025; docs/operations.md 分区与归档).

One partition per business day, ``transactions_pYYYYMMDD`` FOR VALUES FROM (D) TO (D + 1), and one DEFAULT
partition ``transactions_default`` that is kept empty: it only catches a row a writer other than the import puts
on a day without a partition (a reconciliation adjustment, a test fixture), and :func:`ensure_days` moves such
rows into the day's partition when it creates it. SQLite has no partitions: every function here is a no-op there
or says so (:class:`NotPartitioned`).

Why daily (docs/benchmarks.md): at 10 M rows a day a day is ~1.5 GB of heap and ~0.5 GB of primary key, a
month would be 45+ GB per partition; settlement, risk and clearing read one day, the archive decision
(settled and reconciled) is per day, so the day is the unit that prunes and the unit that detaches. A year online
is ~365 partitions, which PostgreSQL 15 plans in well under a millisecond for a query that names the day.

Locks. A partition is created standalone and then ATTACHed (SHARE UPDATE EXCLUSIVE on the parent, which readers
and writers do not wait for, but ACCESS EXCLUSIVE on the default partition for the check that it holds no row of
the day). ``CREATE TABLE ... PARTITION OF`` would take ACCESS EXCLUSIVE on the whole parent. Both are held to the
end of the transaction, so :func:`ensure_days` runs in its own short transaction (the import calls it before its
data transaction: an empty partition left by a failed import is harmless and reused by the retry), serialised by
a transaction-level advisory lock, with a lock timeout and retries.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

PARENT = "transactions"
DEFAULT = "transactions_default"
_NAME = re.compile(r"^transactions_p(\d{8})$")
_LOCK_KEY = 0x5347_7061  # "SGpa": the advisory lock serialising partition DDL on transactions
LOCK_TIMEOUT = "5s"
ATTEMPTS = 4


class PartitionError(RuntimeError):
    """A partition operation refused; ``zh`` and ``en`` name the day and why."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


class NotPartitioned(PartitionError):
    def __init__(self) -> None:
        super().__init__("按业务日分区是 PostgreSQL 的功能；SQLite 数据库的交易表不分区，无可列出、拆离或挂回的分区。",
                         "partitioning by business day is a PostgreSQL feature; on SQLite the transactions table "
                         "is not partitioned and there is nothing to list, detach or attach.")


def partition_name(day: date) -> str:
    return f"transactions_p{day:%Y%m%d}"


def day_of(name: str) -> date | None:
    m = _NAME.match(name)
    if m is None:
        return None
    s = m.group(1)
    return date(int(s[:4]), int(s[4:6]), int(s[6:]))


def is_partition(name: str) -> bool:
    """Whether a table of that name is one of the transactions' partitions (a day's, archived or not, or the
    default one): settleguard's own, though not a table of the metadata."""
    return name == DEFAULT or _NAME.match(name) is not None


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic ``include_object``: the partitions (and archived ones) are not tables of the metadata."""
    return not (type_ == "table" and reflected and name is not None and is_partition(name))


def is_partitioned(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = :t AND c.relnamespace = to_regnamespace(current_schema())::oid)"), {"t": PARENT}).scalar())


def analyze_targets(conn: Connection, days: Iterable[date]) -> list[str]:
    """What to ANALYZE after rows of ``days`` were added: their partitions (ANALYZE of the partitioned parent
    samples every partition again: seconds with a year online), or the table itself when it is not partitioned."""
    if not is_partitioned(conn):
        return [PARENT]
    attached = _attached(conn)
    return [n for n in (partition_name(d) for d in sorted(set(days))) if n in attached]


def _lock(conn: Connection) -> None:
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


def _attached(conn: Connection) -> dict[str, str]:
    """name -> bound expression of every partition now attached to transactions."""
    rows = conn.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"), {"t": PARENT})
    return {str(r[0]): str(r[1]) for r in rows}


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar() is True


def _has_default(conn: Connection) -> bool:
    return DEFAULT in _attached(conn)


def _bounds(day: date) -> tuple[str, str]:
    return day.isoformat(), (day + timedelta(days=1)).isoformat()


def _move_from_default(conn: Connection, name: str, day: date) -> int:
    """Rows of ``day`` parked in the default partition go into the standalone table ``name`` (same transaction)."""
    if not _has_default(conn):
        return 0
    lo, hi = _bounds(day)
    moved = conn.execute(text(
        f'WITH moved AS (DELETE FROM {DEFAULT} WHERE cycle_date >= :lo AND cycle_date < :hi RETURNING *) '
        f'INSERT INTO "{name}" SELECT * FROM moved'), {"lo": lo, "hi": hi})
    return int(moved.rowcount or 0)


def _attach(conn: Connection, name: str, day: date) -> None:
    lo, hi = _bounds(day)
    # A CHECK constraint equal to the bound lets ATTACH skip its scan of the table (an archived day may be large).
    conn.execute(text(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_bound" '
                      f"CHECK (cycle_date IS NOT NULL AND cycle_date >= DATE '{lo}' AND cycle_date < DATE '{hi}')"))
    conn.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{lo}') TO ('{hi}')"))
    conn.execute(text(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_bound"'))


def _retrying(engine: Engine, work: Any) -> Any:
    """Run ``work(conn)`` in its own transaction; a lock timeout (another DDL, a long reader of the default
    partition) is tried again with a growing pause before it is reported."""
    for attempt in range(ATTEMPTS):
        try:
            with engine.begin() as conn:
                return work(conn)
        except Exception as exc:
            name = type(getattr(exc, "orig", exc)).__name__
            if name not in ("LockNotAvailable", "DeadlockDetected") or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.2 * 2 ** attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def ensure_days(engine: Engine, days: Iterable[date]) -> list[str]:
    """Create the partitions of ``days`` that do not exist yet (committed at once, see the module docstring);
    the names created. Safe to call from two imports at once. A day archived (its table detached and still
    here) is refused: attach it back first."""
    wanted = sorted(set(days))
    if engine.dialect.name != "postgresql" or not wanted:
        return []

    def work(conn: Connection) -> list[str]:
        if not is_partitioned(conn):
            return []
        have = _attached(conn)
        missing = [d for d in wanted if partition_name(d) not in have]
        if not missing:
            return []
        _lock(conn)
        have = _attached(conn)  # again, under the lock: another import may have made them meanwhile
        made = []
        for d in missing:
            name = partition_name(d)
            if name in have:
                continue
            if _exists(conn, name):
                raise PartitionError(
                    f"业务日 {d} 已归档（分区表 {name} 已拆离）：先执行 settleguard db partitions attach --date {d} 挂回",
                    f"business day {d} is archived (partition table {name} is detached): run settleguard db "
                    f"partitions attach --date {d} first")
            conn.execute(text(f'CREATE TABLE "{name}" (LIKE {PARENT} INCLUDING DEFAULTS)'))
            _move_from_default(conn, name, d)
            _attach(conn, name, d)
            made.append(name)
        return made

    return list(_retrying(engine, work))


@dataclass(frozen=True)
class Partition:
    name: str
    day: date | None  # None: the default partition
    attached: bool
    rows_estimate: int
    bytes: int  # heap + indexes + toast

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "day": self.day.isoformat() if self.day else None,
                "range": None if self.day is None else [self.day.isoformat(), (self.day + timedelta(1)).isoformat()],
                "attached": self.attached, "rows_estimate": self.rows_estimate, "bytes": self.bytes}


def listing(conn: Connection) -> list[Partition]:
    """Every day partition (attached) and every archived one (a detached ``transactions_pYYYYMMDD`` table still in
    the schema), oldest first, then the default partition. Rows are the planner's estimate (reltuples; exact
    after ANALYZE, which the import runs)."""
    if not is_partitioned(conn):
        raise NotPartitioned()
    attached = _attached(conn)
    rows = conn.execute(text(
        "SELECT c.relname, greatest(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid) FROM pg_class c "
        "WHERE c.relnamespace = to_regnamespace(current_schema())::oid AND c.relkind = 'r' "
        "AND (c.relname = :d OR c.relname ~ '^transactions_p[0-9]{8}$') ORDER BY c.relname"), {"d": DEFAULT})
    out = [Partition(str(r[0]), day_of(str(r[0])), str(r[0]) in attached, int(r[1]), int(r[2])) for r in rows]
    days = [p for p in out if p.day is not None]
    return days + [p for p in out if p.day is None]


def exact_rows(conn: Connection, name: str) -> int:
    return int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())


def detach(conn: Connection, day: date) -> str:
    """DETACH (plain, in ``conn``'s transaction: brief ACCESS EXCLUSIVE on the parent, lock timeout) the partition
    of ``day``; the table stays, as a plain table, for pg_dump. Its name."""
    name = partition_name(day)
    if name not in _attached(conn):
        raise PartitionError(f"业务日 {day} 没有挂载的分区 {name}", f"business day {day} has no attached partition {name}")
    _lock(conn)
    conn.execute(text(f'ALTER TABLE {PARENT} DETACH PARTITION "{name}"'))
    return name


def can_detach_concurrently(conn: Connection) -> bool:
    """PostgreSQL refuses DETACH ... CONCURRENTLY while the parent has a default partition."""
    return not _has_default(conn)


def detach_concurrently(engine: Engine, day: date) -> str:
    """DETACH PARTITION ... CONCURRENTLY (outside a transaction: readers and writers are not blocked); only
    without a default partition."""
    name = partition_name(day)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        conn.execute(text(f'ALTER TABLE {PARENT} DETACH PARTITION "{name}" CONCURRENTLY'))
    return name


def attach(conn: Connection, day: date) -> tuple[str, int]:
    """Attach the archived table of ``day`` back (rows of the day parked in the default partition move into it
    first); its name and the rows moved from the default partition."""
    if not is_partitioned(conn):
        raise NotPartitioned()
    name = partition_name(day)
    _lock(conn)
    if name in _attached(conn):
        raise PartitionError(f"业务日 {day} 的分区 {name} 已挂载", f"the partition {name} of {day} is already attached")
    if not _exists(conn, name):
        raise PartitionError(f"找不到业务日 {day} 的归档表 {name}：先用 pg_restore 恢复它",
                             f"no archived table {name} for {day}: restore it with pg_restore first")
    moved = _move_from_default(conn, name, day)
    _attach(conn, name, day)
    return name, moved


def days_with_rows(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    return {n: exact_rows(conn, n) for n in names}
