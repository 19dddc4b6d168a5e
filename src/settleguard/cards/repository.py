"""SQL for settlement cards: accounts, verification attempts, card events, the operator's BIN table and
key rotation. No business rules here (cards/service.py). Merchants are looked up in merchants/repository.py;
notices are written to the outbox by notify/repository.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, or_, select, update

from settleguard.db import tables as t
from settleguard.merchants.model import AccountStatus

# Statuses of payouts the send loop will pick up (payouts.repository.due); kept as text here so
# this module does not import the payout service.
_DUE_PAYOUT_STATUSES = ("created", "retry_scheduled", "released")


@dataclass(frozen=True)
class AccountRow:
    """A settlement account; the encrypted number is kept out of the repr."""

    id: int
    merchant_id: int
    account_kind: str
    holder_name: str
    bank_code: str
    bank_name: str
    card_type: str
    pan_masked: str
    status: str
    card_status: str | None
    bound_at: datetime
    replaced_at: datetime | None
    verified_at: datetime | None
    last_status_check_at: datetime | None
    pan_cipher: bytes = field(repr=False)
    pan_nonce: bytes = field(repr=False)
    key_version: int = 0


def _account(r: Any) -> AccountRow:
    m = r._mapping
    return AccountRow(
        id=m["id"], merchant_id=m["merchant_id"], account_kind=m["account_kind"], holder_name=m["holder_name"],
        bank_code=m["bank_code"], bank_name=m["bank_name"], card_type=m["card_type"], pan_masked=m["pan_masked"],
        status=m["status"], card_status=m["card_status"], bound_at=m["bound_at"], replaced_at=m["replaced_at"],
        verified_at=m["verified_at"], last_status_check_at=m["last_status_check_at"],
        pan_cipher=bytes(m["pan_cipher"]), pan_nonce=bytes(m["pan_nonce"]), key_version=m["key_version"],
    )


def current_accounts(conn: Connection, merchant_id: int) -> list[AccountRow]:
    """The merchant's accounts that are not replaced (active or unusable), newest first."""
    a = t.settlement_accounts
    return [_account(r) for r in conn.execute(
        select(a).where(a.c.merchant_id == merchant_id, a.c.status != str(AccountStatus.REPLACED))
        .order_by(a.c.id.desc()))]


_ACCOUNTS_OF = (select(t.settlement_accounts).where(t.settlement_accounts.c.merchant_id == bindparam("merchant_id"))
                .order_by(t.settlement_accounts.c.id.desc()))  # built once: the API reads it per request


def accounts_of(conn: Connection, merchant_id: int) -> list[AccountRow]:
    """Every account the merchant ever bound, newest first."""
    return [_account(r) for r in conn.execute(_ACCOUNTS_OF, {"merchant_id": merchant_id})]


def active_account(conn: Connection, merchant_id: int) -> AccountRow | None:
    a = t.settlement_accounts
    r = conn.execute(select(a).where(a.c.merchant_id == merchant_id, a.c.status == str(AccountStatus.ACTIVE))
                     .order_by(a.c.id.desc()).limit(1)).first()
    return None if r is None else _account(r)


def count_attempts(conn: Connection, merchant_id: int, kind: str, since: datetime,
                   results: Sequence[str]) -> int:
    v = t.card_verifications
    return int(conn.execute(select(func.count()).select_from(v).where(
        v.c.merchant_id == merchant_id, v.c.kind == kind, v.c.at >= since, v.c.result.in_(list(results)))
    ).scalar_one())


def add_verification(conn: Connection, *, merchant_id: int, kind: str, pan_masked: str, result: str,
                     at: datetime, actor: str, account_id: int | None = None, bank_code: str | None = None,
                     bank_message: str | None = None) -> int:
    res = conn.execute(insert(t.card_verifications).values(
        merchant_id=merchant_id, account_id=account_id, kind=kind, pan_masked=pan_masked[:32], result=result,
        bank_code=None if bank_code is None else bank_code[:32],
        bank_message=None if bank_message is None else bank_message[:256], at=at, actor=actor[:64]))
    pk = res.inserted_primary_key
    assert pk is not None
    _audit_verification(conn, int(pk[0]), merchant_id=merchant_id, kind=kind, pan_masked=pan_masked[:32],
                        result=result, bank_code=bank_code, actor=actor, at=at)
    return int(pk[0])


def _audit_verification(conn: Connection, verification_id: int | None, *, merchant_id: int, kind: str,
                        pan_masked: str, result: str, bank_code: str | None, actor: str, at: datetime) -> None:
    """One audit event per verification attempt (settleguard.audit); the card number stays masked."""
    from settleguard.audit import service as audit

    audit.record(conn, actor, f"card.verification.{kind}", ("merchant", merchant_id), {
        "verification_id": verification_id, "pan_masked": pan_masked, "result": result, "bank_code": bank_code}, at)


def add_verifications(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(t.card_verifications), list(rows))
        for r in rows:
            _audit_verification(conn, None, merchant_id=int(r["merchant_id"]), kind=str(r["kind"]),
                                pan_masked=str(r["pan_masked"]), result=str(r["result"]), bank_code=r.get("bank_code"),
                                actor=str(r["actor"]), at=r["at"])


def finish_verification(conn: Connection, verification_id: int, *, result: str, bank_code: str | None,
                        bank_message: str | None, account_id: int | None = None) -> None:
    v = t.card_verifications
    conn.execute(update(v).where(v.c.id == verification_id).values(
        result=result, bank_code=None if bank_code is None else bank_code[:32],
        bank_message=None if bank_message is None else bank_message[:256], account_id=account_id))
    from settleguard.audit import service as audit

    row = conn.execute(select(v.c.merchant_id, v.c.kind, v.c.pan_masked, v.c.actor, v.c.at)
                       .where(v.c.id == verification_id)).first()
    if row is not None:
        audit.record(conn, row.actor, f"card.verification.{row.kind}.result", ("merchant", row.merchant_id), {
            "verification_id": verification_id, "pan_masked": row.pan_masked, "result": result,
            "bank_code": bank_code, "account_id": account_id}, row.at)


def link_verifications(conn: Connection, ids: Sequence[int], account_id: int) -> None:
    v = t.card_verifications
    if ids:
        conn.execute(update(v).where(v.c.id.in_(list(ids))).values(account_id=account_id))


def replace_accounts(conn: Connection, account_ids: Sequence[int], now: datetime) -> None:
    a = t.settlement_accounts
    if account_ids:
        conn.execute(update(a).where(a.c.id.in_(list(account_ids)), a.c.status != str(AccountStatus.REPLACED))
                     .values(status=str(AccountStatus.REPLACED), replaced_at=now))


def insert_account(conn: Connection, row: dict[str, Any]) -> int:
    res = conn.execute(insert(t.settlement_accounts).values(**row))
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def add_event(conn: Connection, *, merchant_id: int, account_id: int | None, kind: str,
              payload: dict[str, Any], actor: str, now: datetime) -> int:
    from settleguard.audit import service as audit

    res = conn.execute(insert(t.card_events).values(merchant_id=merchant_id, account_id=account_id, kind=kind,
                                                    payload=payload, actor=actor[:64], created_at=now))
    pk = res.inserted_primary_key
    assert pk is not None
    audit.record(conn, actor, f"card.{kind}", ("merchant", merchant_id),
                 {"card_event_id": int(pk[0]), "account_id": account_id, "event": payload}, now)
    return int(pk[0])


def accounts_to_check(conn: Connection, *, stale_before: datetime | None, after_id: int, limit: int,
                      account_ids: Sequence[int] | None = None) -> list[AccountRow]:
    """Active accounts by id, after ``after_id``; only those last checked before ``stale_before`` (or
    never) when it is given; only ``account_ids`` when given."""
    a = t.settlement_accounts
    q = select(a).where(a.c.status == str(AccountStatus.ACTIVE), a.c.id > after_id)
    if stale_before is not None:
        q = q.where(or_(a.c.last_status_check_at.is_(None), a.c.last_status_check_at < stale_before))
    if account_ids is not None:
        q = q.where(a.c.id.in_(list(account_ids)))
    return [_account(r) for r in conn.execute(q.order_by(a.c.id).limit(limit))]


def _recheckable(statuses: Sequence[str]) -> Any:
    """Unusable accounts in one of ``statuses`` that are still their merchant's newest account and whose
    merchant has no active one (a card frozen for a while, not one replaced since)."""
    a = t.settlement_accounts
    b = a.alias("b")
    return and_(a.c.status == str(AccountStatus.UNUSABLE), a.c.card_status.in_(list(statuses)),
                ~exists().where(b.c.merchant_id == a.c.merchant_id,
                                or_(b.c.id > a.c.id, b.c.status == str(AccountStatus.ACTIVE))))


def accounts_to_recheck(conn: Connection, *, statuses: Sequence[str], checked_before: datetime | None, after_id: int,
                        limit: int, account_ids: Sequence[int] | None = None) -> list[AccountRow]:
    """Unusable accounts worth asking about again (see _recheckable), by id, after ``after_id``; only those
    last checked before ``checked_before`` when it is given; only ``account_ids`` when given."""
    a = t.settlement_accounts
    q = select(a).where(_recheckable(statuses), a.c.id > after_id)
    if checked_before is not None:
        q = q.where(or_(a.c.last_status_check_at.is_(None), a.c.last_status_check_at < checked_before))
    if account_ids is not None:
        q = q.where(a.c.id.in_(list(account_ids)))
    return [_account(r) for r in conn.execute(q.order_by(a.c.id).limit(limit))]


def count_to_recheck(conn: Connection, *, statuses: Sequence[str], checked_before: datetime | None) -> int:
    a = t.settlement_accounts
    q = select(func.count()).select_from(a).where(_recheckable(statuses))
    if checked_before is not None:
        q = q.where(or_(a.c.last_status_check_at.is_(None), a.c.last_status_check_at < checked_before))
    return int(conn.execute(q).scalar_one())


def recheckable_with_held_payouts(conn: Connection, *, statuses: Sequence[str], checked_before: datetime) -> list[int]:
    """Ids of the recheckable accounts (see _recheckable) due again whose merchant has a held payout."""
    a, p = t.settlement_accounts, t.payouts
    held = select(p.c.merchant_id).where(p.c.status == "held")
    q = select(a.c.id).where(_recheckable(statuses), a.c.merchant_id.in_(held),
                             or_(a.c.last_status_check_at.is_(None), a.c.last_status_check_at < checked_before))
    return [int(i) for i in conn.execute(q.order_by(a.c.id)).scalars()]


def record_recheck(conn: Connection, account_id: int, *, card_status: str, now: datetime, restore: bool) -> bool:
    """Store a re-inquiry's answer on an unusable account; with ``restore`` (the bank says normal) make it
    active again, provided it is still recheckable. False when it is not (re-bound meanwhile)."""
    a = t.settlement_accounts
    values: dict[str, Any] = {"card_status": card_status, "last_status_check_at": now}
    if restore:
        values["status"] = str(AccountStatus.ACTIVE)
    b = a.alias("b")
    res = conn.execute(update(a).where(
        a.c.id == account_id, a.c.status == str(AccountStatus.UNUSABLE),
        ~exists().where(b.c.merchant_id == a.c.merchant_id,
                        or_(b.c.id > a.c.id, b.c.status == str(AccountStatus.ACTIVE)))).values(**values))
    return bool(res.rowcount)


def count_to_check(conn: Connection, *, stale_before: datetime | None) -> int:
    a = t.settlement_accounts
    q = select(func.count()).select_from(a).where(a.c.status == str(AccountStatus.ACTIVE))
    if stale_before is not None:
        q = q.where(or_(a.c.last_status_check_at.is_(None), a.c.last_status_check_at < stale_before))
    return int(conn.execute(q).scalar_one())


def stale_accounts_with_due_payouts(conn: Connection, *, as_of: date, stale_before: datetime) -> list[int]:
    """Active accounts, checked before ``stale_before`` or never, of merchants with a payout due by ``as_of``."""
    a, p = t.settlement_accounts, t.payouts
    due = select(p.c.merchant_id).where(p.c.status.in_(_DUE_PAYOUT_STATUSES), p.c.value_date <= as_of)
    q = select(a.c.id).where(
        a.c.status == str(AccountStatus.ACTIVE), a.c.merchant_id.in_(due),
        or_(a.c.last_status_check_at.is_(None), a.c.last_status_check_at < stale_before)).order_by(a.c.id)
    return [int(i) for i in conn.execute(q).scalars()]


def record_status(conn: Connection, account_id: int, *, card_status: str, now: datetime, unusable: bool) -> bool:
    """Store an inquiry's answer on an account that is still active; mark it unusable if asked.

    Returns False when the account is no longer active (re-bound or marked meanwhile)."""
    a = t.settlement_accounts
    values: dict[str, Any] = {"card_status": card_status, "last_status_check_at": now}
    if unusable:
        values["status"] = str(AccountStatus.UNUSABLE)
    res = conn.execute(update(a).where(a.c.id == account_id, a.c.status == str(AccountStatus.ACTIVE))
                       .values(**values))
    return bool(res.rowcount)


def events_of(conn: Connection, merchant_id: int, limit: int = 50) -> list[dict[str, Any]]:
    e = t.card_events
    return [dict(r._mapping) for r in conn.execute(
        select(e.c.id, e.c.account_id, e.c.kind, e.c.payload, e.c.actor, e.c.created_at)
        .where(e.c.merchant_id == merchant_id).order_by(e.c.id.desc()).limit(limit))]


def verifications_of(conn: Connection, merchant_id: int, limit: int = 50) -> list[dict[str, Any]]:
    v = t.card_verifications
    return [dict(r._mapping) for r in conn.execute(
        select(v.c.id, v.c.account_id, v.c.kind, v.c.pan_masked, v.c.result, v.c.bank_code, v.c.bank_message,
               v.c.at, v.c.actor)
        .where(v.c.merchant_id == merchant_id).order_by(v.c.id.desc()).limit(limit))]


def notifications_of(conn: Connection, merchant_id: int) -> list[dict[str, Any]]:
    n = t.notifications
    return [dict(r._mapping) for r in conn.execute(
        select(n.c.id, n.c.kind, n.c.dedupe_key, n.c.payload, n.c.created_at, n.c.delivered_at)
        .where(n.c.merchant_id == merchant_id).order_by(n.c.id))]


# --- key rotation ---------------------------------------------------------------------------

def sealed_pans(conn: Connection, *, not_version: int, after_id: int, limit: int) -> list[tuple[int, bytes, bytes, int]]:
    """(id, cipher, nonce, key version) of accounts sealed under another key version than ``not_version``."""
    a = t.settlement_accounts
    return [(int(i), bytes(c), bytes(n), int(v)) for i, c, n, v in conn.execute(
        select(a.c.id, a.c.pan_cipher, a.c.pan_nonce, a.c.key_version)
        .where(a.c.key_version != not_version, a.c.id > after_id).order_by(a.c.id).limit(limit))]


def count_sealed(conn: Connection, *, not_version: int | None = None) -> int:
    a = t.settlement_accounts
    q = select(func.count()).select_from(a)
    if not_version is not None:
        q = q.where(a.c.key_version != not_version)
    return int(conn.execute(q).scalar_one())


def key_versions(conn: Connection) -> dict[int, int]:
    """How many accounts are sealed under each key version."""
    a = t.settlement_accounts
    return {int(v): int(n) for v, n in conn.execute(
        select(a.c.key_version, func.count()).group_by(a.c.key_version))}


def reseal(conn: Connection, rows: Sequence[tuple[int, bytes, bytes, int, int]]) -> None:
    """rows: (id, new cipher, new nonce, new key version, old key version); the old version guards the update."""
    a = t.settlement_accounts
    if not rows:
        return
    res = conn.execute(
        update(a).where(and_(a.c.id == bindparam("aid"), a.c.key_version == bindparam("old_version")))
        .values(pan_cipher=bindparam("v_cipher"), pan_nonce=bindparam("v_nonce"), key_version=bindparam("v_version")),
        [{"aid": i, "v_cipher": c, "v_nonce": n, "v_version": v, "old_version": o} for i, c, n, v, o in rows])
    if res.rowcount != len(rows):
        raise RuntimeError(f"key rotation: {len(rows) - res.rowcount} accounts changed while being re-encrypted")


# --- cards that failed at the bank (payouts) ------------------------------------------------

def account_by_id(conn: Connection, account_id: int) -> AccountRow | None:
    a = t.settlement_accounts
    r = conn.execute(select(a).where(a.c.id == account_id)).first()
    return None if r is None else _account(r)


def mark_unusable(conn: Connection, account_id: int, *, card_status: str) -> bool:
    """Mark an account that is still active unusable for ``card_status`` (a bank's answer to a payout);
    False when it is not active any more (re-bound or marked meanwhile)."""
    a = t.settlement_accounts
    res = conn.execute(update(a).where(a.c.id == account_id, a.c.status == str(AccountStatus.ACTIVE))
                       .values(status=str(AccountStatus.UNUSABLE), card_status=card_status[:16]))
    return bool(res.rowcount)


def latest_event(conn: Connection, account_id: int, kind: str) -> dict[str, Any] | None:
    """The newest card event of ``kind`` about an account (id, payload, created_at), or None."""
    e = t.card_events
    r = conn.execute(select(e.c.id, e.c.payload, e.c.created_at).where(e.c.account_id == account_id, e.c.kind == kind)
                     .order_by(e.c.id.desc()).limit(1)).first()
    return None if r is None else dict(r._mapping)


def unusable_cards(conn: Connection, merchant_ids: Sequence[int]) -> dict[int, AccountRow]:
    """Per merchant without an active account: its newest account, when that one is unusable (the card
    the merchant's payouts are held for)."""
    if not merchant_ids:
        return {}
    a = t.settlement_accounts
    b = a.alias("b")
    q = select(a).where(a.c.merchant_id.in_(sorted(set(merchant_ids))), a.c.status == str(AccountStatus.UNUSABLE),
                        ~exists().where(b.c.merchant_id == a.c.merchant_id,
                                        or_(b.c.id > a.c.id, b.c.status == str(AccountStatus.ACTIVE))))
    return {r.merchant_id: r for r in (_account(x) for x in conn.execute(q))}


def restored_since(conn: Connection, account_id: int, since: datetime) -> bool:
    """Whether the bank reported the account normal again (a ``status_changed`` event to normal) after ``since``."""
    e = t.card_events
    for (payload,) in conn.execute(select(e.c.payload).where(e.c.account_id == account_id,
                                                             e.c.kind == "status_changed", e.c.created_at > since)):
        if isinstance(payload, dict) and payload.get("to") == "normal":
            return True
    return False


def reactivate(conn: Connection, account_id: int) -> bool:
    """Make an unusable account active again while it is still its merchant's newest and the merchant has
    no active one (an operator's override); False otherwise."""
    a = t.settlement_accounts
    b = a.alias("b")
    res = conn.execute(update(a).where(
        a.c.id == account_id, a.c.status == str(AccountStatus.UNUSABLE),
        ~exists().where(b.c.merchant_id == a.c.merchant_id,
                        or_(b.c.id > a.c.id, b.c.status == str(AccountStatus.ACTIVE)))).values(
        status=str(AccountStatus.ACTIVE)))
    return bool(res.rowcount)
