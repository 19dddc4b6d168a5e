"""All of risk's SQL: the day's counts per merchant (one GROUP BY over the day's clustered key range, in the
database), the stored features, baselines, scores, evidence and holds.

The per-transaction predicates are those of risk.model (is_round, is_night, is_under_limit, mcc_max_fen),
written as SQL that SQLite and PostgreSQL read alike (integer arithmetic on fen and on UTC microseconds; the local
hour is ``(occurred_at + offset) / 3600e6 % 24`` with the business zone's UTC offset of that day).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, delete, func, insert, literal, select, text, update

from settleguard.db import tables as t
from settleguard.risk.model import FeatureParams
from settleguard.settlement.model import CardType, TxnKind

SALE, CREDIT = int(TxnKind.SALE), int(CardType.CREDIT)
VOIDS = (int(TxnKind.VOID), int(TxnKind.REVERSAL))
REFUND = int(TxnKind.REFUND)
_BATCH = 500
I64 = npt.NDArray[np.int64]


def _round_sql(p: FeatureParams) -> str:
    ends = ", ".join(str(int(e)) for e in sorted(set(p.round_endings_yuan))) or "-1"
    return (f"(amount_fen % {int(p.round_multiple_yuan) * 100} = 0 OR "
            f"(amount_fen % 100 = 0 AND (amount_fen / 100) % 1000 IN ({ends})))")


def _night_sql(p: FeatureParams) -> str:
    hour = "(((occurred_at + :offset_us) / 3600000000) % 24)"
    a, b = int(p.night_start_hour), int(p.night_end_hour)
    if a <= b:
        return f"({hour} >= {a} AND {hour} < {b})"
    return f"({hour} >= {a} OR {hour} < {b})"


def _under_sql(p: FeatureParams) -> str:
    bands = [f"(amount_fen >= {int(lo)} AND amount_fen < {int(hi)})" for lo, hi in p.limit_bands_fen()]
    return "(" + (" OR ".join(bands) or "1 = 0") + ")"


@dataclass
class DayCounts:
    """The day's counts per merchant (numpy columns, one row per merchant with any transaction)."""

    merchant_id: I64
    sale_count: I64
    sale_fen: I64
    max_sale_fen: I64
    round_count: I64
    night_count: I64
    credit_count: I64
    tokened: I64  # sales with a card token
    distinct_cards: I64
    under_limit_count: I64
    over: I64  # (merchants, thresholds): sales above each of FeatureParams.mcc_thresholds_fen()
    void_count: I64
    refund_count: I64
    rows: int


def day_counts(conn: Connection, day: date, p: FeatureParams, offset_us: int) -> DayCounts:
    """One GROUP BY merchant over the day's transactions (the clustered key range of ``day``)."""
    sale = f"kind = {SALE}"

    def n(cond: str) -> str:  # a count with FILTER: about a quarter cheaper than SUM(CASE ...) on SQLite
        return f"COUNT(*) FILTER (WHERE {sale} AND {cond})"

    overs = ", ".join(n(f"amount_fen > {int(th)}") for th in p.mcc_thresholds_fen())
    sql = (f"SELECT merchant_id, COUNT(*) FILTER (WHERE {sale}), "
           f"CAST(COALESCE(SUM(amount_fen) FILTER (WHERE {sale}), 0) AS BIGINT), "
           f"COALESCE(MAX(amount_fen) FILTER (WHERE {sale}), 0), "
           f"{n(_round_sql(p))}, {n(_night_sql(p))}, {n(f'card_type = {CREDIT}')}, "
           f"COUNT(card_token) FILTER (WHERE {sale}), COUNT(DISTINCT card_token) FILTER (WHERE {sale}), "
           f"{n(_under_sql(p))}, COUNT(*) FILTER (WHERE kind IN ({VOIDS[0]}, {VOIDS[1]})), "
           f"COUNT(*) FILTER (WHERE kind = {REFUND}), COUNT(*), {overs} "
           "FROM transactions WHERE cycle_date = :day GROUP BY merchant_id ORDER BY merchant_id")
    rows = conn.execute(text(sql), {"day": day, "offset_us": offset_us}).all()
    a = np.array(rows, dtype=np.int64).reshape(len(rows), 13 + len(p.mcc_thresholds_fen()))
    return DayCounts(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6], a[:, 7], a[:, 8], a[:, 9],
                     a[:, 13:], a[:, 10], a[:, 11], int(a[:, 12].sum()))


def _batches(ids: Sequence[int]) -> Iterator[list[int]]:
    ids = sorted(set(ids))
    for i in range(0, len(ids), _BATCH):
        yield ids[i:i + _BATCH]


def card_max(conn: Connection, day: date, merchant_ids: Sequence[int]) -> dict[int, int]:
    """merchant id -> the most sales on one card token that day (only the merchants asked)."""
    out: dict[int, int] = {}
    x = t.transactions
    for ids in _batches(merchant_ids):
        per_card = (select(x.c.merchant_id, func.count().label("n"))
                    .where(x.c.cycle_date == day, x.c.merchant_id.in_(ids), x.c.kind == SALE,
                           x.c.card_token.is_not(None))
                    .group_by(x.c.merchant_id, x.c.card_token).subquery())
        out.update({int(m): int(n) for m, n in conn.execute(
            select(per_card.c.merchant_id, func.max(per_card.c.n)).group_by(per_card.c.merchant_id))})
    return out


def cancellations(conn: Connection, day: date) -> list[tuple[int, int, int, bool]]:
    """(merchant id, kind, amount, a same-day sale of the same amount exists) of every void, reversal and refund
    of the day."""
    sql = (f"SELECT v.merchant_id, v.kind, v.amount_fen, CASE WHEN EXISTS (SELECT 1 FROM transactions s "
           f"WHERE s.cycle_date = v.cycle_date AND s.merchant_id = v.merchant_id AND s.kind = {SALE} "
           f"AND s.amount_fen = v.amount_fen) THEN 1 ELSE 0 END FROM transactions v "
           f"WHERE v.cycle_date = :day AND v.kind IN ({VOIDS[0]}, {VOIDS[1]}, {REFUND})")
    return [(int(m), int(k), int(a), bool(s)) for m, k, a, s in conn.execute(text(sql), {"day": day})]


def window_max_sale(conn: Connection, lo: date, day: date, merchant_ids: Sequence[int]) -> dict[int, int]:
    """merchant id -> its largest single sale on the stored days in [lo, day)."""
    f = t.risk_features
    out: dict[int, int] = {}
    for ids in _batches(merchant_ids):
        out.update({int(m): int(v) for m, v in conn.execute(
            select(f.c.merchant_id, func.max(f.c.max_sale_fen))
            .where(f.c.cycle_date >= lo, f.c.cycle_date < day, f.c.merchant_id.in_(ids))
            .group_by(f.c.merchant_id))})
    return out


def mccs(conn: Connection) -> dict[int, str]:
    return {int(i): str(m) for i, m in conn.execute(select(t.merchants.c.id, t.merchants.c.mcc))}


def replace_day(conn: Connection, day: date, rows: list[dict[str, Any]], params_digest: str, txn_rows: int,
                now: datetime) -> None:
    """The day's features, replacing what was stored for it."""
    conn.execute(delete(t.risk_features).where(t.risk_features.c.cycle_date == day))
    for i in range(0, len(rows), 20_000):
        conn.execute(insert(t.risk_features), rows[i:i + 20_000])
    conn.execute(delete(t.risk_days).where(t.risk_days.c.cycle_date == day))
    conn.execute(insert(t.risk_days).values(cycle_date=day, merchants=len(rows), txn_rows=txn_rows,
                                            params_digest=params_digest, computed_at=now))


def computed_days(conn: Connection, lo: date, hi: date) -> dict[date, str]:
    """day -> params digest of the days in [lo, hi] whose features are stored."""
    d = t.risk_days
    return {r.cycle_date: r.params_digest for r in conn.execute(
        select(d.c.cycle_date, d.c.params_digest).where(d.c.cycle_date >= lo, d.c.cycle_date <= hi))}


def has_transactions(conn: Connection, day: date) -> bool:
    x = t.transactions
    return conn.execute(select(x.c.merchant_id).where(x.c.cycle_date == day).limit(1)).first() is not None


def _raw(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows through the driver's cursor (no row objects: the baseline is millions of rows)."""
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        cur.execute(sql, tuple(params))
        return list(cur.fetchall())
    finally:
        cur.close()


def _day_param(conn: Connection, day: date) -> Any:
    return day.isoformat() if conn.dialect.name == "sqlite" else day


@dataclass
class Window:
    """The stored features of the days in [lo, day): one row per (merchant, day with transactions); ``day``
    is the day number (days since 1970-01-01)."""

    merchant_id: I64
    sale_count: I64
    sale_fen: I64
    day: I64 | None = None


def day_number(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def window(conn: Connection, lo: date, day: date) -> Window:
    num = ("CAST(julianday(cycle_date) - 2440587.5 AS INTEGER)" if conn.dialect.name == "sqlite"
           else "(cycle_date - DATE '1970-01-01')")
    rows = _raw(conn, f"SELECT merchant_id, sale_count, sale_fen, {num} FROM risk_features WHERE cycle_date >= ? "
                      "AND cycle_date < ?", [_day_param(conn, lo), _day_param(conn, day)])
    a = np.array(rows, dtype=np.int64).reshape(len(rows), 4)
    return Window(a[:, 0], a[:, 1], a[:, 2], a[:, 3])


def last_active(conn: Connection, day: date, merchant_ids: Sequence[int]) -> dict[int, date]:
    """merchant id -> its last stored day with sales before ``day``."""
    f = t.risk_features
    out: dict[int, date] = {}
    for ids in _batches(merchant_ids):
        out.update({int(m): d for m, d in conn.execute(
            select(f.c.merchant_id, func.max(f.c.cycle_date))
            .where(f.c.merchant_id.in_(ids), f.c.cycle_date < day, f.c.sale_count > 0)
            .group_by(f.c.merchant_id))})
    return out


# --- scores and evidence ------------------------------------------------------------------------------------

def replace_scores(conn: Connection, day: date, rows: list[dict[str, Any]], flagged: int, now: datetime) -> None:
    """The day's flagged merchants, replacing an earlier scan's (their case ids are kept by the caller)."""
    conn.execute(delete(t.risk_scores).where(t.risk_scores.c.cycle_date == day))
    conn.execute(delete(t.risk_evidence).where(t.risk_evidence.c.cycle_date == day))
    if rows:
        conn.execute(insert(t.risk_scores), rows)
    conn.execute(update(t.risk_days).where(t.risk_days.c.cycle_date == day).values(scanned_at=now, flagged=flagged))


def case_ids(conn: Connection, day: date) -> dict[int, int]:
    s = t.risk_scores
    return {int(m): int(c) for m, c in conn.execute(
        select(s.c.merchant_id, s.c.case_id).where(s.c.cycle_date == day, s.c.case_id.is_not(None)))}


def set_case(conn: Connection, day: date, merchant_id: int, case_id: int) -> None:
    s = t.risk_scores
    conn.execute(update(s).where(s.c.cycle_date == day, s.c.merchant_id == merchant_id).values(case_id=case_id))


def add_evidence(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(t.risk_evidence), rows)


def merchant_day(conn: Connection, day: date, merchant_id: int) -> list[dict[str, Any]]:
    """The merchant's transactions of the day (for evidence), in time order."""
    x = t.transactions
    return [dict(r._mapping) for r in conn.execute(
        select(x.c.external_ref, x.c.kind, x.c.card_type, x.c.amount_fen, x.c.card_token,
               x.c.occurred_at.label("occurred_us"))
        .where(x.c.cycle_date == day, x.c.merchant_id == merchant_id))]


def merchant_day_raw(conn: Connection, day: date, merchant_id: int) -> list[tuple[Any, ...]]:
    """(external_ref, kind, card_type, amount_fen, card_token, occurred_at µs) of the merchant's day."""
    return _raw(conn, "SELECT external_ref, kind, card_type, amount_fen, card_token, occurred_at FROM transactions "
                      "WHERE cycle_date = ? AND merchant_id = ?", [_day_param(conn, day), merchant_id])


def scores(conn: Connection, day: date | None = None, merchant_id: int | None = None,
           min_score: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Flagged merchants (highest score first; latest day first)."""
    s, m = t.risk_scores, t.merchants
    q = (select(s, m.c.merchant_no, m.c.registered_name, m.c.mcc).select_from(s.join(m, m.c.id == s.c.merchant_id))
         .where(s.c.score >= min_score))
    if day is not None:
        q = q.where(s.c.cycle_date == day)
    if merchant_id is not None:
        q = q.where(s.c.merchant_id == merchant_id)
    q = q.order_by(s.c.cycle_date.desc(), s.c.score.desc(), m.c.merchant_no).limit(limit)
    out = []
    for r in conn.execute(q):
        d = dict(r._mapping)
        d["details"] = json.loads(d["details"])
        out.append(d)
    return out


def latest_scanned_day(conn: Connection) -> date | None:
    d = t.risk_days
    got = conn.execute(select(func.max(d.c.cycle_date)).where(d.c.scanned_at.is_not(None))).scalar()
    return got if isinstance(got, date) else (date.fromisoformat(got) if got else None)


def evidence(conn: Connection, day: date, merchant_id: int) -> dict[str, list[str]]:
    e = t.risk_evidence
    out: dict[str, list[str]] = {}
    for rule, ref in conn.execute(select(e.c.rule_id, e.c.external_ref)
                                  .where(e.c.cycle_date == day, e.c.merchant_id == merchant_id)
                                  .order_by(e.c.rule_id, e.c.external_ref)):
        out.setdefault(str(rule), []).append(str(ref))
    return out


def features(conn: Connection, merchant_id: int, lo: date, hi: date) -> list[dict[str, Any]]:
    f = t.risk_features
    return [dict(r._mapping) for r in conn.execute(
        select(f).where(f.c.merchant_id == merchant_id, f.c.cycle_date >= lo, f.c.cycle_date <= hi)
        .order_by(f.c.cycle_date))]


# --- holds --------------------------------------------------------------------------------------------------

def active_hold(conn: Connection, merchant_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    h = t.risk_holds
    q = select(h).where(h.c.merchant_id == merchant_id, h.c.released_at.is_(None))
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    r = conn.execute(q).first()
    return None if r is None else dict(r._mapping)


def place_hold(conn: Connection, merchant_id: int, reason: str, by: str, now: datetime) -> int:
    got = conn.execute(insert(t.risk_holds).values(merchant_id=merchant_id, reason=reason[:256], placed_by=by[:64],
                                                   placed_at=now).returning(t.risk_holds.c.id)).scalar_one()
    return int(got)


def end_hold(conn: Connection, hold_id: int, reason: str, by: str, now: datetime) -> bool:
    h = t.risk_holds
    done = conn.execute(update(h).where(h.c.id == hold_id, h.c.released_at.is_(None))
                        .values(released_by=by[:64], released_at=now, release_reason=reason[:256]))
    return bool(done.rowcount)


def holds(conn: Connection, merchant_id: int) -> list[dict[str, Any]]:
    h = t.risk_holds
    return [dict(r._mapping) for r in conn.execute(select(h).where(h.c.merchant_id == merchant_id)
                                                   .order_by(h.c.id.desc()))]


def day_after(day: date, n: int) -> date:
    return day + timedelta(days=n)


# --- the risk queue (console /risk, API /api/v1/risk) and the worker's scan --------------------------------------

def _rule_filter(rule: str) -> Any:
    """risk_scores rows whose comma-separated ``rules`` hold ``rule`` (LIKE with ``_`` and ``%`` escaped)."""
    s = t.risk_scores
    esc = rule.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return (literal(",") + s.c.rules + literal(",")).like(f"%,{esc},%", escape="\\")


def alerts(conn: Connection, day: date, *, min_score: int = 0, rule: str | None = None, limit: int = 50,
           offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(how many, one page of) the day's flagged merchants with at least ``min_score`` (and ``rule`` fired),
    highest score first, then merchant number."""
    s, m = t.risk_scores, t.merchants
    cond = [s.c.cycle_date == day, s.c.score >= min_score]
    if rule:
        cond.append(_rule_filter(rule))
    total = int(conn.execute(select(func.count()).select_from(s).where(*cond)).scalar_one())
    if offset >= total:
        return total, []
    q = (select(s, m.c.merchant_no, m.c.registered_name, m.c.mcc).select_from(s.join(m, m.c.id == s.c.merchant_id))
         .where(*cond).order_by(s.c.score.desc(), m.c.merchant_no).limit(limit).offset(offset))
    out = []
    for r in conn.execute(q):
        d = dict(r._mapping)
        d["details"] = json.loads(d["details"])
        out.append(d)
    return total, out


def rules_fired(conn: Connection, day: date) -> list[str]:
    """The distinct rule ids fired on ``day`` (the queue's rule filter)."""
    s = t.risk_scores
    seen: set[str] = set()
    for (rules,) in conn.execute(select(s.c.rules).where(s.c.cycle_date == day).distinct()):
        seen |= {x for x in str(rules).split(",") if x}
    return sorted(seen)


def scanned_days(conn: Connection, limit: int = 60) -> list[date]:
    """The latest scanned days, newest first (the queue's day picker)."""
    d = t.risk_days
    out = []
    for (v,) in conn.execute(select(d.c.cycle_date).where(d.c.scanned_at.is_not(None))
                             .order_by(d.c.cycle_date.desc()).limit(limit)):
        out.append(v if isinstance(v, date) else date.fromisoformat(str(v)))
    return out


def active_holds(conn: Connection, merchant_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """merchant id -> its active risk hold, for the merchants asked."""
    h = t.risk_holds
    out: dict[int, dict[str, Any]] = {}
    for ids in _batches(merchant_ids):
        for r in conn.execute(select(h).where(h.c.merchant_id.in_(ids), h.c.released_at.is_(None))):
            out[int(r.merchant_id)] = dict(r._mapping)
    return out


def evidence_rows(conn: Connection, day: date, merchant_id: int) -> list[dict[str, Any]]:
    """The transactions behind each fired rule of the merchant's day: rule id, external ref, kind, card type,
    amount, card token and time (UTC µs), by rule then time."""
    e, x = t.risk_evidence, t.transactions
    q = (select(e.c.rule_id, e.c.external_ref, x.c.kind, x.c.card_type, x.c.amount_fen, x.c.card_token,
                x.c.occurred_at)
         .select_from(e.outerjoin(x, (x.c.cycle_date == e.c.cycle_date) & (x.c.merchant_id == e.c.merchant_id)
                                  & (x.c.external_ref == e.c.external_ref)))
         .where(e.c.cycle_date == day, e.c.merchant_id == merchant_id)
         .order_by(e.c.rule_id, x.c.occurred_at, e.c.external_ref))
    return [dict(r._mapping) for r in conn.execute(q)]


def latest_transaction_day(conn: Connection, lo: date, hi: date) -> date | None:
    """The latest business day in [lo, hi] with imported transactions (the transactions' key leads with it)."""
    x = t.transactions
    got = conn.execute(select(func.max(x.c.cycle_date)).where(x.c.cycle_date >= lo, x.c.cycle_date <= hi)).scalar()
    return got if isinstance(got, date) or got is None else date.fromisoformat(str(got))


def scanned_at(conn: Connection, day: date) -> datetime | None:
    d = t.risk_days
    got = conn.execute(select(d.c.scanned_at).where(d.c.cycle_date == day)).scalar()
    return got if isinstance(got, datetime) else None


def last_transaction_import(conn: Connection) -> datetime | None:
    """When the latest transaction file was imported."""
    i = t.imports
    got = conn.execute(select(func.max(i.c.imported_at)).where(i.c.kind == "transactions")).scalar()
    return got if isinstance(got, datetime) else None


# pg_try_advisory_lock key of the worker's risk scan ("SGRISK" as a number): one worker scans at a time
SCAN_LOCK_KEY = 0x534752495343


def try_scan_lock(conn: Connection) -> bool:
    """Take the risk scan's session lock on PostgreSQL without waiting (False: another worker scans now). SQLite
    runs one worker at a time (worker.py's lock): always True there."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SCAN_LOCK_KEY}).scalar())


def release_scan_lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCAN_LOCK_KEY})
