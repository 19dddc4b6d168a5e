"""SQL for the card keys this database's secrets are sealed with (table ``card_keys``, migration 0008)
and the sealed values themselves: settlement card numbers and merchants' webhook secrets.

No rules here (cards/custody.py decides, cards/key_rotation.py re-encrypts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from settleguard.db import tables as t


@dataclass(frozen=True)
class KeyRow:
    version: int
    fingerprint: str
    created_at: datetime
    retired_at: datetime | None


def lock(conn: Connection) -> None:
    """Serialise deciding and recording keys (PostgreSQL; SQLite's BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE card_keys IN SHARE ROW EXCLUSIVE MODE")


def recorded(conn: Connection) -> dict[int, KeyRow]:
    k = t.card_keys
    return {int(r.version): KeyRow(int(r.version), str(r.fingerprint), r.created_at, r.retired_at)
            for r in conn.execute(select(k.c.version, k.c.fingerprint, k.c.created_at, k.c.retired_at))}


def record(conn: Connection, fingerprints: Mapping[int, str], now: datetime) -> None:
    if fingerprints:
        conn.execute(insert(t.card_keys), [{"version": v, "fingerprint": fp, "created_at": now, "retired_at": None}
                                           for v, fp in sorted(fingerprints.items())])


def retire(conn: Connection, versions: Sequence[int], now: datetime) -> None:
    k = t.card_keys
    if versions:
        conn.execute(update(k).where(k.c.version.in_(list(versions)), k.c.retired_at.is_(None)).values(retired_at=now))


def sealed_versions(conn: Connection) -> dict[int, int]:
    """How many sealed values (card numbers and webhook secrets) there are per key version."""
    a, p = t.settlement_accounts, t.notification_preferences
    out: dict[int, int] = {}
    for v, n in conn.execute(select(a.c.key_version, func.count()).group_by(a.c.key_version)):
        out[int(v)] = out.get(int(v), 0) + int(n)
    for v, n in conn.execute(select(p.c.webhook_key_version, func.count())
                             .where(p.c.webhook_secret_cipher.is_not(None)).group_by(p.c.webhook_key_version)):
        out[int(v)] = out.get(int(v), 0) + int(n)
    return out


def sample(conn: Connection, version: int, limit: int) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` sealed values (cipher, nonce) under ``version``: the oldest and newest cards, then
    webhook secrets."""
    a, p = t.settlement_accounts, t.notification_preferences
    half = max(1, limit // 2)
    got: dict[tuple[bytes, bytes], None] = {}
    for order in (a.c.id.asc(), a.c.id.desc()):
        for c, n in conn.execute(select(a.c.pan_cipher, a.c.pan_nonce).where(a.c.key_version == version)
                                 .order_by(order).limit(half)):
            got[(bytes(c), bytes(n))] = None
    if len(got) < limit:
        for c, n in conn.execute(select(p.c.webhook_secret_cipher, p.c.webhook_secret_nonce)
                                 .where(p.c.webhook_key_version == version, p.c.webhook_secret_cipher.is_not(None))
                                 .order_by(p.c.merchant_id).limit(limit - len(got))):
            got[(bytes(c), bytes(n))] = None
    return list(got)[:limit]


def sealed_secrets(conn: Connection, *, not_version: int) -> list[tuple[int, bytes, bytes, int]]:
    """(merchant id, cipher, nonce, key version) of webhook secrets sealed under another version."""
    p = t.notification_preferences
    return [(int(m), bytes(c), bytes(n), int(v)) for m, c, n, v in conn.execute(
        select(p.c.merchant_id, p.c.webhook_secret_cipher, p.c.webhook_secret_nonce, p.c.webhook_key_version)
        .where(p.c.webhook_secret_cipher.is_not(None), p.c.webhook_key_version != not_version)
        .order_by(p.c.merchant_id))]


def reseal_secrets(conn: Connection, rows: Sequence[tuple[int, bytes, bytes, int, int]]) -> None:
    """rows: (merchant id, new cipher, new nonce, new version, old version); the old version guards the update."""
    p = t.notification_preferences
    if not rows:
        return
    res = conn.execute(
        update(p).where(and_(p.c.merchant_id == bindparam("mid"), p.c.webhook_key_version == bindparam("old_version")))
        .values(webhook_secret_cipher=bindparam("v_cipher"), webhook_secret_nonce=bindparam("v_nonce"),
                webhook_key_version=bindparam("v_version")),
        [{"mid": m, "v_cipher": c, "v_nonce": n, "v_version": v, "old_version": o} for m, c, n, v, o in rows])
    if res.rowcount != len(rows):
        raise RuntimeError(f"key rotation: {len(rows) - res.rowcount} webhook secrets changed while being re-encrypted")


def sealed_counts(conn: Connection) -> tuple[dict[int, int], dict[int, int]]:
    """(settlement cards per key version, webhook secrets per key version)."""
    a, p = t.settlement_accounts, t.notification_preferences
    cards = {int(v): int(n) for v, n in conn.execute(select(a.c.key_version, func.count()).group_by(a.c.key_version))}
    secrets = {int(v): int(n) for v, n in conn.execute(
        select(p.c.webhook_key_version, func.count()).where(p.c.webhook_secret_cipher.is_not(None))
        .group_by(p.c.webhook_key_version))}
    return cards, secrets


def count_not_under(conn: Connection, version: int) -> int:
    """Sealed values (cards and webhook secrets) under another key version than ``version``."""
    a, p = t.settlement_accounts, t.notification_preferences
    n = conn.execute(select(func.count()).select_from(a).where(a.c.key_version != version)).scalar_one()
    m = conn.execute(select(func.count()).select_from(p).where(p.c.webhook_secret_cipher.is_not(None),
                                                                 p.c.webhook_key_version != version)).scalar_one()
    return int(n) + int(m)


def secrets_page(conn: Connection, *, not_version: int, after_merchant: int, limit: int
                 ) -> list[tuple[int, bytes, bytes, int]]:
    """(merchant id, cipher, nonce, key version) of webhook secrets under another version, by merchant, paged."""
    p = t.notification_preferences
    return [(int(m), bytes(c), bytes(n), int(v)) for m, c, n, v in conn.execute(
        select(p.c.merchant_id, p.c.webhook_secret_cipher, p.c.webhook_secret_nonce, p.c.webhook_key_version)
        .where(p.c.webhook_secret_cipher.is_not(None), p.c.webhook_key_version != not_version,
               p.c.merchant_id > after_merchant)
        .order_by(p.c.merchant_id).limit(limit))]


# --- rotations (card_key_rotations, migration 0024) ----------------------------------------------------

@dataclass(frozen=True)
class RotationRow:
    id: int
    new_version: int
    old_versions: tuple[int, ...]
    fingerprint: str | None
    phase: str
    keep_old: bool
    store: str
    total: int
    done: int
    runs: int
    actor: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _rotation(r: Any) -> RotationRow:
    return RotationRow(int(r.id), int(r.new_version), tuple(int(v) for v in str(r.old_versions).split(",") if v),
                       r.fingerprint, str(r.phase), bool(r.keep_old), str(r.store), int(r.total), int(r.done),
                       int(r.runs), str(r.actor), r.started_at, r.updated_at, r.finished_at)


def unfinished_rotation(conn: Connection) -> RotationRow | None:
    """The rotation not done yet (at most one: started under the card_keys lock), if any."""
    k = t.card_key_rotations
    r = conn.execute(select(k).where(k.c.phase != "done").order_by(k.c.id.desc()).limit(1)).first()
    return None if r is None else _rotation(r)


def last_rotation(conn: Connection) -> RotationRow | None:
    k = t.card_key_rotations
    r = conn.execute(select(k).order_by(k.c.id.desc()).limit(1)).first()
    return None if r is None else _rotation(r)


def rotation(conn: Connection, rotation_id: int) -> RotationRow:
    k = t.card_key_rotations
    return _rotation(conn.execute(select(k).where(k.c.id == rotation_id)).one())


def start_rotation(conn: Connection, *, new_version: int, old_versions: Sequence[int], keep_old: bool, store: str,
                   total: int, actor: str, now: datetime) -> int:
    k = t.card_key_rotations
    return int(conn.execute(insert(k).values(
        new_version=new_version, old_versions=",".join(map(str, sorted(old_versions))), fingerprint=None,
        phase="new_key", keep_old=keep_old, store=store, total=total, done=0, runs=1, actor=actor[:64],
        started_at=now, updated_at=now, finished_at=None).returning(k.c.id)).scalar_one())


def update_rotation(conn: Connection, rotation_id: int, now: datetime, *, add_done: int = 0, add_runs: int = 0,
                    **values: Any) -> None:
    """Set ``values`` (phase, fingerprint, total, finished_at) and add to the counters."""
    k = t.card_key_rotations
    conn.execute(update(k).where(k.c.id == rotation_id).values(
        updated_at=now, done=k.c.done + add_done, runs=k.c.runs + add_runs, **values))
