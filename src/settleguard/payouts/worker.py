"""The payout worker: one cycle releases, refreshes, inquires and sends; the loop repeats it.

A cycle, in order:

1. release the card-held payouts of merchants who re-bound or whose card was restored
   (payouts.release.release_for_card_events);
2. inquire the status of stale cards of merchants about to be paid (cards.service), so that a
   card found frozen holds the payout before it fails at the bank;
3. inquire about every payout whose outcome is unknown, then send what is due
   (payouts.service.send_due), honouring the per-bank circuit breakers.

On PostgreSQL several workers may run at once: payouts are claimed with FOR UPDATE SKIP
LOCKED, and a payout another worker left ``submitted`` is inquired about only after
``stale_after``. On SQLite one worker runs at a time: :func:`single_worker_lock` holds an
exclusive lock file beside the database.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from settleguard.cards.service import CardSettings, StatusCheckSummary, refresh_before_payouts
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardVerifier
from settleguard.cases.service import AutoSummary, open_auto_cases
from settleguard.channels.base import BankChannel
from settleguard.notify.delivery import DeliverySummary, deliver_in_cycle
from settleguard.payouts.overdue import OverdueSummary, flag_overdue
from settleguard.payouts.release import ReleaseSummary, release_for_card_events
from settleguard.payouts.service import DEFAULT_OPTIONS, Options, SendSummary, send_due

LOG = logging.getLogger(__name__)


@dataclass
class CycleSummary:
    released: ReleaseSummary
    cards: StatusCheckSummary
    send: SendSummary
    cases: AutoSummary | None = None
    notices: DeliverySummary | None = None
    overdue: OverdueSummary | None = None  # file payouts flagged for want of an answer (payouts.overdue)


def cycle(engine: Engine, channel: BankChannel, vault: Vault, verifier: CardVerifier | None, *, as_of: date,
          now: datetime, opts: Options = DEFAULT_OPTIONS, cards: CardSettings | None = None,
          progress: Callable[[int], None] | None = None) -> CycleSummary:
    """One pass of the worker (see the module docstring). ``verifier`` None skips step 2."""
    released = release_for_card_events(engine, now)
    checked = StatusCheckSummary()
    if verifier is not None:
        checked = refresh_before_payouts(engine, verifier, vault, as_of=as_of, now=now,
                                         settings=cards or CardSettings())
    sent = send_due(engine, channel, vault, as_of=as_of, now=now, progress=progress, opts=opts)
    cases = open_auto_cases(engine, now)  # 工单: needs review, risk holds, returns, repeated failures
    notices = deliver_in_cycle(engine, vault, now)  # merchant notices (notify.delivery), time-boxed
    overdue = flag_overdue(engine, now, business_days=opts.file_answer_due_business_days)  # unanswered files
    return CycleSummary(released, checked, sent, cases, notices, overdue)


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


def run(engine: Engine, channel: BankChannel, vault: Vault, verifier: CardVerifier | None, *,
        clock: Callable[[], datetime], today: Callable[[datetime], date], stop: threading.Event,
        interval: float, opts: Options = DEFAULT_OPTIONS, cards: CardSettings | None = None,
        max_cycles: int | None = None, on_cycle: Callable[[CycleSummary], None] | None = None) -> int:
    """Run cycles until ``stop`` is set (or ``max_cycles``); returns the number of cycles run."""
    n = 0
    while not stop.is_set() and (max_cycles is None or n < max_cycles):
        now = clock()
        try:
            summary = cycle(engine, channel, vault, verifier, as_of=today(now), now=now, opts=opts, cards=cards)
        except OperationalError as exc:
            if max_cycles is not None and n + 1 >= max_cycles:
                raise
            LOG.warning("出款一轮因数据库临时错误中断，稍后重试 worker cycle interrupted by a transient database "
                        "error; retrying: %s", str(exc).splitlines()[0])
            stop.wait(min(interval, 1.0))
            continue
        except Exception:
            # Not one payout's error (those are recorded on the payout: payouts.service): a step failed.
            # Log it and carry on next cycle; each step committed its own transactions.
            if max_cycles is not None and n + 1 >= max_cycles:
                raise
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
