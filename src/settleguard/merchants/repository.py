"""SQL for merchants, settlement accounts, terminals and fee schedules."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from settleguard.cards.vault import Vault, VaultError, mask_pan
from settleguard.db import tables as t
from settleguard.merchants.model import (
    AccountStatus,
    FeeContract,
    MerchantDraft,
    MerchantStatus,
    NewMerchant,
    mask_id_number,
)
from settleguard.money import fen_to_yuan
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


def retired_terminals(conn: Connection) -> list[tuple[int, datetime]]:
    """(terminal id, retired at) of every retired terminal (merchants/terminals.py)."""
    tm = t.terminals
    return [(int(i), at) for i, at in conn.execute(
        select(tm.c.id, tm.c.retired_at).where(tm.c.status == "retired", tm.c.retired_at.is_not(None)))]


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


# --- onboarding (merchants/onboarding.py) ---------------------------------------------------------

def schedule_for_rates(conn: Connection, contract: FeeContract) -> int:
    """The id of a fee schedule with exactly the contract's rates, created when there is none.

    The packaged schedules (standard, small_micro) ensured first, so a contract at their rates uses them;
    a new schedule's code is ``c-`` and a digest of the rates, its names spell the rates out."""
    ensure_fee_schedules(conn)
    want = {CardType.DEBIT: FeeRate(contract.debit_ppm, contract.debit_cap_fen),
            CardType.CREDIT: FeeRate(contract.credit_ppm), CardType.QR: FeeRate(contract.qr_ppm)}
    for sid, sched in sorted(fee_schedules(conn).items()):
        if dict(sched.rates) == want:
            return sid
    key = f"{contract.debit_ppm}/{contract.debit_cap_fen}/{contract.credit_ppm}/{contract.qr_ppm}"
    code = "c-" + hashlib.sha256(key.encode()).hexdigest()[:16]

    def pct(ppm: int) -> str:
        return f"{ppm / 10_000:g}%"

    cap_zh = "" if contract.debit_cap_fen is None else f"封顶{fen_to_yuan(contract.debit_cap_fen)}元"
    cap_en = "" if contract.debit_cap_fen is None else f" capped at {fen_to_yuan(contract.debit_cap_fen)} yuan"
    new_id = conn.execute(insert(t.fee_schedules).values(
        code=code,
        name_zh=f"合同费率（借记卡{pct(contract.debit_ppm)}{cap_zh}，信用卡{pct(contract.credit_ppm)}，扫码{pct(contract.qr_ppm)}）",
        name_en=f"Contract (debit {pct(contract.debit_ppm)}{cap_en}, credit {pct(contract.credit_ppm)}, "
                f"QR {pct(contract.qr_ppm)})")).inserted_primary_key
    assert new_id is not None
    conn.execute(insert(t.fee_rates), [
        {"schedule_id": new_id[0], "card_type": int(ct), "rate_ppm": r.rate_ppm, "cap_fen": r.cap_fen}
        for ct, r in want.items()])
    return int(new_id[0])


@dataclass(frozen=True)
class Registered:
    """What is stored about a merchant, to compare a file's row with (clear card number inside)."""

    id: int
    merchant_no: str
    fields: dict[str, Any]
    pan: str | None
    terminals: frozenset[tuple[str, str | None, str]]


def _open(vault: Vault, cipher: bytes, nonce: bytes, version: int) -> str | None:
    try:
        return vault.open(cipher, nonce, version)
    except VaultError:
        return None


def registered(conn: Connection, merchant_nos: Sequence[str], vault: Vault) -> dict[str, Registered]:
    """The merchants among ``merchant_nos`` that exist, with their current account and terminals."""
    m, a, tm, fr = t.merchants, t.settlement_accounts, t.terminals, t.fee_rates
    out: dict[str, Registered] = {}
    for start in range(0, len(merchant_nos), 500):
        part = list(merchant_nos[start:start + 500])
        rows = conn.execute(select(m).where(m.c.merchant_no.in_(part))).all()
        if not rows:
            continue
        ids = [r.id for r in rows]
        accounts = {r.merchant_id: r for r in conn.execute(
            select(a.c.merchant_id, a.c.holder_name, a.c.bank_code, a.c.account_kind, a.c.pan_cipher,
                   a.c.pan_nonce, a.c.key_version)
            .where(a.c.merchant_id.in_(ids), a.c.status != "replaced").order_by(a.c.id))}
        terms: dict[int, set[tuple[str, str | None, str]]] = {}
        for mid, tn, sn, model in conn.execute(select(tm.c.merchant_id, tm.c.terminal_no, tm.c.serial_no,
                                                      tm.c.model).where(tm.c.merchant_id.in_(ids))):
            terms.setdefault(mid, set()).add((tn, sn, model))
        rates: dict[int, dict[int, tuple[int, int | None]]] = {}
        for sid, ct, ppm, cap in conn.execute(select(fr.c.schedule_id, fr.c.card_type, fr.c.rate_ppm, fr.c.cap_fen)):
            rates.setdefault(sid, {})[ct] = (ppm, cap)
        for r in rows:
            acc = accounts.get(r.id)
            sched = rates.get(r.fee_schedule_id, {})
            debit = sched.get(int(CardType.DEBIT), (None, None))
            fields = {
                "registered_name": r.registered_name, "entity_kind": r.entity_kind, "legal_person": r.legal_person,
                "legal_person_id_hash": r.legal_person_id_hash, "id_key_version": r.id_key_version, "uscc": r.uscc,
                "business": r.business, "mcc": r.mcc, "city": r.city, "contact_mobile": r.contact_mobile,
                "cycle": r.cycle, "fee_effective_from": r.fee_effective_from,
                "fee": (debit[0], debit[1], sched.get(int(CardType.CREDIT), (None,))[0],
                        sched.get(int(CardType.QR), (None,))[0]),
                "holder_name": acc.holder_name if acc else None, "bank_code": acc.bank_code if acc else None,
                "account_kind": acc.account_kind if acc else None,
            }
            pan = _open(vault, acc.pan_cipher, acc.pan_nonce, acc.key_version) if acc else None
            out[r.merchant_no] = Registered(r.id, r.merchant_no, fields, pan, frozenset(terms.get(r.id, set())))
    return out


def owners_of_usccs(conn: Connection, usccs: Sequence[str]) -> dict[str, str]:
    """uscc -> the merchant number that registered it."""
    m = t.merchants
    return {u: no for start in range(0, len(usccs), 500) for u, no in conn.execute(
        select(m.c.uscc, m.c.merchant_no).where(m.c.uscc.in_(list(usccs[start:start + 500]))))}


def owners_of_id_hashes(conn: Connection, hashes: Sequence[str]) -> dict[str, str]:
    """legal person ID hash -> the merchant number that registered it."""
    m = t.merchants
    return {h: no for start in range(0, len(hashes), 500) for h, no in conn.execute(
        select(m.c.legal_person_id_hash, m.c.merchant_no)
        .where(m.c.legal_person_id_hash.in_(list(hashes[start:start + 500]))))}


def owners_of_cards(conn: Connection, pans: Sequence[str], vault: Vault) -> dict[str, str]:
    """card number -> the merchant number whose current (not replaced) account it is. Only accounts with
    the same mask are decrypted."""
    by_mask: dict[str, list[str]] = {}
    for p in pans:
        by_mask.setdefault(mask_pan(p), []).append(p)
    a, m = t.settlement_accounts, t.merchants
    out: dict[str, str] = {}
    masks = list(by_mask)
    for start in range(0, len(masks), 500):
        for mask, cipher, nonce, ver, no in conn.execute(
                select(a.c.pan_masked, a.c.pan_cipher, a.c.pan_nonce, a.c.key_version, m.c.merchant_no)
                .join(m, m.c.id == a.c.merchant_id)
                .where(a.c.pan_masked.in_(masks[start:start + 500]), a.c.status != "replaced")):
            clear = _open(vault, cipher, nonce, ver)
            if clear is not None and clear in by_mask.get(mask, ()):
                out.setdefault(clear, no)
    return out


def owners_of_serials(conn: Connection, serials: Sequence[str]) -> dict[str, str]:
    """terminal serial number -> the merchant number it is registered to (a retired device may be re-deployed)."""
    tm, m = t.terminals, t.merchants
    return {sn: no for start in range(0, len(serials), 500) for sn, no in conn.execute(
        select(tm.c.serial_no, m.c.merchant_no).join(m, m.c.id == tm.c.merchant_id)
        .where(tm.c.serial_no.in_(list(serials[start:start + 500])), tm.c.status != "retired"))}


def register(conn: Connection, drafts: Sequence[MerchantDraft], vault: Vault, now: datetime,
             import_id: int | None, progress: Callable[[int], None] | None = None,
             actor: str = "operator") -> list[int]:
    """Insert checked merchants with their settlement accounts (encrypted) and terminals; their ids."""
    schedules: dict[tuple[int, int | None, int, int], int] = {}
    ids: list[int] = []
    chunk = 1000
    for start in range(0, len(drafts), chunk):
        part = drafts[start:start + chunk]
        rows = []
        for d in part:
            key = d.fee.rates_key()
            if key not in schedules:
                schedules[key] = schedule_for_rates(conn, d.fee)
            rows.append({
                "merchant_no": d.merchant_no, "kind": str(d.entity.merchant_kind), "registered_name": d.registered_name,
                "legal_person": d.legal_person, "business": d.business, "mcc": d.mcc, "city": d.city,
                "cycle": str(d.cycle), "fee_schedule_id": schedules[key], "status": str(MerchantStatus.ACTIVE),
                "created_at": now, "entity_kind": str(d.entity), "uscc": d.uscc,
                "legal_person_id_masked": mask_id_number(d.legal_person_id),
                "legal_person_id_hash": vault.keyed_hash(d.legal_person_id), "id_key_version": vault.current,
                "contact_mobile": d.contact_mobile, "fee_effective_from": d.fee.effective_from,
                "status_reason": None, "status_changed_at": None, "import_id": import_id,
            })
        conn.execute(insert(t.merchants), rows)
        got = dict(conn.execute(select(t.merchants.c.merchant_no, t.merchants.c.id)
                                .where(t.merchants.c.merchant_no.in_([d.merchant_no for d in part]))).all())
        accounts = []
        for d in part:
            sealed = vault.seal(d.pan)
            accounts.append({
                "merchant_id": got[d.merchant_no], "account_kind": d.account_kind, "holder_name": d.holder_name,
                "bank_code": d.bank_code, "bank_name": d.bank_name[:64], "card_type": d.card_type[:4],
                "pan_masked": mask_pan(d.pan), "pan_cipher": sealed.cipher, "pan_nonce": sealed.nonce,
                "key_version": sealed.key_version, "status": str(AccountStatus.ACTIVE), "bound_at": now,
                "replaced_at": None,
            })
        conn.execute(insert(t.settlement_accounts), accounts)
        conn.execute(insert(t.terminals), [
            {"merchant_id": got[d.merchant_no], "terminal_no": tr.terminal_no, "serial_no": tr.serial_no,
             "model": tr.model, "firmware": "", "status": "active"}
            for d in part for tr in d.terminals])
        # The registration contract, the first row of the contract history (merchants/contracts.py).
        conn.execute(insert(t.fee_contracts), [
            {"merchant_id": got[d.merchant_no], "schedule_id": schedules[d.fee.rates_key()],
             "effective_from": d.fee.effective_from, "actor": actor[:64], "reason": "入网 onboarding",
             "created_at": now, "rates": d.fee.rates()} for d in part])
        ids.extend(got[d.merchant_no] for d in part)
        if progress:
            progress(len(part))
    return ids


def by_no(conn: Connection, merchant_no: str) -> dict[str, Any] | None:
    """One merchant for people (no card or ID number), with its fee rates, current account and terminals."""
    m, fs = t.merchants, t.fee_schedules
    r = conn.execute(select(m, fs.c.code.label("fee_schedule"), fs.c.name_zh.label("fee_name_zh"),
                            fs.c.name_en.label("fee_name_en"))
                     .join(fs, fs.c.id == m.c.fee_schedule_id).where(m.c.merchant_no == merchant_no)).first()
    if r is None:
        return None
    out = {k: v for k, v in r._mapping.items() if k != "legal_person_id_hash"}
    out["fee_rates"] = {CardType(ct).label: {"rate_ppm": ppm, "cap_fen": cap} for ct, ppm, cap in conn.execute(
        select(t.fee_rates.c.card_type, t.fee_rates.c.rate_ppm, t.fee_rates.c.cap_fen)
        .where(t.fee_rates.c.schedule_id == r.fee_schedule_id).order_by(t.fee_rates.c.card_type))}
    a = t.settlement_accounts
    out["accounts"] = [dict(x._mapping) for x in conn.execute(
        select(a.c.id, a.c.account_kind, a.c.holder_name, a.c.bank_code, a.c.bank_name, a.c.card_type,
               a.c.pan_masked, a.c.status, a.c.bound_at)
        .where(a.c.merchant_id == r.id).order_by(a.c.id))]
    tm = t.terminals
    out["terminals"] = [dict(x._mapping) for x in conn.execute(
        select(tm.c.terminal_no, tm.c.serial_no, tm.c.model, tm.c.status)
        .where(tm.c.merchant_id == r.id).order_by(tm.c.terminal_no))]
    return out


def listing(conn: Connection, *, status: str | None = None, city: str | None = None, limit: int = 50,
            offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, one page) of merchants for people, ordered by merchant number."""
    m = t.merchants
    where = []
    if status:
        where.append(m.c.status == status)
    if city:
        where.append(m.c.city == city)
    total = int(conn.execute(select(func.count()).select_from(m).where(*where)).scalar_one())
    rows = conn.execute(select(m.c.id, m.c.merchant_no, m.c.registered_name, m.c.kind, m.c.entity_kind, m.c.mcc,
                               m.c.city, m.c.cycle, m.c.status, m.c.created_at)
                        .where(*where).order_by(m.c.merchant_no).limit(limit).offset(offset)).all()
    return total, [dict(r._mapping) for r in rows]


def change_status(conn: Connection, merchant_id: int, from_statuses: Sequence[str], to_status: str, reason: str,
                  now: datetime) -> bool:
    """Move a merchant to ``to_status`` when it is in one of ``from_statuses`` (checked in the UPDATE)."""
    res = conn.execute(update(t.merchants)
                       .where(t.merchants.c.id == merchant_id, t.merchants.c.status.in_(list(from_statuses)))
                       .values(status=to_status, status_reason=reason[:256], status_changed_at=now))
    return res.rowcount == 1


@dataclass(frozen=True)
class MerchantRow:
    id: int
    merchant_no: str
    kind: str
    registered_name: str
    legal_person: str
    status: str


def merchant_by_no(conn: Connection, merchant_no: str, *, lock: bool = False) -> MerchantRow | None:
    """The merchant, locked FOR UPDATE on PostgreSQL when ``lock`` (serialises its bindings)."""
    m = t.merchants
    q = select(m.c.id, m.c.merchant_no, m.c.kind, m.c.registered_name, m.c.legal_person, m.c.status).where(
        m.c.merchant_no == merchant_no)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    r = conn.execute(q).first()
    return None if r is None else MerchantRow(*r)


def merchant_no_of(conn: Connection, merchant_id: int) -> str | None:
    return conn.execute(select(t.merchants.c.merchant_no).where(t.merchants.c.id == merchant_id)).scalar()


# --- lifecycle (merchants/lifecycle.py, payouts/merchant_holds.py, imports/transactions.py) -------------

def search(conn: Connection, *, text: str | None = None, status: str | None = None, city: str | None = None,
           merchant_id: int | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, one page) like :func:`listing`, also by ``text`` (a merchant number prefix or a part of
    the registered name) and ``merchant_id`` (a merchant user's own)."""
    m = t.merchants
    where = []
    if status:
        where.append(m.c.status == status)
    if city:
        where.append(m.c.city == city)
    if merchant_id is not None:
        where.append(m.c.id == merchant_id)
    if text:
        like = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(m.c.merchant_no.like(f"{like}%", escape="\\") | m.c.registered_name.like(f"%{like}%", escape="\\"))
    total = int(conn.execute(select(func.count()).select_from(m).where(*where)).scalar_one())
    rows = conn.execute(select(m.c.id, m.c.merchant_no, m.c.registered_name, m.c.kind, m.c.entity_kind, m.c.mcc,
                               m.c.city, m.c.cycle, m.c.status, m.c.status_reason, m.c.status_changed_at,
                               m.c.created_at)
                        .where(*where).order_by(m.c.merchant_no).limit(limit).offset(offset)).all()
    return total, [dict(r._mapping) for r in rows]


def id_of(conn: Connection, merchant_no: str) -> int | None:
    got = conn.execute(select(t.merchants.c.id).where(t.merchants.c.merchant_no == merchant_no)).scalar()
    return None if got is None else int(got)


def no_of(conn: Connection, merchant_id: int) -> str | None:
    got = conn.execute(select(t.merchants.c.merchant_no).where(t.merchants.c.id == merchant_id)).scalar()
    return None if got is None else str(got)


def with_status(conn: Connection, merchant_ids: Sequence[int], status: MerchantStatus) -> set[int]:
    """The merchants among ``merchant_ids`` whose status is ``status``."""
    m = t.merchants
    ids = sorted(set(merchant_ids))
    return {int(i) for start in range(0, len(ids), 500) for (i,) in conn.execute(
        select(m.c.id).where(m.c.id.in_(ids[start:start + 500]), m.c.status == str(status)))}


def closed_since(conn: Connection) -> dict[int, datetime]:
    """merchant id -> when it was closed, for every closed merchant."""
    m = t.merchants
    return {int(i): at for i, at in conn.execute(
        select(m.c.id, m.c.status_changed_at).where(m.c.status == str(MerchantStatus.CLOSED)))
        if at is not None}


STATUS_EVENTS = ("merchant.freeze", "merchant.unfreeze", "merchant.close")


def status_history(conn: Connection, merchant_id: int) -> list[dict[str, Any]]:
    """The merchant's status changes from the audit trail, oldest first: at, actor, kind, payload (JSON)."""
    a = t.audit_events
    return [dict(r._mapping) for r in conn.execute(
        select(a.c.at, a.c.actor, a.c.kind, a.c.payload)
        .where(a.c.subject_type == "merchant", a.c.subject_id == str(merchant_id), a.c.kind.in_(STATUS_EVENTS))
        .order_by(a.c.id))]



def switch_schedule(conn: Connection, merchant_no: str, credit_ppm_up: int) -> tuple[int, int] | None:
    """Move a merchant to a fee schedule whose credit rate is ``credit_ppm_up`` higher, in place, with no contract
    change: (old, new) credit ppm, None for an unknown merchant. This is what a back office does when it raises a
    "free POS" merchant's rate later (后期上调费率); the fee audit (fees/audit.py) finds it. Only the demo calls it."""
    m = t.merchants
    got = conn.execute(select(m.c.id, m.c.fee_schedule_id).where(m.c.merchant_no == merchant_no)).first()
    if got is None:
        return None
    rates = fee_schedules(conn)[int(got.fee_schedule_id)].rates
    debit, credit, qr = rates.get(CardType.DEBIT), rates.get(CardType.CREDIT), rates.get(CardType.QR)
    old = credit.rate_ppm if credit else 0
    higher = schedule_for_rates(conn, FeeContract(debit.rate_ppm if debit else 0, debit.cap_fen if debit else None,
                                                  old + credit_ppm_up, qr.rate_ppm if qr else 0, date(2000, 1, 1)))
    conn.execute(update(m).where(m.c.id == got.id).values(fee_schedule_id=higher))
    return old, old + credit_ppm_up
