"""SQL of reconciliation: bank_statements, bank_lines and recon_runs / recon_matches / recon_breaks
(the only module that touches them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, delete, func, insert, or_, select, update

from settleguard.db import tables as t
from settleguard.reconciliation.matching import PAID, Break, Match
from settleguard.reconciliation.model import BankLine, Statement


def file_imported(conn: Connection, sha256: str) -> bool:
    s = t.bank_statements
    return conn.execute(select(s.c.id).where(s.c.file_sha256 == sha256).limit(1)).first() is not None


def statement_row(conn: Connection, account: str, statement_id: str) -> int | None:
    """The row of a statement already imported (from this or another file), or None."""
    s = t.bank_statements
    got = conn.execute(select(s.c.id).where(s.c.account == account, s.c.statement_id == statement_id)).first()
    return None if got is None else int(got.id)


def insert_statement(conn: Connection, st: Statement, sha256: str, now: datetime) -> int:
    def bal(code: str) -> tuple[int | None, Any]:
        b = st.balances.get(code)
        return (None, None) if b is None else (b.amount_fen, b.on)

    (op, op_d), (cl, cl_d), (pr, pr_d) = bal("OPBD"), bal("CLBD"), bal("PRCD")
    new = conn.execute(insert(t.bank_statements).values(
        file_sha256=sha256, source=str(st.source), statement_id=st.statement_id, account=st.account,
        opening_fen=op, opening_date=op_d, closing_fen=cl, closing_date=cl_d, previous_closing_fen=pr,
        previous_closing_date=pr_d, line_count=len(st.lines), imported_at=now)).inserted_primary_key
    assert new is not None
    return int(new[0])


def existing_refs(conn: Connection, account: str, statement_id: str) -> set[str]:
    bl = t.bank_lines
    return {str(r) for r in conn.execute(select(bl.c.entry_ref).where(
        bl.c.account == account, bl.c.statement_id == statement_id)).scalars()}


def insert_lines(conn: Connection, statement_row_id: int, account: str, lines: Iterable[BankLine]) -> int:
    rows = [{"statement_row_id": statement_row_id, "source": str(ln.source), "account": account,
             "statement_id": ln.statement_id, "entry_ref": ln.entry_ref, "acct_svcr_ref": ln.acct_svcr_ref,
             "end_to_end_id": ln.end_to_end_id, "pmt_inf_id": ln.pmt_inf_id, "batch_count": ln.batch_count,
             "batch_total_fen": ln.batch_total_fen, "amount_fen": ln.amount_fen, "currency": ln.currency,
             "direction": str(ln.direction), "reversal": ln.reversal, "status": str(ln.status),
             "booking_date": ln.booking_date, "value_date": ln.value_date, "raw": ln.raw} for ln in lines]
    if rows:
        conn.execute(insert(t.bank_lines), rows)
    return len(rows)


def line_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.bank_lines)).scalar_one())


def lines(conn: Connection, statement_id: str | None = None) -> list[dict[str, Any]]:
    bl = t.bank_lines
    q = select(bl).order_by(bl.c.id)
    if statement_id is not None:
        q = q.where(bl.c.statement_id == statement_id)
    return [dict(r._mapping) for r in conn.execute(q)]


def statements(conn: Connection) -> list[dict[str, Any]]:
    s = t.bank_statements
    return [dict(r._mapping) for r in conn.execute(select(s).order_by(s.c.id))]


# --- matching and breaks (issue 20 item 2): recon_runs, recon_matches, recon_breaks -------------------------

def lines_for_matching(conn: Connection, up_to: date) -> list[dict[str, Any]]:
    """Booked lines dated on or before ``up_to`` (PDNG and INFO lines never close a match)."""
    bl = t.bank_lines
    q = select(bl.c.id, bl.c.amount_fen, bl.c.direction, bl.c.status, bl.c.booking_date, bl.c.end_to_end_id,
               bl.c.pmt_inf_id, bl.c.batch_count, bl.c.reversal, bl.c.acct_svcr_ref, bl.c.entry_ref, bl.c.raw,
               bl.c.source).where(bl.c.status == "BOOK", bl.c.booking_date <= up_to).order_by(bl.c.id)
    return [dict(r._mapping) for r in conn.execute(q)]


def statements_for_matching(conn: Connection, up_to: date) -> list[dict[str, Any]]:
    """Statements closing on or before ``up_to`` with the net of their booked lines (credits - debits)."""
    s, bl = t.bank_statements, t.bank_lines
    signed = case((bl.c.direction == "CRDT", bl.c.amount_fen), else_=-bl.c.amount_fen)
    net = (select(func.coalesce(func.sum(signed), 0)).where(bl.c.statement_row_id == s.c.id, bl.c.status == "BOOK")
           .scalar_subquery())
    q = (select(s.c.id, s.c.statement_id, s.c.account, s.c.opening_fen, s.c.closing_fen, s.c.closing_date,
                net.label("booked_net_fen"))
         .where(or_(s.c.closing_date <= up_to, s.c.closing_date.is_(None))).order_by(s.c.id))
    return [dict(r._mapping) for r in conn.execute(q)]


def payouts_for_matching(conn: Connection, up_to: date, keys: Iterable[str], batch_ids: Iterable[str],
                         lookback_days: int = 14) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(payouts, their send attempts): payouts paid with a value date on or before ``up_to`` and at most
    ``lookback_days`` before the first booked bank line (older payouts predate the statements we hold), and any
    payout whose instruction key or batch id a bank line names. Payouts carry their card's masked number."""
    p, a, acc = t.payouts, t.payout_attempts, t.settlement_accounts
    keys, batch_ids = sorted(set(keys)), sorted(set(batch_ids))
    named: set[int] = set()
    for at in range(0, len(keys), 500):
        named.update(int(x) for x in conn.execute(select(a.c.payout_id).where(
            a.c.idempotency_key.in_(keys[at:at + 500]))).scalars())
        named.update(int(x) for x in conn.execute(select(p.c.id).where(
            p.c.idempotency_key.in_(keys[at:at + 500]))).scalars())
    for b in batch_ids:
        named.update(int(x) for x in conn.execute(select(a.c.payout_id).where(
            a.c.batch_ref.like(f"%|{b}"))).scalars())
    bl = t.bank_lines
    since = conn.execute(select(func.min(bl.c.booking_date)).where(bl.c.status == "BOOK")).scalar()
    paid: list[int] = [] if since is None else [int(x) for x in conn.execute(select(p.c.id).where(
        p.c.status.in_(sorted(PAID)), p.c.value_date <= up_to,
        p.c.value_date >= since - timedelta(days=lookback_days))).scalars()]
    ids = sorted(named | set(paid))
    rows: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        rows += [dict(r._mapping) for r in conn.execute(
            select(p.c.id, p.c.amount_fen, p.c.status, p.c.value_date, p.c.idempotency_key, p.c.instruction_no,
                   acc.c.pan_masked).select_from(p.outerjoin(acc, acc.c.id == p.c.account_id))
            .where(p.c.id.in_(chunk)))]
        attempts += [dict(r._mapping) for r in conn.execute(
            select(a.c.id, a.c.payout_id, a.c.idempotency_key, a.c.batch_ref)
            .where(a.c.payout_id.in_(chunk), a.c.kind == "send").order_by(a.c.id))]
    return rows, attempts


def start_run(conn: Connection, run_date: date, window_days: int, now: datetime) -> int:
    new = conn.execute(insert(t.recon_runs).values(run_date=run_date, window_days=window_days, started_at=now)
                       ).inserted_primary_key
    assert new is not None
    return int(new[0])


def finish_run(conn: Connection, run_id: int, now: datetime, **counts: int) -> None:
    conn.execute(update(t.recon_runs).where(t.recon_runs.c.id == run_id).values(finished_at=now, **counts))


def store_matches(conn: Connection, run_id: int, matches: Sequence[Match], now: datetime) -> int:
    """Make recon_matches equal to ``matches``: keep the rows still true, add new ones, delete the others."""
    m = t.recon_matches
    have = {(int(r.bank_line_id), int(r.payout_id)): int(r.id)
            for r in conn.execute(select(m.c.id, m.c.bank_line_id, m.c.payout_id))}
    want = {(x.line_id, x.payout_id): x for x in matches}
    gone = [rid for pair, rid in have.items() if pair not in want]
    for at in range(0, len(gone), 500):
        conn.execute(delete(m).where(m.c.id.in_(gone[at:at + 500])))
    rows = [{"run_id": run_id, "bank_line_id": x.line_id, "payout_id": x.payout_id, "attempt_id": x.attempt_id,
             "rule": str(x.rule), "amount_fen": x.amount_fen, "matched_at": now}
            for pair, x in want.items() if pair not in have]
    if rows:
        conn.execute(insert(m), rows)
    return len(rows)


def store_breaks(conn: Connection, run_id: int, breaks: Sequence[Break], now: datetime) -> tuple[int, int]:
    """Upsert breaks by key; an open break the plan no longer has is cleared. (opened or reopened, cleared).

    A resolved break stays resolved."""
    b = t.recon_breaks
    have = {str(r.break_key): (int(r.id), str(r.status)) for r in conn.execute(select(b.c.id, b.c.break_key, b.c.status))}
    opened = 0
    for x in breaks:
        values = {"type": str(x.type), "amount_fen": x.amount_fen, "end_to_end_id": x.end_to_end_id,
                  "bank_ref": x.bank_ref, "booking_date": x.booking_date, "payout_id": x.payout_id,
                  "bank_line_id": x.line_id, "detail": x.detail, "last_run_id": run_id}
        known = have.get(x.key)
        if known is None:
            conn.execute(insert(b).values(break_key=x.key, status="open", opened_at=now, run_id=run_id, **values))
            opened += 1
        elif known[1] == "cleared":
            conn.execute(update(b).where(b.c.id == known[0]).values(status="open", cleared_at=None, **values))
            opened += 1
        elif known[1] == "open":
            conn.execute(update(b).where(b.c.id == known[0]).values(**values))
    keys = {x.key for x in breaks}
    stale = [rid for key, (rid, status) in have.items() if status == "open" and key not in keys]
    for at in range(0, len(stale), 500):
        conn.execute(update(b).where(b.c.id.in_(stale[at:at + 500])).values(
            status="cleared", cleared_at=now, last_run_id=run_id))
    return opened, len(stale)


def breaks(conn: Connection, type_: str | None = None, status: str | None = None,
           limit: int = 10_000) -> list[dict[str, Any]]:
    b = t.recon_breaks
    q = select(b).order_by(b.c.id).limit(limit)
    if type_ is not None:
        q = q.where(b.c.type == type_)
    if status is not None:
        q = q.where(b.c.status == status)
    return [dict(r._mapping) for r in conn.execute(q)]


def break_by_id(conn: Connection, break_id: int) -> dict[str, Any] | None:
    b = t.recon_breaks
    row = conn.execute(select(b).where(b.c.id == break_id)).first()
    return None if row is None else dict(row._mapping)


def line_by_id(conn: Connection, line_id: int) -> dict[str, Any] | None:
    bl = t.bank_lines
    row = conn.execute(select(bl).where(bl.c.id == line_id)).first()
    return None if row is None else dict(row._mapping)


def payout_side(conn: Connection, payout_id: int) -> dict[str, Any] | None:
    p, acc = t.payouts, t.settlement_accounts
    row = conn.execute(select(p.c.id, p.c.merchant_id, p.c.amount_fen, p.c.status, p.c.value_date,
                              p.c.idempotency_key, p.c.instruction_no, acc.c.pan_masked)
                       .select_from(p.outerjoin(acc, acc.c.id == p.c.account_id)).where(p.c.id == payout_id)).first()
    return None if row is None else dict(row._mapping)


def matches_of_payout(conn: Connection, payout_id: int) -> list[dict[str, Any]]:
    m = t.recon_matches
    return [dict(r._mapping) for r in conn.execute(select(m).where(m.c.payout_id == payout_id).order_by(m.c.id))]
