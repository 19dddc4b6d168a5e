"""Fee contracts with history (费率合同变更): a rate change is a new contract row from a date, never an edit.

- ``contract show``: every contract of a merchant with the rates before and after, effective date, who and why.
- ``contract change``: new rates from a date, with a reason (required). Refused: a date before today
  (Beijing time), or a date on or before a business day of the merchant that already has transactions
  imported or settled — their fees were computed with the contract then in force, and a contract may not
  re-price them; also refused when nothing changes or the day already has a contract.
- The transaction import prices each row with the contract in force on its business day
  (imports/transactions.py, vectorised). The change and its audit event are one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from settleguard.audit import service as audit
from settleguard.config import DEFAULT_TIMEZONE
from settleguard.merchants import contracts_repository as crepo
from settleguard.merchants import repository as repo
from settleguard.merchants.checks import MAX_RATE_PPM, parse_date
from settleguard.merchants.model import FeeContract, Refused
from settleguard.money import MoneyError, fen_to_yuan, rate_to_ppm, yuan_to_fen
from settleguard.settlement.model import CardType

Rates = tuple[int, int | None, int, int]  # debit ppm, debit cap fen, credit ppm, qr ppm


class ContractRefused(Refused):
    """A contract change refused."""


@dataclass(frozen=True)
class ContractVersion:
    effective_from: date | None
    rates: Rates
    previous: Rates | None
    actor: str
    reason: str
    created_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"effective_from": None if self.effective_from is None else self.effective_from.isoformat(),
                "rates": rates_dict(self.rates), "previous": None if self.previous is None
                else rates_dict(self.previous), "actor": self.actor, "reason": self.reason,
                "created_at": None if self.created_at is None else self.created_at.isoformat()}


def rates_dict(r: Rates) -> dict[str, Any]:
    return {"debit_rate": pct(r[0]), "debit_cap_yuan": None if r[1] is None else fen_to_yuan(r[1]),
            "credit_rate": pct(r[2]), "qr_rate": pct(r[3])}


def pct(ppm: int) -> str:
    return f"{ppm / 10_000:g}%"


def rates_text(r: Rates) -> str:
    cap = "" if r[1] is None else f"（封顶 cap ¥{fen_to_yuan(r[1])}）"
    return f"借记卡 debit {pct(r[0])}{cap}，信用卡 credit {pct(r[2])}，扫码 QR {pct(r[3])}"


def _schedule_rates(conn: Connection) -> dict[int, Rates]:
    out: dict[int, Rates] = {}
    for sid, s in repo.fee_schedules(conn).items():
        d, c, q = s.rates.get(CardType.DEBIT), s.rates.get(CardType.CREDIT), s.rates.get(CardType.QR)
        out[sid] = (d.rate_ppm if d else 0, d.cap_fen if d else None, c.rate_ppm if c else 0, q.rate_ppm if q else 0)
    return out


def _merchant_id(conn: Connection, merchant_no: str) -> int:
    mid = crepo.merchant_id(conn, merchant_no)
    if mid is None:
        raise ContractRefused(f"商户 {merchant_no} 不存在", f"no merchant {merchant_no}")
    return int(mid)


def _versions(conn: Connection, merchant_id: int) -> list[ContractVersion]:
    rates = _schedule_rates(conn)
    out: list[ContractVersion] = []
    prev: Rates | None = None
    for row in crepo.history(conn, merchant_id):
        r = rates[row.schedule_id]
        out.append(ContractVersion(row.effective_from, r, prev, row.actor, row.reason, row.created_at))
        prev = r
    return out


def versions_of(conn: Connection, merchant_id: int) -> list[ContractVersion]:
    """The contracts of a merchant known to exist, by effective date (the merchant portal shows them)."""
    return _versions(conn, merchant_id)


def history(engine: Engine, merchant_no: str) -> list[ContractVersion]:
    """The merchant's contracts by effective date (the first: its registration contract)."""
    with engine.connect() as conn:
        return _versions(conn, _merchant_id(conn, merchant_no))


def in_force(versions: list[ContractVersion], day: date) -> ContractVersion:
    """The contract in force on ``day``: the latest effective on or before it (the first before them all)."""
    current = versions[0]
    for v in versions[1:]:
        if v.effective_from is not None and v.effective_from <= day:
            current = v
    return current


def _rate(raw: str | None, default: int, name_zh: str, name_en: str) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        ppm = rate_to_ppm(raw)
    except (MoneyError, InvalidOperation, ValueError):
        raise ContractRefused(f"{name_zh}不是百分比费率：{raw[:40]!r}（如 0.6 表示 0.6%）",
                              f"{name_en} is not a percentage rate: {raw[:40]!r} (0.6 means 0.6%)") from None
    if ppm > MAX_RATE_PPM:
        raise ContractRefused(f"{name_zh} {raw}% 高于上限 {MAX_RATE_PPM / 10_000:g}%",
                              f"{name_en} {raw}% is above the limit of {MAX_RATE_PPM / 10_000:g}%")
    return ppm


def _cap(raw: str | None, default: int | None) -> int | None:
    if raw is None or not raw.strip():
        return default
    if raw.strip().lower() in ("none", "无", "不封顶"):
        return None
    try:
        cap = yuan_to_fen(raw)
    except MoneyError:
        cap = -1
    if cap < 0:
        raise ContractRefused(f"封顶金额应为元（最多两位小数）或 none：{raw[:40]!r}",
                              f"the debit cap is yuan (at most 2 decimals) or none: {raw[:40]!r}")
    return cap


@dataclass(frozen=True)
class ContractChange:
    merchant_no: str
    effective_from: date
    old: Rates
    new: Rates
    reason: str


def change(engine: Engine, merchant_no: str, *, effective: str, debit_rate: str | None = None,
           debit_cap: str | None = None, credit_rate: str | None = None, qr_rate: str | None = None,
           reason: str, actor: str, now: datetime, timezone: str = DEFAULT_TIMEZONE) -> ContractChange:
    """A new contract from ``effective``; rates left out keep the contract in force on that day."""
    reason = reason.strip()
    if not reason:
        raise ContractRefused("费率变更须填写原因（--reason）", "a rate change needs a reason (--reason)")
    day = parse_date(effective.strip())
    if day is None:
        raise ContractRefused(f"生效日期应为 YYYY-MM-DD：{effective[:40]!r}",
                              f"the effective date must be YYYY-MM-DD: {effective[:40]!r}")
    today = now.astimezone(ZoneInfo(timezone)).date()
    if day < today:
        raise ContractRefused(f"生效日期 {day} 早于今天 {today}（北京时间）：费率变更不能追溯",
                              f"the effective date {day} is before today {today} (Beijing time): a rate change "
                              "cannot be backdated")
    with engine.begin() as conn:
        mid = _merchant_id(conn, merchant_no)
        old = in_force(_versions(conn, mid), day).rates
        new: Rates = (_rate(debit_rate, old[0], "借记卡费率", "the debit rate"), _cap(debit_cap, old[1]),
                      _rate(credit_rate, old[2], "信用卡费率", "the credit rate"),
                      _rate(qr_rate, old[3], "扫码费率", "the QR rate"))
        if new == old:
            raise ContractRefused(f"费率与 {day} 生效的合同相同，未变更", f"the rates equal the contract in force on {day}; "
                                  "nothing to change")
        used = crepo.last_business_day(conn, mid, day)
        if used is not None:
            raise ContractRefused(
                f"商户 {merchant_no} 在业务日 {used} 已有导入或结算的交易，其手续费已按原合同计算：生效日期须晚于 {used}",
                f"merchant {merchant_no} has transactions imported or settled on business day {used}, their fees "
                f"computed under the contract then in force: the effective date must be after {used}")
        first = crepo.history(conn, mid)[0]
        if first.id is None:  # a merchant from before contract history: its registration contract becomes a row
            crepo.insert_contract(conn, mid, first.schedule_id, first.effective_from or date(2000, 1, 1),
                                  "system", "入网合同 registration contract", first.created_at or now)
        schedule = repo.schedule_for_rates(conn, FeeContract(new[0], new[1], new[2], new[3], day))
        try:
            with conn.begin_nested():
                crepo.insert_contract(conn, mid, schedule, day, actor, reason, now)
        except IntegrityError:
            raise ContractRefused(f"商户 {merchant_no} 在 {day} 已有一份合同变更；请另选日期",
                                  f"merchant {merchant_no} already has a contract from {day}; choose another "
                                  "date") from None
        audit.record(conn, actor, "merchant.contract_change", ("merchant", mid), {
            "merchant_no": merchant_no, "effective_from": day.isoformat(), "old": rates_dict(old),
            "new": rates_dict(new), "reason": reason[:256]}, now)
    return ContractChange(merchant_no, day, old, new, reason)
