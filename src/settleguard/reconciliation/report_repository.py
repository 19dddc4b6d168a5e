"""Read-only SQL behind the reconciliation API and console pages (web/api_recon.py, web/console/routes_recon.py):
a day's summary, the break queue with filters and paging, one break with both sides, the runs.

中文：对账报表查询（只读）。一天的对账概况（已匹配笔数与金额、按类型与状态的差错、当日对账单的余额差异）、
差错队列（筛选、分页）、差错详情（银行一侧与我方一侧）与对账运行记录。

A break's *date* is the bank line's booking date, or, for a break without a bank line (``ledger_only``), the date
of the run that found it. Every figure is one set-based query; texts that came from the bank leave here with card numbers masked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection, Select, case, func, select

from settleguard.db import tables as t
from settleguard.labels import RECON_BREAK_STATUS, RECON_BREAK_TYPE, pair
from settleguard.masking import mask_card_numbers

MAX_LINES = 50  # bank lines shown on one break's page
MAX_PAYOUTS = 50  # payouts shown on one break's page (a batch break names many)


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))  # SQLite: MAX / COALESCE over dates is untyped text


def masked(value: Any) -> Any:
    """``value`` with every text's card numbers masked (dicts and lists walked)."""
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def _break_day() -> Any:
    return func.coalesce(t.recon_breaks.c.booking_date, t.recon_runs.c.run_date)


def latest_day(conn: Connection) -> date | None:
    """The latest date with statement data: the latest closing date, else the latest booking date; None."""
    s, bl = t.bank_statements, t.bank_lines
    got = conn.execute(select(func.max(s.c.closing_date))).scalar()
    if got is None:
        got = conn.execute(select(func.max(bl.c.booking_date))).scalar()
    return _as_date(got)


def matched_on(conn: Connection, day: date) -> tuple[int, int]:
    """(bank lines booked on ``day`` matched to a payout, their amount in fen)."""
    bl, m = t.bank_lines, t.recon_matches
    q = (select(func.count(), func.coalesce(func.sum(bl.c.amount_fen), 0))
         .where(bl.c.booking_date == day, bl.c.id.in_(select(m.c.bank_line_id))))
    n, fen = conn.execute(q).one()
    return int(n), int(fen)


def booked_on(conn: Connection, day: date) -> tuple[int, int]:
    """(booked bank lines of ``day``, their amount in fen)."""
    bl = t.bank_lines
    q = select(func.count(), func.coalesce(func.sum(bl.c.amount_fen), 0)).where(
        bl.c.booking_date == day, bl.c.status == "BOOK")
    n, fen = conn.execute(q).one()
    return int(n), int(fen)


def breaks_by_type_status(conn: Connection, day: date | None = None) -> list[dict[str, Any]]:
    """[{type, status, count, amount_fen}] of the breaks dated ``day`` (every break when None)."""
    b, r = t.recon_breaks, t.recon_runs
    q = (select(b.c.type, b.c.status, func.count().label("n"), func.coalesce(func.sum(b.c.amount_fen), 0).label("fen"))
         .select_from(b.outerjoin(r, r.c.id == b.c.run_id)).group_by(b.c.type, b.c.status)
         .order_by(b.c.type, b.c.status))
    if day is not None:
        q = q.where(_break_day() == day)
    return [{"type": str(x.type), "status": str(x.status), "count": int(x.n), "amount_fen": int(x.fen)}
            for x in conn.execute(q)]


def statements_on(conn: Connection, day: date) -> list[dict[str, Any]]:
    """Statements closing on ``day`` with the net of their booked lines and their drift
    (opening + booked - closing; None without both balances)."""
    s, bl = t.bank_statements, t.bank_lines
    signed = case((bl.c.direction == "CRDT", bl.c.amount_fen), else_=-bl.c.amount_fen)
    net = (select(func.coalesce(func.sum(signed), 0)).where(bl.c.statement_row_id == s.c.id, bl.c.status == "BOOK")
           .scalar_subquery())
    q = (select(s.c.id, s.c.statement_id, s.c.account, s.c.source, s.c.opening_fen, s.c.closing_fen,
                s.c.closing_date, s.c.line_count, s.c.imported_at, net.label("booked_net_fen"))
         .where(s.c.closing_date == day).order_by(s.c.id))
    out = []
    for row in conn.execute(q):
        d = dict(row._mapping)
        d["booked_net_fen"] = int(d["booked_net_fen"])
        d["drift_fen"] = (None if d["opening_fen"] is None or d["closing_fen"] is None
                          else int(d["opening_fen"]) + d["booked_net_fen"] - int(d["closing_fen"]))
        out.append(d)
    return out


def latest_run(conn: Connection, day: date | None = None) -> dict[str, Any] | None:
    """The latest run (that covered ``day``: a run as of that day or later reads its lines)."""
    r = t.recon_runs
    q = select(r).order_by(r.c.id.desc()).limit(1)
    if day is not None:
        q = q.where(r.c.run_date >= day)
    row = conn.execute(q).first()
    return None if row is None else dict(row._mapping)


def summary(conn: Connection, day: date) -> dict[str, Any]:
    """The reconciliation of ``day``: lines booked and matched, breaks by type and status (of that day and all
    still open), the day's statements and their drift, the latest run that covered that day."""
    n, fen = matched_on(conn, day)
    booked_n, booked_fen = booked_on(conn, day)
    statements = statements_on(conn, day)
    return {
        "date": day,
        "booked": {"count": booked_n, "amount_fen": booked_fen},
        "matched": {"count": n, "amount_fen": fen},
        "breaks": breaks_by_type_status(conn, day),
        "open_breaks": [x for x in breaks_by_type_status(conn) if x["status"] == "open"],
        "statements": statements,
        "drift_fen": sum(s["drift_fen"] or 0 for s in statements),
        "run": latest_run(conn, day),
    }


# --- the break queue ------------------------------------------------------------------------------------------


def _filtered(q: Select[Any], type_: str | None, status: str | None, date_from: date | None,
              date_to: date | None, payout_id: int | None = None) -> Select[Any]:
    b = t.recon_breaks
    if type_ is not None:
        q = q.where(b.c.type == type_)
    if status is not None:
        q = q.where(b.c.status == status)
    if date_from is not None:
        q = q.where(_break_day() >= date_from)
    if date_to is not None:
        q = q.where(_break_day() <= date_to)
    if payout_id is not None:
        q = q.where(b.c.payout_id == payout_id)
    return q


def count_breaks(conn: Connection, *, type_: str | None = None, status: str | None = None,
                 date_from: date | None = None, date_to: date | None = None) -> int:
    b, r = t.recon_breaks, t.recon_runs
    q = select(func.count()).select_from(b.outerjoin(r, r.c.id == b.c.run_id))
    return int(conn.execute(_filtered(q, type_, status, date_from, date_to)).scalar_one())


def with_labels(row: dict[str, Any]) -> dict[str, Any]:
    """A break row with its type and status in words (zh, en); the texts from the bank masked."""
    row = dict(row)
    for key in ("end_to_end_id", "bank_ref", "detail"):
        if key in row:
            row[key] = masked(row[key])
    row["type_zh"], row["type_en"] = pair(RECON_BREAK_TYPE, row["type"])
    row["status_zh"], row["status_en"] = pair(RECON_BREAK_STATUS, row["status"])
    if "day" in row:
        row["day"] = _as_date(row["day"])
    return row


def list_breaks(conn: Connection, *, type_: str | None = None, status: str | None = None,
                date_from: date | None = None, date_to: date | None = None, limit: int = 50,
                offset: int = 0) -> list[dict[str, Any]]:
    """Breaks newest first (by id), with their date, the payout's merchant and labels."""
    q = _filtered(_break_select().order_by(t.recon_breaks.c.id.desc()).limit(limit).offset(offset),
                  type_, status, date_from, date_to)
    return [with_labels(dict(x._mapping)) for x in conn.execute(q)]


def _break_select(*extra: Any) -> Select[Any]:
    """Breaks with their date and their payout's merchant (outer joins: most breaks have no payout)."""
    b, r, p, mer = t.recon_breaks, t.recon_runs, t.payouts, t.merchants
    return (select(b.c.id, b.c.type, b.c.status, b.c.amount_fen, b.c.end_to_end_id, b.c.bank_ref, b.c.booking_date,
                   b.c.payout_id, b.c.bank_line_id, b.c.opened_at, b.c.cleared_at, _break_day().label("day"),
                   p.c.merchant_id, mer.c.merchant_no, mer.c.registered_name, *extra)
            .select_from(b.outerjoin(r, r.c.id == b.c.run_id).outerjoin(p, p.c.id == b.c.payout_id)
                         .outerjoin(mer, mer.c.id == p.c.merchant_id)))


# --- one break, both sides ----------------------------------------------------------------------------------


def _ints(values: Iterable[Any]) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            out.append(v)
    return out


def break_detail(conn: Connection, break_id: int) -> dict[str, Any] | None:
    """A break with both sides: the bank lines it names (its line, the duplicate's first line, the lines of an
    amount mismatch, the lines matched to its payouts), the statement (balance drift), and the payouts with
    their merchant, masked card and attempts; None when there is no such break."""
    b = t.recon_breaks
    row = conn.execute(_break_select(b.c.break_key, b.c.detail, b.c.run_id, b.c.last_run_id)
                       .where(b.c.id == break_id)).first()
    if row is None:
        return None
    brk = dict(row._mapping)
    detail = brk["detail"] if isinstance(brk["detail"], dict) else {}
    payout_ids = ([brk["payout_id"]] if brk["payout_id"] is not None else []) + _ints(detail.get("payout_ids") or [])
    payout_ids = list(dict.fromkeys(payout_ids))[:MAX_PAYOUTS]
    line_ids = ([brk["bank_line_id"]] if brk["bank_line_id"] is not None else []) + _ints(
        [detail.get("first_line_id")]) + _ints(detail.get("line_ids") or [])
    m = t.recon_matches
    if payout_ids:
        line_ids += [int(x) for x in conn.execute(select(m.c.bank_line_id).where(
            m.c.payout_id.in_(payout_ids)).order_by(m.c.bank_line_id)).scalars()]
    line_ids = list(dict.fromkeys(line_ids))[:MAX_LINES]
    bl = t.bank_lines
    lines = [dict(x._mapping) for x in conn.execute(select(bl).where(bl.c.id.in_(line_ids)).order_by(bl.c.id))] \
        if line_ids else []
    matched_lines = {int(x.bank_line_id): str(x.rule) for x in conn.execute(
        select(m.c.bank_line_id, m.c.rule).where(m.c.bank_line_id.in_(line_ids)))} if line_ids else {}
    for ln in lines:
        ln["matched_rule"] = matched_lines.get(int(ln["id"]))
    statement = None
    if brk["type"] == "balance_drift":
        s = t.bank_statements
        sid = str(brk["break_key"]).rsplit(":", 1)[-1]
        if sid.isdigit():
            got = conn.execute(select(s).where(s.c.id == int(sid))).first()
            statement = None if got is None else dict(got._mapping)
    return {"break": with_labels(brk), "bank_lines": masked(lines), "statement": masked(statement),
            "payouts": payouts_with_attempts(conn, payout_ids)}


def payouts_with_attempts(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    p, acc, mer, a = t.payouts, t.settlement_accounts, t.merchants, t.payout_attempts
    rows = [dict(x._mapping) for x in conn.execute(
        select(p.c.id, p.c.merchant_id, mer.c.merchant_no, mer.c.registered_name, p.c.amount_fen, p.c.status,
               p.c.cycle_date, p.c.value_date, p.c.idempotency_key, p.c.instruction_no, acc.c.pan_masked,
               acc.c.bank_name, p.c.updated_at)
        .select_from(p.outerjoin(acc, acc.c.id == p.c.account_id).outerjoin(mer, mer.c.id == p.c.merchant_id))
        .where(p.c.id.in_(ids)).order_by(p.c.id))]
    attempts: dict[int, list[dict[str, Any]]] = {}
    for x in conn.execute(select(a.c.id, a.c.payout_id, a.c.attempt_no, a.c.kind, a.c.idempotency_key, a.c.channel,
                                 a.c.amount_fen, a.c.requested_at, a.c.responded_at, a.c.outcome, a.c.code,
                                 a.c.message, a.c.batch_ref)
                          .where(a.c.payout_id.in_(ids)).order_by(a.c.payout_id, a.c.attempt_no)):
        attempt = dict(x._mapping)
        attempt["message"] = masked(attempt["message"])  # the bank's words
        attempts.setdefault(int(x.payout_id), []).append(attempt)
    for row in rows:
        row["attempts"] = attempts.get(int(row["id"]), [])
    return rows


# --- runs ---------------------------------------------------------------------------------------------------


def count_runs(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.recon_runs)).scalar_one())


def runs(conn: Connection, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    r = t.recon_runs
    return [dict(x._mapping) for x in conn.execute(select(r).order_by(r.c.id.desc()).limit(limit).offset(offset))]


def break_exists(conn: Connection, break_id: int) -> bool:
    b = t.recon_breaks
    return conn.execute(select(b.c.id).where(b.c.id == break_id)).first() is not None

