"""Delivery channels: webhook (HTTP POST of signed JSON), email (SMTP, text + HTML, Chinese first) and
SMS (a port with a logging implementation).

A channel's ``send`` returns a :class:`SendResult`; it raises nothing for a failed delivery (the
result says what happened, and the worker logs and retries it).

SMS adapter interface: implement :class:`SmsSender` -- ``send(phone, text, *, notice_id) ->
SendResult`` -- for a provider (e.g. an SMS gateway's HTTP API): send ``text`` (short, Chinese,
at most 300 characters) to ``phone`` (mainland number, digits), pass ``notice_id`` as the provider's
idempotency / out-id field when it has one, return ``ok=True`` only when the provider accepted it,
and never raise for a provider refusal. :class:`LoggingSmsSender` is the built-in one: it logs the
text with the phone masked and reports success. A result's ``detail`` may quote the receiver
verbatim: the delivery worker masks card numbers in it before it is stored (notify/delivery.py).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import httpx

from settleguard.notify.model import NOTICE_HEADER, SIGNATURE_HEADER, mask_phone, sign
from settleguard.notify.render import Rendered

log = logging.getLogger("settleguard.notify")
# A receiver's answer is kept to this length here; the delivery worker masks card numbers in it and cuts it
# to the log's 512 characters (notify/delivery.py).
_DETAIL = 2048


@dataclass(frozen=True)
class SendResult:
    ok: bool
    detail: str
    http_status: int | None = None


class Webhook:
    """POST the JSON body with the signature and idempotency headers; 2xx is delivered."""

    def __init__(self, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.timeout = timeout
        self._client = client

    def send(self, url: str, body: bytes, *, notice_id: int, secret: str | None, timestamp: int) -> SendResult:
        headers = {"Content-Type": "application/json; charset=utf-8", NOTICE_HEADER: str(notice_id),
                   "User-Agent": "settleguard-notify/1"}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        try:
            if self._client is not None:
                resp = self._client.post(url, content=body, headers=headers, timeout=self.timeout)
            else:
                with httpx.Client(timeout=self.timeout, follow_redirects=False) as c:
                    resp = c.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(False, f"{type(exc).__name__}: {exc}"[:_DETAIL])
        ok = 200 <= resp.status_code < 300
        return SendResult(ok, f"HTTP {resp.status_code} {resp.reason_phrase}"[:_DETAIL], resp.status_code)


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "noreply@settleguard.invalid"
    sender_name: str = "结算卫士 settleguard"
    timeout: float = 10.0
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)


class Email:
    """A multipart (text + HTML) UTF-8 email through SMTP; the subject is Chinese first."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def message(self, to: str, rendered: Rendered, *, notice_id: int) -> EmailMessage:
        c = self.config
        msg = EmailMessage()
        user, _, domain = c.sender.partition("@")
        msg["From"] = Address(c.sender_name, user, domain) if domain else c.sender
        msg["To"] = to
        msg["Subject"] = rendered.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=f"notice{notice_id}", domain=domain or None)
        msg[NOTICE_HEADER] = str(notice_id)
        msg.set_content(rendered.text, charset="utf-8")
        msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
        return msg

    def send(self, to: str, rendered: Rendered, *, notice_id: int) -> SendResult:
        c = self.config
        try:
            with smtplib.SMTP(c.host, c.port, timeout=c.timeout) as smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.username:
                    smtp.login(c.username, c.password or "")
                refused = smtp.send_message(self.message(to, rendered, notice_id=notice_id))
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", None)
            return SendResult(False, f"{type(exc).__name__}: {exc}"[:_DETAIL],
                              int(code) if isinstance(code, int) else None)
        if refused:
            return SendResult(False, f"refused: {refused}"[:_DETAIL])
        return SendResult(True, "250 accepted")


class SmsSender(Protocol):
    """The SMS port (see the module docstring for the adapter contract)."""

    def send(self, phone: str, text: str, *, notice_id: int) -> SendResult: ...


class LoggingSmsSender:
    """Logs the SMS (phone masked) instead of sending it; keeps the last messages for inspection."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []

    def send(self, phone: str, text: str, *, notice_id: int) -> SendResult:
        masked = mask_phone(phone)
        log.info("SMS to %s (notice %s): %s", masked, notice_id, text)
        self.sent.append((masked, text, notice_id))
        return SendResult(True, f"logged for {masked}")
