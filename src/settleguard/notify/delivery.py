"""The delivery worker: claims due deliveries with a lease, sends them, logs every try, backs off.

A run, repeated until nothing is due or the time box is used up:

1. queue deliveries for recent notices that have none while their merchant has preferences
   (card notices written by cards.service, notices written before channels were chosen);
2. give up deliveries a dead worker left after their last allowed try;
3. claim a batch (one transaction): due rows get ``delivering``, a lease, one more try and an open
   row in ``notification_attempts`` -- PostgreSQL skips rows other workers hold (SKIP LOCKED);
4. send each one outside any transaction;
5. record each outcome (one transaction per delivery): delivered, or pending again after an
   exponential backoff with full jitter, or gave_up after the last try.

A worker killed during step 4 leaves the row ``delivering`` with an open try; once the lease
expires another worker claims it again (closing the dead try in the log), so nothing is lost.
Delivery is at-least-once: every try carries ``X-Settleguard-Notice: <notification id>``.

What a receiver answers (an HTTP reason phrase, an SMTP server's reply, an SMS provider's text, an
exception's message) comes from outside: it is masked (card numbers, settleguard.masking) and cut to
512 characters here, once, before it is written to the delivery log, whatever the channel.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from settleguard.cards.vault import Vault, VaultError
from settleguard.masking import bounded, mask_card_numbers
from settleguard.notify import repository as repo
from settleguard.notify.channels import Email, LoggingSmsSender, SendResult, SmsSender, SmtpConfig, Webhook
from settleguard.notify.model import Backoff, Channel, Notice, body_bytes
from settleguard.notify.render import render_all, texts

if TYPE_CHECKING:  # the settings are read by the composition root and passed in, never read here
    from settleguard.config import Settings


@dataclass(frozen=True)
class DeliverySettings:
    lease_seconds: float = 60.0
    batch: int = 20
    backoff: Backoff = Backoff()
    webhook_timeout: float = 10.0
    smtp: SmtpConfig = SmtpConfig()
    requeue_window: timedelta = timedelta(days=1)
    cycle_seconds: float = 20.0  # time box of the delivery step of one worker cycle

    @classmethod
    def from_settings(cls, s: Settings) -> DeliverySettings:
        return cls(lease_seconds=s.notify_lease_seconds, batch=s.notify_batch,
                   backoff=Backoff(s.notify_backoff_base_seconds, s.notify_backoff_cap_seconds, s.notify_max_attempts,
                                   min(1.0, s.notify_backoff_base_seconds)),
                   webhook_timeout=s.webhook_timeout_seconds,
                   smtp=SmtpConfig(s.smtp_host, s.smtp_port, s.smtp_from, timeout=s.webhook_timeout_seconds,
                                   starttls=s.smtp_starttls, username=s.smtp_user, password=s.smtp_password),
                   cycle_seconds=s.notify_cycle_seconds)


@dataclass
class DeliverySummary:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    gave_up: int = 0
    queued: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"claimed": self.claimed, "delivered": self.delivered, "failed": self.failed,
                "gave_up": self.gave_up, "queued": self.queued, "by_channel": dict(self.by_channel)}


class Deliverer:
    """Sends queued notices. ``clock`` gives the time written to the database (the worker's clock);
    ``wall`` the unix time put in webhook signatures (the receiver compares it with its own clock)."""

    def __init__(self, engine: Engine, vault: Vault, settings: DeliverySettings = DeliverySettings(), *,
                 sms: SmsSender | None = None, webhook: Webhook | None = None, email: Email | None = None,
                 rand: Callable[[], float] = random.random, wall: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.vault = vault
        self.settings = settings
        self.sms = sms or LoggingSmsSender()
        self.webhook = webhook or Webhook(settings.webhook_timeout)
        self.email = email or Email(settings.smtp)
        self.rand = rand
        self.wall = wall

    def run(self, clock: Callable[[], datetime], *, budget_seconds: float | None = None,
            once: bool = False) -> DeliverySummary:
        """Deliver what is due; stop when nothing is due, after ``budget_seconds`` (checked between
        deliveries), or after one batch with ``once``."""
        s = self.settings
        out = DeliverySummary()
        started = time.monotonic()
        now = clock()
        with self.engine.begin() as conn:
            for nid, mid in repo.unqueued(conn, now - s.requeue_window):
                prefs = repo.preferences(conn, mid)
                if prefs is not None:
                    out.queued += repo.enqueue(conn, nid, prefs.targets(), now)
            out.gave_up += repo.give_up_abandoned(conn, now, s.backoff.max_attempts)
        while True:
            now = clock()
            with self.engine.begin() as conn:
                batch = repo.claim(conn, now, now + timedelta(seconds=s.lease_seconds), s.batch,
                                   s.backoff.max_attempts)
            out.claimed += len(batch)
            for i, c in enumerate(batch):
                if budget_seconds is not None and i and time.monotonic() - started > budget_seconds:
                    with self.engine.begin() as conn:  # the time box ran out: give the rest back untried
                        for rest in batch[i:]:
                            repo.unclaim(conn, rest)
                    out.claimed -= len(batch) - i
                    break
                self._deliver(c, clock, out)
            if once or not batch or (budget_seconds is not None and time.monotonic() - started > budget_seconds):
                return out

    def _deliver(self, c: repo.Claimed, clock: Callable[[], datetime], out: DeliverySummary) -> None:
        try:
            result = self.send(c)
        except Exception as exc:  # a bug or an unexpected library error must not kill the worker
            result = SendResult(False, f"{type(exc).__name__}: {exc}"[:2048])
        # the receiver's words: masked first, then cut, so a cut can never leave part of a card number
        detail = bounded(mask_card_numbers(result.detail), 511)
        now = clock()
        out.by_channel[f"{c.channel}:{'ok' if result.ok else 'failed'}"] += 1
        with self.engine.begin() as conn:
            repo.finish_attempt(conn, c.attempt_id, ok=result.ok, http_status=result.http_status,
                                detail=detail, now=now)
            if result.ok:
                repo.mark_delivered(conn, c, now)
                out.delivered += 1
                return
            out.failed += 1
            wait = self.settings.backoff.next(c.attempt_no, self.rand)
            if repo.mark_failed(conn, c, None if wait is None else now + timedelta(seconds=wait)) and wait is None:
                out.gave_up += 1

    def send(self, c: repo.Claimed) -> SendResult:
        """One try of one delivery (no database transaction open)."""
        notice = Notice.from_payload(c.kind, c.payload)
        if c.channel is Channel.webhook:
            zh, en = texts(notice)
            body = body_bytes(c.notification_id, c.kind, notice.facts(), zh, en)
            with self.engine.connect() as conn:
                sealed = repo.secret(conn, c.merchant_id)
            if sealed is None:
                return SendResult(False, "未设置 webhook 密钥 no webhook secret set")
            try:
                secret = self.vault.open(sealed.cipher, sealed.nonce, sealed.key_version)
            except VaultError as exc:
                return SendResult(False, f"webhook 密钥无法解密 secret cannot be opened: {exc}")
            return self.webhook.send(c.target, body, notice_id=c.notification_id, secret=secret,
                                     timestamp=int(self.wall()))
        if c.channel is Channel.email:
            return self.email.send(c.target, render_all(notice), notice_id=c.notification_id)
        with self.engine.connect() as conn:
            phone = repo.sms_phone(conn, c.merchant_id)
        if not phone:
            return SendResult(False, "未设置短信号码 no SMS phone set")
        return self.sms.send(phone, render_all(notice).sms, notice_id=c.notification_id)


def deliver_in_cycle(engine: Engine, vault: Vault, now: datetime, settings: DeliverySettings) -> DeliverySummary:
    """The worker's notices step: deliver what is due at ``now``, time-boxed by ``settings.cycle_seconds``
    (``notify_cycle_seconds``) so a slow receiver never stalls payouts. The worker passes the settings."""
    return Deliverer(engine, vault, settings).run(lambda: now, budget_seconds=settings.cycle_seconds)
