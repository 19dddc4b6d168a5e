"""All SQL of the inbox: the inbox_files rows, and the read-only look-ups of the business days a file covered
(transactions, bank statements, clearing files) when an import has to be recognised after a crash."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, or_, select, update

from settleguard.db import tables as t
from settleguard.inbox.model import PROCESSING, STATUSES, Arrival

F = t.inbox_files


@dataclass(frozen=True)
class Seen:
    """An earlier row of the same content (by SHA-256)."""

    id: int
    name: str
    stored_name: str
    directory: str
    status: str
    kind: str | None
    received_at: datetime
    moved_to: str | None


def _days(text: str | None) -> tuple[date, ...]:
    try:
        return tuple(date.fromisoformat(d) for d in json.loads(text or "[]"))
    except (ValueError, TypeError):
        return ()


def _arrival(r: Row[Any]) -> Arrival:
    try:
        summary = json.loads(r.summary or "{}")
    except ValueError:
        summary = {}
    return Arrival(id=r.id, kind=r.kind, name=r.name, sha256=r.sha256, status=r.status, reason_zh=r.reason_zh,
                   reason_en=r.reason_en, business_days=_days(r.business_days), received_at=r.received_at,
                   processed_at=r.processed_at, summary=summary if isinstance(summary, dict) else {},
                   directory=r.directory, moved_to=r.moved_to)


def arrivals(conn: Connection, *, since: datetime | None = None, until: datetime | None = None,
             limit: int = 10_000) -> list[Arrival]:
    """The files the inbox finished with (done, rejected, duplicate), oldest first; ``since``/``until`` bound
    the time received (``until`` exclusive)."""
    q = select(F).where(F.c.status.in_(STATUSES))
    if since is not None:
        q = q.where(F.c.received_at >= since)
    if until is not None:
        q = q.where(F.c.received_at < until)
    rows = conn.execute(q.order_by(F.c.received_at, F.c.id).limit(limit)).all()
    return [_arrival(r) for r in rows]


def arrival(conn: Connection, row_id: int) -> Arrival:
    return _arrival(conn.execute(select(F).where(F.c.id == row_id)).one())


def arrivals_for_day(conn: Connection, day: date, *, since: datetime, until: datetime) -> list[Arrival]:
    """Files received in [since, until) or covering ``day`` (a file may arrive the next morning)."""
    iso = f'%"{day.isoformat()}"%'
    rows = conn.execute(select(F).where(F.c.status.in_(STATUSES), or_(
        and_(F.c.received_at >= since, F.c.received_at < until), F.c.business_days.like(iso)))
        .order_by(F.c.received_at, F.c.id)).all()
    return [_arrival(r) for r in rows]


def seen(conn: Connection, sha256: str) -> list[Seen]:
    rows = conn.execute(select(F.c.id, F.c.name, F.c.stored_name, F.c.directory, F.c.status, F.c.kind,
                               F.c.received_at, F.c.moved_to)
                        .where(F.c.sha256 == sha256).order_by(F.c.id)).all()
    return [Seen(r.id, r.name, r.stored_name, r.directory, r.status, r.kind, r.received_at, r.moved_to) for r in rows]


def start(conn: Connection, *, directory: str, name: str, stored_name: str, sha256: str, size: int,
          kind: str | None, received_at: datetime) -> int:
    """A row for a file being imported (status processing)."""
    res = conn.execute(insert(F).values(directory=directory[:512], name=name[:256], stored_name=stored_name[:256],
                                        sha256=sha256, size=size, kind=kind, status=PROCESSING,
                                        business_days="[]", summary="{}", received_at=received_at))
    key = res.inserted_primary_key
    assert key is not None
    return int(key[0])


def record(conn: Connection, *, directory: str, name: str, stored_name: str, sha256: str, size: int,
           kind: str | None, status: str, reason: tuple[str, str] | None, received_at: datetime,
           processed_at: datetime, days: Sequence[date] = (), summary: dict[str, Any] | None = None) -> int:
    """A finished row at once (a refusal before any import, a duplicate)."""
    row_id = start(conn, directory=directory, name=name, stored_name=stored_name, sha256=sha256, size=size,
                   kind=kind, received_at=received_at)
    finish(conn, row_id, status=status, kind=kind, reason=reason, processed_at=processed_at, days=days,
           summary=summary)
    return row_id


def finish(conn: Connection, row_id: int, *, status: str, kind: str | None, reason: tuple[str, str] | None,
           processed_at: datetime, days: Sequence[date] = (), summary: dict[str, Any] | None = None) -> None:
    assert status in STATUSES
    conn.execute(update(F).where(F.c.id == row_id).values(
        status=status, kind=kind, reason_zh=None if reason is None else reason[0],
        reason_en=None if reason is None else reason[1], processed_at=processed_at,
        business_days=json.dumps(sorted({d.isoformat() for d in days})),
        summary=json.dumps(summary or {}, ensure_ascii=False, default=str)))


def moved(conn: Connection, row_id: int, moved_to: str) -> None:
    conn.execute(update(F).where(F.c.id == row_id).values(moved_to=moved_to[:600]))


# --- the days a file covered, looked up after the fact ----------------------------------------------------

def transaction_days(conn: Connection, sha256: str) -> list[date]:
    imp = conn.execute(select(t.imports.c.id).where(t.imports.c.kind == "transactions",
                                                    t.imports.c.sha256 == sha256)).scalar()
    if imp is None:
        return []
    tx = t.transactions
    return [r[0] for r in conn.execute(select(tx.c.cycle_date).where(tx.c.import_id == imp).distinct())]


def statement_days(conn: Connection, sha256: str) -> list[date]:
    """A statement file's days: its statements' closing (else opening) balance dates, else its lines' booking
    dates."""
    s = t.bank_statements
    rows = conn.execute(select(s.c.id, s.c.closing_date, s.c.opening_date).where(s.c.file_sha256 == sha256)).all()
    days = [r.closing_date or r.opening_date for r in rows if (r.closing_date or r.opening_date)]
    if days or not rows:
        return days
    b = t.bank_lines
    return [r[0] for r in conn.execute(select(func.distinct(b.c.booking_date)).where(
        b.c.statement_row_id.in_([r.id for r in rows]), b.c.booking_date.is_not(None)))]
