"""Recording and verifying the audit trail.

``record`` is called inside the transaction of the change it describes, so the change and its
event commit together or not at all. Subjects are ``(type, id)`` pairs such as
``("payout", 12)``, ``("merchant", 7)``, ``("case", 3)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table

from settleguard.audit import model
from settleguard.audit import repository as repo

Subject = tuple[str, str | int] | None

COVERS = model.COVERS
CONFIG_SNAPSHOT = "config_snapshot"
CONFIG_CHANGED = "config_changed"
CONFIG_SUBJECT = ("config", "settings")  # found through the subject index, however long the chain
# Settings never written to the trail, by name (a name containing one of these words).
SECRET_WORDS = ("key", "secret", "password", "passwd", "token", "credential")


def record(conn: Connection, actor: str, kind: str, subject: Subject, payload: Mapping[str, Any],
           now: datetime) -> None:
    """Record one event in ``conn``'s transaction: it joins the chain when the transaction commits
    (and vanishes with it on rollback).

    ``kind`` is dotted, domain first ("payout.status", "card.card_rebound", "case.assign"); the
    payload must be JSON (dates become text) and must not hold secrets or full card numbers.
    """
    st, sid = (None, None) if subject is None else (subject[0], str(subject[1]))
    repo.defer(conn, at=now, actor=actor, kind=kind, subject_type=st, subject_id=sid, payload=payload)


def record_covering(conn: Connection, actor: str, kind: str, subject: Subject, payload: Mapping[str, Any],
                    table: Table, ranges: list[tuple[int, int]], now: datetime) -> None:
    """One event for rows of ``table`` just inserted (their id ranges), with their digest computed
    now; nothing when no row was inserted."""
    if ranges:
        record(conn, actor, kind, subject, {**payload, model.COVERS: repo.cover(conn, table, ranges)}, now)


def cover(conn: Connection, table: Table, ranges: list[tuple[int, int]]) -> dict[str, Any]:
    """The ``covers`` payload part (id ranges, count, digest) for rows of ``table`` just inserted."""
    return repo.cover(conn, table, ranges)


def insert_rows_covered(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return repo.insert_rows_covered(conn, table, rows)


def insert_select_covered(conn: Connection, table: Table, stmt: Insert) -> list[tuple[int, int]]:
    return repo.insert_select_covered(conn, table, stmt)


def verify(engine: Engine) -> model.Verdict:
    """Read the whole chain, recompute the digests of covered rows, and check everything."""
    with engine.connect() as conn:
        events = list(repo.chain(conn))
        recomputed: dict[int, model.Recomputed] = {}
        for e in events:
            c = model.covered(e)
            if c is None:
                continue
            try:
                recomputed[e.id] = repo.digest(conn, str(c["table"]), c["ranges"])
            except (KeyError, TypeError, ValueError):
                continue  # an unknown table or a malformed range: reported as a mismatch
    return model.verify(events, recomputed)


def head(engine: Engine) -> model.Event | None:
    with engine.connect() as conn:
        return repo.last(conn)


# --- configuration -------------------------------------------------------------------------

NOT_SECRET = frozenset({"key_file"})  # where the key lives, not the key


def is_secret(name: str) -> bool:
    n = name.lower()
    return n not in NOT_SECRET and any(w in n for w in SECRET_WORDS)


def public_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that may be written down: secrets dropped, a password in a URL masked."""
    from sqlalchemy.engine import make_url

    out: dict[str, Any] = {}
    for name, value in values.items():
        if is_secret(name):
            continue
        if name in ("db", "read_db") and isinstance(value, str):  # read_db: the standby (docs/operations.md)
            try:
                value = make_url(value).render_as_string(hide_password=True)
            except Exception:  # noqa: BLE001 - not a URL: keep only its scheme
                value = value.split(":", 1)[0]
        out[name] = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
    return out


def snapshot_config(engine: Engine, values: Mapping[str, Any], now: datetime, actor: str = "config") -> str | None:
    """Compare the effective non-secret settings with the last snapshot; append ``config_snapshot``
    (first time) or ``config_changed`` (naming the changed keys). Returns the kind appended."""
    current = public_settings(values)
    digest = model.sha256_text(model.canonical(current))
    with engine.connect() as conn:
        before = repo.last_of_kinds(conn, (CONFIG_SNAPSHOT, CONFIG_CHANGED), CONFIG_SUBJECT)
    old = before.data() if before is not None else None
    if isinstance(old, dict) and old.get("digest") == digest:
        return None
    with engine.begin() as conn:
        before = repo.last_of_kinds(conn, (CONFIG_SNAPSHOT, CONFIG_CHANGED), CONFIG_SUBJECT)  # re-read under the transaction
        old = before.data() if before is not None else None
        if isinstance(old, dict) and old.get("digest") == digest:
            return None
        if not isinstance(old, dict):
            record(conn, actor, CONFIG_SNAPSHOT, CONFIG_SUBJECT, {"digest": digest, "settings": current}, now)
            return CONFIG_SNAPSHOT
        prev = old.get("settings") or {}
        changed = sorted(k for k in set(prev) | set(current) if prev.get(k) != current.get(k))
        record(conn, actor, CONFIG_CHANGED, CONFIG_SUBJECT, {
            "digest": digest, "previous_digest": old.get("digest"), "changed": changed,
            "settings": current}, now)
        return CONFIG_CHANGED
