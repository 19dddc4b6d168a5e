"""SQL for the HTML console and the merchant portal (web/console): dashboard figures, the payout queue
with a bank filter, raw bank answers and a merchant's own payouts. Every figure is one set-based query
(GROUP BY / CASE in the database); nothing loops over payouts in Python."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, select, union_all

from settleguard.cases.model import ACTIVE
from settleguard.db import tables as t
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.model import PayoutStatus

# Ageing of held money (挂账账龄): (label, younger than); the last bucket is everything older.
AGEING: tuple[tuple[str, timedelta | None], ...] = (
    ("0-1d", timedelta(days=1)), ("1-3d", timedelta(days=3)), ("3-7d", timedelta(days=7)), ("7d+", None))


def latest_payout_day(conn: Connection, on_or_before: date) -> date | None:
    """The latest value date on or before ``on_or_before`` that has payouts (the dashboard's default day when
    today has none, e.g. the demo's week seen later); None when there is none. One index probe per status
    (ix_payouts_status_value_date), not a scan of the payouts."""
    p = t.payouts
    per_status = [select(func.max(p.c.value_date).label("day")).where(p.c.status == str(s), p.c.value_date <= on_or_before)
                  for s in PayoutStatus]
    days = union_all(*per_status).subquery("days")
    got = conn.execute(select(func.max(days.c.day))).scalar()
    if got is None or isinstance(got, date):
        return got
    return date.fromisoformat(str(got))  # SQLite: MAX over a UNION is untyped text


def today_by_status(conn: Connection, value_date: date) -> list[dict[str, Any]]:
    """Payouts due on ``value_date`` by status: count and amount (fen)."""
    p = t.payouts
    q = (select(p.c.status, func.count(), func.coalesce(func.sum(p.c.amount_fen), 0))
         .where(p.c.value_date == value_date).group_by(p.c.status).order_by(p.c.status))
    return [{"status": str(st), "count": int(n), "amount_fen": int(fen)} for st, n, fen in conn.execute(q)]


def _finished_sends(since: datetime, until: datetime | None = None) -> Any:
    a = t.payout_attempts
    window = a.c.requested_at >= since if until is None else and_(a.c.requested_at >= since, a.c.requested_at < until)
    return and_(a.c.kind == "send", window, a.c.outcome.in_(["succeeded", "failed"]))


def failures_by_category(conn: Connection, since: datetime,
                         until: datetime | None = None) -> tuple[int, list[dict[str, Any]]]:
    """(finished send attempts from ``since`` to ``until``, [{category, failed}] by failures, most first)."""
    a = t.payout_attempts
    total = int(conn.execute(select(func.count()).select_from(a).where(_finished_sends(since, until))).scalar_one())
    q = (select(a.c.category, func.count().label("failed")).where(_finished_sends(since, until), a.c.outcome == "failed")
         .group_by(a.c.category))
    counts: dict[str, int] = {}
    for r in conn.execute(q):  # one row per category (at most a dozen)
        counts[str(r.category or "unknown")] = counts.get(str(r.category or "unknown"), 0) + int(r.failed)
    return total, [{"category": c, "failed": n} for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def failures_by_bank(conn: Connection, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
    """Finished send attempts from ``since`` to ``until`` per receiving bank: attempts and failures."""
    a, s = t.payout_attempts, t.settlement_accounts
    failed = func.sum(case((a.c.outcome == "failed", 1), else_=0))
    q = (select(func.coalesce(s.c.bank_code, "-").label("bank_code"), func.coalesce(s.c.bank_name, "-").label("bank_name"),
                func.count().label("attempts"), failed.label("failed"))
         .select_from(a.outerjoin(s, s.c.id == a.c.account_id)).where(_finished_sends(since, until))
         .group_by(s.c.bank_code, s.c.bank_name).order_by(failed.desc(), s.c.bank_code))
    return [{"bank_code": str(r.bank_code), "bank_name": str(r.bank_name), "attempts": int(r.attempts),
             "failed": int(r.failed or 0)} for r in conn.execute(q)]


def retries(conn: Connection, since: datetime, until: datetime | None = None) -> tuple[int, int]:
    """(finished retry sends from ``since`` to ``until``, of which succeeded): a retry is a send after the first."""
    a = t.payout_attempts
    q = (select(func.count(), func.sum(case((a.c.outcome == "succeeded", 1), else_=0)))
         .where(_finished_sends(since, until), a.c.attempt_no > 1))
    n, ok = conn.execute(q).one()
    return int(n), int(ok or 0)


def held_ageing(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Held payouts (挂账) by time since they were held (their last status change): every bucket of
    :data:`AGEING`, in order, with count and amount (fen); empty buckets too."""
    p = t.payouts
    whens = [(p.c.updated_at > now - younger, literal(label)) for label, younger in AGEING if younger is not None]
    held = (select(case(*whens, else_=literal(AGEING[-1][0])).label("bucket"), p.c.amount_fen)
            .where(p.c.status == str(PayoutStatus.HELD)).subquery("held"))
    # grouped in an outer query: PostgreSQL does not see a CASE with bound parameters as the same expression twice
    q = select(held.c.bucket, func.count(), func.sum(held.c.amount_fen)).group_by(held.c.bucket)
    got = {str(bucket): (int(n), int(fen or 0)) for bucket, n, fen in conn.execute(q)}
    return [{"bucket": label, "count": got.get(label, (0, 0))[0], "amount_fen": got.get(label, (0, 0))[1]}
            for label, _ in AGEING]


def cases_by_sla(conn: Connection, now: datetime, end_of_today: datetime) -> dict[str, int]:
    """Active cases: {"overdue", "today", "later"} by their SLA due time."""
    c = t.cases
    bucket = case((c.c.sla_due_at < now, literal("overdue")), (c.c.sla_due_at < end_of_today, literal("today")),
                  else_=literal("later"))
    active = select(bucket.label("bucket")).where(c.c.status.in_(sorted(str(s) for s in ACTIVE))).subquery("active")
    q = select(active.c.bucket, func.count().label("n")).group_by(active.c.bucket)
    out = {"overdue": 0, "today": 0, "later": 0}
    out.update({str(r.bucket): int(r.n) for r in conn.execute(q)})
    return out


def banks(conn: Connection) -> list[tuple[str, str]]:
    """(bank code, bank name) of the banks of active cards, for the queue's bank filter."""
    s = t.settlement_accounts
    q = select(s.c.bank_code, func.min(s.c.bank_name)).where(s.c.status == "active").group_by(s.c.bank_code)
    return [(str(code), str(name)) for code, name in conn.execute(q.order_by(s.c.bank_code))]


# --- the payout queue -----------------------------------------------------------------------------


def _queue_filters(q: Any, *, status: str | None, category: str | None, bank_code: str | None,
                   merchant_no: str | None, merchant_id: int | None, statuses: Sequence[str] | None,
                   merchant_search: str | None = None) -> Any:
    p, s = t.payouts, t.settlement_accounts
    q = payout_repo.listing_filters(q, status=status, merchant_no=merchant_no, category=category,
                                    merchant_id=merchant_id, merchant_like=payout_repo.search_pattern(merchant_search))
    if statuses is not None:
        q = q.where(p.c.status.in_(list(statuses)))
    if bank_code:
        q = q.where(s.c.bank_code == bank_code)
    return q


def queue(conn: Connection, *, status: str | None = None, category: str | None = None, bank_code: str | None = None,
          merchant_no: str | None = None, merchant_id: int | None = None, statuses: Sequence[str] | None = None,
          limit: int = 50, offset: int = 0, merchant_search: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    """(total, one page of payouts newest first) with the receiving bank of the card each was held or
    sent on, the latest failed or unclear answer (fail_code, fail_message, fail_rule); ``merchant_search``
    is part of a merchant number or name (payouts.repository.search_pattern)."""
    p, m, s, a = t.payouts, t.merchants, t.settlement_accounts, t.payout_attempts
    joined = p.join(m, m.c.id == p.c.merchant_id).outerjoin(s, s.c.id == p.c.account_id)
    filters: dict[str, Any] = {"status": status, "category": category, "bank_code": bank_code, "merchant_no": merchant_no,
               "merchant_id": merchant_id, "statuses": statuses, "merchant_search": merchant_search}
    total = int(conn.execute(_queue_filters(select(func.count()).select_from(joined), **filters)).scalar_one())
    last_bad = (select(a.c.payout_id, func.max(a.c.id).label("aid"))
                .where(a.c.outcome.in_(["failed", "unknown"])).group_by(a.c.payout_id).subquery("last_bad"))
    q = (select(p.c.id, p.c.merchant_id, m.c.merchant_no, m.c.registered_name, p.c.cycle_date, p.c.value_date,
                p.c.amount_fen, p.c.status, p.c.category, p.c.attempt_count, p.c.last_code, p.c.last_message,
                p.c.updated_at, p.c.parent_id, s.c.bank_code, s.c.bank_name, s.c.pan_masked,
                a.c.code.label("fail_code"), a.c.message.label("fail_message"), a.c.rule_id.label("fail_rule"))
         .select_from(joined.outerjoin(last_bad, last_bad.c.payout_id == p.c.id).outerjoin(a, a.c.id == last_bad.c.aid))
         .order_by(p.c.id.desc()).limit(limit).offset(offset))
    rows = [dict(r._mapping) for r in conn.execute(_queue_filters(q, **filters))] if offset < total else []
    return total, rows


def raw_answers(conn: Connection, payout_id: int) -> dict[int, str]:
    """attempt_no -> the bank's raw answer, for the attempts of one payout that have one."""
    a = t.payout_attempts
    q = select(a.c.attempt_no, a.c.raw_response).where(a.c.payout_id == payout_id, a.c.raw_response.is_not(None))
    return {int(n): str(raw) for n, raw in conn.execute(q)}


def case_owner(conn: Connection, case_id: int) -> int | None:
    got = conn.execute(select(t.cases.c.merchant_id).where(t.cases.c.id == case_id)).scalar()
    return None if got is None else int(got)


def cases_of(conn: Connection, merchant_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """A merchant's latest cases."""
    c = t.cases
    q = (select(c.c.id, c.c.category, c.c.priority, c.c.status, c.c.title, c.c.sla_due_at, c.c.created_at)
         .where(c.c.merchant_id == merchant_id).order_by(c.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in conn.execute(q)]


def held_total(conn: Connection, merchant_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """merchant id -> (held payouts, held amount in fen)."""
    p = t.payouts
    q = (select(p.c.merchant_id, func.count(), func.sum(p.c.amount_fen))
         .where(p.c.status == str(PayoutStatus.HELD), p.c.merchant_id.in_(list(merchant_ids))).group_by(p.c.merchant_id))
    return {int(mid): (int(n), int(fen or 0)) for mid, n, fen in conn.execute(q)}
