"""File payouts the bank never answered are flagged, never forgotten.

中文：以 pain.001 文件发出的出款不会通过 API 通道查询（payouts.files），只能等银行的 pain.002 / camt.054。
发出后超过 N 个工作日（默认 2，``SETTLEGUARD_FILE_ANSWER_DUE_BUSINESS_DAYS``；中国工作日历，含调休）仍未获
最终回执（已提交、结果未明或查询中）的出款，每笔开一张工单（附说明）并按文件发一条运维告警，只标记一次。

A payout whose latest send went out in a pain.001 file and that is still submitted, result_unknown or in
inquiry ``file_answer_due_business_days`` business days after that send (same local clock time, China
calendar: settlement.calendar through cases.model.add_business_days) is flagged, once per send: a
``file_answer_overdue`` case linked to it, with a note saying what to do, and one
``file_answer_overdue`` ops alert per file. The payout keeps its status: a late report still applies to
it (needs_review would make the bank's answer a conflict), and it is never resent or inquired about
through an API channel. :func:`flag_overdue` runs once per worker cycle (settleguard.worker);
:func:`overdue_files` is what ``settleguard channels status`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from settleguard.cases import model as case_model
from settleguard.cases import overdue_repository as overdue_repo
from settleguard.cases.service import open_system_case
from settleguard.money import format_yuan
from settleguard.payouts import repository as repo
from settleguard.payouts.model import STATUS_ZH, PayoutStatus

DEFAULT_DUE_BUSINESS_DAYS = 2
FLAG_BATCH = 200  # cases opened per transaction
FLAG_PER_CYCLE = 1_000  # at most this many per cycle; the rest are flagged by the next cycles
ALERT = "file_answer_overdue"


@dataclass
class OverdueSummary:
    flagged: int = 0  # payouts flagged by this run (a case each)
    case_ids: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # MsgIds of the files with payouts flagged by this run


@dataclass(frozen=True)
class OverdueFile:
    """The waiting payouts of one pain.001 file past their due time."""

    message_id: str
    sent_at: datetime
    due_at: datetime
    payouts: int
    flagged: int

    def to_dict(self) -> dict[str, object]:
        return {"message_id": self.message_id, "sent_at": self.sent_at, "due_at": self.due_at,
                "payouts": self.payouts, "flagged": self.flagged}


def due_at(sent_at: datetime, business_days: int, tz: str) -> datetime:
    """When an answer to a file sent at ``sent_at`` is overdue: ``business_days`` business days later."""
    return case_model.add_business_days(sent_at, business_days, tz)


def _due_groups(conn: Connection, now: datetime, business_days: int, tz: str) -> list[overdue_repo.WaitingGroup]:
    # N business days are at least N calendar days: only sends that old can be due.
    return [g for g in overdue_repo.waiting_groups(conn, now - timedelta(days=business_days))
            if due_at(g.sent_at, business_days, tz) <= now]


def overdue_files(conn: Connection, now: datetime, *, business_days: int = DEFAULT_DUE_BUSINESS_DAYS,
                  tz: str) -> list[OverdueFile]:
    """The files with payouts still waiting for an answer past their due time, oldest first."""
    out: dict[str, OverdueFile] = {}
    for g in _due_groups(conn, now, business_days, tz):
        seen = out.get(g.message_id)
        if seen is None:
            out[g.message_id] = OverdueFile(g.message_id, g.sent_at, due_at(g.sent_at, business_days, tz), g.payouts,
                                            g.flagged)
        else:
            out[g.message_id] = OverdueFile(seen.message_id, min(seen.sent_at, g.sent_at), seen.due_at,
                                            seen.payouts + g.payouts, seen.flagged + g.flagged)
    return list(out.values())


def flag_overdue(engine: Engine, now: datetime, *, business_days: int = DEFAULT_DUE_BUSINESS_DAYS,
                 tz: str, batch: int = FLAG_BATCH, limit: int = FLAG_PER_CYCLE) -> OverdueSummary:
    """Flag the overdue file payouts not flagged yet (see the module docstring). Idempotent: a payout is
    flagged once per send (the case's dedupe key and the read both say so)."""
    summary = OverdueSummary()
    local = ZoneInfo(tz)
    while summary.flagged < limit:
        with engine.begin() as conn:
            due = _due_groups(conn, now, business_days, tz)
            if not due:
                return summary
            size = min(batch, limit - summary.flagged)
            rows = overdue_repo.unflagged(conn, max(g.sent_at for g in due), size)
            before = summary.flagged
            by_file: dict[str, list[overdue_repo.WaitingPayout]] = {}
            for r in rows:
                message_id = r.batch_ref.split("|", 1)[0]
                sent = r.sent_at.astimezone(local)
                due_local = due_at(r.sent_at, business_days, tz).astimezone(local)
                status = PayoutStatus(r.status)
                note = (f"出款 {r.payout_id}（{r.key}，{format_yuan(r.amount_fen)}）随 pain.001 文件 {message_id} 于 "
                        f"{sent:%Y-%m-%d %H:%M} 北京时间发出，{business_days} 个工作日后（{due_local:%Y-%m-%d %H:%M} 到期）"
                        f"仍未获银行最终回执，当前状态「{STATUS_ZH[status]}」。请向银行查询该笔结果，再导入银行回执"
                        "（settleguard returns import）或人工处理；在此之前不会重发，也不会经接口查询。\n"
                        f"Payout {r.payout_id} ({r.key}, {format_yuan(r.amount_fen)}) went out in pain.001 file "
                        f"{message_id} at {sent:%Y-%m-%d %H:%M} Beijing time and has no final answer from the bank "
                        f"{business_days} business day(s) later (due {due_local:%Y-%m-%d %H:%M}); it is {status}. Ask "
                        "the bank, then import its report (settleguard returns import) or settle it by hand; it is "
                        "neither resent nor inquired about through an API channel meanwhile.")
                case_id = open_system_case(
                    conn, merchant_id=r.merchant_id, category=case_model.FILE_ANSWER_OVERDUE,
                    title=f"文件出款 {r.payout_id} 超期未获银行回执 payout {r.payout_id}: no answer to file {message_id}",
                    note=note, now=now, tz=tz, payout_ids=[r.payout_id],
                    dedupe_key=case_model.dedupe_key(case_model.FILE_ANSWER_OVERDUE, f"P{r.payout_id}",
                                                     f"A{r.attempt_id}"))
                if case_id is not None:
                    summary.flagged += 1
                    summary.case_ids.append(case_id)
                    by_file.setdefault(message_id, []).append(r)
            for message_id, flagged in by_file.items():
                sent = min(r.sent_at for r in flagged).astimezone(local)
                repo.add_alert(
                    conn, ALERT, f"{ALERT}:{message_id}",
                    f"pain.001 文件 {message_id}（{sent:%Y-%m-%d %H:%M} 北京时间发出）中 {len(flagged)} 笔出款 "
                    f"{business_days} 个工作日后仍未获银行回执，已逐笔开工单，请向银行查询。"
                    f"{len(flagged)} payout(s) of pain.001 file {message_id} (sent {sent:%Y-%m-%d %H:%M} Beijing time) "
                    f"have no answer from the bank {business_days} business day(s) later; a case was opened for each: "
                    "ask the bank.", now)
                if message_id not in summary.files:
                    summary.files.append(message_id)
            if len(rows) < size or summary.flagged == before:  # all done (or flagged by another worker)
                return summary
    return summary
