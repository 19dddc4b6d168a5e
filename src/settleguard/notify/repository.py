"""SQL for merchant notices: preferences, the ``notifications`` outbox, the delivery queue (with leases)
and the delivery log.

This is the only module that writes to the outbox (one row per dedupe key): card notices
(:func:`add_notification`, from cards.service) and payout notices (:func:`add_notices`, from notify.outbox)
share one table (tests/unit/test_architecture_ownership.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from settleguard.db import tables as t
from settleguard.merchants.model import AccountStatus
from settleguard.notify.model import Channel, DeliveryStatus, Preferences, channels_in

D = DeliveryStatus


@dataclass(frozen=True)
class Sealed:
    cipher: bytes
    nonce: bytes
    key_version: int


# --- merchants and cards ------------------------------------------------------------------------

def merchant_id(conn: Connection, merchant_no: str) -> int | None:
    m = t.merchants
    v = conn.execute(select(m.c.id).where(m.c.merchant_no == merchant_no)).scalar()
    return None if v is None else int(v)


def merchant_facts(conn: Connection, mid: int) -> tuple[str, str]:
    """(merchant_no, registered name)."""
    m = t.merchants
    row = conn.execute(select(m.c.merchant_no, m.c.registered_name).where(m.c.id == mid)).one()
    return str(row.merchant_no), str(row.registered_name)


def card_mask(conn: Connection, account_id: int | None, mid: int) -> str | None:
    """The masked number of ``account_id``, or of the merchant's active card when it is None."""
    a = t.settlement_accounts
    q = select(a.c.pan_masked)
    q = q.where(a.c.id == account_id) if account_id is not None else q.where(
        a.c.merchant_id == mid, a.c.status == str(AccountStatus.ACTIVE)).order_by(a.c.id.desc()).limit(1)
    v = conn.execute(q).scalar()
    return None if v is None else str(v)


_IN_CHUNK = 2000  # ids per IN (...) list: well under SQLite's and psycopg's parameter limits


def _chunked(ids: Sequence[int]) -> list[list[int]]:
    distinct = sorted(set(ids))
    return [distinct[i:i + _IN_CHUNK] for i in range(0, len(distinct), _IN_CHUNK)]


def merchant_facts_many(conn: Connection, mids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """merchant id -> (merchant_no, registered name), for many merchants at once."""
    m = t.merchants
    out: dict[int, tuple[str, str]] = {}
    for part in _chunked(mids):
        for r in conn.execute(select(m.c.id, m.c.merchant_no, m.c.registered_name).where(m.c.id.in_(part))):
            out[int(r.id)] = (str(r.merchant_no), str(r.registered_name))
    return out


def card_masks(conn: Connection, account_ids: Sequence[int]) -> dict[int, str]:
    """account id -> masked card number, for many accounts at once."""
    a = t.settlement_accounts
    out: dict[int, str] = {}
    for part in _chunked(account_ids):
        for r in conn.execute(select(a.c.id, a.c.pan_masked).where(a.c.id.in_(part))):
            out[int(r.id)] = str(r.pan_masked)
    return out


def active_card_masks(conn: Connection, mids: Sequence[int]) -> dict[int, str]:
    """merchant id -> masked number of its active card (the newest, as :func:`card_mask`)."""
    a = t.settlement_accounts
    out: dict[int, str] = {}
    for part in _chunked(mids):
        for r in conn.execute(select(a.c.merchant_id, a.c.pan_masked)
                              .where(a.c.merchant_id.in_(part), a.c.status == str(AccountStatus.ACTIVE))
                              .order_by(a.c.id)):
            out[int(r.merchant_id)] = str(r.pan_masked)  # ascending ids: the newest wins
    return out


# --- preferences --------------------------------------------------------------------------------

def _prefs(row: Any, merchant_no: str) -> Preferences:
    chans = row.channels if isinstance(row.channels, list) else []
    return Preferences(int(row.merchant_id), merchant_no, row.webhook_url, row.webhook_secret_cipher is not None,
                       row.email, row.sms_phone, tuple(channels_in([str(c) for c in chans])), str(row.lang or "zh"))


def preferences(conn: Connection, mid: int) -> Preferences | None:
    p, m = t.notification_preferences, t.merchants
    row = conn.execute(select(p, m.c.merchant_no).join(m, m.c.id == p.c.merchant_id)
                       .where(p.c.merchant_id == mid)).first()
    return None if row is None else _prefs(row, str(row.merchant_no))


def preferences_many(conn: Connection, mids: Sequence[int]) -> dict[int, Preferences]:
    """merchant id -> preferences, for those of ``mids`` that have any."""
    p, m = t.notification_preferences, t.merchants
    out: dict[int, Preferences] = {}
    for part in _chunked(mids):
        for row in conn.execute(select(p, m.c.merchant_no).join(m, m.c.id == p.c.merchant_id)
                                .where(p.c.merchant_id.in_(part))):
            out[int(row.merchant_id)] = _prefs(row, str(row.merchant_no))
    return out


def secret(conn: Connection, mid: int) -> Sealed | None:
    p = t.notification_preferences
    row = conn.execute(select(p.c.webhook_secret_cipher, p.c.webhook_secret_nonce, p.c.webhook_key_version)
                       .where(p.c.merchant_id == mid)).first()
    if row is None or row.webhook_secret_cipher is None:
        return None
    return Sealed(bytes(row.webhook_secret_cipher), bytes(row.webhook_secret_nonce), int(row.webhook_key_version))


def sms_phone(conn: Connection, mid: int) -> str | None:
    p = t.notification_preferences
    v = conn.execute(select(p.c.sms_phone).where(p.c.merchant_id == mid)).scalar()
    return None if v is None else str(v)


def save_preferences(conn: Connection, mid: int, values: dict[str, Any], now: datetime) -> None:
    """Insert or update the merchant's preferences with ``values`` (columns of notification_preferences)."""
    p = t.notification_preferences
    if conn.execute(select(p.c.merchant_id).where(p.c.merchant_id == mid)).first() is None:
        row = {"merchant_id": mid, "webhook_url": None, "webhook_secret_cipher": None, "webhook_secret_nonce": None,
               "webhook_key_version": None, "email": None, "sms_phone": None, "channels": [], "lang": "zh",
               "updated_at": now, **values}
        conn.execute(insert(p).values(**row))
    else:
        conn.execute(update(p).where(p.c.merchant_id == mid).values(**values, updated_at=now))


# --- the outbox and the queue -------------------------------------------------------------------

def add_notification(conn: Connection, *, merchant_id: int, kind: str, dedupe_key: str,
                     payload: dict[str, Any], now: datetime) -> bool:
    """Write to the outbox unless a notification with the same dedupe key exists; True if written."""
    values = {"merchant_id": merchant_id, "kind": kind, "dedupe_key": dedupe_key[:128], "payload": payload,
              "created_at": now, "delivered_at": None}
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(t.notifications).values(**values).on_conflict_do_nothing(
            index_elements=["dedupe_key"])
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(t.notifications).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        n = t.notifications
        if conn.execute(select(n.c.id).where(n.c.dedupe_key == values["dedupe_key"])).first():
            return False
        stmt = insert(n).values(**values)
    # RETURNING: a row comes back only when one was written (rowcount is -1 with psycopg's RETURNING).
    return conn.execute(stmt.returning(t.notifications.c.id)).first() is not None


def add_notices(conn: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> dict[str, int]:
    """Write many notices (dicts with merchant_id, kind, dedupe_key, payload) in one statement; those
    whose dedupe key is taken are skipped. Returns dedupe key -> new id for the rows written."""
    if not rows:
        return {}
    n = t.notifications
    values = [{"merchant_id": r["merchant_id"], "kind": str(r["kind"])[:32], "dedupe_key": str(r["dedupe_key"])[:128],
               "payload": r["payload"], "created_at": now, "delivered_at": None} for r in rows]
    ins: Any = postgresql.insert(n) if conn.dialect.name == "postgresql" else sqlite.insert(n)
    stmt = ins.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(n.c.id, n.c.dedupe_key)
    return {str(key): int(nid) for nid, key in conn.execute(stmt, values)}


def enqueue_many(conn: Connection, queued: Sequence[tuple[int, Sequence[tuple[Channel, str]]]], now: datetime) -> int:
    """:func:`enqueue` for many notices at once: (notification id, targets) pairs; returns rows added."""
    rows = [{"notification_id": nid, "channel": str(c), "target": target[:512], "status": str(D.pending),
             "attempts": 0, "next_attempt_at": now, "lease_until": None, "delivered_at": None, "created_at": now}
            for nid, targets in queued for c, target in targets]
    if not rows:
        return 0
    d = t.notification_deliveries
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(d).on_conflict_do_nothing(
            constraint="uq_notification_deliveries_notification_channel")
    else:
        stmt = sqlite.insert(d).on_conflict_do_nothing(index_elements=["notification_id", "channel"])
    return len(conn.execute(stmt.returning(d.c.id), rows).all())


def notification_id(conn: Connection, dedupe_key: str) -> int | None:
    n = t.notifications
    v = conn.execute(select(n.c.id).where(n.c.dedupe_key == dedupe_key[:128])).scalar()
    return None if v is None else int(v)


def enqueue(conn: Connection, nid: int, targets: Sequence[tuple[Channel, str]], now: datetime) -> int:
    """One pending delivery per channel (ignored when that channel is already queued); returns rows added."""
    if not targets:
        return 0
    rows = [{"notification_id": nid, "channel": str(c), "target": target[:512], "status": str(D.pending),
             "attempts": 0, "next_attempt_at": now, "lease_until": None, "delivered_at": None, "created_at": now}
            for c, target in targets]
    d = t.notification_deliveries
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(d).values(rows).on_conflict_do_nothing(
            constraint="uq_notification_deliveries_notification_channel")
    else:
        stmt = sqlite.insert(d).values(rows).on_conflict_do_nothing(index_elements=["notification_id", "channel"])
    return len(conn.execute(stmt.returning(d.c.id)).all())  # rowcount is -1 on psycopg with RETURNING


def unqueued(conn: Connection, since: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """(notification id, merchant id) of undelivered notices since ``since`` that have no delivery rows
    while their merchant has preferences (notices written before the merchant chose channels, and
    card notices written by cards.service)."""
    n, d, p = t.notifications, t.notification_deliveries, t.notification_preferences
    q = (select(n.c.id, n.c.merchant_id).join(p, p.c.merchant_id == n.c.merchant_id)
         .where(n.c.delivered_at.is_(None), n.c.created_at >= since,
                ~exists().where(d.c.notification_id == n.c.id)).order_by(n.c.id).limit(limit))
    return [(int(r.id), int(r.merchant_id)) for r in conn.execute(q)]


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    notification_id: int
    merchant_id: int
    channel: Channel
    target: str
    attempt_no: int
    attempt_id: int
    kind: str
    payload: dict[str, Any]


def _due(now: datetime, max_attempts: int) -> Any:
    d = t.notification_deliveries
    return and_(d.c.attempts < max_attempts, or_(
        and_(d.c.status == str(D.pending), d.c.next_attempt_at <= now),
        and_(d.c.status == str(D.delivering), d.c.lease_until < now)))


def give_up_abandoned(conn: Connection, now: datetime, max_attempts: int) -> int:
    """Deliveries left ``delivering`` by a dead worker after their last allowed try: gave_up."""
    d = t.notification_deliveries
    res = conn.execute(update(d).where(d.c.status == str(D.delivering), d.c.lease_until < now,
                                       d.c.attempts >= max_attempts).values(status=str(D.gave_up), lease_until=None))
    return int(res.rowcount or 0)


def claim(conn: Connection, now: datetime, lease_until: datetime, limit: int, max_attempts: int) -> list[Claimed]:
    """Take up to ``limit`` due deliveries (pending and due, or delivering with an expired lease): each
    gets a lease, one more try and an open attempt row. Rows locked by another worker are skipped
    (PostgreSQL); the update is conditional on the try count, so two workers never take one row."""
    d, n = t.notification_deliveries, t.notifications
    q = (select(d.c.id, d.c.attempts, d.c.status).where(_due(now, max_attempts))
         .order_by(d.c.next_attempt_at, d.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    out: list[Claimed] = []
    a = t.notification_attempts
    for row in conn.execute(q).all():
        res = conn.execute(update(d).where(d.c.id == row.id, d.c.attempts == row.attempts, _due(now, max_attempts))
                           .values(status=str(D.delivering), attempts=row.attempts + 1, lease_until=lease_until))
        if not res.rowcount:
            continue
        if row.status == str(D.delivering):  # a worker died mid-delivery: close its open try in the log
            conn.execute(update(a).where(a.c.delivery_id == row.id, a.c.finished_at.is_(None))
                         .values(finished_at=now, ok=False, detail="租约过期，工作进程可能已中断 lease expired: "
                                                                   "the worker died mid-delivery"))
        ins = conn.execute(insert(a).values(delivery_id=row.id, attempt_no=row.attempts + 1, started_at=now,
                                            finished_at=None, ok=None, http_status=None, detail=None))
        pk = ins.inserted_primary_key
        assert pk is not None
        info = conn.execute(select(d.c.notification_id, d.c.channel, d.c.target, n.c.merchant_id, n.c.kind,
                                   n.c.payload).join(n, n.c.id == d.c.notification_id)
                            .where(d.c.id == row.id)).one()
        out.append(Claimed(int(row.id), int(info.notification_id), int(info.merchant_id), Channel(info.channel),
                           str(info.target), int(row.attempts) + 1, int(pk[0]), str(info.kind),
                           dict(info.payload or {})))
    return out


def finish_attempt(conn: Connection, attempt_id: int, *, ok: bool, http_status: int | None, detail: str,
                   now: datetime) -> None:
    a = t.notification_attempts
    conn.execute(update(a).where(a.c.id == attempt_id).values(finished_at=now, ok=ok, http_status=http_status,
                                                             detail=detail[:512]))


def mark_delivered(conn: Connection, c: Claimed, now: datetime) -> None:
    d, n = t.notification_deliveries, t.notifications
    conn.execute(update(d).where(d.c.id == c.delivery_id, d.c.status != str(D.delivered))
                 .values(status=str(D.delivered), delivered_at=now, lease_until=None))
    conn.execute(update(n).where(n.c.id == c.notification_id, n.c.delivered_at.is_(None)).values(delivered_at=now))


def mark_failed(conn: Connection, c: Claimed, next_at: datetime | None) -> bool:
    """After a failed try: pending again at ``next_at``, or gave_up (None). Only while the row is still
    this try's (another worker may have taken it after the lease expired); True if changed."""
    d = t.notification_deliveries
    values: dict[str, Any] = ({"status": str(D.gave_up), "lease_until": None} if next_at is None
                              else {"status": str(D.pending), "next_attempt_at": next_at, "lease_until": None})
    res = conn.execute(update(d).where(d.c.id == c.delivery_id, d.c.status == str(D.delivering),
                                       d.c.attempts == c.attempt_no).values(**values))
    return bool(res.rowcount)


# --- reading ------------------------------------------------------------------------------------

def _log_query(columns: Any, mid: int | None) -> Any:
    a, d, n, m = t.notification_attempts, t.notification_deliveries, t.notifications, t.merchants
    q = (select(*columns).select_from(a).join(d, d.c.id == a.c.delivery_id).join(n, n.c.id == d.c.notification_id)
         .join(m, m.c.id == n.c.merchant_id))
    return q if mid is None else q.where(n.c.merchant_id == mid)


def delivery_log(conn: Connection, mid: int | None = None, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    """Every try, newest first: time, channel, target, status, http code, detail."""
    a, d, n, m = t.notification_attempts, t.notification_deliveries, t.notifications, t.merchants
    q = _log_query((a.c.id.label("attempt_id"), a.c.delivery_id, d.c.notification_id, n.c.merchant_id,
                    m.c.merchant_no, n.c.kind, d.c.channel, d.c.target, a.c.attempt_no, a.c.started_at,
                    a.c.finished_at, a.c.ok, a.c.http_status, a.c.detail, d.c.status.label("delivery_status"),
                    d.c.next_attempt_at), mid)
    return [dict(r._mapping) for r in conn.execute(q.order_by(a.c.id.desc()).limit(limit).offset(offset))]


def count_delivery_log(conn: Connection, mid: int | None = None) -> int:
    return int(conn.execute(_log_query((func.count(),), mid)).scalar_one())


def deliveries_of(conn: Connection, nid: int) -> list[dict[str, Any]]:
    d = t.notification_deliveries
    return [dict(r._mapping) for r in conn.execute(select(d).where(d.c.notification_id == nid).order_by(d.c.id))]


def unclaim(conn: Connection, c: Claimed) -> None:
    """Give back a claimed delivery that was not tried (the time box ran out): no try is counted."""
    d, a = t.notification_deliveries, t.notification_attempts
    conn.execute(a.delete().where(a.c.id == c.attempt_id, a.c.finished_at.is_(None)))
    conn.execute(update(d).where(d.c.id == c.delivery_id, d.c.status == str(D.delivering),
                                 d.c.attempts == c.attempt_no)
                 .values(status=str(D.pending), attempts=c.attempt_no - 1, lease_until=None))
