"""Ledger accounts, entries and invariants. Pure.

Sign convention: a posting's ``amount_fen`` is positive for a debit and negative for a
credit; the postings of every entry sum to zero. Merchant accounts are the account name
plus the merchant id (``merchant_payable:42``).

Entries (architecture.md):
    settlement   one entry per settlement run: Dr clearing_receivable (sum of net + fee)
                 / Cr fee_income (sum of fees) / Cr merchant_payable:<m> (each merchant's net)
    submit       Dr merchant_payable / Cr payout_in_transit
    confirm      Dr payout_in_transit / Cr bank_provisions
    hold         Dr payout_in_transit / Cr merchant_held      (permanent failure, 挂账)
    release      Dr merchant_held / Cr payout_in_transit       (re-pay after the fix)
    return       Dr bank_provisions / Cr merchant_held         (退票 after success)
    unconfirm    Dr bank_provisions / Cr payout_in_transit     (reconciliation: recorded paid, never booked by
                                                               the bank: back to inquiry; reconciliation/followup.py)
    cancel       Dr merchant_payable or payout_in_transit / Cr merchant_held
                                                               (an operator cancelled the payout)
    recon_*      reconciliation adjustments without a merchant (:func:`recon_entry`)

Invariant per merchant: settled net = paid + held + in transit + still payable.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Account(enum.StrEnum):
    CLEARING_RECEIVABLE = "clearing_receivable"
    MERCHANT_PAYABLE = "merchant_payable"
    FEE_INCOME = "fee_income"
    PAYOUT_IN_TRANSIT = "payout_in_transit"
    MERCHANT_HELD = "merchant_held"
    BANK_PROVISIONS = "bank_provisions"
    # Reconciliation (差错处理, reconciliation/resolve.py); postings without a merchant:
    BANK_RECEIVABLE = "bank_receivable"  # 应收银行款: a duplicate / unknown debit the bank owes back
    RECON_ADJUSTMENT = "recon_adjustment"  # 差错调整: the difference of an amount mismatch
    RECON_LOSS = "recon_loss"  # 差错损失: a debit written off


class EntryKind(enum.StrEnum):
    SETTLEMENT = "settlement"
    SUBMIT = "payout_submit"
    CONFIRM = "payout_confirm"
    HOLD = "payout_hold"
    RELEASE = "payout_release"
    RETURN = "payout_return"
    CANCEL = "payout_cancel"
    UNCONFIRM = "payout_unconfirm"
    RECON_RECEIVABLE = "recon_receivable"
    RECON_REFUND = "recon_refund"
    RECON_WRITE_OFF = "recon_write_off"
    RECON_ADJUSTMENT = "recon_adjustment"


class UnbalancedEntry(ValueError):
    """An entry whose postings do not sum to zero."""


@dataclass(frozen=True)
class Posting:
    account: Account
    merchant_id: int | None
    amount_fen: int


@dataclass(frozen=True)
class Entry:
    """One balanced ledger entry.

    Attributes:
        kind: what moved the money.
        memo: short bilingual description.
        postings: at least two, summing to zero.
        merchant_id, payout_id: what the entry belongs to (settlement entries belong to a run).
    """

    kind: EntryKind
    memo: str
    postings: tuple[Posting, ...]
    merchant_id: int | None = None
    payout_id: int | None = None

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise UnbalancedEntry(f"{self.kind}: an entry needs at least two postings")
        total = sum(p.amount_fen for p in self.postings)
        if total != 0:
            raise UnbalancedEntry(f"{self.kind}: postings sum to {total} fen, not 0")


def _move(kind: EntryKind, memo: str, debit: Account, credit: Account, merchant_id: int,
          amount_fen: int, payout_id: int | None) -> Entry:
    if amount_fen <= 0:
        raise ValueError(f"{kind}: amount must be positive, got {amount_fen}")
    return Entry(kind, memo, (Posting(debit, merchant_id, amount_fen), Posting(credit, merchant_id, -amount_fen)),
                 merchant_id=merchant_id, payout_id=payout_id)


def submit(merchant_id: int, payout_id: int, amount_fen: int) -> Entry:
    return _move(EntryKind.SUBMIT, "出款提交 payout submitted", Account.MERCHANT_PAYABLE,
                 Account.PAYOUT_IN_TRANSIT, merchant_id, amount_fen, payout_id)


def confirm(merchant_id: int, payout_id: int, amount_fen: int) -> Entry:
    return _move(EntryKind.CONFIRM, "出款成功 payout confirmed", Account.PAYOUT_IN_TRANSIT,
                 Account.BANK_PROVISIONS, merchant_id, amount_fen, payout_id)


def hold(merchant_id: int, payout_id: int, amount_fen: int) -> Entry:
    return _move(EntryKind.HOLD, "出款失败挂账 payout failed, funds held", Account.PAYOUT_IN_TRANSIT,
                 Account.MERCHANT_HELD, merchant_id, amount_fen, payout_id)


def release(merchant_id: int, payout_id: int, amount_fen: int) -> Entry:
    return _move(EntryKind.RELEASE, "挂账解除重新出款 held funds released", Account.MERCHANT_HELD,
                 Account.PAYOUT_IN_TRANSIT, merchant_id, amount_fen, payout_id)


def returned(merchant_id: int, payout_id: int, amount_fen: int) -> Entry:
    return _move(EntryKind.RETURN, "退票挂账 payout returned, funds held", Account.BANK_PROVISIONS,
                 Account.MERCHANT_HELD, merchant_id, amount_fen, payout_id)


def unconfirm(merchant_id: int, payout_id: int, amount_fen: int) -> Entry:
    """A payout recorded as paid whose debit the bank never booked goes back to inquiry: the confirm undone."""
    return _move(EntryKind.UNCONFIRM, "对账未见银行扣款，转查询 not booked by the bank, back to inquiry",
                 Account.BANK_PROVISIONS, Account.PAYOUT_IN_TRANSIT, merchant_id, amount_fen, payout_id)


def cancel(merchant_id: int, payout_id: int, amount_fen: int, source: Account) -> Entry:
    """An operator cancelled a payout: its money waits in merchant_held for a decision."""
    if source not in (Account.MERCHANT_PAYABLE, Account.PAYOUT_IN_TRANSIT):
        raise ValueError(f"cannot cancel from {source}")
    return _move(EntryKind.CANCEL, "出款撤销转挂账 payout cancelled, funds held", source, Account.MERCHANT_HELD,
                 merchant_id, amount_fen, payout_id)


def recon_entry(kind: EntryKind, memo: str, debit: Account, credit: Account, amount_fen: int) -> Entry:
    """A reconciliation adjustment (差错处理) between two platform accounts (no merchant: merchant positions
    are untouched). Used with bank_provisions (our money at the bank) on one side:

    recon_receivable  Dr bank_receivable / Cr bank_provisions    (the bank debited us twice: it owes it back)
    recon_refund      Dr bank_provisions / Cr bank_receivable    (the bank's refund was booked)
    recon_write_off   Dr recon_loss / Cr bank_provisions         (a debit written off)
    recon_adjustment  Dr recon_adjustment / Cr bank_provisions   (the bank paid more than recorded; the
                      reverse when it paid less)
    """
    if amount_fen <= 0:
        raise ValueError(f"{kind}: amount must be positive, got {amount_fen}")
    return Entry(kind, memo[:256], (Posting(debit, None, amount_fen), Posting(credit, None, -amount_fen)))


@dataclass(frozen=True)
class MerchantPosition:
    """One merchant's money, from two independent sources.

    Attributes:
        settled_net_fen: sum of the merchant's settlement records.
        paid_fen: sum of the merchant's succeeded payouts (payout records).
        held_fen, in_transit_fen, payable_fen: credit balances of the merchant's ledger accounts.
        paid_ledger_fen: what the ledger says was paid out (bank_provisions credits).
        settled_ledger_fen: what the ledger credited to merchant_payable at settlement.
    """

    merchant_id: int
    settled_net_fen: int
    paid_fen: int
    held_fen: int
    in_transit_fen: int
    payable_fen: int
    paid_ledger_fen: int
    settled_ledger_fen: int


@dataclass(frozen=True)
class Problem:
    """A failed ledger check, naming the accounts involved."""

    accounts: tuple[str, ...]
    message: str


def check_position(p: MerchantPosition) -> list[Problem]:
    """settled net = paid + held + in transit + still payable, and the two sources agree."""
    m = p.merchant_id
    out: list[Problem] = []
    right = p.paid_fen + p.held_fen + p.in_transit_fen + p.payable_fen
    if p.settled_net_fen != right:
        out.append(Problem(
            (f"merchant_payable:{m}", f"merchant_held:{m}", f"payout_in_transit:{m}"),
            f"merchant {m}: settled net {p.settled_net_fen} != paid {p.paid_fen} + held {p.held_fen} "
            f"+ in transit {p.in_transit_fen} + payable {p.payable_fen} (= {right}); "
            f"off by {p.settled_net_fen - right} fen",
        ))
    if p.paid_fen != p.paid_ledger_fen:
        out.append(Problem((f"bank_provisions:{m}",),
                           f"merchant {m}: payouts say {p.paid_fen} paid, ledger says {p.paid_ledger_fen}"))
    if p.settled_net_fen != p.settled_ledger_fen:
        out.append(Problem((f"merchant_payable:{m}",),
                           f"merchant {m}: settlements say net {p.settled_net_fen}, ledger credited "
                           f"{p.settled_ledger_fen}"))
    return out


def unbalanced(entry_id: int, accounts: Sequence[str], total: int) -> Problem:
    return Problem(tuple(accounts), f"entry {entry_id} does not balance: postings sum to {total} fen")
