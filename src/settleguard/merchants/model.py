"""Merchant domain records. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from settleguard.settlement.model import Cycle


class MerchantKind(enum.StrEnum):
    PERSONAL = "personal"  # 个体 / 小微
    CORPORATE = "corporate"  # 企业


class MerchantStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    REPLACED = "replaced"
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class NewMerchant:
    """A merchant to register, with its first bound card and its terminals.

    Attributes:
        merchant_no: the acquirer's merchant number (15 digits for UnionPay).
        kind: personal or corporate.
        registered_name: name on the business licence (营业执照).
        legal_person: the legal representative (法人) or owner.
        business: what it sells, in Chinese.
        mcc: merchant category code.
        city: where it trades.
        cycle: T1 or D0.
        fee_schedule: fee schedule code.
        holder_name: the settlement account holder's name.
        account_kind: personal (对私) or corporate (对公).
        pan: the card/account number in clear; encrypted before it is stored.
        bank_code, bank_name, card_type: from the BIN table.
        terminal_nos: the merchant's POS terminal numbers.
    """

    merchant_no: str
    kind: MerchantKind
    registered_name: str
    legal_person: str
    business: str
    mcc: str
    city: str
    cycle: Cycle
    fee_schedule: str
    holder_name: str
    account_kind: str
    pan: str
    bank_code: str
    bank_name: str
    card_type: str
    terminal_nos: tuple[str, ...]

    def __repr__(self) -> str:
        return f"NewMerchant(merchant_no={self.merchant_no!r}, name={self.registered_name!r})"
