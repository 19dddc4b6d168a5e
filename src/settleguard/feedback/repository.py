"""All SQL of guidance feedback: the one insert, the payout a feedback is about, the counts per category and rule,
the latest reasons, and the failures under each rule with the payments that followed them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, select

from settleguard.db import tables as t


def add(conn: Connection, *, payout_id: int, merchant_id: int, category: str, rule_id: str, helpful: bool,
        reason: str, source: str, actor: str, now: datetime) -> int:
    f = t.guidance_feedback
    got = conn.execute(insert(f).values(payout_id=payout_id, merchant_id=merchant_id, category=category,
                                        rule_id=rule_id, helpful=helpful, reason=reason, source=source,
                                        actor=actor[:64], created_at=now).returning(f.c.id))
    return int(got.scalar_one())


def payout(conn: Connection, payout_id: int) -> dict[str, Any] | None:
    p = t.payouts
    row = conn.execute(select(p.c.id, p.c.merchant_id, p.c.status).where(p.c.id == payout_id)).first()
    return None if row is None else dict(row._mapping)


def of_payout(conn: Connection, payout_id: int, limit: int = 20) -> list[dict[str, Any]]:
    f = t.guidance_feedback
    q = select(f).where(f.c.payout_id == payout_id).order_by(f.c.id.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def counts(conn: Connection) -> list[tuple[str, str, int, int]]:
    """(category, rule, feedback, helpful) per category and rule."""
    f = t.guidance_feedback
    helpful = func.sum(case((f.c.helpful.is_(True), 1), else_=0))
    q = select(f.c.category, f.c.rule_id, func.count(), helpful).group_by(f.c.category, f.c.rule_id)
    return [(str(c), str(r), int(n), int(h or 0)) for c, r, n, h in conn.execute(q)]


def latest_reasons(conn: Connection, per_rule: int = 3, scan: int = 2000) -> dict[tuple[str, str], list[str]]:
    """The newest non-empty reasons per category and rule (at most ``per_rule`` each, of the newest ``scan``)."""
    f = t.guidance_feedback
    q = (select(f.c.category, f.c.rule_id, f.c.helpful, f.c.reason).where(f.c.reason != "")
         .order_by(f.c.id.desc()).limit(scan))
    out: dict[tuple[str, str], list[str]] = {}
    for c, r, helpful, reason in conn.execute(q):
        kept = out.setdefault((str(c), str(r)), [])
        if len(kept) < per_rule:
            kept.append(("有用 helpful: " if helpful else "没用 not helpful: ") + str(reason))
    return out


def _root() -> Any:
    p = t.payouts
    return func.coalesce(p.c.parent_id, p.c.id)


def first_failures(conn: Connection) -> list[tuple[int, str, str, datetime]]:
    """(payout, category, rule, first failure under the rule) of every payout that failed under a rule; a split
    part counts for its parent."""
    a, p = t.payout_attempts, t.payouts
    at = func.min(func.coalesce(a.c.responded_at, a.c.requested_at))
    root = _root()
    q = (select(root.label("root"), a.c.category, a.c.rule_id, at.label("at"))
         .select_from(a.join(p, p.c.id == a.c.payout_id))
         .where(a.c.outcome == "failed", a.c.rule_id.is_not(None), a.c.category.is_not(None))
         .group_by(root, a.c.category, a.c.rule_id))
    return [(int(r.root), str(r.category), str(r.rule_id), _aware(r.at)) for r in conn.execute(q)]


def payments(conn: Connection) -> dict[int, list[datetime]]:
    """payout -> when it (or a split part) was paid, for the payouts that ever failed under a rule."""
    a, p = t.payout_attempts, t.payouts
    failed_roots = (select(_root()).select_from(a.join(p, p.c.id == a.c.payout_id))
                    .where(a.c.outcome == "failed", a.c.rule_id.is_not(None)).distinct().scalar_subquery())
    root = _root()
    q = (select(root.label("root"), func.coalesce(a.c.responded_at, a.c.requested_at).label("at"))
         .select_from(a.join(p, p.c.id == a.c.payout_id))
         .where(a.c.outcome == "succeeded", root.in_(failed_roots)))
    out: dict[int, list[datetime]] = {}
    for r in conn.execute(q):
        out.setdefault(int(r.root), []).append(_aware(r.at))
    return out


def _aware(value: Any) -> datetime:
    """MIN over a UTCDateTime comes back untyped on SQLite (text) or aware on PostgreSQL: an aware UTC time."""
    from datetime import UTC

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
