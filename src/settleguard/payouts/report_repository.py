"""Set-based SQL for applying a bank status report (pain.002) in bulk.

中文：把银行状态报告（一百万条状态）成批写入数据库：先把一批状态放进临时表，再用少量集合式 SQL
完成查找出款、去重、状态变更（按转换表校验）、事件、回执记录和账务分录，而不是逐条执行。回执记在
它所回答的那次发送记录上（尚未有回执时），否则另记一条 report 记录。

The answers handled here are those whose plan does not depend on the payout (a success: confirm;
an unclear answer: inquire first; a rejection for a card or compliance reason: hold; one for a
person to review); :mod:`payouts.files` decides which kinds those are from the same
diagnosis and plan as every other answer, and sends everything else (failures, answers about payouts
that are no longer open) through ``payouts.service.apply_answers`` one by one. Each function runs
inside the caller's transaction. Every status change goes through the status gate
(``payouts.repository.move_many``: the transition table in the UPDATE's WHERE clause, its row count
against what was expected, ``ConcurrentChange`` otherwise) and every ledger entry through
``ledger.repository.post_each_from_select`` (balance checked in SQL).
An answer is recorded on the unanswered send attempt it answers (:func:`resolve`), else in a
"report" attempt row of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from settleguard.db import tables as t
from settleguard.db.types import UTCDateTime
from settleguard.ledger import repository as ledger
from settleguard.ledger.model import Entry
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.repository import ConcurrentChange, move_many

S = PayoutStatus
_md = MetaData()
# One status of the report: its position in the chunk, the EndToEndId and its kind (distinct answer).
items = Table("sg_report_items", _md, Column("seq", Integer, primary_key=True),
              Column("end_to_end_id", String(35), nullable=False), Column("kind", Integer, nullable=False),
              prefixes=["TEMPORARY"])
# The distinct answers of the chunk, with what they were diagnosed and planned as.
kinds = Table("sg_report_kinds", _md, Column("kind", Integer, primary_key=True),
              Column("outcome", String(16)), Column("code", String(32)), Column("message", String(512)),
              Column("raw", Text), Column("category", String(32)), Column("rule_id", String(64)),
              Column("decision", String(16)), prefixes=["TEMPORARY"])
# Each status resolved to the payout whose current instruction it answers (first mention wins).
targets = Table("sg_report_targets", _md, Column("seq", Integer, primary_key=True),
                Column("kind", Integer, nullable=False), Column("end_to_end_id", String(35), nullable=False),
                Column("payout_id", Integer, nullable=False), Column("status", String(24), nullable=False),
                Column("merchant_id", Integer, nullable=False), Column("amount_fen", BigInteger, nullable=False),
                Column("account_id", Integer), Column("fast", Integer, nullable=False),
                Column("answer_on", Integer),
                Index("ix_sg_report_targets_payout", "payout_id"),
                Index("ix_sg_report_targets_kind", "fast", "kind", "status"), prefixes=["TEMPORARY"])


@dataclass(frozen=True)
class Kind:
    """One distinct answer and the change it makes to an open payout (from payouts.service's plan).

    ``values`` are the payout columns the change sets; ``ledger`` the entry it posts, if any
    (a prototype built by ledger.model for amount 1: accounts, signs and memo are taken from it).
    """

    kind: int
    outcome: str
    code: str
    message: str
    raw: str
    category: str | None
    rule_id: str | None
    decision: str
    steps: tuple[tuple[PayoutStatus, str, dict[str, object]], ...]  # (to, event reason, values) in order
    ledger: Entry | None


@dataclass(frozen=True)
class Applied:
    kind: int
    count: int
    amount_fen: int


def begin(conn: Connection) -> None:
    """Create the staging tables (temporary: gone with the connection, rolled back with the transaction)."""
    for table in (items, kinds, targets):
        table.create(conn)


def end(conn: Connection) -> None:
    for table in (items, kinds, targets):
        table.drop(conn)


def stage(conn: Connection, rows: Sequence[tuple[int, str, int]], chunk_kinds: Sequence[Kind]) -> None:
    """Put one chunk's statuses (seq, EndToEndId, kind) and its kinds into the staging tables."""
    for table in (items, kinds, targets):
        conn.execute(delete(table))
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    # Straight to the driver: a million parameter sets through SQLAlchemy's per-row processing
    # would cost more than everything else here (docs/benchmarks.md, returns).
    conn.exec_driver_sql(f"INSERT INTO {items.name} (seq, end_to_end_id, kind) VALUES ({mark}, {mark}, {mark})",
                         list(rows))
    if chunk_kinds:
        conn.execute(insert(kinds), [
            {"kind": k.kind, "outcome": k.outcome, "code": k.code, "message": k.message, "raw": k.raw,
             "category": k.category, "rule_id": k.rule_id, "decision": k.decision} for k in chunk_kinds])


def resolve(conn: Connection, fast_kinds: Sequence[int], open_statuses: Sequence[PayoutStatus],
            message_id: str | None) -> tuple[int, int]:
    """Match each staged status to its payout (the latest attempt under its key, whose current
    instruction key it must be); keep the first mention of each payout. Marks as ``fast`` those of
    a fast kind about an open payout, and notes in ``answer_on`` the attempt the answer belongs on:
    the payout's latest attempt when it is the still unanswered ``send`` of this key in our pain.001
    ``message_id`` (the report's OrgnlMsgId); otherwise (answered already: a second report about the
    same send; another file; no send) the answer gets an attempt row of its own.
    Returns (statuses matched, duplicates dropped)."""
    a, p = t.payout_attempts, t.payouts
    x, sent = a.alias("x"), a.alias("sent")
    # The latest attempt under the key (its id from the key index alone), then its payout: a key
    # belongs to one payout (the payout's key, or that key + "R<n>" / "S<n>").
    aid = (select(func.max(a.c.id)).where(a.c.idempotency_key == items.c.end_to_end_id)
           .scalar_subquery().label("aid"))
    latest = select(items.c.seq, items.c.kind, items.c.end_to_end_id, aid).subquery("latest")
    current_key = case((p.c.instruction_no == 0, p.c.idempotency_key),
                       else_=p.c.idempotency_key + "R" + cast(p.c.instruction_no, String))
    last_no = select(func.max(x.c.attempt_no)).where(x.c.payout_id == p.c.id).correlate(p).scalar_subquery()
    answer_on: Any = literal(None, Integer)
    if message_id is not None:
        answer_on = case((and_(sent.c.kind == "send", sent.c.responded_at.is_(None), sent.c.attempt_no == last_no,
                               func.substr(sent.c.batch_ref, 1, len(message_id) + 1) == f"{message_id}|"),
                          sent.c.id), else_=literal(None, Integer))
    # A payout released and paid again (instruction_no > 0) gets a merchant notice when paid: one by one.
    fast = case((and_(latest.c.kind.in_(list(fast_kinds) or [-1]), p.c.status.in_([str(s) for s in open_statuses]),
                      p.c.instruction_no == 0), 1), else_=0)
    found = latest.join(sent, sent.c.id == latest.c.aid)
    if conn.dialect.name == "postgresql":
        # Lock the payouts first (in id order), so that the statuses read below stay true until the
        # UPDATEs: a worker may be changing the same payouts (inquiry, retry) at this moment.
        conn.execute(select(p.c.id).where(p.c.id.in_(select(sent.c.payout_id).select_from(found)))
                     .order_by(p.c.id).with_for_update(of=p)).all()
    conn.execute(insert(targets).from_select(
        ["seq", "kind", "end_to_end_id", "payout_id", "status", "merchant_id", "amount_fen", "account_id", "fast",
         "answer_on"],
        select(latest.c.seq, latest.c.kind, latest.c.end_to_end_id, p.c.id, p.c.status, p.c.merchant_id,
               p.c.amount_fen, p.c.account_id, fast, answer_on)
        .select_from(found.join(p, p.c.id == sent.c.payout_id))
        .where(current_key == latest.c.end_to_end_id)))
    first = select(func.min(targets.c.seq)).group_by(targets.c.payout_id)
    dropped = conn.execute(delete(targets).where(targets.c.seq.not_in(first))).rowcount
    matched = int(conn.execute(select(func.count()).select_from(targets)).scalar_one())
    return matched, int(dropped or 0)


@dataclass(frozen=True)
class Target:
    """A payout a fast answer was applied to (what a merchant notice needs: notify.outbox.PayoutLike)."""

    id: int
    merchant_id: int
    account_id: int | None
    key: str
    amount_fen: int
    instruction_no: int = 0


def fast_targets(conn: Connection, kind: int) -> list[Target]:
    """The payouts the fast answer ``kind`` was applied to, in file order."""
    return [Target(int(pid), int(mid), aid, key, int(amount)) for pid, mid, aid, key, amount in conn.execute(
        select(targets.c.payout_id, targets.c.merchant_id, targets.c.account_id, targets.c.end_to_end_id,
               targets.c.amount_fen).where(targets.c.fast == 1, targets.c.kind == kind).order_by(targets.c.seq))]


def others(conn: Connection) -> list[tuple[int, int | None]]:
    """(seq, ``answer_on``) of the matched statuses not handled here (failures, payouts no longer
    open), in order."""
    return [(int(s), None if on is None else int(on)) for s, on in conn.execute(
        select(targets.c.seq, targets.c.answer_on).where(targets.c.fast == 0).order_by(targets.c.seq))]


def _move(conn: Connection, chosen: Any, expected: int, froms: Sequence[PayoutStatus], from_column: Any,
          to: PayoutStatus, reason: str, values: dict[str, object], now: datetime) -> None:
    """Change the payouts of the targets ``chosen`` from one of ``froms`` to ``to`` through the status
    gate (checked against the transition table and the expected count), with an event each (from
    ``from_column``)."""
    move_many(conn, source=targets, payout_id=targets.c.payout_id, where=chosen, expected=expected, froms=froms,
              from_status=from_column, to=to, reason=reason, values=values, now=now)


def apply_fast(conn: Connection, chunk_kinds: Sequence[Kind], now: datetime, first_reason: str) -> list[Applied]:
    """Apply the fast targets: each answer recorded on the send attempt it answers (``answer_on``), or
    else in an attempt row of kind "report" of its own; the status change(s) with their events, and
    the kind's ledger entry. A payout in result_unknown first moves to inquiry (``first_reason``), as
    an inquiry's answer would."""
    unknown = and_(targets.c.fast == 1, targets.c.status == str(S.RESULT_UNKNOWN))
    n_unknown = int(conn.execute(select(func.count()).select_from(targets).where(unknown)).scalar_one())
    if n_unknown:
        _move(conn, unknown, n_unknown, (S.RESULT_UNKNOWN,), targets.c.status, S.INQUIRY, first_reason, {}, now)
    now_lit = literal(now, UTCDateTime)
    a = t.payout_attempts
    x = a.alias("x")
    next_no = (select(func.coalesce(func.max(x.c.attempt_no), 0) + 1).where(x.c.payout_id == targets.c.payout_id)
               .scalar_subquery())
    conn.execute(insert(a).from_select(
        ["payout_id", "attempt_no", "kind", "idempotency_key", "channel", "account_id", "amount_fen", "requested_at",
         "responded_at", "outcome", "code", "message", "raw_response", "category", "rule_id", "decision"],
        select(targets.c.payout_id, next_no, literal("report", String), targets.c.end_to_end_id,
               literal("report", String), targets.c.account_id, targets.c.amount_fen, now_lit, now_lit, kinds.c.outcome,
               kinds.c.code, kinds.c.message, kinds.c.raw, kinds.c.category, kinds.c.rule_id, kinds.c.decision)
        .select_from(targets.join(kinds, kinds.c.kind == targets.c.kind))
        .where(targets.c.fast == 1, targets.c.answer_on.is_(None))))
    out: list[Applied] = []
    for k in chunk_kinds:
        chosen = and_(targets.c.fast == 1, targets.c.kind == k.kind)
        n, total, on_send = conn.execute(select(func.count(), func.coalesce(func.sum(targets.c.amount_fen), 0),
                                                func.count(targets.c.answer_on)).where(chosen)).one()
        if not n:
            continue
        if on_send:
            # the answer on the attempt it answers (payouts.service.apply_answers does the same for a
            # channel's answer): the row is rewritten in place, no index entry changes
            res = conn.execute(update(a).where(
                a.c.id.in_(select(targets.c.answer_on).where(chosen, targets.c.answer_on.is_not(None))),
                a.c.responded_at.is_(None)).values(
                responded_at=now, outcome=k.outcome, code=k.code, message=k.message, raw_response=k.raw,
                category=k.category, rule_id=k.rule_id, decision=k.decision))
            if res.rowcount != on_send:
                raise ConcurrentChange(f"{on_send - res.rowcount} attempt(s) answered while the report was applied")
        # after the step above, every fast target is submitted or in inquiry
        froms: tuple[PayoutStatus, ...] = (S.SUBMITTED, S.INQUIRY)
        from_column: Any = case((targets.c.status == str(S.RESULT_UNKNOWN), literal(str(S.INQUIRY), String)),
                                else_=targets.c.status)
        for to, reason, values in k.steps:
            _move(conn, chosen, int(n), froms, from_column, to, reason, values, now)
            froms, from_column = (to,), literal(str(to), String)
        if k.ledger is not None:
            _post(conn, k.ledger, chosen, int(n), now)
        out.append(Applied(k.kind, int(n), int(total)))
    return out


def _post(conn: Connection, prototype: Entry, chosen: Any, expected: int, now: datetime) -> None:
    """One entry like ``prototype`` (built for 1 fen) per target ``chosen``, for its amount, through the
    ledger's one write path (which checks that every entry balances)."""
    ledger.post_each_from_select(conn, prototype, ledger.Rows(
        source=targets, where=chosen, payout_id=targets.c.payout_id, merchant_id=targets.c.merchant_id,
        amount_fen=targets.c.amount_fen, order=targets.c.seq), expected, now)


# --- references we do not know (issue 16): reads for payouts.files ----------------------------------------------

def unknown_items(conn: Connection) -> list[int]:
    """Seq of the staged statuses whose EndToEndId names no instruction we ever sent (no attempt under
    that key, the send's or any later one's), in order."""
    a = t.payout_attempts
    known = select(a.c.id).where(a.c.idempotency_key == items.c.end_to_end_id).exists()
    return [int(s) for (s,) in conn.execute(select(items.c.seq).where(~known).order_by(items.c.seq))]


def message_exported(conn: Connection, message_id: str) -> bool:
    """Whether ``message_id`` is the MsgId of a pain.001 we exported (attempts carry ``MsgId|PmtInfId``)."""
    a = t.payout_attempts
    return conn.execute(select(a.c.id).where(
        a.c.batch_ref.like(f"{_like_escape(message_id)}|%", escape="\\")).limit(1)).first() is not None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Suspect:
    """A payout of ours a report may be about although it does not name it."""

    payout_id: int
    merchant_id: int
    key: str
    amount_fen: int
    status: str


def unanswered_in_message(conn: Connection, message_id: str, limit: int) -> tuple[int, list[Suspect]]:
    """The payouts whose latest attempt is their still unanswered send in our pain.001 ``message_id``
    (and that are still ``submitted``): how many, and the first ``limit`` by id."""
    a, p = t.payout_attempts, t.payouts
    x = a.alias("x")
    latest = select(func.max(x.c.id)).where(x.c.payout_id == a.c.payout_id).correlate(a).scalar_subquery()
    where = (a.c.batch_ref.like(f"{_like_escape(message_id)}|%", escape="\\"), a.c.kind == "send",
             a.c.responded_at.is_(None), a.c.id == latest, p.c.status == str(S.SUBMITTED))
    joined = a.join(p, p.c.id == a.c.payout_id)
    n = int(conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one())
    rows = conn.execute(select(p.c.id, p.c.merchant_id, a.c.idempotency_key, p.c.amount_fen, p.c.status)
                        .select_from(joined).where(*where).order_by(p.c.id).limit(limit))
    return n, [Suspect(int(i), int(m), str(k), int(amt), str(s)) for i, m, k, amt, s in rows]


def payout_of_key(conn: Connection, key: str) -> Suspect | None:
    """The payout an instruction key (EndToEndId) was sent for, if any."""
    a, p = t.payout_attempts, t.payouts
    r = conn.execute(select(p.c.id, p.c.merchant_id, a.c.idempotency_key, p.c.amount_fen, p.c.status)
                     .select_from(a.join(p, p.c.id == a.c.payout_id)).where(a.c.idempotency_key == key)
                     .order_by(a.c.id.desc()).limit(1)).first()
    return None if r is None else Suspect(int(r[0]), int(r[1]), str(r[2]), int(r[3]), str(r[4]))
