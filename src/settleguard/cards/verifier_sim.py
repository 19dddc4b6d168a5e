"""A simulated bank verification service, deterministic by seed and card number.

Every answer is drawn from SHA-256 of the seed, a purpose and the card number, so the same
card always gets the same answer for the same seed and tests can search for cards that are
frozen, closed or whose reserved phone differs. Rates are those of a realistic book of
small-merchant debit cards: about 93 % of cards are normal; the rest are frozen, closed,
restricted, dormant, lost, stolen or expired. Codes and messages follow what Chinese banks
and UnionPay send (shared reference failure-codes.md: CUP 05/14/21/41/43/54/62, ICBC
B0208/B0210, P1 for a card without a reserved phone).

A bank's record of the holder cannot be derived from a hash, so four-element answers are a
fixed share of mismatches per card unless the caller registers the bank's book of holders
(``holders``): then the elements are compared exactly and a card missing from the book does
not exist ("14 无效卡号"). A number failing the Luhn check almost never exists either. ``overrides`` sets a card's
status, for example to freeze a card after it was bound.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from stdnum import luhn

from settleguard.cards.verifier import (
    CardStatus,
    CardStatusResult,
    Element,
    VerificationOutcome,
    VerificationResult,
)

# Cumulative share of each status (the remainder is normal).
_STATUS_SHARES: tuple[tuple[CardStatus, float], ...] = (
    (CardStatus.FROZEN, 0.015),
    (CardStatus.CLOSED, 0.012),
    (CardStatus.RESTRICTED, 0.010),
    (CardStatus.DORMANT, 0.012),
    (CardStatus.LOST, 0.008),
    (CardStatus.STOLEN, 0.003),
    (CardStatus.EXPIRED, 0.010),
)

STATUS_ANSWERS: dict[CardStatus, tuple[str, str]] = {
    CardStatus.NORMAL: ("00", "账户状态正常"),
    CardStatus.LOST: ("41", "挂失卡"),
    CardStatus.STOLEN: ("43", "被窃卡，请与发卡方联系"),
    CardStatus.FROZEN: ("B0210", "帐户已冻结"),
    CardStatus.CLOSED: ("B0208", "帐户已注销"),
    CardStatus.RESTRICTED: ("62", "受限制的卡"),
    CardStatus.DORMANT: ("21", "该卡未初始化或睡眠卡"),
    CardStatus.EXPIRED: ("54", "该卡已过期"),
}
MATCH = ("00", "认证成功，四要素一致")
NAME_MISMATCH = ("05", "持卡人认证失败：户名不符")
ID_MISMATCH = ("05", "持卡人认证失败：证件号码不符")
PHONE_MISMATCH = ("05", "持卡人认证失败：预留手机号不符")
NO_PHONE = ("P1", "当前卡未在发卡机构留存手机号等通讯联系号码")
NO_ACCOUNT = ("14", "无效卡号（无此账号）")
UNAVAILABLE = ("96", "系统异常，请稍后重试")

# Shares of four-element outcomes for a card whose status is normal (cumulative in this order).
_VERIFY_SHARES: tuple[tuple[str, float], ...] = (
    ("no_account", 0.010),
    ("name", 0.030),
    ("id_number", 0.020),
    ("phone", 0.030),
    ("no_phone", 0.010),
)


@dataclass(frozen=True)
class Holder:
    """The bank's record of a card's holder, for exact comparisons in tests and demos."""

    name: str
    id_number: str
    phone: str


class SimulatedVerifier:
    """Deterministic :class:`~settleguard.cards.verifier.CardVerifier` for demos and tests."""

    name = "simulator"

    def __init__(self, seed: int, *, holders: Mapping[str, Holder] | None = None,
                 overrides: Mapping[str, CardStatus] | None = None, error_rate: float = 0.0) -> None:
        if not 0.0 <= error_rate < 1.0:
            raise ValueError("error_rate must be in [0, 1)")
        self.seed = seed
        self.holders: dict[str, Holder] = dict(holders or {})
        self.overrides: dict[str, CardStatus] = dict(overrides or {})
        self.error_rate = error_rate
        self.calls = 0

    def __repr__(self) -> str:
        return f"SimulatedVerifier(seed={self.seed}, holders={len(self.holders)}, overrides={len(self.overrides)})"

    def _draw(self, purpose: str, pan: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:{purpose}:{pan}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def status_of(self, pan: str) -> CardStatus:
        """The card's state in this simulated bank."""
        if pan in self.overrides:
            return self.overrides[pan]
        u = self._draw("status", pan)
        edge = 0.0
        for status, share in _STATUS_SHARES:
            edge += share
            if u < edge:
                return status
        return CardStatus.NORMAL

    def _unavailable(self, purpose: str, pan: str) -> bool:
        return self.error_rate > 0 and self._draw(f"error:{purpose}:{self.calls}", pan) < self.error_rate

    def inquire_status(self, pan: str) -> CardStatusResult:
        self.calls += 1
        if self._unavailable("status", pan):
            return CardStatusResult(None, *UNAVAILABLE)
        status = self.status_of(pan)
        return CardStatusResult(status, *STATUS_ANSWERS[status])

    def verify_four_elements(self, pan: str, name: str, id_number: str, phone: str) -> VerificationResult:
        self.calls += 1
        if self._unavailable("verify", pan):
            return VerificationResult(VerificationOutcome.ERROR, *UNAVAILABLE)
        u = self._draw("verify", pan)
        if pan not in self.overrides and (pan not in self.holders if self.holders
                                          else not luhn.is_valid(pan) and u < 0.98):
            return _answer("no_account")
        status = self.status_of(pan)
        if status is not CardStatus.NORMAL:
            code, message = STATUS_ANSWERS[status]
            return VerificationResult(VerificationOutcome.CARD_PROBLEM, code, message, (Element.CARD,), status)
        if self.holders:
            holder = self.holders.get(pan)
            return _answer("no_account") if holder is None else _compare(holder, name, id_number, phone)
        edge = 0.0
        for kind, share in _VERIFY_SHARES:
            edge += share
            if u < edge:
                return _answer(kind)
        return VerificationResult(VerificationOutcome.MATCH, *MATCH)


def _compare(holder: Holder, name: str, id_number: str, phone: str) -> VerificationResult:
    if holder.name != name.strip():
        return _answer("name")
    if holder.id_number.upper() != id_number.strip().upper():
        return _answer("id_number")
    if not holder.phone:
        return _answer("no_phone")
    if holder.phone != phone.strip():
        return _answer("phone")
    return VerificationResult(VerificationOutcome.MATCH, *MATCH)


def _answer(kind: str) -> VerificationResult:
    if kind == "no_account":
        return VerificationResult(VerificationOutcome.CARD_PROBLEM, *NO_ACCOUNT, (Element.CARD,))
    if kind == "no_phone":
        return VerificationResult(VerificationOutcome.MISMATCH, *NO_PHONE, (Element.PHONE,))
    answers = {"name": (NAME_MISMATCH, Element.NAME), "id_number": (ID_MISMATCH, Element.ID_NUMBER),
               "phone": (PHONE_MISMATCH, Element.PHONE)}
    (code, message), element = answers[kind]
    return VerificationResult(VerificationOutcome.MISMATCH, code, message, (element,))
