"""Helpers for the notification integration tests: preferences, reading notices, deliveries and the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.notify import repository as nrepo


def set_prefs(engine: Engine, vault: Vault, merchant_id: int, now: datetime, *, webhook: str | None = None,
              secret: str | None = None, email: str | None = None, sms: str | None = None,
              channels: list[str] | None = None) -> None:
    values: dict[str, Any] = {"webhook_url": webhook, "email": email, "sms_phone": sms}
    if secret is not None:
        sealed = vault.seal(secret)
        values.update(webhook_secret_cipher=sealed.cipher, webhook_secret_nonce=sealed.nonce,
                      webhook_key_version=sealed.key_version)
    values["channels"] = channels if channels is not None else [
        c for c, v in (("webhook", webhook), ("email", email), ("sms", sms)) if v]
    with engine.begin() as conn:
        nrepo.save_preferences(conn, merchant_id, values, now)


def notices(engine: Engine, merchant_id: int | None = None) -> list[dict[str, Any]]:
    n = t.notifications
    q = select(n).order_by(n.c.id)
    if merchant_id is not None:
        q = q.where(n.c.merchant_id == merchant_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def payout_notices(engine: Engine, payout_id: int) -> list[dict[str, Any]]:
    return [x for x in notices(engine) if x["dedupe_key"].startswith(f"payout:{payout_id}:")]


def deliveries(engine: Engine, notification_id: int | None = None) -> list[dict[str, Any]]:
    d = t.notification_deliveries
    q = select(d).order_by(d.c.id)
    if notification_id is not None:
        q = q.where(d.c.notification_id == notification_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def tries(engine: Engine, delivery_id: int) -> list[dict[str, Any]]:
    a = t.notification_attempts
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(a).where(a.c.delivery_id == delivery_id)
                                                       .order_by(a.c.attempt_no, a.c.id))]
