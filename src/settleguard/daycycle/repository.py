"""SQL of the day's cycle: what ran per business day and action (day_cycle_runs), and the few facts it reads.

The claim is the row: :func:`claim` inserts (business day, action, key) with ON CONFLICT DO NOTHING, so of two
workers (PostgreSQL) only one gets it; a failed run, or a running one older than ``stale_before`` (its worker
died), is taken again by a conditional UPDATE whose row count says who took it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from settleguard.daycycle.model import Ran
from settleguard.db import tables as t

_WAITING = ("created", "retry_scheduled", "released")  # payouts.model statuses still to be sent


def _insert(conn: Connection):  # type: ignore[no-untyped-def]
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(t.day_cycle_runs)


def claim(conn: Connection, day: date, action: str, key: str, now: datetime, *,
          stale_before: datetime | None = None) -> bool:
    """Take (day, action, key) for this worker: True when it is ours to run now."""
    r = t.day_cycle_runs
    got = conn.execute(_insert(conn).values(business_day=day, action=action, key=key[:64], status="running",
                                            attempts=1, started_at=now)
                       .on_conflict_do_nothing(index_elements=["business_day", "action", "key"])
                       .returning(r.c.id)).first()
    if got is not None:
        return True
    again = r.c.status == "failed"
    if stale_before is not None:
        again = or_(again, and_(r.c.status == "running", r.c.started_at < stale_before))
    took = conn.execute(update(r).where(r.c.business_day == day, r.c.action == action, r.c.key == key[:64], again)
                        .values(status="running", attempts=r.c.attempts + 1, started_at=now, finished_at=None,
                                error=None))
    return took.rowcount == 1


def finish(conn: Connection, day: date, action: str, key: str, now: datetime, summary: Mapping[str, Any]) -> None:
    r = t.day_cycle_runs
    conn.execute(update(r).where(r.c.business_day == day, r.c.action == action, r.c.key == key[:64])
                 .values(status="done", finished_at=now, summary=json.dumps(dict(summary), ensure_ascii=False,
                                                                            default=str)))


def fail(conn: Connection, day: date, action: str, key: str, now: datetime, error: str) -> None:
    r = t.day_cycle_runs
    conn.execute(update(r).where(r.c.business_day == day, r.c.action == action, r.c.key == key[:64])
                 .values(status="failed", finished_at=now, error=error[:2000]))


def ran(conn: Connection, since: date, stale_before: datetime | None = None) -> list[Ran]:
    """What the cycle recorded for business days from ``since``."""
    r = t.day_cycle_runs
    rows = conn.execute(select(r.c.business_day, r.c.action, r.c.key, r.c.status, r.c.started_at, r.c.finished_at)
                        .where(r.c.business_day >= since).order_by(r.c.id))
    return [Ran(d, a, k, s, st, fin, stale=(s == "running" and stale_before is not None and st < stale_before))
            for d, a, k, s, st, fin in rows]


def runs(conn: Connection, first: date, last: date) -> list[dict[str, Any]]:
    """The recorded actions of business days ``first``..``last``, oldest first, summaries decoded."""
    r = t.day_cycle_runs
    out = []
    for row in conn.execute(select(r).where(r.c.business_day >= first, r.c.business_day <= last,
                                            r.c.action != "start").order_by(r.c.id)).mappings():
        d = dict(row)
        d["summary"] = json.loads(d["summary"]) if d["summary"] else {}
        out.append(d)
    return out


def started(conn: Connection) -> date | None:
    r = t.day_cycle_runs
    return conn.execute(select(func.min(r.c.business_day)).where(r.c.action == "start")).scalar_one_or_none()


def mark_started(conn: Connection, today: date, now: datetime) -> None:
    """The day the cycle first ran (files of earlier days are not watched)."""
    r = t.day_cycle_runs
    if conn.execute(select(r.c.id).where(r.c.action == "start").limit(1)).first() is None:
        conn.execute(_insert(conn).values(business_day=today, action="start", key="", status="done", attempts=1,
                                          started_at=now, finished_at=now)
                     .on_conflict_do_nothing(index_elements=["business_day", "action", "key"]))


def settled_days(conn: Connection, since: date) -> frozenset[date]:
    s = t.settlement_runs
    return frozenset(d for (d,) in conn.execute(select(s.c.cycle_date).where(s.c.cycle_date >= since).distinct()))


def first_waiting_value_date(conn: Connection) -> date | None:
    """The earliest value date of a payout still to be sent (created, retry scheduled, released)."""
    p = t.payouts
    return conn.execute(select(func.min(p.c.value_date)).where(p.c.status.in_(_WAITING))).scalar_one_or_none()


def day_alerts(conn: Connection, day: date) -> list[dict[str, Any]]:
    """The cycle's ops alerts of business day ``day`` (dedupe key ``day:<date>:...``)."""
    o = t.ops_alerts
    q = select(o.c.kind, o.c.message, o.c.created_at, o.c.acknowledged_at).where(
        o.c.dedupe_key.like(f"day:{day.isoformat()}:%")).order_by(o.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def payout_counts(conn: Connection, value_date: date) -> dict[str, int]:
    """Payouts of value date ``value_date`` by status."""
    p = t.payouts
    q = select(p.c.status, func.count()).where(p.c.value_date == value_date, p.c.parent_id.is_(None)) \
        .group_by(p.c.status)
    return {str(s): int(n) for s, n in conn.execute(q)}
