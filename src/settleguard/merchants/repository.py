"""SQL for merchants, settlement accounts, terminals and fee schedules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from settleguard.cards.vault import Vault, mask_pan
from settleguard.db import tables as t
from settleguard.merchants.model import AccountStatus, MerchantStatus, NewMerchant
from settleguard.settlement.model import DEFAULT_SCHEDULES, CardType, FeeRate, FeeSchedule


def ensure_fee_schedules(conn: Connection, schedules: Sequence[FeeSchedule] = DEFAULT_SCHEDULES) -> dict[str, int]:
    """Create the fee schedules that are missing; return code -> id."""
    existing = {code: sid for sid, code in conn.execute(select(t.fee_schedules.c.id, t.fee_schedules.c.code))}
    for s in schedules:
        if s.code in existing:
            continue
        sid = conn.execute(
            insert(t.fee_schedules).values(code=s.code, name_zh=s.name_zh, name_en=s.name_en)
        ).inserted_primary_key
        assert sid is not None
        existing[s.code] = int(sid[0])
        conn.execute(insert(t.fee_rates), [
            {"schedule_id": sid[0], "card_type": int(ct), "rate_ppm": r.rate_ppm, "cap_fen": r.cap_fen}
            for ct, r in s.rates.items()
        ])
    return existing


def fee_schedules(conn: Connection) -> dict[int, FeeSchedule]:
    """All fee schedules by id."""
    rates: dict[int, dict[CardType, FeeRate]] = {}
    for sid, ct, ppm, cap in conn.execute(
        select(t.fee_rates.c.schedule_id, t.fee_rates.c.card_type, t.fee_rates.c.rate_ppm, t.fee_rates.c.cap_fen)
    ):
        rates.setdefault(sid, {})[CardType(ct)] = FeeRate(ppm, cap)
    return {
        sid: FeeSchedule(code, zh, en, rates.get(sid, {}))
        for sid, code, zh, en in conn.execute(
            select(t.fee_schedules.c.id, t.fee_schedules.c.code, t.fee_schedules.c.name_zh,
                   t.fee_schedules.c.name_en)
        )
    }


def add_merchants(
    conn: Connection,
    new: Sequence[NewMerchant],
    vault: Vault,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Register merchants with their bound cards and terminals, in bulk. Returns the count."""
    schedule_ids = ensure_fee_schedules(conn)
    chunk = 2000
    for start in range(0, len(new), chunk):
        part = new[start:start + chunk]
        conn.execute(insert(t.merchants), [
            {
                "merchant_no": m.merchant_no, "kind": str(m.kind), "registered_name": m.registered_name,
                "legal_person": m.legal_person, "business": m.business, "mcc": m.mcc, "city": m.city,
                "cycle": str(m.cycle), "fee_schedule_id": schedule_ids[m.fee_schedule],
                "status": str(MerchantStatus.ACTIVE), "created_at": now,
            }
            for m in part
        ])
        ids = dict(conn.execute(
            select(t.merchants.c.merchant_no, t.merchants.c.id)
            .where(t.merchants.c.merchant_no.in_([m.merchant_no for m in part]))
        ).all())
        accounts = []
        for m in part:
            sealed = vault.seal(m.pan)
            accounts.append({
                "merchant_id": ids[m.merchant_no], "account_kind": m.account_kind,
                "holder_name": m.holder_name, "bank_code": m.bank_code, "bank_name": m.bank_name,
                "card_type": m.card_type, "pan_masked": mask_pan(m.pan), "pan_cipher": sealed.cipher,
                "pan_nonce": sealed.nonce, "key_version": sealed.key_version,
                "status": str(AccountStatus.ACTIVE), "bound_at": now, "replaced_at": None,
            })
        conn.execute(insert(t.settlement_accounts), accounts)
        conn.execute(insert(t.terminals), [
            {"merchant_id": ids[m.merchant_no], "terminal_no": tn, "model": "PAX A920",
             "firmware": "PayDroid 8.1", "status": "active"}
            for m in part for tn in m.terminal_nos
        ])
        if progress:
            progress(len(part))
    return len(new)


def merchant_columns(conn: Connection) -> tuple[list[int], list[str], list[str], list[int]]:
    """(ids, merchant numbers, cycles, fee schedule ids) of all merchants, column-wise (for bulk lookups)."""
    m = t.merchants
    rows = conn.execute(select(m.c.id, m.c.merchant_no, m.c.cycle, m.c.fee_schedule_id).order_by(m.c.id)).all()
    if not rows:
        return [], [], [], []
    ids, nos, cycles, schedules = (list(c) for c in zip(*rows, strict=True))
    return ids, nos, cycles, schedules


def terminal_keys(conn: Connection) -> list[tuple[int, str, str]]:
    """(terminal id, merchant_no, terminal_no) for every terminal."""
    q = select(t.terminals.c.id, t.merchants.c.merchant_no, t.terminals.c.terminal_no).join(
        t.merchants, t.merchants.c.id == t.terminals.c.merchant_id
    )
    return [(int(i), str(mn), str(tn)) for i, mn, tn in conn.execute(q)]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.merchants)).scalar_one())


_BY_ID = (select(t.merchants.c.id, t.merchants.c.merchant_no, t.merchants.c.kind, t.merchants.c.registered_name,
                 t.merchants.c.legal_person, t.merchants.c.business, t.merchants.c.mcc, t.merchants.c.city,
                 t.merchants.c.cycle, t.fee_schedules.c.code.label("fee_schedule"), t.merchants.c.status,
                 t.merchants.c.created_at)
          .select_from(t.merchants.join(t.fee_schedules, t.fee_schedules.c.id == t.merchants.c.fee_schedule_id))
          .where(t.merchants.c.id == bindparam("merchant_id")))  # built once: the API reads it per request


def by_id(conn: Connection, merchant_id: int) -> dict[str, Any] | None:
    """One merchant for people (no card numbers), with its fee schedule's code, or None."""
    r = conn.execute(_BY_ID, {"merchant_id": merchant_id}).first()
    return None if r is None else dict(r._mapping)
