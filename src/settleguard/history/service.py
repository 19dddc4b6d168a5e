"""Use cases of the history review: one merchant's days (CLI ``settleguard history``, console
/merchants/{id}/history, portal /m/{id}/history) and the failure trends of all merchants (console /trends).
The engine, the business time zone and today come from the caller."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from settleguard.fees.rates import rates_of
from settleguard.history import repository as repo
from settleguard.history.model import History, HistoryRefused, Trends, build_days, build_trends, check_range


def _window(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(start, time(0), zone), datetime.combine(end + timedelta(days=1), time(0), zone)


def _months(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month + 1


def merchant_history(engine: Engine, start: date, end: date, zone: ZoneInfo, *, merchant_no: str | None = None,
                     merchant_id: int | None = None) -> History:
    """The merchant's days ``start``..``end`` (business days for money, local days for sends and holds)."""
    check_range(start, end)
    since, until = _window(start, end, zone)
    with engine.connect() as conn:
        m = repo.merchant(conn, merchant_no=merchant_no, merchant_id=merchant_id)
        if m is None:
            shown = (merchant_no or str(merchant_id))[:40]
            raise HistoryRefused(f"商户 {shown} 不存在", f"no merchant {shown!r}")
        mid = int(m["id"])
        has_risk = repo.has_risk_tables(conn)
        days = build_days(start, end, zone, txns=repo.daily_transactions(conn, mid, start, end),
                          attempts=repo.merchant_attempts(conn, mid, since, until),
                          holds=repo.merchant_holds(conn, mid, since, until),
                          risk=repo.merchant_risk(conn, mid, start, end) if has_risk else [])
        months = [r.as_dict() for r in rates_of(conn, mid, months=_months(start, end), today=end)]
    return History(mid, str(m["merchant_no"]), str(m["name"]), start, end, days, months, has_risk)


def trends(engine: Engine, start: date, end: date, zone: ZoneInfo, bank_code: str | None = None) -> Trends:
    check_range(start, end)
    since, until = _window(start, end, zone)
    with engine.connect() as conn:
        return build_trends(start, end, zone, repo.all_attempts(conn, since, until, bank_code))
