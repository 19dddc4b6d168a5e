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


def imported_kind(conn: Connection, sha256: str) -> str | None:
    """The kind (source) of a file already imported with this SHA-256, or None."""
    s = t.bank_statements
    got = conn.execute(select(s.c.source).where(s.c.file_sha256 == sha256).limit(1)).first()
    return None if got is None else str(got[0])


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
    return _dicts(conn.execute(q))


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
    payout whose instruction key or batch id a bank line names. Payouts carry their card's masked number.

    The paid payouts of the window and their attempts are read with one query each (the window as a subquery,
    no id lists); only the keys and batch ids they do not already answer are looked up, in chunks."""
    p, a, acc = t.payouts, t.payout_attempts, t.settlement_accounts
    bl = t.bank_lines
    since = conn.execute(select(func.min(bl.c.booking_date)).where(bl.c.status == "BOOK")).scalar()
    payout_cols = (p.c.id, p.c.amount_fen, p.c.status, p.c.value_date, p.c.idempotency_key, p.c.instruction_no,
                   acc.c.pan_masked)
    attempt_cols = (a.c.id, a.c.payout_id, a.c.idempotency_key, a.c.batch_ref)
    rows: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    if since is not None:
        window = select(p.c.id).where(p.c.status.in_(sorted(PAID)), p.c.value_date <= up_to,
                                      p.c.value_date >= since - timedelta(days=lookback_days))
        rows = _dicts(conn.execute(select(*payout_cols).select_from(p.outerjoin(acc, acc.c.id == p.c.account_id))
                                   .where(p.c.id.in_(window))))
        attempts = _dicts(conn.execute(select(*attempt_cols).where(a.c.payout_id.in_(window), a.c.kind == "send")))
    have = {int(r["id"]) for r in rows}
    known = {str(r["idempotency_key"]) for r in rows} | {str(x["idempotency_key"]) for x in attempts}
    known_batches = {str(x["batch_ref"]).rsplit("|", 1)[-1] for x in attempts if x["batch_ref"]}
    rest, batch_ids = sorted(set(keys) - known), sorted(set(batch_ids) - known_batches)
    named: set[int] = set()
    for at in range(0, len(rest), 500):
        named.update(int(x) for x in conn.execute(select(a.c.payout_id).where(
            a.c.idempotency_key.in_(rest[at:at + 500]))).scalars())
        named.update(int(x) for x in conn.execute(select(p.c.id).where(
            p.c.idempotency_key.in_(rest[at:at + 500]))).scalars())
    for b in batch_ids:
        named.update(int(x) for x in conn.execute(select(a.c.payout_id).where(
            a.c.batch_ref.like(f"%|{b}"))).scalars())
    ids = sorted(named - have)
    for at in range(0, len(ids), 500):
        chunk = ids[at:at + 500]
        rows += _dicts(conn.execute(select(*payout_cols).select_from(p.outerjoin(acc, acc.c.id == p.c.account_id))
                                    .where(p.c.id.in_(chunk))))
        attempts += _dicts(conn.execute(select(*attempt_cols).where(a.c.payout_id.in_(chunk), a.c.kind == "send")))
    rows.sort(key=lambda r: int(r["id"]))
    attempts.sort(key=lambda x: int(x["id"]))
    return rows, attempts


def _dicts(result: Any) -> list[dict[str, Any]]:
    """Rows as plain dicts (zip with the column names once: much cheaper than a mapping per row)."""
    names = tuple(result.keys())
    return [dict(zip(names, r, strict=True)) for r in result]


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
    stale = [rid for key, (rid, status) in have.items()
             if status == "open" and key not in keys and not key.startswith("clearing:")]  # clearing runs own those
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


# --- follow-up and balance proof (issue 20, helper A): recon_actions, recon_balance_proofs ------------------

def return_counts(conn: Connection, payout_ids: Sequence[int]) -> dict[int, int]:
    """Times each payout was returned after success (payout_events into ``returned``)."""
    ev = t.payout_events
    ids = sorted(set(payout_ids))
    out: dict[int, int] = {}
    for at in range(0, len(ids), 500):
        out.update({int(pid): int(n) for pid, n in conn.execute(
            select(ev.c.payout_id, func.count()).where(ev.c.payout_id.in_(ids[at:at + 500]),
                                                        ev.c.to_status == "returned").group_by(ev.c.payout_id))})
    return out


def balance_statements(conn: Connection, up_to: date) -> list[dict[str, Any]]:
    """Statements with both an opening and a closing balance (camt.053), closing on or before ``up_to``."""
    s = t.bank_statements
    q = (select(s.c.id, s.c.statement_id, s.c.account, s.c.opening_fen, s.c.opening_date, s.c.closing_fen,
                s.c.closing_date)
         .where(s.c.opening_fen.is_not(None), s.c.closing_fen.is_not(None), s.c.closing_date.is_not(None),
                s.c.closing_date <= up_to)
         .order_by(s.c.account, s.c.closing_date, s.c.id))
    return [dict(r._mapping) for r in conn.execute(q)]


def last_closing_date(conn: Connection) -> date | None:
    """The latest closing date of a statement with both balances (what ``ledger check`` proves against)."""
    s = t.bank_statements
    got = conn.execute(select(func.max(s.c.closing_date)).where(
        s.c.opening_fen.is_not(None), s.c.closing_fen.is_not(None))).scalar()
    if got is None or isinstance(got, date):
        return got
    return date.fromisoformat(str(got))


def funding_credits(conn: Connection, statement_row_ids: Sequence[int]) -> int:
    """Booked credits of these statements that are neither reversals nor under a key of ours: money paid in
    (the card network's settlement funds, treasury top-ups), which the ledger does not record."""
    bl, a, p = t.bank_lines, t.payout_attempts, t.payouts
    ours = or_(select(a.c.id).where(a.c.idempotency_key == bl.c.end_to_end_id).exists(),
               select(p.c.id).where(p.c.idempotency_key == bl.c.end_to_end_id).exists())
    total = 0
    ids = sorted(set(statement_row_ids))
    for at in range(0, len(ids), 500):
        total += int(conn.execute(select(func.coalesce(func.sum(bl.c.amount_fen), 0)).where(
            bl.c.statement_row_id.in_(ids[at:at + 500]), bl.c.status == "BOOK", bl.c.direction == "CRDT",
            bl.c.reversal.is_(False), or_(bl.c.end_to_end_id.is_(None), ~ours))).scalar_one())
    return total


def bank_provisions_of_payouts(conn: Connection, payout_ids: Sequence[int]) -> int:
    """Sum of the bank_provisions postings (debit > 0: money in) of these payouts' ledger entries: a few IN
    queries for a few thousand payouts, else one grouped scan of bank_provisions streamed and filtered here."""
    lp, le = t.ledger_postings, t.ledger_entries
    ids = sorted(set(payout_ids))
    total = 0
    if len(ids) > 20_000:
        wanted = set(ids)
        q = (select(le.c.payout_id, func.sum(lp.c.amount_fen)).select_from(lp.join(le, le.c.id == lp.c.entry_id))
             .where(lp.c.account == "bank_provisions", le.c.payout_id.is_not(None)).group_by(le.c.payout_id))
        for pid, fen in conn.execution_options(yield_per=10_000).execute(q):
            if int(pid) in wanted:
                total += int(fen)
        return total
    for at in range(0, len(ids), 500):
        total += int(conn.execute(select(func.coalesce(func.sum(lp.c.amount_fen), 0))
                                  .select_from(lp.join(le, le.c.id == lp.c.entry_id))
                                  .where(lp.c.account == "bank_provisions",
                                         le.c.payout_id.in_(ids[at:at + 500]))).scalar_one())
    return total


def bank_provisions_without_payout(conn: Connection) -> int:
    """Sum of the bank_provisions postings of entries that belong to no payout (reconciliation adjustments)."""
    lp, le = t.ledger_postings, t.ledger_entries
    return int(conn.execute(select(func.coalesce(func.sum(lp.c.amount_fen), 0))
                            .select_from(lp.join(le, le.c.id == lp.c.entry_id))
                            .where(lp.c.account == "bank_provisions", le.c.payout_id.is_(None))).scalar_one())


def break_states(conn: Connection, keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """break_key -> (id, status) of the stored breaks among ``keys``."""
    b = t.recon_breaks
    keys = sorted(set(keys))
    out: dict[str, tuple[int, str]] = {}
    for at in range(0, len(keys), 500):
        out.update({str(k): (int(i), str(s)) for i, k, s in conn.execute(
            select(b.c.id, b.c.break_key, b.c.status).where(b.c.break_key.in_(keys[at:at + 500])))})
    return out


def last_window_days(conn: Connection) -> int | None:
    r = t.recon_runs
    got = conn.execute(select(r.c.window_days).order_by(r.c.id.desc()).limit(1)).scalar()
    return None if got is None else int(got)


def store_proof(conn: Connection, run_id: int, values: dict[str, Any], now: datetime) -> None:
    """The run's proof (a row left by a deleted run of the same id is replaced)."""
    pr = t.recon_balance_proofs
    conn.execute(delete(pr).where(pr.c.run_id == run_id))
    conn.execute(insert(pr).values(run_id=run_id, created_at=now, **values))


def proof_of_run(conn: Connection, run_id: int) -> dict[str, Any] | None:
    pr = t.recon_balance_proofs
    row = conn.execute(select(pr).where(pr.c.run_id == run_id)).first()
    return None if row is None else dict(row._mapping)


def open_breaks(conn: Connection, types: Sequence[str] | None = None, opened_before: datetime | None = None,
                without_action: Sequence[str] = (), limit: int = 1000) -> list[dict[str, Any]]:
    """Open breaks (oldest first), of ``types``, opened before a time, with none of the actions
    ``without_action`` recorded."""
    b, ra = t.recon_breaks, t.recon_actions
    q = select(b).where(b.c.status == "open").order_by(b.c.id).limit(limit)
    if types is not None:
        q = q.where(b.c.type.in_(list(types)))
    if opened_before is not None:
        q = q.where(b.c.opened_at <= opened_before)
    if without_action:
        q = q.where(~select(ra.c.id).where(ra.c.break_id == b.c.id, ra.c.action.in_(list(without_action))).exists())
    return [dict(r._mapping) for r in conn.execute(q)]


def break_of_payout(conn: Connection, payout_id: int, type_: str) -> bool:
    """Whether any break (whatever its status) of ``type_`` names this payout."""
    b = t.recon_breaks
    return conn.execute(select(b.c.id).where(b.c.payout_id == payout_id, b.c.type == type_).limit(1)).first() \
        is not None


def booked_debit_under(conn: Connection, keys: Sequence[str]) -> bool:
    """Whether a booked, non-reversal debit under one of these instruction keys is stored (any date)."""
    bl = t.bank_lines
    if not keys:
        return False
    return conn.execute(select(bl.c.id).where(bl.c.end_to_end_id.in_(sorted(set(keys))), bl.c.status == "BOOK",
                                              bl.c.direction == "DBIT", bl.c.reversal.is_(False)).limit(1)
                        ).first() is not None


def instruction_keys(conn: Connection, payout_id: int) -> list[str]:
    """Every key this payout was sent under (the payout's own key and each send attempt's)."""
    p, a = t.payouts, t.payout_attempts
    keys = {str(k) for k in conn.execute(select(a.c.idempotency_key).where(
        a.c.payout_id == payout_id, a.c.kind == "send")).scalars()}
    own = conn.execute(select(p.c.idempotency_key).where(p.c.id == payout_id)).scalar()
    return sorted(keys | ({str(own)} if own is not None else set()))


def record_action(conn: Connection, break_id: int, action: str, note: str, now: datetime, *,
                  payout_id: int | None = None, case_id: int | None = None) -> bool:
    """Record that ``action`` was taken for a break; False (nothing written) if it was already (also when another
    worker recorded it at the same moment: ON CONFLICT DO NOTHING on the unique (break, action))."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    ra = t.recon_actions
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    res = conn.execute(make(ra).values(break_id=break_id, action=action, payout_id=payout_id, case_id=case_id,
                                       note=note, created_at=now)
                       .on_conflict_do_nothing(index_elements=["break_id", "action"]))
    return bool(res.rowcount)


def has_action(conn: Connection, break_id: int, action: str) -> bool:
    ra = t.recon_actions
    return conn.execute(select(ra.c.id).where(ra.c.break_id == break_id, ra.c.action == action)).first() is not None


def actions_of(conn: Connection, break_id: int) -> list[dict[str, Any]]:
    ra = t.recon_actions
    return [dict(r._mapping) for r in conn.execute(select(ra).where(ra.c.break_id == break_id).order_by(ra.c.id))]


def lines_by_ids(conn: Connection, ids: Sequence[int]) -> list[dict[str, Any]]:
    bl = t.bank_lines
    ids = sorted(set(ids))[:50]
    return [dict(r._mapping) for r in conn.execute(select(bl).where(bl.c.id.in_(ids)).order_by(bl.c.id))] if ids else []


def merchant_of_payout(conn: Connection, payout_id: int) -> int | None:
    p = t.payouts
    got = conn.execute(select(p.c.merchant_id).where(p.c.id == payout_id)).scalar()
    return None if got is None else int(got)
