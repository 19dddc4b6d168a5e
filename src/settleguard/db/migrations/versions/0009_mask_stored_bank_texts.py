"""mask stored bank texts: card numbers already stored from outside texts are masked

Before this revision a pain.002 or camt.054 (AddtlInf, reason codes, notification ids), a bank's HTTP
answer (fields other than the echoed account), a card-verification answer or a notification receiver's
reply could put a full card number into the database. Every text column filled from outside is rewritten
with each card-number-like digit run masked (first 6 and last 4 digits kept), in batches of rows:

- payouts.last_code, payouts.last_message
- payout_attempts.code, .message, .raw_response (JSON answers whose escapes hide a number are written
  out again as JSON, masked)
- payout_events.reason, ops_alerts.message, notification_attempts.detail
- card_verifications.bank_code, .bank_message
- card_events.payload, notifications.payload (JSON: every string in it)

audit_events is left alone: its rows are hash-chained (each hash covers the payload), so rewriting one
would break the chain's verification; the audit log records operators' actions, not bank answers. Some
audit events cover payout_events rows with a digest (docs/audit.md): when masking changed such rows, one
audit event ``covers_reattested`` is appended to the chain (actor ``migration:0009``), naming each covering
event with the count and digest of its rows as they are now; ``audit verify`` checks those events' rows
against it (audit/model.py). The hash and digest code is a copy of audit/model.py and audit/repository.py.

The regex is a copy of settleguard/masking.py's (a migration does not import application code): keep both
the same. There is no downgrade: masked digits cannot be restored.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from settleguard.db.types import UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BATCH = 5_000

# Copied from settleguard/masking.py (same definition): 13 or more digits, ASCII or full-width, each
# optionally preceded by up to three spaces or dashes; first 6 and last 4 digits kept.
_MIN_DIGITS = 13
_SEP = r"[ \-\u00a0\u3000\u2010-\u2015\uff0d]"
_RUN = re.compile(rf"(?<!\d)\d(?:{_SEP}{{0,3}}\d){{{_MIN_DIGITS - 1},}}(?!\d)")
_NOT_DIGIT = re.compile(r"\D")


def _replace(m: re.Match[str]) -> str:
    digits = _NOT_DIGIT.sub("", m.group(0))
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask(text: str) -> str:
    return text if len(text) < _MIN_DIGITS else _RUN.sub(_replace, text)


def mask_json(value: Any) -> Any:
    """Every string (and every integer long enough to be a card number) of a JSON value, masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(k)): mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and _RUN.search(str(value)):
        return mask(str(value))
    return value


def mask_raw(text: str) -> str:
    """A stored raw answer, masked; a JSON answer that still hides a number behind escapes (or that masking
    turned into something that is not JSON) is written out again as masked JSON."""
    masked = mask(text)
    if "\\" not in text and masked == text:
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return masked
    try:
        again = json.loads(masked)
    except ValueError:
        again = None
    if again is None or mask_json(again) != again:
        return json.dumps(mask_json(data), ensure_ascii=False, separators=(",", ":"))
    return masked


# table -> (text columns, how to mask them); JSON columns are read and written through sa.JSON.
_TEXT = {
    "payouts": ("last_code", "last_message"),
    "payout_attempts": ("code", "message"),
    "payout_events": ("reason",),
    "ops_alerts": ("message",),
    "notification_attempts": ("detail",),
    "card_verifications": ("bank_code", "bank_message"),
}
_RAW = {"payout_attempts": ("raw_response",)}
_JSON = {"card_events": ("payload",), "notifications": ("payload",)}


def _rewrite(conn: sa.Connection, name: str) -> list[int]:
    """Mask the outside texts of table ``name``; returns the ids of the rows it changed."""
    texts, raws, jsons = _TEXT.get(name, ()), _RAW.get(name, ()), _JSON.get(name, ())
    cols = [sa.column("id", sa.Integer)] + [sa.column(c, sa.Text) for c in (*texts, *raws)] + [
        sa.column(c, sa.JSON) for c in jsons]
    table = sa.table(name, *cols)
    last = 0
    done: list[int] = []
    while True:
        rows = conn.execute(sa.select(*table.c).where(table.c.id > last).order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return done
        last = rows[-1].id
        changed: list[dict[str, Any]] = []
        for row in rows:
            new: dict[str, Any] = {}
            for c in texts:
                value = getattr(row, c)
                if value is not None and (masked := mask(value)) != value:
                    new[c] = masked
            for c in raws:
                value = getattr(row, c)
                if value is not None and (masked := mask_raw(value)) != value:
                    new[c] = masked
            for c in jsons:
                value = getattr(row, c)
                if value is not None and (masked_json := mask_json(value)) != value:
                    new[c] = masked_json
            if new:
                changed.append({"row_id": row.id, **{f"v_{c}": v for c, v in new.items()}})
        # one UPDATE per set of changed columns, each run for all of the batch's rows that need it
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in changed:
            by_columns.setdefault(tuple(sorted(k[2:] for k in change if k != "row_id")), []).append(change)
        for columns, params in by_columns.items():
            stmt = (sa.update(table).where(table.c.id == sa.bindparam("row_id"))
                    .values({c: sa.bindparam(f"v_{c}") for c in columns}))
            conn.execute(stmt, params)
        done += [int(c["row_id"]) for c in changed]


# --- the audit chain: re-attest the digests of covered payout_events rows (copied from settleguard.audit) ---

_GENESIS = "0" * 64
_ADVISORY_KEY = 0x53_47_41_55_44_49_54  # audit/repository.py ADVISORY_KEY
_SEP_ROW = "\x1e"
_DIGEST_SQL = {
    "sqlite": ("SELECT count(*), group_concat(printf('%d' || char(31) || '%d' || char(31) || '%s' || char(31)"
               " || '%s' || char(31) || '%d' || char(31) || '%s' || char(31) || '%s', id, payout_id,"
               " coalesce(from_status, '~'), to_status, length(reason), reason, created_at), char(30))"
               " FROM payout_events WHERE {where}"),
    "postgresql": ("SELECT count(*), string_agg(id::text || chr(31) || payout_id::text || chr(31)"
                   " || coalesce(from_status, '~') || chr(31) || to_status || chr(31) || length(reason)::text"
                   " || chr(31) || reason || chr(31)"
                   " || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), chr(30) ORDER BY id)"
                   " FROM payout_events WHERE {where}"),
}
_AUDIT = sa.table("audit_events", sa.column("id", sa.Integer), sa.column("at", UTCDateTime()),
                  sa.column("actor", sa.String), sa.column("kind", sa.String), sa.column("subject_type", sa.String),
                  sa.column("subject_id", sa.String), sa.column("payload", sa.Text), sa.column("prev_hash", sa.String),
                  sa.column("hash", sa.String))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest(conn: sa.Connection, ranges: list[list[int]]) -> tuple[int, str]:
    sql = _DIGEST_SQL[conn.dialect.name]
    if conn.dialect.name == "sqlite":
        total, parts = 0, []
        for a, b in ranges:
            n, joined = conn.execute(sa.text(sql.format(where="id BETWEEN :a AND :b")), {"a": int(a), "b": int(b)}).one()
            total += int(n)
            if joined:
                parts.append(joined)
        return total, _sha256(_SEP_ROW.join(parts))
    where = " OR ".join(f"id BETWEEN :a{i} AND :b{i}" for i in range(len(ranges)))
    params: dict[str, int] = {}
    for i, (a, b) in enumerate(ranges):
        params[f"a{i}"], params[f"b{i}"] = int(a), int(b)
    n, joined = conn.execute(sa.text(sql.format(where=where)), params).one()
    return int(n), _sha256(joined or "")


def _touches(ranges: list[list[int]], changed: list[int]) -> bool:
    for a, b in ranges:
        i = bisect_left(changed, int(a))
        if i < len(changed) and changed[i] <= int(b):
            return True
    return False


def _reattest(conn: sa.Connection, changed: list[int]) -> None:
    """Append one ``covers_reattested`` audit event for the events whose covered payout_events rows changed."""
    if not changed:
        return
    changed = sorted(changed)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
    items: list[dict[str, Any]] = []
    last = 0
    while True:
        rows = conn.execute(sa.select(_AUDIT.c.id, _AUDIT.c.payload).where(_AUDIT.c.id > last)
                            .order_by(_AUDIT.c.id).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            try:
                data = json.loads(row.payload)
            except ValueError:
                continue
            c = data.get("covers") if isinstance(data, dict) else None
            if isinstance(c, dict) and c.get("table") == "payout_events" and _touches(c.get("ranges") or [], changed):
                count, digest = _digest(conn, c["ranges"])
                items.append({"event": int(row.id), "table": "payout_events", "count": count, "digest": digest})
    if not items:
        return
    prev = conn.execute(sa.select(_AUDIT.c.id, _AUDIT.c.hash).order_by(_AUDIT.c.id.desc()).limit(1)).first()
    new_id, prev_hash = (1, _GENESIS) if prev is None else (int(prev.id) + 1, str(prev.hash))
    at = datetime.now(UTC)
    actor, kind = "migration:0009", "covers_reattested"
    payload = json.loads(_canonical({
        "reason": "0009 已掩码银行文字中的卡号 card numbers in stored bank texts masked", "reattests": items}))
    body = {"id": new_id, "at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": actor,
            "kind": kind, "subject_type": None, "subject_id": None, "payload": payload}
    conn.execute(sa.insert(_AUDIT).values(id=new_id, at=at, actor=actor, kind=kind, subject_type=None,
                                          subject_id=None, payload=_canonical(payload), prev_hash=prev_hash,
                                          hash=_sha256(prev_hash + "\n" + _canonical(body))))


def upgrade() -> None:
    conn = op.get_bind()
    for name in dict.fromkeys([*_TEXT, *_RAW, *_JSON]):
        changed = _rewrite(conn, name)
        if name == "payout_events":
            _reattest(conn, changed)


def downgrade() -> None:
    """Nothing to undo: masked digits cannot be restored (and masked texts are valid before 0009 too)."""
