"""The BankChannel protocol: how settleguard talks to a bank, whatever the wire format.

Modelled on httpx's transport: a small protocol with an in-process simulator shipped
beside the real channels. A channel never raises for a bank's answer; it returns a
:class:`BankOutcome`. A timeout after the request left is ``UNKNOWN`` (结果未明), never a
failure: the money may have moved, so the caller must inquire before resending.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable


class OutcomeStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PayoutInstruction:
    """One instruction to pay a merchant's settlement card.

    Attributes:
        idempotency_key: sent to the bank (EndToEndId / 商户订单号); reused by every resend.
        amount_fen: amount in fen, > 0.
        currency: ISO 4217 code, "CNY".
        creditor_name: the account holder's name as bound.
        account_number: the full card/account number, decrypted only for this call.
        bank_code: settleguard bank code of the receiving bank (ICBC, CCB, ...).
        account_kind: "personal" (对私) or "corporate" (对公).
        value_date: requested value date.
    """

    idempotency_key: str
    amount_fen: int
    currency: str
    creditor_name: str
    account_number: str
    bank_code: str
    account_kind: str
    value_date: date

    def __repr__(self) -> str:  # never print a full card number
        return (f"PayoutInstruction(key={self.idempotency_key!r}, amount_fen={self.amount_fen}, "
                f"bank={self.bank_code!r}, account=****{self.account_number[-4:]})")


@dataclass(frozen=True)
class BankOutcome:
    """The bank's answer to a send or an inquiry.

    Attributes:
        status: succeeded, failed (definitive: nothing was paid) or unknown.
        code: the bank's or channel's response code, verbatim.
        message: the bank's message, verbatim (often Chinese free text).
        raw: the raw response body as received (no card numbers).
        retryable: for a failure, whether the channel says a resend may succeed
            (system busy, cut-over); diagnosis refines this later.
        scheme: the code set of ``code`` (e.g. "allinpay"), for diagnosis.
    """

    status: OutcomeStatus
    code: str
    message: str
    raw: str
    retryable: bool = False
    scheme: str | None = None


@runtime_checkable
class BankChannel(Protocol):
    """A way to pay merchants. Implementations: the simulator; later ISO 20022 and HTTP APIs."""

    name: str

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        """Submit one payout. Must not raise for bank answers or timeouts."""
        ...

    def inquire(self, idempotency_key: str) -> BankOutcome:
        """Ask the bank what became of an earlier instruction (状态查询)."""
        ...


@runtime_checkable
class PaymentLimits(Protocol):
    """A channel that knows its bank's single-payment limit (单笔限额); payouts above it are split
    (payouts.policy). A channel without it has no known limit."""

    def payment_limit_fen(self, account_kind: str = "personal") -> int | None:
        """The single-payment limit in fen for a card of this kind ("personal" / "corporate"), or None."""
        ...
