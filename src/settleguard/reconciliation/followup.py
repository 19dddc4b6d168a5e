"""What happens after ``recon run`` found breaks, and the balance proof (账实核对) against the ledger.

中文：差错的后续处理与账实核对。

1. **账实核对** :func:`compute_proof`：银行对账单的期末余额（CLBD）与账上备付金账户（``bank_provisions``）
   余额比较。账上余额 = 首份对账单的期初余额 + 对账单上的资金划入（不属于任何出款的贷记：清算资金、
   补充备付金，账本不记这些）+ 账本中本次对账所涉出款在 ``bank_provisions`` 上的全部分录（出款 −，退票 +）
   + 不属于出款的 ``bank_provisions`` 分录（差错调整）。差额 = 银行 − 账上，由未解决的差错与在途出款解释：
   银行有、账上无 / 重复扣款 / 金额不符 / 对账单内余额不平 −金额；账上已付银行未记账 +金额；银行冲正
   （贷记）+金额；在途（已付、未到记账期限）+金额。剩余的即“未解释差额”，``ledger check`` 以非零退出。
2. **账上已付、银行未记账（ledger_only）**：出款退回“结果未明”，由下一次查询决定；绝不盲目重发。
   账务：冲回确认分录（借 备付金 / 贷 在途）。每个差错只做一次（``recon_actions``）。
3. **银行冲正（reversal）**：按退票处理，复用 camt.054 退票路径（payouts.files）：出款成功 → 退票 → 挂账，
   退票分录，通知商户。
4. **超期未解决的差错开工单**：差错打开超过 ``recon_break_case_hours`` 小时仍未解决，开一张工单（每个差错
   一张），备注列出银行流水与出款，关联出款，因此在证据包中；无商户可归属的差错（纯银行流水）记一条运维告警。

Sign convention (all fen): a bank balance is positive when money is in the account; a ledger posting is positive
for a debit, so ``bank_provisions`` postings read the same way (a payout paid: credit, negative; a return: debit,
positive). ``drift = bank closing - ledger``; each item's ``effect_fen`` is its share of the drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from settleguard.masking import bounded, mask_card_numbers
from settleguard.money import format_yuan
from settleguard.reconciliation import matching as m
from settleguard.reconciliation import repository as repo

DEFAULT_CASE_HOURS = 48  # config.Settings.recon_break_case_hours
CASE_CATEGORY = "recon_break"  # 对账差错 (labels.CATEGORY)
ITEMS_KEPT = 200  # explaining items kept in a stored proof's detail
ACTOR = "recon"


def effect(type_: str, amount_fen: int | None, detail: Mapping[str, Any] | None = None) -> int | None:
    """A break's share of ``bank closing - ledger`` (None: it explains nothing)."""
    if amount_fen is None:
        return None
    if type_ in (m.BreakType.BANK_ONLY, m.BreakType.DUPLICATE_DEBIT, m.BreakType.AMOUNT_MISMATCH,
                 m.BreakType.BALANCE_DRIFT):
        return -amount_fen  # the bank holds less than the ledger says
    if type_ == m.BreakType.LEDGER_ONLY:
        return amount_fen  # the ledger paid it, the bank did not debit it
    if type_ == m.BreakType.REVERSAL:
        return -amount_fen if (detail or {}).get("direction") == "DBIT" else amount_fen
    return None


@dataclass(frozen=True)
class Item:
    """One thing that explains part of the drift: an open break (``break_id`` None if not yet stored) or a
    payout in transit (``type`` ``in_transit``)."""

    key: str
    type: str
    amount_fen: int
    effect_fen: int
    break_id: int | None = None
    payout_id: int | None = None
    bank_ref: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "amount_fen": self.amount_fen, "effect_fen": self.effect_fen,
                "break_id": self.break_id, "payout_id": self.payout_id, "bank_ref": self.bank_ref}


@dataclass
class BalanceProof:
    """The bank's closing balance against the ledger's settlement account, as of ``as_of`` (fen)."""

    as_of: date
    accounts: list[str]
    closing_statements: list[str]
    bank_closing_fen: int
    anchor_fen: int  # the opening balance of each account's first statement
    anchor_date: date | None
    funding_fen: int  # money paid in that the ledger does not record (credits under no key of ours)
    ledger_payouts_fen: int  # bank_provisions postings of the payouts reconciled
    ledger_other_fen: int  # bank_provisions postings of no payout (reconciliation adjustments)
    items: list[Item] = field(default_factory=list)

    @property
    def ledger_fen(self) -> int:
        return self.anchor_fen + self.funding_fen + self.ledger_payouts_fen + self.ledger_other_fen

    @property
    def drift_fen(self) -> int:
        return self.bank_closing_fen - self.ledger_fen

    @property
    def explained_fen(self) -> int:
        return sum(i.effect_fen for i in self.items)

    @property
    def in_transit_fen(self) -> int:
        return sum(i.effect_fen for i in self.items if i.type == "in_transit")

    @property
    def unexplained_fen(self) -> int:
        return self.drift_fen - self.explained_fen

    @property
    def ok(self) -> bool:
        return self.unexplained_fen == 0

    def breaks(self) -> list[Item]:
        return [i for i in self.items if i.type != "in_transit"]

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "accounts": self.accounts,
                "closing_statements": self.closing_statements, "bank_closing_fen": self.bank_closing_fen,
                "ledger_fen": self.ledger_fen, "anchor_fen": self.anchor_fen,
                "anchor_date": None if self.anchor_date is None else self.anchor_date.isoformat(),
                "funding_fen": self.funding_fen, "ledger_payouts_fen": self.ledger_payouts_fen,
                "ledger_other_fen": self.ledger_other_fen, "drift_fen": self.drift_fen,
                "explained_fen": self.explained_fen, "in_transit_fen": self.in_transit_fen,
                "in_transit": sum(1 for i in self.items if i.type == "in_transit"),
                "unexplained_fen": self.unexplained_fen, "ok": self.ok,
                "breaks": [i.as_dict() for i in self.breaks()[:ITEMS_KEPT]]}

    def stored(self) -> dict[str, Any]:
        """The recon_balance_proofs row's values."""
        return {"as_of": self.as_of, "bank_closing_fen": self.bank_closing_fen, "ledger_fen": self.ledger_fen,
                "drift_fen": self.drift_fen, "explained_fen": self.explained_fen,
                "unexplained_fen": self.unexplained_fen, "detail": self.as_dict()}


def _day(v: Any) -> date | None:
    if v is None or isinstance(v, date):
        return v
    return date.fromisoformat(str(v))


def compute_proof(conn: Connection, plan: m.Plan, payout_ids: Sequence[int], as_of: date) -> BalanceProof | None:
    """The proof of ``as_of`` from a match plan and the payouts it considered (see the module docstring);
    None when no statement with both balances closes on or before ``as_of``."""
    statements = repo.balance_statements(conn, as_of)
    if not statements:
        return None
    first: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    for s in statements:
        acct = str(s["account"])
        start = (_day(s["opening_date"]) or _day(s["closing_date"]) or as_of, int(s["id"]))
        if acct not in first or start < (_day(first[acct]["opening_date"]) or _day(first[acct]["closing_date"])
                                         or as_of, int(first[acct]["id"])):
            first[acct] = s
        last[acct] = s  # ordered by account, closing date, id
    anchor_dates = [d for d in (_day(s["opening_date"]) or _day(s["closing_date"]) for s in first.values()) if d]
    proof = BalanceProof(
        as_of=as_of, accounts=sorted(last), closing_statements=[str(last[a]["statement_id"]) for a in sorted(last)],
        bank_closing_fen=sum(int(s["closing_fen"]) for s in last.values()),
        anchor_fen=sum(int(s["opening_fen"]) for s in first.values()),
        anchor_date=min(anchor_dates) if anchor_dates else None,
        funding_fen=repo.funding_credits(conn, [int(s["id"]) for s in statements]),
        ledger_payouts_fen=repo.bank_provisions_of_payouts(conn, payout_ids),
        ledger_other_fen=repo.bank_provisions_without_payout(conn))
    in_chain = {f"{m.BreakType.BALANCE_DRIFT}:statement:{int(s['id'])}" for s in statements}
    states = repo.break_states(conn, [b.key for b in plan.breaks])
    for b in plan.breaks:
        state = states.get(b.key)
        if state is not None and state[1] == "resolved":
            continue  # its money was moved by the resolution (resolve.py): the ledger follows the bank
        if b.type == m.BreakType.BALANCE_DRIFT and b.key not in in_chain:
            continue
        share = effect(str(b.type), b.amount_fen, b.detail)
        if share:
            proof.items.append(Item(b.key, str(b.type), int(b.amount_fen or 0), share,
                                    None if state is None else state[0], b.payout_id, b.bank_ref))
    for pid, fen in plan.in_transit:
        proof.items.append(Item(f"in_transit:payout:{pid}", "in_transit", fen, fen, payout_id=pid))
    return proof


def dry_proof(conn: Connection, as_of: date | None = None,
              is_business_day: Callable[[date], bool] | None = None) -> BalanceProof | None:
    """The proof against the last imported closing balance (or ``as_of``), computed now from what is stored,
    writing nothing (``ledger check``); None when no statement with both balances was imported."""
    from settleguard.reconciliation.breaks import plan_for

    day = as_of or repo.last_closing_date(conn)
    if day is None:
        return None
    window = repo.last_window_days(conn)
    plan, ids = plan_for(conn, day, m.DEFAULT_WINDOW_DAYS if window is None else window, is_business_day)
    return compute_proof(conn, plan, ids, day)


def describe_proof(proof: BalanceProof, labels: Mapping[str, tuple[str, str]]) -> list[str]:
    """The proof as people read it, zh then en, one line each (``labels``: break type -> (zh, en))."""
    y = format_yuan
    out = [
        f"账实核对 bank vs ledger（备付金 bank_provisions，截至 as of {proof.as_of.isoformat()}）",
        f"  银行期末余额 bank closing {y(proof.bank_closing_fen)}（对账单 statement "
        f"{', '.join(proof.closing_statements)[:120]}）",
        f"  账上余额 ledger {y(proof.ledger_fen)} = 首份对账单期初 first opening {y(proof.anchor_fen)}"
        f"（{proof.anchor_date or '-'}）+ 资金划入 money paid in {y(proof.funding_fen)} + 出款与退票 payouts "
        f"{y(proof.ledger_payouts_fen)} + 差错调整 adjustments {y(proof.ledger_other_fen)}",
        f"  差额（银行 − 账上）drift (bank − ledger) {y(proof.drift_fen)}",
    ]
    for i in proof.breaks()[:50]:
        zh, en = labels.get(i.type, (i.type, i.type))
        name = f"差错 break #{i.break_id}" if i.break_id is not None else f"未记录的差错 not yet recorded ({i.key})"
        out.append(f"    {name} {zh} {en}：{y(i.effect_fen)}"
                   + (f"  出款 payout {i.payout_id}" if i.payout_id is not None else "")
                   + (f"  银行参考号 bank ref {i.bank_ref}" if i.bank_ref else ""))
    if len(proof.breaks()) > 50:
        out.append(f"    …… 另有 {len(proof.breaks()) - 50} 项 and {len(proof.breaks()) - 50} more")
    transit = [i for i in proof.items if i.type == "in_transit"]
    if transit:
        out.append(f"    在途 in transit（已付未到记账期限或已退票未见贷记 paid within the booking window, or returned "
                   f"with no credit back yet）{len(transit)} 笔：{y(proof.in_transit_fen)}")
    out.append(f"  已解释 explained {y(proof.explained_fen)}；未解释 unexplained {y(proof.unexplained_fen)}"
               + (" ✓" if proof.ok else " ✗"))
    return out


# --- acting on breaks ---------------------------------------------------------------------------------------

@dataclass
class FollowUpSummary:
    inquiries: int = 0  # ledger_only payouts sent back to inquiry
    returns: int = 0  # reversals handled as returns (held)
    cases: int = 0  # aged breaks that opened a case
    alerts: int = 0  # aged breaks without a merchant: an ops alert
    skipped: int = 0  # breaks left alone (payout moved on, a debit booked since, not a plain return)
    case_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"inquiries": self.inquiries, "returns": self.returns, "cases": self.cases, "alerts": self.alerts,
                "skipped": self.skipped, "case_ids": self.case_ids}


def follow_up(engine: Engine, now: datetime, *, tz: str, case_after_hours: int = DEFAULT_CASE_HOURS,
              limit: int = 500) -> FollowUpSummary:
    """Act on open breaks (each in its own transaction, each action at most once per break): ledger_only ->
    inquiry, reversal -> return, aged -> case. Idempotent: running it again does nothing new."""
    s = FollowUpSummary()
    with engine.connect() as conn:
        todo = repo.open_breaks(conn, [m.BreakType.LEDGER_ONLY], without_action=["inquiry"], limit=limit)
        todo += repo.open_breaks(conn, [m.BreakType.REVERSAL], without_action=["return", "left"], limit=limit)
    for brk in todo:
        with engine.begin() as conn:
            done = (_to_inquiry(conn, brk, now) if brk["type"] == m.BreakType.LEDGER_ONLY
                    else _as_return(conn, brk, now, tz))
        if not done:
            s.skipped += 1
        elif brk["type"] == m.BreakType.LEDGER_ONLY:
            s.inquiries += 1
        else:
            s.returns += 1
    before = now - timedelta(hours=case_after_hours)
    with engine.connect() as conn:
        aged = repo.open_breaks(conn, opened_before=before, without_action=["case", "alert"], limit=limit)
    for brk in aged:
        with engine.begin() as conn:
            case_id = _open_case(conn, brk, now, tz, case_after_hours)
        if case_id is None:
            s.alerts += 1
        else:
            s.cases += 1
            if case_id > 0:
                s.case_ids.append(case_id)
    return s


def _payout(conn: Connection, payout_id: int) -> Any:
    from settleguard.payouts import repository as payouts

    found = payouts.by_ids(conn, [payout_id], lock=True)
    return found[0] if found else None


def _to_inquiry(conn: Connection, brk: Mapping[str, Any], now: datetime) -> bool:
    """ledger_only: a payout still recorded paid, still without a booked debit, goes back to result_unknown
    (the confirm undone in the ledger); the next inquiry decides. Never a resend."""
    from settleguard.ledger import model as ledger
    from settleguard.ledger import repository as ledger_repo
    from settleguard.payouts import repository as payouts
    from settleguard.payouts.model import PayoutStatus

    if brk["payout_id"] is None:
        return False
    p = _payout(conn, int(brk["payout_id"]))
    if p is None or p.status is not PayoutStatus.SUCCEEDED:
        return False  # it moved on (returned, or inquired already): nothing to undo
    if repo.booked_debit_under(conn, [*repo.instruction_keys(conn, p.id), p.key]):
        return False  # a later statement booked it: the next run clears the break
    reason = (f"对账差错 #{brk['id']}（账上已付、银行未记账）：转查询，不重发 / recon break #{brk['id']} "
              f"(ledger only): no booked debit, back to inquiry, never resent")
    payouts.change_status(conn, [payouts.StatusChange(p.id, PayoutStatus.RESULT_UNKNOWN, reason)], now, actor=ACTOR)
    ledger_repo.post(conn, [ledger.unconfirm(p.merchant_id, p.id, p.amount_fen)], now)
    return repo.record_action(conn, int(brk["id"]), "inquiry", reason, now, payout_id=p.id)


def _as_return(conn: Connection, brk: Mapping[str, Any], now: datetime, tz: str) -> bool:
    """reversal: a booked credit of the payout's amount back under its key, for a payout recorded paid, is a
    return (退票): the camt.054 returns path (payouts.files) moves it succeeded -> returned -> held with a
    return entry and tells the merchant. Anything else (a partial credit, the refund of a duplicate debit, a
    payout no longer paid) is left to people (``recon resolve``, and the case when it ages)."""
    from settleguard.cases.service import SystemCases
    from settleguard.channels.iso20022.reports import NotificationEntry, Reason
    from settleguard.payouts import files
    from settleguard.payouts.model import PayoutStatus

    if brk["payout_id"] is None or brk["bank_line_id"] is None:
        repo.record_action(conn, int(brk["id"]), "left", "冲正未对应出款，留待人工处理 reversal of no payout: left to people",
                           now)
        return False
    line = repo.line_by_id(conn, int(brk["bank_line_id"]))
    p = _payout(conn, int(brk["payout_id"]))  # locked: a second worker waits here, then finds it done
    if repo.has_action(conn, int(brk["id"]), "return"):
        return False
    if (line is None or p is None or p.status is not PayoutStatus.SUCCEEDED or line["status"] != "BOOK"
            or line["direction"] != "CRDT" or int(line["amount_fen"]) != p.amount_fen
            or repo.break_of_payout(conn, p.id, m.BreakType.DUPLICATE_DEBIT)):
        # not a plain return: left to people (recon resolve), and not looked at again every cycle
        repo.record_action(conn, int(brk["id"]), "left", "不是完整退票，留待人工处理 not a plain return: left to people",
                           now, payout_id=None if p is None else p.id)
        return False
    ref = f"RECON-BREAK-{brk['id']}"
    info = f"银行冲正（对账差错 #{brk['id']}）bank reversal, recon break #{brk['id']}"
    entry = NotificationEntry(
        notification_id=ref, end_to_end_id=p.key, amount_fen=p.amount_fen, credit_debit="CRDT",
        reversal=bool(line["reversal"]), entry_status="BOOK", booking_date=line["booking_date"],
        value_date=line["value_date"], account_servicer_ref=line["acct_svcr_ref"], line=0,
        return_reason=Reason(code=None, proprietary="RVSL", additional_info=info))
    summary = files.ImportSummary(path=Path(ref), kind="recon", sha256="-")
    files._apply_returns(conn, [(p, entry)], summary, now, tz, SystemCases(tz=tz, actor=ACTOR))
    return repo.record_action(conn, int(brk["id"]), "return", info, now, payout_id=p.id)


def _local(v: Any, tz: str) -> str:
    if not isinstance(v, datetime):
        return str(v or "-")
    return v.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")


def case_note(brk: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], payout: Mapping[str, Any] | None,
              tz: str, hours: int | None = None) -> str:
    """The case's first note: the break, its statement lines and the payout, zh then en (masked, bounded)."""
    from settleguard.labels import RECON_BREAK_TYPE

    zh, en = RECON_BREAK_TYPE.get(str(brk["type"]), (str(brk["type"]), str(brk["type"])))
    amount = "-" if brk["amount_fen"] is None else format_yuan(int(brk["amount_fen"]))
    out = [f"对账差错 #{brk['id']} {zh}，金额/差额 {amount}，发现于 {_local(brk['opened_at'], tz)}（{tz}）"
           + (f"，超过 {hours} 小时未解决" if hours is not None else "") + "。",
           f"Reconciliation break #{brk['id']} ({en}), amount {amount}, opened {_local(brk['opened_at'], tz)} ({tz})"
           + (f", still open after {hours} hours" if hours is not None else "") + ".",
           "银行流水 statement lines:"]
    for ln in lines:
        out.append(f"  #{ln['id']} 对账单 statement {ln['statement_id']} 条目 entry {ln['entry_ref']} "
                   f"银行参考号 AcctSvcrRef {ln['acct_svcr_ref'] or '-'} EndToEndId {ln['end_to_end_id'] or '-'} "
                   f"PmtInfId {ln['pmt_inf_id'] or '-'} {format_yuan(int(ln['amount_fen']))} {ln['direction']} "
                   f"{ln['status']}{' RvslInd' if ln['reversal'] else ''} 记账日 booked {ln['booking_date'] or '-'}")
        out.append(f"    原文 raw: {bounded(mask_card_numbers(str(ln['raw'] or '')), 600)}")
    if not lines:
        out.append("  （无 none）")
    if payout is not None:
        out.append(f"出款 payout #{payout['id']}：{format_yuan(int(payout['amount_fen']))}，状态 status "
                   f"{payout['status']}，指令号 key {payout['idempotency_key']}，出款日 value date {payout['value_date']}，"
                   f"收款卡 card {payout['pan_masked'] or '-'}")
    out.append("请与银行核对后在对账中处理该差错（recon show / recon resolve）。Check with the bank, then resolve the "
               "break (recon show / recon resolve).")
    return bounded(mask_card_numbers("\n".join(out)), 8000)


def _line_ids(brk: Mapping[str, Any]) -> list[int]:
    detail = brk["detail"] if isinstance(brk["detail"], dict) else {}
    ids = [int(brk["bank_line_id"])] if brk["bank_line_id"] is not None else []
    for k in ("line_ids", "first_line_id"):
        v = detail.get(k)
        for x in (v if isinstance(v, list) else [v]):
            if isinstance(x, int) and x not in ids:
                ids.append(x)
    return ids


def _payout_ids(brk: Mapping[str, Any]) -> list[int]:
    detail = brk["detail"] if isinstance(brk["detail"], dict) else {}
    ids = [int(brk["payout_id"])] if brk["payout_id"] is not None else []
    ids += [int(x) for x in detail.get("payout_ids") or [] if isinstance(x, int) and x not in ids]
    return ids[:50]


def _open_case(conn: Connection, brk: Mapping[str, Any], now: datetime, tz: str, hours: int) -> int | None:
    """An aged break's case (工单) under the merchant of its (first) payout, once per break (dedupe key
    ``recon_break:<id>``); returns the case id (0 if it existed), or None when an ops alert was raised
    instead (a break naming no payout: no merchant to file it under)."""
    from settleguard.cases.service import open_system_case
    from settleguard.payouts import repository as payouts

    pids = _payout_ids(brk)
    merchant = repo.merchant_of_payout(conn, pids[0]) if pids else None
    payout = repo.payout_side(conn, pids[0]) if pids else None
    note = case_note(brk, repo.lines_by_ids(conn, _line_ids(brk)), payout, tz, hours)
    bid = int(brk["id"])
    if merchant is None:
        payouts.add_alert(conn, CASE_CATEGORY, f"{CASE_CATEGORY}:{bid}", bounded(note, 2000), now)
        repo.record_action(conn, bid, "alert", note, now)
        return None
    from settleguard.labels import RECON_BREAK_TYPE

    zh, en = RECON_BREAK_TYPE.get(str(brk["type"]), (str(brk["type"]), str(brk["type"])))
    case_id = open_system_case(
        conn, merchant_id=merchant, category=CASE_CATEGORY, title=f"对账差错 #{bid} {zh} reconciliation break "
        f"#{bid} {en}", note=note, now=now, dedupe_key=f"{CASE_CATEGORY}:{bid}", payout_ids=pids, tz=tz, actor=ACTOR)
    repo.record_action(conn, bid, "case", note, now, payout_id=pids[0], case_id=case_id)
    return case_id or 0
