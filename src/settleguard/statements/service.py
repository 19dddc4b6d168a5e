"""Merchant statements (对账单): ``settleguard statements export``, the portal's and the console's download.

:func:`load` reads, in one snapshot (REPEATABLE READ on PostgreSQL; SQLite's read transaction is one), what
the summary needs: the merchant, the period's sums per kind and per business day, its settlements with the
payouts they created, the balance carried in, every payout of the period with its status and, where it failed
or is held, the reason (the diagnosis of payouts.details, as the portal shows it), and the money held now
(the ledger's merchant_held balance). :func:`export` writes the statement (statements/xlsx.py or
statements/csv_writer.py) to a temporary file beside ``out`` and renames it into place; the transaction lines
are streamed from the database to the file, never held in memory. The line totals are added up as they are
written and must equal the summary's sums (:class:`Inconsistent` otherwise: nothing is kept).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from settleguard import labels
from settleguard.masking import bounded
from settleguard.statements import repository as repo
from settleguard.statements.model import CarryLine, Day, StatementRefused, Totals, carry, check_period

Format = Literal["xlsx", "csv"]
FORMATS: tuple[Format, ...] = ("xlsx", "csv")
MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "csv": "text/csv; charset=utf-8"}
# the payouts whose money sits in merchant_held (挂账): held, returned (退票, on its way to held) and cancelled
HELD = ("held", "returned", "cancelled")
CANCELLED_REASON = ("出款已撤销，款项挂账等待处理", "payout cancelled; the money is held until it is decided on")


class Inconsistent(RuntimeError):
    """The streamed lines did not add up to the summary's sums (the data changed while it was read)."""


@dataclass
class Statement:
    """Everything of a statement but its transaction lines (streamed by the writer)."""

    merchant: dict[str, Any]
    start: date
    end: date
    generated_at: datetime
    zone: tzinfo
    totals: Totals
    days: list[dict[str, Any]]  # settled days: the settlement row + carried_in/out, note (zh, en)
    unsettled: list[dict[str, Any]]  # business days with transactions no settlement covers (yet)
    carried_in_fen: int
    carried_out_fen: int
    payouts: list[dict[str, Any]]  # + status_label, reason (zh, en) or None
    held_now_fen: int
    lines_written: int = 0
    line_totals: Totals = field(default_factory=Totals)

    @property
    def merchant_id(self) -> int:
        return int(self.merchant["id"])

    @property
    def settled(self) -> Totals:
        out = Totals()
        for d in self.days:
            out.count += int(d["txn_count"])
            out.sale_fen += int(d["sale_fen"])
            out.void_fen += int(d["void_fen"])
            out.refund_fen += int(d["refund_fen"])
            out.reversal_fen += int(d["reversal_fen"])
            out.fee_fen += int(d["fee_fen"])
        return out

    @property
    def payout_fen(self) -> int:
        """What the settlement runs of the period created as payouts (split parts not counted twice)."""
        return sum(int(d["payout_fen"]) for d in self.days)

    def payouts_by_status(self) -> list[tuple[str, int, int]]:
        """(status, count, fen) over the period's payouts without a parent, in the statuses' order."""
        sums: dict[str, list[int]] = {}
        for p in self.payouts:
            if p["parent_id"] is None:
                got = sums.setdefault(str(p["status"]), [0, 0])
                got[0] += 1
                got[1] += int(p["amount_fen"])
        return [(s, *sums[s]) for s in labels.PAYOUT_STATUS if s in sums]  # type: ignore[misc]

    def held(self) -> list[dict[str, Any]]:
        return [p for p in self.payouts if p["status"] in HELD]


def filename(merchant_no: str, start: date, end: date, fmt: Format) -> str:
    return f"statement_{merchant_no}_{start:%Y%m%d}_{end:%Y%m%d}.{fmt}"


def check_format(text: str) -> Format:
    got = text.strip().lower()
    for f in FORMATS:
        if got == f:
            return f
    raise StatementRefused(f"格式「{bounded(text, 20)}」不支持：应为 xlsx 或 csv",
                           f"format {bounded(text, 20)!r} is not supported: use xlsx or csv")


def _reason(conn: Connection, p: dict[str, Any]) -> tuple[str, str] | None:
    """Why the payout is where it is, as a diagnosis label and meaning (zh, en); None when nothing failed."""
    from settleguard.payouts import repository as payout_repo
    from settleguard.payouts.details import NO_REASON, current_reason
    from settleguard.payouts.model import PayoutStatus

    status = PayoutStatus(p["status"])
    if status is PayoutStatus.CANCELLED:
        return CANCELLED_REASON
    if status in NO_REASON:
        return None
    found = current_reason(conn, int(p["id"]), status, payout_repo.history(conn, int(p["id"]))[1])
    if found is None:
        return labels.pair(labels.CATEGORY, p["category"] or "unknown")
    zh, en = labels.pair(labels.CATEGORY, found.category.value)
    return f"{zh}：{found.meaning_zh}", f"{en}: {found.meaning_en}"


@contextlib.contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction that sees one state of the database from its first read to its end."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def load(conn: Connection, merchant_no: str, start: date, end: date, *, now: datetime, zone: tzinfo) -> Statement:
    """The statement of ``merchant_no`` for business days ``start``..``end`` (lines not read yet)."""
    from settleguard.ledger import repository as ledger_repo
    from settleguard.ledger.model import Account

    check_period(start, end)
    wanted = merchant_no.strip()
    m = repo.merchant(conn, wanted) if wanted.isascii() and len(wanted) <= 20 else None
    if m is None:
        # a merchant number (15 digits) is echoed as typed; anything else masked and cut (a card number typed here)
        shown = wanted if wanted.isascii() and wanted.isdigit() and len(wanted) == 15 else bounded(merchant_no, 40)
        raise StatementRefused(f"没有商户编号为「{shown}」的商户", f"no merchant with merchant no. {shown!r}")
    mid = int(m["id"])
    totals = Totals()
    for r in repo.kind_sums(conn, mid, start, end):
        totals.add(int(r["kind"]), int(r["amount_fen"]), int(r["fee_fen"]), int(r["n"]))
    settled = repo.settlements(conn, mid, start, end)
    opening = repo.carried_in(conn, mid, start)
    lines: list[CarryLine] = carry(opening, [Day(s["cycle_date"], int(s["net_fen"]), int(s["payout_fen"]))
                                             for s in settled])
    days = []
    for s, c in zip(settled, lines, strict=True):
        days.append({**s, "carried_in_fen": c.carried_in_fen, "carried_out_fen": c.carried_out_fen, "note": c.note})
    per_day = repo.day_sums(conn, mid, start, end)
    settled_count = {s["cycle_date"]: int(s["txn_count"]) for s in settled}
    unsettled = []
    for day in sorted(per_day):
        d = per_day[day]
        if int(d["txn_count"]) != settled_count.get(day, 0):
            unsettled.append({**d, "settled_count": settled_count.get(day, 0)})
    payouts = repo.payouts(conn, mid, start, end)
    for p in payouts:
        p["reason"] = _reason(conn, p)
    held_now = ledger_repo.balances(conn, mid).get(Account.MERCHANT_HELD, 0)
    return Statement(merchant=m, start=start, end=end, generated_at=now, zone=zone, totals=totals, days=days,
                     unsettled=unsettled, carried_in_fen=opening,
                     carried_out_fen=lines[-1].carried_out_fen if lines else opening, payouts=payouts,
                     held_now_fen=held_now)


@dataclass(frozen=True)
class Exported:
    path: Path
    format: Format
    statement: Statement
    size: int

    def to_dict(self) -> dict[str, Any]:
        st = self.statement
        t = st.totals
        return {"path": str(self.path), "format": self.format, "merchant_no": st.merchant["merchant_no"],
                "from": st.start.isoformat(), "to": st.end.isoformat(), "transactions": st.lines_written,
                "sale_fen": t.sale_fen, "void_fen": t.void_fen, "refund_fen": t.refund_fen,
                "reversal_fen": t.reversal_fen, "fee_fen": t.fee_fen, "net_fen": t.net_fen,
                "carried_in_fen": st.carried_in_fen, "payout_fen": st.payout_fen,
                "carried_out_fen": st.carried_out_fen, "payouts": len(st.payouts), "held_now_fen": st.held_now_fen,
                "size": self.size}


def export(engine: Engine, merchant_no: str, start: date, end: date, fmt: Format, out: Path, *, now: datetime,
           zone: tzinfo) -> Exported:
    """Write the statement to ``out`` (atomically: a temporary file beside it, renamed into place)."""
    from settleguard.statements import csv_writer, xlsx

    check_period(start, end)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with snapshot(engine) as conn:
            st = load(conn, merchant_no, start, end, now=now, zone=zone)
            lines = repo.transaction_lines(conn, st.merchant_id, start, end)
            terminals = repo.terminal_numbers(conn, st.merchant_id)
            (xlsx.write if fmt == "xlsx" else csv_writer.write)(tmp, st, lines, terminals)
        if st.line_totals.key() != st.totals.key():
            raise Inconsistent(f"lines add up to {st.line_totals.key()}, the summary to {st.totals.key()}")
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return Exported(out, fmt, st, out.stat().st_size)
