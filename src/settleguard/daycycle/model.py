"""The day's cycle (日终自动运行): given the calendar, the cut-offs, the schedule, the files that arrived and what
already ran, what is due now and what is late. Pure: no clock (``now`` is given), no I/O.

A business day D (cycle date) closes at its T+1 cut-off (日切, local ``cutoff_hour`` on D; 24 = midnight). Its
files are expected on the calendar day after D at their due times (a bank statement only for business days).
What the worker's ``day`` step does (daycycle.service runs it):

- ``settle`` D — once per transaction file arrival covering D, never before D's cut-off and never without a
  transaction file for D (the engine is idempotent: a second file settles only merchants not yet settled);
- ``pay`` — at each configured pay time of a business day, once (the latest pay time passed; an earlier one the
  worker slept through is not made up: the latest covers it); the file channel writes a pain.001 then; the API
  channel sends only within ``pay_window`` after a pay time (:func:`send_open`);
- ``recon`` X — once per bank statement (camt.053 or bank file) for X, when the payouts due by X were sent (or the
  statement has waited ``recon_wait``);
- ``clearing`` C — once per clearing file (INN or RD) for C;
- ``alert`` — once per late file (kind and day) and once per day not settled by ``settle_latest``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BANK_STATEMENT_KINDS = frozenset({"camt053", "bank_file"})
CLEARING_KINDS = frozenset({"clearing_inn", "clearing_rd"})
ARRIVED_STATUSES = frozenset({"done", "duplicate"})  # a duplicate: the same content arrived before, and was imported

# labels (zh, en) of what the day's cycle shows
FILE_KIND: dict[str, tuple[str, str]] = {
    "transactions": ("交易文件", "transaction file"), "merchants": ("商户文件", "merchant file"),
    "pain002": ("付款状态报告 pain.002", "payment status report pain.002"),
    "camt054": ("退票通知 camt.054", "return notification camt.054"),
    "camt053": ("银行对账单 camt.053", "bank statement camt.053"),
    "bank_file": ("银行代付结果文件", "bank payout result file"),
    "clearing_inn": ("银联清算明细 INN", "UnionPay clearing detail INN"),
    "clearing_rd": ("银联清算汇总 RD", "UnionPay clearing summary RD"),
    "tms": ("终端管理文件 TMS", "terminal management file TMS")}
FILE_STATE: dict[str, tuple[str, str]] = {
    "arrived": ("已到", "arrived"), "waiting": ("未到期", "not yet due"), "late": ("迟到", "late"),
    "missing": ("缺失", "missing")}
ACTION: dict[str, tuple[str, str]] = {
    "settle": ("结算", "settle"), "pay": ("出款", "pay"), "recon": ("银行对账", "bank reconciliation"),
    "clearing": ("清算对账", "clearing reconciliation"), "alert": ("告警", "alert"), "start": ("开始自动运行", "started")}
RUN_STATUS: dict[str, tuple[str, str]] = {
    "running": ("进行中", "running"), "done": ("已完成", "done"), "failed": ("失败，下一轮重试", "failed, retried next cycle")}
ARRIVAL_STATUS: dict[str, tuple[str, str]] = {
    "done": ("已导入", "imported"), "rejected": ("已拒收", "rejected"),
    "duplicate": ("重复文件，未做更改", "duplicate, nothing changed")}
ALERT_KINDS: dict[str, tuple[str, str]] = {  # ops_alerts kinds (also in labels.ALERT_KIND)
    "file_late": ("文件迟到", "file late"), "day_not_settled": ("营业日未结算", "business day not settled")}

MISSING_AFTER = timedelta(days=1)  # a late file still absent a day after it was due is shown as missing


class ScheduleError(ValueError):
    """A schedule setting that cannot be read; names the setting and the value (zh, en)."""

    def __init__(self, key: str, value: object, zh: str, en: str) -> None:
        self.key, self.zh, self.en = key, zh, en
        super().__init__(f"设置 {key}={value!r}：{zh} / setting {key}={value!r}: {en}")


def parse_time(key: str, text: str) -> time:
    """``HH:MM`` (00:00..23:59) as a time; ScheduleError naming ``key`` otherwise."""
    parts = str(text).strip().split(":")
    if len(parts) == 2 and all(p.isdigit() and 1 <= len(p) <= 2 for p in parts):
        h, m = int(parts[0]), int(parts[1])
        if h < 24 and m < 60:
            return time(h, m)
    raise ScheduleError(key, text, "时间应为 时:分，如 09:30", "a time is HH:MM, e.g. 09:30")


@dataclass(frozen=True)
class Schedule:
    """When the day's files are due and when to pay (config.Settings ``day_*``; bootstrap.Container.day_config).

    Attributes:
        expected: file kind -> its due time (local) on the calendar day after the business day.
        settle_latest: a business day not settled by this local time of the next day raises an alert.
        pay_times: local times at which payouts go out on a business day (empty: whenever due, as before).
        pay_window: the API channel sends new payouts only this long after a pay time.
        pay_to_file: the file channel: a pain.001 is written at each pay time and nothing new goes through the API.
        lookback_days: how many days back arrivals are acted on and files watched.
        recon_wait: a statement waits at most this long for the payouts due by its day to be sent.
    """

    expected: Mapping[str, time] = field(default_factory=dict)
    settle_latest: time | None = None
    pay_times: tuple[time, ...] = ()
    pay_window: timedelta = timedelta(minutes=60)
    pay_to_file: bool = False
    lookback_days: int = 7
    recon_wait: timedelta = timedelta(hours=6)


@dataclass(frozen=True)
class Arrived:
    """What the cycle needs of one inbox arrival (inbox.repository.Arrival)."""

    id: int
    kind: str
    status: str
    business_days: tuple[date, ...]
    received_at: datetime
    name: str = ""
    reason_zh: str | None = None  # why a file was refused or taken as a duplicate (inbox; masked, bounded)
    reason_en: str | None = None


@dataclass(frozen=True)
class Ran:
    """One recorded action (day_cycle_runs)."""

    day: date
    action: str
    key: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    stale: bool = False  # running so long that its worker is taken for dead (service decides)


@dataclass(frozen=True)
class Facts:
    """What the plan is computed from.

    Attributes:
        now: the cycle's time, timezone-aware.
        tz: the business time zone's name.
        cutoff_hour: the T+1 cut-over hour (settlement.model.CutOffs.t1_hour).
        is_business_day: the calendar (settlement.calendar.is_business_day).
        arrivals: the inbox's arrivals of the last ``lookback_days``.
        ran: what the cycle already recorded.
        first_waiting_value_date: the earliest value date of a payout still waiting to be sent (None: none waits).
        started: the local day the cycle first ran (files of days before it are not watched); None: today.
        settled_days: business days with a settlement run (by the cycle or by hand: ``settleguard settle``).
    """

    now: datetime
    tz: str
    cutoff_hour: int
    is_business_day: Callable[[date], bool]
    arrivals: Sequence[Arrived] = ()
    ran: Sequence[Ran] = ()
    first_waiting_value_date: date | None = None
    started: date | None = None
    settled_days: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Due:
    """An action to run now: ``action`` for ``day`` under ``key`` (the claim's unique key)."""

    action: str
    day: date
    key: str
    arrival_id: int | None = None
    retry: bool = False  # a failed or stale run of it exists: claimed again


@dataclass(frozen=True)
class FileState:
    day: date
    kind: str
    due_at: datetime
    state: str  # arrived | waiting | late | missing
    arrivals: tuple[int, ...] = ()
    received_at: datetime | None = None


@dataclass(frozen=True)
class AlertDue:
    kind: str  # file_late | day_not_settled
    day: date
    key: str  # the file kind, or "settle"
    zh: str
    en: str

    @property
    def dedupe_key(self) -> str:
        return f"day:{self.day.isoformat()}:{self.key}"


@dataclass(frozen=True)
class Waiting:
    """Something the cycle waits for: what, since/until when (zh, en)."""

    at: datetime | None
    zh: str
    en: str


@dataclass(frozen=True)
class Plan:
    due: tuple[Due, ...]
    files: tuple[FileState, ...]
    alerts: tuple[AlertDue, ...]
    waiting: tuple[Waiting, ...]


def cutoff_at(day: date, cutoff_hour: int, zone: ZoneInfo) -> datetime:
    """The moment business day ``day`` closes (日切): local ``cutoff_hour`` on ``day`` (24: the next midnight)."""
    return datetime.combine(day, time(0), zone) + timedelta(hours=cutoff_hour)


def due_at(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A time on the calendar day after business day ``day`` (when its files are due)."""
    return datetime.combine(day + timedelta(days=1), at, zone)


def kind_name(kind: str) -> tuple[str, str]:
    """A file kind's label; a file not recognised (refused before its kind was known) says so."""
    if not kind:
        return "未识别", "not recognised"
    return FILE_KIND.get(kind, (kind, kind))


def send_open(schedule: Schedule, now: datetime, tz: str, is_business_day: Callable[[date], bool]) -> bool:
    """May the API channel send new payouts now? Always without pay times (as before); never on the file channel;
    else on a business day within ``pay_window`` after a pay time. Inquiries always run (the worker's send step)."""
    if schedule.pay_to_file:
        return False
    if not schedule.pay_times:
        return True
    local = now.astimezone(ZoneInfo(tz))
    if not is_business_day(local.date()):
        return False
    return any(start <= local < start + schedule.pay_window
               for start in (datetime.combine(local.date(), t, local.tzinfo) for t in schedule.pay_times))


def _done(ran: Sequence[Ran]) -> tuple[set[tuple[date, str, str]], set[tuple[date, str, str]]]:
    """(keys done or running and alive, keys failed or stale: to retry)."""
    blocked, retry = set(), set()
    for r in ran:
        k = (r.day, r.action, r.key)
        if r.status == "done" or (r.status == "running" and not r.stale):
            blocked.add(k)
        else:
            retry.add(k)
    return blocked, retry


def watched_days(facts: Facts, schedule: Schedule) -> list[date]:
    """The business days whose files are watched now: from ``lookback_days`` back (not before the day before the
    cycle started) to yesterday, newest first."""
    today = facts.now.astimezone(ZoneInfo(facts.tz)).date()
    first = today - timedelta(days=schedule.lookback_days)
    if facts.started is not None:
        first = max(first, facts.started - timedelta(days=1))
    out, d = [], today - timedelta(days=1)
    while d >= first:
        out.append(d)
        d -= timedelta(days=1)
    return out


def file_states(facts: Facts, schedule: Schedule, day: date) -> list[FileState]:
    """The expected files of business day ``day`` and their state now."""
    zone = ZoneInfo(facts.tz)
    out = []
    for kind, at in sorted(schedule.expected.items(), key=lambda kv: (kv[1], kv[0])):
        if kind in BANK_STATEMENT_KINDS and not facts.is_business_day(day):
            continue  # banks issue statements for business days only
        came = sorted((a for a in facts.arrivals if a.kind == kind and a.status in ARRIVED_STATUSES
                       and day in a.business_days), key=lambda a: a.received_at)
        due = due_at(day, at, zone)
        if came:
            state = "arrived"
        elif facts.now < due:
            state = "waiting"
        else:
            state = "late" if facts.now < due + MISSING_AFTER else "missing"
        out.append(FileState(day, kind, due, state, tuple(a.id for a in came),
                             came[0].received_at if came else None))
    return out


def plan(facts: Facts, schedule: Schedule) -> Plan:
    """What is due now, the watched files' states, the alerts to raise and what the cycle waits for."""
    zone = ZoneInfo(facts.tz)
    now = facts.now
    local = now.astimezone(zone)
    today = local.date()
    oldest = today - timedelta(days=schedule.lookback_days)
    blocked, retry = _done(facts.ran)
    due: list[Due] = []
    waiting: list[Waiting] = []

    def add(action: str, day: date, key: str, arrival_id: int | None = None) -> None:
        k = (day, action, key)
        if k not in blocked and all((d.day, d.action, d.key) != k for d in due):
            due.append(Due(action, day, key, arrival_id, k in retry))

    fresh = sorted((a for a in facts.arrivals if a.status == "done"), key=lambda a: (a.received_at, a.id))
    for a in fresh:
        for day in sorted(set(a.business_days)):
            if day < oldest:
                continue
            key = f"a{a.id}"
            if a.kind == "transactions":
                closes = cutoff_at(day, facts.cutoff_hour, zone)
                if now >= closes:
                    add("settle", day, key, a.id)
                elif (day, "settle", key) not in blocked:
                    waiting.append(Waiting(closes, f"{day} 日切后结算", f"{day} settles after its cut-off"))
            elif a.kind in BANK_STATEMENT_KINDS:
                waits = facts.first_waiting_value_date is not None and facts.first_waiting_value_date <= day
                if not waits or now >= a.received_at + schedule.recon_wait:
                    add("recon", day, key, a.id)
                elif (day, "recon", key) not in blocked:
                    waiting.append(Waiting(a.received_at + schedule.recon_wait,
                                           f"{day} 对账单等待出款发出后对账", f"{day} statement waits for payouts to go out"))
            elif a.kind in CLEARING_KINDS:
                add("clearing", day, key, a.id)

    if schedule.pay_times and facts.is_business_day(today):
        slots = sorted(datetime.combine(today, t, zone) for t in schedule.pay_times)
        passed = [s for s in slots if s <= local]
        if passed:
            add("pay", today, f"{passed[-1]:%H:%M}")
        upcoming = [s for s in slots if s > local]
        if upcoming:
            waiting.append(Waiting(upcoming[0], f"出款时间 {upcoming[0]:%H:%M}", f"pay time {upcoming[0]:%H:%M}"))

    files: list[FileState] = []
    alerts: list[AlertDue] = []
    settled_days = {r.day for r in facts.ran if r.action == "settle" and r.status == "done"} | facts.settled_days
    for day in watched_days(facts, schedule):
        states = file_states(facts, schedule, day)
        files.extend(states)
        for st in states:
            zh, en = kind_name(st.kind)
            if st.state in ("late", "missing"):
                alerts.append(AlertDue("file_late", day, st.kind,
                                       f"营业日 {day} 的{zh}未按时到达（应于 {st.due_at.astimezone(zone):%m-%d %H:%M} 前到达）",
                                       f"the {en} of business day {day} is late (due by "
                                       f"{st.due_at.astimezone(zone):%m-%d %H:%M})"))
            elif st.state == "waiting":
                waiting.append(Waiting(st.due_at, f"{day} 的{zh}", f"{en} of {day}"))
        settling = any(d.action == "settle" and d.day == day for d in due)  # about to be settled: no alert
        if schedule.settle_latest is not None and day not in settled_days and not settling:
            latest = due_at(day, schedule.settle_latest, zone)
            if now >= latest:
                alerts.append(AlertDue("day_not_settled", day, "settle",
                                       f"营业日 {day} 到 {latest:%m-%d %H:%M} 仍未结算（交易文件未到，不结算）",
                                       f"business day {day} not settled by {latest:%m-%d %H:%M} (no transaction "
                                       "file: it is not settled without one)"))
    alerts = [a for a in alerts if (a.day, "alert", a.key) not in blocked]
    waiting.sort(key=lambda w: (w.at is None, w.at or now))
    return Plan(tuple(due), tuple(files), tuple(alerts), tuple(waiting))


def _yuan(fen: object) -> str:
    f = int(fen) if isinstance(fen, int) else 0
    sign = "-" if f < 0 else ""
    return f"{sign}{abs(f) // 100:,}.{abs(f) % 100:02d}"


def describe(action: str, summary: Mapping[str, object]) -> tuple[str, str]:
    """What a recorded action did, for people (zh, en)."""
    g = summary.get
    if action == "settle":
        return (f"结算商户 {g('merchants', 0)} 户，交易 {g('transactions', 0)} 笔，生成出款 {g('payouts_created', 0)} 笔 "
                f"¥{_yuan(g('payout_fen', 0))}",
                f"{g('merchants', 0)} merchant(s), {g('transactions', 0)} transaction(s) settled; "
                f"{g('payouts_created', 0)} payout(s) ¥{_yuan(g('payout_fen', 0))}")
    if action == "pay":
        if g("channel") == "file":
            return (f"写出 pain.001：{g('payouts', 0)} 笔 ¥{_yuan(g('total_fen', 0))}",
                    f"pain.001 written: {g('payouts', 0)} payout(s) ¥{_yuan(g('total_fen', 0))}")
        return (f"出款窗口开启 {g('window_minutes', 0)} 分钟（接口通道）",
                f"pay window open for {g('window_minutes', 0)} min (API channel)")
    if action == "recon":
        return (f"银行流水 {g('lines', 0)} 条，已匹配 {g('matched', 0)}，差错 {g('breaks', 0)}",
                f"{g('lines', 0)} bank line(s), {g('matched', 0)} matched, {g('breaks', 0)} break(s)")
    if action == "clearing":
        if g("no_inn"):
            return "尚无清算明细 INN，待其到达后对账", "no INN detail yet: reconciled when it arrives"
        return (f"清算明细 {g('network_lines', 0)} 条，已匹配 {g('matched', 0)}，差错 {g('breaks', 0)}",
                f"{g('network_lines', 0)} clearing line(s), {g('matched', 0)} matched, {g('breaks', 0)} break(s)")
    if action == "alert":
        zh, en = ALERT_KINDS.get(str(g("kind", "")), ("告警", "alert"))
        return f"已告警：{zh}", f"alerted: {en}"
    return "", ""
