"""Merchant notices: kinds, channels, the webhook signature and the delivery backoff. Pure: standard
library only, no clock (callers pass timestamps and random draws in).

Signature (header ``X-Settleguard-Signature``): ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` where the
HMAC key is the merchant's webhook secret and the message is ``"<t>." + body`` (the raw body bytes).
A receiver recomputes it, compares in constant time, and refuses a timestamp outside its tolerance
window (replays). ``X-Settleguard-Notice: <notification id>`` is the idempotency key: delivery is
at-least-once, so a receiver de-duplicates on it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SIGNATURE_HEADER = "X-Settleguard-Signature"
NOTICE_HEADER = "X-Settleguard-Notice"
DEFAULT_TOLERANCE_SECONDS = 300


class Channel(StrEnum):
    webhook = "webhook"
    email = "email"
    sms = "sms"


CHANNELS: tuple[Channel, ...] = tuple(Channel)


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivering = "delivering"
    delivered = "delivered"
    gave_up = "gave_up"


# Notice kinds with a template (notify/templates/<kind>.j2): every taxonomy category, plus the
# payout events that are not a bank's diagnosis and the card notices written by cards.service.
CATEGORY_KINDS: tuple[str, ...] = (
    "card_info_error", "card_status_abnormal", "system_or_network_fault", "limit_exceeded",
    "verification_failed", "insufficient_funds", "risk_or_compliance_block", "transaction_data_error",
    "duplicate", "result_unknown", "unknown",
)
EVENT_KINDS: tuple[str, ...] = ("no_card", "returned", "released", "paid", "card_unusable", "card_restored", "card_bound",
                                "card_rebound")
KINDS: tuple[str, ...] = CATEGORY_KINDS + EVENT_KINDS
# Payout categories that hold the money and are told to the merchant.
HOLD_KINDS: frozenset[str] = frozenset({"card_info_error", "card_status_abnormal", "risk_or_compliance_block",
                                        "no_card"})


def cause(kind: str, instruction_no: int) -> str:
    """The cause part of a payout notice's dedupe key: the kind, qualified by the instruction when the
    payout was released and resent (a second hold after a release is a new cause)."""
    return kind if instruction_no == 0 else f"{kind}#{instruction_no}"


def dedupe_key(payout_id: int, kind: str, instruction_no: int = 0) -> str:
    """``payout:<id>:<cause>``: one notice per payout per cause."""
    return f"payout:{payout_id}:{cause(kind, instruction_no)}"


@dataclass(frozen=True)
class Notice:
    """What a merchant is told about one payout (or card) event; everything the templates show.

    ``steps_zh`` / ``steps_en`` are the diagnosis' guidance (what the merchant must do),
    ``meaning_zh`` / ``meaning_en`` why it failed. ``card_masked`` is masked (first 6, last 4)."""

    kind: str
    merchant_no: str
    merchant_name: str
    amount_fen: int | None = None
    payout_id: int | None = None
    payout_key: str | None = None
    card_masked: str | None = None
    category: str | None = None
    rule: str | None = None
    meaning_zh: str = ""
    meaning_en: str = ""
    steps_zh: tuple[str, ...] = ()
    steps_en: tuple[str, ...] = ()
    bank_code: str = ""
    bank_message: str = ""
    message_zh: str = ""  # free text of notices written elsewhere (cards.service)
    message_en: str = ""
    created_at: str = ""  # ISO 8601, local business time
    extra: Mapping[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        """JSON-safe form stored in the outbox payload and sent in webhook bodies."""
        return {"kind": self.kind, "merchant_no": self.merchant_no, "merchant_name": self.merchant_name,
                "amount_fen": self.amount_fen, "payout_id": self.payout_id, "payout_key": self.payout_key,
                "card_masked": self.card_masked, "category": self.category, "rule": self.rule,
                "meaning_zh": self.meaning_zh, "meaning_en": self.meaning_en, "steps_zh": list(self.steps_zh),
                "steps_en": list(self.steps_en), "bank_code": self.bank_code, "bank_message": self.bank_message,
                "message_zh": self.message_zh, "message_en": self.message_en, "created_at": self.created_at,
                **dict(self.extra)}

    @classmethod
    def from_payload(cls, kind: str, payload: Mapping[str, Any]) -> Notice:
        """Rebuild a notice from an outbox payload (payout notices carry every fact; card notices
        written by cards.service carry their text as ``zh`` / ``en`` and a few facts)."""
        def s(name: str, default: str = "") -> str:
            v = payload.get(name)
            return default if v is None else str(v)

        def steps(name: str) -> tuple[str, ...]:
            v = payload.get(name)
            return tuple(str(x) for x in v) if isinstance(v, list | tuple) else ()

        amount = payload.get("amount_fen")
        pid = payload.get("payout_id")
        known = {f for f in cls.__dataclass_fields__}
        extra = {k: v for k, v in payload.items() if k not in known and k not in ("zh", "en", "subject_zh",
                                                                                     "subject_en")}
        return cls(kind=kind, merchant_no=s("merchant_no"), merchant_name=s("merchant_name"),
                   amount_fen=int(amount) if isinstance(amount, int) else None,
                   payout_id=int(pid) if isinstance(pid, int) else None,
                   payout_key=payload.get("payout_key"), card_masked=payload.get("card_masked") or payload.get("masked"),
                   category=payload.get("category"), rule=payload.get("rule"), meaning_zh=s("meaning_zh"),
                   meaning_en=s("meaning_en"), steps_zh=steps("steps_zh"), steps_en=steps("steps_en"),
                   bank_code=s("bank_code"), bank_message=s("bank_message"),
                   message_zh=s("message_zh") or s("zh"), message_en=s("message_en") or s("en"),
                   created_at=s("created_at"), extra=extra)


# --- webhook signature -------------------------------------------------------------------------

class SignatureError(ValueError):
    """A signature header that is malformed, stale or does not match; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    return hmac.new(_key(secret), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Settleguard-Signature`` header value: ``t=<timestamp>,v1=<hex>``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def parse_signature(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a header; several v1 values are allowed (secret rotation)."""
    ts: int | None = None
    sigs: list[str] = []
    for part in header.split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed")
        if k == "t":
            if not v.isdigit():
                raise SignatureError("malformed")
            ts = int(v)
        elif k == "v1":
            sigs.append(v)
    if ts is None or not sigs:
        raise SignatureError("malformed")
    return ts, sigs


def verify(secret: str | bytes, header: str, body: bytes, *, now: int,
           tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> int:
    """Check a signature header against the raw body; returns its timestamp.

    Raises SignatureError("malformed" | "stale" | "mismatch"). ``now`` is the receiver's clock in
    unix seconds; a timestamp more than ``tolerance`` seconds away from it is refused."""
    ts, sigs = parse_signature(header)
    if abs(now - ts) > tolerance:
        raise SignatureError("stale")
    expected = signature(secret, ts, body)
    if not any(hmac.compare_digest(expected, s) for s in sigs):
        raise SignatureError("mismatch")
    return ts


def body_bytes(notification_id: int, kind: str, facts: Mapping[str, Any], text_zh: str, text_en: str) -> bytes:
    """The webhook body: UTF-8 JSON, keys sorted, so the signed bytes are what is sent."""
    doc = {"id": notification_id, "kind": kind, "text": {"zh": text_zh, "en": text_en}, "facts": dict(facts)}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


# --- backoff -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: before try ``n + 1`` (after ``n`` failed tries) wait a
    uniform draw from [floor, min(cap, base * 2**(n-1))]; after ``max_attempts`` tries give up."""

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8
    floor_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds or self.max_attempts < 1:
            raise ValueError("backoff needs base > 0, cap >= base and max_attempts >= 1")
        if not 0 <= self.floor_seconds <= self.base_seconds:
            raise ValueError("backoff floor must be within [0, base]")

    def ceiling(self, failed: int) -> float:
        """Upper bound of the wait after ``failed`` failed tries (>= 1)."""
        return min(self.cap_seconds, self.base_seconds * 2.0 ** min(max(failed - 1, 0), 62))

    def delay(self, failed: int, draw: float) -> float:
        """The wait after ``failed`` failed tries; ``draw`` is uniform in [0, 1)."""
        hi = self.ceiling(failed)
        return self.floor_seconds + (hi - self.floor_seconds) * min(max(draw, 0.0), 1.0)

    def next(self, failed: int, rand: Callable[[], float]) -> float | None:
        """Seconds to wait before the next try, or None: give up (``failed`` >= max_attempts)."""
        if failed >= self.max_attempts:
            return None
        return self.delay(failed, rand())


def channels_in(names: Sequence[str]) -> list[Channel]:
    """Parse channel names (order kept, duplicates dropped); ValueError names an unknown one."""
    out: list[Channel] = []
    for n in names:
        n = n.strip().lower()
        if not n:
            continue
        try:
            c = Channel(n)
        except ValueError:
            raise ValueError(f"unknown channel {n!r}; available: {', '.join(CHANNELS)}") from None
        if c not in out:
            out.append(c)
    return out


def mask_phone(phone: str) -> str:
    """138****5678: the first 3 and last 4 digits."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_email(email: str) -> str:
    """z***@example.com."""
    user, at, domain = email.partition("@")
    if not at:
        return "***"
    return (user[:1] + "***") + "@" + domain


# Steps for notices that have no bank diagnosis (zh, en).
DEFAULT_STEPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "no_card": (("请在商户后台或联系客户经理绑定一张以营业执照或法人名义开立的借记卡",
                 "绑定并验证通过后，挂账款项将自动付到新卡，无需另行申请"),
                ("Bind a debit card in the business's or the legal representative's name in the merchant portal "
                 "or through your account manager",
                 "Once it is bound and verified, the held money is paid to it automatically; no request needed")),
    "released": (("无需操作；如新卡信息有变，请及时在商户后台更新",),
                 ("Nothing to do; if your card details change, update them in the merchant portal",)),
    "paid": (("无需操作；请核对结算卡入账",), ("Nothing to do; please check the credit on your card",)),
}


@dataclass(frozen=True)
class Preferences:
    """How a merchant wants to be told (the webhook secret itself is never part of this)."""

    merchant_id: int
    merchant_no: str
    webhook_url: str | None
    has_secret: bool
    email: str | None
    sms_phone: str | None
    channels: tuple[Channel, ...]
    lang: str = "zh"

    def targets(self) -> list[tuple[Channel, str]]:
        """(channel, target) for each chosen channel that has a destination: the URL, the address,
        or the masked phone (the number itself is read from the preferences at delivery time)."""
        out: list[tuple[Channel, str]] = []
        for c in self.channels:
            if c is Channel.webhook and self.webhook_url:
                out.append((c, self.webhook_url))
            elif c is Channel.email and self.email:
                out.append((c, self.email))
            elif c is Channel.sms and self.sms_phone:
                out.append((c, mask_phone(self.sms_phone)))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"merchant_no": self.merchant_no, "webhook_url": self.webhook_url,
                "webhook_secret": "set" if self.has_secret else None, "email": self.email,
                "sms_phone": mask_phone(self.sms_phone) if self.sms_phone else None,
                "channels": [str(c) for c in self.channels], "lang": self.lang}
