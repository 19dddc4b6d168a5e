"""The worker: one cycle runs every domain's step in order; the loop repeats it.

The cycle is the list :data:`STEPS`, run in order, each step taking one :class:`CycleContext` (what the
composition root built: engine, channel, vault, verifier, time zone, each domain's settings) and returning
its summary:

1. ``released`` -- release the card-held payouts of merchants who re-bound or whose card was restored
   (payouts.release.release_for_card_events);
2. ``cards`` -- inquire the status of stale cards of merchants about to be paid (cards.service), so that a
   card found frozen holds the payout before it fails at the bank (skipped without a verifier);
3. ``send`` -- inquire about every payout whose outcome is unknown, then send what is due
   (payouts.service.send_due), honouring the per-bank circuit breakers;
4. ``cases`` -- open the cases payout events call for (cases.service.open_auto_cases), SLAs in the
   configured time zone;
5. ``notices`` -- deliver merchant notices, time-boxed (notify.delivery.deliver_in_cycle);
6. ``overdue`` -- flag pain.001 file payouts still without an answer (cases.overdue.flag_overdue);
7. ``recon`` -- act on open reconciliation breaks: ledger_only back to inquiry, reversal held as a return,
   breaks open longer than ``recon_case_hours`` open a case (reconciliation.followup.follow_up);
8. ``backup`` -- once per business day, when a backup directory is configured, a backup archive there and the
   oldest beyond ``backup_keep`` deleted (ops.backup.daily_backup; docs/operations.md).
- ``risk_scan`` -- the latest imported business day not yet scanned (or imported again since its scan), at most
  one day per cycle, within a week of ``as_of`` (risk.service.worker_scan; docs/risk.md);
- ``inbox`` -- first: files dropped into the inbox directories imported by kind, moved to done/ or rejected/
  (inbox.service; docs/operations.md "收件目录 Inbox");
- ``day`` -- the day runs itself (first, after the inbox): a closed business day settled once its transaction file
  is in, pain.001 files at pay times (pay times also gate the send step's new sends), reconciliation of new
  statements and clearing files, alerts for late files (daycycle.service; docs/operations.md);

A new domain (reconciliation, risk scans, backups) joins the cycle by adding one :class:`Step` to the list
(or passing its own list to :func:`cycle`/:func:`run`); no other step changes, and the domains do not
import each other to run a cycle: only this module knows them all. Every step's result is kept in
:attr:`CycleSummary.steps` under the step's name; the six steps above also fill their named fields.

On PostgreSQL several workers may run at once: payouts are claimed with FOR UPDATE SKIP
LOCKED, and a payout another worker left ``submitted`` is inquired about only after
``stale_after``. On SQLite one worker runs at a time: :func:`single_worker_lock` holds an
exclusive lock file beside the database.

Each cycle gets a run id, carried by every log record written during it (settleguard.logs); a cycle that
completes writes the worker's heartbeat (ops.heartbeat, read by ``settleguard doctor``).

A cycle that fails on a transient database error (SQLite "database is locked" when another
process wrote between this cycle's read and its write; a PostgreSQL deadlock, serialization
failure or dropped connection) is logged and the loop carries on: each step commits its own
transactions, and a send whose answer could not be stored leaves the payout ``submitted``, which
the next cycle inquires about before anything is resent. Any other error of a cycle is logged with its
traceback and the loop carries on after the interval; one payout's error never reaches the loop (a card
that does not decrypt: needs_review; a channel that raises: result unknown, inquired about).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from settleguard.cards.service import CardSettings, StatusCheckSummary, refresh_before_payouts
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardVerifier
from settleguard.cases.overdue import OverdueSummary, flag_overdue
from settleguard.cases.service import AutoSummary, open_auto_cases
from settleguard.channels.base import BankChannel
from settleguard.config import DEFAULT_TIMEZONE
from settleguard.daycycle.service import DayConfig, DaySummary, run_day, send_open
from settleguard.inbox.service import InboxConfig, IngestSummary
from settleguard.inbox.service import scan as inbox_scan
from settleguard.logs import bound, new_id
from settleguard.notify.delivery import DeliverySettings, DeliverySummary, deliver_in_cycle
from settleguard.ops import heartbeat
from settleguard.ops.backup import BackupPolicy, DailySummary, daily_backup
from settleguard.payouts.release import ReleaseSummary, release_for_card_events
from settleguard.payouts.service import DEFAULT_OPTIONS, Options, SendSummary, inquire_unresolved, send_due
from settleguard.reconciliation.followup import DEFAULT_CASE_HOURS, FollowUpSummary, follow_up
from settleguard.risk.service import WorkerScan, worker_scan

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class CycleContext:
    """What one cycle's steps may use; built once per cycle by :func:`cycle`.

    Attributes:
        engine, channel, vault: the database, the bank channel and the card vault.
        verifier: the card verification service; None skips the card checks.
        as_of: the business day (local date in ``tz``) the cycle sends for.
        now: the cycle's time (timezone-aware), written to every row the steps touch.
        tz: the business time zone (IANA name; config.Settings.timezone), for local days and SLAs.
        options: the payout options (retry, breaker, limits, file answer due days).
        cards: the card settings (status checks).
        delivery: the notice delivery settings (lease, batch, backoff, time box).
        progress: called with the number of payouts sent so far, or None.
        recon_case_hours: an open reconciliation break opens a case after this many hours.
        backup: the daily backup's directory and how many to keep (ops.backup); None: no backups.
        day: the day's cycle (daycycle.service.DayConfig): expected files, settle, pay times; None: off.
        risk_rules_file: the operator's risk rule file over risk/rules.toml (settings.risk_rules); None: defaults.
    """

    engine: Engine
    channel: BankChannel
    vault: Vault
    verifier: CardVerifier | None
    as_of: date
    now: datetime
    tz: str
    options: Options
    cards: CardSettings
    delivery: DeliverySettings
    progress: Callable[[int], None] | None = None
    recon_case_hours: int = DEFAULT_CASE_HOURS
    backup: BackupPolicy | None = None
    day: DayConfig | None = None  # the day runs itself (daycycle/): settle, pay times, reconcile; None: off
    risk_rules_file: Path | None = None  # the operator's risk rule file (settings.risk_rules), read each cycle
    inbox: InboxConfig | None = None  # the inbox directories (inbox/); None: no inbox


class Step(Protocol):
    """One domain's part of a cycle: a name and a call that returns the step's summary."""

    @property
    def name(self) -> str: ...

    def __call__(self, ctx: CycleContext) -> object: ...


@dataclass(frozen=True)
class NamedStep:
    """A :class:`Step` made of a name and a function."""

    name: str
    run: Callable[[CycleContext], object]

    def __call__(self, ctx: CycleContext) -> object:
        return self.run(ctx)


def _release(ctx: CycleContext) -> ReleaseSummary:
    return release_for_card_events(ctx.engine, ctx.now, tz=ctx.tz)


def _card_checks(ctx: CycleContext) -> StatusCheckSummary:
    if ctx.verifier is None:
        return StatusCheckSummary()
    return refresh_before_payouts(ctx.engine, ctx.verifier, ctx.vault, as_of=ctx.as_of, now=ctx.now,
                                  settings=ctx.cards)


def _send(ctx: CycleContext) -> SendSummary:
    if not send_open(ctx.day, ctx.now):  # pay times configured and none open now, or the file channel: inquire only
        summary = SendSummary()
        inquire_unresolved(ctx.engine, ctx.channel, ctx.now, summary, ctx.options)
        return summary
    return send_due(ctx.engine, ctx.channel, ctx.vault, as_of=ctx.as_of, now=ctx.now, progress=ctx.progress,
                    opts=ctx.options)


def _cases(ctx: CycleContext) -> AutoSummary:
    # 工单: needs review, risk holds, returns, repeated failures
    return open_auto_cases(ctx.engine, ctx.now, tz=ctx.tz)


def _notices(ctx: CycleContext) -> DeliverySummary:
    return deliver_in_cycle(ctx.engine, ctx.vault, ctx.now, ctx.delivery)  # merchant notices, time-boxed


def _recon(ctx: CycleContext) -> FollowUpSummary:
    # 对账差错: ledger_only -> inquiry, reversal -> held as a return, aged -> case
    return follow_up(ctx.engine, ctx.now, tz=ctx.tz, case_after_hours=ctx.recon_case_hours)


def _overdue(ctx: CycleContext) -> OverdueSummary:
    return flag_overdue(ctx.engine, ctx.now, business_days=ctx.options.file_answer_due_business_days, tz=ctx.tz)


def _backup(ctx: CycleContext) -> DailySummary | None:
    # 备份: once per business day into backup_dir, the oldest beyond backup_keep deleted (ops.backup)
    if ctx.backup is None:
        return None
    return daily_backup(ctx.engine, ctx.backup, business_day=ctx.as_of, now=ctx.now)


def _risk_scan(ctx: CycleContext) -> WorkerScan:
    # 风险扫描: the latest imported business day not yet scanned (or imported again since), one day per cycle, with
    # the operator's rule file (settings.risk_rules, handed in by the entry point) over the defaults
    return worker_scan(ctx.engine, as_of=ctx.as_of, tz=ctx.tz, now=ctx.now, rules_file=ctx.risk_rules_file)


def _terminal_silence(ctx: CycleContext) -> object:
    # 终端静默: terminals whose heartbeat / last sale is older than the policy's silent_days (terminals.service)
    from settleguard.terminals.service import silence_sweep

    return silence_sweep(ctx.engine, ctx.now)


def _day(ctx: CycleContext) -> DaySummary | None:
    # 日终自动运行: settle a closed day once its transaction file is in, pay at pay times, reconcile new statements
    # and clearing files, alert late files (daycycle.service; docs/operations.md)
    if ctx.day is None:
        return None
    return run_day(ctx.engine, ctx.day, vault=ctx.vault, now=ctx.now, opts=ctx.options)


def _inbox(ctx: CycleContext) -> IngestSummary | None:
    # 收件目录: files dropped into the inbox directories, imported by kind, moved to done/ or rejected/ (inbox.service)
    if ctx.inbox is None:
        return None
    return inbox_scan(ctx.engine, ctx.inbox, now=ctx.now, tz=ctx.tz)


STEPS: tuple[Step, ...] = (
    NamedStep("inbox", _inbox),  # first (issue 23 item 7): what arrived is imported before the day acts on it
    NamedStep("day", _day),  # right after "inbox" (issue 23 item 7)
    NamedStep("released", _release),
    NamedStep("cards", _card_checks),
    NamedStep("send", _send),
    NamedStep("cases", _cases),
    NamedStep("notices", _notices),
    NamedStep("overdue", _overdue),
    NamedStep("recon", _recon),
    NamedStep("backup", _backup),
    NamedStep("risk_scan", _risk_scan),  # issue 22: risk.service.worker_scan
    NamedStep("terminal_silence", _terminal_silence),
)
"""The cycle, in order. A new domain appends its step here (see the module docstring)."""


@dataclass
class CycleSummary:
    released: ReleaseSummary
    cards: StatusCheckSummary
    send: SendSummary
    cases: AutoSummary | None = None
    notices: DeliverySummary | None = None
    overdue: OverdueSummary | None = None  # file payouts flagged for want of an answer (cases.overdue)
    steps: dict[str, object] = field(default_factory=dict)  # every step's summary by step name, in order


def _summary(results: dict[str, object]) -> CycleSummary:
    def get(name: str, kind: type[_T]) -> _T | None:
        value = results.get(name)
        return value if isinstance(value, kind) else None

    return CycleSummary(released=get("released", ReleaseSummary) or ReleaseSummary(),
                        cards=get("cards", StatusCheckSummary) or StatusCheckSummary(),
                        send=get("send", SendSummary) or SendSummary(),
                        cases=get("cases", AutoSummary), notices=get("notices", DeliverySummary),
                        overdue=get("overdue", OverdueSummary), steps=results)


def cycle(engine: Engine, channel: BankChannel, vault: Vault, verifier: CardVerifier | None, *, as_of: date,
          now: datetime, opts: Options = DEFAULT_OPTIONS, cards: CardSettings | None = None,
          progress: Callable[[int], None] | None = None, tz: str = DEFAULT_TIMEZONE,
          delivery: DeliverySettings | None = None, steps: Sequence[Step] = STEPS,
          recon_case_hours: int = DEFAULT_CASE_HOURS, backup: BackupPolicy | None = None,
          day: DayConfig | None = None, risk_rules_file: Path | None = None,
          inbox: InboxConfig | None = None) -> CycleSummary:
    """One pass of the worker: every step of ``steps`` in order (see the module docstring)."""
    ctx = CycleContext(engine, channel, vault, verifier, as_of, now, tz, opts, cards or CardSettings(timezone=tz),
                       delivery or DeliverySettings(), progress, recon_case_hours, backup, day=day,
                       risk_rules_file=risk_rules_file, inbox=inbox)
    results: dict[str, object] = {}
    for step in steps:
        results[step.name] = step(ctx)
    return _summary(results)


class WorkerBusy(RuntimeError):
    """Another worker holds the SQLite database's worker lock."""


@contextmanager
def single_worker_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on ``path`` (released when the process dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WorkerBusy(f"another worker is running ({path})") from exc
        yield
    finally:
        os.close(fd)


def _beat(engine: Engine, now: datetime, run_id: str, started: datetime) -> None:
    """The heartbeat after a cycle (ops.heartbeat; read by ``settleguard doctor``); its failure never stops
    the loop."""
    try:
        heartbeat.beat(engine, now, run_id=run_id, started_at=started)
    except Exception:
        LOG.warning("无法写入工作进程心跳 cannot write the worker heartbeat", exc_info=True)
    else:
        LOG.info("出款一轮完成 worker cycle done")


def run(engine: Engine, channel: BankChannel, vault: Vault, verifier: CardVerifier | None, *,
        clock: Callable[[], datetime], today: Callable[[datetime], date], stop: threading.Event,
        interval: float, opts: Options = DEFAULT_OPTIONS, cards: CardSettings | None = None,
        max_cycles: int | None = None, on_cycle: Callable[[CycleSummary], None] | None = None,
        tz: str = DEFAULT_TIMEZONE, delivery: DeliverySettings | None = None,
        steps: Sequence[Step] = STEPS, recon_case_hours: int = DEFAULT_CASE_HOURS,
        backup: BackupPolicy | None = None, day: DayConfig | None = None,
        risk_rules_file: Path | None = None, inbox: InboxConfig | None = None) -> int:
    """Run cycles until ``stop`` is set (or ``max_cycles``); returns the number of cycles run."""
    n = 0
    started = clock()
    while not stop.is_set() and (max_cycles is None or n < max_cycles):
        now = clock()
        run_id = new_id()  # in every log record of the cycle (settleguard.logs) and in the heartbeat
        try:
            with bound(run_id=run_id):
                summary = cycle(engine, channel, vault, verifier, as_of=today(now), now=now, opts=opts, cards=cards,
                                tz=tz, delivery=delivery, steps=steps, recon_case_hours=recon_case_hours,
                                backup=backup, day=day, risk_rules_file=risk_rules_file, inbox=inbox)
                _beat(engine, now, run_id, started)
        except OperationalError as exc:
            if max_cycles is not None and n + 1 >= max_cycles:
                raise
            with bound(run_id=run_id):
                LOG.warning("出款一轮因数据库临时错误中断，稍后重试 worker cycle interrupted by a transient database "
                            "error; retrying: %s", str(exc).splitlines()[0])
            stop.wait(min(interval, 1.0))
            continue
        except Exception:
            # Not one payout's error (those are recorded on the payout: payouts.service): a step failed.
            # Log it and carry on next cycle; each step committed its own transactions.
            if max_cycles is not None and n + 1 >= max_cycles:
                raise
            with bound(run_id=run_id):
                LOG.exception("出款一轮出错，下一轮继续 worker cycle failed; the next cycle carries on")
            n += 1
            stop.wait(interval)
            continue
        n += 1
        if on_cycle:
            on_cycle(summary)
        if max_cycles is not None and n >= max_cycles:
            break
        stop.wait(interval)
    return n
