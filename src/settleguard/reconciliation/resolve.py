"""Resolving a reconciliation break (差错处理) with four eyes: one operator proposes, another approves.

中文：差错处理采用“双人复核”：一名操作员提出处理方案（必须填写说明），另一名操作员批准或驳回；提出人不能
批准自己的方案。批准之前不动任何资金；批准时在一个数据库事务中按差错类型记一笔账（摘要注明差错编号），
差错状态变为“已处理”。提出、批准、驳回都写入审计链。

What an approval does, per break type (``ACTIONS``; the first action of each type is its default):

==================  ===============  ===================================================================
break type          action           on approval (one transaction)
==================  ===============  ===================================================================
duplicate_debit,    bank_receivable  ``recon_receivable`` entry Dr bank_receivable / Cr bank_provisions; the
bank_only                            receivable stays open until the bank's refund (a booked credit of the same
                                     amount under the same EndToEndId) is seen by a recon run (or is already
                                     there): then ``recon_refund`` Dr bank_provisions / Cr bank_receivable, and the
                                     refund line's own ``reversal`` break is resolved with it (system).
                    write_off        ``recon_write_off`` Dr recon_loss / Cr bank_provisions
amount_mismatch     adjust           ``recon_adjustment`` of the difference (bank − ours): Dr recon_adjustment /
                                     Cr bank_provisions when the bank paid more, the reverse when it paid less
reversal            hold             the returns path of camt.054 (payouts.files): succeeded -> returned ->
                                     held, ``payout_return`` entry (Dr bank_provisions / Cr merchant_held), the
                                     merchant's notice; the payout must still be succeeded
clearing_long       adjust_txn       an adjustment transaction (sale, ``RA`` + resolution id) in the merchant's
(长款)                               next unsettled cycle: settled and paid by the next settlement run, through
                                     the same path as imported transactions (no second money path)
clearing_short      reverse_txn      a reversal (冲正) of our transaction in the next cycle: netted from the
(短款)                               merchant's next settlement (carried over when negative)
any type            note             nothing moves: the note explains the break (ledger_only once ``recon
                                     follow-up`` sent the payout back to inquiry, balance_drift, a reversal already
                                     held). Refused while the break still changes the bank balance against the
                                     ledger (duplicate_debit, bank_only, amount_mismatch with an amount; a full
                                     credit back of a payout still succeeded; a ledger_only payout still recorded
                                     succeeded): a note alone would leave ``ledger check``'s balance proof
                                     unexplained.
==================  ===============  ===================================================================

The receivable, write-off and adjustment entries post between platform accounts (no merchant), so merchant
positions and ``ledger check`` are untouched; bank_provisions then follows what the bank really booked.

Clearing breaks (clearing_matching.py, ``recon_breaks.type`` clearing_long / clearing_short) are read from their
detail: the merchant is ``merchant_id`` or the network's ``merchant_code`` (our merchant number); a 长款 takes
``fee_fen`` (else ``network_fee_fen``), ``terminal_id`` (else ``terminal_no``), ``occurred_at`` (else
``sent_at``), ``card_type`` 1-3, and becomes a refund (退货, no fee back) when ``network_net_fen`` is negative;
a 短款 names our sale by ``external_ref`` (else the break's EndToEndId) and optionally ``cycle_date``; the
amount is the break's ``amount_fen`` (positive).

Guarantees: a break has at most one live (proposed or approved) resolution (a unique column), the approval
and the break's change to ``resolved`` are conditional UPDATEs in the approval's transaction, so money moves at
most once however approvals race; a break that changed since the proposal (cleared, amount changed) refuses the
approval. Every refusal is a :class:`ResolutionRefused` in Chinese and English; nothing is changed then.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from settleguard.audit import service as audit
from settleguard.labels import RECON_ACTION, RECON_BREAK_STATUS, RECON_BREAK_TYPE, pair
from settleguard.ledger import model as ledger
from settleguard.ledger import repository as ledger_repo
from settleguard.masking import bounded, mask_card_numbers
from settleguard.reconciliation import resolution_repository as repo

NOTE_LIMIT = 2000
ACTOR_LIMIT = 64
SYSTEM = "system"


class Action(enum.StrEnum):
    BANK_RECEIVABLE = "bank_receivable"
    WRITE_OFF = "write_off"
    ADJUST = "adjust"
    HOLD = "hold"
    NOTE = "note"
    ADJUST_TXN = "adjust_txn"
    REVERSE_TXN = "reverse_txn"
    REFUND_MATCHED = "refund_matched"  # recorded by the system when a refund settles a receivable


class Status(enum.StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"


A = Action
ACTIONS: Mapping[str, tuple[Action, ...]] = {
    "duplicate_debit": (A.BANK_RECEIVABLE, A.WRITE_OFF, A.NOTE),
    "bank_only": (A.BANK_RECEIVABLE, A.WRITE_OFF, A.NOTE),
    "amount_mismatch": (A.ADJUST, A.NOTE),
    "reversal": (A.HOLD, A.NOTE),
    "ledger_only": (A.NOTE,),
    "balance_drift": (A.NOTE,),
    "clearing_long": (A.ADJUST_TXN, A.NOTE),
    "clearing_short": (A.REVERSE_TXN, A.NOTE),
}
MOVES_MONEY = frozenset({A.BANK_RECEIVABLE, A.WRITE_OFF, A.ADJUST, A.HOLD, A.ADJUST_TXN, A.REVERSE_TXN})


def actions_for(break_type: str) -> tuple[Action, ...]:
    """The actions a break of ``break_type`` may be resolved with; the first is the default."""
    return ACTIONS.get(break_type, (A.NOTE,))


class ResolutionRefused(ValueError):
    """A proposal, approval or rejection that cannot be done; nothing was changed.

    ``reason``: not_found (404), forbidden (the proposer approving: 403), conflict (the break or the resolution
    is no longer in the state asked for: 409), invalid (a bad action, note or name: 422)."""

    def __init__(self, reason: str, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.reason, self.zh, self.en = reason, zh, en


@dataclass(frozen=True)
class Resolution:
    id: int
    break_id: int
    break_type: str
    action: str
    status: str
    amount_fen: int | None
    note: str
    proposed_by: str
    proposed_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    entry_id: int | None
    payout_id: int | None
    txn_cycle_date: date | None
    txn_merchant_id: int | None
    txn_external_ref: str | None
    receivable_status: str | None
    settled_line_id: int | None
    settled_entry_id: int | None
    settled_at: datetime | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Resolution:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        """JSON: codes, fen and ISO times with their offset (UTC)."""
        out: dict[str, Any] = {}
        for f in self.__dataclass_fields__:
            v = getattr(self, f)
            if isinstance(v, datetime):
                v = (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
            elif isinstance(v, date):
                v = v.isoformat()
            out[f] = v
        return out


# --- what people type ---------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_actor(actor: str) -> str:
    """The acting person's name: trimmed, 1-64 characters, no control characters."""
    raw = str(actor or "")
    name = " ".join(raw.split())
    if not name or len(name) > ACTOR_LIMIT or _CONTROL.search(raw):
        raise ResolutionRefused("invalid", f"操作人姓名无效（1-{ACTOR_LIMIT} 个字符）：{bounded(name, 40)!r}",
                                f"invalid name of the acting person (1-{ACTOR_LIMIT} characters): "
                                f"{bounded(name, 40)!r}")
    return name


def same_person(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def clean_note(note: str | None, *, required: bool) -> str:
    """A note as stored: trimmed, card numbers masked, at most NOTE_LIMIT characters (longer is refused)."""
    text = mask_card_numbers(str(note or "").strip())
    if required and not text:
        raise ResolutionRefused("invalid", "必须填写处理说明（--note）", "a note is required (--note)")
    if len(text) > NOTE_LIMIT:
        raise ResolutionRefused("invalid", f"处理说明过长：{len(text)} 个字符，最多 {NOTE_LIMIT}",
                                f"note too long: {len(text)} characters, at most {NOTE_LIMIT}")
    return text


def parse_action(break_type: str, typed: str | None) -> Action:
    """The action a person typed (code, Chinese or English label) for a break of ``break_type``."""
    from settleguard.labels import parse

    allowed = actions_for(break_type)
    if typed is None or not str(typed).strip():
        return allowed[0]
    code = parse(RECON_ACTION, str(typed))
    if code is None or code not in allowed or code == A.REFUND_MATCHED:
        zh_t, en_t = pair(RECON_BREAK_TYPE, break_type)
        zh_ok = "、".join(f"{pair(RECON_ACTION, a)[0]}（{a}）" for a in allowed)
        en_ok = ", ".join(f"{a}" for a in allowed)
        raise ResolutionRefused("invalid", f"“{zh_t}”差错不能用处理方式 {bounded(str(typed), 40)!r}；可用：{zh_ok}",
                                f"a {en_t} break cannot be resolved with {bounded(str(typed), 40)!r}; "
                                f"accepted: {en_ok}")
    return Action(code)


# --- the use cases ------------------------------------------------------------------------------------------

def _refuse_break_state(brk: Mapping[str, Any]) -> None:
    if brk["status"] != "open":
        zh, en = pair(RECON_BREAK_STATUS, brk["status"])
        raise ResolutionRefused("conflict", f"差错 #{brk['id']} 当前为“{zh}”，只有未解决的差错可以处理",
                                f"break #{brk['id']} is {en}: only open breaks can be resolved")


def _payout_status(conn: Connection, payout_id: int) -> str | None:
    from settleguard.payouts import repository as payouts

    got = payouts.statuses(conn, [payout_id])
    return None if payout_id not in got else str(got[payout_id])


def _check_feasible(conn: Connection, brk: Mapping[str, Any], action: Action) -> None:
    """Refuse what an approval could not do (checked at the proposal and again at the approval)."""
    bid, amount = brk["id"], brk["amount_fen"]
    if action in (A.BANK_RECEIVABLE, A.WRITE_OFF, A.ADJUST_TXN, A.REVERSE_TXN) and (amount is None or amount <= 0):
        raise ResolutionRefused("invalid", f"差错 #{bid} 的金额为 {amount}，不能按此方式处理",
                                f"break #{bid} has amount {amount}: this action needs a positive amount")
    if action is A.ADJUST and not amount:
        raise ResolutionRefused("invalid", f"差错 #{bid} 没有差额，无需调整", f"break #{bid} has no difference to adjust")
    if action is A.NOTE:
        _check_note(conn, brk)
    if action is A.HOLD:
        if brk["payout_id"] is None:
            raise ResolutionRefused("invalid", f"差错 #{bid} 没有对应的出款，不能挂账；可选“仅记录说明”",
                                    f"break #{bid} names no payout to hold; use note")
        status = _payout_status(conn, int(brk["payout_id"]))
        if status != "succeeded":
            from settleguard.labels import PAYOUT_STATUS

            zh, en = pair(PAYOUT_STATUS, status)
            raise ResolutionRefused("conflict", f"出款 #{brk['payout_id']} 当前为“{zh}”，不是“出款成功”，不能按退票挂账"
                                                "（可能已退票挂账）；可选“仅记录说明”",
                                    f"payout #{brk['payout_id']} is {en}, not succeeded: it cannot be held as for a "
                                    "return (it may be held already); use note")
        line = _line(conn, brk)
        if line is None or line["direction"] != "CRDT" or line["status"] != "BOOK" or int(line["amount_fen"]) != int(
                _payout_amount(conn, int(brk["payout_id"]))):
            raise ResolutionRefused("invalid", f"差错 #{bid} 不是该出款全额的银行贷记退回，不能按退票挂账；可选“仅记录说明”",
                                    f"break #{bid} is not a booked credit of the payout's full amount: it cannot be "
                                    "held as for a return; use note")
    if action in (A.ADJUST_TXN, A.REVERSE_TXN):
        _clearing_txn(conn, brk, action, resolution_id=0, day=None, dry_run=True)


BALANCE_TYPES = frozenset({"duplicate_debit", "bank_only", "amount_mismatch"})


def note_only_refused(break_type: str, amount_fen: int | None) -> bool:
    """A break whose amount changed the bank balance cannot be closed by a note alone: the ledger's
    bank_provisions would no longer agree with the bank (the balance proof of ``ledger check``)."""
    return break_type in BALANCE_TYPES and bool(amount_fen)


def _check_note(conn: Connection, brk: Mapping[str, Any]) -> None:
    bid, amount = brk["id"], brk["amount_fen"]
    if note_only_refused(str(brk["type"]), amount):
        ok = "、".join(pair(RECON_ACTION, a)[0] for a in actions_for(str(brk["type"])) if a is not A.NOTE)
        raise ResolutionRefused("invalid", f"差错 #{bid} 使备付金余额相差 {amount} 分，仅记录说明会使账实核对不平；"
                                           f"请选择：{ok}",
                                f"break #{bid} changed the bank balance by {amount} fen: a note alone would leave "
                                f"the balance proof unexplained; choose "
                                + ", ".join(a for a in actions_for(str(brk["type"])) if a is not A.NOTE))
    if brk["type"] == "ledger_only" and brk["payout_id"] is not None \
            and _payout_status(conn, int(brk["payout_id"])) == "succeeded":
        raise ResolutionRefused("invalid", f"出款 #{brk['payout_id']} 仍记为“出款成功”而银行未记账：请等待自动转查询"
                                           "（recon follow-up）或银行补记；仅记录说明会使账实核对不平",
                                f"payout #{brk['payout_id']} is still recorded as succeeded with no booked debit: wait "
                                "for the automatic inquiry (recon follow-up) or the bank's late booking; a note alone "
                                "would leave the balance proof unexplained")
    if brk["type"] == "reversal" and brk["payout_id"] is not None \
            and _payout_status(conn, int(brk["payout_id"])) == "succeeded":
        line = _line(conn, brk)
        if line is not None and line["direction"] == "CRDT" and int(line["amount_fen"]) == _payout_amount(
                conn, int(brk["payout_id"])):
            raise ResolutionRefused("invalid", f"出款 #{brk['payout_id']} 仍为“出款成功”，银行已全额退回：请选择“按退票挂账”",
                                    f"payout #{brk['payout_id']} is still succeeded and the bank credited it back "
                                    "in full: choose hold")


def _line(conn: Connection, brk: Mapping[str, Any]) -> dict[str, Any] | None:
    from settleguard.reconciliation import repository as recon_repo

    return None if brk["bank_line_id"] is None else recon_repo.line_by_id(conn, int(brk["bank_line_id"]))


def _payout_amount(conn: Connection, payout_id: int) -> int:
    from settleguard.payouts import repository as payouts

    found = payouts.by_ids(conn, [payout_id])
    return -1 if not found else int(found[0].amount_fen)


def propose(engine: Engine, break_id: int, action: str | None, note: str, actor: str, now: datetime) -> Resolution:
    """Propose how ``break_id`` is resolved (maker). Nothing moves until another person approves."""
    who = clean_actor(actor)
    text = clean_note(note, required=True)
    try:
        with engine.begin() as conn:
            brk = repo.lock_break(conn, break_id)
            if brk is None:
                raise ResolutionRefused("not_found", f"没有差错 #{break_id}", f"no break #{break_id}")
            _refuse_break_state(brk)
            act = parse_action(str(brk["type"]), action)
            live = repo.live_of_break(conn, break_id)
            if live is not None:
                raise ResolutionRefused("conflict", f"差错 #{break_id} 已有处理方案 #{live['id']}（{live['status']}），"
                                                    "请先批准或驳回", f"break #{break_id} already has resolution "
                                                    f"#{live['id']} ({live['status']}): approve or reject it first")
            _check_feasible(conn, brk, act)
            rid = repo.insert_resolution(conn, {
                "break_id": break_id, "break_type": str(brk["type"]), "action": str(act), "status": "proposed",
                "amount_fen": brk["amount_fen"], "note": text, "proposed_by": who, "proposed_at": now,
                "live_break_id": break_id, "payout_id": brk["payout_id"]})
            audit.record(conn, who, "recon.resolution_proposed", ("recon_break", break_id), {
                "resolution_id": rid, "break_type": str(brk["type"]), "action": str(act),
                "amount_fen": brk["amount_fen"], "note": bounded(text, 500)}, now)
            row = repo.by_id(conn, rid)
    except IntegrityError:
        raise ResolutionRefused("conflict", f"差错 #{break_id} 已有处理方案（同时提交），请刷新后再试",
                                f"break #{break_id} already has a resolution (submitted at the same time)") from None
    assert row is not None
    return Resolution.of(row)


def _load_proposed(conn: Connection, resolution_id: int) -> dict[str, Any]:
    res = repo.lock_resolution(conn, resolution_id)
    if res is None:
        raise ResolutionRefused("not_found", f"没有处理方案 #{resolution_id}", f"no resolution #{resolution_id}")
    if res["status"] != "proposed":
        from settleguard.labels import RECON_RESOLUTION_STATUS

        zh, en = pair(RECON_RESOLUTION_STATUS, res["status"])
        raise ResolutionRefused("conflict", f"处理方案 #{resolution_id} 已{zh}（{res['decided_by'] or '-'}），不能再次处理",
                                f"resolution #{resolution_id} is already {en} (by {res['decided_by'] or '-'})")
    return res


def approve(engine: Engine, resolution_id: int, actor: str, now: datetime, *, tz: str,
            note: str = "") -> Resolution:
    """Approve (checker): the proposer cannot. Moves the money the action says, in one transaction, and marks
    the break resolved. ``tz``: the business time zone (the next cycle's date of an adjustment transaction,
    the merchant's notice)."""
    who = clean_actor(actor)
    text = clean_note(note, required=False)
    with engine.begin() as conn:
        res = _load_proposed(conn, resolution_id)
        if same_person(who, str(res["proposed_by"])):
            raise ResolutionRefused("forbidden", f"提出人 {res['proposed_by']} 不能批准自己提出的处理方案，须由另一名操作员批准",
                                    f"{res['proposed_by']} proposed this resolution and cannot approve it: "
                                    "another operator must")
        brk = repo.lock_break(conn, int(res["break_id"]))
        if brk is None:
            raise ResolutionRefused("not_found", f"没有差错 #{res['break_id']}", f"no break #{res['break_id']}")
        _refuse_break_state(brk)
        if brk["amount_fen"] != res["amount_fen"] or str(brk["type"]) != res["break_type"]:
            raise ResolutionRefused("conflict", f"差错 #{brk['id']} 在提出后已变化（金额 {res['amount_fen']} → "
                                                f"{brk['amount_fen']}），请驳回后重新提出",
                                    f"break #{brk['id']} changed since the proposal (amount {res['amount_fen']} -> "
                                    f"{brk['amount_fen']}): reject and propose again")
        action = Action(res["action"])
        _check_feasible(conn, brk, action)
        done = _execute(conn, res, brk, action, now, tz)
        if not repo.decide(conn, resolution_id, "approved", {"decided_by": who, "decided_at": now,
                                                             "decision_note": text or None, **done}):
            raise ResolutionRefused("conflict", f"处理方案 #{resolution_id} 已被他人处理", f"resolution "
                                    f"#{resolution_id} was decided by someone else")
        if not repo.resolve_break(conn, int(brk["id"])):
            raise ResolutionRefused("conflict", f"差错 #{brk['id']} 已不是未解决状态", f"break #{brk['id']} is no longer open")
        audit.record(conn, who, "recon.resolution_approved", ("recon_break", int(brk["id"])), {
            "resolution_id": resolution_id, "break_type": res["break_type"], "action": str(action),
            "amount_fen": res["amount_fen"], "proposed_by": res["proposed_by"],
            **{k: (v.isoformat() if isinstance(v, date) else v) for k, v in done.items()},
            **({"note": bounded(text, 500)} if text else {})}, now)
        if action is A.BANK_RECEIVABLE:
            settle_refunds(conn, now)  # the refund may be booked already
        row = repo.by_id(conn, resolution_id)
    assert row is not None
    return Resolution.of(row)


def reject(engine: Engine, resolution_id: int, actor: str, now: datetime, note: str = "") -> Resolution:
    """Reject a proposal (any operator; the proposer withdrawing it included). Nothing moves; the break stays
    open and may be proposed again."""
    who = clean_actor(actor)
    text = clean_note(note, required=False)
    with engine.begin() as conn:
        res = _load_proposed(conn, resolution_id)
        if not repo.decide(conn, resolution_id, "rejected", {"decided_by": who, "decided_at": now,
                                                             "decision_note": text or None, "live_break_id": None}):
            raise ResolutionRefused("conflict", f"处理方案 #{resolution_id} 已被他人处理",
                                    f"resolution #{resolution_id} was decided by someone else")
        audit.record(conn, who, "recon.resolution_rejected", ("recon_break", int(res["break_id"])), {
            "resolution_id": resolution_id, "action": res["action"], "proposed_by": res["proposed_by"],
            **({"note": bounded(text, 500)} if text else {})}, now)
        row = repo.by_id(conn, resolution_id)
    assert row is not None
    return Resolution.of(row)


def list_for_break(engine: Engine, break_id: int) -> list[Resolution]:
    """The break's resolution history, oldest first."""
    with engine.connect() as conn:
        return [Resolution.of(r) for r in repo.of_break(conn, break_id)]


def get(engine: Engine, resolution_id: int) -> Resolution | None:
    with engine.connect() as conn:
        row = repo.by_id(conn, resolution_id)
    return None if row is None else Resolution.of(row)


def listing(engine: Engine, status: str | None = None, limit: int = 1000) -> list[Resolution]:
    """Resolutions (of ``status``; None: all), newest first."""
    with engine.connect() as conn:
        return [Resolution.of(r) for r in repo.listing(conn, status, limit)]


def pending(engine: Engine, limit: int = 1000) -> list[Resolution]:
    """Proposals awaiting approval, newest first (the checker's queue)."""
    return listing(engine, "proposed", limit)


# --- what an approval does ----------------------------------------------------------------------------------

def _memo(brk: Mapping[str, Any], res: Mapping[str, Any], zh: str, en: str) -> str:
    return f"差错处理 {zh} 差错 #{brk['id']} 方案 #{res['id']} / break #{brk['id']} resolution #{res['id']}: {en}"[:256]


def _post(conn: Connection, entry: ledger.Entry, now: datetime) -> int:
    return ledger_repo.post(conn, [entry], now)[0]


def _execute(conn: Connection, res: Mapping[str, Any], brk: Mapping[str, Any], action: Action, now: datetime,
             tz: str) -> dict[str, Any]:
    """Move the money of an approved resolution; returns the columns to store with it."""
    acc, kind = ledger.Account, ledger.EntryKind
    amount = int(brk["amount_fen"] or 0)
    if action is A.NOTE:
        return {}
    if action is A.BANK_RECEIVABLE:
        eid = _post(conn, ledger.recon_entry(kind.RECON_RECEIVABLE, _memo(brk, res, "应收银行款", "receivable from "
                    "the bank"), acc.BANK_RECEIVABLE, acc.BANK_PROVISIONS, amount), now)
        return {"entry_id": eid, "receivable_status": "open"}
    if action is A.WRITE_OFF:
        eid = _post(conn, ledger.recon_entry(kind.RECON_WRITE_OFF, _memo(brk, res, "核销损失", "written off"),
                                             acc.RECON_LOSS, acc.BANK_PROVISIONS, amount), now)
        return {"entry_id": eid}
    if action is A.ADJUST:
        debit, credit = ((acc.RECON_ADJUSTMENT, acc.BANK_PROVISIONS) if amount > 0
                         else (acc.BANK_PROVISIONS, acc.RECON_ADJUSTMENT))
        eid = _post(conn, ledger.recon_entry(kind.RECON_ADJUSTMENT, _memo(brk, res, "差额调整", "difference adjusted"),
                                             debit, credit, abs(amount)), now)
        return {"entry_id": eid}
    if action is A.HOLD:
        return _hold_as_return(conn, brk, res, now, tz)
    day = _next_cycle(conn, brk, now, tz)
    return _clearing_txn(conn, brk, action, resolution_id=int(res["id"]), day=day, dry_run=False, now=now)


def _no_case(conn: Connection, **_: Any) -> int | None:
    return None  # only a succeeded payout is held here: the returns path opens no case for it


def _hold_as_return(conn: Connection, brk: Mapping[str, Any], res: Mapping[str, Any], now: datetime,
                    tz: str) -> dict[str, Any]:
    """The camt.054 return path (payouts.files): succeeded -> returned -> held, return entry, merchant notice."""
    from pathlib import Path

    from settleguard.channels.iso20022.reports import NotificationEntry, Reason
    from settleguard.payouts import files
    from settleguard.payouts import repository as payouts

    pid = int(brk["payout_id"])
    [p] = payouts.by_ids(conn, [pid], lock=True)
    line = _line(conn, brk)
    ref = f"RECON-BREAK-{brk['id']}"
    entry = NotificationEntry(
        notification_id=ref, end_to_end_id=p.key, amount_fen=p.amount_fen, credit_debit="CRDT", reversal=True,
        entry_status="BOOK", booking_date=brk["booking_date"], value_date=None if line is None else line["value_date"],
        account_servicer_ref=brk["bank_ref"], line=0,
        return_reason=Reason(code=None, proprietary="RVSL",
                             additional_info=f"银行冲正（对账差错 #{brk['id']}）bank reversal, break #{brk['id']}"))
    summary = files.ImportSummary(path=Path(ref), kind="recon", sha256="-")
    files._apply_returns(conn, [(p, entry)], summary, now, tz, _no_case)
    return {"entry_id": repo.last_entry_id(conn, str(ledger.EntryKind.RETURN), pid), "payout_id": pid}


def _next_cycle(conn: Connection, brk: Mapping[str, Any], now: datetime, tz: str) -> date:
    """The merchant's next cycle not yet settled: today's local date, or the first later day not settled."""
    merchant_id = _merchant_of(conn, brk)
    day = now.astimezone(ZoneInfo(tz)).date()
    taken = repo.settled_days(conn, merchant_id, day) if merchant_id is not None else set()
    while day in taken:
        day += timedelta(days=1)
    return day


def _detail(brk: Mapping[str, Any]) -> dict[str, Any]:
    d = brk.get("detail")
    return d if isinstance(d, dict) else {}


def _detail_int(brk: Mapping[str, Any], name: str) -> int | None:
    v = _detail(brk).get(name)
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return None


def _refuse_detail(brk: Mapping[str, Any], what_zh: str, what_en: str) -> ResolutionRefused:
    return ResolutionRefused("invalid", f"差错 #{brk['id']} 的明细缺少{what_zh}，不能生成调整交易；可选“仅记录说明”",
                             f"break #{brk['id']} lacks {what_en} in its detail: no adjustment transaction can be "
                             "made; use note")


def _merchant_of(conn: Connection, brk: Mapping[str, Any]) -> int | None:
    """The merchant a clearing break names: ``merchant_id``, else the network's ``merchant_code`` (our
    merchant number) or ``merchant_no``."""
    mid = _detail_int(brk, "merchant_id")
    if mid is None:
        d = _detail(brk)
        no = d.get("merchant_code") or d.get("merchant_no")
        mid = repo.merchant_id_of(conn, no) if isinstance(no, str) and no else None
    return mid if mid is not None and repo.merchant_cycle(conn, mid) is not None else None


def _clearing_txn(conn: Connection, brk: Mapping[str, Any], action: Action, *, resolution_id: int, day: date | None,
                  dry_run: bool, now: datetime | None = None) -> dict[str, Any]:
    """The adjustment transaction of a clearing break (see the module docstring); ``dry_run`` only checks."""
    from settleguard.settlement.model import CardType, TxnKind

    amount = int(brk["amount_fen"])
    merchant_id = _merchant_of(conn, brk)
    if merchant_id is None:
        raise _refuse_detail(brk, "有效的商户（merchant_id / merchant_code）", "a known merchant (merchant_id or "
                             "merchant_code)")
    d = _detail(brk)
    if action is A.ADJUST_TXN:
        fee = _detail_int(brk, "fee_fen")
        if fee is None:
            fee = _detail_int(brk, "network_fee_fen") or 0
        net = d.get("network_net_fen")
        refund = isinstance(net, int) and not isinstance(net, bool) and net < 0  # money owed by the merchant
        card = _detail_int(brk, "card_type") or int(CardType.DEBIT if d.get("account_masked") else CardType.QR)
        if card not in {int(c) for c in CardType}:
            card = int(CardType.QR)
        if not 0 <= fee <= amount:
            raise _refuse_detail(brk, "合理的手续费（fee_fen）", "a fee (fee_fen) between 0 and the amount")
        kind, fee_fen = (int(TxnKind.REFUND), 0) if refund else (int(TxnKind.SALE), fee)  # 退货不退手续费
        terminal = _detail_int(brk, "terminal_id")
        tno = d.get("terminal_no")
        if terminal is None and isinstance(tno, str) and tno:
            terminal = repo.terminal_id_of(conn, merchant_id, tno)
        occurred = _iso_time(d.get("occurred_at")) or _iso_time(d.get("sent_at"))
    else:
        ext = d.get("external_ref") or brk.get("end_to_end_id")
        if not isinstance(ext, str) or not ext:
            raise _refuse_detail(brk, "我方交易参考号（external_ref）", "our transaction's reference (external_ref)")
        cycle = d.get("cycle_date")
        try:
            orig = (repo.transaction(conn, date.fromisoformat(cycle), merchant_id, ext) if isinstance(cycle, str)
                    else repo.find_transaction(conn, merchant_id, ext))
        except ValueError:
            orig = None
        if orig is None:
            raise _refuse_detail(brk, f"可找到的我方交易（{bounded(ext, 32)}）", f"a transaction of ours ({bounded(ext, 32)})")
        if int(orig["amount_fen"]) != amount or int(orig["kind"]) != int(TxnKind.SALE):
            raise _refuse_detail(brk, "金额一致的消费交易", "a sale of the same amount")
        kind, fee_fen, terminal = int(TxnKind.REVERSAL), -int(orig["fee_fen"]), orig["terminal_id"]
        card, occurred = int(orig["card_type"]), orig["occurred_at"]
    if dry_run:
        return {}
    assert day is not None
    assert now is not None
    ref = f"RA{resolution_id:010d}"
    repo.insert_adjustment_transaction(
        conn, resolution_id=resolution_id, cycle_date=day, merchant_id=merchant_id, external_ref=ref,
        terminal_id=terminal, kind=kind, card_type=card, amount_fen=amount, fee_fen=fee_fen,
        occurred_at=occurred or now, now=now)
    return {"txn_cycle_date": day, "txn_merchant_id": merchant_id, "txn_external_ref": ref}


def _iso_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        got = datetime.fromisoformat(value)
    except ValueError:
        return None
    return got if got.tzinfo is not None else None


# --- receivables settled by the bank's refund ---------------------------------------------------------------

def settle_refunds(conn: Connection, now: datetime) -> int:
    """Settle each open receivable whose refund the bank booked (a credit of the same amount under the same
    EndToEndId, on or after the debit): ``recon_refund`` entry, the receivable settled, and the refund line's
    own open ``reversal`` break resolved by the system with a note. Called by ``recon run`` (breaks.py) in its
    transaction and by an approval. Returns the receivables settled."""
    settled = 0
    for rec in repo.open_receivables(conn):
        if not rec["end_to_end_id"] or rec["amount_fen"] is None:
            continue
        line = repo.refund_line(conn, str(rec["end_to_end_id"]), int(rec["amount_fen"]), rec["booking_date"],
                                rec["bank_line_id"])
        if line is None:
            continue
        if not repo.claim_receivable(conn, int(rec["id"]), int(line["id"]), now):
            continue  # settled by a concurrent run or approval: its refund entry is theirs
        memo = (f"差错处理 银行退款入账 差错 #{rec['break_id']} 方案 #{rec['id']} / bank refund booked, break "
                f"#{rec['break_id']} resolution #{rec['id']}")
        eid = _post(conn, ledger.recon_entry(ledger.EntryKind.RECON_REFUND, memo, ledger.Account.BANK_PROVISIONS,
                                             ledger.Account.BANK_RECEIVABLE, int(rec["amount_fen"])), now)
        repo.set_settled_entry(conn, int(rec["id"]), eid)
        settled += 1
        audit.record(conn, SYSTEM, "recon.receivable_settled", ("recon_break", int(rec["break_id"])), {
            "resolution_id": int(rec["id"]), "refund_line_id": int(line["id"]), "entry_id": eid,
            "amount_fen": int(rec["amount_fen"])}, now)
        other = repo.open_break_of_line(conn, int(line["id"]), "reversal")
        if other is not None:
            live = repo.live_of_break(conn, int(other["id"]))
            if live is not None:  # someone proposed to hold it as a return: it is the refund, not a return
                repo.decide(conn, int(live["id"]), "rejected", {
                    "decided_by": SYSTEM, "decided_at": now, "live_break_id": None,
                    "decision_note": f"此贷记为差错 #{rec['break_id']} 重复扣款的银行退款 / this credit is the bank's "
                                     f"refund of the duplicate debit of break #{rec['break_id']}"})
                audit.record(conn, SYSTEM, "recon.resolution_rejected", ("recon_break", int(other["id"])), {
                    "resolution_id": int(live["id"]), "action": live["action"], "proposed_by": live["proposed_by"],
                    "refund_of_break": int(rec["break_id"])}, now)
            rid = repo.insert_resolution(conn, {
                "break_id": int(other["id"]), "break_type": "reversal", "action": str(A.REFUND_MATCHED),
                "status": "approved", "amount_fen": other["amount_fen"],
                "note": f"银行退回重复扣款（差错 #{rec['break_id']}，方案 #{rec['id']}）/ the bank's refund of the "
                        f"duplicate debit of break #{rec['break_id']} (resolution #{rec['id']})",
                "proposed_by": SYSTEM, "proposed_at": now, "decided_by": SYSTEM, "decided_at": now,
                "live_break_id": int(other["id"]), "entry_id": eid, "payout_id": other["payout_id"]})
            repo.resolve_break(conn, int(other["id"]))
            audit.record(conn, SYSTEM, "recon.resolution_approved", ("recon_break", int(other["id"])), {
                "resolution_id": rid, "break_type": "reversal", "action": str(A.REFUND_MATCHED),
                "refund_of_break": int(rec["break_id"])}, now)
    return settled


def moved(res: Resolution) -> bool:
    """Whether the resolution moved money (an entry or an adjustment transaction)."""
    return res.entry_id is not None or res.txn_external_ref is not None


def history_lines(items: Sequence[Resolution], local: Any) -> list[str]:
    """The resolution history as people read it, zh first, times through ``local`` (a stored time -> text)."""
    from settleguard.labels import RECON_RECEIVABLE_STATUS, RECON_RESOLUTION_STATUS, zh_en
    from settleguard.money import format_yuan

    out: list[str] = []
    for r in items:
        amount = "-" if r.amount_fen is None else format_yuan(r.amount_fen)
        out.append(f"处理方案 resolution #{r.id}  {zh_en(RECON_ACTION, r.action)}  {zh_en(RECON_RESOLUTION_STATUS, r.status)}"
                   f"  金额 amount {amount}")
        out.append(f"    提出 proposed {local(r.proposed_at)}  {r.proposed_by}：{r.note}")
        if r.decided_at is not None:
            verb = "批准 approved" if r.status == "approved" else "驳回 rejected"
            out.append(f"    {verb} {local(r.decided_at)}  {r.decided_by}" + (f"：{r.decision_note}" if r.decision_note
                                                                               else ""))
        if r.entry_id is not None:
            out.append(f"    账务分录 ledger entry #{r.entry_id}")
        if r.txn_external_ref is not None:
            out.append(f"    调整交易 adjustment transaction {r.txn_external_ref}（商户 merchant {r.txn_merchant_id}，"
                       f"结算日 cycle {r.txn_cycle_date}）")
        if r.receivable_status is not None:
            out.append(f"    应收银行款 receivable：{zh_en(RECON_RECEIVABLE_STATUS, r.receivable_status)}"
                       + (f"（退款流水 refund line #{r.settled_line_id}，{local(r.settled_at)}）"
                          if r.settled_line_id is not None else ""))
    return out
