"""SQL for payouts, attempts and payout events. Every status change is checked against
the transition table in the UPDATE itself (``WHERE status IN sources(target)``).

This module is the one gate for payout statuses: :func:`change_status` (given changes) and
:func:`move_many` (set-based, for bulk bank reports) are the only writers of ``payouts.status``
(tests/unit/test_architecture_money.py); both record a payout_events row per change and one audit
event covering them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    FromClause,
    Integer,
    String,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from settleguard.db import tables as t
from settleguard.db.types import UTCDateTime
from settleguard.payouts.circuit import Circuit, CircuitState
from settleguard.payouts.model import PayoutStatus, instruction_key, part_key, sources


class ConcurrentChange(RuntimeError):
    """A payout was not in a status from which the requested change is allowed."""


@dataclass(frozen=True)
class DuePayout:
    """A payout ready to send, with the merchant's current bound card.

    Attributes:
        account_id: the active settlement account now (never an older card).
        pan_cipher, pan_nonce, key_version: the encrypted card number.
    """

    id: int
    merchant_id: int
    amount_fen: int
    currency: str
    status: PayoutStatus
    idempotency_key: str
    attempt_count: int
    value_date: date
    instruction_no: int
    parent_id: int | None
    account_id: int | None
    holder_name: str | None
    bank_code: str | None
    account_kind: str | None
    pan_cipher: bytes | None
    pan_nonce: bytes | None
    key_version: int | None

    @property
    def key(self) -> str:
        """The key of the current instruction (EndToEndId sent to the bank)."""
        return instruction_key(self.idempotency_key, self.instruction_no)


def _due_query(statuses: Sequence[PayoutStatus]):  # type: ignore[no-untyped-def]
    p, a = t.payouts, t.settlement_accounts
    return (
        select(p.c.id, p.c.merchant_id, p.c.amount_fen, p.c.currency, p.c.status, p.c.idempotency_key,
               p.c.attempt_count, p.c.value_date, p.c.instruction_no, p.c.parent_id, a.c.id.label("account_id"), a.c.holder_name, a.c.bank_code,
               a.c.account_kind, a.c.pan_cipher, a.c.pan_nonce, a.c.key_version)
        .select_from(p.outerjoin(a, and_(a.c.merchant_id == p.c.merchant_id, a.c.status == "active")))
        .where(p.c.status.in_([str(s) for s in statuses]))
        .order_by(p.c.id)
    )


def due(conn: Connection, as_of: date, now: datetime, limit: int, *, exclude_banks: Sequence[str] = (),
        only_bank: str | None = None) -> list[DuePayout]:
    """Created, retry-scheduled or released payouts whose value date has come and whose retry
    time has passed; not those paying into ``exclude_banks`` (circuit open); with ``only_bank``,
    only those paying into that bank."""
    p, a = t.payouts, t.settlement_accounts
    q = _due_query([PayoutStatus.CREATED, PayoutStatus.RETRY_SCHEDULED, PayoutStatus.RELEASED]).where(
        p.c.value_date <= as_of, or_(p.c.next_attempt_at.is_(None), p.c.next_attempt_at <= now)
    ).limit(limit)
    if exclude_banks:
        q = q.where(or_(a.c.bank_code.is_(None), a.c.bank_code.not_in(list(exclude_banks))))
    if only_bank is not None:
        q = q.where(a.c.bank_code == only_bank)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=p, skip_locked=True)
    return [_due(r) for r in conn.execute(q)]


def unresolved(conn: Connection, limit: int, *, after_id: int = 0, stale_before: datetime | None = None
               ) -> list[DuePayout]:
    """Payouts whose outcome is unknown: result_unknown, or submitted / in inquiry by a run that died.

    With several workers, a ``submitted`` or ``inquiry`` payout may be one another worker is
    talking to the bank about right now: only those last changed before ``stale_before`` are
    taken (``None``: all, for a single process).
    """
    p, a = t.payouts, t.payout_attempts
    # A payout whose latest send went out in a bank file (batch_ref) waits for the bank's report
    # (payouts.files): the API channel does not know its key, and a "not found, may resend" from it
    # would pay the file's payouts twice.
    last_send = (select(func.max(a.c.id)).where(a.c.payout_id == p.c.id, a.c.kind == "send")
                 .correlate(p).scalar_subquery())
    in_file = select(a.c.id).where(a.c.id == last_send, a.c.batch_ref.is_not(None)).correlate(p).exists()
    q = _due_query([PayoutStatus.RESULT_UNKNOWN, PayoutStatus.SUBMITTED, PayoutStatus.INQUIRY]).where(
        p.c.id > after_id, ~in_file).limit(limit)
    if stale_before is not None:
        q = q.where(or_(p.c.status == str(PayoutStatus.RESULT_UNKNOWN), p.c.updated_at < stale_before))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=p, skip_locked=True)
    return [_due(r) for r in conn.execute(q)]


def _due(r: object) -> DuePayout:
    m = r._mapping  # type: ignore[attr-defined]
    return DuePayout(
        id=m["id"], merchant_id=m["merchant_id"], amount_fen=m["amount_fen"], currency=m["currency"],
        status=PayoutStatus(m["status"]), idempotency_key=m["idempotency_key"], attempt_count=m["attempt_count"],
        value_date=m["value_date"], instruction_no=m["instruction_no"], parent_id=m["parent_id"],
        account_id=m["account_id"], holder_name=m["holder_name"],
        bank_code=m["bank_code"], account_kind=m["account_kind"], pan_cipher=m["pan_cipher"],
        pan_nonce=m["pan_nonce"], key_version=m["key_version"],
    )


@dataclass(frozen=True)
class StatusChange:
    payout_id: int
    to: PayoutStatus
    reason: str
    values: dict[str, object] | None = None


def change_status(conn: Connection, changes: Sequence[StatusChange], now: datetime, *, actor: str = "system") -> None:
    """Apply status changes (each checked against the transition table) and record events, with one
    audit event covering the payout_events rows of the call (settleguard.audit)."""
    from settleguard.audit import service as audit

    p = t.payouts
    covered: list[tuple[int, int]] = []
    by_target: dict[tuple[PayoutStatus, tuple[str, ...]], list[StatusChange]] = {}
    for c in changes:
        by_target.setdefault((c.to, tuple(sorted((c.values or {}).keys()))), []).append(c)
    for (target, keys), group in by_target.items():
        allowed = [str(s) for s in sources(target)]
        if not allowed:
            raise ConcurrentChange(f"no status may move to {target}")
        current = dict(conn.execute(
            select(p.c.id, p.c.status).where(p.c.id.in_([c.payout_id for c in group]))
        ).all())
        stmt = (
            update(p)
            # OR of equalities, not IN: an expanding IN cannot be used with executemany.
            .where(p.c.id == bindparam("pid"), or_(*(p.c.status == s for s in allowed)))
            .values(status=str(target), updated_at=now, **{k: bindparam(f"v_{k}") for k in keys})
        )
        params = [{"pid": c.payout_id, **{f"v_{k}": v for k, v in (c.values or {}).items()}} for c in group]
        res = conn.execute(stmt, params)
        if res.rowcount != len(group):
            bad = [c.payout_id for c in group if current.get(c.payout_id) not in allowed]
            raise ConcurrentChange(f"payouts {bad[:10]} cannot move to {target} from {[current.get(b) for b in bad[:10]]}")
        covered += audit.insert_rows_covered(conn, t.payout_events, [
            {"payout_id": c.payout_id, "from_status": current[c.payout_id], "to_status": str(target),
             "reason": c.reason[:256], "created_at": now}
            for c in group
        ])
    ids = sorted({c.payout_id for c in changes})
    audit.record_covering(conn, actor, "payout.status", ("payout", ids[0]) if len(ids) == 1 else None, {
        "payouts": len(ids), "to": sorted({str(c.to) for c in changes}), "first_payout_ids": ids[:20]},
        t.payout_events, covered, now)


def move_many(conn: Connection, *, source: FromClause, payout_id: Any, where: Any, expected: int,
              froms: Sequence[PayoutStatus], from_status: Any, to: PayoutStatus, reason: str,
              values: dict[str, object], now: datetime, actor: str = "report") -> None:
    """Move the payouts named by ``payout_id`` in the rows of ``source`` matching ``where`` from one of
    ``froms`` to ``to`` in one UPDATE: each of ``froms`` must be a source of ``to`` in the transition
    table, the UPDATE allows only ``froms`` and must change ``expected`` rows (``ConcurrentChange``
    otherwise). One payout_events row each (``from_status``: its status before, a column or expression
    of ``source``) and one audit event covering them."""
    bad = [f for f in froms if f not in sources(to)]
    if bad:
        raise ConcurrentChange(f"no payout may move from {bad[0]} to {to}")
    p = t.payouts
    chosen = select(payout_id).select_from(source).where(where)
    res = conn.execute(update(p).where(p.c.id.in_(chosen), p.c.status.in_([str(f) for f in froms]))
                       .values(status=str(to), updated_at=now, **values))
    if res.rowcount != expected:
        raise ConcurrentChange(f"{expected - res.rowcount} payout(s) changed while the report was applied "
                               f"(-> {to})")
    from settleguard.audit import service as audit  # one audit event covering these payout_events rows

    covered = audit.insert_select_covered(conn, t.payout_events, insert(t.payout_events).from_select(
        ["payout_id", "from_status", "to_status", "reason", "created_at"],
        select(payout_id, from_status, literal(str(to), String), literal(reason[:256], String),
               literal(now, UTCDateTime)).select_from(source).where(where)))
    audit.record_covering(conn, actor, "payout.status", None, {"payouts": expected, "to": str(to)},
                          t.payout_events, covered, now)


def statuses(conn: Connection, payout_ids: Sequence[int]) -> dict[int, PayoutStatus]:
    """Current status of each payout, locked on PostgreSQL until the transaction ends (an answer is
    applied only to a payout still in the status it was given for)."""
    p = t.payouts
    q = select(p.c.id, p.c.status).where(p.c.id.in_(sorted(set(payout_ids))))
    if conn.dialect.name == "postgresql":
        q = q.order_by(p.c.id).with_for_update()
    return {int(i): PayoutStatus(s) for i, s in conn.execute(q)}


def start_attempts(conn: Connection, rows: Sequence[dict[str, object]]) -> list[int]:
    """Record attempts before anything is sent, so a crash leaves a trace to inquire about."""
    if not rows:
        return []
    return [int(r[0]) for r in conn.execute(
        insert(t.payout_attempts).returning(t.payout_attempts.c.id, sort_by_parameter_order=True), list(rows))]


@dataclass(frozen=True)
class AttemptAnswer:
    """The bank's answer to one attempt, diagnosed, as stored on the attempt row."""

    attempt_id: int
    responded_at: datetime
    outcome: str
    code: str
    message: str
    raw: str | None
    category: str | None
    rule: str | None
    decision: str


@dataclass(frozen=True)
class Alert:
    """An operations alert (ops_alerts): ``key`` makes it once per cause (per bank and day, per payout)."""

    kind: str
    key: str
    message: str
    bank_code: str | None


def finish_attempts(conn: Connection, answers: Sequence[AttemptAnswer]) -> None:
    a = t.payout_attempts
    if not answers:
        return
    conn.execute(
        update(a).where(a.c.id == bindparam("aid")).values(
            responded_at=bindparam("v_responded_at"), outcome=bindparam("v_outcome"), code=bindparam("v_code"),
            message=bindparam("v_message"), raw_response=bindparam("v_raw"), category=bindparam("v_category"),
            rule_id=bindparam("v_rule"), decision=bindparam("v_decision")),
        [{"aid": x.attempt_id, "v_responded_at": x.responded_at, "v_outcome": x.outcome, "v_code": x.code,
          "v_message": x.message, "v_raw": x.raw, "v_category": x.category, "v_rule": x.rule,
          "v_decision": x.decision} for x in answers],
    )


def add_finished_attempts(conn: Connection, rows: Sequence[dict[str, object]]) -> None:
    """Record answers that came without a request of ours (a bank's status file)."""
    if rows:
        conn.execute(insert(t.payout_attempts), list(rows))


def next_attempt_no(conn: Connection, payout_ids: Sequence[int]) -> dict[int, int]:
    a = t.payout_attempts
    got = dict(conn.execute(
        select(a.c.payout_id, func.max(a.c.attempt_no)).where(a.c.payout_id.in_(payout_ids)).group_by(a.c.payout_id)
    ).all())
    return {pid: int(got.get(pid) or 0) + 1 for pid in payout_ids}


_COUNTS = select(t.payouts.c.status, func.count(), func.coalesce(func.sum(t.payouts.c.amount_fen), 0)).group_by(
    t.payouts.c.status)
_COUNTS_OF = _COUNTS.where(t.payouts.c.merchant_id == bindparam("merchant_id"))


def counts_by_status(conn: Connection, merchant_id: int | None = None) -> dict[str, tuple[int, int]]:
    """status -> (payouts, fen), of every merchant or of one."""
    rows = conn.execute(_COUNTS) if merchant_id is None else conn.execute(_COUNTS_OF, {"merchant_id": merchant_id})
    return {s: (int(n), int(a)) for s, n, a in rows}


def failures_by_reason(conn: Connection) -> list[tuple[str, str, int]]:
    """(code, message, count) of failed or unknown attempts, most frequent first."""
    a = t.payout_attempts
    n = func.count().label("n")
    return [(c or "", m or "", int(k)) for c, m, k in conn.execute(
        select(a.c.code, a.c.message, n).where(a.c.outcome.in_(["failed", "unknown"]))
        .group_by(a.c.code, a.c.message).order_by(n.desc(), a.c.code))]


def merchants_paid(conn: Connection) -> int:
    """How many merchants have at least one succeeded payout."""
    p = t.payouts
    return int(conn.execute(
        select(func.count(func.distinct(p.c.merchant_id))).where(p.c.status == str(PayoutStatus.SUCCEEDED))
    ).scalar_one())


def by_ids(conn: Connection, ids: Sequence[int], *, lock: bool = False) -> list[DuePayout]:
    """Payouts by id, whatever their status, with the merchant's current card."""
    q = _due_query(list(PayoutStatus)).where(t.payouts.c.id.in_(list(ids)))
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update(of=t.payouts)
    return [_due(r) for r in conn.execute(q)]


def held_for(conn: Connection, merchant_ids: Sequence[int], categories: Sequence[str]) -> list[DuePayout]:
    """Held payouts of these merchants whose hold has one of these diagnosis categories."""
    p = t.payouts
    q = _due_query([PayoutStatus.HELD]).where(p.c.merchant_id.in_(list(merchant_ids)),
                                              p.c.category.in_(list(categories)))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=p, skip_locked=True)
    return [_due(r) for r in conn.execute(q)]


def risk_held_merchants(conn: Connection, merchant_ids: Sequence[int]) -> set[int]:
    """The merchants among ``merchant_ids`` an operator put on risk hold (risk_holds, not yet released)."""
    h = t.risk_holds
    ids = sorted(set(merchant_ids))
    return {int(i) for start in range(0, len(ids), 500) for (i,) in conn.execute(
        select(h.c.merchant_id).where(h.c.merchant_id.in_(ids[start:start + 500]), h.c.released_at.is_(None)))}


def held_off_current_card(conn: Connection, categories: Sequence[str]) -> list[DuePayout]:
    """Held payouts (hold category in ``categories``) whose merchant now has an active card other than
    the one the payout last went to (or which never went to one): the merchant fixed the card before
    the hold was known, e.g. while the payout's outcome was still being inquired about."""
    p, a = t.payouts, t.settlement_accounts
    q = _due_query([PayoutStatus.HELD]).where(p.c.category.in_(list(categories)), a.c.id.is_not(None),
                                              or_(p.c.account_id.is_(None), p.c.account_id != a.c.id))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(of=p, skip_locked=True)
    return [_due(r) for r in conn.execute(q)]


def by_instruction_keys(conn: Connection, keys: Sequence[str]) -> dict[str, DuePayout]:
    """Which payout each instruction key (EndToEndId) belongs to: the latest attempt under that key."""
    a = t.payout_attempts
    found = dict(conn.execute(
        select(a.c.idempotency_key, func.max(a.c.payout_id)).where(a.c.idempotency_key.in_(list(keys)))
        .group_by(a.c.idempotency_key)).all())
    payouts = {p.id: p for p in by_ids(conn, list(set(found.values())), lock=True)} if found else {}
    return {k: payouts[pid] for k, pid in found.items() if pid in payouts}


def create_parts(conn: Connection, parent: DuePayout, amounts: Sequence[int], now: datetime) -> list[int]:
    """Insert the parts of a split payout (status created, already funded: their money is in transit)."""
    p = t.payouts
    parent_row = conn.execute(select(p.c.cycle_date).where(p.c.id == parent.id)).one()
    ids = [int(r[0]) for r in conn.execute(insert(p).returning(p.c.id, sort_by_parameter_order=True), [
        {"merchant_id": parent.merchant_id, "settlement_id": None, "cycle_date": parent_row.cycle_date,
         "value_date": parent.value_date, "amount_fen": amount, "currency": parent.currency,
         "status": str(PayoutStatus.CREATED), "idempotency_key": part_key(parent.key, i),
         "attempt_count": 0, "parent_id": parent.id, "created_at": now, "updated_at": now}
        for i, amount in enumerate(amounts, start=1)])]
    from settleguard.audit import service as audit

    covered = audit.insert_rows_covered(conn, t.payout_events, [
        {"payout_id": pid, "from_status": None, "to_status": str(PayoutStatus.CREATED),
         "reason": f"拆分自出款 {parent.id} part of split payout {parent.id}", "created_at": now} for pid in ids])
    audit.record_covering(conn, "system", "payout.split", ("payout", parent.id),
                          {"parts": ids, "amounts_fen": list(amounts)}, t.payout_events, covered, now)
    return ids


def _upsert(conn: Connection, table: object):  # type: ignore[no-untyped-def]
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)  # type: ignore[arg-type]


def circuits(conn: Connection, bank_codes: Sequence[str] | None = None, *, lock: bool = False) -> dict[str, Circuit]:
    c = t.bank_circuits
    q = select(c)
    if bank_codes is not None:
        q = q.where(c.c.bank_code.in_(list(bank_codes)))
    if lock and conn.dialect.name == "postgresql":
        q = q.order_by(c.c.bank_code).with_for_update()  # one lock order for every worker: no deadlock
    return {r.bank_code: Circuit(r.bank_code, CircuitState(r.state), r.failures, r.window_started_at, r.opened_at,
                                 r.probe_payout_id) for r in conn.execute(q)}


def save_circuits(conn: Connection, items: Sequence[Circuit], now: datetime) -> None:
    if not items:
        return
    stmt = _upsert(conn, t.bank_circuits)
    rows = [{"bank_code": c.bank_code, "state": str(c.state), "failures": c.failures,
             "window_started_at": c.window_started_at, "opened_at": c.opened_at,
             "probe_payout_id": c.probe_payout_id, "updated_at": now} for c in sorted(items, key=lambda c: c.bank_code)]
    conn.execute(stmt.on_conflict_do_update(index_elements=["bank_code"], set_={
        k: stmt.excluded[k] for k in ("state", "failures", "window_started_at", "opened_at", "probe_payout_id",
                                      "updated_at")}), rows)


def add_alert(conn: Connection, kind: str, dedupe_key: str, message: str, now: datetime,
              bank_code: str | None = None) -> None:
    """Record an alert for the platform's staff once per ``dedupe_key``."""
    stmt = _upsert(conn, t.ops_alerts).values(kind=kind, dedupe_key=dedupe_key[:128], bank_code=bank_code,
                                              message=message, created_at=now)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["dedupe_key"]))


def cursor(conn: Connection, name: str) -> int:
    c = t.worker_cursors
    q = select(c.c.last_id).where(c.c.name == name)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    got = conn.execute(q).scalar_one_or_none()
    return int(got or 0)


def set_cursor(conn: Connection, name: str, last_id: int, now: datetime) -> None:
    stmt = _upsert(conn, t.worker_cursors).values(name=name, last_id=last_id, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                            set_={"last_id": stmt.excluded.last_id, "updated_at": now}))


def _given(value: Any) -> bool:
    """A filter value is given unless None or an empty string (a bound parameter counts as given)."""
    return value is not None and not (isinstance(value, str) and not value)


def search_pattern(text: str | None) -> str | None:
    """A merchant search (part of a merchant number or name) as a LIKE pattern in which a typed percent sign,
    underscore or backslash matches itself; None for an empty search."""
    text = (text or "").strip()
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def listing_filters(q: Any, *, status: Any, merchant_no: Any, category: Any, merchant_id: Any,
                    merchant_like: Any = None) -> Any:
    """The payout list's filters on a query that selects from payouts joined to merchants; each value is a
    plain value or a bound parameter (the prebuilt statements below). ``merchant_like`` is a
    :func:`search_pattern` matched, case-insensitively, against the merchant number and name."""
    p, m = t.payouts, t.merchants
    if _given(status):
        q = q.where(p.c.status == status)
    if _given(merchant_no):
        q = q.where(m.c.merchant_no == merchant_no)
    if _given(merchant_like):
        q = q.where(or_(m.c.merchant_no.ilike(merchant_like, escape="\\"),
                        m.c.registered_name.ilike(merchant_like, escape="\\")))
    if _given(category):
        q = q.where(p.c.category == category)
    if merchant_id is not None:
        q = q.where(p.c.merchant_id == merchant_id)
    return q


# The API and the console read payouts on every request: their statements are built once, with bound
# parameters, so SQLAlchemy neither rebuilds them nor recomputes their cache keys per call (memoized on
# the statement object); ``listing``'s filters pick one of 32 prebuilt shapes.
_FILTERS = ("status", "merchant_no", "category", "merchant_id", "merchant_like")


def _listing_columns() -> Any:
    """The payout list's select (no filter, order or page): merchant, latest diagnosis and the latest
    attempt's key (EndToEndId)."""
    p, m, a = t.payouts, t.merchants, t.payout_attempts
    # The latest attempt per listed row (an index probe each): a GROUP BY over all attempts joined by
    # merge made PostgreSQL read every attempt below the page's first payout id (O(n) per detail).
    prior = t.payout_attempts.alias("prior")
    latest = select(func.max(prior.c.id)).where(prior.c.payout_id == p.c.id).correlate(p).scalar_subquery()
    return (select(p.c.id, p.c.merchant_id, m.c.merchant_no, m.c.registered_name, p.c.cycle_date, p.c.value_date,
                   p.c.amount_fen, p.c.status, p.c.category, p.c.parent_id, p.c.idempotency_key, p.c.attempt_count,
                   p.c.last_code, p.c.last_message, p.c.next_attempt_at, p.c.updated_at,
                   a.c.idempotency_key.label("end_to_end_id"))
            .select_from(p.join(m, m.c.id == p.c.merchant_id).outerjoin(a, a.c.id == latest)))


@cache
def _listing_query(used: tuple[bool, ...]) -> Any:
    """The page's payout ids first (filters, order, offset: the payouts table alone, or with merchants for a
    merchant-number filter), then merchant and latest attempt for those rows only, not for the skipped ones."""
    p, m = t.payouts, t.merchants
    bound: dict[str, Any] = {n: bindparam(n) if on else None for n, on in zip(_FILTERS, used, strict=True)}
    merchants = bound["merchant_no"] is not None or bound["merchant_like"] is not None
    ids = select(p.c.id).select_from(p.join(m, m.c.id == p.c.merchant_id) if merchants else p)
    ids = (listing_filters(ids.where(p.c.id > bindparam("after_id")), **bound).order_by(p.c.id)
           .limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer)))
    return _listing_columns().where(p.c.id.in_(ids)).order_by(p.c.id)


@cache
def _count_query(used: tuple[bool, ...]) -> Any:
    p, m = t.payouts, t.merchants
    bound: dict[str, Any] = {n: bindparam(n) if on else None for n, on in zip(_FILTERS, used, strict=True)}
    merchants = bound["merchant_no"] is not None or bound["merchant_like"] is not None
    q = select(func.count()).select_from(p.join(m, m.c.id == p.c.merchant_id) if merchants else p)
    return listing_filters(q, **bound)


def _filter_values(**given: Any) -> tuple[tuple[bool, ...], dict[str, Any]]:
    """(which filters are used, their values): a falsy status, number or category is no filter; a
    merchant id is one unless None."""
    used = tuple(given[n] is not None if n == "merchant_id" else _given(given[n]) for n in _FILTERS)
    return used, {n: given[n] for n, on in zip(_FILTERS, used, strict=True) if on}


def listing(conn: Connection, *, status: str | None = None, merchant_no: str | None = None,
            category: str | None = None, limit: int = 50, after_id: int = 0, offset: int = 0,
            merchant_id: int | None = None, merchant_search: str | None = None) -> list[dict[str, Any]]:
    """Payouts for people: merchant number, amount, status, latest diagnosis and the latest
    attempt's key (EndToEndId), ordered by id, paginated by ``after_id`` (the CLI) or ``offset``
    (the API); ``merchant_id`` limits the list to one merchant (a merchant user's scope);
    ``merchant_search`` keeps merchants whose number or name contains it (any case)."""
    used, values = _filter_values(status=status, merchant_no=merchant_no, category=category, merchant_id=merchant_id,
                                  merchant_like=search_pattern(merchant_search))
    rows = conn.execute(_listing_query(used), {**values, "after_id": after_id, "limit": limit, "offset": offset})
    return [dict(r._mapping) for r in rows]


def count_listing(conn: Connection, *, status: str | None = None, merchant_no: str | None = None,
                  category: str | None = None, merchant_id: int | None = None,
                  merchant_search: str | None = None) -> int:
    """How many payouts :func:`listing` would page through with these filters."""
    used, values = _filter_values(status=status, merchant_no=merchant_no, category=category, merchant_id=merchant_id,
                                  merchant_like=search_pattern(merchant_search))
    return int(conn.execute(_count_query(used), values).scalar_one())


@cache
def _one_query() -> Any:
    return _listing_columns().where(t.payouts.c.id == bindparam("payout_id"))


def one(conn: Connection, payout_id: int) -> dict[str, Any] | None:
    """One payout as :func:`listing` shows it, or None."""
    r = conn.execute(_one_query(), {"payout_id": payout_id}).first()
    return None if r is None else dict(r._mapping)


_OWNER = select(t.payouts.c.merchant_id).where(t.payouts.c.id == bindparam("payout_id"))


def owner(conn: Connection, payout_id: int) -> int | None:
    """The merchant id of a payout, or None when there is no such payout."""
    got = conn.execute(_OWNER, {"payout_id": payout_id}).scalar()
    return None if got is None else int(got)


_EVENTS = (select(t.payout_events.c.from_status, t.payout_events.c.to_status, t.payout_events.c.reason,
                  t.payout_events.c.created_at)
           .where(t.payout_events.c.payout_id == bindparam("payout_id")).order_by(t.payout_events.c.id))
_A = t.payout_attempts
_ATTEMPTS = (select(_A.c.attempt_no, _A.c.kind, _A.c.idempotency_key, _A.c.channel, _A.c.amount_fen, _A.c.requested_at,
                    _A.c.responded_at, _A.c.outcome, _A.c.code, _A.c.message, _A.c.category, _A.c.rule_id,
                    _A.c.decision, _A.c.batch_ref)
             .where(_A.c.payout_id == bindparam("payout_id")).order_by(_A.c.attempt_no))
_PARTS = (select(t.payouts.c.id, t.payouts.c.amount_fen, t.payouts.c.status, t.payouts.c.idempotency_key)
          .where(t.payouts.c.parent_id == bindparam("payout_id")).order_by(t.payouts.c.id))


def history(conn: Connection, payout_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(status events, attempts) of one payout, oldest first."""
    key = {"payout_id": payout_id}
    events = [dict(r._mapping) for r in conn.execute(_EVENTS, key)]
    attempts = [dict(r._mapping) for r in conn.execute(_ATTEMPTS, key)]
    return events, attempts


def parts_of(conn: Connection, payout_id: int) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(_PARTS, {"payout_id": payout_id})]


def alerts(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    o = t.ops_alerts
    return [dict(r._mapping) for r in conn.execute(
        select(o.c.id, o.c.kind, o.c.bank_code, o.c.message, o.c.created_at, o.c.acknowledged_at)
        .order_by(o.c.id.desc()).limit(limit))]


def due_counts_by_bank(conn: Connection) -> dict[str, int]:
    """Payouts waiting to be sent (created, retry scheduled, released), per receiving bank."""
    p, a = t.payouts, t.settlement_accounts
    q = (select(func.coalesce(a.c.bank_code, "-"), func.count())
         .select_from(p.outerjoin(a, and_(a.c.merchant_id == p.c.merchant_id, a.c.status == "active")))
         .where(p.c.status.in_([str(PayoutStatus.CREATED), str(PayoutStatus.RETRY_SCHEDULED),
                                str(PayoutStatus.RELEASED)]))
         .group_by(a.c.bank_code))
    return {str(b): int(n) for b, n in conn.execute(q)}


def held_on(conn: Connection, payout_ids: Sequence[int]) -> dict[int, int | None]:
    """The card each payout last went to or was held on (``payouts.account_id``; None: never one)."""
    if not payout_ids:
        return {}
    p = t.payouts
    return {int(i): (None if a is None else int(a)) for i, a in conn.execute(
        select(p.c.id, p.c.account_id).where(p.c.id.in_(sorted(set(payout_ids)))))}


def last_event_to(conn: Connection, payout_id: int, status: PayoutStatus) -> dict[str, Any] | None:
    """The payout's latest status event into ``status`` (reason, created_at), or None."""
    e = t.payout_events
    r = conn.execute(select(e.c.reason, e.c.created_at).where(e.c.payout_id == payout_id, e.c.to_status == str(status))
                     .order_by(e.c.id.desc()).limit(1)).first()
    return None if r is None else dict(r._mapping)


def returned_keys(conn: Connection, payout_ids: Sequence[int]) -> set[tuple[int, str]]:
    """(payout id, instruction key) of the returns (退票) recorded for these payouts."""
    if not payout_ids:
        return set()
    a = t.payout_attempts
    return {(int(i), str(k)) for i, k in conn.execute(
        select(a.c.payout_id, a.c.idempotency_key).where(a.c.payout_id.in_(sorted(set(payout_ids))),
                                                         a.c.outcome == "returned").distinct())}
