"""SQL of terminal changes (merchants/terminals.py): the terminals row and its terminal_events history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from settleguard.db import tables as t


def merchant(conn: Connection, merchant_no: str) -> tuple[int, str] | None:
    """(id, status) of a merchant, or None."""
    m = t.merchants
    r = conn.execute(select(m.c.id, m.c.status).where(m.c.merchant_no == merchant_no)).first()
    return None if r is None else (int(r.id), str(r.status))


def terminal(conn: Connection, merchant_id: int, terminal_no: str) -> dict[str, Any] | None:
    tm = t.terminals
    r = conn.execute(select(tm).where(tm.c.merchant_id == merchant_id, tm.c.terminal_no == terminal_no)).first()
    return None if r is None else dict(r._mapping)


def serial_owner(conn: Connection, serial_no: str) -> str | None:
    """The merchant number whose terminal (not retired) has this serial number."""
    tm, m = t.terminals, t.merchants
    got = conn.execute(select(m.c.merchant_no).join(tm, tm.c.merchant_id == m.c.id)
                       .where(tm.c.serial_no == serial_no, tm.c.status != "retired").limit(1)).scalar_one_or_none()
    return None if got is None else str(got)


def insert_terminal(conn: Connection, merchant_id: int, terminal_no: str, serial_no: str, model: str,
                    address: str | None) -> int:
    new = conn.execute(insert(t.terminals).values(
        merchant_id=merchant_id, terminal_no=terminal_no, serial_no=serial_no, model=model, firmware="",
        status="active", address=address)).inserted_primary_key
    assert new is not None
    return int(new[0])


def update_terminal(conn: Connection, terminal_id: int, **values: Any) -> None:
    conn.execute(update(t.terminals).where(t.terminals.c.id == terminal_id).values(**values))


def record_event(conn: Connection, terminal_id: int, merchant_id: int, action: str, *, actor: str, reason: str,
                 now: datetime, old_serial: str | None = None, new_serial: str | None = None,
                 old_address: str | None = None, new_address: str | None = None) -> None:
    conn.execute(insert(t.terminal_events).values(
        terminal_id=terminal_id, merchant_id=merchant_id, action=action, old_serial_no=old_serial,
        new_serial_no=new_serial, old_address=old_address, new_address=new_address, actor=actor[:64],
        reason=reason[:256], created_at=now))


def events(conn: Connection, merchant_id: int) -> list[dict[str, Any]]:
    te, tm = t.terminal_events, t.terminals
    return [dict(r._mapping) for r in conn.execute(
        select(te, tm.c.terminal_no).join(tm, tm.c.id == te.c.terminal_id)
        .where(te.c.merchant_id == merchant_id).order_by(te.c.id))]


def active_count(conn: Connection, merchant_id: int) -> int:
    tm = t.terminals
    return int(conn.execute(select(func.count()).select_from(tm)
                            .where(tm.c.merchant_id == merchant_id, tm.c.status != "retired")).scalar_one())
