"""The day runs itself (日终自动运行): the worker's ``day`` step, and the day's status for people.

:func:`run_day` (the worker's ``day`` step, right after ``inbox``) reads what arrived (inbox.repository.arrivals)
and what already ran (day_cycle_runs), asks the pure :func:`daycycle.model.plan` what is due, and runs each due
action once: claimed first (daycycle.repository.claim: a unique row, so a second worker or a rerun does nothing),
then done (or failed, and claimed again next cycle: every action is idempotent). Alerts for late or missing files
go to ops_alerts once (payouts.repository.add_alert). :func:`day_status` is what ``settleguard day status``, the
API (GET /api/v1/day) and the console page 今日结算周期 show. Nothing here reads the environment or the clock:
the configuration (:class:`DayConfig`) and ``now`` are handed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from settleguard.daycycle import model as m
from settleguard.daycycle import repository as repo
from settleguard.labels import PAYOUT_STATUS
from settleguard.settlement.calendar import is_business_day
from settleguard.settlement.model import CutOffs

if TYPE_CHECKING:
    from settleguard.cards.vault import Vault
    from settleguard.channels.iso20022.pain001 import BatchConfig
    from settleguard.payouts.service import Options

LOG = logging.getLogger(__name__)
_ORDER = {"alert": 0, "settle": 1, "pay": 2, "clearing": 3, "recon": 4}


@dataclass(frozen=True)
class DayConfig:
    """What the day's cycle needs (bootstrap.Container.day_config).

    Attributes:
        schedule: expected files, settle deadline, pay times (daycycle.model.Schedule).
        cutoffs: the settlement cut-offs; the T+1 hour closes a business day.
        outbox: the file channel's directory: a pain.001 is written there at each pay time (schedule.pay_to_file).
        batch: who pays in those pain.001 files.
        recon_window_days: business days a booking may follow its value date (``recon run --window-days``).
        stale_after: an action still running after this long is taken for one a dead worker left: claimed again.
    """

    schedule: m.Schedule
    cutoffs: CutOffs
    outbox: Path | None = None
    batch: BatchConfig | None = None
    recon_window_days: int = 2
    stale_after: timedelta = timedelta(minutes=30)

    @property
    def tz(self) -> str:
        return self.cutoffs.timezone


@dataclass
class DaySummary:
    """What one ``day`` step did: actions run (action, business day, key, status) and alerts raised."""

    ran: list[dict[str, Any]] = field(default_factory=list)
    alerts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"ran": self.ran, "alerts": self.alerts}


def arrivals(conn: Connection, since: datetime) -> list[m.Arrived]:
    """The inbox's arrivals received since ``since`` (inbox.repository.arrivals), as the model reads them."""
    from settleguard.inbox import repository as inbox_repo

    out = []
    for a in inbox_repo.arrivals(conn, since=since):
        out.append(m.Arrived(int(a.id), a.kind or "", str(a.status), tuple(a.business_days or ()), a.received_at,
                             str(a.name), a.reason_zh, a.reason_en))
    return out


def _facts(conn: Connection, cfg: DayConfig, now: datetime) -> m.Facts:
    today = now.astimezone(ZoneInfo(cfg.tz)).date()
    since = today - timedelta(days=cfg.schedule.lookback_days + 1)
    return m.Facts(now=now, tz=cfg.tz, cutoff_hour=cfg.cutoffs.t1_hour, is_business_day=is_business_day,
                   arrivals=arrivals(conn, now - timedelta(days=cfg.schedule.lookback_days + 2)),
                   ran=repo.ran(conn, since, now - cfg.stale_after),
                   first_waiting_value_date=repo.first_waiting_value_date(conn), started=repo.started(conn),
                   settled_days=repo.settled_days(conn, since))


def send_open(cfg: DayConfig | None, now: datetime) -> bool:
    """May the worker's send step send new payouts now (daycycle.model.send_open)? Always without a day cycle."""
    return cfg is None or m.send_open(cfg.schedule, now, cfg.tz, is_business_day)


def run_day(engine: Engine, cfg: DayConfig, *, vault: Vault, now: datetime, opts: Options | None = None) -> DaySummary:
    """One pass of the day's cycle: every due action once (see the module docstring)."""
    today = now.astimezone(ZoneInfo(cfg.tz)).date()
    with engine.connect() as conn:
        facts = _facts(conn, cfg, now)
    if facts.started is None:  # the first pass: the day the cycle started (a write only then)
        with engine.begin() as conn:
            repo.mark_started(conn, today, now)
        facts = replace(facts, started=today)
    plan = m.plan(facts, cfg.schedule)
    out = DaySummary()
    for alert in plan.alerts:
        if _alert(engine, alert, now):
            out.alerts += 1
    for due in sorted(plan.due, key=lambda d: (_ORDER.get(d.action, 9), d.day, d.key)):
        status = _run_one(engine, cfg, due, vault=vault, now=now, opts=opts)
        if status is not None:
            out.ran.append({"action": due.action, "day": due.day.isoformat(), "key": due.key, "status": status})
    return out


def _alert(engine: Engine, alert: m.AlertDue, now: datetime) -> bool:
    from settleguard.payouts import repository as payouts_repo

    with engine.begin() as conn:
        if not repo.claim(conn, alert.day, "alert", alert.key, now):
            return False
        payouts_repo.add_alert(conn, alert.kind, alert.dedupe_key, f"{alert.zh} / {alert.en}", now)
        repo.finish(conn, alert.day, "alert", alert.key, now, {"kind": alert.kind})
    LOG.warning("%s / %s", alert.zh, alert.en)
    return True


def _run_one(engine: Engine, cfg: DayConfig, due: m.Due, *, vault: Vault, now: datetime,
             opts: Options | None) -> str | None:
    """Claim ``due`` and run it; its final status, or None when another worker (or run) has it."""
    with engine.begin() as conn:
        if not repo.claim(conn, due.day, due.action, due.key, now, stale_before=now - cfg.stale_after):
            return None
    actions: dict[str, Callable[[], dict[str, Any]]] = {
        "settle": lambda: _settle(engine, due.day, now),
        "pay": lambda: _pay(engine, cfg, due, vault=vault, now=now, opts=opts),
        "recon": lambda: _recon(engine, cfg, due.day, now),
        "clearing": lambda: _clearing(engine, cfg, due.day, now)}
    try:
        summary = actions[due.action]()
    except Exception as exc:  # recorded and retried next cycle (every action is idempotent)
        LOG.exception("日终步骤失败，下一轮重试 day cycle action failed; retried next cycle: %s %s", due.action, due.day)
        with engine.begin() as conn:
            repo.fail(conn, due.day, due.action, due.key, now, f"{type(exc).__name__}: {exc}")
        return "failed"
    with engine.begin() as conn:
        repo.finish(conn, due.day, due.action, due.key, now, summary)
    LOG.info("日终步骤完成 day cycle action done: %s %s %s", due.action, due.day, summary)
    return "done"


def _settle(engine: Engine, day: date, now: datetime) -> dict[str, Any]:
    from settleguard.settlement.engine import settle

    r = settle(engine, day, now)
    return {"run_id": r.run_id, "merchants": r.merchants_settled, "transactions": r.txn_count, "net_fen": r.net_fen,
            "payouts_created": r.payouts_created, "payout_fen": r.payout_fen}


def _pay(engine: Engine, cfg: DayConfig, due: m.Due, *, vault: Vault, now: datetime,
         opts: Options | None) -> dict[str, Any]:
    if not cfg.schedule.pay_to_file:  # the API channel: the send step sends within the pay window
        return {"channel": "api", "window_minutes": int(cfg.schedule.pay_window.total_seconds() // 60)}
    from settleguard.payouts.files import export_pain001
    from settleguard.payouts.service import DEFAULT_OPTIONS

    if cfg.outbox is None or cfg.batch is None:
        raise ValueError("文件出款需要 day_pay_outbox / the file channel needs day_pay_outbox")
    cfg.outbox.mkdir(parents=True, exist_ok=True)
    name = f"pain001-{due.day:%Y%m%d}-{due.key.replace(':', '')}"
    out = cfg.outbox / f"{name}.xml"
    if out.exists():  # a run that died after writing it: the next file gets its own name (payouts claimed once)
        out = cfg.outbox / f"{name}-{now:%H%M%S%f}.xml"
    res = export_pain001(engine, vault, cfg.batch, out, as_of=due.day, now=now, opts=opts or DEFAULT_OPTIONS)
    return {"channel": "file", "path": str(res.path) if res.path else None, "message_id": res.message_id,
            "payouts": res.count, "total_fen": res.total_fen, "held_no_card": res.held_no_card}


def _recon(engine: Engine, cfg: DayConfig, day: date, now: datetime) -> dict[str, Any]:
    from settleguard.reconciliation.breaks import run

    r = run(engine, day, now=now, window_days=cfg.recon_window_days)
    return {"run_id": r.run_id, "lines": r.lines_considered, "matched": r.matched, "breaks": r.breaks,
            "opened": r.opened, "cleared": r.cleared, "drift_fen": r.drift_fen}


def _clearing(engine: Engine, cfg: DayConfig, day: date, now: datetime) -> dict[str, Any]:
    from settleguard.reconciliation.clearing import NoClearingFile, run_clearing

    try:
        r = run_clearing(engine, day, now=now, tz=cfg.tz, cutoff_hour=cfg.cutoffs.t1_hour)
    except NoClearingFile:  # an RD summary before its INN detail: the INN's own arrival runs it
        return {"no_inn": True}
    return r.as_dict()


# --- what people see: settleguard day status, GET /api/v1/day, the console page -------------------------------


def _iso(v: datetime | None, zone: ZoneInfo) -> str | None:
    return v.astimezone(zone).isoformat(timespec="minutes") if v is not None else None


def default_day(now: datetime, tz: str) -> date:
    """The business day today's cycle closes: yesterday (local)."""
    return now.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)


def day_status(engine: Engine, cfg: DayConfig, now: datetime, day: date | None = None, *,
               enabled: bool = True) -> dict[str, Any]:
    """Business day ``day`` (default: yesterday's) as the cycle sees it now: its expected files and their state,
    what arrived, the actions done and when, what comes next, its alerts; times in the business zone."""
    zone = ZoneInfo(cfg.tz)
    day = day or default_day(now, cfg.tz)
    today = now.astimezone(zone).date()
    with engine.connect() as conn:
        facts = _facts(conn, cfg, now)
        if day < today - timedelta(days=cfg.schedule.lookback_days):  # an older day: its own arrivals
            facts = replace(facts, arrivals=arrivals(conn, m.cutoff_at(day, 0, zone) - timedelta(days=1)))
        plan = m.plan(facts, cfg.schedule)
        runs = repo.runs(conn, day, max(day, today))
        alerts = repo.day_alerts(conn, day)
        value = _value_day(day)
        payouts = repo.payout_counts(conn, value)
    files = m.file_states(facts, cfg.schedule, day)
    seen = [a for a in facts.arrivals if day in a.business_days
            or a.received_at.astimezone(zone).date() in (day, day + timedelta(days=1))]  # on the day or the next

    def file_row(f: m.FileState) -> dict[str, Any]:
        zh, en = m.kind_name(f.kind)
        szh, sen = m.FILE_STATE[f.state]
        return {"kind": f.kind, "kind_zh": zh, "kind_en": en, "due_at": _iso(f.due_at, zone), "state": f.state,
                "state_zh": szh, "state_en": sen, "received_at": _iso(f.received_at, zone), "arrivals": list(f.arrivals)}

    def run_row(r: dict[str, Any]) -> dict[str, Any]:
        azh, aen = m.ACTION.get(r["action"], (r["action"], r["action"]))
        szh, sen = m.RUN_STATUS.get(r["status"], (r["status"], r["status"]))
        return {"action": r["action"], "action_zh": azh, "action_en": aen, "business_day": r["business_day"].isoformat(),
                "key": r["key"], "status": r["status"], "status_zh": szh, "status_en": sen,
                "attempts": r["attempts"], "started_at": _iso(r["started_at"], zone),
                "finished_at": _iso(r["finished_at"], zone), "summary": r["summary"], "error": r["error"],
                "what_zh": m.describe(r["action"], r["summary"])[0], "what_en": m.describe(r["action"], r["summary"])[1]}

    def arrival_row(a: m.Arrived) -> dict[str, Any]:
        zh, en = m.kind_name(a.kind)
        szh, sen = m.ARRIVAL_STATUS.get(a.status, (a.status, a.status))
        return {"id": a.id, "name": a.name, "kind": a.kind, "kind_zh": zh, "kind_en": en, "status": a.status,
                "status_zh": szh, "status_en": sen, "reason_zh": a.reason_zh, "reason_en": a.reason_en,
                "received_at": _iso(a.received_at, zone), "business_days": [d.isoformat() for d in a.business_days]}

    return {
        "enabled": enabled, "business_day": day.isoformat(), "now": _iso(now, zone), "timezone": cfg.tz,
        "cutoff_at": _iso(m.cutoff_at(day, cfg.cutoffs.t1_hour, zone), zone),
        "settled": day in facts.settled_days, "value_date": value.isoformat(),
        "payouts": [{"status": k, "status_zh": PAYOUT_STATUS.get(k, (k, k))[0], "status_en": PAYOUT_STATUS.get(k, (k, k))[1],
                     "count": n} for k, n in sorted(payouts.items())],
        "files": [file_row(f) for f in files],
        "arrivals": [arrival_row(a) for a in sorted(seen, key=lambda a: a.received_at)],
        "runs": [run_row(r) for r in runs],
        "due": [{"action": d.action, "action_zh": m.ACTION[d.action][0], "action_en": m.ACTION[d.action][1],
                 "business_day": d.day.isoformat(), "key": d.key} for d in plan.due],
        "next": [{"at": _iso(w.at, zone), "zh": w.zh, "en": w.en} for w in plan.waiting],
        "alerts": [{"kind": a["kind"], "kind_zh": m.ALERT_KINDS.get(a["kind"], (a["kind"],) * 2)[0],
                    "kind_en": m.ALERT_KINDS.get(a["kind"], (a["kind"],) * 2)[1], "message": a["message"],
                    "message_zh": a["message"].split(" / ", 1)[0], "message_en": a["message"].split(" / ", 1)[-1],
                    "created_at": _iso(a["created_at"], zone)} for a in alerts],
        "pay_times": [f"{t:%H:%M}" for t in cfg.schedule.pay_times],
        "pay_channel": "file" if cfg.schedule.pay_to_file else "api",
        "send_open": send_open(cfg, now),
    }


def _value_day(day: date) -> date:
    from settleguard.settlement.calendar import next_business_day

    return next_business_day(day)


def late_files(engine: Engine, cfg: DayConfig, now: datetime) -> Sequence[m.FileState]:
    """The watched files late or missing now (for ``settleguard doctor``)."""
    with engine.connect() as conn:
        facts = _facts(conn, cfg, now)
    days = m.watched_days(facts, cfg.schedule)
    return [f for d in days for f in m.file_states(facts, cfg.schedule, d) if f.state in ("late", "missing")]
