"""Risk use cases: compute a day's merchant features, scan a day (score, explain, keep evidence, open cases),
and an operator's risk hold on a merchant's payouts and its release. See docs/risk.md.

- :func:`compute_day` — the day's counts per merchant in one GROUP BY in the database (risk.repository), a few
  narrow follow-up queries (most sales on one card, cancellations without a matching sale) and one bulk write:
  only that day's rows are replaced (incremental: a new day's import changes that day only).
- :func:`scan` — computes the day (and any day of the baseline window never computed), evaluates every merchant
  against its own window (risk.engine, vectorised), stores the flagged ones with the explanation and the
  transactions behind each fired rule, and opens one case (工单, category ``risk_alert``) per merchant and day
  at ``case_score`` (idempotent: a re-scan updates the scores and opens no second case).
- :func:`hold` / :func:`release` — an operator (a user with the operator role, named by ``by``) puts the merchant's
  payouts on risk hold: the send path holds them as ``risk_or_compliance_block`` (payouts.merchant_holds), each
  with its ledger hold entry; only an operator's release ends it and releases those payouts (new instruction,
  ledger release entry, notice). Both audited (``risk.hold`` / ``risk.release``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection, Engine

from settleguard.access import repository as access_repo
from settleguard.access.model import Role
from settleguard.audit import service as audit
from settleguard.masking import bounded
from settleguard.merchants import repository as merchant_repo
from settleguard.money import fen_to_yuan
from settleguard.risk import engine as eng
from settleguard.risk import model as m
from settleguard.risk import repository as repo
from settleguard.settlement.model import TxnKind

CASE_CATEGORY = "risk_alert"
MAX_RULES_FILE = 1 << 20


class RiskRefused(ValueError):
    """A risk action refused (bad input, not an operator, no such merchant); nothing changed."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


def load_rules(path: Path | None = None) -> m.RuleSet:
    """The packaged rule set, with the operator's file (``path``) merged over it."""
    texts = [("risk/rules.toml", resources.files("settleguard.risk").joinpath("rules.toml").read_text("utf-8"))]
    if path is not None:
        try:
            if path.stat().st_size > MAX_RULES_FILE:
                raise m.RulesError(str(path), "-", "规则文件超过 1 MiB", "the rule file is larger than 1 MiB")
            texts.append((str(path), path.read_text("utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise m.RulesError(str(path), "-", f"无法读取：{type(exc).__name__}", f"cannot be read: {exc}") from None
    return m.rule_set(texts)


def utc_offset_us(day: date, tz: str) -> int:
    """The business zone's UTC offset at local noon of ``day``, in microseconds (the night window's hours)."""
    off = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz)).utcoffset() or timedelta(0)
    return int(off.total_seconds()) * 1_000_000


# --- features -------------------------------------------------------------------------------------------------

@dataclass
class DaySummary:
    day: date
    merchants: int
    txn_rows: int
    seconds: float


def _unmatched(conn: Connection, day: date, counts: repo.DayCounts, lo: date) -> np.ndarray:
    """Per merchant of ``counts``: voids / reversals with no same-day sale of the same amount, and refunds with
    none and larger than any sale of the merchant in [lo, day]."""
    out = np.zeros(counts.merchant_id.size, dtype=np.int64)
    if not (counts.void_count.any() or counts.refund_count.any()):
        return out
    rows = repo.cancellations(conn, day)
    refunds = [(mid, amt) for mid, kind, amt, same in rows if kind == TxnKind.REFUND and not same]
    wmax = repo.window_max_sale(conn, lo, day, [mid for mid, _ in refunds]) if refunds else {}
    today_max = dict(zip(counts.merchant_id.tolist(), counts.max_sale_fen.tolist(), strict=True))
    pos = {mid: i for i, mid in enumerate(counts.merchant_id.tolist())}
    for mid, kind, amt, same in rows:
        if same:
            continue
        if kind == TxnKind.REFUND and amt <= max(today_max.get(mid, 0), wmax.get(mid, 0)):
            continue
        out[pos[mid]] += 1
    return out


def _compute(conn: Connection, day: date, rules: m.RuleSet, tz: str, now: datetime,
             mcc_of: dict[int, str]) -> DaySummary:
    started = time.perf_counter()
    counts = repo.day_counts(conn, day, rules.features, utc_offset_us(day, tz))
    est, exact = eng.card_max_estimate(counts)
    if exact.size:
        got = repo.card_max(conn, day, exact.tolist())
        pos = {mid: i for i, mid in enumerate(counts.merchant_id.tolist())}
        for mid, n in got.items():
            est[pos[mid]] = n
    unmatched = _unmatched(conn, day, counts, day - timedelta(days=rules.baseline.days))
    rows = eng.feature_rows(day, counts, eng.over_mcc(counts, mcc_of, rules), est, unmatched)
    repo.replace_day(conn, day, rows, rules.features.digest(), counts.rows, now)
    return DaySummary(day, len(rows), counts.rows, time.perf_counter() - started)


def compute_day(engine: Engine, day: date, rules: m.RuleSet, *, tz: str, now: datetime) -> DaySummary:
    """The day's features, replacing what was stored for it (one transaction)."""
    with engine.begin() as conn:
        return _compute(conn, day, rules, tz, now, repo.mccs(conn))


def fill_window(engine: Engine, day: date, rules: m.RuleSet, *, tz: str, now: datetime) -> list[DaySummary]:
    """Compute the days of ``day``'s baseline window that have transactions but no stored features."""
    lo = day - timedelta(days=rules.baseline.days)
    out = []
    with engine.connect() as conn:
        known = repo.computed_days(conn, lo, day - timedelta(days=1))
        missing = [lo + timedelta(days=i) for i in range(rules.baseline.days)
                   if lo + timedelta(days=i) not in known and repo.has_transactions(conn, lo + timedelta(days=i))]
    for d in missing:
        out.append(compute_day(engine, d, rules, tz=tz, now=now))
    return out


# --- scan -----------------------------------------------------------------------------------------------------

@dataclass
class Flagged:
    merchant_id: int
    merchant_no: str
    score: int
    rules: list[str]
    explanation_zh: str
    explanation_en: str
    details: dict[str, Any]
    case_id: int | None = None


@dataclass
class ScanSummary:
    day: date
    merchants: int = 0  # evaluated (active today or in the window)
    txn_rows: int = 0
    flagged: list[Flagged] = field(default_factory=list)
    cases_opened: list[int] = field(default_factory=list)
    backfilled: list[date] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _baseline_text(ev: eng.Evaluation, i: int, feature: str, b: m.BaselineParams) -> tuple[str, str]:
    days = int(ev.base_days[i])
    if feature == "amount_z":
        med = fen_to_yuan(int(round(ev.amount_median[i])))
        return (f"前 {b.days} 天中 {days} 天有交易，日交易额中位数 {med} 元",
                f"median daily amount {med} yuan over {days} active days of the last {b.days}")
    if feature == "count_z":
        med = f"{ev.count_median[i]:,.1f}"
        return (f"前 {b.days} 天中 {days} 天有交易，日笔数中位数 {med}",
                f"median daily count {med} over {days} active days of the last {b.days}")
    if feature == "silence_active_days":
        return f"前 {b.days} 天中 {days} 天有交易，今日 0 笔", f"{days} active days of the last {b.days}, none today"
    return "", ""


def _hits(ev: eng.Evaluation, i: int, rules: m.RuleSet) -> list[m.Hit]:
    out = []
    for r_i, r in enumerate(rules.rules):
        if ev.fired[r_i, i]:
            zh, en = _baseline_text(ev, i, r.feature, rules.baseline)
            out.append(m.Hit(r, float(ev.values[r.feature][i]), zh, en))
    return out


def _evidence(conn: Connection, day: date, mid: int, mcc: str, hits: Sequence[m.Hit], rules: m.RuleSet,
              tz: str) -> dict[str, list[str]]:
    """rule id -> the external refs of the transactions behind it (bounded by ``evidence_per_rule``)."""
    rows = repo.merchant_day_raw(conn, day, mid)
    p, cap = rules.features, rules.evidence_per_rule
    off = utc_offset_us(day, tz)
    sales = [r for r in rows if r[1] == TxnKind.SALE]
    by_card: dict[str, int] = {}
    for r in sales:
        if r[4] is not None:
            by_card[r[4]] = by_card.get(r[4], 0) + 1
    sale_amounts = {r[3] for r in sales}
    out: dict[str, list[str]] = {}
    for h in hits:
        f = h.rule.feature
        if f == "round_share":
            pick = [r for r in sales if m.is_round(r[3], p)]
        elif f == "night_share":
            pick = [r for r in sales if m.is_night((r[5] + off) // 3_600_000_000 % 24, p)]
        elif f == "credit_share":
            pick = [r for r in sales if r[2] == 2]
        elif f == "same_card_max":
            most = max(by_card.values(), default=0)
            limit = min(most, int(h.rule.threshold)) if h.rule.op == ">=" else most
            pick = [r for r in sales if r[4] is not None and by_card[r[4]] >= limit]
        elif f == "under_limit_share":
            pick = [r for r in sales if m.is_under_limit(r[3], p)]
        elif f == "over_mcc_share":
            pick = [r for r in sales if r[3] > m.mcc_max_fen(mcc, p)]
        elif f == "unmatched_refunds":
            lo = day - timedelta(days=rules.baseline.days)
            top = max([repo.window_max_sale(conn, lo, day, [mid]).get(mid, 0), *sale_amounts], default=0)
            pick = [r for r in rows if r[1] in (TxnKind.VOID, TxnKind.REVERSAL, TxnKind.REFUND)
                    and r[3] not in sale_amounts and (r[1] != TxnKind.REFUND or r[3] > top)]
        elif f == "silence_active_days":
            pick = []
        else:  # spikes, drops, a return after silence: the day's sales, largest first
            pick = sorted(sales, key=lambda r: -r[3])
        if h.rule.feature in ("amount_z", "count_z", "reactivated_after_days", "sale_count", "sale_yuan"):
            pick = pick[:cap]
        else:
            pick = sorted(pick, key=lambda r: r[5])[:cap]
        out[h.rule.id] = [str(r[0]) for r in pick]
    return out


def _note(f: Flagged, evidence: dict[str, list[str]], day: date) -> str:
    lines = [f"风险扫描 risk scan {day.isoformat()}: 评分 score {f.score}", f.explanation_zh, f.explanation_en,
             "证据交易 evidence (external_ref):"]
    for rule, refs in evidence.items():
        more = f" … (+{len(refs) - 20})" if len(refs) > 20 else ""
        lines.append(f"  {rule}: {', '.join(refs[:20]) or '-'}{more}")
    return "\n".join(lines)


def scan(engine: Engine, day: date, rules: m.RuleSet, *, tz: str, now: datetime, actor: str = "system",
         open_cases: bool = True) -> ScanSummary:
    """Score every merchant for ``day`` (see the module docstring)."""
    from settleguard.cases.service import open_system_case

    out = ScanSummary(day)
    t0 = time.perf_counter()
    out.backfilled = [s.day for s in fill_window(engine, day, rules, tz=tz, now=now)]
    t1 = time.perf_counter()
    day_sum = compute_day(engine, day, rules, tz=tz, now=now)
    out.txn_rows = day_sum.txn_rows
    t2 = time.perf_counter()
    lo = day - timedelta(days=rules.baseline.days)
    with engine.connect() as conn:
        stored = {k: np.asarray(v, dtype=np.int64) for k, v in _stored_columns(conn, day).items()}
        window = repo.window(conn, lo, day)
        last = eng.last_active(window, day)
        new = np.setdiff1d(stored["merchant_id"], np.fromiter(last.keys(), dtype=np.int64, count=len(last)))
        last |= repo.last_active(conn, lo, new.tolist()) if new.size else {}
        mcc_of = repo.mccs(conn)
    t3 = time.perf_counter()
    ev = eng.evaluate(day, stored, eng.baseline(window), last, rules)
    out.merchants = int(ev.merchant_id.size)
    t4 = time.perf_counter()
    flagged_idx = np.flatnonzero(ev.score >= rules.flag_score)
    with engine.begin() as conn:
        previous = repo.case_ids(conn, day)
        nos = {mid: merchant_repo.no_of(conn, mid) or str(mid) for mid in ev.merchant_id[flagged_idx].tolist()}
        rows, evidence_rows = [], []
        for i in flagged_idx.tolist():
            mid = int(ev.merchant_id[i])
            hits = _hits(ev, i, rules)
            zh, en = m.explain(hits)
            details = {"features": {h.rule.feature: round(h.value, 6) for h in hits},
                       "rules": [{"id": h.rule.id, "feature": h.rule.feature, "value": round(h.value, 6),
                                  "op": h.rule.op, "threshold": h.rule.threshold, "weight": h.rule.weight,
                                  "baseline_zh": h.baseline_zh, "baseline_en": h.baseline_en} for h in hits],
                       "baseline": {"active_days": int(ev.base_days[i]),
                                    "median_amount_fen": int(round(ev.amount_median[i])),
                                    "median_count": float(ev.count_median[i])},
                       "sale_count": int(ev.sales[i])}
            f = Flagged(mid, nos[mid], int(ev.score[i]), [h.rule.id for h in hits], zh, en, details,
                        previous.get(mid))
            evid = _evidence(conn, day, mid, mcc_of.get(mid, ""), hits, rules, tz)
            details["evidence_counts"] = {k: len(v) for k, v in evid.items()}
            evidence_rows += [{"cycle_date": day, "merchant_id": mid, "rule_id": rule, "external_ref": ref}
                              for rule, refs in evid.items() for ref in refs]
            rows.append({"cycle_date": day, "merchant_id": mid, "score": f.score, "rules": ",".join(f.rules)[:512],
                         "details": json.dumps(details, ensure_ascii=False, sort_keys=True),
                         "explanation_zh": zh, "explanation_en": en, "case_id": f.case_id, "scanned_at": now})
            f.details["evidence"] = evid
            out.flagged.append(f)
        repo.replace_scores(conn, day, rows, len(rows), now)
        repo.add_evidence(conn, evidence_rows)
        if open_cases:
            for f in out.flagged:
                if f.score < rules.case_score or f.case_id is not None:
                    continue
                title = (f"风险预警 risk alert {day.isoformat()}: 评分 score {f.score} ({', '.join(f.rules)})")
                case_id = open_system_case(conn, merchant_id=f.merchant_id, category=CASE_CATEGORY, title=title,
                                           note=_note(f, f.details["evidence"], day), now=now,
                                           dedupe_key=f"risk:M{f.merchant_id}:D{day.isoformat()}", tz=tz, actor=actor)
                if case_id is not None:
                    f.case_id = case_id
                    out.cases_opened.append(case_id)
                    repo.set_case(conn, day, f.merchant_id, case_id)
        audit.record(conn, actor, "risk.scan", ("risk_day", day.isoformat()),
                     {"day": day.isoformat(), "merchants": out.merchants, "flagged": len(out.flagged),
                      "cases_opened": out.cases_opened[:100], "rules": list(rules.sources),
                      "params": rules.features.digest()}, now)
    out.flagged.sort(key=lambda f: (-f.score, f.merchant_no))
    t5 = time.perf_counter()
    out.seconds = {"backfill": t1 - t0, "features": t2 - t1, "load": t3 - t2, "evaluate": t4 - t3,
                   "store": t5 - t4, "total": t5 - t0}
    return out


def _stored_columns(conn: Connection, day: date) -> dict[str, list[int]]:
    from sqlalchemy import select

    from settleguard.db import tables as t

    f = t.risk_features
    names = ["merchant_id", "sale_count", "sale_fen", "round_count", "night_count", "credit_count", "card_max",
             "under_limit_count", "over_mcc_count", "unmatched_count"]
    rows = conn.execute(select(*(f.c[n] for n in names)).where(f.c.cycle_date == day)
                        .order_by(f.c.merchant_id)).all()
    cols: dict[str, list[int]] = {n: [] for n in names}
    for r in rows:
        for n, v in zip(names, r, strict=True):
            cols[n].append(-1 if v is None else int(v))
    return cols


# --- reading ---------------------------------------------------------------------------------------------------

def listing(conn: Connection, day: date | None = None, min_score: int = 0, limit: int = 1000) -> tuple[
        date | None, list[dict[str, Any]]]:
    """(the day shown: ``day`` or the latest scanned, its flagged merchants, highest score first)."""
    day = day or repo.latest_scanned_day(conn)
    if day is None:
        return None, []
    return day, [_public(r) for r in repo.scores(conn, day, min_score=min_score, limit=limit)]


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {"merchant_no": r["merchant_no"], "merchant_name": r["registered_name"], "mcc": r["mcc"],
            "cycle_date": r["cycle_date"].isoformat() if isinstance(r["cycle_date"], date) else str(r["cycle_date"]),
            "score": int(r["score"]), "rules": [x for x in str(r["rules"]).split(",") if x],
            "explanation": {"zh": r["explanation_zh"], "en": r["explanation_en"]}, "details": r["details"],
            "case_id": r["case_id"]}


def show(conn: Connection, merchant_no: str, day: date | None = None) -> dict[str, Any]:
    """A merchant's risk picture: its flagged days (latest first, with evidence for the latest or ``day``), the
    last 30 stored days of features and its risk holds."""
    mid = merchant_repo.id_of(conn, merchant_no)
    if mid is None:
        raise RiskRefused(f"没有商户 {merchant_no}", f"no merchant {merchant_no}")
    flagged = [_public(r) for r in repo.scores(conn, merchant_id=mid, limit=60)]
    chosen = next((f for f in flagged if day is None or f["cycle_date"] == day.isoformat()), None)
    evidence: dict[str, list[str]] = {}
    if chosen is not None:
        evidence = repo.evidence(conn, date.fromisoformat(chosen["cycle_date"]), mid)
    last_day = day or (date.fromisoformat(flagged[0]["cycle_date"]) if flagged else repo.latest_scanned_day(conn))
    feats = repo.features(conn, mid, last_day - timedelta(days=30), last_day) if last_day else []
    hold = repo.active_hold(conn, mid)
    return {"merchant_no": merchant_no, "merchant_id": mid, "flagged": flagged, "chosen": chosen,
            "evidence": evidence, "features": feats, "hold": hold, "holds": repo.holds(conn, mid)}


# --- holds ----------------------------------------------------------------------------------------------------

def _operator(conn: Connection, by: str) -> str:
    by = by.strip()
    user = access_repo.user_by_username(conn, by) if by else None
    if user is None or user.disabled or user.role != str(Role.OPERATOR):
        raise RiskRefused(f"只有运营人员可以设置或解除风控暂停：{by!r} 不是有效的运营账号",
                          f"only an operator may place or release a risk hold: {by!r} is not an active operator user")
    return user.username


@dataclass(frozen=True)
class HoldResult:
    merchant_no: str
    hold_id: int
    released_payouts: tuple[int, ...] = ()
    released_fen: int = 0


MAX_REASON = 250  # characters of a hold's or release's reason kept (stored in 256 with the ellipsis of a cut)


def clean_reason(text: str) -> str:
    """A person's reason as stored: trimmed, card numbers masked, control characters shown as ``\\xNN``, at most
    :data:`MAX_REASON` characters (an ellipsis marks a cut)."""
    return bounded(text.strip(), MAX_REASON).strip()


def _required_reason(reason: str) -> str:
    cleaned = clean_reason(reason)
    if not cleaned:
        raise RiskRefused("须填写原因（--reason）", "a reason is required (--reason)")
    return cleaned


def _operator_and_merchant(conn: Connection, by: str, merchant_no: str) -> tuple[str, int]:
    """The acting operator and the merchant's id, its row locked (hold and release alike)."""
    actor = _operator(conn, by)
    row = merchant_repo.merchant_by_no(conn, merchant_no, lock=True)
    if row is None:
        raise RiskRefused(f"没有商户 {merchant_no}", f"no merchant {merchant_no}")
    return actor, int(row.id)


def hold(engine: Engine, merchant_no: str, *, by: str, reason: str, now: datetime) -> HoldResult:
    """Put the merchant's payouts on risk hold (its next due payouts are held by the send path)."""
    reason = _required_reason(reason)
    with engine.begin() as conn:
        actor, mid = _operator_and_merchant(conn, by, merchant_no)
        if repo.active_hold(conn, mid, lock=True) is not None:
            raise RiskRefused(f"商户 {merchant_no} 已在风控暂停中", f"merchant {merchant_no} is already on risk hold")
        hold_id = repo.place_hold(conn, mid, reason, actor, now)
        audit.record(conn, actor, "risk.hold", ("merchant", mid),
                     {"merchant_no": merchant_no, "hold_id": hold_id, "reason": reason[:256]}, now)
    return HoldResult(merchant_no, hold_id)


def release(engine: Engine, merchant_no: str, *, by: str, reason: str, now: datetime) -> HoldResult:
    """End the merchant's risk hold and release the payouts it held (payouts.merchant_holds.release_risk_held)."""
    from settleguard.payouts.merchant_holds import release_risk_held

    reason = _required_reason(reason)
    with engine.begin() as conn:
        actor, mid = _operator_and_merchant(conn, by, merchant_no)
        h = repo.active_hold(conn, mid, lock=True)
        if h is None or not repo.end_hold(conn, int(h["id"]), reason, actor, now):
            raise RiskRefused(f"商户 {merchant_no} 没有风控暂停", f"merchant {merchant_no} is not on risk hold")
        why = f"风控暂停已由 {actor} 解除，重新出款 risk hold released by {actor}: {reason}"
        released = release_risk_held(conn, mid, why, now)
        payload = {"merchant_no": merchant_no, "hold_id": int(h["id"]), "reason": reason[:256],
                   "released_payouts": [p.id for p in released][:100],
                   "released_fen": sum(p.amount_fen for p in released)}
        audit.record(conn, actor, "risk.release", ("merchant", mid), payload, now)
    return HoldResult(merchant_no, int(h["id"]), tuple(p.id for p in released), sum(p.amount_fen for p in released))


# --- the risk queue and a merchant's picture (console /risk, API /api/v1/risk) ---------------------------------

def rule_names(rules: m.RuleSet | None = None) -> dict[str, tuple[str, str]]:
    """rule id -> (zh, en) name: the loaded rule set's names over the defaults (labels.RISK_RULE)."""
    from settleguard.labels import RISK_RULE

    out = dict(RISK_RULE)
    if rules is not None:
        out.update({r.id: (r.name_zh, r.name_en) for r in rules.rules})
    return out


@dataclass
class Queue:
    """One page of a day's risk queue."""

    day: date | None  # the day shown (None: nothing scanned yet)
    total: int
    items: list[dict[str, Any]]  # risk.service._public rows with ``hold`` (the active risk hold or None)
    rules: list[str]  # the rule ids fired that day (the filter's choices)
    days: list[date]  # the latest scanned days (the day picker)


def queue(conn: Connection, day: date | None = None, *, min_score: int = 0, rule: str | None = None,
          limit: int = 50, offset: int = 0) -> Queue:
    """The flagged merchants of ``day`` (default: the latest scanned day), highest score first, each with its
    active risk hold."""
    days = repo.scanned_days(conn)
    day = day or (days[0] if days else None)
    if day is None:
        return Queue(None, 0, [], [], [])
    total, rows = repo.alerts(conn, day, min_score=min_score, rule=rule, limit=limit, offset=offset)
    holds = repo.active_holds(conn, [int(r["merchant_id"]) for r in rows])
    items = [_public(r) | {"merchant_id": int(r["merchant_id"]), "hold": holds.get(int(r["merchant_id"]))}
             for r in rows]
    return Queue(day, total, items, repo.rules_fired(conn, day), days)


def baseline_series(feats: Sequence[dict[str, Any]], days: int, min_days: int) -> list[float | None]:
    """Per stored day of ``feats`` (ascending): the median daily amount (fen) of the stored days in the ``days``
    before it — the merchant's own baseline as the scan reads it — or None with fewer than ``min_days`` of them."""
    out: list[float | None] = []
    for i, f in enumerate(feats):
        lo = f["cycle_date"] - timedelta(days=days)
        past = [int(g["sale_fen"]) for g in feats[:i] if g["cycle_date"] >= lo]
        out.append(float(np.median(past)) if len(past) >= min_days else None)
    return out


def picture(conn: Connection, merchant_no: str, day: date | None = None, *, days: int = 30) -> dict[str, Any]:
    """:func:`show` with the evidence transactions (rule, ref, kind, card type, amount, time), the features of the
    ``days`` up to the chosen day, and the stored days before them that the baseline line needs."""
    got = show(conn, merchant_no, day)
    mid = int(got["merchant_id"])
    chosen = got["chosen"]
    end = day or (date.fromisoformat(chosen["cycle_date"]) if chosen else None) or repo.latest_scanned_day(conn)
    got["end"] = end
    got["evidence_rows"] = repo.evidence_rows(conn, date.fromisoformat(chosen["cycle_date"]), mid) if chosen else []
    got["features"], got["history"] = [], []
    if end is not None:
        allf = repo.features(conn, mid, end - timedelta(days=2 * days), end)
        got["history"] = allf
        got["features"] = [f for f in allf if f["cycle_date"] > end - timedelta(days=days)]
    return got


# --- the worker's scan ---------------------------------------------------------------------------------------------

LOOKBACK_DAYS = 7  # the worker scans only a day this recent (older days: ``settleguard risk scan --date``)


@dataclass
class WorkerScan:
    """What the worker's ``risk_scan`` step did: the day scanned (None: nothing to do) and its summary."""

    day: date | None = None
    flagged: int = 0
    cases_opened: int = 0
    seconds: float = 0.0
    error: str | None = None


def pending_day(conn: Connection, as_of: date, lookback: int = LOOKBACK_DAYS) -> date | None:
    """The latest business day in [as_of - lookback, as_of] with imported transactions, when it was never scanned
    or a transaction file was imported after its scan (a late file); else None."""
    day = repo.latest_transaction_day(conn, as_of - timedelta(days=lookback), as_of)
    if day is None:
        return None
    done = repo.scanned_at(conn, day)
    if done is None:
        return day
    imported = repo.last_transaction_import(conn)
    return day if imported is not None and imported > done else None


def scan_pending(engine: Engine, rules: m.RuleSet, *, as_of: date, tz: str, now: datetime,
                 lookback: int = LOOKBACK_DAYS) -> WorkerScan:
    """Scan :func:`pending_day` (at most one day per call; idempotent: a scanned day is not scanned again until a
    newer transaction import)."""
    with engine.connect() as lock:  # several workers on PostgreSQL: one scans, the others skip this cycle
        if not repo.try_scan_lock(lock):
            return WorkerScan()
        lock.commit()
        try:
            with engine.connect() as conn:
                day = pending_day(conn, as_of, lookback)
            if day is None:
                return WorkerScan()
            res = scan(engine, day, rules, tz=tz, now=now, actor="worker")
            return WorkerScan(day, len(res.flagged), len(res.cases_opened), res.seconds.get("total", 0.0))
        finally:
            repo.release_scan_lock(lock)
            lock.commit()


def worker_scan(engine: Engine, *, as_of: date, tz: str, now: datetime, rules_file: Path | None = None) -> WorkerScan:
    """The worker's ``risk_scan`` step: :func:`scan_pending` with the rule set (``rules_file``, the operator's
    ``SETTLEGUARD_RISK_RULES``, over the defaults). A rule file that cannot be used scans nothing and says why (the
    next cycle tries again)."""
    import logging

    try:
        rules = load_rules(rules_file)
    except m.RulesError as exc:
        logging.getLogger(__name__).warning("风险规则文件有误，未扫描 bad risk rule file, nothing scanned: %s", exc)
        return WorkerScan(error=str(exc)[:500])
    return scan_pending(engine, rules, as_of=as_of, tz=tz, now=now)
