"""``recon run --date D``: load bank lines and payouts, plan matches and breaks (matching.py), store them.

中文：对账运行。读取截至 D 日的已记账银行流水与出款，按 matching.py 的规则匹配，写入匹配结果与差错：
同一日期重复运行结果不变（差错按自然键更新，不重复）；后来的对账单补记了缺失的流水时，原差错自动
变为“已自动消除”（cleared）。本步骤只记录，不移动资金、不改变出款状态：ledger_only 转查询、
reversal 转挂账是下一步（docs/reconciliation.md）。
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from settleguard.masking import bounded, mask_card_numbers
from settleguard.payouts.model import instruction_key
from settleguard.reconciliation import matching as m
from settleguard.reconciliation import repository as repo
from settleguard.reconciliation.followup import BalanceProof, compute_proof

DETAIL_LIMIT = 200  # characters of any text kept in a break's detail


@dataclass
class RunResult:
    run_id: int
    run_date: date
    window_days: int
    lines_considered: int
    matched: int
    breaks_by_type: dict[str, int]
    opened: int
    cleared: int
    drift_fen: int
    rules: dict[str, int] = field(default_factory=dict)
    proof: BalanceProof | None = None  # the bank's closing balance against the ledger (followup.py)

    @property
    def breaks(self) -> int:
        return sum(self.breaks_by_type.values())

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "date": self.run_date.isoformat(), "window_days": self.window_days,
                "lines_considered": self.lines_considered, "matched": self.matched, "matched_by_rule": self.rules,
                "breaks": self.breaks, "breaks_by_type": self.breaks_by_type, "opened": self.opened,
                "cleared": self.cleared, "drift_fen": self.drift_fen,
                "ledger_proof": None if self.proof is None else self.proof.as_dict()}


def safe_detail(value: Any) -> Any:
    """A break's detail as stored: every text masked and bounded, lists cut at 50 items."""
    if isinstance(value, str):
        return bounded(mask_card_numbers(value), DETAIL_LIMIT)
    if isinstance(value, dict):
        return {str(k)[:40]: safe_detail(v) for k, v in list(value.items())[:40]}
    if isinstance(value, list | tuple):
        return [safe_detail(v) for v in list(value)[:50]]
    return value


def to_line(row: dict[str, Any]) -> m.Line:
    account = m.creditor_account(row["raw"]) if row["source"] != "bank_file" else None
    return m.Line(id=int(row["id"]), amount_fen=int(row["amount_fen"]), direction=str(row["direction"]),
                  status=str(row["status"]), booking_date=row["booking_date"], end_to_end_id=row["end_to_end_id"],
                  pmt_inf_id=row["pmt_inf_id"], batch_count=row["batch_count"], reversal=bool(row["reversal"]),
                  bank_ref=row["acct_svcr_ref"] or row["entry_ref"], account_masked=account)


def to_payouts(rows: list[dict[str, Any]], attempts: list[dict[str, Any]],
               returns: dict[int, int] | None = None) -> list[m.Payout]:
    keys: dict[int, set[str]] = {}
    batches: dict[int, set[str]] = {}
    of_key: dict[int, list[tuple[str, int]]] = {}
    for a in attempts:
        pid = int(a["payout_id"])
        keys.setdefault(pid, set()).add(str(a["idempotency_key"]))
        of_key.setdefault(pid, []).append((str(a["idempotency_key"]), int(a["id"])))
        if a["batch_ref"]:
            batches.setdefault(pid, set()).add(str(a["batch_ref"]).rsplit("|", 1)[-1])
    out = []
    for r in rows:
        pid = int(r["id"])
        own = {str(r["idempotency_key"]), instruction_key(str(r["idempotency_key"]), int(r["instruction_no"]))}
        out.append(m.Payout(id=pid, amount_fen=int(r["amount_fen"]), status=str(r["status"]),
                            value_date=r["value_date"], keys=frozenset(keys.get(pid, set()) | own),
                            batch_ids=frozenset(batches.get(pid, set())), account_masked=r["pan_masked"],
                            attempt_of_key=tuple(of_key.get(pid, [])), returns=(returns or {}).get(pid, 0)))
    return out


def plan_for(conn: Connection, run_date: date, window_days: int = m.DEFAULT_WINDOW_DAYS,
             is_business_day: Callable[[date], bool] | None = None) -> tuple[m.Plan, list[int]]:
    """The match plan of ``run_date`` from what is stored (nothing written), with the ids of the payouts it
    considered (the ledger side of the balance proof, followup.py)."""
    if is_business_day is None:
        from settleguard.settlement.calendar import is_business_day as china_business_day

        is_business_day = china_business_day
    lines = [to_line(r) for r in repo.lines_for_matching(conn, run_date)]
    rows, attempts = repo.payouts_for_matching(
        conn, run_date, (ln.end_to_end_id for ln in lines if ln.end_to_end_id),
        (ln.pmt_inf_id for ln in lines if ln.pmt_inf_id), lookback_days=2 * window_days + 10)
    statements = [m.StatementBalance(id=int(s["id"]), statement_id=str(s["statement_id"]),
                                     account=str(s["account"]), opening_fen=s["opening_fen"],
                                     closing_fen=s["closing_fen"], booked_net_fen=int(s["booked_net_fen"]),
                                     on=s["closing_date"]) for s in repo.statements_for_matching(conn, run_date)]
    ids = [int(r["id"]) for r in rows]
    payouts = to_payouts(rows, attempts, repo.return_counts(conn, ids))
    return m.plan(lines, payouts, statements, run_date=run_date, window_days=window_days,
                  is_business_day=is_business_day), ids


def run(engine: Engine, run_date: date, *, now: datetime, window_days: int = m.DEFAULT_WINDOW_DAYS,
        is_business_day: Callable[[date], bool] | None = None) -> RunResult:
    """Match and record breaks as of ``run_date`` in one transaction (idempotent per date)."""
    with engine.begin() as conn:
        plan, payout_ids = plan_for(conn, run_date, window_days, is_business_day)
        breaks = [m.Break(key=b.key, type=b.type, amount_fen=b.amount_fen, payout_id=b.payout_id, line_id=b.line_id,
                          end_to_end_id=b.end_to_end_id, bank_ref=b.bank_ref, booking_date=b.booking_date,
                          detail=safe_detail(b.detail)) for b in plan.breaks]
        run_id = repo.start_run(conn, run_date, window_days, now)
        repo.store_matches(conn, run_id, plan.matches, now)
        opened, cleared = repo.store_breaks(conn, run_id, breaks, now)
        from settleguard.reconciliation.resolve import settle_refunds  # helper B: refunds settle receivables

        settle_refunds(conn, now)
        proof = compute_proof(conn, plan, payout_ids, run_date)  # the bank's closing vs the ledger (helper A)
        if proof is not None:
            repo.store_proof(conn, run_id, proof.stored(), now)
        repo.finish_run(conn, run_id, now, lines_considered=plan.lines_considered,
                        matched=len({x.line_id for x in plan.matches}), breaks_open=len(breaks),
                        breaks_cleared=cleared, drift_fen=plan.drift_fen)
    rules: dict[str, int] = {}
    for x in plan.matches:
        rules[str(x.rule)] = rules.get(str(x.rule), 0) + 1
    return RunResult(run_id=run_id, run_date=run_date, window_days=window_days,
                     lines_considered=plan.lines_considered, matched=len({x.line_id for x in plan.matches}),
                     breaks_by_type=plan.by_type(), opened=opened, cleared=cleared, drift_fen=plan.drift_fen,
                     rules=rules, proof=proof)


def list_breaks(engine: Engine, type_: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return repo.breaks(conn, type_, status)


def show(engine: Engine, break_id: int) -> dict[str, Any] | None:
    """A break with both sides: the bank line (if any) and the payout (if any) with its matches."""
    with engine.connect() as conn:
        brk = repo.break_by_id(conn, break_id)
        if brk is None:
            return None
        line = repo.line_by_id(conn, int(brk["bank_line_id"])) if brk["bank_line_id"] is not None else None
        payout = repo.payout_side(conn, int(brk["payout_id"])) if brk["payout_id"] is not None else None
        matched = repo.matches_of_payout(conn, int(brk["payout_id"])) if brk["payout_id"] is not None else []
        actions = repo.actions_of(conn, break_id)  # what the follow-up did (followup.py)
    return {"break": brk, "bank_line": line, "payout": payout, "matches": matched, "actions": actions}
