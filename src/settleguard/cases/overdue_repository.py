"""SQL for payouts sent in a bank file that still wait for the bank's final answer (cases.overdue).

A file payout is one whose latest ``send`` attempt carries a ``batch_ref`` (``MsgId|PmtInfId`` of the
pain.001 it went out in, payouts.files); it waits while it is submitted, result_unknown or in inquiry.
It is *flagged* once a ``file_answer_overdue`` case opened at or after that send is linked to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from settleguard.cases.model import FILE_ANSWER_OVERDUE
from settleguard.db import tables as t
from settleguard.payouts.model import PayoutStatus

S = PayoutStatus
WAITING = (S.SUBMITTED, S.RESULT_UNKNOWN, S.INQUIRY)


@dataclass(frozen=True)
class WaitingGroup:
    """The waiting payouts of one payment information of one file, sent at one time."""

    batch_ref: str
    sent_at: datetime
    payouts: int
    flagged: int

    @property
    def message_id(self) -> str:
        return self.batch_ref.split("|", 1)[0]


@dataclass(frozen=True)
class WaitingPayout:
    payout_id: int
    merchant_id: int
    key: str  # the instruction key the file carried
    amount_fen: int
    status: str
    attempt_id: int
    batch_ref: str
    sent_at: datetime


def _waiting(sent_before: datetime) -> tuple[Any, list[Any], Any]:
    """(FROM clause, WHERE terms, the "flagged" condition) of the file payouts sent at or before ``sent_before``
    that still wait for an answer."""
    p, a, cp, c = t.payouts, t.payout_attempts, t.case_payouts, t.cases
    x = a.alias("x")
    last_send = (select(func.max(x.c.id)).where(x.c.payout_id == p.c.id, x.c.kind == "send")
                 .correlate(p).scalar_subquery())
    flagged = (select(cp.c.payout_id).select_from(cp.join(c, c.c.id == cp.c.case_id))
               .where(cp.c.payout_id == p.c.id, c.c.category == FILE_ANSWER_OVERDUE, c.c.created_at >= a.c.requested_at)
               .correlate(p, a).exists())
    where = [p.c.status.in_([str(s) for s in WAITING]), a.c.batch_ref.is_not(None), a.c.requested_at <= sent_before]
    return p.join(a, a.c.id == last_send), where, flagged


def waiting_groups(conn: Connection, sent_before: datetime) -> list[WaitingGroup]:
    """Waiting file payouts sent at or before ``sent_before``, counted per (MsgId|PmtInfId, send time), with
    how many of them are flagged already; oldest first."""
    a = t.payout_attempts
    joined, where, flagged = _waiting(sent_before)
    inner = (select(a.c.batch_ref, a.c.requested_at, case((flagged, 1), else_=0).label("flagged"))
             .select_from(joined).where(*where).subquery("waiting"))
    q = (select(inner.c.batch_ref, inner.c.requested_at, func.count(), func.sum(inner.c.flagged))
         .group_by(inner.c.batch_ref, inner.c.requested_at).order_by(inner.c.requested_at, inner.c.batch_ref))
    return [WaitingGroup(str(ref), at, int(n), int(f or 0)) for ref, at, n, f in conn.execute(q)]


def unflagged(conn: Connection, sent_before: datetime, limit: int) -> list[WaitingPayout]:
    """Waiting file payouts sent at or before ``sent_before`` not flagged yet (the first ``limit``, oldest
    first)."""
    p, a = t.payouts, t.payout_attempts
    joined, where, flagged = _waiting(sent_before)
    q = (select(p.c.id, p.c.merchant_id, a.c.idempotency_key, p.c.amount_fen, p.c.status, a.c.id, a.c.batch_ref,
                a.c.requested_at).select_from(joined).where(*where, ~flagged)
         .order_by(a.c.requested_at, p.c.id).limit(limit))
    return [WaitingPayout(int(pid), int(mid), str(key), int(amount), str(st), int(aid), str(ref), at)
            for pid, mid, key, amount, st, aid, ref, at in conn.execute(q)]
