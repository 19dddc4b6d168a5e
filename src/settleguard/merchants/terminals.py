"""Terminals bound to merchants (终端管理): register, move (移机), replace (换机) and retire (撤机).

Every change is one transaction with a terminal_events row (old and new serial number and address, who,
why) and an audit event. A terminal keeps its row: a move changes its address (the old one is in the
event), a replace with the same terminal number changes the device's serial number, a replace with a new
terminal number retires the old terminal and registers the new one at the same address. A retired
terminal stays retired; the transaction import refuses rows from it dated at or after its retirement
(imports/transactions.py), and rows from a terminal not registered to the row's merchant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from settleguard.audit import service as audit
from settleguard.merchants import terminals_repository as trepo
from settleguard.merchants.checks import RowProblem, check_terminal
from settleguard.merchants.model import Refused

RETIRED = "retired"


class TerminalRefused(Refused):
    """A terminal change refused."""


@dataclass(frozen=True)
class TerminalChange:
    action: str
    merchant_no: str
    terminal_no: str
    detail: dict[str, Any]


def _spec(serial: str, terminal_no: str, model: str) -> tuple[str, str, str]:
    out: list[RowProblem] = []
    spec = check_terminal(0, {"terminal_sn": serial, "terminal_no": terminal_no, "terminal_model": model}, out)
    if spec is None or out:
        p = out[0]
        raise TerminalRefused(p.zh, p.en)
    return spec.serial_no, spec.terminal_no, spec.model


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise TerminalRefused("须填写原因（--reason）", "a reason is required (--reason)")
    return reason[:256]


def _address(address: str) -> str:
    address = " ".join(address.split())
    if not address:
        raise TerminalRefused("须填写装机地址（--address）", "an installation address is required (--address)")
    if len(address) > 128:
        raise TerminalRefused("地址过长（最多 128 字）", "the address is too long (at most 128 characters)")
    return address


def _merchant(conn: Connection, merchant_no: str) -> int:
    got = trepo.merchant(conn, merchant_no)
    if got is None:
        raise TerminalRefused(f"商户 {merchant_no} 不存在", f"no merchant {merchant_no}")
    if got[1] == "closed":
        raise TerminalRefused(f"商户 {merchant_no} 已注销", f"merchant {merchant_no} is closed")
    return got[0]


def _active(conn: Connection, merchant_id: int, merchant_no: str, terminal_no: str) -> dict[str, Any]:
    term = trepo.terminal(conn, merchant_id, terminal_no)
    if term is None:
        raise TerminalRefused(f"商户 {merchant_no} 没有终端 {terminal_no}", f"merchant {merchant_no} has no terminal "
                              f"{terminal_no}")
    if term["status"] == RETIRED:
        raise TerminalRefused(f"终端 {terminal_no} 已撤机", f"terminal {terminal_no} is retired")
    return term


def _free_serial(conn: Connection, serial: str) -> None:
    owner = trepo.serial_owner(conn, serial)
    if owner is not None:
        raise TerminalRefused(f"序列号 {serial} 已登记在商户 {owner} 的终端上", f"serial number {serial} is already on "
                              f"a terminal of merchant {owner}")


def _audit(conn: Connection, actor: str, action: str, merchant_id: int, detail: dict[str, Any], now: datetime) -> None:
    audit.record(conn, actor, f"terminal.{action}", ("merchant", merchant_id), detail, now)


def add(engine: Engine, merchant_no: str, *, serial: str, terminal_no: str, model: str, address: str,
        reason: str = "登记终端 register", actor: str, now: datetime) -> TerminalChange:
    """Register a new terminal to the merchant."""
    sn, tn, mdl = _spec(serial, terminal_no, model)
    addr, why = _address(address), _reason(reason)
    with engine.begin() as conn:
        mid = _merchant(conn, merchant_no)
        if trepo.terminal(conn, mid, tn) is not None:
            raise TerminalRefused(f"商户 {merchant_no} 已有终端号 {tn}（撤机的终端号不再使用）",
                                  f"merchant {merchant_no} already has terminal {tn} (a retired number is not reused)")
        _free_serial(conn, sn)
        tid = trepo.insert_terminal(conn, mid, tn, sn, mdl, addr)
        trepo.record_event(conn, tid, mid, "add", actor=actor, reason=why, now=now, new_serial=sn, new_address=addr)
        detail = {"merchant_no": merchant_no, "terminal_no": tn, "serial_no": sn, "model": mdl, "address": addr,
                  "reason": why}
        _audit(conn, actor, "add", mid, detail, now)
    return TerminalChange("add", merchant_no, tn, detail)


def move(engine: Engine, merchant_no: str, terminal_no: str, *, address: str, reason: str, actor: str,
         now: datetime) -> TerminalChange:
    """移机: the terminal moves to a new address; the old one is kept in the event."""
    addr, why = _address(address), _reason(reason)
    with engine.begin() as conn:
        mid = _merchant(conn, merchant_no)
        term = _active(conn, mid, merchant_no, terminal_no)
        if term["address"] == addr:
            raise TerminalRefused("新地址与原地址相同", "the new address is the old one")
        trepo.update_terminal(conn, term["id"], address=addr)
        trepo.record_event(conn, term["id"], mid, "move", actor=actor, reason=why, now=now,
                           old_address=term["address"], new_address=addr)
        detail = {"merchant_no": merchant_no, "terminal_no": terminal_no, "old_address": term["address"],
                  "new_address": addr, "reason": why}
        _audit(conn, actor, "move", mid, detail, now)
    return TerminalChange("move", merchant_no, terminal_no, detail)


def replace(engine: Engine, merchant_no: str, terminal_no: str, *, serial: str, new_terminal_no: str | None = None,
            model: str | None = None, reason: str, actor: str, now: datetime) -> TerminalChange:
    """换机: a new device. Same terminal number: the serial number changes. A new number: the old terminal is
    retired and the new one registered at its address."""
    why = _reason(reason)
    with engine.begin() as conn:
        mid = _merchant(conn, merchant_no)
        term = _active(conn, mid, merchant_no, terminal_no)
        sn, tn, mdl = _spec(serial, new_terminal_no or terminal_no, model or term["model"])
        if sn == term["serial_no"]:
            raise TerminalRefused("新序列号与原序列号相同", "the new serial number is the old one")
        _free_serial(conn, sn)
        if tn == terminal_no:
            trepo.update_terminal(conn, term["id"], serial_no=sn, model=mdl)
            trepo.record_event(conn, term["id"], mid, "replace", actor=actor, reason=why, now=now,
                               old_serial=term["serial_no"], new_serial=sn, old_address=term["address"],
                               new_address=term["address"])
        else:
            if trepo.terminal(conn, mid, tn) is not None:
                raise TerminalRefused(f"商户 {merchant_no} 已有终端号 {tn}", f"merchant {merchant_no} already has "
                                      f"terminal {tn}")
            trepo.update_terminal(conn, term["id"], status=RETIRED, retired_at=now)
            trepo.record_event(conn, term["id"], mid, "retire", actor=actor, reason=f"换机 replaced by {tn}: {why}",
                               now=now, old_serial=term["serial_no"], old_address=term["address"])
            tid = trepo.insert_terminal(conn, mid, tn, sn, mdl, term["address"])
            trepo.record_event(conn, tid, mid, "replace", actor=actor, reason=why, now=now,
                               old_serial=term["serial_no"], new_serial=sn, new_address=term["address"])
        detail = {"merchant_no": merchant_no, "terminal_no": terminal_no, "new_terminal_no": tn,
                  "old_serial_no": term["serial_no"], "new_serial_no": sn, "model": mdl, "reason": why}
        _audit(conn, actor, "replace", mid, detail, now)
    return TerminalChange("replace", merchant_no, tn, detail)


def retire(engine: Engine, merchant_no: str, terminal_no: str, *, reason: str, actor: str,
           now: datetime) -> TerminalChange:
    """撤机: the terminal takes no more transactions from ``now``."""
    why = _reason(reason)
    with engine.begin() as conn:
        mid = _merchant(conn, merchant_no)
        term = _active(conn, mid, merchant_no, terminal_no)
        trepo.update_terminal(conn, term["id"], status=RETIRED, retired_at=now)
        trepo.record_event(conn, term["id"], mid, "retire", actor=actor, reason=why, now=now,
                           old_serial=term["serial_no"], old_address=term["address"])
        detail = {"merchant_no": merchant_no, "terminal_no": terminal_no, "serial_no": term["serial_no"],
                  "reason": why}
        _audit(conn, actor, "retire", mid, detail, now)
    return TerminalChange("retire", merchant_no, terminal_no, detail)
