"""SQL for cases, their payouts, contacts and notes, and the reads the automatic scan needs.
Every status change is checked against the case transition table in the UPDATE itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, Select, and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from settleguard.cases.model import ACTIVE, CaseStatus, sources
from settleguard.db import tables as t


def _insert_ignore(conn: Connection, table: Any) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def merchant_id(conn: Connection, merchant_no: str) -> int | None:
    m = t.merchants
    got = conn.execute(select(m.c.id).where(m.c.merchant_no == merchant_no)).scalar_one_or_none()
    return None if got is None else int(got)


def insert_case(conn: Connection, row: dict[str, Any]) -> int | None:
    """Insert a case; with a ``dedupe_key`` already used, insert nothing and return None."""
    stmt = _insert_ignore(conn, t.cases).values(**row)
    if row.get("dedupe_key") is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    got = conn.execute(stmt.returning(t.cases.c.id)).scalar_one_or_none()
    return None if got is None else int(got)


def link_payouts(conn: Connection, case_id: int, payout_ids: Sequence[int]) -> None:
    if not payout_ids:
        return
    stmt = _insert_ignore(conn, t.case_payouts).on_conflict_do_nothing(index_elements=["case_id", "payout_id"])
    conn.execute(stmt, [{"case_id": case_id, "payout_id": p} for p in sorted(set(payout_ids))])


def existing_payouts(conn: Connection, payout_ids: Sequence[int]) -> dict[int, int]:
    """payout id -> merchant id, for the ids that exist."""
    p = t.payouts
    return {int(i): int(m) for i, m in conn.execute(
        select(p.c.id, p.c.merchant_id).where(p.c.id.in_(sorted(set(payout_ids)))))}


class CaseRow(TypedDict):
    """One case (工单) as stored, with its merchant's number and name."""

    id: int
    merchant_id: int
    category: str
    priority: str
    status: str
    title: str
    source: str
    dedupe_key: str | None
    assignee: str | None
    sla_due_at: datetime
    resolution: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    merchant_no: str
    registered_name: str


def get(conn: Connection, case_id: int, *, lock: bool = False) -> CaseRow | None:
    c, m = t.cases, t.merchants
    q = (select(c, m.c.merchant_no, m.c.registered_name).select_from(c.join(m, m.c.id == c.c.merchant_id))
         .where(c.c.id == case_id))
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update(of=c)
    r = conn.execute(q).first()
    return None if r is None else cast(CaseRow, dict(r._mapping))


def update_case(conn: Connection, case_id: int, now: datetime, *, target: CaseStatus | None = None,
                **values: Any) -> bool:
    """Update a case; with ``target``, only if its status may move there (False otherwise)."""
    c = t.cases
    q = update(c).where(c.c.id == case_id)
    if target is not None:
        q = q.where(c.c.status.in_(sorted(str(s) for s in sources(target)))).values(status=str(target))
    res = conn.execute(q.values(updated_at=now, **values))
    return bool(res.rowcount == 1)


def add_contact(conn: Connection, row: dict[str, Any]) -> int:
    return int(conn.execute(insert(t.case_contacts).returning(t.case_contacts.c.id), [row]).scalar_one())


def add_note(conn: Connection, row: dict[str, Any]) -> int:
    return int(conn.execute(insert(t.case_notes).returning(t.case_notes.c.id), [row]).scalar_one())


def _listing_filters(q: Select[Any], *, status: str | None, assignee: str | None, overdue_at: datetime | None,
                     merchant_no: str | None, merchant_id: int | None) -> Select[Any]:
    c, m = t.cases, t.merchants
    if status:
        q = q.where(c.c.status == status)
    if assignee:
        q = q.where(c.c.assignee == assignee)
    if merchant_no:
        q = q.where(m.c.merchant_no == merchant_no)
    if merchant_id is not None:
        q = q.where(c.c.merchant_id == merchant_id)
    if overdue_at is not None:
        q = q.where(c.c.status.in_(sorted(str(s) for s in ACTIVE)), c.c.sla_due_at < overdue_at)
    return q


def listing(conn: Connection, *, status: str | None = None, assignee: str | None = None,
            overdue_at: datetime | None = None, merchant_no: str | None = None, merchant_id: int | None = None,
            limit: int = 50, after_id: int = 0, offset: int = 0) -> list[dict[str, Any]]:
    """Cases for people, by id, paginated by ``after_id`` (or ``offset``); ``overdue_at``: only active cases
    due before it."""
    c, m, cp = t.cases, t.merchants, t.case_payouts
    n = select(func.count()).where(cp.c.case_id == c.c.id).scalar_subquery().label("payouts")
    q = (select(c.c.id, c.c.merchant_id, m.c.merchant_no, m.c.registered_name, c.c.category, c.c.priority,
                c.c.status, c.c.title, c.c.source, c.c.assignee, c.c.sla_due_at, c.c.created_at, c.c.updated_at,
                c.c.resolved_at, n)
         .select_from(c.join(m, m.c.id == c.c.merchant_id)).where(c.c.id > after_id).order_by(c.c.id).limit(limit))
    q = _listing_filters(q, status=status, assignee=assignee, overdue_at=overdue_at, merchant_no=merchant_no,
                         merchant_id=merchant_id)
    return [dict(r._mapping) for r in conn.execute(q.offset(offset) if offset else q)]


def count_listing(conn: Connection, *, status: str | None = None, assignee: str | None = None,
                  overdue_at: datetime | None = None, merchant_no: str | None = None,
                  merchant_id: int | None = None) -> int:
    """How many cases :func:`listing` pages through with these filters."""
    c, m = t.cases, t.merchants
    q = select(func.count()).select_from(c.join(m, m.c.id == c.c.merchant_id))
    q = _listing_filters(q, status=status, assignee=assignee, overdue_at=overdue_at, merchant_no=merchant_no,
                         merchant_id=merchant_id)
    return int(conn.execute(q).scalar_one())


def owner(conn: Connection, case_id: int) -> int | None:
    """The merchant id of a case (None: no such case)."""
    got = conn.execute(select(t.cases.c.merchant_id).where(t.cases.c.id == case_id)).scalar_one_or_none()
    return None if got is None else int(got)


def counts_by_status(conn: Connection) -> dict[str, int]:
    """status -> number of cases."""
    c = t.cases
    return {str(s): int(n) for s, n in conn.execute(select(c.c.status, func.count()).group_by(c.c.status))}


def case_payouts(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    """The linked payouts with their latest failed or unclear attempt (code, message, rule), by payout id."""
    cp, p, a = t.case_payouts, t.payouts, t.payout_attempts
    last_bad = (select(a.c.payout_id, func.max(a.c.id).label("aid"))
                .where(a.c.outcome.in_(["failed", "unknown"])).group_by(a.c.payout_id).subquery("last_bad"))
    q = (select(p.c.id, p.c.merchant_id, p.c.settlement_id, p.c.cycle_date, p.c.value_date, p.c.amount_fen,
                p.c.status, p.c.category, p.c.idempotency_key, p.c.instruction_no, p.c.attempt_count,
                p.c.last_code, p.c.last_message, a.c.code.label("fail_code"), a.c.message.label("fail_message"),
                a.c.rule_id.label("fail_rule"))
         .select_from(cp.join(p, p.c.id == cp.c.payout_id).outerjoin(last_bad, last_bad.c.payout_id == p.c.id)
                      .outerjoin(a, a.c.id == last_bad.c.aid))
         .where(cp.c.case_id == case_id).order_by(p.c.id))
    return [dict(r._mapping) for r in conn.execute(q)]


def contacts(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    k = t.case_contacts
    return [dict(r._mapping) for r in conn.execute(
        select(k.c.id, k.c.party, k.c.method, k.c.contact_name, k.c.at, k.c.summary, k.c.recorded_by,
               k.c.recorded_at).where(k.c.case_id == case_id).order_by(k.c.at, k.c.id))]


def notes(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    n = t.case_notes
    return [dict(r._mapping) for r in conn.execute(
        select(n.c.id, n.c.author, n.c.body, n.c.created_at).where(n.c.case_id == case_id).order_by(n.c.id))]


# --- reads for the automatic scan -------------------------------------------------------

def payout_events_after(conn: Connection, after_id: int, to_statuses: Sequence[str], limit: int,
                        upto: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """Payout events after ``after_id`` (and at most ``upto``, the committed horizon) into ``to_statuses``
    (at most ``limit``), with their payout's merchant and current category; and how far the read got
    (the cursor to store next)."""
    ev, p = t.payout_events, t.payouts
    bound = select(func.max(ev.c.id)).where(ev.c.id > after_id)
    if upto is not None:
        bound = bound.where(ev.c.id <= upto)
    top = conn.execute(bound).scalar_one_or_none()
    if top is None:
        return [], after_id
    rows = [dict(r._mapping) for r in conn.execute(
        select(ev.c.id, ev.c.payout_id, ev.c.to_status, ev.c.reason, ev.c.created_at, p.c.merchant_id,
               p.c.category, p.c.instruction_no)
        .select_from(ev.join(p, p.c.id == ev.c.payout_id))
        .where(ev.c.id > after_id, ev.c.id <= top, ev.c.to_status.in_(list(to_statuses)))
        .order_by(ev.c.id).limit(limit))]
    return rows, (int(rows[-1]["id"]) if len(rows) == limit else int(top))


def failed_attempts(conn: Connection, merchant_id: int, since: datetime) -> list[tuple[int, int]]:
    """(attempt id, payout id) of the merchant's failed attempts answered at or after ``since``, by id."""
    a, p = t.payout_attempts, t.payouts
    at = func.coalesce(a.c.responded_at, a.c.requested_at)
    return [(int(i), int(pid)) for i, pid in conn.execute(
        select(a.c.id, a.c.payout_id).select_from(a.join(p, p.c.id == a.c.payout_id))
        .where(p.c.merchant_id == merchant_id, a.c.outcome == "failed", at >= since).order_by(a.c.id))]


def latest_case(conn: Connection, merchant_id: int, category: str) -> dict[str, Any] | None:
    """The merchant's most recent case of ``category`` (status and created time)."""
    c = t.cases
    r = conn.execute(select(c.c.id, c.c.status, c.c.created_at)
                     .where(and_(c.c.merchant_id == merchant_id, c.c.category == category))
                     .order_by(c.c.id.desc()).limit(1)).first()
    return None if r is None else dict(r._mapping)
