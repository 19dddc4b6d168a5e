"""SQL of clearing reconciliation: clearing_files, clearing_lines, clearing_summaries, clearing_runs, the
clearing_* rows of recon_breaks, and the card transactions they are compared with (the only module that
touches the clearing tables)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from settleguard.db import tables as t
from settleguard.reconciliation import clearing_matching as cm
from settleguard.settlement.model import CardType

if TYPE_CHECKING:
    from settleguard.reconciliation.clearing import InnLine

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def file_imported(conn: Connection, sha256: str) -> bool:
    f = t.clearing_files
    return conn.execute(select(f.c.id).where(f.c.file_sha256 == sha256)).first() is not None


def insert_file(conn: Connection, *, sha: str, kind: str, filename: str, clearing_date: date, owner_code: str | None,
                line_count: int, new_lines: int, encoding: str, now: datetime) -> int:
    new = conn.execute(insert(t.clearing_files).values(
        file_sha256=sha, kind=kind, filename=filename, clearing_date=clearing_date, owner_code=owner_code,
        line_count=line_count, new_lines=new_lines, encoding=encoding, imported_at=now)).inserted_primary_key
    assert new is not None
    return int(new[0])


def existing_line_keys(conn: Connection, day: date) -> set[tuple[str, str, str, str, str]]:
    c = t.clearing_lines
    return {(str(r.merchant_code), str(r.terminal_no), str(r.stan), str(r.sent_at_text), str(r.txn_code))
            for r in conn.execute(select(c.c.merchant_code, c.c.terminal_no, c.c.stan, c.c.sent_at_text, c.c.txn_code)
                                  .where(c.c.clearing_date == day))}


def insert_lines(conn: Connection, file_id: int, day: date, lines: Sequence[InnLine]) -> int:
    rows = [{"file_id": file_id, "line_no": ln.line_no, "clearing_date": day, "txn_code": ln.txn_code, "stan": ln.stan,
             "sent_at_text": ln.sent_at_text, "sent_at": ln.sent_at, "txn_date": ln.txn_date,
             "account_masked": ln.account_masked, "amount_fen": ln.amount_fen, "mcc": ln.mcc, "query_id": ln.query_id,
             "orig_stan": ln.orig_stan, "fee_fen": ln.fee_fen, "settle_fen": ln.settle_fen, "net_fen": ln.net_fen,
             "merchant_code": ln.merchant_code, "terminal_no": ln.terminal_no} for ln in lines]
    if rows:
        conn.execute(insert(t.clearing_lines), rows)
    return len(rows)


def summary(conn: Connection, day: date, merchant_code: str) -> cm.Totals | None:
    s = t.clearing_summaries
    r = conn.execute(select(s.c.txn_count, s.c.debit_fen, s.c.credit_fen, s.c.fee_fen, s.c.net_fen).where(
        s.c.clearing_date == day, s.c.merchant_code == merchant_code)).first()
    return None if r is None else cm.Totals(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]))


def insert_summary(conn: Connection, file_id: int, day: date, merchant_code: str, currency: str,
                   totals: cm.Totals) -> None:
    conn.execute(insert(t.clearing_summaries).values(
        file_id=file_id, clearing_date=day, merchant_code=merchant_code, currency=currency, txn_count=totals.txn_count,
        debit_fen=totals.debit_fen, credit_fen=totals.credit_fen, fee_fen=totals.fee_fen, net_fen=totals.net_fen))


def lines_of_day(conn: Connection, day: date) -> list[cm.NetworkLine]:
    c = t.clearing_lines
    return [cm.NetworkLine(id=int(r.id), merchant_code=str(r.merchant_code), terminal_no=str(r.terminal_no),
                           stan=str(r.stan), sent_at=r.sent_at, amount_fen=int(r.amount_fen), fee_fen=int(r.fee_fen),
                           settle_fen=int(r.settle_fen), net_fen=int(r.net_fen), txn_code=str(r.txn_code),
                           account_masked=str(r.account_masked))
            for r in conn.execute(select(c).where(c.c.clearing_date == day).order_by(c.c.id))]


def owners_of_lines(conn: Connection, day: date) -> dict[int, str]:
    """line id -> the merchant id in its INN file's name (where the name has one)."""
    c, f = t.clearing_lines, t.clearing_files
    return {int(r[0]): str(r[1]) for r in conn.execute(
        select(c.c.id, f.c.owner_code).select_from(c.join(f, f.c.id == c.c.file_id))
        .where(c.c.clearing_date == day, f.c.owner_code.is_not(None)))}


def summaries_of_day(conn: Connection, day: date) -> list[cm.Summary]:
    s = t.clearing_summaries
    return [cm.Summary(str(r.merchant_code), int(r.txn_count), int(r.debit_fen), int(r.credit_fen), int(r.fee_fen),
                       int(r.net_fen))
            for r in conn.execute(select(s).where(s.c.clearing_date == day).order_by(s.c.merchant_code))]


def card_transactions(conn: Connection, start: datetime, end: datetime) -> list[cm.OurTxn]:
    """Our bank-card transactions (debit, credit; not QR) that happened in [start, end)."""
    tx, m, term = t.transactions, t.merchants, t.terminals
    lo = int((start - _EPOCH) / timedelta(microseconds=1))
    hi = int((end - _EPOCH) / timedelta(microseconds=1))
    first, last = start.date() - timedelta(days=2), end.date() + timedelta(days=2)  # business days around the window
    q = (select(tx.c.cycle_date, tx.c.external_ref, tx.c.stan, tx.c.rrn, tx.c.occurred_at, tx.c.amount_fen, tx.c.fee_fen, tx.c.kind,
                tx.c.merchant_id, m.c.merchant_no, term.c.terminal_no)
         .select_from(tx.join(m, m.c.id == tx.c.merchant_id).outerjoin(term, term.c.id == tx.c.terminal_id))
         .where(tx.c.cycle_date.between(first, last), tx.c.occurred_at >= _as_time(lo), tx.c.occurred_at < _as_time(hi),
                tx.c.card_type.in_([int(CardType.DEBIT), int(CardType.CREDIT)])))
    return [cm.OurTxn(merchant_no=str(r.merchant_no), terminal_no=str(r.terminal_no or ""),
                      external_ref=str(r.external_ref), stan=r.stan, rrn=r.rrn, occurred_at=r.occurred_at,
                      amount_fen=int(r.amount_fen), fee_fen=int(r.fee_fen), kind=int(r.kind),
                      merchant_id=int(r.merchant_id), cycle_date=r.cycle_date) for r in conn.execute(q)]


def _as_time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def start_run(conn: Connection, day: date, now: datetime) -> int:
    new = conn.execute(insert(t.clearing_runs).values(clearing_date=day, started_at=now)).inserted_primary_key
    assert new is not None
    return int(new[0])


def finish_run(conn: Connection, run_id: int, now: datetime, **counts: int) -> None:
    conn.execute(update(t.clearing_runs).where(t.clearing_runs.c.id == run_id).values(finished_at=now, **counts))


def store_breaks(conn: Connection, run_id: int, day: date, breaks: Iterable[cm.ClearingBreak],
                 now: datetime) -> tuple[int, int]:
    """Upsert the clearing breaks of ``day`` by natural key; an open one of that day no longer found is cleared, a
    cleared one found again reopened, a resolved one left alone (the rules of recon_breaks). (opened, cleared)."""
    b = t.recon_breaks
    prefix = f"{cm.KEY_PREFIX}{day.isoformat()}:"
    have = {str(r.break_key): (int(r.id), str(r.status)) for r in conn.execute(
        select(b.c.id, b.c.break_key, b.c.status).where(b.c.break_key.startswith(prefix, autoescape=True)))}
    opened = 0
    keys = set()
    for x in breaks:
        keys.add(x.key)
        values: dict[str, Any] = {"type": str(x.type), "amount_fen": x.amount_fen, "end_to_end_id": x.end_to_end_id,
                                  "bank_ref": x.bank_ref, "booking_date": x.booking_date, "payout_id": None,
                                  "bank_line_id": None, "detail": x.detail, "last_run_id": run_id}
        known = have.get(x.key)
        if known is None:
            conn.execute(insert(b).values(break_key=x.key, status="open", opened_at=now, run_id=run_id, **values))
            opened += 1
        elif known[1] == "cleared":
            conn.execute(update(b).where(b.c.id == known[0]).values(status="open", cleared_at=None, **values))
            opened += 1
        elif known[1] == "open":
            conn.execute(update(b).where(b.c.id == known[0]).values(**values))
    stale = [rid for key, (rid, status) in have.items() if status == "open" and key not in keys]
    for at in range(0, len(stale), 500):
        conn.execute(update(b).where(b.c.id.in_(stale[at:at + 500])).values(
            status="cleared", cleared_at=now, last_run_id=run_id))
    return opened, len(stale)


def line_by_id(conn: Connection, line_id: int) -> dict[str, Any] | None:
    c = t.clearing_lines
    r = conn.execute(select(c).where(c.c.id == line_id)).first()
    return None if r is None else dict(r._mapping)
