"""分区与归档 Partitions and archive of ``transactions`` (PostgreSQL; docs/operations.md).

``listing`` shows the day partitions; ``detach_before`` detaches every attached day partition wholly before a
date once each is settled and reconciled (ops/partitions_model.py), refusing the whole request, naming each day
and why, otherwise; ``attach`` puts an archived day back. Each change is in the audit trail. A detached day stays
in the database as a plain table until the operator dumps and drops it (:func:`archive_commands`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, text

from settleguard.audit import service as audit
from settleguard.db import partitions as parts
from settleguard.ops import partitions_model as model
from settleguard.ops import partitions_repository as repo

PartitionError = parts.PartitionError
NotPartitioned = parts.NotPartitioned


class DetachRefused(parts.PartitionError):
    """Days before the date are not settled and reconciled; ``days`` maps each to its reasons."""

    def __init__(self, days: dict[date, list[model.Reason]]) -> None:
        zh = "；".join(f"{r.zh}" for rs in days.values() for r in rs)
        en = "; ".join(f"{r.en}" for rs in days.values() for r in rs)
        super().__init__(f"未拆离任何分区：{zh}", f"nothing detached: {en}")
        self.days = days


@dataclass(frozen=True)
class Detached:
    day: date
    name: str
    rows: int
    bytes: int
    method: str  # concurrently | plain


@dataclass
class DetachResult:
    detached: list[Detached] = field(default_factory=list)
    planned: list[date] = field(default_factory=list)  # without --yes: what would be detached


def listing(engine: Engine) -> list[parts.Partition]:
    with engine.connect() as conn:
        return parts.listing(conn)


def candidates(engine: Engine, before: date) -> list[parts.Partition]:
    """Attached day partitions wholly before ``before`` (the partition of day D holds [D, D+1))."""
    return [p for p in listing(engine) if p.attached and p.day is not None and p.day < before]


def detach_before(engine: Engine, before: date, *, now: datetime, actor: str, execute: bool) -> DetachResult:
    """Check every day partition before ``before``; refuse all when one is not ready (DetachRefused); detach them
    when ``execute`` (each in its own transaction with its audit event), else only report the plan."""
    todo = candidates(engine, before)
    refused: dict[date, list[model.Reason]] = {}
    with engine.connect() as conn:
        for p in todo:
            assert p.day is not None
            why = model.refusals(repo.day_facts(conn, p.day))
            if why:
                refused[p.day] = why
    if refused:
        raise DetachRefused(refused)
    result = DetachResult(planned=[p.day for p in todo if p.day is not None])
    if not execute:
        return result
    for p in todo:
        assert p.day is not None
        result.detached.append(_detach_one(engine, p.day, now=now, actor=actor))
    return result


def _detach_one(engine: Engine, day: date, *, now: datetime, actor: str) -> Detached:
    with engine.connect() as conn:
        concurrently = parts.can_detach_concurrently(conn)
    if concurrently:  # no default partition: readers and writers go on while it detaches
        name = parts.detach_concurrently(engine, day)
        with engine.begin() as conn:
            rows = parts.exact_rows(conn, name)
            size = _size(conn, name)
            audit.record(conn, actor, "db.partition_detached", ("partition", name),
                         {"day": day.isoformat(), "rows": rows, "bytes": size, "method": "concurrently"}, now)
        return Detached(day, name, rows, size, "concurrently")
    with engine.begin() as conn:  # plain: check again, detach and record in one transaction
        why = model.refusals(repo.day_facts(conn, day))
        if why:
            raise DetachRefused({day: why})
        name = parts.detach(conn, day)
        rows = parts.exact_rows(conn, name)
        size = _size(conn, name)
        audit.record(conn, actor, "db.partition_detached", ("partition", name),
                     {"day": day.isoformat(), "rows": rows, "bytes": size, "method": "plain"}, now)
    return Detached(day, name, rows, size, "plain")


def _size(conn: Any, name: str) -> int:
    return int(conn.execute(text("SELECT pg_total_relation_size(to_regclass(:n))"), {"n": name}).scalar() or 0)


def attach(engine: Engine, day: date, *, now: datetime, actor: str) -> tuple[str, int, int]:
    """Attach the archived day back: (name, rows, rows moved in from the default partition)."""
    with engine.begin() as conn:
        name, moved = parts.attach(conn, day)
        rows = parts.exact_rows(conn, name)
        audit.record(conn, actor, "db.partition_attached", ("partition", name),
                     {"day": day.isoformat(), "rows": rows, "moved_from_default": moved}, now)
    with engine.begin() as conn:
        conn.execute(text(f'ANALYZE "{name}"'))
    return name, rows, moved


def archive_commands(engine: Engine, name: str) -> list[str]:
    """The commands that dump a detached day to a file, check it and drop the table (and how to bring it back)."""
    with engine.connect() as conn:
        schema = str(conn.execute(text("SELECT current_schema()")).scalar())
    u = engine.url
    uri = (f"postgresql://{u.username or ''}@{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}")
    qualified = f'"{schema}"."{name}"'
    return [
        f"pg_dump --dbname='{uri}' --format=custom --table='{qualified}' --file={name}.dump",
        f"pg_restore --list {name}.dump",
        f"psql '{uri}' -c 'DROP TABLE {qualified}'",
        f"# 恢复 restore: pg_restore --dbname='{uri}' {name}.dump && "
        f"settleguard db partitions attach --date {parts.day_of(name)}",
    ]
